"""Results as a stream of Arrow record batches, in constant memory: :func:`query_batches`.

The last statement's rows are fetched ``rows`` at a time by the same fetcher as
:func:`~sqlnb.frames.fetch.query_df` (the compiled engines step with the GIL released
and fill column buffers in C; the ``system`` engine reads through its Python path),
and each batch's buffers become one ``pyarrow.RecordBatch`` without a copy.

A stream has ONE schema, decided before the first batch is handed out, while the
column types of SQLite are per value. The rule (docs/types.md, "Streaming in batches"):

1. The reader reads ahead ``lookahead`` batches (default 1: the first batch), and further
   batches while some column has held only NULL so far, at most ``null_lookahead`` (16)
   batches in all.
2. When the whole result fitted in those batches, the schema is exactly
   :meth:`Result.to_arrow`'s (so the stream equals ``query_arrow``).
3. Otherwise each column takes the type of the values read ahead (the same rules as
   ``to_arrow``: int64, float64, large_string, large_binary, dense union of the storage
   classes seen); a column that held only NULL takes its declared type's
   (INTEGER int64, REAL float64, TEXT large_string; else ``null``); a union gets a
   ``null`` child so that later NULLs fit.
4. ``types={"col": "int"|"float"|"text"|"blob"|"bytes"|"mixed"}`` fixes a column's type
   instead: "bytes" is large_binary taking BLOB and TEXT (as its stored bytes, valid UTF-8
   or not); "mixed" is a dense union of the five storage classes, which takes any value
   but TEXT that is not UTF-8 (use "bytes" for such a column).

A later batch whose values do not fit its column's type (TEXT in an int64 column in
batch 40, an integer a double cannot hold exactly in a float64 column, TEXT that is
not UTF-8 in a large_string column, a value in a ``null`` column) is never converted
or dropped: the stream raises :class:`StreamSchemaError` naming the column, the batch,
the first row and what was found, after handing out every batch before it intact.
An integer in a float64 column is converted when the double holds it exactly (as
``to_arrow`` does for a column mixing INTEGER and REAL).

The statement is finalized when the stream ends, fails, or is abandoned (the reader
freed, e.g. ``del reader``): a half-read stream holds no lock after that.
"""
from __future__ import annotations

import json
import time

from sqlnb import errors as _errors
from sqlnb._consts import BLOB, INTEGER, NULL, REAL, TEXT
from sqlnb.dbapi import affinity
from sqlnb.frames import parallel as _parallel
from sqlnb.frames import pycolumns
from sqlnb.frames.fetch import _columnar_fetcher, _run_for_effect
from sqlnb.frames.pycolumns import BIT, NULL_BIT
from sqlnb.frames.result import Result, _arrow_column, _arrow_object_column, _empty_arrow
from sqlnb import _sql

DEFAULT_ROWS = 65536     #: rows per batch unless ``rows=`` says otherwise
DEFAULT_LOOKAHEAD = 1    #: batches read ahead to decide the schema
NULL_LOOKAHEAD = 16      #: ... and at most this many while a column has shown only NULL
TYPE_NAMES = ("int", "float", "text", "blob", "bytes", "mixed")

_CLASS_NAME = {INTEGER: "integer", REAL: "real", TEXT: "text", BLOB: "blob", NULL: "null"}
_ALL = (INTEGER, REAL, TEXT, BLOB)


class StreamSchemaError(_errors.DataError):
    """A batch holds values its column's type (decided earlier in the stream) cannot hold.

    Nothing was converted or dropped: the batches handed out before this one are intact,
    and the statement is finalized. ``column``, ``batch`` (0-based), ``row`` (the first row of
    the batch in the result) and ``found`` (storage class names) say what happened.
    """

    def __init__(self, message, *, column=None, batch=None, row=None, found=()):
        super().__init__(message)
        self.column = column
        self.batch = batch
        self.row = row
        self.found = tuple(found)


