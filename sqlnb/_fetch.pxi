# Columnar fetch (sqlnb/_fetch.pxi): included by _fast.pyx, so it sees the C
# fields of RawConnection/RawStatement. The type *rules* live in sqlnb/frames.py;
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

from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, memmove, memset
from libc.stdint cimport uint64_t, uint8_t
from libc.math cimport NAN
from cpython.buffer cimport PyBUF_FORMAT, PyBUF_ND, PyBUF_STRIDES, PyBUF_WRITABLE
cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

cdef enum:
    # SQLite's fundamental datatype codes (stable ABI values of sqlite3.h)
    _T_INT = 1
    _T_FLOAT = 2
    _T_TEXT = 3
    _T_BLOB = 4
    _T_NULL = 5
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
        if t == _T_INT:
            if c.slot == NULL and _need_slot(fs, c) != 0:
                return _OOM
            c.slot[row] = sqlite3_value_int64(v)
        elif t == _T_FLOAT:
            if c.slot == NULL and _need_slot(fs, c) != 0:
                return _OOM
            d = sqlite3_value_double(v)
            memcpy(&c.slot[row], &d, 8)
        elif t == _T_TEXT or t == _T_BLOB:
            if t == _T_TEXT:
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
                if t == _T_TEXT and not c.bad_utf8 and not _utf8_valid(p, <size_t>nb):
                    c.bad_utf8 = 1
                c.data_len += <size_t>nb
        if c.offs != NULL:
            c.offs[row + 1] = <int64_t>c.data_len
    fs.n = row + 1
    return 0


cdef int _fetch_loop(_fstate *fs, sqlite3 *db, sqlite3_stmt *st, int64_t limit,
                     bint have_current, long long *counter, progress_state *ps,
                     void *ast) noexcept nogil:
    """Step and collect until done, an error, or ``limit`` rows (limit < 0: no limit).

    Returns SQLITE_DONE; SQLITE_ROW when it stopped at ``limit`` with the statement
    on a further, unread row; _OOM; _FULL (a part's range overflowed); _STOPPED
    when the connection's progress check (signals, time limit, callback) asked
    to stop; or SQLite's error code. The
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
        if (fs.n & _COUNT_EVERY) == 0:
            counter[0] = <long long>fs.n
            sqlite3_mutex_leave(mx)
            stop = _progress_cb(<void*>ps)
            sqlite3_mutex_enter(mx)
            if stop:
                rc = _STOPPED
                break
    counter[0] = <long long>fs.n
    sqlite3_mutex_leave(mx)
    return rc


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


# ---------------------------------------------------------------------------
# owned buffers, wrapped by numpy/pyarrow without copying
# ---------------------------------------------------------------------------
cdef char *_FMT_B = "B"


cdef class _Buf:
    """One malloc'd block, freed with this object; exposes the buffer protocol."""
    cdef char *ptr
    cdef Py_ssize_t size
    cdef Py_ssize_t _shape[1]
    cdef Py_ssize_t _strides[1]

    def __dealloc__(self):
        free(self.ptr)
        self.ptr = NULL

    def __len__(self):
        return self.size

    def __getbuffer__(self, Py_buffer *view, int flags):
        self._shape[0] = self.size
        self._strides[0] = 1
        view.buf = self.ptr
        view.obj = self
        view.len = self.size
        view.readonly = 0
        view.itemsize = 1
        view.format = _FMT_B if (flags & PyBUF_FORMAT) else NULL
        view.ndim = 1
        view.shape = self._shape if (flags & PyBUF_ND) else NULL
        view.strides = self._strides if (flags & PyBUF_STRIDES) == PyBUF_STRIDES else NULL
        view.suboffsets = NULL
        view.internal = NULL

    def __releasebuffer__(self, Py_buffer *view):
        pass


cdef _Buf _own(void *ptr, size_t size):
    """Wrap (and take ownership of) ``ptr``, cut to ``size`` bytes; NULL becomes an empty block."""
    cdef _Buf b = _Buf.__new__(_Buf)
    cdef void *p = ptr
    if p == NULL:
        p = malloc(1)
    elif size > 0:
        p = realloc(ptr, size)
        if p == NULL:       # shrinking cannot really fail; keep the larger block if it does
            p = ptr
    if p == NULL:
        raise MemoryError()
    b.ptr = <char*>p
    b.size = <Py_ssize_t>size
    return b


