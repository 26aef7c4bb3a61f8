"""Results as pandas DataFrames and Arrow tables, straight from SQLite's column buffers.

``query_df(con, sql)`` runs every statement of ``sql`` in order and returns the
last one's rows. On the compiled engines the rows never become Python tuples:
the Cython fetcher (``sqlnb/_fetch.pxi``) steps with the GIL released and fills
one buffer per column, and the DataFrame's arrays *are* those buffers. TEXT
columns become pandas' Arrow-backed string dtype with no per-row ``str``.

The type of each column is decided from the values actually seen (SQLite
columns have no fixed type); the rules are in docs/types.md and in
:func:`column_kind`. The ``system`` engine (stdlib) fetches through the stdlib
cursor and applies the very same rules, so every engine returns equal frames.
"""
from __future__ import annotations

from sqlnb.dbapi import affinity  # SQLite's column affinity rules: one copy

import re
import threading
import time
import warnings
from dataclasses import dataclass, field

from sqlnb import _modes
from sqlnb import errors as _errors

# SQLite's storage classes (sqlite3.h codes)
INTEGER, REAL, TEXT, BLOB, NULL = 1, 2, 3, 4, 5
_BIT = {c: 1 << c for c in (INTEGER, REAL, TEXT, BLOB, NULL)}
_NULL_BIT = _BIT[NULL]

DTYPE_BACKENDS = (None, "numpy_nullable", "pyarrow")

_EMPTY = re.compile(r"(?:\s+|;|--[^\n]*(?:\n|\Z)|/\*(?:[^*]|\*(?!/))*(?:\*/|\Z))*", re.S)


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
    seen = col.seen & ~_NULL_BIT
    if seen == 0:
        return "null"
    if seen == _BIT[INTEGER]:
        return "int"
    if seen == _BIT[REAL]:
        return "float"
    if seen == _BIT[INTEGER] | _BIT[REAL]:
        return "float" if col.ints_exact() else "object"
    if seen == _BIT[TEXT]:
        return "object" if col.bad_utf8 else "text"
    if seen == _BIT[BLOB]:
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
    import numpy as np
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
        import numpy as np
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
        import json

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


def _empty_arrow(aff):
    import pyarrow as pa

    t = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.large_string()}.get(aff, pa.null())
    return pa.array([], type=t)


def _arrow_column(col, kind, n):
    """A pyarrow Array over the fetch buffers (no copy) for a column of a single kind."""
    import pyarrow as pa

    if isinstance(col, _PyColumn):
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
    import numpy as np
    import pyarrow as pa

    validity = col.validity(row0, nrows)
    offs = pa.py_buffer(offsets) if offsets is not None else pa.py_buffer(np.zeros(nrows + 1, np.int64))
    return pa.Array.from_buffers(typ, nrows, [pa.py_buffer(validity) if validity is not None else None,
                                              offs, pa.py_buffer(data) if data is not None else pa.py_buffer(b"")])


def _arrow_object_column(col):
    """A column of several storage classes, or TEXT that is not UTF-8, as Arrow without loss."""
    import numpy as np
    import pyarrow as pa

    values = col.objects()
    seen = col.seen & ~_NULL_BIT
    if seen == _BIT[TEXT]:  # text with invalid UTF-8: the stored bytes
        return pa.array([None if v is None else v.encode("utf-8", "surrogateescape") for v in values],
                        type=pa.large_binary())
    classes = [c for c in (INTEGER, REAL, TEXT, BLOB) if seen & _BIT[c]]
    types = {INTEGER: pa.int64(), REAL: pa.float64(), TEXT: pa.large_string(), BLOB: pa.large_binary()}
    names = {INTEGER: "integer", REAL: "real", TEXT: "text", BLOB: "blob"}
    code_of = {int: INTEGER, float: REAL, str: TEXT, bytes: BLOB}
    buckets = {c: [] for c in classes}
    type_ids = np.empty(len(values), dtype=np.int8)
    offsets = np.empty(len(values), dtype=np.int32)
    child_index = {c: i for i, c in enumerate(classes)}
    has_null = col.null_count > 0
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


def _parse_dates(df, parse_dates, decltypes):
    import pandas as pd

    names = list(df.columns)
    if parse_dates is True:
        wanted = {n: None for n, d in zip(names, decltypes)
                  if d and re.search(r"DATE|TIMESTAMP", d, re.I)}
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


