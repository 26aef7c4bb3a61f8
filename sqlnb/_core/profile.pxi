# The sqlnb_profile aggregate (included by sqlnb/_fast.pyx; C in _core/profile_agg.h and the
# sketches it uses in _core/profile_sketch.h): every statistic of an approximate
# column profile in one pass, in C. sqlnb.look.sketch builds the one
# statement ``SELECT sqlnb_profile(c1, ...), sqlnb_profile(c2, ...), ... FROM (source)`` and
# unpacks each column's BLOB. The aggregate touches no Python object: it steps with the GIL
# released like any built-in aggregate, under the connection's progress handler (time limit,
# interrupt), and frees its state in xFinal (SQLite calls it on an interrupted statement too).

cdef extern from "profile_agg.h" nogil:
    int sqlnb_profile_register(sqlite3 *db, const char *name)
    unsigned int SP_MAGIC
    unsigned int SP_VERSION

#: the aggregate's name in SQL and the version of the BLOB it returns
PROFILE_AGGREGATE = "sqlnb_profile"
PROFILE_FORMAT = (SP_MAGIC, SP_VERSION)


def profile_register(RawConnection raw):
    """Register ``sqlnb_profile(value [, K, p, k, exact, copy])`` on ``raw`` (again: replaces it)."""
    cdef int rc
    _lock(raw)
    try:
        raw._check()
        rc = sqlnb_profile_register(raw.db, b"sqlnb_profile")
        check_rc(rc, raw.db)
    finally:
        _unlock(raw)


# The exact profile in C (_core/profile_exact.h): sqlnb_profile_exact (read 1: every statistic of a
# column, exactly), sqlnb_profile_pick (read 2: the TEXT/BLOB values read 1 could only count, and the
# check that no two values shared a hash) and sqlnb_profile_config (the memory budget and sizes of
# the next read). sqlnb.look.exact builds the statements and unpacks the BLOBs.
cdef extern from "profile_exact.h" nogil:
    int sqlnb_profile_exact_register(sqlite3 *db)
    unsigned int PE_MAGIC
    unsigned int PE_SPEC_MAGIC
    unsigned int PE_PICK_MAGIC
    unsigned int PE_VERSION

PROFILE_EXACT_FORMAT = (PE_MAGIC, PE_SPEC_MAGIC, PE_PICK_MAGIC, PE_VERSION)


def profile_exact_register(RawConnection raw):
    """Register ``sqlnb_profile_exact(value)``, ``sqlnb_profile_pick(value, spec)`` and
    ``sqlnb_profile_config(budget, table_max, arena_max, top, hash_bits)`` on ``raw``."""
    cdef int rc
    _lock(raw)
    try:
        raw._check()
        rc = sqlnb_profile_exact_register(raw.db)
        check_rc(rc, raw.db)
    finally:
        _unlock(raw)
