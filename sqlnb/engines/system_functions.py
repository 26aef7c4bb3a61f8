"""User-defined functions (and the rest of the stdlib surface) on the ``system`` engine: the
stdlib's own calls, wrapped so that the contract is the compiled engines'
(``sqlnb/_core/functions.pxi``, ``hooks.pxi``, ``backup.pxi``).

The stdlib reports any exception raised in a user function as "user-defined function raised
exception" and drops it (a collation's is lost altogether). Each wrapper here keeps the
first failure of a statement on the adapter's connection (``RawConnection._udf_cause``:
the message naming the function, and the exception), which the adapter then raises as the
statement's error with the exception as ``__cause__``; KeyboardInterrupt and SystemExit are
kept as themselves. Results go through the one bind rule (:func:`sqlnb._bind.adapt`), as on
the compiled engines: a date becomes ISO text, an int past 64 bits a TooBigError.
"""
from __future__ import annotations

import os
import sqlite3 as _sqlite3
import sys

from sqlnb import _bind
from sqlnb import errors as _errors
from sqlnb._consts import Why as _Why

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


def set_progress_handler(raw, handler, n: int) -> None:
    """The user's handler, layered under the adapter's own (``RawConnection._progress`` calls
    :func:`user_progress`): the stdlib calls ours every min(n, 1000) instructions."""
    with raw._lock:
        if handler is None or n <= 0:
            raw._user_progress, raw._user_every, every = None, 0, 1000
        else:
            every = min(n, 1000)
            raw._user_progress, raw._user_every, raw._user_calls = handler, -(-n // every), 0
        raw._con.set_progress_handler(raw._progress, every)


def user_progress(raw) -> int:
    """1 when the user's progress handler stops the statement (an exception: the statement's
    error names it, the exception its cause)."""
    raw._user_calls += 1
    if raw._user_calls < raw._user_every:
        return 0
    raw._user_calls = 0
    try:
        stop = raw._user_progress()
    except BaseException as exc:
        keep(raw, "progress handler", "", "", exc)
        if raw._udf_cause is not None:
            msg, cause = raw._udf_cause
            raw._udf_cause = (f"the progress handler raised {type(cause).__name__}" + (f": {cause}" if str(cause) else ""), cause)
        return 1
    if stop:
        raw._interrupt_asked = True  # (an interrupt the adapter asked for: not Ctrl-C)
        return 1
    return 0


def stdlib_call(raw, method: str, *args, **kwargs):
    """``raw``'s stdlib connection's ``method`` under the adapter's lock, its errors as sqlnb's."""
    with raw._lock:
        try:
            return getattr(raw._con, method)(*args, **kwargs)
        except _sqlite3.Error as exc:
            raise keep_cause(raw._failed(exc, None)) from None


def layered_authorizer(raw, policy, policy_callback):
    """The stdlib authorizer callback of a system connection: the policy's (the mode, the table
    policies and the authorizer given to connect()), then the one ``set_authorizer`` installed
    (``raw._user_authorizer``), asked only about what the policy allows."""
    def callback(action, a1, a2, db, inner):
        rc = policy_callback(action, a1, a2, db, inner)
        user = raw._user_authorizer
        state = getattr(policy, "_state", None) or {}
        if rc != 0 or user is None or state.get("quiet"):
            return rc
        try:
            r = user(action, a1, a2, db, inner)
            if type(r) is not int or r not in (0, 1, 2):
                raise TypeError(f"the authorizer returned {r!r} for action {action} ({a1!r}, {a2!r}); "
                                "it must return sqlnb.authorizer.OK, DENY or IGNORE (the ints 0, 1, 2): denied")
        except BaseException as exc:  # fail closed, raised once the statement fails
            if raw._pending is None:
                raw._pending = exc
            r = 1
        if r == 1 and state.get("first") is None:
            state["first"] = (action, a1, a2, db, inner, int(_Why.USER))
        return r
    return callback


class Blob:
    """The stdlib's ``sqlite3.Blob`` behind the compiled core's ``RawBlob`` interface."""

    def __init__(self, raw, blob):
        self._raw, self._blob = raw, blob

    @property
    def closed(self):
        try:
            self._blob.tell()
            return False
        except _sqlite3.ProgrammingError:
            return True

    def length(self):
        return self._call(len, self._blob)

    def _call(self, fn, *args):
        with self._raw._lock:
            try:
                return fn(*args)
            except _sqlite3.Error as exc:
                raise keep_cause(self._raw._failed(exc, None)) from None

    def read(self, offset, n):
        def go():
            self._blob.seek(offset)
            return self._blob.read(n)
        return self._call(go)

    def write(self, offset, data):
        def go():
            self._blob.seek(offset)
            self._blob.write(data)
        return self._call(go)

    def close(self):
        self._call(self._blob.close)


def load_extension(raw, path, entrypoint) -> None:
    """The stdlib's load_extension, its switch on for this one call (then as the policy set it)."""
    con = raw._con
    if not hasattr(con, "load_extension"):
        raise _errors.FeatureNotSupportedError("this Python's sqlite3 module was built without extension loading")
    if entrypoint is not None and sys.version_info < (3, 12):
        raise _errors.FeatureNotSupportedError("load_extension(entrypoint=...) on the system engine needs Python 3.12")
    allowed = bool(raw.policy is not None and raw.policy.allow_load_extension)
    with raw._lock:
        con.enable_load_extension(True)
        try:
            if entrypoint is None:
                con.load_extension(os.fspath(path))
            else:
                con.load_extension(os.fspath(path), entrypoint=entrypoint)
        except _sqlite3.Error as exc:
            raise keep_cause(raw._failed(exc, None)) from None
        finally:
            con.enable_load_extension(allowed)
