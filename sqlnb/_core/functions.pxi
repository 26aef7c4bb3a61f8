# User-defined SQL functions, aggregates, window functions and collations (included by
# sqlnb/_fast.pyx): the stdlib sqlite3's create_function / create_aggregate /
# create_window_function / create_collation, on the compiled engines.
#
# SQLite calls the callbacks below while a statement steps, with the GIL released: each one
# takes the GIL (``with gil``), converts the arguments as the fetcher converts columns
# (INTEGER -> int, REAL -> float, TEXT -> str (UTF-8, surrogateescape), BLOB -> bytes,
# NULL -> None), calls the Python object through vectorcall (no tuple is built) and sets
# the result by the bind rule (sqlnb._bind.adapt for what is not a plain type). Nothing a
# callback raises escapes into SQLite: an exception becomes the statement's error
# (sqlite3_result_error, a message naming the function); the exception itself is kept on
# the connection and becomes that error's ``__cause__`` (RawConnection._run_error calls
# _udf_error). KeyboardInterrupt and SystemExit are re-raised as themselves. A collation
# cannot report an error to SQLite: it interrupts the statement instead, and the same
# rule names it.
#
# Each registration is a _UserFunction that SQLite owns (one reference, released by the
# xDestroy SQLite calls when the function is replaced, deleted or the connection closes).
# It points at its RawConnection without a reference: SQLite drops it before the handle
# closes, and no statement can run once the RawConnection is gone.

from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.limits cimport INT_MAX

cdef extern from "Python.h":
    object PyObject_Vectorcall(object callable, PyObject **args, size_t nargsf, PyObject *kwnames)
    object PyObject_VectorcallMethod(object name, PyObject **args, size_t nargsf, PyObject *kwnames)
    size_t PY_VECTORCALL_ARGUMENTS_OFFSET
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL

cdef enum:
    UDF_STACK_ARGS = 8          # arguments passed from the C stack (more: one PyMem_Malloc per call)

cdef str _M_STEP = "step"
cdef str _M_FINALIZE = "finalize"
cdef str _M_VALUE = "value"
cdef str _M_INVERSE = "inverse"


cdef class _UserFunction:
    """One registration: the callable (or aggregate class), its SQL name, what it is."""
    cdef object func
    cdef str name
    cdef str kind               # "function", "aggregate", "window function", "collation"
    cdef void *owner            # the RawConnection (borrowed, see above)


cdef struct agg_slot:           # the per-group state SQLite keeps (sqlite3_aggregate_context)
    PyObject *instance          # the aggregate object (a reference), NULL before the first step
    int failed                  # a method raised: the statement's error is set, finalize is not called


cdef inline object _value_object(sqlite3_value *v):
    """A function argument as the fetcher converts a column (statement.pxi's _column_value)."""
    cdef int t = sqlite3_value_type(v)
    cdef const char *p
    if t == SQLITE_INTEGER:
        return sqlite3_value_int64(v)
    elif t == SQLITE_FLOAT:
        return sqlite3_value_double(v)
    elif t == SQLITE_TEXT:
        p = <const char*>sqlite3_value_text(v)
        return _text(p, sqlite3_value_bytes(v))
    elif t == SQLITE_BLOB:
        p = <const char*>sqlite3_value_blob(v)
        return PyBytes_FromStringAndSize(p, sqlite3_value_bytes(v))
    return None


