"""Running SQL and fetching the last statement's rows: :func:`run`, :func:`query_df`,
:func:`query_arrow`, and a cursor's remaining rows (:func:`cursor_result`, :func:`cursor_df`).

A statement's rows are fetched by the engine's compiled fetcher when it has one
(capability ``columnar_fetch``: the rows never become Python tuples), else through
:mod:`sqlnb.frames.pycolumns` under the engine's ``decoding`` hook. Either way the
result is a :class:`~sqlnb.frames.result.Result`, turned into pandas or Arrow by the
same type rules.
"""
from __future__ import annotations

import time
import warnings

from sqlnb import _sql
from sqlnb import errors as _errors
from sqlnb.frames import parallel as _parallel
from sqlnb.frames import pycolumns
from sqlnb.frames.result import Result, TruncatedWarning
from sqlnb._bind import is_mapping


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


def _columnar_fetcher(con, st):
    """The engine's compiled ``fetch_columns`` for ``st``, or None: the engine has none
    (``system``), or ``st`` holds rows already read (a bdb cursor's ``BufferedRows``)."""
    backend = con.backend
    if not backend.has("columnar_fetch"):
        return None
    mod = backend.load()
    return mod.fetch_columns if isinstance(st, mod.RawStatement) else None


def _fetch_statement(con, st, cap, *, include_current=False, first_rows=()):
    """Fetch a bound statement's rows: (names, decltypes, columns, nrows, truncated, unread_row).

    ``include_current`` (compiled fetcher): the statement's current row, already stepped
    to, is the first; ``first_rows`` (Python path): rows already read from it.
    """
    fetch = _columnar_fetcher(con, st)
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
    factory = pycolumns.TextFactory()
    with con.backend.decoding(raw, factory):
        names = st.column_names()
        cols, n, unread = pycolumns.read_columns(st, first_rows, cap, raw, factory)
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


def run(con, sql, params=None, *, limit=None, max_rows=None, parallel=None) -> Result:
    """Run every statement of ``sql`` in order and fetch the last one's rows into a :class:`Result`.

    Parameters: a mapping is offered to every statement (each takes the names it
    uses); a sequence belongs to the last statement. ``parallel=N`` (N > 1) reads a
    plain table scan over N connections (:mod:`sqlnb.frames.parallel`), or refuses.
    """
    if not isinstance(sql, str):
        raise TypeError(f"SQL must be str, not {type(sql).__name__}")
    cap = _cap(limit, max_rows)
    con._check()
    t0 = time.perf_counter()
    res = None
    if parallel not in (None, 0, 1, False):
        res = _parallel.fetch(con, sql, params, cap, parallel)
    if res is None:  # serial, or the table was empty when the parallel fetch read it
        res = _run_serial(con, sql, params, cap)
    res.elapsed = time.perf_counter() - t0
    _warn_truncated(res, limit, max_rows)
    return res


def _run_serial(con, sql, params, cap) -> Result:
    res = None
    index = 0
    for st, _start, end in con.statements(sql):
        index += 1
        try:
            con._maybe_begin(st)
            if not _sql.is_blank(sql[end:]):  # not the last statement: run it for effect
                _run_for_effect(con, st, params, index)
                continue
            st.bind(params)
            res = statement_result(con, st, cap)
        finally:
            st.finalize()
    if res is None:
        res = Result(columns=[], decltypes=[], raw_columns=[], engine=con.engine)
    return res


def _run_for_effect(con, st, params, index):
    """Run statement number ``index`` (not the last) with the named parameters it uses."""
    named = is_mapping(params)
    positional = params is not None and not named and len(params) > 0
    try:
        st.bind(params if named else None)
        con._run_statement(st)
    except _errors.ProgrammingError as exc:
        if not positional and not isinstance(exc, _errors.ParameterError):
            raise
        raise _errors.ParameterError(
            f"statement {index} ({st.sql.strip()[:60]!r}): {exc} Positional parameters are "
            f"bound to the last statement only; pass a mapping (:name) to give values to "
            f"earlier statements.") from exc


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
    st, pending = cur._take_rows()
    if st is None:
        cols = [pycolumns.PyColumn([pending[i]] if pending is not None else [], False) for i in range(len(names))]
        res = Result(columns=names, decltypes=decl, raw_columns=cols, nrows=1 if pending is not None else 0,
                     engine=con.engine)
    else:
        if _columnar_fetcher(con, st) is not None:
            _names, _decl, cols, n, truncated, unread = _fetch_statement(
                con, st, cap, include_current=pending is not None)
        else:
            first = [pending] if pending is not None else []
            _names, _decl, cols, n, truncated, unread = _fetch_statement(con, st, cap, first_rows=first)
        if truncated:
            cur._keep_unread(unread)
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