# ---------------------------------------------------------------------------
# a column's type in the stream
# ---------------------------------------------------------------------------
class _Spec:
    """One column's stream type: ``kind`` is "int", "float", "text", "bintext" (TEXT kept as
    bytes: some was not UTF-8), "blob", "bytes" (BLOB and TEXT as bytes), "null" or "union"
    (``classes``, ``null_child``). ``exact``: decided from the whole result (as ``to_arrow``)."""

    __slots__ = ("kind", "classes", "null_child", "why", "exact")

    def __init__(self, kind, classes=(), null_child=False, why="", exact=False):
        self.kind = kind
        self.classes = tuple(classes)
        self.null_child = null_child
        self.why = why
        self.exact = exact

    def arrow_type(self):
        import pyarrow as pa

        simple = {"int": pa.int64(), "float": pa.float64(), "text": pa.large_string(),
                  "bintext": pa.large_binary(), "blob": pa.large_binary(), "bytes": pa.large_binary(),
                  "null": pa.null()}
        if self.kind in simple:
            return simple[self.kind]
        types = {INTEGER: pa.int64(), REAL: pa.float64(), TEXT: pa.large_string(), BLOB: pa.large_binary()}
        fields = [pa.field(_CLASS_NAME[c], types[c]) for c in self.classes]
        if self.null_child:
            fields.append(pa.field("null", pa.null()))
        return pa.dense_union(fields)

    def misfit(self, col):
        """Why ``col`` (one batch's RawColumn/PyColumn) does not fit, or "" when it does."""
        seen = col.seen & ~NULL_BIT
        nulls = bool(col.seen & NULL_BIT)
        allowed = {"int": BIT[INTEGER], "float": BIT[INTEGER] | BIT[REAL], "text": BIT[TEXT],
                   "bintext": BIT[TEXT], "blob": BIT[BLOB], "bytes": BIT[TEXT] | BIT[BLOB],
                   "null": 0}.get(self.kind)
        if allowed is None:  # union
            allowed = 0
            for c in self.classes:
                allowed |= BIT[c]
            if nulls and not self.null_child:
                return "NULL, and the union has no null member"
        extra = seen & ~allowed
        if extra:
            return " and ".join(_CLASS_NAME[c] for c in _ALL if extra & BIT[c]).upper()
        if self.kind == "float" and seen & BIT[INTEGER] and not col.ints_exact():
            return "an INTEGER that a double cannot hold exactly"
        if col.bad_utf8 and (self.kind == "text" or (self.kind == "union" and not self.exact)):
            return "TEXT that is not valid UTF-8"
        return ""

    def convert(self, col, n):
        """The batch's column as a pyarrow Array of this type (no copy for single kinds)."""
        import pyarrow as pa

        typ = self.arrow_type()
        seen = col.seen & ~NULL_BIT
        if self.kind == "union":
            return _arrow_object_column(col, classes=self.classes, null_child=self.null_child)
        if seen == 0:
            return pa.nulls(n, type=typ)
        if self.kind == "bytes":
            return pa.array([v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v
                             for v in col.objects()], type=typ)
        if self.kind == "bintext":
            arr = _arrow_object_column(col) if col.bad_utf8 else _arrow_column(col, "text", n)
        else:
            arr = _arrow_column(col, {"int": "int", "float": "float", "text": "text", "blob": "blob"}[self.kind], n)
        if isinstance(arr, pa.ChunkedArray):  # a parallel fetch's TEXT regions
            arr = arr.combine_chunks()
        if arr.type != typ:
            arr = arr.cast(typ)  # TEXT kept as bytes: large_string -> large_binary, no copy of the data
        return arr


def _spec_from_name(name, column):
    if name not in TYPE_NAMES:
        raise ValueError(f"types[{column!r}] must be one of {', '.join(TYPE_NAMES)}, not {name!r}")
    if name == "mixed":
        return _Spec("union", _ALL, True, why="types= says mixed")
    return _Spec(name, why=f"types= says {name}")


def _decide(cols, decl, complete, forced):
    """The stream type of one column from its read-ahead batches ``cols`` (RawColumn/PyColumn)."""
    if forced is not None:
        return forced
    seen = 0
    bad = False
    for c in cols:
        seen |= c.seen
        bad = bad or bool(c.bad_utf8)
    nulls = bool(seen & NULL_BIT)
    values = seen & ~NULL_BIT
    rows = sum(c.nrows for c in cols)
    why = f"decided from the first {rows:,} rows"
    if values == 0:
        if complete:
            return _Spec("null", why=why, exact=True)
        t = _empty_arrow(affinity(decl)).type
        kind = {"int64": "int", "double": "float", "large_string": "text"}.get(str(t), "null")
        said = f"the declared type {decl}" if decl else "no declared type"
        return _Spec(kind, why=f"only NULL in the first {rows:,} rows, {said}")
    kind = None
    if values == BIT[INTEGER]:
        kind = "int"
    elif values == BIT[REAL]:
        kind = "float"
    elif values == BIT[INTEGER] | BIT[REAL] and all(c.ints_exact() for c in cols):
        kind = "float"
    elif values == BIT[TEXT]:
        kind = "bintext" if bad else "text"
    elif values == BIT[BLOB]:
        kind = "blob"
    if kind is not None:
        return _Spec(kind, why=why, exact=complete)
    classes = [c for c in _ALL if values & BIT[c]]
    return _Spec("union", classes, nulls or not complete, why=why, exact=complete)


