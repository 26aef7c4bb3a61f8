# The sqlnb_frame virtual table: SQL over a pandas / Arrow frame's own buffers (included by
# sqlnb/_fast.pyx). The C module is _core/frame_vtab.h; this file holds its Python side:
#
# * a registry per connection (``_FrameRegistry``, the module's client data: freed when the
#   connection closes) maps the key in ``CREATE VIRTUAL TABLE temp.t USING sqlnb_frame(key)`` to
#   a ``FrameSource``: the frame, the callable that describes its columns as raw pointers
#   (``sqlnb.frames.source``; the core never imports it) and the table's declaration;
# * each virtual table holds a strong reference to its FrameSource, each cursor one to the
#   ``_FrameSnap`` its xOpen built (C arrays of pointers plus the Python objects owning the
#   memory): a frame dropped or mutated elsewhere while a statement steps stays readable;
# * ``frame_register`` / ``frame_unregister`` create and drop the table. They run the one
#   statement they build themselves with the connection's authorizer lifted for it (registering
#   a frame is an API call, not SQL; the policy keeps deciding every statement the user runs,
#   which reads the table as a temp table). The frame's values never pass through Python but
#   for a numpy object column's values other than str / bytes / float / bool / None.

from cpython.ref cimport Py_INCREF, Py_DECREF
from cpython.unicode cimport PyUnicode_AsUTF8AndSize

cdef extern from "frame_vtab.h" nogil:
    ctypedef struct sqlnb_fchunk:
        int64_t start
        int64_t length
        const char *data
        int64_t stride
        int64_t bit0
        const uint8_t *valid
        int64_t vbit
        const uint8_t *mask
        const char *offsets
        const char *chars
        const char **vbufs
        int nvbufs
    ctypedef struct sqlnb_fcol:
        int kind
        int width
        int64_t unit
        int flags
        int nchunks
        sqlnb_fchunk *chunks
        sqlnb_fcol *dict
    ctypedef struct sqlnb_fsnap:
        int64_t nrows
        int ncols
        sqlnb_fcol *cols
    ctypedef struct sqlnb_fkey:
        int type
        int isint
        int64_t i
        double d
        const char *p
        int64_t n
    ctypedef struct sqlnb_fhooks:
        int (*connect)(void *, const char *, void **, char **, int64_t *, int64_t **, const char **,
                       char **) noexcept nogil
        void (*classes)(void *, const uint8_t **, int *) noexcept nogil
        void (*release)(void *) noexcept nogil
        int (*open)(void *, void **, sqlnb_fsnap **, char **) noexcept nogil
        void (*close)(void *) noexcept nogil
        void (*pyvalue)(sqlite3_context *, void *) noexcept nogil
        int (*pykey)(void *, void *, sqlnb_fkey *) noexcept nogil
    sqlnb_fhooks sqlnb_frame_hooks
    int sqlnb_fo_class(const sqlnb_fcol *col)
    int FKT_NULL, FKT_NUM, FKT_TEXT, FKT_BLOB
    int sqlnb_frame_create_module(sqlite3 *db, const char *name, void *aux, void (*destroy)(void *) noexcept nogil)
    char *sqlite3_mprintf(const char *fmt, ...)
    int sqlite3_exec(sqlite3 *db, const char *sql, void *cb, void *arg, char **errmsg)
    void sqlite3_result_null(sqlite3_context *ctx)
    void sqlite3_result_int64(sqlite3_context *ctx, sqlite3_int64 v)
    void sqlite3_result_double(sqlite3_context *ctx, double v)
    void sqlite3_result_text(sqlite3_context *ctx, const char *z, int n, sqlite3_destructor_type d)
    void sqlite3_result_blob(sqlite3_context *ctx, const void *z, int n, sqlite3_destructor_type d)
    void sqlite3_result_error(sqlite3_context *ctx, const char *z, int n)