# ---------------------------------------------------------------------------
# one fetched column
# ---------------------------------------------------------------------------
cdef class RawColumn:
    """The values of one result column as fetched: buffers plus what was seen.

    ``seen`` is a bitmask of ``1 << storage class`` (SQLite's codes: 1 INTEGER,
    2 REAL, 3 TEXT, 4 BLOB, 5 NULL). sqlnb.frames turns it into pandas/Arrow.
    """
    cdef readonly Py_ssize_t nrows
    cdef readonly int seen
    cdef readonly bint bad_utf8
    cdef readonly Py_ssize_t null_count
    cdef readonly object counts
    cdef _Buf _tags
    cdef _Buf _slot
    cdef _Buf _offs
    cdef _Buf _data
    cdef bint _ints_as_double     # INTEGER slots already converted to doubles in place
    cdef list _chunks             # TEXT/BLOB in pieces: [(row0, nrows, offsets|None, data|None)]

    def text_chunks(self):
        """``[(row0, nrows, offsets, data), ...]`` when the TEXT/BLOB bytes are in several
        pieces (a parallel fetch's regions, each with offsets from 0; None: no bytes there),
        else None. ``offsets()``, ``data()`` and ``objects()`` join them (a copy) first."""
        return self._chunks

    cdef int _flatten(self) except -1:
        cdef Py_ssize_t n = self.nrows, total = 0, r0, nr, i
        cdef int64_t base = 0
        cdef int64_t *offs
        cdef int64_t *src
        cdef char *data
        cdef _Buf o, d
        if self._chunks is None:
            return 0
        for _r, _n, _o, dd in self._chunks:
            total += (<_Buf>dd).size if dd is not None else 0
        offs = <int64_t*>calloc(n + 1, 8)
        data = <char*>malloc(total if total else 1)
        if offs == NULL or data == NULL:
            free(offs)
            free(data)
            raise MemoryError()
        for r0, nr, oo, dd in self._chunks:
            if oo is None:
                for i in range(nr):
                    offs[r0 + i + 1] = base
            else:
                o = oo
                src = <int64_t*>o.ptr
                for i in range(nr):
                    offs[r0 + i + 1] = base + src[i + 1]
            if dd is not None:
                d = dd
                if d.size:
                    memcpy(data + base, d.ptr, d.size)
                base += d.size
        self._offs = _own(offs, (n + 1) * 8)
        self._data = _own(data, total)
        self._chunks = None
        return 0

    def ints_exact(self):
        """True when every INTEGER value of the column is exactly representable as a double."""
        cdef Py_ssize_t i, n = self.nrows
        cdef unsigned char *tags = <unsigned char*>self._tags.ptr
        cdef int64_t *slot
        cdef int64_t v
        cdef double d
        cdef bint ok = True
        if self._slot is None or self._ints_as_double:
            return True
        slot = <int64_t*>self._slot.ptr
        with nogil:
            for i in range(n):
                if tags[i] == _T_INT:
                    v = slot[i]
                    d = <double>v
                    if not (d < 9223372036854775808.0 and <int64_t>d == v):
                        ok = False
                        break
        return ok

    def int64(self):
        """The values as an int64 ndarray sharing the fetch buffer (NULL rows hold 0)."""
        import numpy as np

        cdef Py_ssize_t i, n = self.nrows
        cdef unsigned char *tags = <unsigned char*>self._tags.ptr
        cdef int64_t *slot
        if self._slot is None:
            return np.zeros(n, dtype=np.int64)
        slot = <int64_t*>self._slot.ptr
        if self.null_count:
            with nogil:
                for i in range(n):
                    if tags[i] == _T_NULL:
                        slot[i] = 0
        return np.frombuffer(self._slot, dtype=np.int64, count=n)

    def float64(self):
        """The values as a float64 ndarray sharing the fetch buffer: INTEGER converted, NULL as NaN."""
        import numpy as np

        cdef Py_ssize_t i, n = self.nrows
        cdef unsigned char *tags = <unsigned char*>self._tags.ptr
        cdef int64_t *slot
        cdef double *dbl
        cdef bint conv = not self._ints_as_double and (self.seen & (1 << _T_INT))
        if self._slot is None:
            return np.full(n, np.nan)
        slot = <int64_t*>self._slot.ptr
        dbl = <double*>self._slot.ptr
        if conv or self.null_count:
            with nogil:
                for i in range(n):
                    if tags[i] == _T_NULL:
                        dbl[i] = NAN
                    elif conv and tags[i] == _T_INT:
                        dbl[i] = <double>slot[i]
            self._ints_as_double = True
        return np.frombuffer(self._slot, dtype=np.float64, count=n)

    def null_mask(self):
        """A new bool ndarray, True where the value is NULL."""
        import numpy as np

        cdef Py_ssize_t i, n = self.nrows
        cdef unsigned char *tags = <unsigned char*>self._tags.ptr
        cdef _Buf out = _own(malloc(n if n else 1), n)
        cdef unsigned char *m = <unsigned char*>out.ptr
        with nogil:
            for i in range(n):
                m[i] = tags[i] == _T_NULL
        return np.frombuffer(out, dtype=np.bool_, count=n)

    def validity(self, Py_ssize_t start=0, Py_ssize_t count=-1):
        """An Arrow validity bitmap (bit set = value present) of rows ``start`` ..
        ``start + count - 1`` (all rows by default), or None when none of them is NULL."""
        cdef Py_ssize_t i, n
        cdef Py_ssize_t nbytes
        cdef unsigned char *tags = <unsigned char*>self._tags.ptr
        cdef _Buf out
        cdef uint8_t *bits
        cdef bint nulls = False
        if count < 0:
            count = self.nrows - start
        if start < 0 or start > self.nrows or count > self.nrows - start:
            raise IndexError(f"rows {start}..{start + count} are outside the column's {self.nrows}")
        if self.null_count == 0:
            return None
        n = count
        nbytes = (n + 7) // 8
        out = _own(calloc(nbytes if nbytes else 1, 1), nbytes)
        bits = <uint8_t*>out.ptr
        tags += start
        with nogil:
            for i in range(n):
                if tags[i] != _T_NULL:
                    bits[i >> 3] |= <uint8_t>(1 << (i & 7))
                else:
                    nulls = True
        return out if nulls else None

    def offsets(self):
        """The n+1 int64 Arrow offsets into ``data()`` (a buffer object)."""
        self._flatten()
        if self._offs is None:
            self._offs = _own(calloc(self.nrows + 1, 8), (self.nrows + 1) * 8)
        return self._offs

    def data(self):
        """The TEXT/BLOB bytes back to back (a buffer object)."""
        self._flatten()
        if self._data is None:
            self._data = _own(NULL, 0)
        return self._data

    def objects(self):
        """An object ndarray of exactly the values the stdlib sqlite3 returns.

        INTEGER -> int, REAL -> float, TEXT -> str (invalid UTF-8 decoded with
        ``surrogateescape``, as sqlnb's cursors do), BLOB -> bytes, NULL -> None.
        """
        import numpy as np

        self._flatten()

        cdef Py_ssize_t i, n = self.nrows
        cdef unsigned char *tags = <unsigned char*>self._tags.ptr
        cdef int64_t *slot = <int64_t*>self._slot.ptr if self._slot is not None else NULL
        cdef double *dbl = <double*>slot
        cdef int64_t *offs = <int64_t*>self._offs.ptr if self._offs is not None else NULL
        cdef char *data = self._data.ptr if self._data is not None else NULL
        cdef int t
        out = np.empty(n, dtype=object)
        cdef object[:] view = out
        for i in range(n):
            t = tags[i]
            if t == _T_INT:
                view[i] = int(dbl[i]) if self._ints_as_double else slot[i]
            elif t == _T_FLOAT:
                view[i] = dbl[i]
            elif t == _T_TEXT:
                view[i] = PyUnicode_DecodeUTF8(data + offs[i], offs[i + 1] - offs[i], "surrogateescape")
            elif t == _T_BLOB:
                view[i] = PyBytes_FromStringAndSize(data + offs[i], offs[i + 1] - offs[i])
            else:
                view[i] = None
        return out


