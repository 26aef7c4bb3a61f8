"""DataFrames into tables (:func:`to_table`) and results into files (:func:`write_result`).

``to_table`` derives a schema from the pandas dtypes, then fills the table
with one prepared INSERT inside one transaction: on the ``sqlite`` and
``bdb`` engines through the Cython loop in ``_export.pxi`` (binding straight
from the column buffers, the GIL released while a chunk of plain columns is
stepped), on the ``system`` engine through the stdlib's ``executemany`` with
the same type rules. An error, an interrupt or a killed process leaves the
database as it was. The rules are documented in docs/export.md.

``write_result`` writes a DataFrame or Arrow table to CSV, Parquet, JSON
lines, JSON or Arrow IPC (Feather) with pandas' and pyarrow's own writers.
"""
from __future__ import annotations

from sqlnb.dbapi import affinity as _affinity  # SQLite's column affinity rules: one copy

import datetime as _dt
import operator
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sqlnb import errors as _errors
from sqlnb import progress as _progress

__all__ = ["to_table", "write_result", "FORMATS", "TableExistsError", "IncompatibleTableError",
           "schema_for", "quote_identifier"]

IF_EXISTS = ("fail", "replace", "append")
DEFAULT_CHUNK_ROWS = 65536
ROWS_PER_STEP = 16     # rows per INSERT step on our SQLite (see _rows_per_step)
_MAX_PARAMS = 32766    # SQLITE_MAX_VARIABLE_NUMBER of our build
# our SQLite's page cache during a large export (KiB; SQLite's default is 2,000 KiB). The new
# table's pages then stay in memory until COMMIT instead of being written out and read back
# while the b-tree grows; the connection's own setting is restored afterwards.
EXPORT_CACHE_KIB = 262144
_EXPORT_CACHE_ROWS = 100_000   # exports smaller than this keep the connection's cache
_SAVEPOINT = '"sqlnb_to_table"'
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min
_TICKS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
# 0001-01-01T00:00:00 and 9999-12-31T23:59:59 in seconds since the epoch
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799
# a declared type: words, optionally with (n) or (n, m); nothing that could end the statement
_DECL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?: +[A-Za-z_][A-Za-z0-9_]*)*"
                      r"(?: *\( *[+-]?\d+ *(?:, *[+-]?\d+ *)?\))?")


class TableExistsError(_errors.ProgrammingError, ValueError):
    """``to_table(..., if_exists="fail")`` found the table (or another object of that name)."""


