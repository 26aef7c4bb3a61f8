"""Running the statements of a ``%%sql`` cell: plain functions, no IPython.

* Statements are split by SQLite's own tail pointer (``Connection.statements``),
  prepared one at a time just before they run (so ``CREATE TABLE t ...; INSERT
  INTO t ...`` works in one cell).
* Parameters are **always bound**: the names come from SQLite's parser
  (``RawStatement.param_names()``), so ``':1'`` inside a JSON string, ``[:2]``
  in a string or a comment, and comments anywhere are never parameters. Each
  ``:name``/``$name``/``@name`` takes the value of ``name`` from the namespace.
* Every statement's result is kept; a failing statement raises the engine's own
  exception (class unchanged) carrying ``statement_no``/``line`` and a one-line
  rendering that IPython shows instead of a traceback (``_render_traceback_``).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from sqlnb import _sql
from sqlnb import errors as _errors
from sqlnb import frames as _frames
from sqlnb import progress as _progress

# exceptions that are the user's (bad SQL, bad values), rendered in one line
SHORT_ERRORS = (_errors.Error, OverflowError)

# the statements whose row count is the rows they changed (sqlite3_changes)
DML = frozenset(("INSERT", "UPDATE", "DELETE", "REPLACE"))
_VERBS = DML | {"SELECT", "VALUES"}


@dataclass(slots=True)
class StatementInfo:
    """What is known about one executed statement (kept on its result frame)."""

    index: int  # 1-based statement number in the cell
    line: int  # 1-based line in the cell where the statement starts
    sql: str  # the statement's text, stripped
    keyword: str  # first keyword, upper case (SELECT, INSERT, WITH, PRAGMA, ...)
    elapsed: float = 0.0  # seconds, prepare excluded, bind + run + fetch included
    rowcount: int = -1  # rows changed by INSERT/UPDATE/DELETE, else -1
    has_columns: bool = False  # the statement returns a result set (even an empty one)
    limit: int | None = None  # the --limit the fetch was capped at
    truncated: bool = False  # the fetch stopped at ``limit`` with rows left
    engine: str = ""
    version: str = ""
    policy: str = ""
    params: tuple = ()  # the parameter names bound (``:x``, ``$y``)


@dataclass(slots=True)
class CellRun:
    """The outcome of running a cell: one (frame, info) per statement, in order."""

    frames: list = field(default_factory=list)
    infos: list = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return sum(i.elapsed for i in self.infos)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def statement_start(cell: str, start: int, end: int | None = None) -> int:
    """Offset of the first token of ``cell[start:end]`` (whitespace and comments skipped)."""
    if start < len(cell) and cell[start] not in "-/" and not cell[start].isspace():
        return start  # the common case: the token itself
    text = cell[start:end]
    for tok in _sql.tokens(text):
        return start + tok.start
    return start + len(text)


def verb(sql: str) -> str:
    """What a statement does, by its first keyword; after a ``WITH`` clause, the keyword
    of the statement it leads (``WITH x AS (...) INSERT ...`` -> ``INSERT``)."""
    first = _sql.first_keyword(sql)
    if first != "WITH":
        return first
    for tok in _sql.tokens(sql):
        if tok.depth == 0 and tok.kind == "word" and tok.upper in _VERBS:
            return tok.upper
    return first


def params_for(st, namespace, index: int) -> dict:
    """The values for a statement's parameters, looked up by name in ``namespace``.

    Raises ``ParameterError`` naming the statement and the parameter when a
    parameter is positional (``?``, ``?3``), not a Python name, or undefined.
    """
    names = st.param_names()
    if names is None:  # system engine: the stdlib does not tell, so tokenize as SQLite does
        names = _sql.param_names(st.sql)
    values = {}
    for pos, name in enumerate(names, 1):
        if name is None or name.startswith("?"):
            raise _errors.ParameterError(
                f"parameter {pos} is positional ({name or '?'}): in sqlnb cells parameters "
                f"are named (:name, $name, @name) and take the Python variable of that name")
        key = name[1:]
        if key in values:
            continue
        if not key.isidentifier():
            raise _errors.ParameterError(
                f"parameter {name} is not a Python variable name (write :name with a name "
                f"defined in Python)")
        try:
            values[key] = namespace[key]
        except KeyError:
            raise _errors.ParameterError(
                f"parameter {name} has no value: no Python variable named {key!r} "
                f"is defined") from None
    return values


def statement_df(con, st, limit=None, frame_class=None):
    """A DataFrame of an already prepared and bound ``RawStatement``: ``(frame, truncated)``.

    ``limit`` caps the rows fetched; ``truncated`` tells whether rows were left.
    The statement is left to the caller to finalize. The fetch is the one
    :func:`sqlnb.frames.query_df` uses (``frames.statement_result``).
    """
    res = _frames.statement_result(con, st, limit)
    return res.to_pandas(frame_class=frame_class), res.truncated


def _empty_frame():
    import pandas as pd

    return pd.DataFrame()


def describe_error(exc, cell: str, index: int, first: int, base: int, line_offset: int = 0) -> str:
    """Attach ``statement_no``, ``line`` and a one-line text to ``exc``; return the text.

    ``first`` is where the statement's first token is in the cell, ``base``
    where the text SQLite was given starts (SQLite's error offset counts from
    there, in bytes); ``line_offset`` lines the editor shows above the cell's text.
    """
    line = _line_of(cell, first) + line_offset
    where = f"statement {index} (line {line})"
    detail = hint = ""
    offset = getattr(exc, "error_offset", -1)
    if isinstance(offset, int) and offset >= 0 and getattr(exc, "sql", None):
        before = exc.sql.encode("utf-8", "surrogateescape")[:offset].decode("utf-8", "replace")
        pos = base + len(before)
        col = pos - cell.rfind("\n", 0, pos)
        near = cell[pos:pos + 24].split("\n")[0].strip()
        detail = f" at line {_line_of(cell, pos) + line_offset}, column {col}" + (f" near {near!r}" if near else "")
        hint = _not_a_value(exc, cell, pos)
    detail += getattr(exc, "sqlnb_context", "")
    message = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__} in {where}{detail}: {message}{hint}"
    exc.statement_no = index
    exc.line = line
    exc.sqlnb_message = text
    if hasattr(exc, "add_note"):
        exc.add_note(f"sqlnb: {where}")
    return text


def _not_a_value(exc, cell: str, pos: int) -> str:
    """A syntax error at a parameter (``FROM :t``) or a ``{{template}}``: only values bind."""
    if not isinstance(exc, _errors.SQLError):
        return ""
    tok = next(_sql.tokens(cell[pos:]), None)
    if tok is None or tok.start != 0:
        return ""
    if tok.kind == "param":
        what = f"{tok.text} is a bound parameter, and"
    elif tok.text == "{":
        what = "{{...}} is not expanded (SQL text is never templated), and"
    else:
        return ""
    return (f" ({what} parameters carry values only, never a table or column name: write the "
            f"name in the SQL, or keep a query under a name with %%sql --save NAME and use NAME "
            f"as a table)")


def show_in_one_line(exc: BaseException, text: str) -> None:
    """Make IPython show ``exc`` as the one red line ``text`` instead of a traceback.

    (IPython asks an exception for ``_render_traceback_()``; the exception keeps its class.)
    """
    def _render_traceback_():
        return [f"\x1b[0;31m{text}\x1b[0m"]

    exc._render_traceback_ = _render_traceback_


def shorten(exc: BaseException) -> None:
    """Show ``exc`` in one line, unless it already has a rendering of its own.

    The line is the one :func:`describe_error` wrote, else ``Class: message``.
    """
    if hasattr(exc, "_render_traceback_"):
        return
    text = getattr(exc, "sqlnb_message", None) or f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    show_in_one_line(exc, text)


_NO_TRACKING = contextlib.nullcontext()


@dataclass(slots=True)
class _Run:
    """What every statement of one cell run shares."""

    con: object
    cell: str
    namespace: object
    limit: int | None
    short_errors: bool
    label: str
    frame_class: object
    in_kernel: bool
    engine: str
    version: str
    policy: str
    line_offset: int = 0
    explain: object = None  # explain(exc, expansion, statement): an error on expanded SQL, in the user's terms
    current: tuple | None = None  # (expansion or None, the statement as written, its start in the cell)


def run_cell(con, cell: str, namespace, *, limit=None, timeout=None, short_errors=True,
             label="sql", frame_class=None, line_offset=0, expand=None) -> CellRun:
    """Run every statement of ``cell`` on ``con`` and return all results.

    :param namespace: where ``:name`` values come from (a mapping).
    :param limit: cap each result's fetch at this many rows.
    :param timeout: per-statement time limit (seconds) for this run only.
    :param short_errors: failing statements raise with a one-line rendering.
    :param frame_class: the DataFrame subclass results are built as (the magic's ``SqlResult``).
    :param line_offset: lines the editor shows above ``cell`` (1 for a ``%%sql`` cell body), so
        line numbers in results and errors are the ones the editor shows.
    :param expand: ``(expand, explain, split)`` for saved queries: ``split(cell)`` gives the
        statements' spans, ``expand(statement)`` the text SQLite is given instead (or None), and
        ``explain(exc, expansion, statement)`` puts an error on it back in the user's terms.
    """
    try:
        version = con.sqlite_version
    except Exception:  # noqa: BLE001 - the footer must not fail a cell
        version = ""
    ctx = _Run(con=con, cell=cell, namespace=namespace, limit=limit, short_errors=short_errors,
               label=label, frame_class=frame_class, in_kernel=_progress.in_kernel() is not None,
               engine=con.engine, version=version, policy=con.policy_summary,
               line_offset=line_offset, explain=expand[1] if expand else None)
    run = CellRun()
    if timeout is not None:
        old_timeout = con.statement_timeout
        con.statement_timeout = timeout
    index = 0
    text_start = 0
    try:
        stmts = con.statements(cell) if expand is None else _expanded(ctx, *expand)
        while True:
            index += 1
            try:
                st, start, end = next(stmts)
            except StopIteration:
                break
            except SHORT_ERRORS as exc:  # prepare failed
                _fail(ctx, exc, index, statement_start(cell, text_start), text_start)
                raise
            text_start = end
            df, info = _run_statement(ctx, st, index, start, end)
            run.frames.append(df)
            run.infos.append(info)
    finally:
        if timeout is not None and not con.closed:
            con.statement_timeout = old_timeout
    return run


def _run_statement(ctx: _Run, st, index: int, start: int, end: int):
    """Bind, run and fetch one prepared statement of the cell; finalize it. ``(frame, info)``."""
    con, cell = ctx.con, ctx.cell
    first = statement_start(cell, start, end)
    sql = cell[first:end].strip()
    info = StatementInfo(index=index, line=_line_of(cell, first) + ctx.line_offset, sql=sql, keyword=_sql.first_keyword(sql),
                         limit=ctx.limit, engine=ctx.engine, version=ctx.version, policy=ctx.policy)
    t0 = time.perf_counter()
    try:
        # a live progress display only where one can show (a kernel): nothing to set up elsewhere
        with (_progress.track(con.raw, label=f"{ctx.label} [{index}] {info.keyword}".strip())
              if ctx.in_kernel else _NO_TRACKING):
            t0 = time.perf_counter()
            values = params_for(st, ctx.namespace, index)
            if values:  # (a statement without parameters has nothing to bind)
                st.bind(values)
                info.params = tuple(f":{k}" for k in values)
            if st.column_count:
                df, info.truncated = statement_df(con, st, ctx.limit, ctx.frame_class)
                info.has_columns = True
            else:
                con._run_statement(st)
                df = _empty_frame()
                if verb(sql) in DML:
                    info.rowcount = con.raw.changes()
            info.elapsed = time.perf_counter() - t0
    except SHORT_ERRORS as exc:
        _fail(ctx, exc, index, first, start)
        raise
    except KeyboardInterrupt as exc:
        # the stop button: one line instead of IPython's traceback (the type stays KeyboardInterrupt)
        if ctx.short_errors:
            show_in_one_line(exc, f"KeyboardInterrupt: statement {index} ({info.keyword or 'SQL'}) stopped "
                                  f"after {time.perf_counter() - t0:.1f} s; the connection is ready for "
                                  f"the next cell")
        raise
    finally:
        st.finalize()
    return df, info


def _expanded(ctx: _Run, expand, explain, split):
    """``con.statements(cell)``, with each statement that uses saved queries expanded first."""
    con, cell = ctx.con, ctx.cell
    for start, end in split(cell):
        piece = cell[start:end]
        x = expand(piece)
        ctx.current = (x, piece, start)
        if x is None:
            for st, s, e in con.statements(piece):
                yield st, start + s, start + e
        else:
            for st, _, _ in con.statements(x.text):
                yield st, start, end
        ctx.current = None


def _fail(ctx: _Run, exc, index, first, base):
    if ctx.current is not None:  # a statement run through saved queries: say it in the user's terms
        x, piece, base = ctx.current
        if x is not None and ctx.explain is not None:
            ctx.explain(exc, x, piece)
    text = describe_error(exc, ctx.cell, index, first, base, ctx.line_offset)
    if ctx.short_errors:
        show_in_one_line(exc, text)
