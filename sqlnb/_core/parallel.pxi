# Fetch's parallel parts (included by sqlnb/_fast.pyx after fetch.pxi): appending one
# Fetch to another, rowid-range parts written in place (reserve / part / join_parts),
# and the connection state a parallel fetch shares (sqlnb/frames/parallel.py): one WAL snapshot
# for every worker, the settings the workers copy, the interrupts asked for.

cdef int _join_text(_fstate *a, _col *x, size_t na, _col *y, size_t nb) noexcept nogil:
    """Put y's TEXT/BLOB offsets and bytes (``nb`` rows) after row ``na`` of a's column x
    (rows before ``na`` already joined). 0 or _OOM."""
    cdef size_t i
    cdef int64_t base
    if y.offs == NULL and x.offs == NULL:
        return 0
    if x.offs == NULL and _need_offs(a, x) != 0:
        return _OOM
    base = <int64_t>x.data_len
    if y.offs == NULL:
        for i in range(nb):
            x.offs[na + i + 1] = base
        return 0
    for i in range(nb):
        x.offs[na + i + 1] = base + y.offs[i + 1]
    if y.data_len:
        if x.data_len + y.data_len > x.data_cap and _need_data(x, y.data_len) != 0:
            return _OOM
        memcpy(x.data + x.data_len, y.data, y.data_len)
        x.data_len += y.data_len
    return 0


cdef void _join_counts(_col *x, _col *y) noexcept nogil:
    cdef int i
    for i in range(6):
        x.counts[i] += y.counts[i]
    x.bad_utf8 = x.bad_utf8 or y.bad_utf8


cdef size_t _copy_bytes(_fstate *b, int j) noexcept:
    """About how many bytes appending b's column j copies: tags, slots, TEXT/BLOB offsets and bytes."""
    cdef _col *y = &b.cols[j]
    return b.n * 9 + (b.n * 8 + y.data_len if y.offs != NULL else 0)


cdef int _append_cols(_fstate *a, _fstate *b, int j0, int j1) noexcept nogil:
    """Copy b's columns j0..j1-1 after a's rows (a's row arrays already hold a.n + b.n rows)
    and free them in b. Columns are independent: disjoint ranges may run in parallel. 0 or _OOM."""
    cdef size_t na = a.n, nb = b.n
    cdef int j
    cdef _col *x
    cdef _col *y
    for j in range(j0, j1):
        x = &a.cols[j]
        y = &b.cols[j]
        memcpy(x.tags + na, y.tags, nb)
        if y.slot != NULL:
            if x.slot == NULL and _need_slot(a, x) != 0:
                return _OOM
            memcpy(x.slot + na, y.slot, nb * 8)
        if _join_text(a, x, na, y, nb) != 0:
            return _OOM
        _join_counts(x, y)
        _free_col(y)
    return 0


cdef int _place_cols(_fstate *a, _fstate **parts, size_t *row0, size_t *dest, int nparts,
                     int j0, int j1) noexcept nogil:
    """Join parts (see Fetch.part) for a's columns j0..j1-1: each part's rows were written at
    row0[k] of a's tags/slot and move down to dest[k] (nothing moves when the rowid range was
    dense). TEXT/BLOB bytes are not copied: a takes the first part's buffers over, the
    others stay in their parts (chunks). Parts in ascending order. Columns are independent:
    disjoint ranges may run in parallel. Always 0."""
    cdef int j, k
    cdef size_t nb
    cdef _col *x
    cdef _col *y
    for j in range(j0, j1):
        x = &a.cols[j]
        for k in range(nparts):
            y = &parts[k].cols[j]
            nb = parts[k].n
            if nb and dest[k] != row0[k]:
                memmove(x.tags + dest[k], x.tags + row0[k], nb)
                memmove(x.slot + dest[k], x.slot + row0[k], nb * 8)
            if k == 0 and y.offs != NULL:
                # the first part's TEXT/BLOB buffers become a's (the other parts' stay
                # theirs: Fetch.join_parts hands them to the columns as further chunks)
                x.offs, x.data, x.data_len, x.data_cap = y.offs, y.data, y.data_len, y.data_cap
                y.offs = NULL
                y.data = NULL
                y.data_len = y.data_cap = 0
            _join_counts(x, y)
    return 0


class PartFull(RuntimeError):
    """A part of a parallel fetch (Fetch.part) got more rows than its rowid range can hold."""


cdef void _append_done(_fstate *a, _fstate *b) noexcept nogil:
    a.n = a.n + b.n
    b.n = 0
    b.cap = 0



