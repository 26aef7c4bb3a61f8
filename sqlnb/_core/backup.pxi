# Online backup and serialize/deserialize (included by sqlnb/_fast.pyx): the engine side of the
# stdlib's Connection.backup, serialize and deserialize (sqlnb.stdlib_api drives them).
#
# A RawBackup holds both connections' locks only while it steps (the GIL released), so the
# facade can sleep between steps and call the progress callback. The bdb core has backup but
# neither serialize nor deserialize (3.23): HAVE_SERIALIZE says so.

HAVE_SERIALIZE = bool(SQLNB_HAVE_SERIALIZE)


@cython.no_gc_clear   # __dealloc__ needs its connections' locks
cdef class RawBackup:
    """One ``sqlite3_backup`` from ``source`` (a database name) into ``target``."""
    cdef sqlite3_backup *b
    cdef RawConnection source
    cdef RawConnection target
    cdef readonly int remaining
    cdef readonly int pagecount

    def __init__(self, RawConnection target, str target_name, RawConnection source, str source_name):
        cdef bytes tn = target_name.encode("utf-8")
        cdef bytes sn = source_name.encode("utf-8")
        if target is source:
            raise ValueError("target cannot be the same connection instance")
        _lock(target)
        try:
            target._check()
            _lock(source)
            try:
                source._check()
                self.b = sqlite3_backup_init(target.db, tn, source.db, sn)
                if self.b == NULL:
                    check_rc(sqlite3_errcode(target.db) or SQLITE_ERROR, target.db)
            finally:
                _unlock(source)
        finally:
            _unlock(target)
        self.source = source
        self.target = target

    def step(self, int pages):
        """Copy up to ``pages`` pages (-1: all). Returns "done", "more" or "busy" (a lock held
        elsewhere: try again later); raises for any other error."""
        cdef int rc
        if self.b == NULL:
            raise _errors.ProgrammingError("this backup is finished")
        _lock(self.target)
        try:
            _lock(self.source)
            try:
                self.target._check()
                self.source._check()
                with nogil:
                    rc = sqlite3_backup_step(self.b, pages)
                self.remaining = sqlite3_backup_remaining(self.b)
                self.pagecount = sqlite3_backup_pagecount(self.b)
            finally:
                _unlock(self.source)
        finally:
            _unlock(self.target)
        if rc == SQLITE_DONE:
            return "done"
        if rc == SQLITE_OK:
            return "more"
        if (rc & 0xFF) == SQLITE_BUSY or (rc & 0xFF) == SQLITE_LOCKED:
            return "busy"
        self.finish()
        raise _error_for(rc, NULL, None)

    def finish(self):
        """Release the backup (idempotent); raises the error it ended with, if any."""
        cdef int rc
        if self.b == NULL:
            return
        _lock(self.target)
        try:
            rc = sqlite3_backup_finish(self.b)
            self.b = NULL
            if rc != SQLITE_OK and self.target.db != NULL:
                check_rc(rc, self.target.db)
        finally:
            _unlock(self.target)

    def __dealloc__(self):
        if self.b != NULL:
            if self.target is not None and self.target._lock != NULL and \
                    PyThread_acquire_lock(self.target._lock, NOWAIT_LOCK):
                sqlite3_backup_finish(self.b)
                PyThread_release_lock(self.target._lock)
            self.b = NULL


def serialize(RawConnection raw, str name="main"):
    """The database ``name`` as the bytes of its file (``sqlite3_serialize``)."""
    cdef bytes bname = name.encode("utf-8")
    cdef const char *zname = bname
    cdef sqlite3_int64 size = 0
    cdef unsigned char *p
    if not SQLNB_HAVE_SERIALIZE:
        raise _errors.FeatureNotSupportedError(
            f"serialize() needs SQLite 3.23 or later; the {FLAVOUR} engine's core is {HEADER_VERSION}")
    _lock(raw)
    try:
        raw._check()
        with nogil:
            p = sqlite3_serialize(raw.db, zname, &size, 0)
        if p == NULL:
            if size == 0 and sqlite3_db_readonly(raw.db, bname) != -1:
                return b""
            raise _errors.OperationalError(f"unable to serialize database {name!r} (no such database?)")
        try:
            return PyBytes_FromStringAndSize(<const char*>p, size)
        finally:
            sqlite3_free(p)
    finally:
        _unlock(raw)


def deserialize(RawConnection raw, data, str name="main"):
    """Replace database ``name`` with the image ``data`` (bytes-like), held in memory."""
    cdef bytes bname = name.encode("utf-8")
    cdef Py_buffer view
    cdef unsigned char *buf
    cdef int rc
    if not SQLNB_HAVE_SERIALIZE:
        raise _errors.FeatureNotSupportedError(
            f"deserialize() needs SQLite 3.23 or later; the {FLAVOUR} engine's core is {HEADER_VERSION}")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        _lock(raw)
        try:
            raw._check()
            buf = <unsigned char*>sqlite3_malloc64(<uint64_t>(view.len if view.len > 0 else 1))
            if buf == NULL:
                raise MemoryError()
            memcpy(buf, view.buf, view.len)
            rc = sqlite3_deserialize(raw.db, bname, buf, view.len, view.len,
                                     SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE)
            check_rc(rc, raw.db)    # (SQLite frees ``buf`` itself when it fails)
        finally:
            _unlock(raw)
    finally:
        PyBuffer_Release(&view)
