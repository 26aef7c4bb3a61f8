# Result codes to exceptions (included by sqlnb/_fast.pyx). Every error is classified
# by its result code through sqlnb.errors (CODE_TO_CLASS), never by its message; the
# time-limit and interrupt errors come from sqlnb.errors.timeout_error / interrupted.

cdef object _error_for(int rc, sqlite3 *db, object sql):
    cdef int ext = rc
    cdef int offset = -1
    if db != NULL:
        msg = PyUnicode_DecodeUTF8(sqlite3_errmsg(db), strlen(sqlite3_errmsg(db)), "replace")
        ext = sqlite3_extended_errcode(db)
        if (ext & 0xFF) != (rc & 0xFF):
            ext = rc
        if SQLNB_HAVE_ERROR_OFFSET:
            offset = sqlite3_error_offset(db)
    else:
        msg = PyUnicode_DecodeUTF8(sqlite3_errstr(rc), strlen(sqlite3_errstr(rc)), "replace")
    return _errors.make_error(rc, msg, extended_code=ext, error_offset=offset, sql=sql)


cdef int check_rc(int rc, sqlite3 *db, object sql=None) except -1:
    """Raise the mapped exception for a failing result code (never overwrites a pending one)."""
    if rc == SQLITE_OK or rc == SQLITE_ROW or rc == SQLITE_DONE:
        return 0
    raise _error_for(rc, db, sql)


cdef object _step_error(RawConnection conn, sqlite3_stmt *st, int rc, object sql):
    """The exception for a step that returned ``rc`` (not ROW/DONE), the statement reset.

    The one rule for every step loop (RawStatement, the fetch loop, the export loop):
    reset first, then build the error. The old (3.7, BerkeleyDB's) core reports the
    real error of a failed step only after ``sqlite3_reset``: its step answers a bare
    SQLITE_ERROR with a generic message and reset returns the statement's own code
    (and sets its message). A newer core returns the same code and message from both.
    So a bare SQLITE_ERROR takes the code reset returned when reset reports one;
    a pending Python exception, the time limit and the policy's explanation come
    first (RawConnection._run_error)."""
    cdef int real = sqlite3_reset(st)
    if (rc & 0xFF) == SQLITE_ERROR and real != SQLITE_OK:
        rc = real
    return conn._run_error(rc, sql)
