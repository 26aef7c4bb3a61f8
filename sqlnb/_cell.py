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
import re
import time
from dataclasses import dataclass, field

from sqlnb import errors as _errors
from sqlnb import frames as _frames
from sqlnb import progress as _progress

# whitespace and comments before a statement's first token
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*", re.S)
_FIRST_WORD = re.compile(r"[A-Za-z]+")

# exceptions that are the user's (bad SQL, bad values), rendered in one line
SHORT_ERRORS = (_errors.Error, OverflowError)


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


def statement_start(cell: str, start: int) -> int:
    """Offset of the first token after ``start`` (skipping whitespace and comments)."""
    if start < len(cell) and cell[start] not in "-/" and not cell[start].isspace():
        return start  # the common case: the token itself
    m = _LEADING.match(cell, start)
    return m.end() if m else start


def params_for(st, namespace, index: int) -> dict:
    """The values for a statement's parameters, looked up by name in ``namespace``.

    Raises ``ParameterError`` naming the statement and the parameter when a
    parameter is positional (``?``, ``?3``), not a Python name, or undefined.
    """
    names = st.param_names()
    if names is None:  # system engine: the stdlib does not tell, so tokenize as SQLite does
        names = text_param_names(st.sql)
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


# SQLite's tokenizer, as far as parameters go: string literals, quoted identifiers
# ("x", `x`, [x]) and comments are skipped; :name, @name, $name and ?NNN are parameters.
_PARAM_TOKENS = re.compile(
    r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|`(?:[^`]|``)*`?|\[[^\]]*\]?|--[^\n]*|/\*.*?(?:\*/|\Z)"
    r"|([:@$][\w$]+|\?\d*)", re.S)


def text_param_names(sql: str) -> list:
    """Parameter names of ``sql`` found by a tokenizer that follows SQLite's rules.

    Used for the ``system`` engine, whose stdlib driver does not expose
    ``sqlite3_bind_parameter_name``; the compiled engines ask SQLite itself.
    """
    out = []
    for m in _PARAM_TOKENS.finditer(sql):
        name = m.group(1)
        if name is None:
            continue
        if name[0] == "?":
            out.append(name if len(name) > 1 else None)
        elif name not in out:
            out.append(name)
    return out


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


def describe_error(exc, cell: str, index: int, first: int, base: int) -> str:
    """Attach ``statement_no``, ``line`` and a one-line text to ``exc``; return the text.

    ``first`` is where the statement's first token is in the cell, ``base``
    where the text SQLite was given starts (SQLite's error offset counts from
    there, in bytes).
    """
    line = _line_of(cell, first)
    where = f"statement {index} (line {line})"
    detail = ""
    offset = getattr(exc, "error_offset", -1)
    if isinstance(offset, int) and offset >= 0 and getattr(exc, "sql", None):
        before = exc.sql.encode("utf-8", "surrogateescape")[:offset].decode("utf-8", "replace")
        pos = base + len(before)
        col = pos - cell.rfind("\n", 0, pos)
        near = cell[pos:pos + 24].split("\n")[0].strip()
        detail = f" at line {_line_of(cell, pos)}, column {col}" + (f" near {near!r}" if near else "")
    message = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__} in {where}{detail}: {message}"
    exc.statement_no = index
    exc.line = line
    exc.sqlnb_message = text
    if hasattr(exc, "add_note"):
        exc.add_note(f"sqlnb: {where}")
    return text


def _short_renderer(text):
    def _render_traceback_():
        return [f"\x1b[0;31m{text}\x1b[0m"]

    return _render_traceback_


_NO_TRACKING = contextlib.nullcontext()


def run_cell(con, cell: str, namespace, *, limit=None, timeout=None, short_errors=True,
             label="sql", frame_class=None) -> CellRun:
    """Run every statement of ``cell`` on ``con`` and return all results.

    :param namespace: where ``:name`` values come from (a mapping).
    :param limit: cap each result's fetch at this many rows.
    :param timeout: per-statement time limit (seconds) for this run only.
    :param short_errors: failing statements raise with a one-line rendering.
    :param frame_class: the DataFrame subclass results are built as (the magic's ``SqlResult``).
    """
    run = CellRun()
    engine = con.engine
    try:
        version = con.sqlite_version
    except Exception:  # noqa: BLE001 - the footer must not fail a cell
        version = ""
    policy = con.policy_summary
    in_kernel = _progress.in_kernel() is not None
    if timeout is not None:
        old_timeout = con.statement_timeout
        con.statement_timeout = timeout
    index = 0
    text_start = 0
    try:
        stmts = con.statements(cell)
        while True:
            index += 1
            try:
                item = next(stmts)
            except StopIteration:
                break
            except SHORT_ERRORS as exc:  # prepare failed
                _fail(exc, cell, index, statement_start(cell, text_start), text_start, short_errors)
                raise
            st, start, end = item
            text_start = end
            first = statement_start(cell, start)
            sql = cell[first:end].strip()
            m = _FIRST_WORD.match(sql)
            info = StatementInfo(index=index, line=_line_of(cell, first), sql=sql,
                                 keyword=m.group(0).upper() if m else "", limit=limit,
                                 engine=engine, version=version, policy=policy)
            t0 = time.perf_counter()
            try:
                # a live progress display only where one can show (a kernel): nothing to set up elsewhere
                with (_progress.track(con.raw, label=f"{label} [{index}] {info.keyword}".strip())
                      if in_kernel else _NO_TRACKING):
                    t0 = time.perf_counter()
                    values = params_for(st, namespace, index)
                    if values:  # (a statement without parameters has nothing to bind)
                        st.bind(values)
                        info.params = tuple(f":{k}" for k in values)
                    if st.column_count:
                        df, info.truncated = statement_df(con, st, limit, frame_class)
                        info.has_columns = True
                    else:
                        con._run_statement(st)
                        df = _empty_frame()
                        if info.keyword in ("INSERT", "UPDATE", "DELETE", "REPLACE", "WITH"):
                            info.rowcount = con.raw.changes()
                    info.elapsed = time.perf_counter() - t0
            except SHORT_ERRORS as exc:
                _fail(exc, cell, index, first, start, short_errors)
                raise
            except KeyboardInterrupt as exc:
                # the stop button: one line instead of IPython's traceback (the type stays KeyboardInterrupt)
                if short_errors:
                    exc._render_traceback_ = _short_renderer(
                        f"KeyboardInterrupt: statement {index} ({info.keyword or 'SQL'}) stopped after "
                        f"{time.perf_counter() - t0:.1f} s; the connection is ready for the next cell")
                raise
            finally:
                st.finalize()
            run.frames.append(df)
            run.infos.append(info)
    finally:
        if timeout is not None and not con.closed:
            con.statement_timeout = old_timeout
    return run


def _fail(exc, cell, index, first, base, short_errors):
    text = describe_error(exc, cell, index, first, base)
    if short_errors:
        exc._render_traceback_ = _short_renderer(text)