#: the module's name in SQL
FRAME_MODULE = "sqlnb_frame"
# the converter of an object column's other values (set by frame_register: sqlnb.frames.source's)
cdef object _frame_convert = None


cdef char *_frame_msg(object text) noexcept:
    cdef bytes b = str(text).encode("utf-8", "replace")
    return sqlite3_mprintf("%s", <const char*>b)


cdef class _FrameRegistry:
    """The frames registered on one connection: key -> FrameSource, table name -> key."""
    cdef dict by_key
    cdef dict by_name
    cdef long long next_key

    def __cinit__(self):
        self.by_key = {}
        self.by_name = {}
        self.next_key = 0


cdef class FrameSource:
    """One registered frame: the object, how to describe it, the table's declaration."""
    cdef readonly object frame
    cdef readonly object describe
    cdef readonly str name
    cdef readonly tuple names
    cdef bytes _decl
    cdef bytes _label
    cdef int64_t _rows_read
    cdef int64_t _nrows
    cdef uint8_t *_classes      # per column its frame_order.h class (FO_*), as of the last xOpen
    cdef int _ncols

    def __dealloc__(self):
        free(self._classes)
        self._classes = NULL

    @property
    def order_classes(self):
        """Per column: 0 served unordered, 1 in order, 2 grouped only (frame_order.h; tests)."""
        return tuple(self._classes[i] for i in range(self._ncols)) if self._classes != NULL else ()

    @property
    def rows_read(self):
        """Rows the table's cursors have visited since it was registered (tests, benchmarks)."""
        return self._rows_read

    cdef _FrameSnap snapshot(self):
        cdef _FrameSnap snap
        nrows, names, cols, keep = self.describe()
        if tuple(names) != self.names:
            raise _errors.OperationalError(
                f"the frame's columns changed since it was registered (now {list(names)!r}, "
                f"registered {list(self.names)!r}): register it again")
        snap = _FrameSnap.__new__(_FrameSnap)
        snap.build(nrows, cols, keep)
        self._nrows = nrows
        if self._classes == NULL:
            self._classes = <uint8_t*>calloc(max(snap.snap.ncols, 1), 1)
            if self._classes == NULL:
                raise MemoryError()
            self._ncols = snap.snap.ncols
        for i in range(min(self._ncols, snap.snap.ncols)):
            self._classes[i] = <uint8_t>sqlnb_fo_class(&snap.snap.cols[i])
        return snap


cdef class _FrameSnap:
    """C column descriptions (pointers) of a frame at one xOpen, and the objects owning the memory."""
    cdef sqlnb_fsnap snap
    cdef object keep
    cdef dict pykeys    # id(object) -> the text / bytes an ordered scan compares (frame_order.h)

    def __cinit__(self):
        self.snap.nrows = 0
        self.snap.ncols = 0
        self.snap.cols = NULL

    def __dealloc__(self):
        cdef int i
        if self.snap.cols != NULL:
            for i in range(self.snap.ncols):
                _fv_free_col(&self.snap.cols[i])
            free(self.snap.cols)
            self.snap.cols = NULL

    cdef int build(self, int64_t nrows, list cols, object keep) except -1:
        cdef int i, n = len(cols)
        self.keep = keep
        self.snap.cols = <sqlnb_fcol*>calloc(max(n, 1), sizeof(sqlnb_fcol))
        if self.snap.cols == NULL:
            raise MemoryError()
        self.snap.ncols = n
        self.snap.nrows = nrows
        for i in range(n):
            _fv_fill_col(&self.snap.cols[i], cols[i])
        return 0


cdef void _fv_free_col(sqlnb_fcol *c) noexcept:
    cdef int j
    if c.chunks != NULL:
        for j in range(c.nchunks):
            if c.chunks[j].vbufs != NULL:
                free(<void*>c.chunks[j].vbufs)
        free(c.chunks)
        c.chunks = NULL
    if c.dict != NULL:
        _fv_free_col(c.dict)
        free(c.dict)
        c.dict = NULL