# ---------------------------------------------------------------------------
# the rows of one statement, a batch at a time
# ---------------------------------------------------------------------------
def _raw_batches(con, st, rows):
    """Yield ``(columns, nrows, last)`` for each batch of ``st`` (bound, not stepped); ``last``: no
    rows after this batch. The caller finalizes ``st``."""
    fetch = _columnar_fetcher(con, st)
    raw = con._raw
    if fetch is not None:
        try:
            _names, cols, status = con._waiting(fetch, st, rows, False, False, statement=st)
        except _errors.Error as exc:
            better = con._explain(exc, st.sql)
            if better is not None:
                raise better from exc
            raise
        while True:
            n = cols[0].nrows if cols else 0
            if n or status == "done":
                yield cols, n, status == "done"
            if status == "done":
                return
            _names, cols, status = fetch(st, rows, True, True)
    # the Python path (system engine): the time limit covers the whole stream
    limit_s = getattr(raw, "timeout", 0) or 0
    deadline = time.monotonic() + limit_s if limit_s else None
    first = ()
    seen = 0
    factory = None
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise _errors.timeout_error(limit_s, getattr(st, "sql", None))
        was_bad = factory.bad if first else False
        factory = pycolumns.TextFactory()
        factory.bad = was_bad  # the unread row carried over was decoded by the previous batch's factory
        with con.backend.decoding(raw, factory):
            cols, n, unread = pycolumns.read_columns(st, first, rows, raw, factory)
        seen += n
        raw.rows_seen = seen
        if n or unread is None:
            yield cols, n, unread is None
        if unread is None:
            return
        first = (unread,)


def _prepare_last(con, sql, params):
    """Run every statement of ``sql`` but the last for effect; the last one, bound: (st or None)."""
    if not isinstance(sql, str):
        raise TypeError(f"SQL must be str, not {type(sql).__name__}")
    con._check()
    index = 0
    for st, _start, end in con.statements(sql):
        index += 1
        keep = False
        try:
            con._maybe_begin(st)
            if not _sql.is_blank(sql[end:]):
                _run_for_effect(con, st, params, index)
                continue
            st.bind(params)
            keep = True
            return st
        finally:
            if not keep:
                st.finalize()
    return None


def _check_rows(rows, name="rows"):
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise ValueError(f"{name} must be a positive int, not {rows!r}")


def query_batches(con, sql, params=None, *, rows=DEFAULT_ROWS, types=None, lookahead=DEFAULT_LOOKAHEAD,
                  null_lookahead=NULL_LOOKAHEAD, parallel=None):
    """Run ``sql`` and stream the last statement's rows as a ``pyarrow.RecordBatchReader``.

    :param rows: rows per batch (each batch at most this many; memory is about one batch,
        plus up to ``lookahead`` batches while the schema is decided).
    :param types: ``{column: "int"|"float"|"text"|"blob"|"mixed"}`` fixes column types.
    :param lookahead: batches read ahead to decide the schema (memory: that many batches).
    :param null_lookahead: while a column has shown only NULL, read ahead up to this many.
    :param parallel: N > 1 reads a plain table scan over N read connections, a piece of
        the rowid span at a time, and hands the batches out in rowid order (memory: about
        ``6 * N`` batches; :func:`sqlnb.frames.parallel.stream_batches`); refused
        (:class:`~sqlnb.frames.scan.ParallelRefused`) for what ``query_df(parallel=N)``
        refuses. The schema rule is the same: the first batches read ahead decide it.

    The schema rule and what happens to a column that changes storage class later
    (:class:`StreamSchemaError`, nothing lost) are in this module's docstring and
    docs/types.md. The statement is finalized at the end of the stream, on an error,
    or when the reader is freed.
    """
    import pyarrow as pa

    _check_rows(rows)
    _check_rows(lookahead, "lookahead")
    _check_rows(null_lookahead, "null_lookahead")
    if types is not None and not isinstance(types, dict):
        raise TypeError(f"types must be a dict of column name to one of {', '.join(TYPE_NAMES)}")
    par = None
    if parallel not in (None, 0, 1, False):
        con._check()
        par = _parallel.stream_batches(con, sql, params, parallel, rows)
    st = None
    if par is None:  # serial, or the table was empty when the parallel stream read it
        st = _prepare_last(con, sql, params)
        if st is None:
            return pa.RecordBatchReader.from_batches(pa.schema([]), iter(()))
    source = None
    try:
        if par is not None:
            names, decl, source = list(par[0]), list(par[1]), par[2]
        else:
            names = list(st.column_names())
            decl = list(st.decltypes()) if names else []
        unknown = [k for k in (types or {}) if k not in names]
        if unknown:
            raise ValueError(f"types names column(s) {', '.join(map(repr, unknown))} not in the result "
                             f"(columns: {', '.join(names)})")
        forced = {k: _spec_from_name(v, k) for k, v in (types or {}).items()}
        if not names:  # a statement without rows: run it, stream nothing
            con._run_statement(st)
            st.finalize()
            return pa.RecordBatchReader.from_batches(pa.schema([]), iter(()))
        if source is None:
            source = _raw_batches(con, st, rows)
        ahead = []
        complete = False
        while len(ahead) < max(lookahead, null_lookahead):
            got = next(source, None)
            if got is None:
                complete = True
                break
            ahead.append(got)
            if got[2]:
                complete = True
                break
            if len(ahead) >= lookahead and all(any(c[i].seen & ~NULL_BIT for c, _n, _l in ahead)
                                               or names[i] in forced for i in range(len(names))):
                break
        if not any(n for _c, n, _l in ahead):
            specs = [forced.get(name) or _Spec("empty") for name in names]
        else:
            specs = [_decide([c[i] for c, _n, _l in ahead], decl[i], complete, forced.get(names[i]))
                     for i in range(len(names))]
        fields = []
        for name, spec, d in zip(names, specs, decl):
            typ = _empty_arrow(affinity(d)).type if spec.kind == "empty" else spec.arrow_type()
            fields.append(pa.field(name, typ))
        meta = {b"sqlnb.decltypes": json.dumps(decl).encode()}
        schema = pa.schema(fields, metadata=meta)
    except BaseException:
        if source is not None:
            source.close()
        if st is not None:
            st.finalize()
        raise
    return pa.RecordBatchReader.from_batches(schema, _stream(st, source, ahead, specs, schema))


