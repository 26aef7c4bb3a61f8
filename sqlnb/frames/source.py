"""A frame as columns of raw buffers: what the ``sqlnb_frame`` virtual table reads.

:func:`plan` turns a pandas DataFrame, a pyarrow Table / RecordBatch, or any object with the
Arrow PyCapsule interface (``__arrow_c_stream__`` / ``__arrow_c_array__``: polars, DuckDB
results, ...) into a :class:`FramePlan`: the table's column names and declared types, and a
``describe()`` that the core calls at each scan (``xOpen``) to read the frame *as it is now*.
``describe()`` returns ``(nrows, names, columns, keep)``: per column a tuple of integers
(kind, width, unit, flags, chunks, dictionary) whose chunks hold raw addresses into the numpy
arrays and Arrow buffers, and ``keep``, the Python objects owning that memory (the core holds
it for as long as a cursor reads). Nothing is copied but where a column kind has no buffer
SQLite can read directly (listed in docs/frames-in-sql.md, "What is converted").

The kinds and flags are those of ``sqlnb/_core/frame_vtab.h``.
"""
from __future__ import annotations

import datetime as _dt
import decimal as _decimal

import numpy as np

from sqlnb import _sql

# column kinds (frame_vtab.h FK_*)
NULL, INT, UINT, FLOAT, BOOL8, BITBOOL, TIME, STR, BIN, STRVIEW, BINVIEW, OBJECT, DICT = range(13)
# flags (frame_vtab.h FF_*); STRINGS: an object column whose values are str or missing (the
# table may then serve it in order, frame_order.h)
NAT, UTC, DATE, EPOCH, TIMEDELTA, STRINGS = 1, 2, 4, 8, 16, 32

#: how datetime columns read in SQL: ISO-8601 text (the default) or REAL seconds since 1970
DATETIMES = ("text", "epoch")

_TICKS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_INT64_MAX = 2 ** 63 - 1


class FramePlan:
    """What ``Connection.register`` hands the engine: names, declared types, ``describe``."""

    def __init__(self, frame, kind: str, build):
        nrows, names, _cols, _keep, decls = build()
        self.frame = frame
        self.kind = kind                  #: "pandas" or "arrow"
        self._build = build
        self.nrows = nrows
        self.names = tuple(names)
        self.decltypes = tuple(decls)
        _check_names(self.names)

    def describe(self):
        """``(nrows, names, columns, keep)`` of the frame as it is now (the core calls it per scan)."""
        nrows, names, cols, keep, _decls = self._build()
        return nrows, names, cols, keep

    @property
    def decl(self) -> str:
        """The column list of the table's declaration: ``"a" INTEGER, "b" TEXT, ...``."""
        return ", ".join(f"{_sql.quote_identifier(n)} {d}".rstrip() for n, d in zip(self.names, self.decltypes))

    @staticmethod
    def convert(value):
        return convert(value)


def _check_names(names) -> None:
    if not names:
        raise ValueError("the frame has no columns: a table needs at least one")
    seen = {}
    for n in names:
        if "\0" in n:
            raise ValueError(f"column name {n!r} contains a NUL character")
        low = n.lower()
        if low in seen:
            raise ValueError(f"column names {seen[low]!r} and {n!r} are the same name in SQL "
                             "(SQLite compares column names without case): rename one")
        seen[low] = n


def plan(frame, *, datetimes: str = "text") -> FramePlan:
    """The plan for ``frame`` (TypeError naming the type when it is no frame)."""
    if datetimes not in DATETIMES:
        raise ValueError(f"datetimes must be one of {', '.join(DATETIMES)}, not {datetimes!r}")
    epoch = datetimes == "epoch"
    mod = type(frame).__module__.split(".")[0]
    if mod == "pandas" and hasattr(frame, "iloc") and hasattr(frame, "columns"):
        return _pandas_plan(frame, epoch)
    if mod == "pyarrow" or hasattr(frame, "__arrow_c_stream__") or hasattr(frame, "__arrow_c_array__"):
        return _arrow_plan(frame, epoch)
    raise TypeError(f"cannot serve a {type(frame).__module__}.{type(frame).__name__} as a table: "
                    "register a pandas DataFrame, a pyarrow Table or RecordBatch, or an object with "
                    "the Arrow PyCapsule interface (__arrow_c_stream__)")


