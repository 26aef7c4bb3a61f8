# Incremental BLOB I/O (included by sqlnb/_fast.pyx): the engine side of the stdlib's
# Connection.blobopen. sqlnb.stdlib_blob.Blob is the file-like face (read, write, seek, tell,
# len, indexing and slices); this is the handle, one call per operation under the
# connection's lock.


@cython.no_gc_clear   # __dealloc__ needs its connection's lock
cdef class RawBlob:
    """An open ``sqlite3_blob``: one BLOB value of one row, read (and written) in place."""
    cdef sqlite3_blob *b
    cdef RawConnection conn

    def __init__(self, RawConnection conn, str table, str column, sqlite3_int64 row, bint readonly, str name):
        cdef bytes bt = table.encode("utf-8")
        cdef bytes bc = column.encode("utf-8")
        cdef bytes bn = name.encode("utf-8")
        cdef int rc
        _lock(conn)
        try:
            conn._check()
            rc = sqlite3_blob_open(conn.db, bn, bt, bc, row, 0 if readonly else 1, &self.b)
            if rc != SQLITE_OK:
                if self.b != NULL:
                    sqlite3_blob_close(self.b)
                    self.b = NULL
                check_rc(rc, conn.db)
        finally:
            _unlock(conn)
        self.conn = conn

    cdef int _check(self) except -1:
        if self.b == NULL:
            raise _errors.ProgrammingError("Cannot operate on a closed blob.")
        self.conn._check()
        return 0

    @property
    def closed(self):
        return self.b == NULL

    def length(self):
        _lock(self.conn)
        try:
            self._check()
            return sqlite3_blob_bytes(self.b)
        finally:
            _unlock(self.conn)

    def read(self, int offset, int n):
        """``n`` bytes from ``offset`` (the caller keeps them inside the blob)."""
        cdef bytes out
        cdef int rc
        _lock(self.conn)
        try:
            self._check()
            out = PyBytes_FromStringAndSize(NULL, n)
            rc = sqlite3_blob_read(self.b, PyBytes_AS_STRING(out), n, offset)
            check_rc(rc, self.conn.db)
            return out
        finally:
            _unlock(self.conn)

    def write(self, int offset, data):
        """Write the bytes-like ``data`` at ``offset`` (the caller keeps it inside the blob)."""
        cdef Py_buffer view
        cdef int rc
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            _lock(self.conn)
            try:
                self._check()
                if view.len > INT_MAX:
                    raise _errors.TooBigError("data too large for a blob")
                rc = sqlite3_blob_write(self.b, view.buf, <int>view.len, offset)
                check_rc(rc, self.conn.db)
            finally:
                _unlock(self.conn)
        finally:
            PyBuffer_Release(&view)

    def close(self):
        _lock(self.conn)
        try:
            if self.b != NULL:
                sqlite3_blob_close(self.b)
                self.b = NULL
        finally:
            _unlock(self.conn)

    def __dealloc__(self):
        if self.b != NULL:
            if self.conn is None or self.conn.db == NULL:
                sqlite3_blob_close(self.b)   # (its connection closed: a zombie waiting for this)
            elif self.conn._lock != NULL and PyThread_acquire_lock(self.conn._lock, NOWAIT_LOCK):
                sqlite3_blob_close(self.b)
                PyThread_release_lock(self.conn._lock)
            self.b = NULL
