# RawStatement, a prepared sqlite3_stmt* (included by sqlnb/_fast.pyx): binding
# (fast paths here, every other value through sqlnb._bind.adapt, THE bind rule),
# stepping (the GIL released) and rows as Python tuples.

cdef inline object _text(const char *p, int n):
    return PyUnicode_DecodeUTF8(p, n, "surrogateescape")


cdef object _column_value(sqlite3_stmt *st, int i):
    cdef int t = sqlite3_column_type(st, i)
    cdef const char *p
    if t == SQLITE_INTEGER:
        return sqlite3_column_int64(st, i)
    elif t == SQLITE_FLOAT:
        return sqlite3_column_double(st, i)
    elif t == SQLITE_TEXT:
        p = <const char*>sqlite3_column_text(st, i)
        return _text(p, sqlite3_column_bytes(st, i))
    elif t == SQLITE_BLOB:
        p = <const char*>sqlite3_column_blob(st, i)
        return PyBytes_FromStringAndSize(p, sqlite3_column_bytes(st, i))
    return None


ctypedef const char *(*_column_text_fn)(sqlite3_stmt *, int) noexcept nogil


@cython.no_gc_clear   # __dealloc__ needs self.conn (its lock) even when collected in a cycle
cdef class RawStatement:
    """A prepared ``sqlite3_stmt*``. Created by ``RawConnection.prepare``."""
    cdef sqlite3_stmt *st
    cdef readonly RawConnection conn
    cdef readonly str sql
    cdef readonly bint done
    cdef bint started                  # a step ran since prepare/bind/reset (see _begin_run)
    cdef object __weakref__

    def __dealloc__(self):
        # Another thread may be using the connection right now, and our SQLite runs
        # without its own mutex (SQLITE_OPEN_NOMUTEX). So finalize only when the
        # connection's lock is free; otherwise (another thread holds it, or this one
        # deeper in the stack, e.g. garbage collected inside a callback) leave the
        # handle to the holder, whose last _unlock finalizes it. Never waits.
        cdef sqlite3_stmt *st = self.st
        cdef RawConnection conn = self.conn
        self.st = NULL
        if st == NULL:
            return
        if conn is None or conn._lock == NULL or conn.db == NULL:
            sqlite3_finalize(st)     # closed by sqlite3_close_v2: a zombie waiting for this
        elif PyThread_acquire_lock(conn._lock, NOWAIT_LOCK):
            sqlite3_finalize(st)
            PyThread_release_lock(conn._lock)
        else:
            conn._doomed.append(<uintptr_t>st)

    cdef int _check(self) except -1:
        if self.st == NULL or self.conn is None or self.conn.db == NULL:
            raise _errors.ConnectionClosedError(
                "Cannot operate on a finalized statement or a closed database.")
        return 0

    def finalize(self):
        _lock(self.conn)
        try:
            if self.st != NULL:
                sqlite3_finalize(self.st)
                self.st = NULL
        finally:
            _unlock(self.conn)

    @property
    def finalized(self):
        return self.st == NULL

    def renew(self):
        """Prepare this statement's SQL again, in place, keeping its bindings.

        For the bdb engine: after BerkeleyDB refused one of its lock waits, the
        statement keeps failing even once the lock is free; a fresh one does not.
        """
        cdef RawStatement fresh
        cdef sqlite3_stmt *old
        self._check()
        fresh, _ = self.conn.prepare(self.sql.encode("utf-8", "surrogateescape"), 0)
        if fresh is None:
            raise _errors.InterfaceError("the statement's SQL no longer prepares to a statement")
        _lock(self.conn)
        try:
            old = self.st
            sqlite3_reset(old)
            sqlite3_transfer_bindings(old, fresh.st)
            self.st = fresh.st
            fresh.st = old  # finalized with ``fresh`` below
            self.done = False
            self.started = False
        finally:
            _unlock(self.conn)
        fresh.finalize()

    def reset(self):
        """Reset to run again (bindings kept). Reports nothing: errors came at step."""
        _lock(self.conn)
        try:
            if self.st != NULL:
                sqlite3_reset(self.st)
                self.done = False
                self.started = False
        finally:
            _unlock(self.conn)

    # --- introspection -----------------------------------------------------
    @property
    def readonly(self):
        self._check()
        return bool(sqlite3_stmt_readonly(self.st))

    @property
    def isexplain(self):
        self._check()
        return sqlite3_stmt_isexplain(self.st)

    @property
    def column_count(self):
        self._check()
        return sqlite3_column_count(self.st)

    cdef list _column_texts(self, _column_text_fn get, object missing):
        """One text per result column from ``get`` (name or declared type); ``missing`` for NULL."""
        cdef int i, n
        cdef const char *p
        _lock(self.conn)
        try:
            self._check()
            n = sqlite3_column_count(self.st)
            out = []
            for i in range(n):
                p = get(self.st, i)
                out.append(p.decode("utf-8", "replace") if p != NULL else missing)
            return out
        finally:
            _unlock(self.conn)

    def column_names(self):
        return self._column_texts(sqlite3_column_name, "")

    def decltypes(self):
        return self._column_texts(sqlite3_column_decltype, None)

    def param_names(self):
        """Names of the parameters SQLite's parser found (``None`` for a bare ``?``)."""
        self._check()
        cdef int i, n = sqlite3_bind_parameter_count(self.st)
        cdef const char *p
        out = []
        for i in range(1, n + 1):
            p = sqlite3_bind_parameter_name(self.st, i)
            out.append(p.decode("utf-8") if p != NULL else None)
        return out

    # --- binding -----------------------------------------------------------
    cdef str _param_where(self, int i):
        """``"parameter :name"`` (or ``"parameter 3"`` for a bare ``?``): how errors name parameter i."""
        cdef const char *p = sqlite3_bind_parameter_name(self.st, i)
        return f"parameter {p.decode('utf-8', 'replace') if p != NULL else i}"

    cdef int _bind_one(self, int i, object v, object where) except -1:
        """Bind ``v`` to parameter ``i``. The common types bind here directly; every other
        value goes through ``sqlnb._bind.adapt`` (the one bind rule; it raises BindError or
        OverflowError for what SQLite cannot store). ``where`` names the value in errors
        ("column 'a', row 3"); None: this parameter (built only when there is an error)."""
        cdef int rc
        cdef Py_ssize_t n
        cdef int64_t x = 0
        cdef bint fits = True
        cdef bytes b
        cdef Py_buffer view
        if v is None:
            rc = sqlite3_bind_null(self.st, i)
        elif isinstance(v, int):            # bool and int subclasses too
            try:
                x = <int64_t>v
            except OverflowError:
                fits = False
            if not fits:                    # the rule's OverflowError, naming the value
                _bind.adapt(v, where or self._param_where(i))
                raise OverflowError(f"{where or self._param_where(i)}: {v} does not fit 64 bits")
            rc = sqlite3_bind_int64(self.st, i, x)
        elif isinstance(v, float):          # numpy.float64 too
            rc = sqlite3_bind_double(self.st, i, <double>v)
        elif isinstance(v, str):
            b = (<str>v).encode("utf-8", "surrogateescape")
            n = PyBytes_GET_SIZE(b)
            if n > 2147483647:
                raise _errors.TooBigError(f"{where or self._param_where(i)}: string too big")
            rc = sqlite3_bind_text(self.st, i, PyBytes_AS_STRING(b), <int>n, SQLITE_TRANSIENT)
        elif isinstance(v, (bytes, bytearray, memoryview)):
            PyObject_GetBuffer(v, &view, PyBUF_SIMPLE)
            try:
                if view.len > 2147483647:
                    raise _errors.TooBigError(f"{where or self._param_where(i)}: blob too big")
                rc = sqlite3_bind_blob(self.st, i, view.buf, <int>view.len, SQLITE_TRANSIENT)
            finally:
                PyBuffer_Release(&view)
        else:
            # numpy scalars, __index__ types, date/time, numbers.Real, ...: the rule decides
            # (its result is one of the types above, so this recursion ends there)
            if where is None:
                where = self._param_where(i)
            return self._bind_one(i, _bind.adapt(v, where), where)
        if rc != SQLITE_OK:
            exc = _error_for(rc, self.conn.db, self.sql)
            exc.add_note(f"while binding {where or self._param_where(i)}")
            raise exc
        return 0

    def bind(self, params):
        """Bind a sequence (``?``, ``?NNN``) or a mapping (``:name``, ``$name``, ``@name``)."""
        cdef int i, n
        cdef const char *p
        _lock(self.conn)
        try:
            self._check()
            n = sqlite3_bind_parameter_count(self.st)
            sqlite3_reset(self.st)
            sqlite3_clear_bindings(self.st)
            self.done = False
            self.started = False
            if params is None:
                params = ()
            if n == 0:
                if isinstance(params, (list, tuple)) and len(params) != 0:
                    raise _errors.ParameterError(
                        f"Incorrect number of bindings supplied. The current statement uses 0, "
                        f"and there are {len(params)} supplied.")
                return
            if type(params) is dict or (type(params) is not tuple and _bind.is_mapping(params)):  # (fast paths of the one rule)
                for i in range(1, n + 1):
                    p = sqlite3_bind_parameter_name(self.st, i)
                    if p == NULL:
                        raise _errors.ParameterError(
                            f"Binding {i} has no name, but you supplied a dictionary "
                            f"(which has only names).")
                    name = p.decode("utf-8")
                    try:
                        v = params[name[1:]]
                    except KeyError:
                        raise _errors.ParameterError(
                            f"You did not supply a value for binding parameter {name}.") from None
                    self._bind_one(i, v, None)
            else:
                if isinstance(params, (str, bytes)):
                    raise _errors.ParameterError("parameters must be a sequence or a mapping, not a string")
                try:
                    seq = params if isinstance(params, (list, tuple)) else tuple(params)
                except TypeError:
                    raise _errors.ParameterError(
                        f"parameters are of unsupported type '{type(params).__name__}'") from None
                if len(seq) != n:
                    raise _errors.ParameterError(
                        f"Incorrect number of bindings supplied. The current statement uses {n}, "
                        f"and there are {len(seq)} supplied.")
                for i in range(1, n + 1):
                    self._bind_one(i, seq[i - 1], None)
        finally:
            _unlock(self.conn)

    # --- stepping ----------------------------------------------------------
    cdef int _step(self) except -1:
        """Step once with the GIL released. 1 = a row, 0 = done."""
        cdef int rc
        cdef RawConnection conn = self.conn
        if self.done:
            return 0
        cdef bint first = not self.started
        if self.started:
            conn._resume_run()
            if conn._pstate.sigint_mark >= 0 and _sigint.count != conn._pstate.sigint_mark:
                # a Ctrl-C lost by Python since the last step (sqlnb/_sigint.py): a core whose
                # progress handler counts within one step only (bdb's 3.7) would not see it
                conn._pstate.sigint_mark = _sigint.count
                sqlite3_reset(self.st)
                self.started = False
                self.done = True
                raise KeyboardInterrupt()
        else:
            conn._begin_run()
            self.started = True
        with nogil:
            rc = _auth_step(conn._ast, self.st)
        if rc != SQLITE_ROW and rc != SQLITE_DONE and first and _auth_took_reprepare(conn):
            # the schema changed since the prepare and SQLite's own recompilation (unchecked) was
            # refused: prepare the statement again ourselves, checked, and run that (no row has
            # come from this run: a re-prepare happens before the program's first step)
            self.started = False
            self.done = True
            self._reprepare()
            self.done = False
            self.started = True
            with nogil:
                rc = _auth_step(conn._ast, self.st)
        if rc == SQLITE_ROW:
            return 1
        self.started = False
        if rc == SQLITE_DONE:
            self.done = True
            return 0
        self.done = True
        raise _step_error(conn, self.st, rc, self.sql)

    cdef int _reprepare(self) except -1:
        """Replace the handle with a fresh prepare of the same text, checked like any prepare
        (authorizer and program check), keeping the bound values."""
        cdef RawConnection conn = self.conn
        cdef sqlite3_stmt *new = NULL
        cdef bytes sql = self.sql.encode("utf-8", "surrogateescape")
        cdef void *prev
        cdef int rc
        sqlite3_reset(self.st)
        conn._pending = None
        _auth_begin(conn)
        prev = _auth_enter_prepare(conn)
        try:
            rc = sqlite3_prepare_v2(conn.db, sql, <int>len(sql), &new, NULL)
        finally:
            _auth_leave_prepare(conn, prev)
        if conn._pending is not None or rc != SQLITE_OK or new == NULL:
            if new != NULL:
                sqlite3_finalize(new)
            if conn._pending is not None:
                exc, conn._pending = conn._pending, None
                raise exc
            raise conn._policy_error(rc if rc != SQLITE_OK else SQLITE_SCHEMA, self.sql)
        try:
            exc = _auth_after_prepare(conn, sql, 0, len(sql))
            if exc is None:
                exc = _auth_verify(conn, new, sql, 0, len(sql))
        except BaseException:
            sqlite3_finalize(new)
            raise
        if exc is not None:
            sqlite3_finalize(new)
            raise exc
        sqlite3_transfer_bindings(self.st, new)
        sqlite3_finalize(self.st)
        self.st = new
        return 0

    def step(self):
        """Advance one row; True while there is a row."""
        _lock(self.conn)
        try:
            self._check()
            return self._step() == 1
        finally:
            _unlock(self.conn)

    def row(self):
        """The current row as a tuple (after ``step()`` returned True)."""
        cdef int i, n
        _lock(self.conn)
        try:
            self._check()
            n = sqlite3_data_count(self.st)
            out = [None] * n
            for i in range(n):
                out[i] = _column_value(self.st, i)
            return tuple(out)
        finally:
            _unlock(self.conn)

    def fetchmany(self, Py_ssize_t size):
        """Step up to ``size`` rows and return them as a list of tuples."""
        cdef int i, n
        cdef Py_ssize_t got = 0
        _lock(self.conn)
        try:
            self._check()
            rows = []
            while got < size and self._step() == 1:
                n = sqlite3_data_count(self.st)
                r = [None] * n
                for i in range(n):
                    r[i] = _column_value(self.st, i)
                rows.append(tuple(r))
                got += 1
            if got:
                self.conn.rows_seen += got  # for progress displays (sqlnb.progress)
            return rows
        finally:
            _unlock(self.conn)

    def run(self):
        """Step until done, discarding rows (for statements run for effect)."""
        _lock(self.conn)
        try:
            self._check()
            while self._step() == 1:
                pass
        finally:
            _unlock(self.conn)