cdef int _fv_fill_col(sqlnb_fcol *c, tuple desc) except -1:
    """desc: (kind, width, unit, flags, chunks, dict desc or None); a chunk: (start, length, data,
    stride, bit0, valid, vbit, mask, offsets, chars, vbufs) with addresses as ints (0: none)."""
    cdef int j, k, nch
    cdef sqlnb_fchunk *ch
    kind, width, unit, flags, chunks, dict_desc = desc
    c.kind = kind
    c.width = width
    c.unit = unit
    c.flags = flags
    nch = len(chunks)
    c.chunks = <sqlnb_fchunk*>calloc(max(nch, 1), sizeof(sqlnb_fchunk))
    if c.chunks == NULL:
        raise MemoryError()
    c.nchunks = nch
    for j in range(nch):
        ch = &c.chunks[j]
        (start, length, data, stride, bit0, valid, vbit, mask, offsets, chars, vbufs) = chunks[j]
        ch.start = start
        ch.length = length
        ch.data = <const char*><uintptr_t>data
        ch.stride = stride
        ch.bit0 = bit0
        ch.valid = <const uint8_t*><uintptr_t>valid
        ch.vbit = vbit
        ch.mask = <const uint8_t*><uintptr_t>mask
        ch.offsets = <const char*><uintptr_t>offsets
        ch.chars = <const char*><uintptr_t>chars
        if vbufs:
            ch.vbufs = <const char**>calloc(len(vbufs), sizeof(char*))
            if ch.vbufs == NULL:
                raise MemoryError()
            for k in range(len(vbufs)):
                ch.vbufs[k] = <const char*><uintptr_t>vbufs[k]
            ch.nvbufs = len(vbufs)
    if dict_desc is not None:
        c.dict = <sqlnb_fcol*>calloc(1, sizeof(sqlnb_fcol))
        if c.dict == NULL:
            raise MemoryError()
        _fv_fill_col(c.dict, dict_desc)
    return 0


# --- the hooks frame_vtab.h calls (each takes the GIL) --------------------------------------
cdef int _fh_connect(void *aux, const char *key, void **source, char **decl, int64_t *nrows,
                     int64_t **counter, const char **label, char **err) noexcept with gil:
    cdef _FrameRegistry reg = <_FrameRegistry>aux
    cdef FrameSource src
    try:
        k = key.decode("utf-8", "replace")
        src = reg.by_key.get(k)
        if src is None:
            err[0] = _frame_msg(f"no frame is registered under the key {k!r} on this connection "
                                "(register one with Connection.register(name, frame))")
            return SQLITE_ERROR
        Py_INCREF(src)
        source[0] = <void*>src
        decl[0] = sqlite3_mprintf("%s", <const char*>src._decl)
        nrows[0] = src._nrows
        counter[0] = &src._rows_read
        label[0] = <const char*>src._label
        return SQLITE_OK
    except BaseException as exc:
        err[0] = _frame_msg(f"sqlnb_frame: {exc}")
        return SQLITE_ERROR


cdef void _fh_classes(void *source, const uint8_t **classes, int *ncols) noexcept with gil:
    # the FrameSource's C array (it lives as long as the table holding the source)
    classes[0] = (<FrameSource>source)._classes
    ncols[0] = (<FrameSource>source)._ncols


