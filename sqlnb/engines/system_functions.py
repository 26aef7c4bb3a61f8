"""User-defined functions on the ``system`` engine: the stdlib's own registration, wrapped so
that the contract is the compiled engines' (``sqlnb/_core/functions.pxi``).

The stdlib reports any exception raised in a user function as "user-defined function raised
exception" and drops it (a collation's is lost altogether). Each wrapper here keeps the
first failure of a statement on the adapter's connection (``RawConnection._udf_cause``:
the message naming the function, and the exception), which the adapter then raises as the
statement's error with the exception as ``__cause__``; KeyboardInterrupt and SystemExit are
kept as themselves. Results go through the one bind rule (:func:`sqlnb._bind.adapt`), as on
the compiled engines: a date becomes ISO text, an int past 64 bits a TooBigError.
"""
from __future__ import annotations

from sqlnb import _bind
from sqlnb import errors as _errors

_PLAIN = (type(None), int, float, str, bytes, bytearray, memoryview)


def message(kind: str, name: str, method: str, exc: BaseException) -> str:
    """The error message naming the function (the compiled core words it the same way)."""
    where = f"user-defined {kind} {name!r}" + (f" ({method})" if method else "")
    text = str(exc)
    return f"{where} raised {type(exc).__name__}" + (f": {text}" if text else "")


def keep(raw, kind: str, name: str, method: str, exc: BaseException) -> None:
    """Remember the first failure of the running statement on the adapter's connection."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        if raw._pending is None:
            raw._pending = exc
    elif raw._udf_cause is None:
        raw._udf_cause = (message(kind, name, method, exc), exc)


def error(raw, sql):
    """The statement's error for the kept failure (then forgotten): OverflowError is a value too
    large (SQLITE_TOOBIG, as SQLite and the stdlib report it), anything else SQLITE_ERROR."""
    msg, cause = raw._udf_cause
    raw._udf_cause = None
    exc = _errors.make_error(18 if isinstance(cause, OverflowError) else 1, msg, sql=sql)
    exc.__cause__ = cause
    return exc


def result(value, kind: str, name: str):
    if type(value) in _PLAIN or isinstance(value, (int, float, str, bytes)):
        if isinstance(value, int) and not _bind.INT64_MIN <= value <= _bind.INT64_MAX:
            raise OverflowError(f"the result of {kind} {name!r}: {value} does not fit SQLite's 64-bit INTEGER")
        return value
    return _bind.adapt(value, f"the result of {kind} {name!r}")


def scalar(raw, name: str, func):
    def call(*args):
        try:
            return result(func(*args), "function", name)
        except BaseException as exc:
            keep(raw, "function", name, "", exc)
            raise
    return call


def aggregate(raw, kind: str, name: str, cls):
    """A class the stdlib instantiates per group, forwarding to an instance of ``cls``."""
    def guarded(method, fn, args, convert=False):
        try:
            out = fn(*args)
            return result(out, kind, name) if convert else out
        except BaseException as exc:
            keep(raw, kind, name, method, exc)
            raise

    class Aggregate:
        def __init__(self):
            self._a = guarded("__init__", cls, ())

        def step(self, *args):
            guarded("step", getattr(self._a, "step"), args)

        def finalize(self):
            return guarded("finalize", getattr(self._a, "finalize"), (), True)

        def value(self):
            return guarded("value", getattr(self._a, "value"), (), True)

        def inverse(self, *args):
            guarded("inverse", getattr(self._a, "inverse"), args)

    return Aggregate


def collation(raw, name: str, func):
    """The stdlib ignores a collation's exception: keep it and interrupt the statement."""
    def compare(a, b):
        if raw._udf_cause is not None or raw._pending is not None:
            return 0
        try:
            r = func(a, b)
            if not isinstance(r, int):
                raise TypeError(f"a collation returns an int (negative, zero or positive), not {type(r).__name__}")
            return (r > 0) - (r < 0)
        except BaseException as exc:
            keep(raw, "collation", name, "", exc)
            raw._con.interrupt()
            return 0
    return compare


def keep_cause(err):
    """``err`` ready to raise from the adapter's ``except`` block: its cause when a user function
    gave it one, else none (the stdlib exception it replaces is not chained)."""
    if err.__cause__ is None:
        err.__suppress_context__ = True
    return err
