"""The frame's columns: a pandas dtype becomes a declared SQL type and the buffers the insert binds.

:func:`_convert` turns one DataFrame column into a :class:`_Col`: its declared type,
its family (what the values are, for the append check) and the buffers the compiled
insert loop binds from (numpy arrays, NULL masks, Arrow string/binary buffers, Python
objects). :func:`_py_values` gives the same values as Python objects, by the same
rules, for an engine without a compiled loop. The rules are documented in docs/export.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sqlnb import _bind, _sql
from sqlnb import errors as _errors

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min
_TICKS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
# 0001-01-01T00:00:00 and 9999-12-31T23:59:59 in seconds since the epoch
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799


@dataclass
class _Col:
    name: str
    decl: str          # declared SQL type ("" = none: values keep their own storage class)
    family: str        # integer, bool, real, timedelta, text, blob, datetime, date, null, mixed
    kind: str          # int, float, arrow, datetime, null, object, category
    dtype: str = ""    # the pandas dtype, for messages
    values: Any = None
    mask: Any = None
    arrow: Any = None  # pyarrow Array (string/binary)
    ticks: int = 0
    frac: int = 0
    utc: bool = False
    objects: list | None = None
    codes: Any = None
    child: "_Col | None" = None


def _is_missing(v) -> bool:
    """None, NaN, pd.NA and NaT: the values stored as NULL from an object column."""
    import pandas as pd

    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float):
        return v != v
    if isinstance(v, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(v))
    return False


def _mask_of(series) -> np.ndarray | None:
    m = np.asarray(series.isna(), dtype=bool)
    return np.ascontiguousarray(m).view(np.uint8) if m.any() else None


def _have_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _arrow_col(name, arr, *, blob: bool, dtype: str) -> _Col:
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray) and arr.num_chunks <= 1:
        arr = arr.chunk(0) if arr.num_chunks else pa.array([], arr.type)
    # several chunks stay chunks (no copy): the insert loop moves from one to the next
    t = arr.type
    if blob:
        if not (pa.types.is_binary(t) or pa.types.is_large_binary(t)):
            arr = arr.cast(pa.large_binary())
    elif not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        arr = arr.cast(pa.large_string())
    return _Col(name, "BLOB" if blob else "TEXT", "blob" if blob else "text", "arrow", dtype, arrow=arr)


def _int_col(name, values, mask, dtype, *, family="integer", decl="INTEGER") -> _Col:
    return _Col(name, decl, family, "int", dtype,
                values=np.ascontiguousarray(values, dtype=np.int64), mask=mask)


def _unsigned_to_int64(name, values: np.ndarray, mask) -> np.ndarray:
    if values.dtype == np.uint64 and len(values):
        too_big = values > np.uint64(_INT64_MAX)
        if mask is not None:
            too_big &= ~mask.astype(bool)
        if too_big.any():
            row = int(np.argmax(too_big))
            raise OverflowError(
                f"column {name!r}, row {row}: {int(values[row])} does not fit SQLite's 64-bit "
                f"INTEGER; convert the column (e.g. to float or str) first")
    return values.astype(np.int64)


def _datetime_col(name, series, dtype) -> _Col:
    arr = series.array
    unit = getattr(arr, "unit", "ns")
    ticks = _TICKS[unit]
    i8 = np.ascontiguousarray(arr.asi8, dtype=np.int64)
    valid = i8 != _INT64_MIN
    vals = i8[valid]
    frac = 0
    if len(vals):
        secs_lo, secs_hi = int(vals.min()) // ticks, int(vals.max()) // ticks
        if secs_lo < _MIN_SECONDS or secs_hi > _MAX_SECONDS:
            raise ValueError(f"column {name!r}: datetimes outside the years 1-9999 cannot be written "
                             f"as ISO-8601 text")
        sub = vals % ticks
        for frac in (0, 3, 6, 9):
            step = ticks // 10 ** frac if 10 ** frac <= ticks else 1
            if 10 ** frac >= ticks or not (sub % step).any():
                break
    tz = getattr(series.dtype, "tz", None)
    return _Col(name, "TIMESTAMP", "datetime", "datetime", dtype, values=i8, ticks=ticks,
                frac=frac, utc=tz is not None)


def _timedelta_col(name, series, dtype) -> _Col:
    arr = series.array
    unit = getattr(arr, "unit", "ns")
    factor = 1_000_000_000 // _TICKS[unit]
    i8 = np.asarray(arr.asi8, dtype=np.int64)
    nat = i8 == _INT64_MIN
    if factor != 1:
        live = i8[~nat]
        if len(live) and (np.abs(live) > _INT64_MAX // factor).any():
            row = int(np.argmax((np.abs(i8) > _INT64_MAX // factor) & ~nat))
            raise OverflowError(f"column {name!r}, row {row}: timedelta too large for "
                                f"64-bit nanoseconds")
        i8 = np.where(nat, 0, i8 * factor)
    mask = np.ascontiguousarray(nat).view(np.uint8) if nat.any() else None
    return _int_col(name, i8, mask, dtype, family="timedelta", decl="INTEGER")


def _object_col(name, series, dtype) -> _Col:
    import pandas as pd

    vals = series.to_numpy(dtype=object)
    inferred = pd.api.types.infer_dtype(vals, skipna=True)
    missing = np.fromiter((_is_missing(v) for v in vals), dtype=bool, count=len(vals))
    mask = np.ascontiguousarray(missing).view(np.uint8) if missing.any() else None
    if inferred == "empty":
        return _Col(name, "", "null", "null", dtype)
    if inferred in ("string", "bytes"):
        blob = inferred == "bytes"
        if _have_pyarrow():
            import pyarrow as pa

            try:
                clean = np.where(missing, None, vals) if mask is not None else vals
                arr = pa.array(clean, type=pa.large_binary() if blob else pa.large_string(), from_pandas=True)
                return _arrow_col(name, arr, blob=blob, dtype=dtype)
            except (pa.ArrowException, UnicodeError, TypeError, ValueError):
                pass  # e.g. lone surrogates: bind them one by one (surrogateescape)
        return _Col(name, "BLOB" if blob else "TEXT", "blob" if blob else "text", "object", dtype,
                    objects=vals.tolist())
    if inferred == "integer":
        try:
            ints = np.where(missing, 0, vals).astype(np.int64)
        except OverflowError:
            return _Col(name, "INTEGER", "integer", "object", dtype, objects=vals.tolist())
        return _int_col(name, ints, mask, dtype)
    if inferred == "boolean":
        return _int_col(name, np.where(missing, 0, vals).astype(np.int64), mask, dtype,
                        family="bool", decl="BOOLEAN")
    if inferred == "floating":
        floats = np.where(missing, np.nan, vals).astype(np.float64)
        return _Col(name, "REAL", "real", "float", dtype, values=np.ascontiguousarray(floats))
    if inferred == "mixed-integer-float":
        return _Col(name, "REAL", "real", "object", dtype, objects=vals.tolist())
    if inferred in ("datetime", "datetime64"):
        try:
            return _convert(pd.Series(pd.to_datetime(vals, format="mixed")), name)
        except (ValueError, TypeError):
            pass  # e.g. mixed time zones: fall through to the object path (clear error per value)
    if inferred in ("timedelta", "timedelta64"):
        try:
            return _convert(pd.Series(pd.to_timedelta(vals)), name)
        except (ValueError, TypeError):
            pass
    if inferred == "date":
        iso = [None if m else v.isoformat() for v, m in zip(vals.tolist(), missing.tolist())]
        col = _object_col(name, pd.Series(iso, dtype=object), dtype)
        col.decl, col.family = "DATE", "date"
        return col
    return _Col(name, "", "mixed", "object", dtype, objects=vals.tolist())


def _arrow_dtype_col(name, series, dtype) -> _Col:
    import pandas as pd
    import pyarrow as pa

    t = series.dtype.pyarrow_dtype
    chunked = series.array.__arrow_array__()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return _arrow_col(name, chunked, blob=False, dtype=dtype)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t) \
            or pa.types.is_fixed_size_binary(t):
        return _arrow_col(name, chunked, blob=True, dtype=dtype)
    if pa.types.is_nested(t):  # list, struct, map, union: no single SQLite value
        raise _errors.BindError(
            f"column {name!r}: Arrow type {t} has no SQLite representation (one value per cell); "
            f"convert it first, e.g. to JSON text: df[{name!r}].map(lambda v: json.dumps(v.tolist() "
            f"if hasattr(v, 'tolist') else v))")
    mask = _mask_of(series)
    if pa.types.is_boolean(t):  # NA -> NULL through the mask (Arrow cannot cast a NA fill of 0 to bool)
        return _int_col(name, series.to_numpy(dtype=np.bool_, na_value=False).astype(np.int64), mask, dtype,
                        family="bool", decl="BOOLEAN")
    if pa.types.is_integer(t):
        if pa.types.is_uint64(t):
            raw = series.to_numpy(dtype=np.uint64, na_value=0)
            return _int_col(name, _unsigned_to_int64(name, raw, mask), mask, dtype)
        return _int_col(name, series.to_numpy(dtype=np.int64, na_value=0), mask, dtype)
    if pa.types.is_floating(t):
        return _Col(name, "REAL", "real", "float", dtype,
                    values=np.ascontiguousarray(series.to_numpy(dtype=np.float64, na_value=np.nan)),
                    mask=mask)
    if pa.types.is_timestamp(t) or pa.types.is_duration(t) or pa.types.is_date(t) \
            or pa.types.is_dictionary(t):
        return _convert(pd.Series(chunked.to_pandas()), name, dtype=dtype)
    return _object_col(name, series.astype(object), dtype)


def _convert(series, name: str, *, dtype: str | None = None) -> _Col:
    """One DataFrame column as a :class:`_Col` (declared type, family, buffers)."""
    import pandas as pd

    dt = series.dtype
    dtype = dtype or str(dt)
    if isinstance(dt, pd.CategoricalDtype):
        cats = series.cat.categories
        child = _convert(pd.Series(cats, dtype=cats.dtype), name)
        codes = np.ascontiguousarray(series.cat.codes.to_numpy(), dtype=np.int64)
        return _Col(name, child.decl, child.family, "category", dtype, codes=codes, child=child)
    if isinstance(dt, pd.SparseDtype):
        return _convert(series.sparse.to_dense(), name, dtype=dtype)
    if isinstance(dt, pd.ArrowDtype):
        return _arrow_dtype_col(name, series, dtype)
    if isinstance(dt, pd.StringDtype):
        if dt.storage == "pyarrow":
            return _arrow_col(name, series.array.__arrow_array__(), blob=False, dtype=dtype)
        return _object_col(name, series.astype(object), dtype)
    if isinstance(dt, pd.BooleanDtype):
        return _int_col(name, series.to_numpy(dtype=np.bool_, na_value=False).astype(np.int64),
                        _mask_of(series), dtype, family="bool", decl="BOOLEAN")
    if isinstance(dt, (pd.PeriodDtype, pd.IntervalDtype)):
        raise _errors.BindError(
            f"column {name!r}: dtype {dt} has no SQLite representation; convert it first, "
            f"e.g. df[{name!r}].astype(str)")
    if isinstance(dt, pd.api.extensions.ExtensionDtype) and getattr(dt, "_is_numeric", False) \
            and dt.kind in "iu":
        mask = _mask_of(series)
        if dt.kind == "u" and dt.itemsize == 8:
            raw = series.to_numpy(dtype=np.uint64, na_value=0)
            return _int_col(name, _unsigned_to_int64(name, raw, mask), mask, dtype)
        return _int_col(name, series.to_numpy(dtype=np.int64, na_value=0), mask, dtype)
    if isinstance(dt, pd.api.extensions.ExtensionDtype) and getattr(dt, "_is_numeric", False) \
            and dt.kind == "f":
        return _Col(name, "REAL", "real", "float", dtype,
                    values=np.ascontiguousarray(series.to_numpy(dtype=np.float64, na_value=np.nan)),
                    mask=_mask_of(series))
    if isinstance(dt, pd.DatetimeTZDtype) or (isinstance(dt, np.dtype) and dt.kind == "M"):
        return _datetime_col(name, series, dtype)
    if isinstance(dt, np.dtype) and dt.kind == "m":
        return _timedelta_col(name, series, dtype)
    if isinstance(dt, np.dtype):
        if dt.kind == "b":
            return _int_col(name, series.to_numpy().astype(np.int64), None, dtype,
                            family="bool", decl="BOOLEAN")
        if dt.kind == "i":
            return _int_col(name, series.to_numpy(), None, dtype)
        if dt.kind == "u":
            return _int_col(name, _unsigned_to_int64(name, series.to_numpy(), None), None, dtype)
        if dt.kind == "f":
            return _Col(name, "REAL", "real", "float", dtype,
                        values=np.ascontiguousarray(series.to_numpy(), dtype=np.float64))
        if dt.kind == "O":
            return _object_col(name, series, dtype)
        if dt.kind in "SU":
            return _object_col(name, series.astype(object), dtype)
    raise _errors.BindError(
        f"column {name!r}: dtype {dt} has no SQLite representation; convert it first "
        f"(e.g. df[{name!r}].astype(str) or .astype(float))")



# ---------------------------------------------------------------------------
# the frame's schema
# ---------------------------------------------------------------------------
def _frame_columns(df, index: bool) -> list[tuple[str, Any]]:
    import pandas as pd

    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"to_table() needs a pandas DataFrame, not {type(df).__name__}")
    if isinstance(df.columns, pd.MultiIndex):
        raise ValueError("to_table(): the frame has MultiIndex columns; flatten them first, e.g. "
                         "df.columns = ['_'.join(map(str, c)) for c in df.columns]")
    if index:
        try:
            df = df.reset_index()
        except ValueError as exc:
            raise ValueError(f"to_table(index=True): {exc}") from None
    cols = []
    for j in range(df.shape[1]):
        name = df.columns[j]
        cols.append((name if isinstance(name, str) else str(name), df.iloc[:, j]))
    return cols


def _check_names(names: list[str]) -> None:
    seen: dict[str, str] = {}
    for n in names:
        _sql.quote_identifier(n)
        key = n.lower() if n.isascii() else "".join(c.lower() if c.isascii() else c for c in n)
        if key in seen:
            raise ValueError(f"to_table(): columns {seen[key]!r} and {n!r} have the same name in SQLite "
                             f"(column names are case-insensitive there); rename one first")
        seen[key] = n


def schema_for(df, *, index: bool = False, dtype=None) -> list[tuple[str, str]]:
    """The ``(column, declared type)`` list :func:`to_table` would create for ``df``."""
    cols = [_convert(s, n) for n, s in _frame_columns(df, index)]
    _apply_dtype(cols, dtype)
    return [(c.name, c.decl) for c in cols]


def _apply_dtype(cols: list[_Col], dtype) -> None:
    if dtype is None:
        return
    if isinstance(dtype, str):
        dtype = {c.name: dtype for c in cols}
    if not isinstance(dtype, dict):
        raise TypeError("dtype= takes a SQL type name (for every column) or a dict {column: type}")
    by_name = {c.name: c for c in cols}
    unknown = [k for k in dtype if k not in by_name]
    if unknown:
        raise ValueError(f"dtype= names columns the frame does not have: {', '.join(map(repr, unknown))}")
    for k, v in dtype.items():
        if not isinstance(v, str) or (v and not _is_type_name(v.strip())):
            raise ValueError(f"dtype= for column {k!r}: {v!r} is not a SQL type name "
                             f"(words and an optional (n) or (n, m), e.g. 'VARCHAR(20)')")
        by_name[k].decl = v.strip()


def _is_type_name(text: str) -> bool:
    """``text`` is a declared type: words separated by spaces, optionally with ``(n)`` or ``(n, m)``
    (signed whole numbers), and nothing else (no comment, string or semicolon that could change
    the CREATE TABLE)."""
    toks = list(_sql.tokens(text, space=True))
    if any(t.kind not in ("space", "word", "number", "op") or (t.kind == "space" and t.text.strip(" "))
           for t in toks):
        return False
    toks = [t for t in toks if t.kind != "space"]
    i = 0
    while i < len(toks) and toks[i].kind == "word" and toks[i].text.isascii() and "$" not in toks[i].text:
        i += 1
    shape = []   # the tokens after the words: "(", ")", ",", a signed whole number as "n"
    k = i
    while k < len(toks):
        t = toks[k]
        if t.kind == "op" and t.text in ("+", "-") and k + 1 < len(toks) \
                and toks[k + 1].kind == "number" and toks[k + 1].start == t.start + 1:
            k += 1
            t = toks[k]
        shape.append("n" if t.kind == "number" and t.text.isdigit() else t.text)
        k += 1
    return i > 0 and shape in ([], ["(", "n", ")"], ["(", "n", ",", "n", ")"])


# ---------------------------------------------------------------------------
# the values: buffers for the compiled loop, Python objects for the others
# ---------------------------------------------------------------------------
def _arrow_buffers(a):
    """(offset, validity, offsets, data, wide) of an Arrow string/binary array, as ExportColumns takes them."""
    import pyarrow as pa

    wide = pa.types.is_large_string(a.type) or pa.types.is_large_binary(a.type)
    u8 = [None if b is None else np.frombuffer(b, dtype=np.uint8) for b in a.buffers()[:3]]
    return a.offset, u8[0], u8[1], u8[2], wide


def _length(c: _Col) -> int:
    if c.kind == "arrow":
        return len(c.arrow)
    if c.kind == "object":
        return len(c.objects)
    if c.values is not None:
        return len(c.values)
    return 0   # kind "null" (no buffer): only a category's empty categories are measured


def _py_values(c: _Col, start: int, stop: int) -> list:
    """Python values of rows start..stop-1 by the Cython loop's rules (the engines without it)."""
    if c.kind == "category":
        child = _py_values(c.child, 0, _length(c.child))
        return [None if k < 0 else child[k] for k in c.codes[start:stop].tolist()]
    if c.kind in ("int", "float"):
        vals = c.values[start:stop]
        out = vals.tolist()
        nulls = np.isnan(vals) if c.kind == "float" else np.zeros(len(vals), dtype=bool)
        if c.mask is not None:
            nulls = nulls | c.mask[start:stop].astype(bool)
        for k in np.flatnonzero(nulls).tolist():
            out[k] = None
        return out
    if c.kind == "datetime":
        return _format_datetimes_py(c, c.values[start:stop])
    if c.kind == "arrow":
        return c.arrow.slice(start, stop - start).to_pylist()
    if c.kind == "null":
        return [None] * (stop - start)
    out = []
    for k, v in enumerate(c.objects[start:stop], start):
        if _is_missing(v):
            out.append(None)
            continue
        try:
            out.append(_bind.adapt(v, f"column {c.name!r}, row {k}"))
        except _errors.BindError as exc:
            exc.add_note(f"convert the column first, e.g. df[{c.name!r}].astype(str)")
            raise
    return out


def _format_datetimes_py(c: _Col, i8: np.ndarray) -> list:
    """The Cython formatter's output, computed with numpy (for the engines without the compiled loop)."""
    nat = i8 == _INT64_MIN
    unit = {0: "s", 3: "ms", 6: "us", 9: "ns"}[c.frac]
    src_unit = {v: k for k, v in _TICKS.items()}[c.ticks]
    dt = np.where(nat, 0, i8).astype(f"datetime64[{src_unit}]").astype(f"datetime64[{unit}]")
    text = np.char.replace(np.datetime_as_string(dt, unit=unit), "T", " ")
    out = text.tolist()
    suffix = "+00:00" if c.utc else ""
    return [None if n else s + suffix for s, n in zip(out, nat.tolist())]
