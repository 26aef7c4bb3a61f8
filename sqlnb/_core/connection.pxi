# RawConnection, an open sqlite3* handle, and its per-connection lock (included by
# sqlnb/_fast.pyx).

# --- one caller at a time per connection ------------------------------------------
# Every entry point below (and RawStatement's deallocation) takes this recursive
# per-connection lock first, waiting for it with the GIL released, so one thread
# at a time uses a connection. Relying on SQLite's own mutex instead would
# deadlock: a thread stepping (GIL released, mutex held) needs the GIL back in
# the progress handler while another thread holding the GIL blocks on the mutex.
# Because of this lock our SQLite opens with SQLITE_OPEN_NOMUTEX (sqlnb/engines/sqlite.py, open_flags):
# SQLite's mutex would only add a lock/unlock to every sqlite3_column_* and bind
# call. Only interrupt() (documented safe from any thread) and the flags stay
# lock-free.
cdef int _lock(RawConnection c) except -1:
    cdef long me
    if c is None or c._lock == NULL:
        return 0
    me = PyThread_get_thread_ident()
    if c._lock_depth > 0 and c._lock_owner == me:
        c._lock_depth += 1
        return 0
    if not PyThread_acquire_lock(c._lock, NOWAIT_LOCK):
        with nogil:
            PyThread_acquire_lock(c._lock, WAIT_LOCK)
    c._lock_owner = me
    c._lock_depth = 1
    return 0


cdef void _unlock(RawConnection c) noexcept:
    if c is None or c._lock == NULL or c._lock_depth <= 0:
        return
    if c._lock_depth == 1 and c._doomed:
        c._finalize_doomed()
    c._lock_depth -= 1
    if c._lock_depth == 0:
        c._lock_owner = 0
        PyThread_release_lock(c._lock)


