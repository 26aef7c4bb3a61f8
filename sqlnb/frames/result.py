"""A fetched result, and the type rules that turn its columns into pandas and Arrow.

:class:`Result` holds the last statement's column buffers (``RawColumn`` from the
compiled fetcher, or :class:`~sqlnb.frames.pycolumns.PyColumn` from the Python path);
``to_pandas()`` and ``to_arrow()`` build the frame or table over those buffers without
copying numbers or text. The type of each column is decided from the values actually
seen (SQLite columns have no fixed type): :func:`column_kind`, described in docs/types.md.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from sqlnb._consts import BLOB, INTEGER, REAL, TEXT
from sqlnb.dbapi import affinity  # SQLite's column affinity rules: one copy
from sqlnb.frames.pycolumns import BIT, NULL_BIT, PyColumn

DTYPE_BACKENDS = (None, "numpy_nullable", "pyarrow")


class TruncatedWarning(UserWarning):
    """A result had more rows than ``max_rows``; only the first ``max_rows`` were fetched."""


# ---------------------------------------------------------------------------
# the type rules (one place, used for every engine)
# ---------------------------------------------------------------------------
def column_kind(col) -> str:
    """What a fetched column becomes: "int", "float", "text", "blob", "object" or "null".

    * only INTEGER (and NULL) -> "int" (``int64``, or ``Int64`` with NULLs)
    * only REAL -> "float"; INTEGER with REAL -> "float" only when every integer
      converts to a double exactly, else "object"
    * only TEXT -> "text" (Arrow-backed strings), unless some value is not valid
      UTF-8: then "object" (``str`` decoded with ``surrogateescape``)
    * only BLOB -> "blob" (``bytes``)
    * anything mixed -> "object" (exactly the stdlib's values); all NULL -> "null"
    """
    seen = col.seen & ~NULL_BIT
    if seen == 0:
        return "null"
    if seen == BIT[INTEGER]:
        return "int"
    if seen == BIT[REAL]:
        return "float"
    if seen == BIT[INTEGER] | BIT[REAL]:
        return "float" if col.ints_exact() else "object"
    if seen == BIT[TEXT]:
        return "object" if col.bad_utf8 else "text"
    if seen == BIT[BLOB]:
        return "blob"
    return "object"


def _have_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _string_dtype(backend):
    """pandas' string dtype: the default ``str`` (NaN for missing) or, for numpy_nullable, NA semantics."""
    import pandas as pd

    storage = "pyarrow" if _have_pyarrow() else "python"
    if backend == "numpy_nullable":
        return pd.StringDtype(storage)
    try:
        return pd.StringDtype(storage, na_value=np.nan)
    except TypeError:  # pandas < 2.3: no NaN-semantics string dtype
        return pd.StringDtype(storage)


# ---------------------------------------------------------------------------
# a fetched result
# ---------------------------------------------------------------------------
_LABEL_DTYPE = None


def _label_dtype():
    """The dtype pandas infers for a list of str labels (its ``str`` dtype, or object before pandas 3).

    Computed once: giving it spares pandas the inference on every frame built.
    """
    global _LABEL_DTYPE
    if _LABEL_DTYPE is None:
        import pandas as pd

        _LABEL_DTYPE = pd.Index(["a"]).dtype
    return _LABEL_DTYPE


@dataclass
class Result:
    """The last statement's result: column buffers plus what the magics want to show.

    ``to_pandas()`` / ``to_arrow()`` build the frame or table from the buffers
    (without copying numbers or text); ``columns`` may repeat names.
    """

    columns: list
    decltypes: list
    raw_columns: list = field(repr=False)
    nrows: int = 0
    truncated: bool = False
    rowcount: int = -1
    statement: str = ""
    elapsed: float = 0.0
    engine: str = ""

    @property
    def kinds(self) -> list:
        """:func:`column_kind` of every column ("empty" when there are no rows)."""
        return [column_kind(c) if self.nrows else "empty" for c in self.raw_columns]

    # --- pandas ------------------------------------------------------------------
    def to_pandas(self, *, parse_dates=None, dtype=None, dtype_backend=None, frame_class=None):
        """The result as a DataFrame (see :func:`query_df` for the options).

        ``frame_class``: a ``DataFrame`` subclass to build instead (the magic's result class).
        """
        import pandas as pd

        if dtype_backend not in DTYPE_BACKENDS:
            raise ValueError(f"dtype_backend must be one of {DTYPE_BACKENDS}, not {dtype_backend!r}")
        arrays = [self._pandas_column(c, k, d, dtype_backend)
                  for c, k, d in zip(self.raw_columns, self.kinds, self.decltypes)]
        if arrays:
            df = (frame_class or pd.DataFrame)(dict(enumerate(arrays)), copy=False)
            df.columns = pd.Index(self.columns, dtype=_label_dtype())
        else:
            df = (frame_class or pd.DataFrame)()
        df.attrs["sqlnb_decltypes"] = list(self.decltypes)
        df.attrs["sqlnb_truncated"] = self.truncated
        if parse_dates is not None and parse_dates is not False:
            df = _parse_dates(df, parse_dates, self.decltypes)
        if dtype is not None:
            df = _apply_dtype(df, dtype)
        return df

    def _pandas_column(self, col, kind, decltype, backend):
        import pandas as pd

        n = self.nrows
        if kind == "empty":
            aff = affinity(decltype)
            if backend == "pyarrow" and _have_pyarrow():
                return pd.arrays.ArrowExtensionArray(_empty_arrow(aff))
            if aff == "INTEGER":
                return pd.array(np.empty(0, np.int64), dtype="Int64") if backend else np.empty(0, np.int64)
            if aff == "REAL":
                return pd.array(np.empty(0), dtype="Float64") if backend else np.empty(0)
            if aff == "TEXT":
                return pd.array(np.empty(0, dtype=object), dtype=_string_dtype(backend))
            return pd.Series(np.empty(0, dtype=object), dtype=object)
        if backend == "pyarrow" and kind != "object" and _have_pyarrow():
            return pd.arrays.ArrowExtensionArray(_arrow_column(col, kind, n))
        if kind == "int":
            values = col.int64()
            if col.null_count or backend == "numpy_nullable":
                return pd.arrays.IntegerArray(values, col.null_mask())
            return values
        if kind == "float":
            values = col.float64()
            if backend == "numpy_nullable":
                return pd.arrays.FloatingArray(values, col.null_mask())
            return values
        if kind == "text":
            if _have_pyarrow():
                return pd.array(_arrow_column(col, kind, n), dtype=_string_dtype(backend))
            return pd.array(col.objects(), dtype=_string_dtype(backend))
        # blob, object, null: a Series keeps pandas from re-inferring (e.g. str) on construction
        return pd.Series(col.objects(), dtype=object, copy=False)

    # --- Arrow -------------------------------------------------------------------
    def to_arrow(self):
        """The result as a ``pyarrow.Table``.

        int64 / float64 / large_string / large_binary columns with Arrow nulls;
        an all-NULL column is of type ``null``; a column mixing storage classes
        is a dense union of the classes present (nothing is converted or lost);
        TEXT that is not valid UTF-8 becomes ``large_binary`` (the stored bytes).
        Declared types are in the schema metadata (``sqlnb.decltypes``, JSON).
        """
        import pyarrow as pa

        arrays = []
        for col, kind, decl in zip(self.raw_columns, self.kinds, self.decltypes):
            if kind == "empty":
                arrays.append(_empty_arrow(affinity(decl)))
            elif kind == "object":
                arrays.append(_arrow_object_column(col))
            else:
                arrays.append(_arrow_column(col, kind, self.nrows))
        meta = {b"sqlnb.decltypes": json.dumps(list(self.decltypes)).encode()}
        fields = [pa.field(name, arr.type) for name, arr in zip(self.columns, arrays)]
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))

    def __arrow_c_stream__(self, requested_schema=None):
        """The Arrow PyCapsule stream interface: ``pyarrow.table(res)``, ``polars.DataFrame(res)``,
        DuckDB and others read the result's buffers (:meth:`to_arrow`, no copy of numbers or text)."""
        return self.to_arrow().__arrow_c_stream__(requested_schema)


