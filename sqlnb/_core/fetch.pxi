# Columnar fetch (included by sqlnb/_fast.pyx, so it sees the C fields of
# RawConnection/RawStatement): the GIL-free C loop and Fetch. The type *rules* live in sqlnb/frames/result.py;
# this file only moves values from sqlite3_step into column buffers, fast.
#
# Per column, while stepping (GIL released, the connection's lock held):
#   tags  one byte per row: the value's storage class (SQLite's codes 1..5)
#   slot  8 bytes per row: the int64 or the double (allocated at the first number)
#   offs  int64 Arrow offsets, n+1 of them (allocated at the first TEXT/BLOB)
#   data  TEXT/BLOB bytes back to back (Arrow data buffer)
# plus a count per storage class and a "some TEXT is not valid UTF-8" flag.
# Buffers grow geometrically (realloc of large blocks is a page remap, not a
# copy) and are cut to size at the end. Each becomes a _Buf that numpy and
# pyarrow wrap without copying, so a DataFrame column *is* the fetch buffer.
# On any error (SQL error, out of memory, KeyboardInterrupt) nothing leaks: the
# buffers belong to a Python object (Fetch, then RawColumn) freed by refcount.

cdef enum:
    _ROWS0 = 1024            # initial row capacity
    _DATA0 = 65536           # initial TEXT/BLOB data capacity (bytes)
    _COUNT_EVERY = 1023      # publish rows_seen every 1024 rows
    _OOM = -1                # _fetch_loop's "out of memory" status
    _STOPPED = -2            # _fetch_loop: the progress check asked to stop
    _FULL = -3               # a part (see Fetch.part) got more rows than its range can hold


cdef struct _col:
    unsigned char *tags
    int64_t *slot
    int64_t *offs
    char *data
    size_t data_len
    size_t data_cap
    int64_t counts[6]        # rows per storage class (index = SQLite code)
    int bad_utf8


cdef struct _fstate:
    int ncol
    _col *cols
    size_t n                 # rows stored
    size_t cap               # row capacity of tags/slot/offs
    int borrowed             # tags/slot point into another Fetch's buffers (Fetch.part):
                             # never grown or freed here


# ---------------------------------------------------------------------------
# GIL-free helpers
# ---------------------------------------------------------------------------
cdef bint _utf8_valid(const unsigned char *s, size_t n) noexcept nogil:
    """Strict UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF)."""
    cdef size_t i = 0
    cdef uint64_t w
    cdef unsigned char c, c1
    while i < n:
        while i + 8 <= n:
            memcpy(&w, s + i, 8)
            if w & <uint64_t>0x8080808080808080ULL:
                break
            i += 8
        if i >= n:
            break
        c = s[i]
        if c < 0x80:
            i += 1
        elif c < 0xC2:
            return False
        elif c < 0xE0:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return False
            i += 2
        elif c < 0xF0:
            if i + 2 >= n:
                return False
            c1 = s[i + 1]
            if (c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80:
                return False
            if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 >= 0xA0):
                return False
            i += 3
        elif c < 0xF5:
            if i + 3 >= n:
                return False
            c1 = s[i + 1]
            if (c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80 or (s[i + 3] & 0xC0) != 0x80:
                return False
            if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 >= 0x90):
                return False
            i += 4
        else:
            return False
    return True


cdef void _free_col(_col *c) noexcept nogil:
    free(c.tags)
    free(c.slot)
    free(c.offs)
    free(c.data)
    memset(c, 0, sizeof(_col))


cdef int _grow_rows(_fstate *fs, size_t want) noexcept nogil:
    """Make room for ``want`` rows in every column's per-row buffers. 0, _OOM or _FULL."""
    cdef size_t cap = fs.cap if fs.cap else _ROWS0
    cdef int i
    cdef void *p
    cdef _col *c
    if fs.borrowed:
        return 0 if want <= fs.cap else _FULL
    while cap < want:
        cap *= 2
    if cap == fs.cap:
        return 0
    for i in range(fs.ncol):
        c = &fs.cols[i]
        p = realloc(c.tags, cap)
        if p == NULL:
            return _OOM
        c.tags = <unsigned char*>p
        if c.slot != NULL:
            p = realloc(c.slot, cap * 8)
            if p == NULL:
                return _OOM
            c.slot = <int64_t*>p
        if c.offs != NULL:
            p = realloc(c.offs, (cap + 1) * 8)
            if p == NULL:
                return _OOM
            c.offs = <int64_t*>p
    fs.cap = cap
    return 0