def _join_threads(threads):
    """Join every started thread of ``threads``; an exception meanwhile (KeyboardInterrupt)
    is kept and raised once all are joined."""
    pending = None
    while True:
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.05)
            break
        except BaseException as exc:
            if pending is None:
                pending = exc
    if pending is not None:
        raise pending



# --- Fetch.append / reserve / part / join_parts ------------------------------------
cdef object _append(Fetch self, Fetch other, int threads):
    """Fetch.append (see its docstring)."""
    cdef int rc = 0
    cdef int ncol
    self._check_free("append to it")
    other._check_free("append it")
    if self.fs.borrowed or other.fs.borrowed:
        raise ValueError("append() does not take parts: join them with join_parts()")
    if other.fs.cols == NULL:
        return
    if self.fs.cols == NULL:
        self.names = other.names
        self._setup(other.fs.ncol)
    if other.fs.ncol != self.fs.ncol:
        raise ValueError("cannot append a fetch with a different number of columns")
    if other.fs.n == 0:
        return
    ncol = self.fs.ncol
    with nogil:
        rc = _grow_rows(&self.fs, self.fs.n + other.fs.n)
    if rc != 0:
        raise MemoryError("out of memory while joining the parts of a parallel fetch")
    results = _by_columns(self, threads, other, [_copy_bytes(&other.fs, j) for j in range(ncol)])
    _append_done(&self.fs, &other.fs)
    if any(results):
        raise MemoryError("out of memory while joining the parts of a parallel fetch")


cdef list _by_columns(Fetch self, int threads, Fetch other, list weights):
    """Run _append_cols (``other`` given) or _place_cols (the parts set up by join_parts)
    over disjoint groups of columns on up to ``threads`` threads, the groups cut so that
    each has about the same ``weights`` (bytes to copy per column); their result codes."""
    cdef int ncol = self.fs.ncol
    cdef int j
    threads = max(1, min(threads, ncol))
    total = sum(weights) or 1
    cuts, acc = [0], 0
    for j in range(ncol - 1):
        acc += weights[j]
        if len(cuts) < threads and acc * threads >= total * len(cuts):
            cuts.append(j + 1)
    cuts.append(ncol)
    threads = len(cuts) - 1
    results = [0] * threads
    workers = [_threading.Thread(target=_cols_part, args=(self, other, cuts[k], cuts[k + 1], results, k),
                                 name=f"sqlnb-parallel-fetch-join-{k}", daemon=True)
               for k in range(1, threads)]
    try:
        for t in workers:
            t.start()
        _cols_part(self, other, cuts[0], cuts[1], results, 0)
    finally:
        _join_threads(workers)  # they write into our buffers: never leave one running
    return results


def _cols_part(Fetch self, Fetch other, int j0, int j1, list results, int k):
    """One group of columns of _by_columns (a thread's target)."""
    cdef int rc
    cdef bint appending = other is not None
    cdef _fstate *b = &other.fs if appending else NULL
    with nogil:
        if appending:
            rc = _append_cols(&self.fs, b, j0, j1)
        else:
            rc = _place_cols(&self.fs, self._jparts, self._jrow0, self._jdest, self._jn, j0, j1)
    results[k] = rc


cdef object _reserve(Fetch self, int ncol, Py_ssize_t rows):
    """Fetch.reserve (see its docstring)."""
    cdef int i
    cdef void *p
    cdef _col *c
    self._check_free("reserve")
    if self.fs.cols != NULL or self.fs.borrowed:
        raise ValueError("reserve() needs an empty Fetch")
    if rows < 1 or ncol < 1:
        raise ValueError("reserve() needs rows >= 1 and ncol >= 1")
    if <size_t>rows > (<size_t>PY_SSIZE_T_MAX) // 8:
        raise MemoryError(f"cannot reserve {rows} rows")
    self._setup(ncol)
    for i in range(ncol):
        c = &self.fs.cols[i]
        p = realloc(c.tags, <size_t>rows)
        if p != NULL:
            c.tags = <unsigned char*>p
            c.slot = <int64_t*>malloc(<size_t>rows * 8)
        if p == NULL or c.slot == NULL:
            self._clear()
            raise MemoryError(f"cannot reserve {rows} rows of {ncol} columns")
    self.fs.cap = <size_t>rows


