# The stdlib's set_progress_handler and set_trace_callback (included by sqlnb/_fast.pyx).
#
# sqlnb's own progress handler (progress.pxi: Ctrl-C, time limits, progress reports) stays
# installed: a user's handler is LAYERED under it. SQLite then calls ours every
# min(n, 1000) VM instructions, and ours calls the user's about every n. A true result stops
# the statement (InterruptError, "interrupted", as in the stdlib); an exception stops it
# with an error naming the handler, the exception as its cause (functions.pxi's rule).
# Tracing uses sqlite3_trace_v2 (SQLITE_TRACE_STMT), or sqlite3_trace on the older core; the
# callback receives each statement's SQL as it runs (expanded with its bound values where
# the core can). An exception in it is reported as unraisable and otherwise ignored.


cdef int _progress_user(progress_state *ps) noexcept with gil:
    cdef RawConnection c = <RawConnection>ps.owner
    handler = c._user_progress
    if handler is None:
        return 0
    try:
        return 1 if handler() else 0
    except BaseException as exc:
        text = str(exc)
        _udf_keep(c, f"the progress handler raised {type(exc).__name__}" + (f": {text}" if text else ""), exc)
        return 1


def set_progress_handler(RawConnection raw, handler, int n):
    """Call ``handler()`` about every ``n`` SQLite VM instructions (None or n <= 0: none)."""
    cdef int every = 1000
    _lock(raw)
    try:
        raw._check()
        if handler is None or n <= 0:
            raw._user_progress = None
            raw._pstate.user_every = 0
        else:
            raw._user_progress = handler
            every = n if n < 1000 else 1000
            raw._pstate.user_calls = 0
            raw._pstate.user_every = (n + every - 1) // every
        sqlite3_progress_handler(raw.db, every, _progress_cb, <void*>&raw._pstate)
    finally:
        _unlock(raw)


cdef void _trace_call(RawConnection c, const char *sql) noexcept with gil:
    cb = c._trace
    if cb is not None and sql != NULL:
        cb(PyUnicode_DecodeUTF8(sql, strlen(sql), "replace"))


cdef int _trace_v2(unsigned int kind, void *ctx, void *p, void *x) noexcept nogil:
    cdef char *expanded
    if kind != SQLITE_TRACE_STMT:
        return 0
    expanded = sqlite3_expanded_sql(<sqlite3_stmt*>p)
    if expanded != NULL:
        _trace_call(<RawConnection>ctx, expanded)
        sqlite3_free(expanded)
    else:
        _trace_call(<RawConnection>ctx, <const char*>x)
    return 0


cdef void _trace_v1(void *ctx, const char *sql) noexcept nogil:
    _trace_call(<RawConnection>ctx, sql)


def set_trace_callback(RawConnection raw, callback):
    """Call ``callback(sql)`` for each statement as it starts (None: stop)."""
    cdef sqlnb_xtrace_v2 v2 = NULL
    cdef sqlnb_xtrace_v1 v1 = NULL
    _lock(raw)
    try:
        raw._check()
        raw._trace = callback
        if callback is not None:
            v2, v1 = _trace_v2, _trace_v1
        if SQLNB_HAVE_TRACE_V2:
            sqlite3_trace_v2(raw.db, SQLITE_TRACE_STMT if callback is not None else 0, v2, <void*>raw)
        else:
            sqlnb_trace_v1(raw.db, v1, <void*>raw)
    finally:
        _unlock(raw)


class _LayeredAuthorizer:
    """The authorizer given to connect(), then the one set_authorizer installed: both must allow."""
    __slots__ = ("first", "second")

    def __init__(self, first, second):
        self.first, self.second = first, second

    def __call__(self, action, a1, a2, db, inner):
        r = self.first(action, a1, a2, db, inner)
        if type(r) is not int or r != SQLITE_OK:
            return r
        return self.second(action, a1, a2, db, inner)


def set_user_authorizer(RawConnection raw, callback):
    """The stdlib's set_authorizer, LAYERED: ``callback(action, arg1, arg2, db, source)`` is asked
    only about what the connection's mode and policies allow (it can refuse more, never allow
    what they refuse), after the authorizer given to ``connect()``. None removes it."""
    cdef AuthTable table
    _lock(raw)
    try:
        raw._check()
        if raw._auth is None:
            raise _errors.ProgrammingError("this connection has no policy installed (open it with sqlnb.connect)")
        table = <AuthTable>raw._auth
        if raw._auth_connect_user is None:
            raw._auth_connect_user = (table.user,)
        first = raw._auth_connect_user[0]
        if callback is None:
            effective = first
        elif first is None:
            effective = callback
        else:
            effective = _LayeredAuthorizer(first, callback)
        table.user = effective
        table.st.py_authorizer = <PyObject*>effective if effective is not None else NULL
    finally:
        _unlock(raw)