def _stream(st, source, ahead, specs, schema):
    import pyarrow as pa

    batch = 0
    row = 0
    try:
        pending = iter(ahead)
        while True:
            got = next(pending, None)
            if got is None:
                ahead = None
                got = next(source, None)
            if got is None:
                return
            cols, n, _last = got
            if n == 0:
                continue
            arrays = []
            for i, (spec, col) in enumerate(zip(specs, cols)):
                if spec.kind == "empty":  # (the read-ahead saw no row: cannot happen with n > 0)
                    raise AssertionError("rows after an empty read-ahead")
                why = spec.misfit(col)
                if why:
                    name = schema.field(i).name
                    text_only = not col.seen & (BIT[INTEGER] | BIT[REAL])
                    fix = "bytes" if "UTF-8" in why or (text_only and spec.kind in ("text", "bintext", "blob")) \
                        else "mixed"
                    raise StreamSchemaError(
                        f"column {name!r} changed type in batch {batch} (rows from {row:,}): the stream's "
                        f"schema says {spec.arrow_type()} ({spec.why}) and this batch has {why}; nothing was "
                        f"converted or dropped. Pass types={{{name!r}: {fix!r}}} (or CAST it in the SQL).",
                        column=name, batch=batch, row=row,
                        found=[_CLASS_NAME[c] for c in (*_ALL, NULL) if col.seen & BIT[c]])
                arrays.append(spec.convert(col, n))
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
            batch += 1
            row += n
    finally:
        source.close()
        if st is not None:
            st.finalize()


def iter_frames(con, sql, params=None, *, chunksize, parse_dates=None, dtype=None, dtype_backend=None):
    """Yield DataFrames of at most ``chunksize`` rows (``query_df(..., chunksize=N)``).

    Each frame follows :func:`~sqlnb.frames.fetch.query_df`'s type rules on its own rows,
    like ``pandas.read_sql(chunksize=)``: a column's dtype may differ from frame to frame
    (all NULL in one, text in the next); nothing is converted or dropped. The rows come from
    the same batch fetcher as :func:`query_batches`; the statement is finalized when the
    iteration ends, fails, or the generator is closed or freed. A result without rows yields
    one empty frame with the columns (dtypes from the declared types), as ``query_df`` returns.
    """
    _check_rows(chunksize, "chunksize")
    st = _prepare_last(con, sql, params)
    if st is None:
        return
    try:
        names = list(st.column_names())
        if not names:
            con._run_statement(st)
            return
        decl = list(st.decltypes())
        source = _raw_batches(con, st, chunksize)
        try:
            for cols, n, _last in source:
                res = Result(columns=names, decltypes=decl, raw_columns=cols, nrows=n,
                             statement=st.sql, engine=con.engine)
                yield res.to_pandas(parse_dates=parse_dates, dtype=dtype, dtype_backend=dtype_backend)
        finally:
            source.close()
    finally:
        st.finalize()
