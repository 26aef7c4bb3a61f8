# BerkeleyDB-only code (included by sqlnb/_fast_bdb.pyx alone, after the shared core):
# the environment directory's lock waits and its recovery after dead processes.
# The C side is bdb_locks.c and bdb_recover.c (compiled into sqlnb._fast_bdb only).

cdef extern from "bdb_locks.h" nogil:
    int sqlnb_bdb_lock_watch(const char *home, unsigned long timeout_us, char *err, int errlen)
    void sqlnb_bdb_lock_unwatch(const char *home)
    long sqlnb_bdb_lock_timeouts(const char *home)

cdef extern from "bdb_recover.h" nogil:
    int sqlnb_bdb_clear_dead_env(const char *home, char *err, int errlen)


def lock_watch(home, double timeout):
    """Bound this process's lock waits in the BerkeleyDB environment directory ``home``.

    BerkeleyDB SQL waits for another process's locks without limit and ignores
    ``sqlite3_busy_timeout``; after this, a wait longer than ``timeout`` seconds
    is refused (the statement fails with SQLITE_LOCKED). Reference counted:
    pair each call with :func:`lock_unwatch`. Raises OSError when the
    environment cannot be joined.
    """
    cdef bytes h = os.fsencode(home)
    cdef const char *ch = h
    cdef char err[512]
    cdef unsigned long us = <unsigned long>(max(timeout, 0.001) * 1e6)
    cdef int rc
    err[0] = 0
    with nogil:
        rc = sqlnb_bdb_lock_watch(ch, us, err, sizeof(err))
    if rc != 0:
        raise OSError((<bytes>err).decode("utf-8", "replace"))


def lock_unwatch(home):
    """Drop one :func:`lock_watch` reference on ``home``."""
    cdef bytes h = os.fsencode(home)
    cdef const char *ch = h
    with nogil:
        sqlnb_bdb_lock_unwatch(ch)


def lock_timeouts(home):
    """How many lock waits BerkeleyDB refused for their timeout in the watched environment
    ``home`` (all processes together; it only grows), or -1 when ``home`` is not watched."""
    cdef bytes h = os.fsencode(home)
    cdef const char *ch = h
    cdef long n
    with nogil:
        n = sqlnb_bdb_lock_timeouts(ch)
    return n


def clear_dead_env(home):
    """Let BerkeleyDB recover the environment in directory ``home`` if only dead processes used it.

    When its DB_REGISTER file lists processes that died with the environment
    open and no live one, removes the shared region files, so that BerkeleyDB
    SQL's next open runs full recovery instead of "failchk", which can spin
    forever on a mutex the dead process held (see bdb_recover.c).
    Returns 0 (nothing to do), 1 (regions removed), 2 (dead and live processes:
    nothing done), 3 (this process has the environment open: not inspected) or
    4 (the registry stayed locked: not inspected). Raises OSError when the
    directory cannot be inspected.
    """
    cdef bytes h = os.fsencode(home)
    cdef const char *ch = h
    cdef char err[512]
    cdef int rc
    err[0] = 0
    with nogil:
        rc = sqlnb_bdb_clear_dead_env(ch, err, sizeof(err))
    if rc < 0:
        raise OSError((<bytes>err).decode("utf-8", "replace"))
    return rc