cdef object _udf_call(object target, object method, int argc, sqlite3_value **argv):
    """``target(*args)`` (``method`` None) or ``target.method(*args)``, the arguments converted
    from SQL values, passed by vectorcall from a C array."""
    cdef PyObject *small[UDF_STACK_ARGS + 1]
    cdef PyObject **args = small
    cdef int i, made = 0
    cdef object v
    if argc > UDF_STACK_ARGS:
        args = <PyObject**>PyMem_Malloc((argc + 1) * sizeof(PyObject*))
        if args == NULL:
            raise MemoryError()
    try:
        args[0] = <PyObject*>target
        for i in range(argc):
            v = _value_object(argv[i])
            Py_INCREF(v)
            args[i + 1] = <PyObject*>v
            made += 1
        if method is None:
            return PyObject_Vectorcall(target, args + 1, <size_t>argc | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)
        return PyObject_VectorcallMethod(method, args, <size_t>(argc + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)
    finally:
        for i in range(made):
            Py_XDECREF(args[i + 1])
        if args != small:
            PyMem_Free(args)


cdef int _udf_result(sqlite3_context *ctx, object r, _UserFunction f) except -1:
    """Set ``r`` as the function's result: the plain types directly, the rest by the bind rule."""
    cdef const char *p
    cdef Py_ssize_t n
    cdef bytes b
    cdef Py_buffer view
    if r is None:
        sqlite3_result_null(ctx)
    elif isinstance(r, int):            # bool too; OverflowError past 64 bits (-> SQLITE_TOOBIG)
        sqlite3_result_int64(ctx, <int64_t>r)
    elif isinstance(r, float):
        sqlite3_result_double(ctx, <double>r)
    elif isinstance(r, str):
        try:
            p = PyUnicode_AsUTF8AndSize(r, &n)
        except UnicodeEncodeError:      # lone surrogates: as the bind rule stores them
            b = (<str>r).encode("utf-8", "surrogateescape")
            p = PyBytes_AS_STRING(b)
            n = PyBytes_GET_SIZE(b)
        if n > INT_MAX:
            sqlite3_result_error_toobig(ctx)
        else:
            sqlite3_result_text(ctx, p, <int>n, SQLITE_TRANSIENT)
    elif isinstance(r, (bytes, bytearray, memoryview)):
        PyObject_GetBuffer(r, &view, PyBUF_SIMPLE)
        try:
            if view.len > INT_MAX:
                sqlite3_result_error_toobig(ctx)
            else:
                sqlite3_result_blob(ctx, view.buf, <int>view.len, SQLITE_TRANSIENT)
        finally:
            PyBuffer_Release(&view)
    else:   # numpy scalars, dates, Real, __index__ ...: the one bind rule (one of the above)
        return _udf_result(ctx, _bind.adapt(r, f"the result of {f.kind} {f.name!r}"), f)
    return 0


cdef str _udf_message(_UserFunction f, str method, BaseException exc):
    where = f"user-defined {f.kind} {f.name!r}" + (f" ({method})" if method else "")
    text = str(exc)
    return f"{where} raised {type(exc).__name__}" + (f": {text}" if text else "")


cdef void _udf_keep(RawConnection c, str msg, BaseException exc) noexcept:
    """Remember the first failure of this step (its message and exception) on the connection."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        if c._pending is None:
            c._pending = exc
    elif c._udf_cause is None:
        c._udf_cause = (msg, exc)


cdef void _udf_fail(sqlite3_context *ctx, _UserFunction f, str method, BaseException exc) noexcept:
    """The statement fails with an error naming the function; the exception is its cause."""
    cdef bytes b
    try:
        msg = _udf_message(f, method, exc)
        _udf_keep(<RawConnection>f.owner, msg, exc)
        b = msg.encode("utf-8", "replace")
        sqlite3_result_error(ctx, PyBytes_AS_STRING(b), <int>min(PyBytes_GET_SIZE(b), INT_MAX))
    except BaseException:
        sqlite3_result_error(ctx, "user-defined function raised an exception", -1)
    if isinstance(exc, OverflowError):     # a value too large for SQLite, as the stdlib reports it
        sqlite3_result_error_code(ctx, SQLITE_TOOBIG)
    elif isinstance(exc, MemoryError):
        sqlite3_result_error_code(ctx, SQLITE_NOMEM)


cdef object _udf_error(RawConnection c, int rc, object sql):
    """The exception for a step a user function failed (RawConnection._run_error): SQLite's
    error (its message is the function's), or for a collation (which interrupted the
    statement) an SQLITE_ERROR with the message; the Python exception is ``__cause__``."""
    msg, cause = c._udf_cause
    c._udf_cause = None
    if (rc & 0xFF) == SQLITE_INTERRUPT:
        exc = _errors.make_error(SQLITE_ERROR, msg, sql=sql)
    else:
        exc = c._policy_error(rc, sql)
    exc.__cause__ = cause
    return exc


# --- the callbacks SQLite calls ---------------------------------------------------------
cdef void _udf_scalar(sqlite3_context *ctx, int argc, sqlite3_value **argv) noexcept with gil:
    cdef _UserFunction f = <_UserFunction>sqlite3_user_data(ctx)
    try:
        _udf_result(ctx, _udf_call(f.func, None, argc, argv), f)
    except BaseException as exc:
        _udf_fail(ctx, f, "", exc)


cdef agg_slot *_agg_slot(sqlite3_context *ctx, _UserFunction f) noexcept:
    """This group's state, its aggregate object made on the first call; NULL when that failed
    (the error is set) or after a failure."""
    cdef agg_slot *slot = <agg_slot*>sqlite3_aggregate_context(ctx, sizeof(agg_slot))
    if slot == NULL:
        sqlite3_result_error_nomem(ctx)
        return NULL
    if slot.failed:
        return NULL
    if slot.instance == NULL:
        try:
            inst = f.func()
        except BaseException as exc:
            slot.failed = 1
            _udf_fail(ctx, f, "__init__", exc)
            return NULL
        Py_INCREF(inst)
        slot.instance = <PyObject*>inst
    return slot


cdef void _agg_method(sqlite3_context *ctx, str method, int argc, sqlite3_value **argv) noexcept:
    cdef _UserFunction f = <_UserFunction>sqlite3_user_data(ctx)
    cdef agg_slot *slot = _agg_slot(ctx, f)
    if slot == NULL:
        return
    try:
        _udf_call(<object>slot.instance, method, argc, argv)
    except BaseException as exc:
        slot.failed = 1
        _udf_fail(ctx, f, method, exc)


cdef void _agg_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) noexcept with gil:
    _agg_method(ctx, _M_STEP, argc, argv)


cdef void _agg_inverse(sqlite3_context *ctx, int argc, sqlite3_value **argv) noexcept with gil:
    _agg_method(ctx, _M_INVERSE, argc, argv)


cdef void _agg_value(sqlite3_context *ctx) noexcept with gil:
    cdef _UserFunction f = <_UserFunction>sqlite3_user_data(ctx)
    cdef agg_slot *slot = _agg_slot(ctx, f)
    if slot == NULL:
        return
    try:
        _udf_result(ctx, _udf_call(<object>slot.instance, _M_VALUE, 0, NULL), f)
    except BaseException as exc:
        slot.failed = 1
        _udf_fail(ctx, f, _M_VALUE, exc)


cdef void _agg_final(sqlite3_context *ctx) noexcept with gil:
    """The group's result from ``finalize()``, and its object released. Also called when the
    statement stops early (an error, a reset): then only the release matters. A group that
    saw no row gives NULL without calling anything (the stdlib's rule)."""
    cdef _UserFunction f = <_UserFunction>sqlite3_user_data(ctx)
    cdef agg_slot *slot = <agg_slot*>sqlite3_aggregate_context(ctx, 0)
    cdef object inst
    if slot == NULL or slot.instance == NULL:
        if slot == NULL or not slot.failed:
            sqlite3_result_null(ctx)
        return
    inst = <object>slot.instance
    Py_XDECREF(slot.instance)           # (``inst`` holds it until the end of this call)
    slot.instance = NULL
    if slot.failed:
        return
    try:
        _udf_result(ctx, _udf_call(inst, _M_FINALIZE, 0, NULL), f)
    except BaseException as exc:
        slot.failed = 1
        _udf_fail(ctx, f, _M_FINALIZE, exc)


cdef int _udf_collate(void *arg, int n1, const void *s1, int n2, const void *s2) noexcept with gil:
    cdef _UserFunction f = <_UserFunction>arg
    cdef RawConnection c = <RawConnection>f.owner
    cdef int sign
    if c._udf_cause is not None or c._pending is not None:
        return 0                        # the statement is being stopped
    try:
        r = f.func(_text(<const char*>s1, n1), _text(<const char*>s2, n2))
        if not isinstance(r, int):
            raise TypeError(f"a collation returns an int (negative, zero or positive), "
                            f"not {type(r).__name__}")
        sign = (r > 0) - (r < 0)
        return sign
    except BaseException as exc:
        try:
            _udf_keep(c, _udf_message(f, "", exc), exc)
        except BaseException:
            pass
        if c.db != NULL:
            sqlite3_interrupt(c.db)
        return 0


cdef void _udf_destroy(void *p) noexcept with gil:
    Py_XDECREF(<PyObject*>p)


# --- registering ------------------------------------------------------------------------
cdef _UserFunction _udf_new(RawConnection raw, object name, object func, str kind):
    cdef _UserFunction f = _UserFunction.__new__(_UserFunction)
    f.func = func
    f.name = name
    f.kind = kind
    f.owner = <void*>raw
    return f


cdef bytes _udf_name(object name):
    if not isinstance(name, str):
        raise TypeError(f"the name must be a str, not {type(name).__name__}")
    b = (<str>name).encode("utf-8")
    if b"\0" in b:
        raise ValueError("the name contains a NUL character")
    if len(b) > 255:     # SQLite's limit for a function name
        raise _errors.ProgrammingError(f"the name {name[:40]!r}... is longer than SQLite's 255 bytes")
    return b


def register_function(RawConnection raw, str kind, name, int narg, func, bint deterministic=False):
    """Register (``func`` None: remove) a user function on ``raw``.

    ``kind``: ``"function"`` (``func(*args)``), ``"aggregate"`` (``func`` a class with
    ``step``/``finalize``) or ``"window function"`` (with ``value``/``inverse`` too).
    Errors: FeatureNotSupportedError where the core cannot (window functions before 3.25,
    ``deterministic`` before 3.8.3); SQLite's own (BUSY while a statement uses the old one).
    """
    cdef bytes bname = _udf_name(name)
    cdef int flags = SQLITE_UTF8
    cdef int rc
    cdef _UserFunction f = None
    cdef void *p = NULL
    cdef sqlnb_xfunc xfunc = NULL
    cdef sqlnb_xfunc xstep = NULL
    cdef sqlnb_xfunc xinverse = NULL
    cdef sqlnb_xfinal xfinal = NULL
    cdef sqlnb_xfinal xvalue = NULL
    cdef sqlnb_xdestroy xdestroy = NULL
    if kind not in ("function", "aggregate", "window function"):
        raise ValueError(f"unknown kind of function {kind!r}")
    if kind == "window function" and not SQLNB_HAVE_WINDOW_FUNCTIONS:
        raise _errors.FeatureNotSupportedError(
            f"window functions need SQLite 3.25 or later; the {FLAVOUR} engine's core is {HEADER_VERSION}")
    if deterministic:
        if not SQLNB_HAVE_DETERMINISTIC:
            raise _errors.FeatureNotSupportedError(
                f"deterministic=True needs SQLite 3.8.3 or later; the {FLAVOUR} engine's core is {HEADER_VERSION}")
        flags |= SQLITE_DETERMINISTIC
    _lock(raw)
    try:
        raw._check()
        if func is not None:
            f = _udf_new(raw, name, func, kind)
            Py_INCREF(f)                 # SQLite's reference, released by _udf_destroy
            p = <void*>f
        if p != NULL:
            xfunc, xstep, xfinal, xvalue, xinverse, xdestroy = (
                _udf_scalar, _agg_step, _agg_final, _agg_value, _agg_inverse, _udf_destroy)
        if kind == "function":
            rc = sqlite3_create_function_v2(raw.db, bname, narg, flags, p, xfunc, NULL, NULL, xdestroy)
        elif kind == "aggregate":
            rc = sqlite3_create_function_v2(raw.db, bname, narg, flags, p, NULL, xstep, xfinal, xdestroy)
        else:
            rc = sqlite3_create_window_function(raw.db, bname, narg, flags, p, xstep, xfinal, xvalue,
                                                xinverse, xdestroy)
        # (SQLite owns ``f`` from here, even when it failed: it called _udf_destroy then)
        check_rc(rc, raw.db)
        _udf_remember(raw, ("function", name.lower(), narg), (kind, name, narg, func, deterministic), func)
    finally:
        _unlock(raw)


def register_collation(RawConnection raw, name, func):
    """Register (``func`` None: remove) collation ``name``: ``func(a: str, b: str) -> int``."""
    cdef bytes bname = _udf_name(name)
    cdef int rc
    cdef _UserFunction f = None
    _lock(raw)
    try:
        raw._check()
        if func is None:
            rc = sqlite3_create_collation_v2(raw.db, bname, SQLITE_UTF8, NULL, NULL, NULL)
        else:
            f = _udf_new(raw, name, func, "collation")
            Py_INCREF(f)
            rc = sqlite3_create_collation_v2(raw.db, bname, SQLITE_UTF8, <void*>f, _udf_collate, _udf_destroy)
            if rc != SQLITE_OK:          # (unlike functions, SQLite does not destroy it on failure)
                Py_XDECREF(<PyObject*>f)
        check_rc(rc, raw.db)
        _udf_remember(raw, ("collation", name.lower()), ("collation", name, func), func)
    finally:
        _unlock(raw)


cdef void _udf_remember(RawConnection raw, tuple key, tuple registration, object func):
    if raw._udfs is None:
        raw._udfs = {}
    if func is None:
        raw._udfs.pop(key, None)
    else:
        raw._udfs[key] = registration


def copy_functions(RawConnection source, RawConnection target):
    """Register on ``target`` every function and collation registered on ``source`` (a parallel
    fetch's worker connections run the same SQL)."""
    for reg in list((source._udfs or {}).values()):
        if reg[0] == "collation":
            register_collation(target, reg[1], reg[2])
        else:
            register_function(target, *reg)