# ---------------------------------------------------------------------------
# the stdlib (system engine) path: the same rules over Python values
# ---------------------------------------------------------------------------
class _PyColumn:
    """One column of Python values with RawColumn's interface (system engine)."""

    _CODE = {int: INTEGER, float: REAL, str: TEXT, bytes: BLOB, type(None): NULL}

    def __init__(self, values: list, check_utf8: bool):
        self.values = values
        self.nrows = len(values)
        counts = dict.fromkeys((INTEGER, REAL, TEXT, BLOB, NULL), 0)
        for v in values:
            counts[self._CODE[type(v)]] += 1
        self.counts = counts
        self.seen = sum(_BIT[c] for c, k in counts.items() if k)
        self.null_count = counts[NULL]
        self.bad_utf8 = bool(check_utf8 and counts[TEXT] and any(
            type(v) is str and not _encodable(v) for v in values))

    def ints_exact(self):
        return all(float(v) == v for v in self.values if type(v) is int)

    def int64(self):
        import numpy as np

        return np.array([0 if v is None else v for v in self.values], dtype=np.int64)

    def float64(self):
        import numpy as np

        return np.array([np.nan if v is None else float(v) for v in self.values], dtype=np.float64)

    def null_mask(self):
        import numpy as np

        return np.array([v is None for v in self.values], dtype=bool)

    def objects(self):
        import numpy as np

        out = np.empty(self.nrows, dtype=object)
        out[:] = self.values
        return out

    def arrow(self, kind):
        import pyarrow as pa

        if kind == "null":
            return pa.nulls(self.nrows)
        if kind == "float":
            return pa.array([None if v is None else float(v) for v in self.values], type=pa.float64())
        typ = {"int": pa.int64(), "text": pa.large_string(), "blob": pa.large_binary()}[kind]
        return pa.array(self.values, type=typ)


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _TextFactory:
    """The system engine's text_factory while fetching: strict UTF-8, else surrogateescape (and note it)."""

    def __init__(self):
        self.bad = False

    def __call__(self, b: bytes) -> str:
        try:
            return str(b, "utf-8")
        except UnicodeDecodeError:
            self.bad = True
            return b.decode("utf-8", "surrogateescape")


def _system_columns(st, first_rows, limit, raw, factory):
    """Rows of a system-engine statement -> (columns, more?) with at most ``limit`` rows."""
    rows = list(first_rows)
    chunk = 8192
    more = False
    limit_s = getattr(raw, "timeout", 0) or 0
    deadline = time.monotonic() + limit_s if limit_s else None
    while True:
        if deadline is not None and time.monotonic() > deadline:
            exc = _errors.make_error(9, f"statement exceeded its time limit of {limit_s:g} s (timeout)",
                                     cls=_errors.QueryTimeoutError, sql=getattr(st, "sql", None))
            exc.timeout = limit_s
            raise exc
        if limit is not None and len(rows) >= limit:
            extra = st.fetchmany(1)
            more = bool(extra)
            if more:
                rows.extend(extra)  # kept for the caller (cursor) as the next unread row
            break
        want = chunk if limit is None else min(chunk, limit - len(rows))
        got = st.fetchmany(want)
        rows.extend(got)
        raw.rows_seen = len(rows)
        if len(got) < want:
            break
    unread = rows.pop() if more else None
    ncol = st.column_count
    cols = [_PyColumn([r[i] for r in rows], factory.bad) for i in range(ncol)]
    return cols, len(rows), unread


# ---------------------------------------------------------------------------
# running statements
# ---------------------------------------------------------------------------
def _native_fetcher(st):
    """The compiled module's fetch_columns for a statement, or None (system engine)."""
    import sys

    mod = sys.modules.get(type(st).__module__)
    return getattr(mod, "fetch_columns", None)