cdef Fetch _part(Fetch self, Py_ssize_t row0, Py_ssize_t rows):
    """Fetch.part (see its docstring)."""
    cdef Fetch p
    cdef int i
    if self.fs.cols == NULL or self.fs.borrowed or self.fs.n != 0 or self.fs.cols[0].slot == NULL:
        raise ValueError("part() needs a Fetch set up with reserve() and not joined yet")
    if row0 < 0 or rows < 0 or <size_t>rows > self.fs.cap or <size_t>row0 > self.fs.cap - <size_t>rows:
        raise ValueError(f"rows {row0}..{row0 + rows} are outside the {self.fs.cap} reserved")
    p = Fetch.__new__(Fetch)
    p.fs.cols = <_col*>calloc(self.fs.ncol, sizeof(_col))
    if p.fs.cols == NULL:
        raise MemoryError()
    p.fs.ncol = self.fs.ncol
    p.fs.cap = <size_t>rows
    p.fs.borrowed = 1
    for i in range(self.fs.ncol):
        p.fs.cols[i].tags = self.fs.cols[i].tags + row0
        p.fs.cols[i].slot = self.fs.cols[i].slot + row0
    p._owner = self
    p._row0 = <size_t>row0
    p.names = self.names
    self._lent += 1
    return p


cdef object _join_parts(Fetch self, parts, int threads):
    """Fetch.join_parts (see its docstring)."""
    cdef Fetch p
    cdef int j, k, n = len(parts)
    cdef size_t total = 0, end = 0
    cdef bint ok = False, text
    cdef _col *y
    _check_joinable(self)
    if self.fs.n != 0 or n != self._lent:
        raise ValueError(f"join_parts() needs all {self._lent} outstanding parts, once")
    for p in parts:
        if p._owner is not self or p._running:
            raise ValueError("join_parts(): a part belongs to another Fetch, was joined, or is running")
        if p._row0 < end:
            raise ValueError("join_parts(): parts overlap or are not in row order")
        end = p._row0 + p.fs.n  # the rows written (a part's capacity may reach into the next)
    if n == 0:
        return
    self._jparts = <_fstate**>calloc(n, sizeof(_fstate*))
    self._jrow0 = <size_t*>calloc(n, sizeof(size_t))
    self._jdest = <size_t*>calloc(n, sizeof(size_t))
    try:
        if self._jparts == NULL or self._jrow0 == NULL or self._jdest == NULL:
            raise MemoryError("out of memory while joining the parts of a parallel fetch")
        for k in range(n):
            p = parts[k]
            self._jparts[k] = &p.fs
            self._jrow0[k] = p._row0
            self._jdest[k] = total
            total += p.fs.n
        self._jn = n
        # only rows that move over rowid gaps cost anything (TEXT/BLOB is not copied): a
        # dense table needs no thread at all
        moved = sum(self._jparts[k].n * 9 for k in range(n) if self._jdest[k] != self._jrow0[k])
        weights = [moved] * self.fs.ncol
        results = _by_columns(self, threads, None, weights)
        if any(results):
            raise MemoryError("out of memory while joining the parts of a parallel fetch")
        # the TEXT/BLOB of the parts after the first is not copied: each column gets it as
        # further chunks (RawColumn.text_chunks), which Arrow and pandas take as they are
        tails = []
        for j in range(self.fs.ncol):
            chunks = []
            text = self.fs.cols[j].offs != NULL
            for k in range(1, n):
                y = &self._jparts[k].cols[j]
                text = text or y.offs != NULL
                chunks.append((self._jdest[k], self._jparts[k].n,
                               _own(y.offs, (self._jparts[k].n + 1) * 8) if y.offs != NULL else None,
                               _own(y.data, y.data_len) if y.data != NULL else None))
                y.offs = NULL
                y.data = NULL
                y.data_len = y.data_cap = 0
            tails.append(chunks if text and chunks else None)
        self._tails = tails
        self._n0 = self._jparts[0].n
        self.fs.n = total
        ok = True
    finally:
        free(self._jparts)
        free(self._jrow0)
        free(self._jdest)
        self._jparts = NULL
        self._jrow0 = NULL
        self._jdest = NULL
        self._jn = 0
        for p in parts:  # the parts' own TEXT/BLOB buffers; their rows are ours now
            p._clear()
        if not ok:  # the rows are not usable
            self._clear()


cdef int _check_joinable(Fetch self) except -1:
    if self._running or self.fs.borrowed:
        raise ValueError("join_parts() needs the Fetch that reserve() set up")
    return 0

# ---------------------------------------------------------------------------
# parallel fetch plumbing (sqlnb/frames/parallel.py): one snapshot for every worker,
# the connection state the workers must share, the interrupts asked for
# ---------------------------------------------------------------------------
HAVE_SNAPSHOT = bool(SQLNB_HAVE_SNAPSHOT)