def convert(v):
    """A numpy object column's value the core does not read itself: None, int, float, str or bytes."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v) if -_INT64_MAX - 1 <= v <= _INT64_MAX else str(v)
    if isinstance(v, (float, np.floating)):
        return None if v != v else float(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return v
    if type(v).__name__ in ("NAType", "NaTType"):   # pandas' missing markers (no pandas import here)
        return None
    if isinstance(v, _dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, (_dt.date, _dt.time, _decimal.Decimal)):
        return str(v)
    return str(v)


# --- pandas ----------------------------------------------------------------------------------
class _Cols:
    """Column descriptions under construction, and the objects that own their memory."""

    def __init__(self, epoch: bool):
        self.epoch = epoch
        self.keep: list = []
        self.decls: list = []


def _names_of(df) -> list:
    """The table's columns: the index levels when any is named, then the frame's columns."""
    out = []
    if any(n is not None for n in df.index.names):
        out += [str(n) if n is not None else f"level_{i}" for i, n in enumerate(df.index.names)]
    out += ["_".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in df.columns]
    return out


def _pandas_plan(df, epoch: bool) -> FramePlan:
    def build():
        cols = _Cols(epoch)
        out = []
        index = df.index
        if any(n is not None for n in index.names):
            for i in range(index.nlevels):
                out.append(_pandas_values(index.get_level_values(i).array, cols))
        for i in range(df.shape[1]):
            out.append(_pandas_values(df.iloc[:, i].array, cols))
        return len(df), _names_of(df), out, cols.keep, cols.decls

    return FramePlan(df, "pandas", build)


def _pandas_values(arr, cols: _Cols):
    """One column from a pandas array (``Series.array`` / ``Index.array``)."""
    import pandas as pd

    if hasattr(arr, "_pa_array"):                   # ArrowExtensionArray, Arrow-backed str
        return _arrow_column(arr._pa_array, cols)
    if isinstance(arr, pd.Categorical):
        codes = np.asarray(arr.codes)
        cols.keep.append(codes)
        sub = _Cols(cols.epoch)
        values = _pandas_values(arr.categories.array, sub)
        cols.keep.append(sub.keep)
        cols.decls.append(sub.decls[0])
        return (DICT, codes.itemsize, 0, 0, [_np_chunk(codes)], values)
    if isinstance(arr, pd.arrays.BooleanArray | pd.arrays.IntegerArray | pd.arrays.FloatingArray):
        data, mask = arr._data, arr._mask
        cols.keep += [data, mask]
        desc = _numpy_values(data, cols)
        chunk = list(desc[4][0])
        chunk[7] = _address(mask)
        return desc[:4] + ([tuple(chunk)],) + desc[5:]
    if isinstance(arr, pd.arrays.DatetimeArray | pd.arrays.TimedeltaArray):
        values = arr._ndarray
        flags = UTC if getattr(arr.dtype, "tz", None) is not None else 0
        return _numpy_values(values, cols, flags=flags)
    nd = getattr(arr, "_ndarray", None)             # NumpyExtensionArray, python-storage StringArray
    if isinstance(nd, np.ndarray) and nd.ndim == 1:
        return _numpy_values(nd, cols)
    # no buffer SQLite can read (Period, Interval, Sparse, ...): its values as Python objects (a copy)
    return _numpy_values(np.asarray(arr, dtype=object), cols)


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0] if a.size else 0


def _np_chunk(a: np.ndarray, *, mask: int = 0) -> tuple:
    # (start, length, data, stride, bit0, valid, vbit, mask, offsets, chars, vbufs)
    return (0, len(a), _address(a), a.strides[0] if a.ndim else 0, 0, 0, 0, mask, 0, 0, ())


def _numpy_values(a: np.ndarray, cols: _Cols, *, flags: int = 0):
    k = a.dtype.kind
    if k == "f" and a.itemsize not in (4, 8) or k in "USVc":
        # float16 / fixed-width strings and bytes / records: no layout the core reads (a copy)
        a = a.astype(np.float64) if k == "f" else np.asarray(a.tolist() if k != "V" else
                                                              [str(x) for x in a], dtype=object)
        k = a.dtype.kind
    cols.keep.append(a)
    chunk = [_np_chunk(a)]
    if k == "i":
        cols.decls.append("INTEGER")
        return (INT, a.itemsize, 0, 0, chunk, None)
    if k == "u":
        cols.decls.append("INTEGER")
        return (UINT, a.itemsize, 0, 0, chunk, None)
    if k == "f":
        cols.decls.append("REAL")
        return (FLOAT, a.itemsize, 0, 0, chunk, None)
    if k == "b":
        cols.decls.append("BOOLEAN")
        return (BOOL8, 1, 0, 0, chunk, None)
    if k in "mM":
        unit, count = np.datetime_data(a.dtype)
        if unit not in _TICKS or count != 1:      # days, months, ... : as nanoseconds (a copy)
            a = a.astype(f"{k}8[ns]")
            cols.keep.append(a)
            unit, chunk = "ns", [_np_chunk(a)]
        if k == "m":
            cols.decls.append("INTEGER")
            return (TIME, 8, _TICKS[unit], NAT | TIMEDELTA, chunk, None)
        cols.decls.append("TIMESTAMP")
        return (TIME, 8, _TICKS[unit], NAT | flags | (EPOCH if cols.epoch else 0), chunk, None)
    # object: str / bytes / floats read in C, anything else through convert()
    kind = _object_kind(a)
    cols.decls.append(_OBJECT_DECLS.get(kind, ""))
    return (OBJECT, a.itemsize, 0, STRINGS if kind in ("string", "empty") else 0, chunk, None)


_OBJECT_DECLS = {"string": "TEXT", "bytes": "BLOB", "integer": "INTEGER", "floating": "REAL",
                 "mixed-integer-float": "REAL", "boolean": "BOOLEAN", "datetime": "TIMESTAMP", "date": "DATE"}


def _object_kind(a: np.ndarray) -> str:
    """pandas' name for what an object column holds ("string", "empty": str or missing only)."""
    import pandas as pd

    return pd.api.types.infer_dtype(a, skipna=True) if len(a) else "empty"