cdef int _need_slot(_fstate *fs, _col *c) noexcept nogil:
    c.slot = <int64_t*>calloc(fs.cap, 8)
    return 0 if c.slot != NULL else _OOM


cdef int _need_offs(_fstate *fs, _col *c) noexcept nogil:
    # every earlier row had no TEXT/BLOB bytes, so zeros are their offsets
    c.offs = <int64_t*>calloc(fs.cap + 1, 8)
    return 0 if c.offs != NULL else _OOM


cdef int _need_data(_col *c, size_t extra) noexcept nogil:
    cdef size_t cap = c.data_cap if c.data_cap else _DATA0
    cdef void *p
    while cap < c.data_len + extra:
        cap *= 2
    p = realloc(c.data, cap)
    if p == NULL:
        return _OOM
    c.data = <char*>p
    c.data_cap = cap
    return 0


cdef int _read_row(_fstate *fs, sqlite3_stmt *st) noexcept nogil:
    """Append the statement's current row to the columns. 0, _OOM or _FULL."""
    cdef size_t row = fs.n
    cdef int i, t
    cdef int nb
    cdef _col *c
    cdef sqlite3_value *v
    cdef const unsigned char *p
    cdef double d
    if row >= fs.cap:
        i = _grow_rows(fs, row + 1)
        if i != 0:
            return i
    for i in range(fs.ncol):
        c = &fs.cols[i]
        v = sqlite3_column_value(st, i)
        t = sqlite3_value_type(v)
        c.tags[row] = <unsigned char>t
        c.counts[t] += 1
        if t == CLASS_INTEGER:
            if c.slot == NULL and _need_slot(fs, c) != 0:
                return _OOM
            c.slot[row] = sqlite3_value_int64(v)
        elif t == CLASS_REAL:
            if c.slot == NULL and _need_slot(fs, c) != 0:
                return _OOM
            d = sqlite3_value_double(v)
            memcpy(&c.slot[row], &d, 8)
        elif t == CLASS_TEXT or t == CLASS_BLOB:
            if t == CLASS_TEXT:
                p = sqlite3_value_text(v)
            else:
                p = <const unsigned char*>sqlite3_value_blob(v)
            nb = sqlite3_value_bytes(v)
            if p == NULL and nb > 0:
                return _OOM          # SQLite could not produce the value
            if c.offs == NULL and _need_offs(fs, c) != 0:
                return _OOM
            if nb > 0:
                if c.data_len + <size_t>nb > c.data_cap and _need_data(c, <size_t>nb) != 0:
                    return _OOM
                memcpy(c.data + c.data_len, p, <size_t>nb)
                if t == CLASS_TEXT and not c.bad_utf8 and not _utf8_valid(p, <size_t>nb):
                    c.bad_utf8 = 1
                c.data_len += <size_t>nb
        if c.offs != NULL:
            c.offs[row + 1] = <int64_t>c.data_len
    fs.n = row + 1
    return 0


