# The second check of a policy (included by sqlnb/_fast.pyx): each prepared statement's
# program (the opcodes of its EXPLAIN listing) goes to the policy's check_program, which
# sees what SQLite compiled, USING/NATURAL joins too, whatever the authorizer was told.

cdef enum:
    _NVERIFY_OPS = 33
cdef const char *_VERIFY_OPS[33]
_VERIFY_OPS[:] = [b"RowData", b"RowCell", b"Transaction", b"VerifyCookie", b"OpenRead", b"OpenWrite", b"ReopenIdx",
                  b"OpenDup", b"Column", b"Destroy", b"Clear", b"CreateBtree", b"CreateTable",
                  b"CreateIndex", b"SetCookie", b"VUpdate", b"VCreate", b"VDestroy", b"Vacuum",
                  b"IncrVacuum", b"SeekGE", b"SeekGT", b"SeekLE", b"SeekLT", b"IdxGE", b"IdxGT",
                  b"IdxLE", b"IdxLT", b"Found", b"NotFound", b"NoConflict", b"SeekScan",
                  b"IsUnique"]


cdef bint _verify_op(const char *op) noexcept nogil:
    cdef int i
    if op == NULL:
        return False
    for i in range(_NVERIFY_OPS):
        if strcmp(op, _VERIFY_OPS[i]) == 0:
            return True
    return False


cdef class _SchemaQuery:
    """Runs the schema reads of Policy.snapshot_btrees on the connection (only those)."""
    cdef RawConnection conn

    def __call__(self, str sql):
        cdef RawConnection conn = self.conn
        if not (sql.startswith("PRAGMA main.")
                or sql.startswith("SELECT type, name, tbl_name, rootpage, sql FROM main.sqlite_master ")):
            raise ValueError("only the policy's schema reads run here")
        cdef AuthTable t = <AuthTable>conn._auth if conn._auth is not None else None
        conn._verifying = True
        if t is not None:
            t.st.quiet = 1  # the policy's own schema reads: the user's authorizer does not rule on them
        try:
            st, _ = conn.prepare(sql.encode("utf-8"), 0)
            if st is None:
                return []
            try:
                return st.fetchmany(1 << 30)
            finally:
                st.finalize()
        finally:
            conn._verifying = False
            if t is not None:
                t.st.quiet = 0


cdef object _auth_defensive_refusal(RawConnection conn, bytes sql, Py_ssize_t offset):
    """Which wall refused a statement that failed to prepare with SQLITE_ERROR under a
    read-only mode with SQLITE_DBCONFIG_DEFENSIVE on ("table x may not be modified": a shadow
    table)? Prepare it once more with DEFENSIVE off (nothing runs) and let the program check
    name the write. Returns the ReadOnlyError, or None (the original error stands)."""
    cdef AuthTable t
    cdef sqlite3_stmt *st = NULL
    cdef const char *tail = NULL
    cdef int rc, off = 1, on = 0
    cdef void *prev
    if conn._auth is None:
        return None
    t = <AuthTable>conn._auth
    if not (t.defensive and t.st.readonly_mode and t.verify):
        return None
    exc = None
    sqlite3_db_config(conn.db, SQLNB_DBCONFIG_DEFENSIVE, <int>0, &off)
    try:
        _auth_begin(conn)
        prev = _auth_enter_prepare(conn)
        try:
            rc = sqlite3_prepare_v2(conn.db, PyBytes_AS_STRING(sql) + offset,
                                    <int>(PyBytes_GET_SIZE(sql) - offset), &st, &tail)
        finally:
            _auth_leave_prepare(conn, prev)
        conn._pending = None
        if rc != SQLITE_OK or st == NULL:
            if rc != SQLITE_OK:
                exc = conn._policy_error(rc, sql[offset:].decode("utf-8", "replace"))
        else:
            exc = _auth_verify(conn, st, sql, offset, (tail - PyBytes_AS_STRING(sql)) if tail != NULL
                               else PyBytes_GET_SIZE(sql))
    finally:
        if st != NULL:
            sqlite3_finalize(st)
        sqlite3_db_config(conn.db, SQLNB_DBCONFIG_DEFENSIVE, <int>1, &on)
        t.take_refusal()
        conn._pending = None
    if isinstance(exc, _errors.ReadOnlyError):
        return exc
    return None


cdef object _auth_verify(RawConnection conn, sqlite3_stmt *user, bytes data, Py_ssize_t start,
                         Py_ssize_t end):
    """Check the program of a statement just prepared (``EXPLAIN`` of its text, the opcodes
    in VERIFY_OPCODES) with ``Policy.check_program``. Returns the exception to raise, or None.
    Independent of the authorizer: it sees what SQLite compiled, USING/NATURAL joins too."""
    cdef AuthTable t
    cdef sqlite3_stmt *st = NULL
    cdef const char *op
    cdef int rc
    cdef bytes text
    cdef _SchemaQuery q
    cdef void *prev
    if conn._auth is None or conn._verifying:
        return None
    t = <AuthTable>conn._auth
    if not t.verify or sqlite3_stmt_isexplain(user):
        return None
    text = b"EXPLAIN " + data[start:end]
    t.st.quiet = 1      # the user's authorizer already ruled on this statement
    prev = _auth_enter_prepare(conn)
    try:
        rc = sqlite3_prepare_v2(conn.db, text, <int>len(text), &st, NULL)
    finally:
        t.st.quiet = 0
        _auth_leave_prepare(conn, prev)
    sql = data[start:end].decode("utf-8", "replace")
    if rc != SQLITE_OK or st == NULL:
        if st != NULL:
            sqlite3_finalize(st)
        conn._pending = None
        if _sql.first_keyword(sql) == "EXPLAIN":  # (a core without sqlite3_stmt_isexplain)
            return None
        exc = _errors.make_error(SQLITE_AUTH, "policy refused the statement: its program could not be "
                                 "checked (EXPLAIN failed)", cls=_errors.PolicyError, sql=sql)
        exc.reason = "verify"
        return exc
    ops = []
    frame = -1          # each (trigger) sub-program's listing starts again at address 0
    try:
        while True:
            rc = sqlite3_step(st)
            if rc != SQLITE_ROW:
                break
            if sqlite3_column_int64(st, 0) == 0:
                frame += 1
            op = <const char*>sqlite3_column_text(st, 1)
            if _verify_op(op):
                ops.append((op.decode(), sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                            sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 6), frame))
    finally:
        sqlite3_finalize(st)
    if rc != SQLITE_DONE:
        exc = _errors.make_error(SQLITE_AUTH, "policy refused the statement: its program could not be "
                                 "read", cls=_errors.PolicyError, sql=sql)
        exc.reason = "verify"
        return exc
    q = _SchemaQuery.__new__(_SchemaQuery)
    q.conn = conn
    return t.checker(ops, q, sql)
