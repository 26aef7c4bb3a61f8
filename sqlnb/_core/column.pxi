# RawColumn (included by sqlnb/_fast.pyx): one fetched column's buffers, which numpy
# and pyarrow wrap without copying (_Buf), and the conversions sqlnb.frames asks for.

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
                if tags[i] == CLASS_INTEGER:
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
                    if tags[i] == CLASS_NULL:
                        slot[i] = 0
        return np.frombuffer(self._slot, dtype=np.int64, count=n)

    def float64(self):
        """The values as a float64 ndarray sharing the fetch buffer: INTEGER converted, NULL as NaN."""
        import numpy as np

        cdef Py_ssize_t i, n = self.nrows
        cdef unsigned char *tags = <unsigned char*>self._tags.ptr
        cdef int64_t *slot
        cdef double *dbl
        cdef bint conv = not self._ints_as_double and (self.seen & (1 << CLASS_INTEGER))
        if self._slot is None:
            return np.full(n, np.nan)
        slot = <int64_t*>self._slot.ptr
        dbl = <double*>self._slot.ptr
        if conv or self.null_count:
            with nogil:
                for i in range(n):
                    if tags[i] == CLASS_NULL:
                        dbl[i] = NAN
                    elif conv and tags[i] == CLASS_INTEGER:
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
                m[i] = tags[i] == CLASS_NULL
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
                if tags[i] != CLASS_NULL:
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
            if t == CLASS_INTEGER:
                view[i] = int(dbl[i]) if self._ints_as_double else slot[i]
            elif t == CLASS_REAL:
                view[i] = dbl[i]
            elif t == CLASS_TEXT:
                view[i] = PyUnicode_DecodeUTF8(data + offs[i], offs[i + 1] - offs[i], "surrogateescape")
            elif t == CLASS_BLOB:
                view[i] = PyBytes_FromStringAndSize(data + offs[i], offs[i + 1] - offs[i])
            else:
                view[i] = None
        return out


