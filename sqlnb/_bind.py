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
numpy datetime64 (NaT: NULL)              TEXT, ISO-8601 at the value's own unit (as DataFrames export)
numpy timedelta64 (NaT: NULL)             INTEGER nanoseconds (as DataFrame timedelta columns export)
an object with ``__conform__``            what ``v.__conform__(PrepareProtocol)`` returns, bound
a registered adapter's type               what the adapter returns, bound (``sqlnb.register_adapter``)
anything else (lists, arrays, dicts, …)   :class:`sqlnb.errors.BindError`
========================================  =====================================

Adapters (``sqlnb.register_adapter``, keyed by exact type, as in the stdlib) run before this rule
on the cursor path (:func:`with_adapters`, so they can replace how an int or a datetime binds);
anywhere else (DataFrame fetchers' parameters, UDF results) they and ``__conform__`` are the rule's
last resort, for values it would otherwise refuse.
"""
from __future__ import annotations

import collections.abc
import datetime as _dt
import decimal
import numbers
import operator

import numpy as np

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


def _datetime64(v, where: str):
    if np.isnat(v):
        return None
    unit = np.datetime_data(v.dtype)[0]
    if unit == "generic":
        raise _errors.BindError(f"{where}: a numpy datetime64 without a unit is not a point in time")
    if unit in _FINER_THAN_S and v == v.astype("datetime64[s]"):
        unit = "s"  # whole seconds: no fraction of zeros
    return str(np.datetime_as_string(v, unit=unit)).replace("T", " ")


def _timedelta64(v, where: str):
    if np.isnat(v):
        return None
    unit, count = np.datetime_data(v.dtype)
    if unit not in _NS_PER:
        raise _errors.BindError(f"{where}: a numpy timedelta64 in {unit!r} units has no fixed length "
                                f"(convert it to days or smaller)")
    ticks = int(v.astype("int64")) * count
    num, den = _NS_PER[unit]
    return _int64(ticks * num // den, v, where)


_FINER_THAN_S = frozenset(("ms", "us", "ns", "ps", "fs", "as"))
# nanoseconds per tick of each fixed-length unit, as (numerator, denominator)
_NS_PER = {"W": (7 * 86_400 * 10**9, 1), "D": (86_400 * 10**9, 1), "h": (3_600 * 10**9, 1),
           "m": (60 * 10**9, 1), "s": (10**9, 1), "ms": (10**6, 1), "us": (10**3, 1), "ns": (1, 1),
           "ps": (1, 10**3), "fs": (1, 10**6), "as": (1, 10**9)}


class PrepareProtocol:
    """The protocol an object's ``__conform__(protocol)`` is asked for (the stdlib's ``sqlite3.PrepareProtocol``)."""


#: {(type, PrepareProtocol): adapter}: the stdlib's ``sqlite3.adapters`` map, for sqlnb (sqlnb.stdlib.convert)
ADAPTERS: dict = {}


def _adapted(v):
    return ADAPTERS[(type(v), PrepareProtocol)](v) if (type(v), PrepareProtocol) in ADAPTERS else v


def with_adapters(params):
    """``params`` with each value whose exact type has a registered adapter replaced by the
    adapter's result (the stdlib's rule: adapters come first). Unchanged when none is registered."""
    if not ADAPTERS or params is None:
        return params
    if is_mapping(params):
        return {k: _adapted(params[k]) for k in params.keys()}
    if isinstance(params, (list, tuple)):
        return tuple(_adapted(v) for v in params)
    return params


def _last_resort(v, where: str):
    """A registered adapter's or ``__conform__``'s value for ``v`` (a TypeError in ``__conform__``
    means "no", as in the stdlib), bound by the rule; BindError when there is none."""
    if (type(v), PrepareProtocol) in ADAPTERS:
        return adapt(ADAPTERS[(type(v), PrepareProtocol)](v), where, conform=False)
    conform = getattr(v, "__conform__", None)
    if conform is not None:
        try:
            r = conform(PrepareProtocol)
        except TypeError:
            r = None
        if r is not None:
            return adapt(r, where, conform=False)
    raise _errors.BindError(f"{where}: a value of type '{type(v).__name__}' is not supported (bind {STORABLE})")


def adapt(v, where: str, conform: bool = True):
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
    if kind == "M":
        return _datetime64(v, where)
    if kind == "m":
        return _timedelta64(v, where)
    if isinstance(v, numbers.Integral) or getattr(type(v), "__index__", None) is not None:
        try:
            i = operator.index(v)
        except TypeError:  # e.g. a numpy array of more than one value (its type has __index__)
            raise _errors.BindError(
                f"{where}: a value of type '{type(v).__name__}' is not a single value (bind {STORABLE})") from None
        return _int64(i, v, where)
    if isinstance(v, numbers.Real) and not isinstance(v, decimal.Decimal):
        return float(v)
    if conform:
        return _last_resort(v, where)
    raise _errors.BindError(f"{where}: a value of type '{type(v).__name__}' is not supported (bind {STORABLE})")
