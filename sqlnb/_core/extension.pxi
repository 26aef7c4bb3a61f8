# The stdlib's Connection.load_extension, engine side (included by sqlnb/_fast.pyx). Loading stays
# off: the C API is switched on only for the one call (SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, which
# leaves the SQL function load_extension() as the policy set it), then back to what it was. The
# facade (sqlnb.stdlib_more) refuses it in the read-only modes and unless enable_load_extension(True).

cdef enum:
    SQLNB_DBCONFIG_ENABLE_LOAD_EXTENSION = 1005   # sqlite3.h 3.13+


def load_extension(RawConnection raw, path, entrypoint=None):
    """Load the SQLite extension at ``path`` (its entry point ``entrypoint``, default SQLite's rule)."""
    cdef bytes bpath = os.fsencode(path)
    cdef bytes bentry = entrypoint.encode("utf-8") if entrypoint is not None else None
    cdef const char *zentry = NULL
    cdef char *err = NULL
    cdef int was = 0
    cdef int rc
    cdef bint by_config
    if b"\0" in bpath:
        raise ValueError("the extension's path contains a NUL character")
    if bentry is not None:
        zentry = bentry
    _lock(raw)
    try:
        raw._check()
        by_config = sqlnb_db_config_flag(raw.db, SQLNB_DBCONFIG_ENABLE_LOAD_EXTENSION, -1, &was) == SQLITE_OK
        if by_config:
            sqlnb_db_config_flag(raw.db, SQLNB_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, NULL)
        else:      # the older core: both switches at once, back to what the policy allows after
            sqlite3_enable_load_extension(raw.db, 1)
        try:
            rc = sqlite3_load_extension(raw.db, bpath, zentry, &err)
        finally:
            if by_config:
                sqlnb_db_config_flag(raw.db, SQLNB_DBCONFIG_ENABLE_LOAD_EXTENSION, was, NULL)
            else:
                sqlite3_enable_load_extension(
                    raw.db, (<AuthTable>raw._auth).st.allow_loadext if raw._auth is not None else 0)
        if rc != SQLITE_OK:
            msg = err.decode("utf-8", "replace") if err != NULL else "unable to load the extension"
            if err != NULL:
                sqlite3_free(err)
            raise _errors.make_error(rc, msg)
    finally:
        _unlock(raw)