class IncompatibleTableError(_errors.ProgrammingError, ValueError):
    """``to_table(..., if_exists="append")``: the frame does not fit the existing table."""


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier: ``x"y`` -> ``"x""y"`` (any text is just a name)."""
    if not isinstance(name, str):
        raise TypeError(f"an identifier must be str, not {type(name).__name__}")
    if "\x00" in name:
        raise ValueError(f"identifier {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------
# columns: pandas dtype -> declared type + the buffers the insert loop binds
# ---------------------------------------------------------------------------
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
    extra: dict = field(default_factory=dict)


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
        quote_identifier(n)
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
        if not isinstance(v, str) or (v and not _DECL_RE.fullmatch(v.strip())):
            raise ValueError(f"dtype= for column {k!r}: {v!r} is not a SQL type name "
                             f"(words and an optional (n) or (n, m), e.g. 'VARCHAR(20)')")
        by_name[k].decl = v.strip()


def _create_sql(table: str, cols: list[_Col]) -> str:
    defs = ", ".join(f"{quote_identifier(c.name)} {c.decl}".rstrip() for c in cols)
    return f"CREATE TABLE main.{quote_identifier(table)} ({defs})"




def _fits(col: _Col, decl: str) -> str | None:
    """None when ``col``'s values keep their type in a column declared ``decl``, else why not."""
    aff = _affinity(decl)
    fam = col.family
    if aff == "BLOB" or fam == "null":
        return None
    numbers = ("integer", "bool", "timedelta", "real")
    if aff in ("REAL", "NUMERIC") and fam in numbers:
        return None
    if aff == "INTEGER":
        if fam in ("integer", "bool", "timedelta"):
            return None
        if fam == "real" and col.kind == "float":
            v = col.values[~np.isnan(col.values)]
            if not len(v) or (np.all(np.mod(v, 1) == 0) and np.all(np.abs(v) < 2.0 ** 63)):
                return None
            return "its float values are not all whole numbers"
    if aff == "TEXT" and fam in ("text", "datetime", "date"):
        return None
    if aff == "NUMERIC" and fam in ("text", "datetime", "date") and ("DATE" in decl.upper() or "TIME" in decl.upper()):
        return None
    what = {"mixed": "values of mixed types", "text": "text", "blob": "bytes", "real": "floats",
            "integer": "integers", "bool": "booleans", "timedelta": "timedeltas (integer ns)",
            "datetime": "datetimes (ISO-8601 text)", "date": "dates (ISO-8601 text)"}[fam]
    return f"{what} would be converted by the column's {aff} affinity"


# ---------------------------------------------------------------------------
# small helpers over the raw engine protocol (RawConnection / _system.RawConnection)
# ---------------------------------------------------------------------------
def _run(raw, sql: str, params=None) -> list:
    st, _ = raw.prepare(sql.encode("utf-8"), 0)
    if st is None:
        return []
    try:
        if params is not None:
            st.bind(params)
        rows = []
        while st.step():
            rows.append(st.row())
        return rows
    finally:
        st.finalize()


def _existing(raw, table: str):
    """(type, stored name) of the schema object called ``table`` in main, or None."""
    rows = _run(raw, "SELECT type, name FROM main.sqlite_master WHERE name = ? COLLATE NOCASE "
                     "AND type IN ('table', 'view', 'index', 'trigger')", (table,))
    return rows[0] if rows else None


def _table_info(raw, table: str):
    return [(r[1], r[2] or "", bool(r[3]), r[4], int(r[5]))
            for r in _run(raw, f"PRAGMA main.table_info({quote_identifier(table)})")]


def _append_plan(raw, table: str, cols: list[_Col]) -> list[str]:
    """The table's column names matching ``cols`` (in order), or IncompatibleTableError saying why not."""
    info = _table_info(raw, table)
    by_key = {n.lower(): (n, decl, notnull, dflt, pk) for n, decl, notnull, dflt, pk in info}
    problems, targets = [], []
    for c in cols:
        hit = by_key.get(c.name.lower())
        if hit is None:
            problems.append(f"the frame's column {c.name!r} is not a column of the table "
                            f"(its columns: {', '.join(n for n, *_ in info)})")
            continue
        targets.append(hit[0])
        why = _fits(c.child if c.kind == "category" else c, hit[1]) if hit[1] else None
        if why:
            problems.append(f"column {c.name!r} ({c.dtype}) does not fit declared type {hit[1]}: {why}")
    given = {c.name.lower() for c in cols}
    int_pk = [n for n, decl, _, _, pk in info if pk and decl.upper() == "INTEGER"]
    for n, decl, notnull, dflt, pk in info:
        if n.lower() in given:
            continue
        if notnull and dflt is None and not (len(int_pk) == 1 and n == int_pk[0]):
            problems.append(f"table column {n!r} is NOT NULL without a default and the frame has no such column")
    if problems:
        raise IncompatibleTableError(f"cannot append to table {table!r}: " + "; ".join(problems))
    return targets


# ---------------------------------------------------------------------------
# the insert loops
# ---------------------------------------------------------------------------
def _columns_for(mod, cols: list[_Col], n: int):
    """ExportColumns over ``cols``, and [(slot, chunks)] for the Arrow columns held in several chunks."""
    ec = mod.ExportColumns(n, _is_missing)
    cats, chunked = [], []
    for c in cols:
        if c.kind == "category":
            cats.append((ec.reserve_category(c.name), c))
        else:
            slot = _add(ec, c, True)
            if c.kind == "arrow" and hasattr(c.arrow, "chunks"):
                chunked.append((slot, [ch for ch in c.arrow.chunks if len(ch)]))
    for slot, c in cats:
        child = _add(ec, c.child, False)
        ec.set_category(slot, c.codes, child, _length(c.child))
    return ec, chunked


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
    return c.extra.get("n", 0)


def _add(ec, c: _Col, bound: bool) -> int:
    if c.kind == "int":
        return ec.add_int64(c.name, c.values, c.mask, bound=bound)
    if c.kind == "float":
        return ec.add_float64(c.name, c.values, c.mask, bound=bound)
    if c.kind == "datetime":
        return ec.add_datetime(c.name, c.values, c.ticks, c.frac, c.utc, None, bound=bound)
    if c.kind == "arrow":
        a, rows = c.arrow, -1
        if hasattr(a, "chunks"):          # a ChunkedArray: start at its first non-empty chunk
            if not bound:
                a = a.combine_chunks()
            else:
                rows, a = len(a), next(ch for ch in a.chunks if len(ch))
        return ec.add_arrow(c.name, len(a), *_arrow_buffers(a), blob=c.family == "blob", bound=bound,
                            rows=rows)
    if c.kind == "object":
        return ec.add_objects(c.name, c.objects, bound=bound)
    if c.kind == "null":
        return ec.add_null(c.name, bound=bound)
    raise AssertionError(c.kind)


def _py_values(c: _Col, start: int, stop: int) -> list:
    """Python values of rows start..stop-1 with the same rules as the Cython loop (system engine)."""
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
        elif isinstance(v, (bool, np.bool_)):
            out.append(int(v))
        elif isinstance(v, (int, float, str, bytes)):
            out.append(v)
        elif isinstance(v, (bytearray, memoryview)):
            out.append(bytes(v))
        elif isinstance(v, np.integer):
            out.append(int(v))
        elif isinstance(v, np.floating):
            out.append(float(v))
        elif getattr(type(v), "__index__", None) is not None and not isinstance(v, np.ndarray):
            out.append(operator.index(v))
        elif isinstance(v, (_dt.date, _dt.time)):  # ISO-8601 text, as every engine binds them
            out.append(v.isoformat(" ") if isinstance(v, _dt.datetime) else v.isoformat())
        else:
            raise _errors.BindError(
                f"column {c.name!r}, row {k}: a value of type '{type(v).__name__}' cannot be stored "
                f"in SQLite (storable: None, bool, int, float, str, bytes, date, time, datetime); "
                f"convert the column first, e.g. df[{c.name!r}].astype(str)")
        if type(out[-1]) is int and not (_INT64_MIN <= out[-1] <= _INT64_MAX):
            raise OverflowError(f"column {c.name!r}, row {k}: Python int {out[-1]} does not fit "
                                f"SQLite's 64-bit INTEGER")
    return out


def _format_datetimes_py(c: _Col, i8: np.ndarray) -> list:
    """The Cython formatter's output, computed with numpy (the system engine has no C code)."""
    nat = i8 == _INT64_MIN
    unit = {0: "s", 3: "ms", 6: "us", 9: "ns"}[c.frac]
    src_unit = {v: k for k, v in _TICKS.items()}[c.ticks]
    dt = np.where(nat, 0, i8).astype(f"datetime64[{src_unit}]").astype(f"datetime64[{unit}]")
    text = np.char.replace(np.datetime_as_string(dt, unit=unit), "T", " ")
    out = text.tolist()
    suffix = "+00:00" if c.utc else ""
    return [None if n else s + suffix for s, n in zip(out, nat.tolist())]


def _rows_per_step(engine: str, ncols: int) -> int:
    """Rows one INSERT step carries (``VALUES (...), (...)``): fewer statement starts per row.
    BerkeleyDB's 3.7.6 core predates multi-row VALUES (3.7.11)."""
    if engine != "sqlite":
        return 1
    return max(1, min(ROWS_PER_STEP, _MAX_PARAMS // max(ncols, 1)))


def _insert_fast(raw, mod, insert_sql: str, cols: list[_Col], n: int, chunk_rows: int,
                 rows_per_step: int = 1) -> None:
    ec, chunked = _columns_for(mod, cols, n)
    # Arrow columns in several chunks: [slot, chunks, index of the current chunk, its first row]
    cursors = [[slot, chunks, 0, 0] for slot, chunks in chunked]
    k = rows_per_step if n >= rows_per_step else 1
    one, _ = raw.prepare(insert_sql.encode("utf-8"), 0)
    many = one
    try:
        if k > 1:
            row = insert_sql[insert_sql.rindex(" VALUES ") + 8:]
            many, _ = raw.prepare((insert_sql + ("," + row) * (k - 1)).encode("utf-8"), 0)
        done = 0
        while done < n:
            stop = min(n, done + chunk_rows)
            for cur in cursors:
                slot, chunks, c, row0 = cur
                if done >= row0 + len(chunks[c]):     # this column's chunk is used up: the next one
                    row0 += len(chunks[c])
                    c += 1
                    ec.set_arrow_chunk(slot, row0, len(chunks[c]), *_arrow_buffers(chunks[c]))
                    cur[2:] = [c, row0]
                stop = min(stop, row0 + len(chunks[c]))
            whole = done + (stop - done) // k * k     # rows that fill k-row steps, then one by one
            if whole > done:
                _insert_steps(ec, many, one, done, whole, done == 0)
            if stop > whole:
                ec.insert(one, whole, stop, whole == 0)
            done = stop
            raw.rows_seen = done
    finally:
        if many is not one:
            many.finalize()
        one.finalize()


def _insert_steps(ec, many, one, start: int, stop: int, first: bool) -> None:
    """ec.insert through the k-row statement; when a value breaks a constraint, SQLite undoes that
    step alone, and its rows go again one by one so that the error names the row."""
    try:
        ec.insert(many, start, stop, first)
    except (_errors.IntegrityError, _errors.DataError) as exc:
        rows = getattr(exc, "rows", None)
        if rows is None:
            raise
        ec.insert(one, rows[0], rows[1], False)
        raise


def _insert_system(raw, insert_sql: str, cols: list[_Col], n: int, chunk_rows: int) -> None:
    import sqlite3

    from sqlnb import _system

    # SQLite forgets an interrupt that lands between two rows; note every interrupt() during
    # the export (the instance attribute shadows the method until the export ends)
    interrupted = []
    original = raw.interrupt

    def interrupt():
        interrupted.append(True)
        original()

    pulled = [0]   # rows executemany has taken from rows(): the failing one is the last

    def rows(columns):
        pulled[0] = 0
        for row in zip(*columns):
            if interrupted:
                raise _errors.make_error(9, "interrupted", sql=insert_sql)
            pulled[0] += 1
            yield row

    raw.interrupt = interrupt
    # the connection's statement time limit bounds the whole insert (the stdlib engine's
    # progress handler aborts the running statement once this deadline has passed)
    raw._deadline = (time.monotonic() + raw.timeout) if raw.timeout else 0.0
    try:
        done = 0
        while done < n:
            stop = min(n, done + chunk_rows)
            columns = [_py_values(c, done, stop) for c in cols]
            try:
                with raw._lock:   # the adapter's lock, as its own calls take it (_system._serialized)
                    raw._con.executemany(insert_sql, rows(columns))
            except UnicodeEncodeError as exc:
                raise _surrogate_error(cols, columns, done, exc) from None
            except sqlite3.Error as exc:
                if raw._deadline and time.monotonic() > raw._deadline:
                    err = _timeout_error(raw, insert_sql)
                    raise err from None
                err = _system.translate(exc, insert_sql)
                if pulled[0]:
                    err.row = done + pulled[0] - 1
                    err.add_note(f"while inserting row {err.row} (0-based position in the frame)")
                else:
                    err.add_note(f"while inserting rows {done}..{stop - 1} (0-based positions in the frame)")
                raise err from None
            if interrupted:
                raise _errors.make_error(9, "interrupted", sql=insert_sql)
            done = stop
            raw.rows_seen = done
            if raw._deadline and time.monotonic() > raw._deadline and done < n:
                raise _timeout_error(raw, insert_sql)
    finally:
        del raw.interrupt
        raw._deadline = 0.0


def _surrogate_error(cols, columns, start, exc):
    for c, values in zip(cols, columns):
        for k, v in enumerate(values):
            if isinstance(v, str):
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    return _errors.BindError(
                        f"column {c.name!r}, row {start + k}: text with lone surrogates cannot be stored "
                        f"by the system engine (the stdlib encodes UTF-8 strictly; the sqlite and bdb "
                        f"engines store them as surrogateescape bytes)")
    return exc


def _timeout_error(raw, sql):
    exc = _errors.make_error(9, f"statement exceeded its time limit of {raw.timeout:g} s (timeout)",
                             cls=_errors.QueryTimeoutError, sql=sql)
    exc.timeout = raw.timeout
    return exc


# ---------------------------------------------------------------------------
# to_table
# ---------------------------------------------------------------------------
def to_table(con, df, name: str, *, if_exists: str = "fail", index: bool = False, dtype=None,
             chunk_rows: int = DEFAULT_CHUNK_ROWS) -> int:
    """Write ``df`` into table ``name`` of ``con``'s main database, atomically.

    :param con: a :class:`sqlnb.Connection` (any engine).
    :param df: a pandas DataFrame (or Series).
    :param name: the table name, used verbatim (quoted: any text is just a name).
    :param if_exists: ``"fail"`` (default: error if ``name`` exists), ``"replace"``
        (drop and re-create, in the same transaction) or ``"append"`` (the frame must
        fit the existing columns and declared types; created if missing).
    :param index: also write the frame's index as leading column(s), as ``reset_index()`` names them.
    :param dtype: a declared SQL type for every column (str) or per column (dict); applies
        when the table is created. Values are still bound by the type rules in docs/export.md.
    :param chunk_rows: rows per chunk: the progress counter ``raw.rows_seen`` and interrupt
        checks advance per chunk (the whole export is still one transaction).
    :returns: the number of rows written.

    Runs in one transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT`` when none is open,
    else inside ``SAVEPOINT`` (released on success: your own COMMIT makes it durable).
    Any error, ``KeyboardInterrupt`` or a killed process leaves the database as it was.
    """
    if if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists must be one of {', '.join(map(repr, IF_EXISTS))}, not {if_exists!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"to_table() needs a non-empty table name (str), not {name!r}")
    quote_identifier(name)
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive int, not {chunk_rows!r}")
    pairs = _frame_columns(df, index)
    if not pairs:
        raise ValueError("to_table(): the frame has no columns (a table needs at least one)")
    names = [n for n, _ in pairs]
    _check_names(names)
    cols = [_convert(s, n) for n, s in pairs]
    _apply_dtype(cols, dtype)
    n = len(pairs[0][1])

    raw = con.raw
    engine = getattr(con, "engine", "sqlite")
    mod = None if engine == "system" else sys.modules[type(raw).__module__]
    own = raw.autocommit
    cache = _raise_cache(raw) if engine == "sqlite" and n >= _EXPORT_CACHE_ROWS else None
    try:
        _fill_table(raw, mod, name, cols, names, n, if_exists=if_exists, own=own, chunk_rows=chunk_rows,
                    rows_per_step=_rows_per_step(engine, len(cols)))
    except BaseException:
        if cache is not None and not raw.closed:
            try:
                _run(raw, f"PRAGMA main.cache_size={cache}")
            except BaseException:  # noqa: BLE001 - never hide the export's own error
                pass
        raise
    if cache is not None:
        _run(raw, f"PRAGMA main.cache_size={cache}")
    return n


def _raise_cache(raw) -> int | None:
    """Raise main's page cache to EXPORT_CACHE_KIB if it is smaller; return the setting to restore."""
    old = _run(raw, "PRAGMA main.cache_size")[0][0]
    kib = -old if old < 0 else old * _run(raw, "PRAGMA main.page_size")[0][0] // 1024
    if kib >= EXPORT_CACHE_KIB:
        return None
    _run(raw, f"PRAGMA main.cache_size={-EXPORT_CACHE_KIB}")
    return old


def _fill_table(raw, mod, name, cols, names, n, *, if_exists, own, chunk_rows, rows_per_step) -> None:
    """to_table's transaction: create/replace/append, fill, commit; roll back on any error.

    The BEGIN/SAVEPOINT runs inside the ``try``: an interrupt (Ctrl-C) that lands
    right after it took effect still rolls back, so no transaction of ours stays open
    (a later export would write into it and vanish at close). ``_undo`` finds out
    from the connection whether it did take effect.
    """
    begun = False
    try:
        _run(raw, "BEGIN IMMEDIATE" if own else f"SAVEPOINT {_SAVEPOINT}")
        begun = True
        found = _existing(raw, name)
        create = True
        targets = names
        if found is not None:
            kind, stored = found
            if if_exists == "fail":
                raise TableExistsError(
                    f"table {stored!r} already exists" if kind == "table" else
                    f"{kind} {stored!r} already exists (to_table writes tables)"
                    + "; pass if_exists='replace' or 'append'" * (kind == "table"))
            if kind != "table":
                raise TableExistsError(f"{kind} {stored!r} already exists; to_table only replaces or "
                                       f"appends to tables")
            if if_exists == "replace":
                _run(raw, f"DROP TABLE main.{quote_identifier(stored)}")
            else:
                targets = _append_plan(raw, stored, cols)
                name = stored
                create = False
        if create:
            _run(raw, _create_sql(name, cols))
        insert_sql = (f"INSERT INTO main.{quote_identifier(name)} "
                      f"({', '.join(quote_identifier(t) for t in targets)}) "
                      f"VALUES ({', '.join('?' * len(cols))})")
        raw.rows_seen = 0
        if n:
            with _progress.track(raw, label=f"to_table {name}", total=n):
                if mod is None:
                    _insert_system(raw, insert_sql, cols, n, chunk_rows)
                else:
                    _insert_fast(raw, mod, insert_sql, cols, n, chunk_rows, rows_per_step)
        _run(raw, "COMMIT" if own else f"RELEASE {_SAVEPOINT}")
    except BaseException as exc:
        _undo(raw, own, exc, begun)
        raise


def _undo(raw, own: bool, exc: BaseException, begun: bool = True) -> None:
    """Roll the export back; note on ``exc`` if SQLite had already rolled back more.

    ``begun`` False: the exception came before the BEGIN/SAVEPOINT was known to have
    run. With ``own``, the connection's autocommit state says whether it did; inside the
    caller's transaction, a ROLLBACK TO that finds no savepoint of ours is expected then.
    """
    try:
        if raw.closed:
            return
        if raw.autocommit:
            if not own and begun and hasattr(exc, "add_note"):
                exc.add_note("SQLite rolled back the whole enclosing transaction (it does so on an "
                             "interrupt or an I/O error), not just the export")
            return
        if own:
            _run(raw, "ROLLBACK")
        else:
            try:
                _run(raw, f"ROLLBACK TO {_SAVEPOINT}")
            except _errors.Error:
                if begun:
                    raise
                return  # the SAVEPOINT never ran: nothing of ours to undo
            _run(raw, f"RELEASE {_SAVEPOINT}")
    except BaseException as undo_exc:  # noqa: BLE001 - report both, the original wins
        if hasattr(exc, "add_note"):
            exc.add_note(f"rolling back the export also failed: {type(undo_exc).__name__}: {undo_exc}")


# ---------------------------------------------------------------------------
# write_result
# ---------------------------------------------------------------------------
FORMATS = {
    "csv": (".csv", ".tsv"),
    "parquet": (".parquet", ".pq"),
    "jsonl": (".jsonl", ".ndjson"),
    "json": (".json",),
    "feather": (".feather", ".arrow", ".ipc", ".arrows"),
}
_ALIASES = {"arrow": "feather", "ipc": "feather", "json-lines": "jsonl", "jsonlines": "jsonl",
            "ndjson": "jsonl", "pq": "parquet", "tsv": "csv"}
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zip", ".tar")


def format_for(path, format: str | None = None) -> str:
    """The format name for ``path`` (from its extension) or the explicit ``format``."""
    known = ", ".join(sorted(FORMATS))
    if format is not None:
        f = str(format).lower().lstrip(".")
        f = _ALIASES.get(f, f)
        if f not in FORMATS:
            raise ValueError(f"unknown export format {format!r}; choose one of: {known}")
        return f
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    ext = suffixes[-1] if suffixes else ""
    for f, exts in FORMATS.items():
        if ext in exts:
            return f
    raise ValueError(f"cannot tell the export format from {str(path)!r}; use an extension "
                     f"({', '.join(e for exts in FORMATS.values() for e in exts)}) or format= one of: {known}")


def _as_pandas(data):
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if _have_pyarrow():
        import pyarrow as pa

        if isinstance(data, (pa.Table, pa.RecordBatch)):
            return data.to_pandas()
    raise TypeError(f"write_result() takes a pandas DataFrame or a pyarrow Table, not {type(data).__name__}")


def _as_arrow(data):
    import pandas as pd
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise TypeError(f"write_result() takes a pandas DataFrame or a pyarrow Table, not {type(data).__name__}")


def write_result(df_or_arrow, path, *, format: str | None = None, **options) -> Path:
    """Write a result to ``path`` as CSV, Parquet, JSON lines, JSON or Arrow IPC (Feather).

    :param df_or_arrow: a pandas DataFrame (or Series) or a ``pyarrow.Table``/``RecordBatch``.
    :param path: the file to write; its extension picks the format unless ``format`` is given
        (``.csv``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson``, ``.json``,
        ``.feather``/``.arrow``/``.ipc``; ``.gz`` etc. after csv/json compress).
    :param format: ``"csv"``, ``"parquet"``, ``"jsonl"``, ``"json"`` or ``"feather"`` (alias ``"arrow"``).
    :param options: passed to the writer (``DataFrame.to_csv``, ``DataFrame.to_parquet``,
        ``DataFrame.to_json``, ``pyarrow.feather.write_feather``).
    :returns: the path written.

    The file is written next to its destination under a temporary name and moved
    into place when complete: a failed write leaves any existing file untouched.
    The frame's index is not written (pass ``index=True`` for csv/parquet to keep it).
    """
    path = Path(os.fspath(path))
    fmt = format_for(path, format)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write(df_or_arrow, tmp, fmt, path, options)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write(data, tmp: Path, fmt: str, final: Path, options: dict) -> None:
    if fmt in ("csv", "jsonl", "json") and "compression" not in options:
        ext = final.suffix.lower()
        if ext == ".zip":
            options["compression"] = {"method": "zip", "archive_name": final.stem}
    if fmt == "csv":
        df = _as_pandas(data)
        options.setdefault("index", False)
        if final.suffix.lower() == ".tsv" or (len(final.suffixes) > 1 and final.suffixes[-2].lower() == ".tsv"):
            options.setdefault("sep", "\t")
        df.to_csv(tmp, **options)
    elif fmt == "jsonl":
        df = _as_pandas(data)
        options.setdefault("date_format", "iso")
        df.to_json(tmp, orient="records", lines=True, **options)
    elif fmt == "json":
        df = _as_pandas(data)
        options.setdefault("date_format", "iso")
        options.setdefault("orient", "records")
        df.to_json(tmp, **options)
    elif fmt == "parquet":
        import pandas as pd

        if isinstance(data, (pd.DataFrame, pd.Series)):
            df = _as_pandas(data)
            options.setdefault("index", False)
            df.to_parquet(tmp, **options)
        else:
            import pyarrow.parquet as pq

            pq.write_table(_as_arrow(data), tmp, **options)
    elif fmt == "feather":
        import pyarrow.feather as feather

        feather.write_feather(_as_arrow(data), tmp, **options)
    else:  # pragma: no cover - format_for() validated it
        raise AssertionError(fmt)