cdef int _fh_pykey(void *snapobj, void *obj, sqlnb_fkey *k) noexcept with gil:
    # a numpy object column's value the C path does not read, as xColumn gives it: a str gets its
    # UTF-8 form cached (it lives as long as the str, which the snapshot holds); other values go
    # through the converter like _fh_pyvalue, the text or bytes kept on the snapshot (one per object)
    cdef const char *u
    cdef Py_ssize_t n
    cdef _FrameSnap snap = <_FrameSnap>snapobj
    cdef bytes b
    o = <object>obj
    if type(o) is str:
        try:
            u = PyUnicode_AsUTF8AndSize(o, &n)
            k.type = FKT_TEXT
            k.p = u
            k.n = n
            return 0
        except UnicodeError:    # lone surrogates: the bytes xColumn gives them (surrogatepass), below
            pass
    try:
        v = _frame_convert(o) if _frame_convert is not None else str(o)
        if v is None:
            k.type = FKT_NULL
        elif isinstance(v, int):
            k.type = FKT_NUM
            k.isint = 1
            k.i = v
        elif isinstance(v, float):
            k.type = FKT_NUM
            k.isint = 0
            k.d = v
        else:
            if snap.pykeys is None:
                snap.pykeys = {}
            b = snap.pykeys.get(id(o))
            if b is None:
                b = v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogatepass")
                snap.pykeys[id(o)] = b
            k.type = FKT_BLOB if isinstance(v, bytes) else FKT_TEXT
            k.p = <const char*>b
            k.n = len(b)
        return 0
    except BaseException:
        return -1


cdef void _fh_release(void *source) noexcept with gil:
    Py_DECREF(<object>source)


cdef int _fh_open(void *source, void **snapobj, sqlnb_fsnap **snap, char **err) noexcept with gil:
    cdef FrameSource src = <FrameSource>source
    cdef _FrameSnap s
    try:
        s = src.snapshot()
    except BaseException as exc:
        err[0] = _frame_msg(f"{src.name}: {exc}")
        return SQLITE_ERROR
    Py_INCREF(s)
    snapobj[0] = <void*>s
    snap[0] = &s.snap
    return SQLITE_OK


cdef void _fh_close(void *snapobj) noexcept with gil:
    Py_DECREF(<object>snapobj)


cdef void _fh_pyvalue(sqlite3_context *ctx, void *obj) noexcept with gil:
    cdef bytes b
    try:
        v = _frame_convert(<object>obj) if _frame_convert is not None else str(<object>obj)
        if v is None:
            sqlite3_result_null(ctx)
        elif isinstance(v, int):
            sqlite3_result_int64(ctx, v)
        elif isinstance(v, float):
            sqlite3_result_double(ctx, v)
        elif isinstance(v, bytes):
            b = v
            sqlite3_result_blob(ctx, <const char*>b, <int>len(b), SQLITE_TRANSIENT)
        else:
            b = str(v).encode("utf-8", "surrogatepass")
            sqlite3_result_text(ctx, <const char*>b, <int>len(b), SQLITE_TRANSIENT)
    except BaseException as exc:
        b = f"a value of an object column: {exc}".encode("utf-8", "replace")
        sqlite3_result_error(ctx, <const char*>b, <int>len(b))


cdef void _fh_destroy_registry(void *aux) noexcept with gil:
    # the connection closed: its frames are let go now, not when the connection object goes
    cdef _FrameRegistry reg = <_FrameRegistry>aux
    reg.by_key.clear()
    reg.by_name.clear()
    Py_DECREF(reg)


sqlnb_frame_hooks.connect = _fh_connect
sqlnb_frame_hooks.release = _fh_release
sqlnb_frame_hooks.open = _fh_open
sqlnb_frame_hooks.close = _fh_close
sqlnb_frame_hooks.pyvalue = _fh_pyvalue
sqlnb_frame_hooks.classes = _fh_classes
sqlnb_frame_hooks.pykey = _fh_pykey

# RawConnection -> its _FrameRegistry (the module's client data lives as long as the handle)
_frame_registries = weakref.WeakKeyDictionary()


cdef _FrameRegistry _frame_registry(RawConnection raw):
    cdef _FrameRegistry reg = _frame_registries.get(raw)
    cdef int rc
    if reg is not None:
        return reg
    reg = _FrameRegistry.__new__(_FrameRegistry)
    Py_INCREF(reg)     # the module's reference, dropped by _fh_destroy_registry at close
    rc = sqlnb_frame_create_module(raw.db, b"sqlnb_frame", <void*>reg, _fh_destroy_registry)
    if rc != SQLITE_OK:
        # sqlite3_create_module_v2 calls the destructor itself when it fails
        check_rc(rc, raw.db)
    _frame_registries[raw] = reg
    return reg


