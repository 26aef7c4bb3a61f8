# The columnar insert loop behind Connection.to_table (issue: DataFrame export).
#
# Included by sqlnb/_fast.pyx (so it is compiled once per flavour and can use the
# RawConnection / RawStatement C fields). sqlnb/export/table.py decides the schema
# and turns every DataFrame column into one "column spec" here: a pointer to
# the buffer pandas / Arrow already hold (int64 or float64 values, a NULL mask,
# Arrow validity bitmap + offsets + UTF-8 data) and a kind saying how to bind
# it. One prepared INSERT is then bound and stepped row by row; when no column
# needs Python objects, a whole chunk runs with the GIL released.



cdef enum:
    EXP_NULL = 0       # every value NULL
    EXP_INT64 = 1      # int64 values (+ optional mask, 1 = NULL)
    EXP_FLOAT64 = 2    # float64 values, NaN -> NULL (+ optional mask)
    EXP_TEXT = 3       # Arrow string: validity bitmap, int32/int64 offsets, UTF-8 data
    EXP_BLOB = 4       # Arrow binary: same layout, bound as BLOB
    EXP_DATETIME = 5   # int64 ticks since the epoch -> 'YYYY-MM-DD HH:MM:SS[.f][+00:00]' TEXT
    EXP_OBJECT = 6     # a list of Python objects bound by their own types (needs the GIL)
    EXP_CATEGORY = 7   # int64 codes into another spec (-1 -> NULL)


cdef struct exp_col:
    int kind
    int needs_gil
    const int64_t *i64
    const double *f64
    const uint8_t *mask          # numpy bool mask, nonzero = NULL
    const uint8_t *validity      # Arrow bitmap, bit set = valid
    int64_t offset               # Arrow: index into validity/offsets of row 0 (array offset - lo)
    Py_ssize_t lo, hi            # Arrow: the rows the current buffers hold (one chunk of the column)
    const int32_t *off32
    const int64_t *off64
    const char *data
    int64_t ticks                # datetime: ticks per second (1, 10**3, 10**6, 10**9)
    int frac                     # datetime: fractional digits written (0, 3, 6, 9)
    int utc                      # datetime: append '+00:00'
    int child                    # category: index of the categories' spec
    PyObject *objs               # object: borrowed list (kept alive by ExportColumns._keep)
    char buf[48]                 # datetime: text of the current value


cdef const char *_EMPTY = ""


cdef inline const uint8_t *_u8(const uint8_t[::1] mv) noexcept:
    return &mv[0] if mv.shape[0] > 0 else NULL


