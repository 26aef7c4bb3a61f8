"""The one bind rule: which Python values SQLite stores, and as what.

Every engine binds by this rule: the stdlib adapter (``sqlnb.engines.system``) for
every value, the Cython core for the values its fast path does not know
(``_bind_one``'s last branch), and the DataFrame exporter for object columns.

========================================  =====================================
Python value                              SQLite value
========================================  =====================================
None                                      NULL
bool, int, numpy integer/bool, __index__  INTEGER (64-bit; larger ints: OverflowError)
float, numpy floating, numbers.Real       REAL (Decimal is refused: it would round)
str                                       TEXT
bytes, bytearray, memoryview              BLOB
date, time, datetime                      TEXT, ISO-8601 (``YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]``)
anything else (lists, arrays, dicts, …)   :class:`sqlnb.errors.BindError`
========================================  =====================================
"""
from __future__ import annotations

import collections.abc
import datetime as _dt
import decimal
import numbers
import operator

from sqlnb import errors as _errors

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

#: what a parameter may be, for messages
STORABLE = "None, bool, int, float, str, bytes, bytearray, memoryview, date, time or datetime"


def is_mapping(params) -> bool:
    """Parameters given by name: a dict, any ``collections.abc.Mapping``, or an object with
    ``keys`` and ``__getitem__`` that is not a list or tuple (the stdlib ``sqlite3``'s rule).
    Everything else is a sequence of positional values."""
    if type(params) is dict:
        return True
    if params is None or isinstance(params, (list, tuple)):
        return False
    return isinstance(params, collections.abc.Mapping) or (hasattr(params, "keys") and hasattr(params, "__getitem__"))


def _int64(i: int, v, where: str) -> int:
    if not INT64_MIN <= i <= INT64_MAX:
        raise OverflowError(f"{where}: {type(v).__name__} {i} does not fit SQLite's 64-bit INTEGER")
    return i


def adapt(v, where: str):
    """The value SQLite stores for ``v``: None, int, float, str or a bytes-like object.

    ``where`` names the value in errors (``"parameter :x"``, ``"column 'a', row 3"``).
    Raises ``OverflowError`` for an int outside 64 bits and :class:`BindError` for a
    type SQLite cannot store.
    """
    if isinstance(v, int) and not INT64_MIN <= v <= INT64_MAX:
        raise OverflowError(f"{where}: Python int {v} does not fit SQLite's 64-bit INTEGER")
    if v is None or isinstance(v, (int, float, str, bytes, bytearray, memoryview)):
        return v
    if isinstance(v, (_dt.date, _dt.time)):
        return v.isoformat(" ") if isinstance(v, _dt.datetime) else v.isoformat()
    kind = getattr(getattr(v, "dtype", None), "kind", "") \
        if type(v).__module__ == "numpy" and getattr(v, "ndim", 0) == 0 else ""  # a scalar, not an array
    if kind in ("i", "u", "b"):
        return _int64(int(v), v, where)  # (a uint64 above 2**63 - 1 does not fit)
    if kind == "f":
        return float(v)
    if isinstance(v, numbers.Integral) or getattr(type(v), "__index__", None) is not None:
        try:
            i = operator.index(v)
        except TypeError:  # e.g. a numpy array of more than one value (its type has __index__)
            raise _errors.BindError(
                f"{where}: a value of type '{type(v).__name__}' is not a single value (bind {STORABLE})") from None
        return _int64(i, v, where)
    if isinstance(v, numbers.Real) and not isinstance(v, decimal.Decimal):
        return float(v)
    raise _errors.BindError(f"{where}: a value of type '{type(v).__name__}' is not supported (bind {STORABLE})")