cdef int _frame_exec(RawConnection raw, str sql) except -1:
    """Run ``sql`` (built here, never the user's) with the authorizer lifted for it."""
    cdef bytes b = sql.encode("utf-8")
    cdef char *err = NULL
    cdef int rc
    if raw._ast != NULL:
        sqlite3_set_authorizer(raw.db, NULL, NULL)
    try:
        rc = sqlite3_exec(raw.db, b, NULL, NULL, &err)
    finally:
        if raw._ast != NULL:
            sqlite3_set_authorizer(raw.db, _auth_cb, raw._ast)
    if rc != SQLITE_OK:
        msg = err.decode("utf-8", "replace") if err != NULL else ""
        sqlite3_free(err)
        raise _errors.make_error(rc, msg, extended_code=sqlite3_extended_errcode(raw.db), sql=sql)
    return 0


def frame_register(RawConnection raw, str name, object frame, object describe, tuple names, str decl,
                   object convert=None, bint replace=False):
    """Serve ``frame`` as the table ``temp.<name>``: ``describe()`` gives ``(nrows, names,
    columns, keep)`` (see ``sqlnb.frames.source``), ``decl`` is the column list of the table's
    declaration. Returns the FrameSource."""
    global _frame_convert
    cdef _FrameRegistry reg
    cdef FrameSource src
    _lock(raw)
    try:
        raw._check()
        reg = _frame_registry(raw)
        if convert is not None:
            _frame_convert = convert
        if name.lower() in reg.by_name:
            if not replace:
                raise _errors.ProgrammingError(
                    f"a frame is already registered as {name!r}; unregister it first or pass replace=True")
            _frame_drop(raw, reg, name)
        src = FrameSource.__new__(FrameSource)
        src.frame = frame
        src.describe = describe
        src.name = name
        src.names = tuple(names)
        src._label = name.encode("utf-8", "replace")
        src._decl = f"CREATE TABLE x({decl})".encode("utf-8")
        src._nrows = 0
        src.snapshot()   # checks the description once (and the row count xBestIndex starts from)
        reg.next_key += 1
        key = str(reg.next_key)
        reg.by_key[key] = src
        try:
            _frame_exec(raw, f"CREATE VIRTUAL TABLE temp.{_sql.quote_identifier(name)} "
                             f"USING sqlnb_frame({key})")
        except BaseException:
            del reg.by_key[key]
            raise
        reg.by_name[name.lower()] = key
        return src
    finally:
        _unlock(raw)


cdef int _frame_drop(RawConnection raw, _FrameRegistry reg, str name) except -1:
    key = reg.by_name[name.lower()]
    src = reg.by_key[key]
    _frame_exec(raw, f"DROP TABLE temp.{_sql.quote_identifier((<FrameSource>src).name)}")
    del reg.by_name[name.lower()]
    del reg.by_key[key]
    return 0


def frame_unregister(RawConnection raw, str name):
    """Drop the table a frame was registered as (ProgrammingError if none is)."""
    cdef _FrameRegistry reg
    _lock(raw)
    try:
        raw._check()
        reg = _frame_registries.get(raw)
        if reg is None or name.lower() not in reg.by_name:
            raise _errors.ProgrammingError(f"no frame is registered as {name!r} on this connection")
        _frame_drop(raw, reg, name)
    finally:
        _unlock(raw)


def frame_sources(RawConnection raw):
    """``{name: FrameSource}`` of the frames registered on ``raw``."""
    cdef _FrameRegistry reg = _frame_registries.get(raw)
    if reg is None:
        return {}
    return {src.name: src for src in (reg.by_key[k] for k in reg.by_name.values())}
