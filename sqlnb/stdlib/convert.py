"""The stdlib ``sqlite3``'s type hooks for sqlnb: ``register_adapter`` / ``register_converter``,
``connect(detect_types=PARSE_DECLTYPES | PARSE_COLNAMES)`` (docs/dbapi.md, "Adapters and
converters"). The rules are Python 3.11's:

* an adapter is looked up by the parameter's exact type, before the bind rule
  (``sqlnb._bind.with_adapters`` on the cursor path); an object without one may answer
  ``__conform__(PrepareProtocol)`` (the bind rule's last resort, ``sqlnb._bind.adapt``);
* a converter is found, when the statement is executed, by the ``[type]`` in a column's name
  (``PARSE_COLNAMES``, tried first; ``description`` then names the column without it), else by
  the first word of its declared type (``PARSE_DECLTYPES``; up to a blank or ``(``), both
  case-insensitively; it is given the value as SQLite's text conversion renders it, as bytes,
  and its result replaces the value (``text_factory`` is not applied to it). NULL, an empty
  string and an empty blob are never converted (None); an exception in a converter propagates.

The maps are sqlnb's own (``sqlnb.adapters``, ``sqlnb.converters``): registering here never
changes the stdlib module's. The stdlib's default ``DATE`` and ``TIMESTAMP`` converters are
registered (its 3.11 code); its default date/datetime adapters are the bind rule's own ISO text.
Converters apply to the DB-API rows (``execute``/``fetch*``/iteration), not to the columnar
fetchers (``query_df``, ``query_arrow``, ``fetch_df``), which keep their own type rules.
"""
from __future__ import annotations

import datetime as _dt

from sqlnb import _bind
from sqlnb import errors as _errors

__all__ = ["PARSE_DECLTYPES", "PARSE_COLNAMES", "PrepareProtocol", "adapters", "converters",
           "register_adapter", "register_converter"]

PARSE_DECLTYPES = 1
PARSE_COLNAMES = 2

PrepareProtocol = _bind.PrepareProtocol
#: {(type, PrepareProtocol): adapter}, as ``sqlite3.adapters``
adapters = _bind.ADAPTERS
#: {TYPENAME (upper case): converter}, as ``sqlite3.converters``
converters: dict = {}


def register_adapter(type, adapter, /):  # noqa: A002 - the stdlib's parameter name
    """Bind a value of exactly ``type`` as ``adapter(value)`` (an int, float, str or bytes)."""
    adapters[(type, PrepareProtocol)] = adapter


def register_converter(typename, converter, /):
    """Give ``converter(bytes)`` the values of columns whose type is ``typename`` (any case)."""
    if not isinstance(typename, str):
        raise TypeError(f"register_converter() argument 1 must be str, not {type(typename).__name__}")
    converters[typename.upper()] = converter


# --- the stdlib's default converters (Lib/sqlite3/dbapi2.py of Python 3.11) -------------------
def convert_date(val):
    return _dt.date(*map(int, val.split(b"-")))


def convert_timestamp(val):
    datepart, timepart = val.split(b" ")
    year, month, day = map(int, datepart.split(b"-"))
    timepart_full = timepart.split(b".")
    hours, minutes, seconds = map(int, timepart_full[0].split(b":"))
    if len(timepart_full) == 2:
        microseconds = int("{:0<6.6}".format(timepart_full[1].decode()))
    else:
        microseconds = 0
    return _dt.datetime(year, month, day, hours, minutes, seconds, microseconds)


register_converter("date", convert_date)
register_converter("timestamp", convert_timestamp)


# --- executing: which column converts with what ----------------------------------------------
def check_detect_types(detect_types, backend) -> int:
    """``detect_types`` as connect() keeps it, or the stdlib's TypeError; PARSE_DECLTYPES on an
    engine whose statements cannot tell declared types (``system``): FeatureNotSupportedError."""
    if not isinstance(detect_types, int):
        raise TypeError(f"'{type(detect_types).__name__}' object cannot be interpreted as an integer")
    if detect_types & PARSE_DECLTYPES and not backend.declared_types:
        raise _errors.FeatureNotSupportedError(
            f"detect_types=PARSE_DECLTYPES: the {backend.name!r} engine cannot tell a column's declared "
            f"type (the stdlib does not expose it); use PARSE_COLNAMES (\"x [type]\") or another engine")
    return int(detect_types)


def _bracketed(name: str):
    """The ``type`` of a column named ``"x [type]"`` (the stdlib's scan: the last ``[`` before
    the first ``]`` after it), or None."""
    start = None
    for i, ch in enumerate(name):
        if ch == "[":
            start = i + 1
        elif ch == "]" and start is not None:
            return name[start:i]
    return None


def _first_word(decltype: str) -> str:
    for i, ch in enumerate(decltype):
        if ch in " (":
            return decltype[:i]
    return decltype


def _short_name(name: str) -> str:
    """A column name as ``description`` gives it under PARSE_COLNAMES: cut at ``[`` (and the blank before)."""
    cut = name.find("[")
    if cut < 0:
        return name
    return name[:cut - 1] if cut > 0 and name[cut - 1] == " " else name[:cut]


def row_casts(detect_types: int, names, decltypes):
    """``(names, casts)`` for a result: the names ``description`` shows and ``[(index, converter)]``
    for the columns that convert (None: none does)."""
    if not detect_types:
        return names, None
    casts = []
    for i, (name, decl) in enumerate(zip(names, decltypes)):
        conv = None
        if detect_types & PARSE_COLNAMES and name:
            typename = _bracketed(name)
            if typename is not None:
                conv = converters.get(typename.upper())
        if conv is None and detect_types & PARSE_DECLTYPES and decl:
            conv = converters.get(_first_word(decl).upper())
        if conv is not None:
            casts.append((i, conv))
    if detect_types & PARSE_COLNAMES:
        names = [_short_name(n) for n in names]
    return names, casts or None


def real_text(f: float) -> str:
    """A REAL as SQLite's text conversion writes it (``%!.15g``: always a decimal point)."""
    if f != f:
        return ""
    if f in (float("inf"), float("-inf")):
        return "Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0.0"   # (-0.0 too)
    s = "%.15g" % f
    mantissa, e, exponent = s.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + e + exponent


def _as_bytes(v) -> bytes:
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    if isinstance(v, float):
        return real_text(v).encode()
    if isinstance(v, int):
        return str(v).encode()
    return bytes(v)


def convert_row(raw: tuple, row: tuple, casts) -> tuple:
    """``row`` (after text_factory) with each cast column replaced by its converter's value of
    the ``raw`` value's bytes; NULL and empty values stay None (the stdlib's rule)."""
    out = list(row)
    for i, conv in casts:
        v = raw[i]
        if v is None:
            out[i] = None
            continue
        data = _as_bytes(v)
        out[i] = conv(data) if data else None
    return tuple(out)