def _empty_arrow(aff):
    import pyarrow as pa

    t = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.large_string()}.get(aff, pa.null())
    return pa.array([], type=t)


def _arrow_column(col, kind, n):
    """A pyarrow Array over the fetch buffers (no copy) for a column of a single kind."""
    import pyarrow as pa

    if isinstance(col, PyColumn):
        return col.arrow(kind)
    if kind == "null":
        return pa.nulls(n)
    if kind in ("text", "blob") and col.text_chunks() is not None:
        # a parallel fetch's regions: one Arrow chunk each, nothing copied
        typ = pa.large_string() if kind == "text" and not col.bad_utf8 else pa.large_binary()
        return pa.chunked_array([_arrow_text_chunk(col, typ, *chunk) for chunk in col.text_chunks()], type=typ)
    validity = col.validity()
    vbuf = pa.py_buffer(validity) if validity is not None else None
    if kind == "int":
        return pa.Array.from_buffers(pa.int64(), n, [vbuf, pa.py_buffer(col.int64())], col.null_count)
    if kind == "float":
        return pa.Array.from_buffers(pa.float64(), n, [vbuf, pa.py_buffer(col.float64())], col.null_count)
    typ = pa.large_string() if kind == "text" and not col.bad_utf8 else pa.large_binary()
    return pa.Array.from_buffers(typ, n, [vbuf, pa.py_buffer(col.offsets()), pa.py_buffer(col.data())],
                                 col.null_count)