cdef int _fetch_loop(_fstate *fs, sqlite3 *db, sqlite3_stmt *st, int64_t limit,
                     bint have_current, long long *counter, long long base, progress_state *ps,
                     void *ast) noexcept nogil:
    """Step and collect until done, an error, or ``limit`` rows (limit < 0: no limit).

    Returns SQLITE_DONE; SQLITE_ROW when it stopped at ``limit`` with the statement
    on a further, unread row; _OOM; _FULL (a part's range overflowed); _STOPPED
    when the connection's progress check (signals, time limit, callback) asked
    to stop; or SQLite's error code. ``counter`` gets ``base`` + the rows stored
    (a batch of a stream counts on from the rows of the batches before it). The
    connection's mutex is held for the whole loop (sqlite3_step takes it
    recursively), so the column values read between steps are protected and cost
    no locking of their own; it is let go around the progress check. (Our SQLite
    opens with SQLITE_OPEN_NOMUTEX: it has no such mutex, sqlite3_db_mutex() is NULL
    and these calls do nothing; BerkeleyDB's core keeps its mutex.)

    The progress check runs every 1024 rows here as well as inside sqlite3_step:
    an old core (BerkeleyDB's 3.7) counts progress ops per step call only, so a
    query with cheap rows would otherwise never see Ctrl-C.
    """
    cdef int rc = SQLITE_DONE
    cdef int stop, bad
    cdef sqlite3_mutex *mx = sqlite3_db_mutex(db)
    sqlite3_mutex_enter(mx)
    if have_current:
        if limit == 0:
            sqlite3_mutex_leave(mx)
            return SQLITE_ROW
        bad = _read_row(fs, st)
        if bad != 0:
            sqlite3_mutex_leave(mx)
            return bad
    while True:
        if limit >= 0 and fs.n >= <size_t>limit:
            rc = _auth_step(ast, st)    # is there more? (the row stays unread)
            break
        rc = _auth_step(ast, st)
        if rc != SQLITE_ROW:
            break
        bad = _read_row(fs, st)
        if bad != 0:
            rc = bad
            break
        if ((<size_t>base + fs.n) & _COUNT_EVERY) == 0:   # every 1024 rows of the stream
            counter[0] = base + <long long>fs.n
            sqlite3_mutex_leave(mx)
            stop = _progress_cb(<void*>ps)
            sqlite3_mutex_enter(mx)
            if stop:
                rc = _STOPPED
                break
    counter[0] = base + <long long>fs.n
    sqlite3_mutex_leave(mx)
    return rc