@cython.no_gc_clear   # __dealloc__ finalizes the statements left in _doomed
cdef class RawConnection:
    """An open ``sqlite3*`` handle. Not for direct use: see ``sqlnb.connect``."""
    cdef sqlite3 *db
    cdef readonly object filename
    cdef readonly int flags
    cdef object _statements           # WeakSet of live RawStatement
    cdef progress_state _pstate
    cdef public object progress_callback   # called (no args) every report_every s while stepping
    cdef public double timeout         # per-statement time limit in seconds (0 = none)
    cdef object _pending               # exception captured by a callback
    cdef object _udf_cause             # (message, exception) of a user function that failed (functions.pxi)
    cdef dict _udfs                    # what functions.pxi registered, to copy to a parallel fetch's workers
    cdef object _user_progress         # the stdlib's set_progress_handler / set_trace_callback (hooks.pxi)
    cdef object _trace
    cdef object _auth_connect_user     # (the authorizer given to connect(),) once set_user_authorizer ran
    cdef public long long rows_seen    # rows fetched so far; a C field the GIL-free fetch loop updates
    cdef readonly object policy        # the policy object install_policy was given (set once)
    cdef bint _verifying               # the policy's own schema reads run (no program check)
    cdef object _auth                  # the compiled authorizer table (auth_table.pxi) the C callback reads
    cdef void *_ast                    # its auth_state (NULL: none): _auth_step marks the stepping statement
    cdef PyThread_type_lock _lock      # see _lock(): one caller at a time
    cdef list _doomed                  # sqlite3_stmt* (as ints) of statements deallocated while
                                       # another caller held the lock; finalized at its last _unlock
    cdef long _lock_owner
    cdef int _lock_depth
    cdef object __weakref__

    def __cinit__(self):
        self.db = NULL
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()
        self._statements = weakref.WeakSet()
        self._doomed = []
        self.timeout = 0.0
        self.rows_seen = 0

    def __init__(self, filename, int flags=SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs=None):
        cdef bytes fn = filename.encode("utf-8") if isinstance(filename, str) else bytes(filename)
        cdef bytes vfsb = vfs.encode() if vfs is not None else None
        cdef const char *zvfs = NULL
        cdef const char *zfn
        cdef int rc
        cdef sqlite3 *db = NULL
        if self.db != NULL or self.filename is not None:
            raise _errors.ProgrammingError(
                "this connection is already open; a raw connection is opened once (its handle, "
                "mode and policy cannot be replaced)")
        if b"\0" in fn:
            raise ValueError("database path contains a NUL character")
        if vfsb is not None:
            zvfs = vfsb
        self.filename = filename
        self.flags = flags
        zfn = fn
        with nogil:
            rc = sqlite3_open_v2(zfn, &db, flags, zvfs)
        if rc != SQLITE_OK:
            exc = self._file_error(_error_for(rc, db, None))
            if db != NULL:
                sqlite3_close(db)
            raise exc
        self.db = db
        sqlite3_extended_result_codes(db, 1)
        # double-quoted string literals on, as in the stdlib and older tools (our build's default,
        # SQLITE_DQS=0, is strict): a schema written by them must read here too
        sqlnb_set_dqs(db, 1)
        self._pstate.owner = <void*>self
        self._pstate.check_signals = 1
        self._pstate.sigint_mark = -1
        sqlite3_progress_handler(db, 1000, _progress_cb, <void*>&self._pstate)

    def __dealloc__(self):
        cdef sqlite3 *db = self.db
        if db != NULL:
            self._finalize_doomed()
        self.db = NULL
        if db != NULL:
            with nogil:
                sqlite3_progress_handler(db, 0, NULL, NULL)
                sqlite3_set_authorizer(db, NULL, NULL)
                sqlnb_close(db)
        if self._lock != NULL:
            PyThread_free_lock(self._lock)
            self._lock = NULL

    cdef int _check(self) except -1:
        if self.db == NULL:
            raise _errors.ConnectionClosedError("Cannot operate on a closed database.")
        return 0

    cdef void _finalize_doomed(self) noexcept:
        """Finalize the statements RawStatement.__dealloc__ left here (with the GIL and the lock held)."""
        cdef list doomed = self._doomed
        if not doomed:               # (None once the garbage collector has cleared this object)
            return
        self._doomed = []
        for p in doomed:
            sqlite3_finalize(<sqlite3_stmt*><uintptr_t>p)

    cdef int _call_progress(self) noexcept:
        if self.progress_callback is None:
            return 0
        try:
            return 1 if self.progress_callback() else 0
        except BaseException as exc:
            self._pending = exc
            return 1

    @property
    def closed(self):
        return self.db == NULL

    @property
    def statements_awaiting_finalize(self):
        """How many deallocated statements wait for the lock's holder to finalize them (tests)."""
        return len(self._doomed)

    def close(self):
        """Finalize every live statement, then close the handle. Idempotent."""
        cdef int rc
        _lock(self)
        try:
            if self.db == NULL:
                return
            for st in list(self._statements):
                (<RawStatement>st).finalize()
            self._finalize_doomed()
            sqlite3_progress_handler(self.db, 0, NULL, NULL)
            sqlite3_set_authorizer(self.db, NULL, NULL)
            rc = sqlnb_close(self.db)
            if rc != SQLITE_OK:
                check_rc(rc, self.db)
            self.db = NULL
        finally:
            _unlock(self)

    def _forget(self):
        """Drop the handle and its statements WITHOUT closing them (a forked child's
        copy of a connection that belongs to the parent: closing it would release
        the parent's locks). The connection then reads as closed."""
        for st in list(self._statements):
            (<RawStatement>st).st = NULL
        self._doomed = []
        self.db = NULL

    def prepare(self, bytes sql, Py_ssize_t offset=0):
        """Prepare the first statement of ``sql[offset:]`` (UTF-8 bytes).

        Returns ``(statement, tail_offset)``; ``statement`` is None when the rest
        is only whitespace and comments. SQLite's tail pointer decides where a
        statement ends.
        """
        cdef sqlite3_stmt *st = NULL
        cdef const char *base
        cdef const char *tail = NULL
        cdef Py_ssize_t n
        cdef int rc
        cdef void *prev
        _lock(self)
        try:
            self._check()
            n = PyBytes_GET_SIZE(sql)
            if offset < 0 or offset > n:
                raise ValueError("offset out of range")
            if n - offset > 2147483646:
                raise _errors.TooBigError("SQL text too long")
            if sql.find(b"\0", offset) != -1:
                # SQLite would stop at the NUL and silently ignore the rest
                raise _errors.ProgrammingError(_files.NUL_IN_SQL)
            base = PyBytes_AS_STRING(sql)
            self._pending = None
            _auth_begin(self)
            prev = _auth_enter_prepare(self)
            try:
                rc = sqlite3_prepare_v2(self.db, base + offset, <int>(n - offset), &st, &tail)
            finally:
                _auth_leave_prepare(self, prev)
            if self._pending is not None:
                if st != NULL:
                    sqlite3_finalize(st)
                exc, self._pending = self._pending, None
                raise exc
            if rc != SQLITE_OK:
                exc = self._policy_error(rc, sql[offset:].decode("utf-8", "replace"))
                if (rc & 0xFF) == SQLITE_ERROR and not isinstance(exc, _errors.PolicyError):
                    if st != NULL:
                        sqlite3_finalize(st)
                        st = NULL
                    exc = _auth_defensive_refusal(self, sql, offset) or exc
                raise exc
            new_offset = (tail - base) if tail != NULL else n
            if st == NULL:
                return None, new_offset
            try:
                exc = _auth_after_prepare(self, sql, offset, new_offset)
                if exc is None:
                    exc = _auth_verify(self, st, sql, offset, new_offset)
            except BaseException:  # the check itself failed: the handle is ours to finalize
                sqlite3_finalize(st)
                raise
            if exc is not None:
                sqlite3_finalize(st)
                raise exc
            stmt = RawStatement.__new__(RawStatement)
            (<RawStatement>stmt).st = st
            (<RawStatement>stmt).conn = self
            (<RawStatement>stmt).sql = sql[offset:new_offset].decode("utf-8", "surrogateescape")
            self._statements.add(stmt)
            return stmt, new_offset
        finally:
            _unlock(self)

    cdef object _file_error(self, exc):
        # file-level errors (locked, not a database, cannot open...) name the file
        return _files.annotate(exc, self.filename, FLAVOUR,  # (the flavour is the file format it reads)
                               readonly=bool(self.flags & SQLITE_OPEN_READONLY))

    cdef object _policy_error(self, int rc, object sql):
        # Refusals of an authorizer policy come back as SQLITE_AUTH (or, from a
        # trigger body or a virtual table's constructor, as SQLITE_ERROR); the policy
        # object knows what it refused (if anything) and builds the clear error.
        exc = self._file_error(_error_for(rc, self.db, sql))
        if ((rc & 0xFF) == SQLITE_AUTH or (rc & 0xFF) == SQLITE_ERROR) and self.policy is not None:
            better = self.policy.explain_refusal(exc)
            if better is not None:
                return better
        return exc

    def interrupt(self):
        """Ask a running statement to stop (safe from any thread)."""
        self._pstate.interrupts += 1
        if self.db != NULL:
            sqlite3_interrupt(self.db)

    def set_double_quoted_strings(self, bint on):
        """Accept double-quoted string literals (on, the default) or not (strict), in DML and DDL.

        Strict needs a core with ``SQLITE_DBCONFIG_DQS_*`` (3.29+): on the bdb engine's older
        core, asking for strict raises FeatureNotSupportedError.
        """
        _lock(self)
        try:
            self._check()
            if sqlnb_set_dqs(self.db, on) != SQLITE_OK:
                raise _errors.FeatureNotSupportedError(
                    f"strict quotes need SQLite 3.29 or later (SQLITE_DBCONFIG_DQS_DML/DDL); the "
                    f"{FLAVOUR} engine's SQLite {HEADER_VERSION} always accepts double-quoted strings")
        finally:
            _unlock(self)

    def changes(self):
        self._check()
        return sqlite3_changes(self.db)

    def total_changes(self):
        self._check()
        return sqlite3_total_changes(self.db)

    def last_insert_rowid(self):
        self._check()
        return sqlite3_last_insert_rowid(self.db)

    @property
    def autocommit(self):
        """True when no transaction is open (``sqlite3_get_autocommit``)."""
        self._check()
        return bool(sqlite3_get_autocommit(self.db))

    def busy_timeout(self, double seconds):
        _lock(self)
        try:
            self._check()
            check_rc(sqlite3_busy_timeout(self.db, <int>(seconds * 1000)), self.db)
        finally:
            _unlock(self)

    def db_readonly(self, name="main"):
        _lock(self)        # walks the attached databases, which another thread's ATTACH may change
        try:
            self._check()
            return sqlite3_db_readonly(self.db, name.encode())
        finally:
            _unlock(self)

    def limit(self, int category, int value=-1):
        self._check()
        return sqlite3_limit(self.db, category, value)

    def errmsg(self):
        _lock(self)
        try:
            self._check()
            return sqlite3_errmsg(self.db).decode("utf-8", "replace")
        finally:
            _unlock(self)

    def set_progress_report(self, double every):
        """Call ``progress_callback`` about every ``every`` seconds while stepping (0: never)."""
        self._pstate.report_every = every
        self._pstate.next_report = (_now() + every) if every > 0 else 0

    # --- running a statement: shared by every step loop -------------------
    # A step loop calls ``_begin_run()`` before the FIRST step of a statement
    # (after prepare/bind/reset): it starts the statement's time limit and the
    # progress schedule. Later steps of the same statement (fetching more rows)
    # call ``_resume_run()``, which keeps both, so a statement that returns rows
    # steadily still meets its limit and keeps reporting progress.
    # Both may raise: a Ctrl-C can land in the Python code of sqlnb._sigint they run, and it must
    # leave as the step's KeyboardInterrupt, not be lost in a function that cannot raise.
    cdef int _begin_run(self) except -1:
        self._pending = None
        self._udf_cause = None
        _auth_begin(self)
        self._pstate.abort_reason = 0
        self._pstate.deadline = (_now() + self.timeout) if self.timeout > 0 else 0
        if self._pstate.report_every > 0:
            self._pstate.next_report = _now() + self._pstate.report_every
        self._pstate.sigint_mark = _sigint.mark()
        return 0

    cdef inline int _resume_run(self) except -1:
        self._pending = None
        self._pstate.abort_reason = 0   # (the Ctrl-C mark stays the statement's, set by _begin_run)
        return 0

    cdef object _run_error(self, int rc, object sql):
        """The exception for a failed step: pending KeyboardInterrupt/callback error first."""
        cdef int reason = self._pstate.abort_reason
        self._pstate.abort_reason = 0
        if self._pstate.sigint_mark >= 0:   # a Ctrl-C that stopped this run is spent (sqlnb/_sigint.py)
            self._pstate.sigint_mark = _sigint.count
        if self._pending is not None:
            exc, self._pending = self._pending, None
            if isinstance(exc, KeyboardInterrupt):
                # raised afresh from the step: no frames of the progress handler
                return exc.with_traceback(None)
            return exc
        if self._udf_cause is not None:  # a user function raised: the SQL error naming it, caused by it
            return _udf_error(self, rc, sql)
        if (rc & 0xFF) == SQLITE_INTERRUPT:  # the time limit, interrupt() or a callback's stop
            if reason == 2:
                exc = _errors.timeout_error(self.timeout, sql)
                exc.timeout = self.timeout
                return exc
            return _errors.interrupted(sql)
        return self._policy_error(rc, sql)

