"""The stdlib adapter's small helpers: its errors as sqlnb's, its parameters by the one bind rule."""
from __future__ import annotations

import sqlite3 as _sq

from sqlnb import _bind
from sqlnb import errors as _errors

_CLASS_BY_STDLIB = {
    _sq.IntegrityError: _errors.IntegrityError,
    _sq.ProgrammingError: _errors.ProgrammingError,
    _sq.OperationalError: _errors.OperationalError,
    _sq.InterfaceError: _errors.InterfaceError,
    _sq.DataError: _errors.DataError,
    _sq.NotSupportedError: _errors.NotSupportedError,
    _sq.InternalError: _errors.InternalError,
}


def sqlite_version():
    return _sq.sqlite_version


def compile_options():
    con = _sq.connect(":memory:")
    try:
        return [r[0] for r in con.execute("PRAGMA compile_options")]
    finally:
        con.close()


def translate(exc: _sq.Error, sql=None) -> _errors.Error:
    """The sqlnb exception for a stdlib one: by result code where the stdlib gives it."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return _errors.make_error(code, str(exc), sql=sql)
    for base, cls in _CLASS_BY_STDLIB.items():
        if isinstance(exc, base):
            return _errors.make_error(1, str(exc), sql=sql, cls=cls)
    return _errors.make_error(1, str(exc), sql=sql, cls=_errors.DatabaseError)


class _NamedParams(dict):
    """Looks names up in the caller's mapping, adapting each value the stdlib asks for."""

    def __init__(self, source):
        super().__init__()
        self._source = source

    def __getitem__(self, name):
        return _adapt(self._source[name], f":{name}")


def params(values):
    """The stdlib's parameters for ``values``: a sequence adapted now, a mapping as its names are asked."""
    if values is None:
        return ()
    if _bind.is_mapping(values):
        return _NamedParams(values)
    if isinstance(values, (str, bytes)):
        raise _errors.ParameterError("parameters must be a sequence or a mapping, not a string")
    try:
        seq = tuple(values)
    except TypeError:
        raise _errors.ParameterError(f"parameters are of unsupported type '{type(values).__name__}'") from None
    return tuple(_adapt(v, str(i)) for i, v in enumerate(seq, 1))


def readonly_uri(uri: str) -> str:
    """``uri`` (a ``file:`` URI) opened read-only: its ``mode=`` becomes ``ro`` (``memory`` stays).

    The stdlib takes no open flags, so the URI carries SQLITE_OPEN_READONLY; without
    it a read-only mode's open created a missing file and its last close checkpointed a WAL.
    """
    if not uri.startswith("file:"):
        return uri
    base, sep, rest = uri.partition("?")
    query, hsep, frag = rest.partition("#")
    parts = [p for p in query.split("&") if p]
    if "mode=memory" in parts:
        return uri
    parts = [p for p in parts if not p.startswith("mode=")] + ["mode=ro"]
    return f"{base}?{'&'.join(parts)}{hsep}{frag}"


def _adapt(v, label):
    """The value the compiled engines would bind, for the stdlib (same types, same errors)."""
    return _bind.adapt(v, f"parameter {label}")