@cython.no_gc_clear   # a part's __dealloc__ gives its owner back the lent rows (self._owner)
cdef class Fetch:
    """Column buffers being filled from one statement (or several, appended in order).

    ``run(stmt, limit=-1, include_current=False)`` steps ``stmt`` with the GIL
    released; ``append(other)`` moves another Fetch's rows after these (parallel
    fetch); ``columns()`` hands the buffers over as RawColumn objects.

    Parallel fetch without copying numbers: ``reserve(ncol, rows)`` allocates room
    for every row of a rowid range up front, ``part(row0, rows)`` gives a Fetch
    that writes its tags and numbers straight into rows ``row0..`` of it (only
    TEXT/BLOB bytes stay the part's own), and ``join_parts(parts)`` closes the
    gaps (none when the rowids were dense); the parts' TEXT/BLOB bytes are not copied:
    they stay in their buffers, handed to the columns as chunks (RawColumn.text_chunks).
    """
    cdef _fstate fs
    cdef readonly list names
    cdef Fetch _owner         # a part: the Fetch whose buffers its tags/slot point into
    cdef size_t _row0         # a part: its first row in the owner's buffers
    cdef Py_ssize_t _lent     # parts handed out and not yet joined: no growth meanwhile
    cdef bint _running        # inside run() (set and cleared with the GIL held)
    cdef list _tails          # after join_parts: per column, the TEXT/BLOB chunks of parts 2.. (or None)
    cdef size_t _n0           # after join_parts: rows of the first part (whose TEXT/BLOB is ours)
    cdef _fstate **_jparts    # join_parts' arguments to _place_cols, while it runs
    cdef size_t *_jrow0
    cdef size_t *_jdest
    cdef int _jn

    def __cinit__(self):
        memset(&self.fs, 0, sizeof(_fstate))

    def __dealloc__(self):
        self._clear()

    cdef void _clear(self) noexcept:
        cdef int i
        if self.fs.cols != NULL:
            for i in range(self.fs.ncol):
                if self.fs.borrowed:  # the owner's memory
                    self.fs.cols[i].tags = NULL
                    self.fs.cols[i].slot = NULL
                _free_col(&self.fs.cols[i])
            free(self.fs.cols)
        memset(&self.fs, 0, sizeof(_fstate))
        self._tails = None
        if self._owner is not None:
            self._owner._lent -= 1
            self._owner = None

    cdef int _check_free(self, what) except -1:
        if self._lent:
            raise ValueError(f"cannot {what}: {self._lent} part(s) of this Fetch are not joined yet")
        if self._running:
            raise ValueError(f"cannot {what}: this Fetch is running")
        return 0

    @property
    def nrows(self):
        return self.fs.n

    cdef int _setup(self, int ncol) except -1:
        if self.fs.cols != NULL:
            if ncol != self.fs.ncol:
                raise ValueError(f"this Fetch holds {self.fs.ncol} columns, the statement has {ncol}")
            return 0
        self.fs.cols = <_col*>calloc(ncol if ncol > 0 else 1, sizeof(_col))
        if self.fs.cols == NULL:
            raise MemoryError()
        self.fs.ncol = ncol
        if _grow_rows(&self.fs, _ROWS0) != 0:
            self._clear()
            raise MemoryError()
        return 0

    def run(self, RawStatement stmt, Py_ssize_t limit=-1, bint include_current=False,
            bint resume=False):
        """Collect the rows of ``stmt`` (bound and not yet stepped, or on an unread row
        when ``include_current``). Returns "done", or "more" when ``limit`` stopped it
        with the statement on a further, unread row. Raises the step's error after
        resetting the statement (the connection stays usable).

        ``resume`` (batch mode, sqlnb.frames.batches): this call goes on with a statement an
        earlier call stopped at ``limit``: the statement's time limit and progress schedule
        started by the first call are kept, and ``rows_seen`` counts on from its value.

        Holds the connection's lock while it steps: no other thread can finalize the
        statement or close the connection under it (they wait for it to return)."""
        _lock(stmt.conn)
        try:
            return self._run(stmt, limit, include_current, resume)
        finally:
            _unlock(stmt.conn)

    cdef object _run(self, RawStatement stmt, Py_ssize_t limit, bint include_current, bint resume):
        # with the connection's lock held (run()); not callable from Python
        stmt._check()
        self._check_free("run it")
        cdef RawConnection conn = stmt.conn
        cdef sqlite3 *db = conn.db
        cdef sqlite3_stmt *st = stmt.st
        cdef int ncol = sqlite3_column_count(st)
        cdef int rc
        cdef int64_t lim = limit
        cdef bint cur = include_current
        cdef long long base = 0
        if self.names is None:
            self.names = stmt.column_names()
        self._setup(ncol)
        if stmt.done and not cur:
            return "done"
        if resume:
            conn._resume_run()
            base = conn.rows_seen
        else:
            conn._begin_run()
            conn.rows_seen = 0
        self._running = True
        try:
            with nogil:
                rc = _fetch_loop(&self.fs, db, st, lim, cur, &conn.rows_seen, base, &conn._pstate, conn._ast)
        finally:
            self._running = False
        if rc == SQLITE_ROW:
            return "more"
        stmt.done = True
        if rc == SQLITE_DONE:
            return "done"
        if rc == _OOM or rc == _FULL:
            sqlite3_reset(st)
            cap = self.fs.cap
            self._clear()
            if rc == _FULL:
                raise PartFull(f"the statement returned more rows than this part's {cap}")
            raise MemoryError(f"out of memory after {conn.rows_seen} rows of the result")
        if rc == _STOPPED:  # the progress check between two rows (no step failed)
            rc = SQLITE_INTERRUPT
            if conn._pending is None and conn._pstate.abort_reason != 2:
                conn._pstate.abort_reason = 0
                sqlite3_reset(st)
                self._clear()
                raise _errors.interrupted(stmt.sql)
        exc = _step_error(conn, st, rc, stmt.sql)
        self._clear()
        raise exc

    # --- parallel fetch: the work is done in parallel.pxi -----------------------------
    def append(self, Fetch other not None, int threads=1):
        """Move ``other``'s rows after this Fetch's rows (same columns); ``other`` is emptied.

        ``threads`` > 1 copies disjoint groups of columns on that many threads
        (the copy writes fresh memory, so its page faults are spread too)."""
        _append(self, other, threads)

    def reserve(self, int ncol, Py_ssize_t rows):
        """Allocate tags and 8-byte slots for ``rows`` rows of ``ncol`` columns (an empty
        Fetch only), for parts to write into. Untouched memory costs address space only."""
        _reserve(self, ncol, rows)

    def part(self, Py_ssize_t row0, Py_ssize_t rows):
        """A Fetch whose ``run`` writes tags and numbers straight into rows ``row0`` ..
        ``row0 + rows - 1`` of this one's buffers (set up with ``reserve``); it raises
        PartFull if its statements return more than ``rows`` rows (``run`` may be called
        for several statements: their rows follow each other). The rows parts write must
        not overlap (their capacities may); join them with ``join_parts`` once every one
        has run."""
        return _part(self, row0, rows)

    def join_parts(self, parts, int threads=1):
        """Join every outstanding part (see ``part``), in row order, into this Fetch's rows:
        rows move down over the gaps left by rowids with no row; the first part's TEXT/BLOB
        buffers become this Fetch's and the others' stay as they are, handed to the columns as
        further chunks (RawColumn.text_chunks). ``threads`` > 1 works on disjoint groups of
        columns."""
        _join_parts(self, parts, threads)

    def columns(self):
        """Hand the buffers over as a list of RawColumn (this Fetch is left empty)."""
        cdef int i, k
        cdef _col *c
        cdef RawColumn rc
        cdef size_t n = self.fs.n
        cdef void *p
        self._check_free("hand its columns over")
        if self.fs.borrowed:
            raise ValueError("a part's rows belong to its owner: join_parts() them there")
        out = []
        tails = self._tails
        self._tails = None
        for i in range(self.fs.ncol):
            c = &self.fs.cols[i]
            chunks = None
            if tails is not None and tails[i] is not None:  # TEXT/BLOB in pieces (join_parts)
                chunks = [(0, self._n0, _own(c.offs, (self._n0 + 1) * 8) if c.offs != NULL else None,
                           _own(c.data, c.data_len) if c.data != NULL else None)] + tails[i]
                c.offs = NULL
                c.data = NULL
                c.data_len = c.data_cap = 0
            if c.slot != NULL and not (c.counts[CLASS_INTEGER] or c.counts[CLASS_REAL]):
                free(c.slot)  # reserved for numbers that never came
                c.slot = NULL
            if self.fs.cap > n + _ROWS0:  # give back what growth or reserve() set aside
                p = realloc(c.tags, n if n else 1)
                if p != NULL:
                    c.tags = <unsigned char*>p
                if c.slot != NULL:
                    p = realloc(c.slot, (n if n else 1) * 8)
                    if p != NULL:
                        c.slot = <int64_t*>p
                if c.offs != NULL:
                    p = realloc(c.offs, (n + 1) * 8)
                    if p != NULL:
                        c.offs = <int64_t*>p
            rc = RawColumn.__new__(RawColumn)
            rc.nrows = <Py_ssize_t>n
            rc.seen = 0
            for k in range(1, 6):
                if c.counts[k]:
                    rc.seen |= 1 << k
            rc.counts = {k: c.counts[k] for k in range(1, 6)}
            rc.null_count = <Py_ssize_t>c.counts[CLASS_NULL]
            rc.bad_utf8 = c.bad_utf8
            rc._tags = _own(c.tags, n)
            c.tags = NULL
            if c.slot != NULL:
                rc._slot = _own(c.slot, n * 8)
                c.slot = NULL
            if c.offs != NULL:
                rc._offs = _own(c.offs, (n + 1) * 8)
                c.offs = NULL
            if c.data != NULL:
                rc._data = _own(c.data, c.data_len)
                c.data = NULL
            rc._chunks = chunks
            out.append(rc)
        self._clear()
        return out



def fetch_columns(RawStatement stmt, Py_ssize_t limit=-1, bint include_current=False,
                  bint resume=False):
    """Fetch ``stmt``'s rows into columns: ``(names, [RawColumn, ...], status)``.

    ``status`` is "done" or "more" (stopped at ``limit``; the statement is on an
    unread row). See Fetch.run. Batch mode: the first call with ``limit=N``, each next one
    with ``include_current=True, resume=True`` until "done".
    """
    f = Fetch()
    _lock(stmt.conn)  # one caller at a time per connection (see _lock in connection.pxi)
    try:
        status = f.run(stmt, limit, include_current, resume)
    finally:
        _unlock(stmt.conn)
    return f.names, f.columns(), status


def utf8_valid(data):
    """True when ``data`` (bytes-like) is strict UTF-8: the check the fetcher applies to TEXT."""
    cdef const unsigned char[:] mv = memoryview(data).cast("B")
    if mv.shape[0] == 0:
        return True
    return _utf8_valid(&mv[0], mv.shape[0])