def _arrow_text_chunk(col, typ, row0, nrows, offsets, data):
    import pyarrow as pa

    validity = col.validity(row0, nrows)
    offs = pa.py_buffer(offsets) if offsets is not None else pa.py_buffer(np.zeros(nrows + 1, np.int64))
    return pa.Array.from_buffers(typ, nrows, [pa.py_buffer(validity) if validity is not None else None,
                                              offs, pa.py_buffer(data) if data is not None else pa.py_buffer(b"")])


def _arrow_object_column(col, classes=None, null_child=None):
    """A column of several storage classes, or TEXT that is not UTF-8, as Arrow without loss.

    ``classes`` / ``null_child`` (a stream's batch, sqlnb.frames.batches): build the dense union
    of exactly these members (the stream's schema), whichever of them this batch holds.
    """
    import pyarrow as pa

    values = col.objects()
    seen = col.seen & ~NULL_BIT
    if seen == BIT[TEXT] and classes is None:  # text with invalid UTF-8: the stored bytes
        return pa.array([None if v is None else v.encode("utf-8", "surrogateescape") for v in values],
                        type=pa.large_binary())
    if classes is None:
        classes = [c for c in (INTEGER, REAL, TEXT, BLOB) if seen & BIT[c]]
    types = {INTEGER: pa.int64(), REAL: pa.float64(), TEXT: pa.large_string(), BLOB: pa.large_binary()}
    names = {INTEGER: "integer", REAL: "real", TEXT: "text", BLOB: "blob"}
    code_of = {int: INTEGER, float: REAL, str: TEXT, bytes: BLOB}
    buckets = {c: [] for c in classes}
    type_ids = np.empty(len(values), dtype=np.int8)
    offsets = np.empty(len(values), dtype=np.int32)
    child_index = {c: i for i, c in enumerate(classes)}
    has_null = col.null_count > 0 if null_child is None else null_child
    null_child = len(classes)
    nulls = 0
    for i, v in enumerate(values):
        if v is None:
            type_ids[i] = null_child
            offsets[i] = nulls
            nulls += 1
            continue
        c = code_of[type(v)]
        if c == TEXT and col.bad_utf8:
            v = v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        type_ids[i] = child_index[c]
        offsets[i] = len(buckets[c])
        buckets[c].append(v)
    children = [pa.array(buckets[c], type=types[c]) for c in classes]
    field_names = [names[c] for c in classes]
    if has_null:
        children.append(pa.nulls(nulls))
        field_names.append("null")
    return pa.UnionArray.from_dense(pa.array(type_ids, pa.int8()), pa.array(offsets, pa.int32()),
                                    children, field_names)


def _is_date_type(decltype: str) -> bool:
    """A declared type that names a date: it contains DATE or TIMESTAMP (DATE, DATETIME, TIMESTAMP, ...)."""
    up = decltype.upper()
    return "DATE" in up or "TIMESTAMP" in up


def _parse_dates(df, parse_dates, decltypes):
    import pandas as pd

    names = list(df.columns)
    if parse_dates is True:
        wanted = {n: None for n, d in zip(names, decltypes)
                  if d and _is_date_type(d)}
    elif isinstance(parse_dates, str):
        wanted = {parse_dates: None}
    elif isinstance(parse_dates, dict):
        wanted = dict(parse_dates)
    else:
        wanted = {n: None for n in parse_dates}
    for name, fmt in wanted.items():
        if name not in names:
            raise ValueError(f"parse_dates names column {name!r}, which is not in the result "
                             f"(columns: {', '.join(map(str, names))})")
        idx = [i for i, n in enumerate(names) if n == name]
        for i in idx:
            s = df.iloc[:, i]
            try:
                if isinstance(fmt, dict):
                    out = pd.to_datetime(s, **fmt)
                elif s.dtype.kind in "iuf" or str(s.dtype) in ("Int64", "Float64"):
                    out = pd.to_datetime(s, unit="s")
                else:
                    out = pd.to_datetime(s, format=fmt or "ISO8601")
            except (ValueError, TypeError, OverflowError) as exc:
                raise ValueError(f"parse_dates: column {name!r} could not be parsed as dates: {exc}") from exc
            df.isetitem(i, out)
    return df


def _apply_dtype(df, dtype):
    if isinstance(dtype, dict):
        missing = [k for k in dtype if k not in df.columns]
        if missing:
            raise ValueError(f"dtype names column(s) {', '.join(map(repr, missing))} not in the result "
                             f"(columns: {', '.join(map(str, df.columns))})")
        for name, dt in dtype.items():
            for i in [i for i, n in enumerate(df.columns) if n == name]:
                df.isetitem(i, df.iloc[:, i].astype(dt))
        return df
    return df.astype(dtype)