# ---------------------------------------------------------------------------
# the fetch
# ---------------------------------------------------------------------------
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
    gaps (none when the rowids were dense) and appends the parts' TEXT/BLOB.
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

    def run(self, RawStatement stmt, Py_ssize_t limit=-1, bint include_current=False):
        """Collect the rows of ``stmt`` (bound and not yet stepped, or on an unread row
        when ``include_current``). Returns "done", or "more" when ``limit`` stopped it
        with the statement on a further, unread row. Raises the step's error after
        resetting the statement (the connection stays usable).

        Holds the connection's lock while it steps: no other thread can finalize the
        statement or close the connection under it (they wait for it to return)."""
        _lock(stmt.conn)
        try:
            return self._run(stmt, limit, include_current)
        finally:
            _unlock(stmt.conn)

    cdef object _run(self, RawStatement stmt, Py_ssize_t limit, bint include_current):
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
        if self.names is None:
            self.names = stmt.column_names()
        self._setup(ncol)
        if stmt.done and not cur:
            return "done"
        conn._begin_run()
        conn.rows_seen = 0
        self._running = True
        try:
            with nogil:
                rc = _fetch_loop(&self.fs, db, st, lim, cur, &conn.rows_seen, &conn._pstate, conn._ast)
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
        if rc == _STOPPED:
            rc = SQLITE_INTERRUPT
            if conn._pending is None and conn._pstate.abort_reason != 2:
                conn._pstate.abort_reason = 0
                sqlite3_reset(st)
                self._clear()
                raise _errors.make_error(SQLITE_INTERRUPT, "interrupted", sql=stmt.sql)
        exc = conn._run_error(rc, stmt.sql)
        sqlite3_reset(st)
        if isinstance(exc, _errors.Error) and (rc & 0xFF) == SQLITE_ERROR:
            # the old (3.7) core reports the real error only after reset
            exc2 = _error_for(sqlite3_errcode(db), db, stmt.sql)
            if str(exc2) and str(exc2) != "not an error":
                exc = exc2
        self._clear()
        raise exc

    def append(self, Fetch other not None, int threads=1):
        """Move ``other``'s rows after this Fetch's rows (same columns); ``other`` is emptied.

        ``threads`` > 1 copies disjoint groups of columns on that many threads
        (the copy writes fresh memory, so its page faults are spread too)."""
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
        results = self._by_columns(threads, other, [_copy_bytes(&other.fs, j) for j in range(ncol)])
        _append_done(&self.fs, &other.fs)
        if any(results):
            raise MemoryError("out of memory while joining the parts of a parallel fetch")

    def _by_columns(self, int threads, Fetch other, list weights):
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
        workers = [_threading.Thread(target=self._cols_part, args=(other, cuts[k], cuts[k + 1], results, k),
                                     name=f"sqlnb-parallel-fetch-join-{k}", daemon=True)
                   for k in range(1, threads)]
        try:
            for t in workers:
                t.start()
            self._cols_part(other, cuts[0], cuts[1], results, 0)
        finally:
            _join_threads(workers)  # they write into our buffers: never leave one running
        return results

    def _cols_part(self, Fetch other, int j0, int j1, list results, int k):
        cdef int rc
        cdef bint appending = other is not None
        cdef _fstate *b = &other.fs if appending else NULL
        with nogil:
            if appending:
                rc = _append_cols(&self.fs, b, j0, j1)
            else:
                rc = _place_cols(&self.fs, self._jparts, self._jrow0, self._jdest, self._jn, j0, j1)
        results[k] = rc

    # --- parts: a parallel fetch's ranges written in place --------------------------
    def reserve(self, int ncol, Py_ssize_t rows):
        """Allocate tags and 8-byte slots for ``rows`` rows of ``ncol`` columns (an empty
        Fetch only), for parts to write into. Untouched memory costs address space only."""
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

    def part(self, Py_ssize_t row0, Py_ssize_t rows):
        """A Fetch whose ``run`` writes tags and numbers straight into rows ``row0`` ..
        ``row0 + rows - 1`` of this one's buffers (set up with ``reserve``); it raises
        PartFull if its statements return more than ``rows`` rows (``run`` may be called
        for several statements: their rows follow each other). The rows parts write must
        not overlap (their capacities may); join them with ``join_parts`` once every one
        has run."""
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

    def join_parts(self, parts, int threads=1):
        """Join every outstanding part (see ``part``), in row order, into this Fetch's rows:
        rows move down over the gaps left by rowids with no row; the first part's TEXT/BLOB
        buffers become this Fetch's and the others' stay as they are, handed to the columns as
        further chunks (RawColumn.text_chunks). ``threads`` > 1 works on disjoint groups of
        columns."""
        cdef Fetch p
        cdef int j, k, n = len(parts)
        cdef size_t total = 0, end = 0
        cdef bint ok = False, text
        cdef _col *y
        self._check_free_running()
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
            results = self._by_columns(threads, None, weights)
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

    cdef int _check_free_running(self) except -1:
        if self._running or self.fs.borrowed:
            raise ValueError("join_parts() needs the Fetch that reserve() set up")
        return 0

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
            if c.slot != NULL and not (c.counts[_T_INT] or c.counts[_T_FLOAT]):
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
            rc.null_count = <Py_ssize_t>c.counts[_T_NULL]
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


def fetch_columns(RawStatement stmt, Py_ssize_t limit=-1, bint include_current=False):
    """Fetch ``stmt``'s rows into columns: ``(names, [RawColumn, ...], status)``.

    ``status`` is "done" or "more" (stopped at ``limit``; the statement is on an
    unread row). See Fetch.run.
    """
    f = Fetch()
    _lock(stmt.conn)  # one caller at a time per connection (see _lock in _fast.pyx)
    try:
        status = f.run(stmt, limit, include_current)
    finally:
        _unlock(stmt.conn)
    return f.names, f.columns(), status


def utf8_valid(data):
    """True when ``data`` (bytes-like) is strict UTF-8: the check the fetcher applies to TEXT."""
    cdef const unsigned char[:] mv = memoryview(data).cast("B")
    if mv.shape[0] == 0:
        return True
    return _utf8_valid(&mv[0], mv.shape[0])


# ---------------------------------------------------------------------------
# parallel fetch plumbing (sqlnb/frames.py): one snapshot for every worker,
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