cdef class Snapshot:
    """A WAL snapshot (``sqlite3_snapshot``) of one schema of a connection: other connections
    on the same file open it to read exactly the same database state (``snapshot_open``)."""
    cdef sqlite3_snapshot *snap

    def __dealloc__(self):
        if self.snap != NULL:
            sqlite3_snapshot_free(self.snap)
            self.snap = NULL


def snapshot_get(RawConnection raw, schema="main"):
    """The snapshot ``raw``'s open read transaction on ``schema`` reads (WAL mode only;
    ``sqlite3_snapshot_get``). Raises the mapped error when there is none to take."""
    cdef Snapshot s = Snapshot.__new__(Snapshot)
    cdef bytes name = schema.encode()
    cdef int rc
    _lock(raw)
    try:
        raw._check()
        rc = sqlite3_snapshot_get(raw.db, name, &s.snap)
        if rc != SQLITE_OK:
            s.snap = NULL
            raise _error_for(rc, NULL, None)  # (these calls leave no message of their own)
    finally:
        _unlock(raw)
    return s


def snapshot_open(RawConnection raw, Snapshot snap not None, schema="main"):
    """Start ``raw``'s read transaction on ``schema`` at ``snap`` (``sqlite3_snapshot_open``):
    after BEGIN, with no statement running; ``raw`` must have read the database once
    before (until then its pager does not know the file is in WAL mode)."""
    cdef bytes name = schema.encode()
    cdef int rc
    if snap.snap == NULL:
        raise ValueError("an empty snapshot")
    _lock(raw)
    try:
        raw._check()
        rc = sqlite3_snapshot_open(raw.db, name, snap.snap)
        if rc != SQLITE_OK:
            raise _error_for(rc, NULL, None)  # (these calls leave no message of their own)
    finally:
        _unlock(raw)


# sqlite3_db_config on/off switches db_config_flag may read (int, int*); each other op either
# takes pointers (MAINDBNAME 1000, LOOKASIDE 1001: passing ints would be undefined behaviour)
# or is not the parallel fetch's business (LOAD_EXTENSION, RESET_DATABASE, DEFENSIVE, ...)
# copied to the workers: ENABLE_TRIGGER, WRITABLE_SCHEMA, LEGACY_ALTER_TABLE, DQS_DML, DQS_DDL,
# ENABLE_VIEW, TRUSTED_SCHEMA, ENABLE_COMMENTS; and read only: REVERSE_SCANORDER
_CONFIG_SETTABLE = frozenset((1003, 1011, 1012, 1013, 1014, 1015, 1017, 1022))
_CONFIG_READABLE = _CONFIG_SETTABLE | {1019}


def db_config_flag(RawConnection raw, int op, int value=-1):
    """Read (``value`` -1) or set one of ``sqlite3_db_config``'s on/off settings; returns the
    setting now, or None when this core does not know ``op``. Only the switches the
    parallel fetch reads (``_CONFIG_READABLE``) or copies (``_CONFIG_SETTABLE``) are
    taken; any other ``op`` is a ValueError and nothing is called."""
    cdef int out = -1
    cdef int rc
    if op not in (_CONFIG_READABLE if value == -1 else _CONFIG_SETTABLE):
        raise ValueError(f"db_config_flag: sqlite3_db_config op {op} cannot be "
                         + ("read" if value == -1 else "set") + " here (allowed: "
                         + ", ".join(map(str, sorted(_CONFIG_READABLE if value == -1 else _CONFIG_SETTABLE)))
                         + ")")
    if value < -1 or value > 1:
        raise ValueError(f"db_config_flag: value must be 0 or 1 (or -1 to read), not {value}")
    _lock(raw)
    try:
        raw._check()
        rc = sqlnb_db_config_flag(raw.db, op, value, &out)
    finally:
        _unlock(raw)
    return out if rc == SQLITE_OK else None


def database_names(RawConnection raw):
    """The schema names of ``raw``: "main", "temp" (once it exists) and the attached ones
    (``sqlite3_db_name``; no authorizer involved). Empty on a core without it."""
    cdef const char *p
    cdef int i = 0
    out = []
    _lock(raw)
    try:
        raw._check()
        while True:
            p = sqlite3_db_name(raw.db, i)
            if p == NULL:
                break
            out.append(p.decode("utf-8", "surrogateescape"))
            i += 1
    finally:
        _unlock(raw)
    return out


def interrupt_count(RawConnection raw):
    """How many times ``raw.interrupt()`` was called (a parallel fetch's main thread and
    workers poll it: ``sqlite3_interrupt`` alone reaches only ``raw``'s own statements)."""
    return raw._pstate.interrupts