cdef inline int64_t _floordiv(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef inline char *_digits(char *p, int64_t v, int width) noexcept nogil:
    cdef int k
    for k in range(width - 1, -1, -1):
        p[k] = <char>(48 + v % 10)
        v //= 10
    return p + width


# -> length of the text written into out (at most 35 bytes)
cdef int _format_datetime(exp_col *c, int64_t v, char *out) noexcept nogil:
    """ISO-8601 text of ``v`` ticks since 1970-01-01 (proleptic Gregorian, UTC)."""
    cdef int64_t secs = _floordiv(v, c.ticks)
    cdef int64_t sub = v - secs * c.ticks
    cdef int64_t days = _floordiv(secs, 86400)
    cdef int64_t sod = secs - days * 86400
    cdef int64_t z, era, doe, yoe, y, doy, mp, d, m, scale
    cdef int k
    cdef char *p = out
    # days -> civil date (H. Hinnant's algorithm)
    z = days + 719468
    era = _floordiv(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    p = _digits(p, y, 4)
    p[0] = 45; p += 1
    p = _digits(p, m, 2)
    p[0] = 45; p += 1
    p = _digits(p, d, 2)
    p[0] = 32; p += 1
    p = _digits(p, sod // 3600, 2)
    p[0] = 58; p += 1
    p = _digits(p, (sod // 60) % 60, 2)
    p[0] = 58; p += 1
    p = _digits(p, sod % 60, 2)
    if c.frac > 0:
        p[0] = 46; p += 1
        scale = 1
        for k in range(c.frac):
            scale *= 10
        # export/columns.py picks frac so that this division is exact
        if scale >= c.ticks:
            sub = sub * (scale // c.ticks)
        else:
            sub = sub // (c.ticks // scale)
        p = _digits(p, sub, c.frac)
    if c.utc:
        p[0] = 43; p[1] = 48; p[2] = 48; p[3] = 58; p[4] = 48; p[5] = 48
        p += 6
    return <int>(p - out)


def format_datetimes(values, int64_t ticks, int frac, bint utc):
    """The TEXT the insert loop writes for each int64 tick count (for tests and the docs)."""
    cdef exp_col c
    cdef char out[48]
    cdef int n
    c.ticks = ticks
    c.frac = frac
    c.utc = utc
    res = []
    for v in values:
        n = _format_datetime(&c, <int64_t>v, out)
        res.append(out[:n].decode("ascii"))
    return res


# -> SQLite result code; 1000 = needs the GIL (object value), 1001 = value too big
cdef int _bind_value(sqlite3_stmt *st, int p, exp_col *cols, int j, Py_ssize_t i) noexcept nogil:
    cdef exp_col *c = &cols[j]
    cdef int64_t code, a, b, k
    cdef double x
    cdef const char *ptr
    cdef int n
    while c.kind == EXP_CATEGORY:
        code = c.i64[i]
        if code < 0:
            return sqlite3_bind_null(st, p)
        i = <Py_ssize_t>code
        c = &cols[c.child]
    if c.kind == EXP_INT64:
        if c.mask != NULL and c.mask[i]:
            return sqlite3_bind_null(st, p)
        return sqlite3_bind_int64(st, p, c.i64[i])
    elif c.kind == EXP_FLOAT64:
        x = c.f64[i]
        if x != x or (c.mask != NULL and c.mask[i]):
            return sqlite3_bind_null(st, p)
        return sqlite3_bind_double(st, p, x)
    elif c.kind == EXP_TEXT or c.kind == EXP_BLOB:
        k = c.offset + i
        if c.validity != NULL and not ((c.validity[k >> 3] >> (k & 7)) & 1):
            return sqlite3_bind_null(st, p)
        if c.off64 != NULL:
            a = c.off64[k]
            b = c.off64[k + 1]
        else:
            a = c.off32[k]
            b = c.off32[k + 1]
        if b - a > 2147483647:
            return 1001
        ptr = (c.data + a) if c.data != NULL else _EMPTY
        if c.kind == EXP_TEXT:
            return sqlite3_bind_text(st, p, ptr, <int>(b - a), SQLITE_STATIC)
        return sqlite3_bind_blob(st, p, <const void*>ptr, <int>(b - a), SQLITE_STATIC)
    elif c.kind == EXP_DATETIME:
        if c.i64[i] == INT64_MIN or (c.mask != NULL and c.mask[i]):
            return sqlite3_bind_null(st, p)
        n = _format_datetime(c, c.i64[i], c.buf)
        # TRANSIENT: one buffer per column, and a multi-row INSERT binds several rows before it steps
        return sqlite3_bind_text(st, p, c.buf, n, SQLITE_TRANSIENT)
    elif c.kind == EXP_NULL:
        return sqlite3_bind_null(st, p)
    return 1000


cdef class ExportColumns:
    """The columns of one DataFrame, as buffers the insert loop binds from.

    Built by ``sqlnb.export``: ``add_*`` once per column (in INSERT parameter
    order), then ``insert(stmt, start, stop)`` per chunk of rows.
    """
    cdef exp_col *cols
    cdef int n                      # specs in use (bound columns + category children)
    cdef int cap
    cdef readonly int nbound        # how many specs are INSERT parameters
    cdef readonly Py_ssize_t nrows
    cdef readonly bint needs_gil
    cdef list _keep
    cdef list _names
    cdef object _null_check         # callable(v) -> True when an object value is missing (None/NaN/NA/NaT)
    cdef int _interrupts0           # the connection's interrupt counter when the export started

    def __cinit__(self, Py_ssize_t nrows, null_check=None):
        self.nrows = nrows
        self.cap = 16
        self.cols = <exp_col*>calloc(self.cap, sizeof(exp_col))
        if self.cols == NULL:
            raise MemoryError()
        self._keep = []
        self._names = []
        self._null_check = null_check

    def __dealloc__(self):
        free(self.cols)
        self.cols = NULL

    cdef exp_col *_new(self, int kind, str name, Py_ssize_t length, bint bound) except NULL:
        cdef exp_col *grown
        if bound and self.n != self.nbound:
            raise ValueError("bound columns must be added before category children")
        if self.n == self.cap:
            grown = <exp_col*>calloc(self.cap * 2, sizeof(exp_col))
            if grown == NULL:
                raise MemoryError()
            for k in range(self.n):
                grown[k] = self.cols[k]
            free(self.cols)
            self.cols = grown
            self.cap *= 2
        self.cols[self.n].kind = kind
        self.cols[self.n].child = -1
        self._names.append(name)
        self.n += 1
        if bound:
            self.nbound += 1
        return &self.cols[self.n - 1]

    cdef int _length(self, bint bound, Py_ssize_t length) except -1:
        if bound and length < self.nrows:
            raise ValueError(f"column buffer holds {length} values, the frame has {self.nrows} rows")
        return 0

    def add_null(self, str name, bint bound=True):
        self._new(EXP_NULL, name, self.nrows, bound)
        return self.n - 1

    def add_int64(self, str name, const int64_t[::1] values, const uint8_t[::1] mask=None, bint bound=True):
        self._length(bound, values.shape[0])
        if mask is not None:
            self._length(bound, mask.shape[0])
            if mask.shape[0] != values.shape[0]:
                raise ValueError("mask and values differ in length")
        cdef exp_col *c = self._new(EXP_INT64, name, values.shape[0], bound)
        c.i64 = &values[0] if values.shape[0] else NULL
        c.mask = _u8(mask) if mask is not None else NULL
        self._keep.append((values, mask))
        return self.n - 1

    def add_float64(self, str name, const double[::1] values, const uint8_t[::1] mask=None, bint bound=True):
        self._length(bound, values.shape[0])
        if mask is not None and mask.shape[0] != values.shape[0]:
            raise ValueError("mask and values differ in length")
        cdef exp_col *c = self._new(EXP_FLOAT64, name, values.shape[0], bound)
        c.f64 = &values[0] if values.shape[0] else NULL
        c.mask = _u8(mask) if mask is not None else NULL
        self._keep.append((values, mask))
        return self.n - 1

    def add_datetime(self, str name, const int64_t[::1] values, int64_t ticks, int frac, bint utc,
                     const uint8_t[::1] mask=None, bint bound=True):
        if ticks not in (1, 1000, 1000000, 1000000000) or frac not in (0, 3, 6, 9):
            raise ValueError("datetime ticks/frac out of range")
        self._length(bound, values.shape[0])
        if mask is not None and mask.shape[0] != values.shape[0]:
            raise ValueError("mask and values differ in length")
        cdef exp_col *c = self._new(EXP_DATETIME, name, values.shape[0], bound)
        c.i64 = &values[0] if values.shape[0] else NULL
        c.mask = _u8(mask) if mask is not None else NULL
        c.ticks = ticks
        c.frac = frac
        c.utc = utc
        self._keep.append((values, mask))
        return self.n - 1

    def add_arrow(self, str name, Py_ssize_t length, int64_t offset, validity, offsets, data,
                  bint wide, bint blob=False, bint bound=True, Py_ssize_t rows=-1):
        """An Arrow (large_)string/binary array from its buffers (``pyarrow.Array.buffers()``).

        ``rows``: the column's length when this array is only its first chunk (rows
        0..length-1); ``set_arrow_chunk`` then points it at the next ones.
        """
        self._length(bound, length if rows < 0 else rows)
        cdef exp_col *c = self._new(EXP_BLOB if blob else EXP_TEXT, name, length, bound)
        self._point_arrow(c, 0, length, offset, validity, offsets, data, wide)
        return self.n - 1

    def set_arrow_chunk(self, int slot, Py_ssize_t row0, Py_ssize_t length, int64_t offset,
                        validity, offsets, data, bint wide):
        """Point the Arrow column ``slot`` at another chunk: rows row0..row0+length-1.
        ``insert`` refuses row ranges outside the chunk a column points at."""
        if slot < 0 or slot >= self.nbound or self.cols[slot].kind not in (EXP_TEXT, EXP_BLOB):
            raise ValueError("not a bound Arrow column")
        if row0 < 0 or length < 0 or row0 + length > self.nrows:
            raise ValueError("Arrow chunk outside the frame's rows")
        self._point_arrow(&self.cols[slot], row0, length, offset, validity, offsets, data, wide)

    cdef int _point_arrow(self, exp_col *c, Py_ssize_t row0, Py_ssize_t length, int64_t offset,
                          validity, offsets, data, bint wide) except -1:
        cdef const uint8_t[::1] vb = None
        cdef const uint8_t[::1] ob = offsets
        cdef const uint8_t[::1] db = data if data is not None else b""
        cdef int width = 8 if wide else 4
        cdef int64_t first, last
        if offset < 0 or ob.shape[0] < (offset + length + 1) * width:
            raise ValueError("Arrow offsets buffer too short")
        if validity is not None:
            vb = validity
            if vb.shape[0] * 8 < offset + length:
                raise ValueError("Arrow validity buffer too short")
        if wide:
            first = (<const int64_t*>&ob[0])[offset]
            last = (<const int64_t*>&ob[0])[offset + length]
        else:
            first = (<const int32_t*>&ob[0])[offset]
            last = (<const int32_t*>&ob[0])[offset + length]
        if first < 0:
            raise ValueError("Arrow offsets negative")
        if last > db.shape[0]:
            raise ValueError("Arrow data buffer shorter than its offsets")
        c.off64 = <const int64_t*>&ob[0] if wide else NULL
        c.off32 = NULL if wide else <const int32_t*>&ob[0]
        c.offset = offset - row0
        c.lo = row0
        c.hi = row0 + length
        c.validity = _u8(vb) if vb is not None else NULL
        c.data = <const char*>_u8(db)
        self._keep.append((validity, offsets, data))
        return 0

    def add_objects(self, str name, list values, bint bound=True):
        """Python objects bound by their own types (None/NaN/NA/NaT -> NULL). Needs the GIL."""
        self._length(bound, PyList_GET_SIZE(values))
        cdef exp_col *c = self._new(EXP_OBJECT, name, PyList_GET_SIZE(values), bound)
        c.objs = <PyObject*>values
        c.needs_gil = 1
        self._keep.append(values)
        self.needs_gil = True
        return self.n - 1

    def reserve_category(self, str name):
        """Reserve the bound slot of a categorical column; fill it with set_category()."""
        self._new(EXP_CATEGORY, name, self.nrows, True)
        self.cols[self.n - 1].child = -1
        return self.n - 1

    def set_category(self, int slot, const int64_t[::1] codes, int child, Py_ssize_t ncategories):
        cdef Py_ssize_t k
        if slot < 0 or slot >= self.nbound or self.cols[slot].kind != EXP_CATEGORY:
            raise ValueError("not a reserved category slot")
        if child < self.nbound or child >= self.n:
            raise ValueError("category child must be an unbound spec")
        self._length(True, codes.shape[0])
        for k in range(codes.shape[0]):
            if codes[k] >= ncategories:
                raise ValueError("category code out of range")
        if self.cols[child].kind == EXP_CATEGORY:
            raise ValueError("nested categories")
        self.cols[slot].i64 = &codes[0] if codes.shape[0] else NULL
        self.cols[slot].child = child
        self.cols[slot].needs_gil = self.cols[child].needs_gil
        self._keep.append(codes)
        return slot

    cdef int _bind_object(self, RawStatement stmt, int j, Py_ssize_t i, int p) except -1:
        """Bind spec ``j``'s value at row ``i`` to parameter ``p``, holding the GIL (object columns)."""
        cdef exp_col *c = &self.cols[j]
        cdef int rc
        cdef Py_ssize_t row = i
        while c.kind == EXP_CATEGORY:
            if c.i64[row] < 0:
                return check_rc(sqlite3_bind_null(stmt.st, p), stmt.conn.db, stmt.sql)
            row = <Py_ssize_t>c.i64[row]
            c = &self.cols[c.child]
        v = <object>PyList_GET_ITEM(<object>c.objs, row)
        if v is None or (self._null_check is not None and self._null_check(v)):
            rc = sqlite3_bind_null(stmt.st, p)
            return check_rc(rc, stmt.conn.db, stmt.sql)
        # the parameters' rule (RawStatement._bind_one: its fast paths, then sqlnb._bind.adapt)
        try:
            return stmt._bind_one(p, v, f"column {self._names[j]!r}, row {i}")
        except _errors.BindError as exc:
            exc.add_note(f"convert the column first, e.g. df[{self._names[j]!r}].astype(str)")
            raise

    cdef int _steps(self, sqlite3_stmt *st, void *ast, Py_ssize_t *pi, Py_ssize_t stop, int k,
                    int *pj, int *pb, int *prc, progress_state *ps, int i0, bint one) noexcept nogil:
        """Bind the columns that need no GIL for ``k`` rows from row ``pi[0]`` on and step, then
        the next ``k`` rows, until ``stop`` (or after one step when ``one``). Returns 0 when done,
        1 a bind failed (``pj``/``pb``: the column and row within the step; ``prc``: its code),
        2 the step failed (``prc``) or 3 ``interrupt()`` was called; ``pi`` is the failing step's
        first row."""
        cdef int nb = self.nbound
        cdef int b, j, rc
        while pi[0] < stop:
            for b in range(k):
                for j in range(nb):
                    if self.cols[j].needs_gil:
                        continue
                    rc = _bind_value(st, b * nb + j + 1, self.cols, j, pi[0] + b)
                    if rc != SQLITE_OK:
                        pj[0] = j
                        pb[0] = b
                        prc[0] = rc
                        return 1
            rc = _auth_step(ast, st)
            if rc != SQLITE_DONE:
                prc[0] = rc
                return 2
            sqlite3_reset(st)
            pi[0] += k
            if ps.interrupts != i0:
                return 3
            if one:
                return 0
        return 0

    def insert(self, RawStatement stmt, Py_ssize_t start, Py_ssize_t stop, bint first=False):
        """Bind and step rows ``start..stop-1`` through ``stmt`` (see ``_insert``), holding the
        connection's lock: our SQLite has no mutex of its own (see _lock in connection.pxi)."""
        _lock(stmt.conn)
        try:
            return self._insert(stmt, start, stop, first)
        finally:
            _unlock(stmt.conn)

    def _insert(self, RawStatement stmt, Py_ssize_t start, Py_ssize_t stop, bint first):
        """Bind and step rows ``start..stop-1`` through ``stmt``: an INSERT of ``k`` rows per step
        (``k * nbound`` parameters, ``VALUES (...), (...)``); ``stop - start`` must be a multiple of k.

        Returns the number of rows inserted. ``first``: start the connection's
        statement clock (the time limit covers the whole insert from here).
        On failure the exception says which column/row (for a step of k > 1
        rows: ``exc.rows``, the range that step held); nothing is rolled back
        here (export/table.py owns the transaction).
        """
        stmt._check()
        cdef RawConnection conn = stmt.conn
        cdef sqlite3_stmt *st = stmt.st
        cdef int nb = self.nbound
        cdef int j = 0
        cdef int b = 0               # row within the step
        cdef int k                   # rows per step
        cdef int rc = SQLITE_OK
        cdef int failed = 0          # 1 bind, 2 step
        cdef Py_ssize_t i = start    # first row of the current step
        cdef Py_ssize_t done = 0
        cdef progress_state *ps = &conn._pstate
        cdef int i0
        cdef int nparams = sqlite3_bind_parameter_count(st)
        if nb == 0 or nparams % nb != 0 or nparams == 0:
            raise _errors.ParameterError(
                f"the INSERT takes {nparams} parameters, not a multiple of the {nb} columns given")
        k = nparams // nb
        if start < 0 or stop > self.nrows or start > stop:
            raise ValueError("row range out of bounds")
        if (stop - start) % k != 0:
            raise ValueError(f"{stop - start} rows do not fill steps of {k} rows")
        for j in range(nb):
            if (self.cols[j].kind == EXP_TEXT or self.cols[j].kind == EXP_BLOB) and start < stop and (
                    start < self.cols[j].lo or stop > self.cols[j].hi):
                raise ValueError(f"rows {start}..{stop - 1} are not all in the Arrow chunk column "
                                 f"{self._names[j]!r} points at (rows {self.cols[j].lo}..{self.cols[j].hi - 1})")
        j = 0
        if first:
            conn._begin_run()
            # SQLite forgets an interrupt that lands between two rows (no statement running
            # then); RawConnection.interrupt() also bumps this counter, polled per row
            self._interrupts0 = ps.interrupts
        elif ps.deadline > 0 and _now() >= ps.deadline:
            # the progress handler checks the clock inside a step; an old core (bdb's 3.7)
            # never calls it for statements as short as one INSERT, so check between chunks too
            ps.abort_reason = 2
            raise conn._run_error(SQLITE_INTERRUPT, stmt.sql)
        i0 = self._interrupts0
        sqlite3_reset(st)
        if not self.needs_gil:       # the whole chunk without the GIL
            with nogil:
                failed = self._steps(st, conn._ast, &i, stop, k, &j, &b, &rc, ps, i0, False)
        else:                        # per step: the object columns with the GIL, then the rest
            while i < stop and failed == 0:
                for b in range(k):
                    for j in range(nb):
                        if self.cols[j].needs_gil:
                            try:
                                self._bind_object(stmt, j, i + b, b * nb + j + 1)
                            except BaseException:
                                sqlite3_reset(st)
                                sqlite3_clear_bindings(st)
                                raise
                with nogil:
                    failed = self._steps(st, conn._ast, &i, stop, k, &j, &b, &rc, ps, i0, True)
        done = i - start
        if failed == 0:
            # drop the pointers into the frame's buffers before they can go away
            sqlite3_clear_bindings(st)
            return done
        name = self._names[j] if failed == 1 else None
        if failed == 3:
            sqlite3_clear_bindings(st)
            exc = _errors.interrupted(stmt.sql)
            exc.add_note(f"Connection.interrupt() stopped the export after {i} rows")
            raise exc
        if failed == 1:
            i += b                   # the row being bound
            sqlite3_reset(st)
            sqlite3_clear_bindings(st)
            if rc == 1001:
                raise _errors.TooBigError(f"column {name!r}, row {i}: value larger than 2 GiB")
            exc = _error_for(rc, conn.db, stmt.sql)
            exc.add_note(f"while binding column {name!r} of row {i}")
            raise exc
        exc = _step_error(conn, st, rc, stmt.sql)
        sqlite3_clear_bindings(st)
        if isinstance(exc, BaseException):
            try:
                if k == 1:
                    exc.add_note(f"while inserting row {i} (0-based position in the frame)")
                    exc.row = i
                else:
                    exc.add_note(f"while inserting rows {i}..{i + k - 1} (0-based positions in the frame)")
                    exc.rows = (i, i + k)
            except (AttributeError, TypeError):
                pass
        raise exc