def _cap(limit, max_rows):
    for name, v in (("limit", limit), ("max_rows", max_rows)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise ValueError(f"{name} must be a non-negative int or None, not {v!r}")
    caps = [v for v in (limit, max_rows) if v is not None]
    return min(caps) if caps else None


def _warn_truncated(res, limit, max_rows):
    if res.truncated and max_rows is not None and (limit is None or max_rows < limit):
        warnings.warn(f"the result has more than max_rows={max_rows} rows; only the first "
                      f"{max_rows} were fetched (pass limit= to cap silently)", TruncatedWarning, stacklevel=3)


def _fetch_statement(con, st, cap, *, include_current=False, first_rows=()):
    """Fetch a bound statement's rows: (names, decltypes, columns, nrows, truncated, unread_row)."""
    fetch = _native_fetcher(st)
    raw = con._raw
    if fetch is not None:
        limit = -1 if cap is None else cap
        try:
            if include_current:  # a row was already read: not a first step, nothing to try again
                names, cols, status = fetch(st, limit, True)
            else:
                names, cols, status = con._waiting(fetch, st, limit, False, statement=st)
        except _errors.Error as exc:
            better = con._explain(exc, st.sql)  # e.g. the bdb engine names a lock wait that timed out
            if better is not None:
                raise better from exc
            raise
        n = cols[0].nrows if cols else 0
        unread = st.row() if status == "more" else None
        return names, st.decltypes(), cols, n, status == "more", unread
    # the stdlib engine's statements, or rows a bdb cursor already buffered (sqlnb._bdb.BufferedRows)
    factory = _TextFactory()
    stdlib = getattr(raw, "_con", None)
    if stdlib is not None:
        old = stdlib.text_factory
        stdlib.text_factory = factory
    try:
        names = st.column_names()
        cols, n, unread = _system_columns(st, first_rows, cap, raw, factory)
    finally:
        if stdlib is not None:
            stdlib.text_factory = old
    return names, st.decltypes(), cols, n, unread is not None, unread


def statement_result(con, st, cap=None) -> Result:
    """The rows of a prepared, bound statement (at most ``cap``) as a :class:`Result`.

    The one step from a statement to a result, shared by :func:`run` and the
    magic's cells; the caller finalizes ``st``.
    """
    names, decl, cols, n, truncated, _ = _fetch_statement(con, st, cap)
    return Result(columns=names, decltypes=list(decl) if names else [], raw_columns=cols, nrows=n,
                  truncated=truncated, rowcount=-1 if names else con._raw.changes(), statement=st.sql,
                  engine=con.engine)


def _is_mapping(params) -> bool:
    return params is not None and hasattr(params, "keys") and not isinstance(params, (list, tuple))


def run(con, sql, params=None, *, limit=None, max_rows=None, parallel=None) -> Result:
    """Run every statement of ``sql`` in order and fetch the last one's rows into a :class:`Result`.

    Parameters: a mapping is offered to every statement (each takes the names it
    uses); a sequence belongs to the last statement.
    """
    if not isinstance(sql, str):
        raise TypeError(f"SQL must be str, not {type(sql).__name__}")
    cap = _cap(limit, max_rows)
    con._check()
    t0 = time.perf_counter()
    if parallel not in (None, 0, 1, False):
        res = _parallel_run(con, sql, params, cap, parallel)
        res.elapsed = time.perf_counter() - t0
        _warn_truncated(res, limit, max_rows)
        return res
    res = None
    index = 0
    for st, _start, end in con.statements(sql):
        index += 1
        try:
            con._maybe_begin(st)
            if _EMPTY.fullmatch(sql, end) is None:  # not the last statement: run it for effect
                positional = params is not None and not _is_mapping(params) and len(params) > 0
                try:
                    st.bind(params if _is_mapping(params) else None)
                    con._run_statement(st)
                except _errors.ProgrammingError as exc:
                    if not positional and not isinstance(exc, _errors.ParameterError):
                        raise
                    raise _errors.ParameterError(
                        f"statement {index} ({st.sql.strip()[:60]!r}): {exc} Positional parameters are "
                        f"bound to the last statement only; pass a mapping (:name) to give values to "
                        f"earlier statements.") from exc
                continue
            st.bind(params)
            res = statement_result(con, st, cap)
        finally:
            st.finalize()
    if res is None:
        res = Result(columns=[], decltypes=[], raw_columns=[], engine=con.engine)
    res.elapsed = time.perf_counter() - t0
    _warn_truncated(res, limit, max_rows)
    return res


def query_df(con, sql, params=None, *, limit=None, max_rows=None, parse_dates=None, dtype=None,
             dtype_backend=None, parallel=None):
    """Run ``sql`` (one or more statements) and return the last statement's rows as a DataFrame.

    :param params: bound by SQLite (``?``, ``:name``); a mapping reaches every
        statement, a sequence the last one.
    :param limit: fetch at most this many rows (like appending ``LIMIT``).
    :param max_rows: a safety cap: at most this many rows, with a
        :class:`TruncatedWarning` when the result had more.
    :param parse_dates: column name(s) to convert with ``pandas.to_datetime``
        (ISO-8601 text, or unix seconds for numbers); a dict maps names to a
        format (or to ``to_datetime`` keyword arguments); ``True`` converts the
        columns declared DATE/DATETIME/TIMESTAMP.
    :param dtype: a dtype, or a mapping of column name to dtype, applied last.
    :param dtype_backend: None (sqlnb's rules: numpy int64/float64, ``Int64``
        with NULLs, pandas' Arrow-backed ``str``), ``"numpy_nullable"`` (every
        number column nullable) or ``"pyarrow"`` (``ArrowDtype`` columns).
    :param parallel: N > 1 fetches a plain table scan over N read connections
        (see docs/types.md, "Parallel fetch"); anything else is refused clearly.

    ``df.attrs["sqlnb_decltypes"]`` lists the declared types (None for
    expressions); ``df.attrs["sqlnb_truncated"]`` tells whether rows were left.
    """
    res = run(con, sql, params, limit=limit, max_rows=max_rows, parallel=parallel)
    return res.to_pandas(parse_dates=parse_dates, dtype=dtype, dtype_backend=dtype_backend)


def query_arrow(con, sql, params=None, *, limit=None, max_rows=None, parallel=None):
    """Run ``sql`` and return the last statement's rows as a ``pyarrow.Table`` (see Result.to_arrow)."""
    return run(con, sql, params, limit=limit, max_rows=max_rows, parallel=parallel).to_arrow()


def cursor_result(cur, *, limit=None, max_rows=None) -> Result:
    """The remaining rows of a cursor's current result as a :class:`Result`.

    With ``limit``, the rows after the first ``limit`` stay in the cursor.
    """
    cap = _cap(limit, max_rows)
    cur._check()
    t0 = time.perf_counter()
    con = cur.connection
    names = [d[0] for d in cur.description] if cur.description else []
    decl = [d[1] for d in cur.description] if cur.description else []
    st, pending = cur._st, cur._pending_row
    if st is None:
        cols = [_PyColumn([pending[i]] if pending is not None else [], False) for i in range(len(names))]
        cur._pending_row = None
        res = Result(columns=names, decltypes=decl, raw_columns=cols, nrows=1 if pending is not None else 0,
                     engine=con.engine)
    else:
        cur._pending_row = None
        if _native_fetcher(st) is not None:
            _names, _decl, cols, n, truncated, unread = _fetch_statement(
                con, st, cap, include_current=pending is not None)
        else:
            first = [pending] if pending is not None else []
            _names, _decl, cols, n, truncated, unread = _fetch_statement(con, st, cap, first_rows=first)
        if truncated:
            cur._pending_row = unread
        else:
            cur._finish()
        res = Result(columns=names, decltypes=decl, raw_columns=cols, nrows=n, truncated=truncated,
                     statement=getattr(st, "sql", ""), engine=con.engine)
    res.elapsed = time.perf_counter() - t0
    _warn_truncated(res, limit, max_rows)
    return res


def cursor_df(cur, *, limit=None, max_rows=None, parse_dates=None, dtype=None, dtype_backend=None):
    """The remaining rows of the cursor's current result as a DataFrame (options as in :func:`query_df`)."""
    import pandas as pd

    if cur.description is None:
        cur._check()
        return pd.DataFrame()
    res = cursor_result(cur, limit=limit, max_rows=max_rows)
    return res.to_pandas(parse_dates=parse_dates, dtype=dtype, dtype_backend=dtype_backend)


# ---------------------------------------------------------------------------
# parallel fetch of a plain table scan
# ---------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+|--[^\n]*(?:\n|\Z)|/\*(?:[^*]|\*(?!/))*(?:\*/|\Z))
  | (?P<str>'(?:[^']|'')*'|[xX]'[^']*')
  | (?P<qid>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<num>[0-9][A-Za-z0-9_.]*)
  | (?P<op>.)""", re.S | re.X)

# words that make a query more than "SELECT cols FROM table [WHERE ...]"
_NOT_PLAIN = frozenset("""DISTINCT GROUP ORDER LIMIT OFFSET HAVING WINDOW UNION INTERSECT EXCEPT JOIN NATURAL
    CROSS LEFT RIGHT FULL INNER OUTER USING INDEXED VALUES WITH RETURNING""".split())
# bytecode that works across rows (aggregates, sorting, DISTINCT, windows, LIMIT)
_CROSS_ROW_OPS = frozenset("""AggStep AggStep1 AggFinal AggValue AggInverse Count SorterOpen OpenEphemeral
    OpenAutoindex OpenDup DecrJumpZero IfPos""".split())


class ParallelRefused(_errors.ProgrammingError):
    """``parallel=`` was asked for a query or connection it cannot split safely (the message says why)."""


def _refuse(why):
    raise ParallelRefused(f"parallel fetch refused: {why}. Run it without parallel=.")


def _plain_scan_parts(sql):
    """Split ``SELECT cols FROM table [[AS] alias] [WHERE expr]`` -> (head, ref, where) or refuse."""
    toks = [(m.lastgroup, m.group(), m.start()) for m in _TOKEN.finditer(sql)]
    toks = [t for t in toks if t[0] != "ws"]
    while toks and toks[-1][1] == ";":
        toks.pop()
    if not toks or toks[0][0] != "word" or toks[0][1].upper() != "SELECT":
        _refuse("only a single plain 'SELECT columns FROM table [WHERE ...]' can be split")
    depth, i_from, i_where = 0, None, None
    for i, (kind, text, _pos) in enumerate(toks):
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        elif depth == 0 and kind == "word":
            up = text.upper()
            if up in _NOT_PLAIN:
                _refuse(f"the query uses {up} (only plain table scans can be split by rowid)")
            if up == "FROM" and i_from is None:
                i_from = i
            elif up == "WHERE" and i_from is not None and i_where is None:
                i_where = i
        elif depth == 0 and text == ";":
            _refuse("only one statement can be fetched in parallel")
        elif depth == 0 and text == "," and i_from is not None and i_where is None:
            _refuse("the query reads more than one table")
    if i_from is None or i_from + 1 >= len(toks):
        _refuse("the query reads no table")
    end_from = i_where if i_where is not None else len(toks)
    src = toks[i_from + 1:end_from]
    if len(src) >= 3 and src[1][1] == ".":  # schema.table
        src = [(src[0][0], src[0][1] + "." + src[2][1], src[0][2])] + src[3:]
    if not src or src[0][0] not in ("word", "qid"):
        _refuse("the FROM clause is not a single table")
    table = src[0][1]
    rest = src[1:]
    if rest and rest[0][1].upper() == "AS":
        rest = rest[1:]
    if len(rest) > 1 or (rest and rest[0][0] not in ("word", "qid")):
        _refuse("the FROM clause is not a single table")
    ref = rest[0][1] if rest else table
    head = sql[:toks[i_where][2]] if i_where is not None else sql[:toks[-1][2] + len(toks[-1][1])]
    where = sql[toks[i_where][2] + 5:toks[-1][2] + len(toks[-1][1])] if i_where is not None else None
    return head, table, ref, where


def _query_rows(raw, sql):
    st, _ = raw.prepare(sql.encode("utf-8", "surrogateescape"), 0)
    try:
        out = []
        while st.step():
            out.append(st.row())
        return out
    finally:
        st.finalize()


def _parallel_run(con, sql, params, cap, parallel):
    import importlib

    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ValueError(f"parallel must be an int >= 1, not {parallel!r}")
    n = parallel
    raw = con._raw
    if con.engine != "sqlite":
        _refuse(f"the {con.engine!r} engine cannot step several connections at once "
                + ("(BerkeleyDB locks the table for a reader)" if con.engine == "bdb" else "(the stdlib holds the GIL)"))
    if cap is not None:
        _refuse("limit/max_rows cannot be combined with parallel")
    fname = str(raw.filename)
    if fname in ("", ":memory:") or "mode=memory" in fname or (fname.startswith("file:") and ":memory:" in fname):
        _refuse("an in-memory database cannot be opened by other connections")
    if not raw.autocommit:
        _refuse("a transaction is open on this connection (other connections would not see its changes)")
    mod = importlib.import_module(type(raw).__module__)
    _refuse_unshared_state(raw, mod)
    head, table, ref, where = _plain_scan_parts(sql)
    plan = _query_rows(raw, "EXPLAIN QUERY PLAN " + sql)
    if len(plan) != 1 or not re.fullmatch(r"SCAN \S+|SEARCH \S+ USING INTEGER PRIMARY KEY \(.*\)",
                                          str(plan[0][-1])):
        _refuse("SQLite's plan for it is not one full scan of a table in rowid order "
                f"(plan: {'; '.join(str(r[-1]) for r in plan)})")
    ops = {r[1] for r in _query_rows(raw, "EXPLAIN " + sql)} & _CROSS_ROW_OPS
    if ops:
        _refuse(f"the query combines rows (aggregate, DISTINCT, ORDER BY, window or LIMIT: {', '.join(sorted(ops))})")
    bounds_sql = _rowid_bounds_sql(table)
    try:
        _query_rows(raw, bounds_sql)
    except _errors.Error as exc:
        _refuse(f"table {table} has no rowid to split by ({exc})")
    st0 = None
    try:
        st0, _ = con._prepare(sql.encode("utf-8", "surrogateescape"), 0)
        names, decl = st0.column_names(), st0.decltypes()
    finally:
        if st0 is not None:
            st0.finalize()
    named = _is_mapping(params)
    cond = (f"{ref}._rowid_ BETWEEN :__sqlnb_lo AND :__sqlnb_hi" if named
            else f"{ref}._rowid_ BETWEEN ? AND ?")
    part_sql = f"{head} WHERE ({where}\n) AND {cond}" if where is not None else f"{head} WHERE {cond}"
    plan = _query_rows(raw, "EXPLAIN QUERY PLAN " + part_sql)
    if len(plan) != 1 or "USING INTEGER PRIMARY KEY" not in str(plan[0][-1]):
        _refuse(f"a rowid range of {table} is not read in rowid order (plan: {plan[0][-1] if plan else '?'})")
    res = _fetch_ranges(con, mod, bounds_sql, part_sql, params, n, names, decl, sql)
    if res is None:  # the table was empty at the moment read
        return run(con, sql, params)
    return res


def _rowid_bounds_sql(table):
    # two subqueries: SQLite answers a lone min() or max() of the rowid from the b-tree's ends,
    # but min() and max() in one SELECT would scan the whole table
    return f"SELECT (SELECT min(_rowid_) FROM {table}), (SELECT max(_rowid_) FROM {table})"


# --- the connection's state: what the workers share, or a refusal ---------------------------
# sqlite3_db_config switches that change what a statement means or returns (copied to every
# worker): TRIGGER, WRITABLE_SCHEMA, LEGACY_ALTER_TABLE, DQS_DML, DQS_DDL, VIEW, TRUSTED_SCHEMA,
# COMMENTS
_COPIED_CONFIG = (1003, 1011, 1012, 1013, 1014, 1015, 1017, 1022)
_REVERSE_SCANORDER = 1019  # PRAGMA reverse_unordered_selects
_LIMITS = range(12)  # SQLITE_LIMIT_LENGTH (0) .. SQLITE_LIMIT_WORKER_THREADS (11)


def _refuse_unshared_state(raw, mod):
    """Refuse what the workers (fresh connections to the same file) could not share.

    Copied instead (``_share_settings``): the sqlite3_db_config switches above, the
    limits and the policy. Refused: attached databases and TEMP objects (the workers
    would not see them, or would read main's table of the same name),
    ``case_sensitive_like`` (it replaces LIKE on this connection only),
    ``reverse_unordered_selects`` (the rows' order) and a connection that may load
    extensions (they can add or replace functions and collations; sqlnb itself adds none).
    """
    attached = mod.database_names(raw)[2:]  # 0 is main, 1 temp
    if attached:
        _refuse(f"this connection has attached databases ({', '.join(attached)}) "
                "that the extra read connections would not have")
    if _query_rows(raw, "SELECT 1 FROM temp.sqlite_master LIMIT 1"):
        _refuse("this connection has TEMP tables, views, indexes or triggers that the extra "
                "read connections would not see")
    if _query_rows(raw, "SELECT 'a' LIKE 'A'")[0][0] != 1:
        _refuse("PRAGMA case_sensitive_like is on for this connection only (the extra read "
                "connections would compare with LIKE differently)")
    if mod.db_config_flag(raw, _REVERSE_SCANORDER):
        _refuse("PRAGMA reverse_unordered_selects is on (the rows would come in another order)")
    policy = getattr(raw, "policy", None)
    if policy is not None and policy.allow_load_extension:
        _refuse("this connection may load extensions (allow_load_extension=True), which can add "
                "or replace functions and collations that the extra read connections would not have")


def _share_settings(raw, mod, w):
    """Give worker ``w`` ``raw``'s result-changing settings (before it prepares anything)."""
    for op in _COPIED_CONFIG:
        v = mod.db_config_flag(raw, op)
        if v is not None:
            mod.db_config_flag(w, op, v)
    for cat in _LIMITS:
        w.limit(cat, raw.limit(cat))


def _install_policy(raw, mod, w):
    """Install ``raw``'s mode and policies on worker ``w``: the same rules, built against the
    worker's view of the schema as at open (masked columns read as NULL there too, denied
    tables stay denied, each statement's program is checked)."""
    policy = getattr(raw, "policy", None)
    if policy is not None:
        _modes.install_like(w, policy)


# --- one moment for every worker -----------------------------------------------------------
class _Moved(Exception):
    """Start again: a commit landed while the workers began to read (only possible in a WAL
    database whose WAL had no frame yet, where no snapshot can be taken), or a worker could
    not take its read lock (``_begin_worker_read``). ``why``: the refusal once no attempt is
    left."""

    why = "the database kept changing while the workers began to read it"


class _NoReadLock(_Moved):
    why = ("a worker connection could not begin reading while this connection held its read "
           "lock (another connection is waiting to commit, or the database's locks exclude "
           "other connections, as the unix-dotfile VFS's do)")


_MOMENT_TRIES = 3


def _snapshot_of(raw, mod):
    """The WAL snapshot ``raw``'s read transaction reads, or None (rollback journal, or a WAL
    with no frame written since it was created)."""
    if not mod.HAVE_SNAPSHOT:
        return None
    try:
        return mod.snapshot_get(raw)
    except _errors.Error:
        return None


def _begin_worker_read(w, mod, snap):
    """Begin worker ``w``'s read transaction at the main connection's moment, while the main
    connection holds its own read transaction: at ``snap`` (WAL), or now (rollback journal:
    the main connection's SHARED lock keeps every commit out until this read has begun).

    Rollback journal and a writer that starts to commit meanwhile: it takes PENDING, which
    refuses every new SHARED lock, and waits for ours. SQLite's unix VFS keeps one POSIX
    lock per file and process, and a connection of a process that already holds SHARED
    shares it without asking the file, so the worker still begins. Where locks are per
    connection (unix-dotfile, other systems' VFSes) it cannot: the caller gives ``w`` no
    busy timeout here, and the BusyError makes the fetch let go and start again."""
    _query_rows(w, "PRAGMA main.schema_version")  # once outside a transaction: the pager learns WAL
    _query_rows(w, "BEGIN")
    if snap is not None:
        mod.snapshot_open(w, snap)
    else:
        _query_rows(w, "PRAGMA main.schema_version")  # the read transaction starts (SHARED lock)
        if _snapshot_of(w, mod) is not None:  # a WAL that had no frame for main has one now
            raise _Moved()


# --- stopping: Ctrl-C, interrupt(), the time limit, a worker's error ------------------------
_clock = time.monotonic


class _Stop:
    """Why a parallel fetch stops early. Set by the main thread (its SIGINT handler, its
    wait loop) and by a failing worker; read by the workers before each range. Plain
    attributes only: the SIGINT handler may run between any two bytecodes of the main
    thread, so nothing here takes a lock."""

    def __init__(self, raw, mod):
        self.raw, self.mod = raw, mod
        self.interrupts0 = mod.interrupt_count(raw)
        self.requested = False
        self.signal = None  # (signum, frame) of a Ctrl-C held back until every worker is joined
        self.timed_out = False
        self.conns = []  # the worker connections, to interrupt

    def interrupted(self):
        """``Connection.interrupt()`` was called since the fetch began."""
        return self.mod.interrupt_count(self.raw) != self.interrupts0

    def request(self):
        self.requested = True
        for w in tuple(self.conns):
            w.interrupt()  # lock-free; does nothing on a closed connection

    def asked(self):
        return self.requested or self.signal is not None or self.interrupted()


class _HoldCtrlC:
    """While the workers exist, Ctrl-C (SIGINT in the main thread) asks them to stop instead
    of raising KeyboardInterrupt at whatever bytecode it lands on (inside Thread.start(), in
    the middle of the cleanup); the KeyboardInterrupt comes when the block ends, after every
    worker was joined and every worker connection closed. Elsewhere than in the main thread
    no signal can land, and nothing is changed."""

    def __init__(self, stop):
        self.stop = stop
        self.old = None

    def __enter__(self):
        import signal

        if threading.current_thread() is threading.main_thread():
            try:
                old = signal.getsignal(signal.SIGINT)
                if callable(old):
                    self.old = old
                    signal.signal(signal.SIGINT, self._held)
            except (ValueError, OSError):  # not the main interpreter, or no signals here
                self.old = None
        return self

    def _held(self, signum, frame):
        if self.stop.signal is None:
            self.stop.signal = (signum, frame)
        self.stop.request()

    def __exit__(self, *exc):
        import signal

        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
            if self.stop.signal is not None:
                self.old(*self.stop.signal)  # the held Ctrl-C: KeyboardInterrupt, now
        return False


class _Workers:
    """The threads of one parallel fetch, started and waited for so that none can still run
    once the fetch has returned or raised, whatever interrupts the starting or the waiting:
    ``close()`` runs in a ``finally`` and waits for every thread that got going; a thread
    that only gets going after it (its start() was interrupted after the OS thread began)
    finds the crew closed and touches nothing."""

    def __init__(self, target, n):
        self._target = target
        self._gate = threading.Lock()
        self._closed = False
        self.threads = [threading.Thread(target=self._run, args=(i,), name=f"sqlnb-parallel-fetch-{i}",
                                         daemon=True) for i in range(n)]

    def _run(self, i):
        with self._gate:
            if self._closed:
                return
        self._target(i)

    def start(self):
        for t in self.threads:
            t.start()

    def wait(self, poll):
        for t in self.threads:
            while t.is_alive():
                t.join(0.05)
                poll()

    def close(self, stop):
        """Stop every worker and wait for those running; an exception meanwhile (a
        KeyboardInterrupt where no handler holds it back) is kept and raised once they are."""
        pending = None
        while True:
            try:
                with self._gate:
                    self._closed = True
                stop.request()
                for t in self.threads:
                    while t.is_alive():
                        t.join(0.05)
                break
            except BaseException as exc:  # noqa: BLE001 - raised below, after the join
                pending = pending or exc
        if pending is not None:
            raise pending


def _timeout_error(raw, sql):
    exc = _errors.make_error(9, f"statement exceeded its time limit of {raw.timeout:g} s (timeout)",
                             cls=_errors.QueryTimeoutError, sql=sql)  # 9: SQLITE_INTERRUPT
    exc.timeout = raw.timeout
    return exc


# rowid ranges per worker: its region, read from the front; a worker done with its own takes
# ranges from the back of another's, so a slower core reads fewer
_RANGES_PER_WORKER = 8
_MIN_RANGE_ROWS = 16384


def _can_reserve(span, ncol):
    """Can the rows of a rowid span be written in place (tags + 8 bytes per value, reserved
    up front, touched only where rows exist)? Only when the address space asked for is at
    most the machine's memory; sparse rowids (a huge span) take the copying join."""
    import os

    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return False
    return ncol > 0 and span * ncol * 9 <= ram


def _fetch_ranges(con, mod, bounds_sql, part_sql, params, n, names, decl, sql):
    """Read the table's rowid span in ranges over ``n`` read-only worker connections that all
    read one moment of the database; None when the table was empty at that moment.

    Ctrl-C is held back while workers exist (``_HoldCtrlC``), ``interrupt()`` and the
    connection's time limit stop every worker, and the workers are always joined before
    their statements are finalized and their connections closed.
    """
    raw = con._raw
    stop = _Stop(raw, mod)
    deadline = _clock() + raw.timeout if raw.timeout > 0 else None
    result = _STOPPED
    with _HoldCtrlC(stop):
        in_place = None
        tries = 0
        while True:
            stop.requested = False  # a new attempt (a held Ctrl-C, interrupt() still count)
            try:
                result = _fetch_once(con, mod, bounds_sql, part_sql, params, n, names, decl, sql,
                                     stop, deadline, in_place)
                break
            except _Moved as exc:
                tries += 1
                if tries >= _MOMENT_TRIES:
                    _refuse(exc.why)
            except mod.PartFull:  # a range held more rows than rowids: cannot happen for a rowid table
                if in_place is False:
                    raise
                in_place = False
    if result is _STOPPED:  # Ctrl-C was held back and its handler did not raise
        raise _errors.make_error(9, "interrupted", sql=sql)
    return result


_STOPPED = object()


def _fetch_once(con, mod, bounds_sql, part_sql, params, n, names, decl, sql, stop, deadline, in_place):
    raw = con._raw
    workers, stmts, crews = [], [], []
    try:
        # the main connection's read transaction fixes the moment: the rowid bounds come from
        # it, and every worker begins its own read at it before it ends
        _query_rows(raw, "BEGIN")
        lo, hi = _query_rows(raw, bounds_sql)[0]
        if lo is None:
            return None
        snap = _snapshot_of(raw, mod)
        nchunks = max(n, min(n * _RANGES_PER_WORKER, (hi - lo + 1) // _MIN_RANGE_ROWS))
        bounds = sorted({lo + (hi - lo + 1) * k // nchunks for k in range(nchunks)})
        ranges = [(b, nb - 1) for b, nb in zip(bounds, bounds[1:])] + [(bounds[-1], hi)]  # inclusive
        if in_place is None:
            in_place = _can_reserve(hi - lo + 1, len(names))
        dest = mod.Fetch()
        if in_place:
            try:
                dest.reserve(len(names), ranges[-1][1] - ranges[0][0] + 1)
            except MemoryError:
                in_place = False
        # read-only, URI filenames as the main connection, no SQLite mutex (each is used by one thread)
        flags = _modes.OPEN_READONLY | (raw.flags & _modes.OPEN_URI) | _modes.OPEN_NOMUTEX
        for _ in range(min(n, len(ranges))):
            if stop.asked():
                break
            w = mod.RawConnection(raw.filename, flags)
            workers.append(w)
            stop.conns.append(w)
            _share_settings(raw, mod, w)
            # rollback journal (no snapshot): waiting for a read lock while ours is held could
            # only wait for a writer that waits for us, so no busy timeout until it is taken
            w.busy_timeout(0.0 if snap is None else 5.0)
            try:
                _begin_worker_read(w, mod, snap)
            except _errors.BusyError as exc:
                raise _NoReadLock() from exc
            w.busy_timeout(5.0)
            _install_policy(raw, mod, w)
            st, _ = w.prepare(part_sql.encode("utf-8", "surrogateescape"), 0)
            stmts.append(st)
        snap = None
        _query_rows(raw, "ROLLBACK")  # every worker reads the moment now; the main one need not
        if stop.asked():
            return _stopped_result(stop, raw, sql) or _STOPPED
        return _run_workers(con, mod, workers, stmts, params, ranges, n, names, decl, sql, stop,
                            deadline, dest, in_place, crews)
    finally:
        _end_fetch(raw, stop, crews, stmts, workers)


def _end_fetch(raw, stop, crews, stmts, workers):
    """Join the workers, end the main connection's read transaction, then finalize the
    workers' statements and close their connections: each step runs whatever an earlier
    one raised (the first exception is raised at the end). Statements and connections are
    left to the garbage collector only if a worker thread could still be running (the
    crews wait for every thread before they raise, so this is not expected)."""
    pending = []

    def attempt(fn, *args):
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - raised below, after the cleanup
            pending.append(exc)

    for crew in crews:
        attempt(crew.close, stop)
    if not raw.closed and not raw.autocommit:
        attempt(_query_rows, raw, "ROLLBACK")
    if not any(t.is_alive() for crew in crews for t in crew.threads):
        for st in stmts:
            attempt(st.finalize)
        for w in workers:
            attempt(w.close)
    stop.conns.clear()
    if pending:
        raise pending[0]


def _stopped_result(stop, raw, sql):
    """The outcome of a fetch that was asked to stop: _STOPPED for a held Ctrl-C (the
    KeyboardInterrupt comes when _HoldCtrlC ends); else the error."""
    if stop.signal is not None:
        return _STOPPED
    if stop.interrupted():
        raise _errors.make_error(9, "interrupted", sql=sql)  # 9: SQLITE_INTERRUPT, as a serial fetch
    if stop.timed_out:
        raise _timeout_error(raw, sql)
    return None


def _run_workers(con, mod, workers, stmts, params, ranges, n, names, decl, sql, stop, deadline,
                 dest, in_place, crews):
    raw = con._raw
    base = ranges[0][0]
    nw = len(workers)
    errors = [None] * nw
    done_rows = [0] * nw
    busy = [False] * nw
    # Worker i owns the ranges cuts[i]:cuts[i + 1] and reads them from the front into one
    # Fetch; a worker done with its own takes the last range left in the region with most
    # left. So each region's rows are mostly one Fetch (whose TEXT/BLOB the join can take
    # over instead of copying), and a slower core still ends up reading fewer ranges.
    cuts = [len(ranges) * i // nw for i in range(nw + 1)]
    front, back = cuts[:-1], cuts[1:]
    claims = threading.Lock()
    pieces = []  # (first range index, Fetch)

    def claim(i):
        with claims:
            if front[i] < back[i]:
                front[i] += 1
                return front[i] - 1, True
            j = max(range(nw), key=lambda r: back[r] - front[r])
            if back[j] <= front[j]:
                return None, False
            back[j] -= 1
            return back[j], False

    def left():
        """Seconds left of the connection's time limit (None: no limit); raises past it."""
        if deadline is None:
            return None
        rest = deadline - _clock()
        if rest <= 0:
            stop.timed_out = True
            raise _timeout_error(raw, sql)
        return rest

    def work(i):
        w, st = workers[i], stmts[i]
        own = None
        try:
            while not stop.asked():
                left()
                k, mine = claim(i)
                if k is None:
                    break
                lo_k, hi_k = ranges[k]
                f = own if mine else None
                if f is None:
                    # rows of a range (a stolen one) or of the whole region (this worker's run)
                    span_hi = ranges[cuts[i + 1] - 1][1] if mine else hi_k
                    f = dest.part(lo_k - base, span_hi - lo_k + 1) if in_place else mod.Fetch()
                    with claims:
                        pieces.append((k, f))
                    if mine:
                        own = f
                _bind_with_range(st, params, lo_k, hi_k)
                if stop.asked():
                    break
                rest = left()
                if rest is not None:
                    w.timeout = rest  # this range may not outlive the fetch's limit
                before = f.nrows
                busy[i] = True
                f.run(st)
                done_rows[i] += f.nrows - before
                busy[i] = False
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors[i] = exc
            stop.request()

    def seen():
        return sum(done_rows) + sum(w.rows_seen for w, b in zip(workers, busy) if b)

    def poll():
        raw.rows_seen = seen()
        if stop.interrupted() and not stop.requested:
            stop.request()
        if deadline is not None and _clock() >= deadline and not stop.requested:
            stop.timed_out = True
            stop.request()

    crew = _Workers(work, nw)
    crews.append(crew)  # the caller's finally joins it, however this function is left
    crew.start()
    crew.wait(poll)
    out = _stopped_result(stop, raw, sql)
    if out is not None:
        return out
    failed = [e for e in errors if e is not None]
    if failed:  # the first failure; the others were most likely interrupted by it
        if any(isinstance(e, _errors.QueryTimeoutError) for e in failed):
            raise _timeout_error(raw, sql)  # a range ran into the fetch's limit
        raise next((e for e in failed if not isinstance(e, _errors.InterruptError)), failed[0])
    fetches = [f for _, f in sorted(pieces, key=lambda kf: kf[0])]
    if in_place:
        dest.join_parts(fetches, threads=n)
        cols = dest.columns()
    else:
        first = fetches[0]
        for f in fetches[1:]:
            first.append(f, threads=n)
        cols = first.columns()
    raw.rows_seen = cols[0].nrows if cols else 0
    nrows = cols[0].nrows if cols else 0
    return Result(columns=names, decltypes=decl, raw_columns=cols, nrows=nrows, statement=sql,
                  engine=con.engine)


def _bind_with_range(st, params, lo, hi):
    """Bind the user's parameters plus the two (inclusive) rowid bounds."""
    if _is_mapping(params):
        st.bind({**{k: params[k] for k in params.keys()}, "__sqlnb_lo": lo, "__sqlnb_hi": hi})
        return
    values = list(params) if params is not None else []
    want = len(st.param_names()) - 2
    if len(values) != want:
        raise _errors.ParameterError(
            f"Incorrect number of bindings supplied. The current statement uses {want}, "
            f"and there are {len(values)} supplied.")
    st.bind(values + [lo, hi])