# --- Arrow -----------------------------------------------------------------------------------
def _arrow_plan(obj, epoch: bool) -> FramePlan:
    import pyarrow as pa

    if isinstance(obj, pa.RecordBatch):
        table = pa.Table.from_batches([obj])
    elif isinstance(obj, pa.Table):
        table = obj
    elif hasattr(obj, "__arrow_c_stream__"):
        table = pa.table(obj)          # the stream's batches, zero-copy (a stream is read once)
    elif hasattr(obj, "__arrow_c_array__"):
        table = pa.Table.from_batches([pa.record_batch(obj)])
    else:
        raise TypeError(f"cannot serve a {type(obj).__module__}.{type(obj).__name__} as a table: "
                        "register a pyarrow Table or RecordBatch")

    def build():
        cols = _Cols(epoch)
        out = [_arrow_column(table.column(i), cols) for i in range(table.num_columns)]
        return table.num_rows, [str(n) for n in table.column_names], out, cols.keep, cols.decls

    return FramePlan(table, "arrow", build)


def _arrow_column(chunked, cols: _Cols):
    """One column from a pyarrow ChunkedArray (or Array)."""
    import pyarrow as pa

    if isinstance(chunked, pa.Array):
        chunked = pa.chunked_array([chunked], type=chunked.type)
    t = chunked.type
    if isinstance(t, pa.ExtensionType):
        chunked = pa.chunked_array([c.storage for c in chunked.chunks], type=t.storage_type)
        t = t.storage_type
    if pa.types.is_dictionary(t):
        chunks = [c for c in chunked.chunks if len(c)]
        if len(chunks) > 1 and any(not c.dictionary.equals(chunks[0].dictionary) for c in chunks[1:]):
            chunked = chunked.unify_dictionaries()    # one dictionary: the indices are remapped (a copy)
            chunks = [c for c in chunked.chunks if len(c)]
        cols.keep.append(chunked)
        sub = _Cols(cols.epoch)
        values = _arrow_column(chunks[0].dictionary if chunks else pa.array([], t.value_type), sub)
        cols.keep.append(sub.keep)
        cols.decls.append(sub.decls[0])
        idx = _arrow_chunks([c.indices for c in chunks], cols)
        return (DICT, t.index_type.bit_width // 8, 0, 0, idx, values)
    kind, width, unit, flags, decl = _arrow_kind(t, cols.epoch)
    if kind is None:       # no layout the core reads (decimal, time, list, struct, ...): as text (a copy)
        chunked = _as_text(chunked)
        t = chunked.type
        kind, width, unit, flags, decl = STR, 8, 0, 0, "TEXT"
    cols.keep.append(chunked)
    cols.decls.append(decl)
    return (kind, width, unit, flags, _arrow_chunks(chunked.chunks, cols, kind=kind, width=width), None)


def _arrow_kind(t, epoch: bool):
    import pyarrow as pa

    T = pa.types
    if T.is_null(t):
        return NULL, 0, 0, 0, ""
    if T.is_boolean(t):
        return BITBOOL, 0, 0, 0, "BOOLEAN"
    if T.is_signed_integer(t):
        return INT, t.bit_width // 8, 0, 0, "INTEGER"
    if T.is_unsigned_integer(t):
        return UINT, t.bit_width // 8, 0, 0, "INTEGER"
    if T.is_floating(t) and t.bit_width in (32, 64):
        return FLOAT, t.bit_width // 8, 0, 0, "REAL"
    if T.is_timestamp(t):
        return TIME, 8, _TICKS[t.unit], (UTC if t.tz else 0) | (EPOCH if epoch else 0), "TIMESTAMP"
    if T.is_date32(t):
        return TIME, 4, 1, DATE | (EPOCH if epoch else 0), "DATE"
    if T.is_date64(t):
        return TIME, 8, 86_400_000, DATE | (EPOCH if epoch else 0), "DATE"
    if T.is_duration(t):
        return TIME, 8, _TICKS[t.unit], TIMEDELTA, "INTEGER"
    if T.is_string(t) or T.is_large_string(t):
        return STR, 4 if T.is_string(t) else 8, 0, 0, "TEXT"
    if T.is_binary(t) or T.is_large_binary(t):
        return BIN, 4 if T.is_binary(t) else 8, 0, 0, "BLOB"
    if getattr(T, "is_string_view", None) and T.is_string_view(t):
        return STRVIEW, 16, 0, 0, "TEXT"
    if getattr(T, "is_binary_view", None) and T.is_binary_view(t):
        return BINVIEW, 16, 0, 0, "BLOB"
    return None, 0, 0, 0, ""


def _as_text(chunked):
    import pyarrow as pa

    try:
        return chunked.cast(pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.chunked_array([pa.array([None if v is None else str(v) for v in chunked.to_pylist()],
                                          pa.large_string())])


def _arrow_chunks(arrays, cols: _Cols, *, kind=None, width=None) -> list:
    """Chunk tuples of a column's arrays, at their frame rows (empty arrays skipped)."""
    out = []
    start = 0
    for arr in arrays:
        n = len(arr)
        if not n:
            continue
        cols.keep.append(arr)
        t = arr.type
        k, w = (kind, width) if kind is not None else _arrow_kind(t, False)[:2]
        bufs = arr.buffers()
        off = arr.offset
        valid = bufs[0].address if bufs and bufs[0] is not None else 0
        data = offsets = chars = bit0 = 0
        vbufs = ()
        stride = 0
        if k == NULL:
            valid = 0
        elif k == BITBOOL:
            data, bit0 = bufs[1].address, off
        elif k in (STR, BIN):
            offsets = bufs[1].address + off * w
            chars = bufs[2].address if len(bufs) > 2 and bufs[2] is not None else 0
        elif k in (STRVIEW, BINVIEW):
            data, stride = bufs[1].address + off * 16, 16
            vbufs = tuple(b.address if b is not None else 0 for b in bufs[2:])
        else:
            data, stride = bufs[1].address + off * w, w
        out.append((start, n, data, stride, bit0, valid, off, 0, offsets, chars, vbufs))
        start += n
    return out
