"""Carrying out one ``%sql``/``%%sql`` command: plain functions over a session, no IPython.

The magic (:mod:`sqlnb.magics`) parses its line into a :class:`Command`, calls
:func:`execute` and displays the :class:`Outcome`. A command that cannot be
carried out as written raises :class:`CommandError`, which the magic shows as
IPython's ``UsageError``; SQL and connection errors are the engine's own.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlnb import _sql, export
from sqlnb import errors as _errors
from sqlnb import interactive
from sqlnb.connection import Connection, strictest_mode
from sqlnb.notebook import browse as _browse
from sqlnb.notebook import cell as _cell
from sqlnb.notebook import display
from sqlnb.notebook import explore
from sqlnb.notebook import look as _look
from sqlnb.notebook import saved as _saved
from sqlnb.notebook import pyframes
from sqlnb.notebook import functions as _functions
from sqlnb.notebook.session import Session

_VAR = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)$")  # --connect :name (the magic's syntax, not SQL)


class CommandError(Exception):
    """A command that cannot be carried out as written (the options contradict, a variable is missing)."""


@dataclass(frozen=True)
class Command:
    """One parsed ``%sql``/``%%sql`` invocation."""

    args: object  # the argparse namespace of the options
    sql: str  # the SQL to run (may be empty)
    target: str | None  # a connection to open first (--connect or the URL shorthand)
    out: str | None  # variable to store the result in (-o NAME or NAME <<)
    quiet_out: bool  # NAME << form: store without displaying
    line_offset: int = 0  # editor lines above the SQL (1 in a %%sql cell: the magic's own line)

    @property
    def has_sql(self) -> bool:
        return not _sql.is_blank(self.sql or "")


class Settings(Protocol):
    """The settings a command reads (the magic's ``%config SqlMagic`` traits of the same names)."""

    default_engine: str  # '' = sqlnb's default
    default_mode: str
    busy_timeout: float
    timeout: float  # 0 = none
    strict_quotes: bool
    short_errors: bool
    show_all: bool


@dataclass
class Outcome:
    """What a command shows: ``value`` is the cell's result; ``before`` is displayed first (``--all``)."""

    value: object = None
    before: list = field(default_factory=list)


def target_value(target: str, ns):
    """``--connect :name`` takes the target from Python variable ``name`` (a path, URL or Connection)."""
    m = _VAR.match(target)
    if not m:
        return target
    try:
        value = ns[m.group(1)]
    except KeyError:
        raise CommandError(f"--connect {target}: no Python variable named {m.group(1)!r}") from None
    if isinstance(value, (str, Connection)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise CommandError(f"--connect {target}: expected a path, URL or sqlnb.Connection, "
                       f"got {type(value).__name__}")


def _given(args, names) -> str:
    return ", ".join(f"--{n}" + ("" if getattr(args, n) is True else f" {getattr(args, n)}")
                     for n in names if getattr(args, n) not in (None, False))


def check(cmd: Command):
    """Refuse, before anything runs, a command whose options contradict, do nothing, or cannot
    be carried out; return the checked ``--export`` target ``(path, format)`` or None."""
    args = cmd.args
    if args.append and args.replace:
        raise CommandError("--append and --replace cannot be used together")
    opening = _given(args, ("alias", "engine", "mode"))
    if opening and cmd.target is None:
        raise CommandError(f"{opening}: applies to a line that opens a connection (a URL, :memory: or "
                           f"--connect PATH), and this line opens none")
    for name in ("timeout", "limit"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise CommandError(f"--{name} {value:g}: must be 0 or more")
    if args.save and (cmd.out or args.export or args.persist or args.plan or args.all):
        raise CommandError(f"--save {args.save} keeps the query without running it: -o, --export, "
                           f"--persist, --plan and --all have nothing to act on")
    if args.save and not cmd.has_sql:
        raise CommandError(f"--save {args.save}: there is no SQL on this line or in the cell to save")
    if args.tables and args.columns:
        raise CommandError(f"--tables and --columns {args.columns} show different listings: one per line")
    persisting = _given(args, ("table", "append", "replace", "index"))
    if persisting and not args.persist:
        raise CommandError(f"{persisting}: applies to --persist DF, which this line does not give")
    if args.format is not None and not args.export:
        raise CommandError(f"--format {args.format}: applies to --export PATH, which this line does not give")
    listing = args.tables or args.columns or args.connections or args.snippets
    if args.export and not cmd.has_sql:
        raise CommandError(f"--export {args.export}: there is no SQL on this line whose result could be written")
    if cmd.out and not cmd.has_sql and not listing:
        said = f"{cmd.out} <<" if cmd.quiet_out else f"-o {cmd.out}"
        raise CommandError(f"{said}: there is no SQL on this line whose result could be stored")
    if args.plan and not cmd.has_sql:
        raise CommandError("--plan needs the SQL to explain")
    return check_export(args.export, args.format) if args.export else None


def check_export(path: str, fmt: str | None) -> tuple[Path, str]:
    """``--export PATH [--format FMT]``, checked before the SQL runs: ``(path, format)``.

    The extension decides the format; ``--format`` only where the extension does not say,
    so ``out.csv --format parquet`` is refused rather than writing Parquet into ``out.csv``.
    """
    where = f"--export {path}" + (f" --format {fmt}" if fmt else "")
    try:
        from_ext = export.format_for(path)
    except ValueError:
        from_ext = None
    try:
        chosen = export.format_for(path, fmt) if fmt else from_ext
    except ValueError as exc:
        raise CommandError(f"{where}: {exc}") from None
    if from_ext is not None and chosen != from_ext:
        raise CommandError(f"{where}: the extension says {from_ext}: drop --format, or name the "
                           f"file {Path(path).stem}.{chosen}")
    if chosen is None:
        raise CommandError(f"{where}: cannot tell the format from the file name: add --format "
                           f"({', '.join(sorted(export.FORMATS))})")
    checker = getattr(export, "check_target", None)  # the exporter's own check, where it has one
    if checker is not None:
        try:
            return checker(path, chosen)
        except Exception as exc:  # noqa: BLE001 - any refusal becomes the one usage line
            raise CommandError(f"{where}: {exc}") from None
    # LOCAL FALLBACK until sqlnb.export.check_target exists: the directory must exist
    target = Path(os.path.expanduser(path))
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise CommandError(f"{where}: directory {str(parent)!r} does not exist")
    if target.is_dir():
        raise CommandError(f"{where}: is a directory")
    return target, chosen


def execute(cmd: Command, session: Session, settings: Settings, ns, user_ns) -> Outcome:
    """Carry out ``cmd``: checks first, connections, then listings, ``--persist``, and the SQL.

    :param ns: where Python values come from (``:name`` parameters, ``--persist DF``).
    :param user_ns: where results are stored (``--out``, ``_sqlnb_results``).
    """
    args = cmd.args
    result = None
    target = check(cmd)
    frame = persist_frame(args, ns) if args.persist else None
    if cmd.target is not None:
        open_target(session, settings, target_value(cmd.target, ns), args)
    if args.close:
        session.close(args.close)
        print(f"closed {args.close}" + (f"; current: {session.current}" if session.current else ""))
    if args.use:
        session.use(args.use)
    if getattr(args, "function", None):
        print(_functions.register_from_namespace(args.function, ns))
    if args.connections:
        result = connections(session)
    if frame is not None:
        persist(session.get(), args, frame)
    if args.tables:
        result = explore.tables(session.get())
    if args.columns:
        result = explore.describe(session.get(), args.columns)
    if args.delete:
        session.saved.delete(args.delete)
        print(f"deleted saved query {args.delete}")
    if args.save:
        deps = session.saved.save(args.save, cmd.sql, session.get())
        print(f"saved query {args.save}" + (f" (uses {', '.join(deps)})" if deps else "")
              + f": use it as a table, SELECT … FROM {args.save}")
        return Outcome()
    if args.snippets:
        result = snippets(session)
    if args.browse:
        try:
            return Outcome(_browse.from_command(session.get(), cmd.sql, limit=args.limit, timeout=args.timeout))
        except _browse.BrowseError as exc:
            raise CommandError(str(exc)) from None
    if args.interactive and not (cmd.sql or "").strip():
        raise CommandError("--interactive shows the result of a query: give the SQL")
    if args.interactive and not interactive.available():
        raise CommandError("--interactive needs the 'itables' package: pip install 'sqlnb[interactive]'")
    sql = cmd.sql or ""
    if getattr(args, "approx", False) and not getattr(args, "profile", False):
        raise CommandError("--approx goes with --profile (%sql --profile --approx flights)")
    if getattr(args, "profile", False):
        if not sql.strip():
            raise CommandError("--profile needs a table, view or SELECT to profile (%sql --profile flights)")
        result = _look.run_profile(session.get(), sql.strip(), sample=args.limit, timeout=args.timeout,
                                   approx=getattr(args, "approx", False))
        if cmd.out:
            user_ns[cmd.out] = result
        return Outcome(None if cmd.quiet_out else result)
    if args.plan:
        return Outcome(explore.plan(session.get(), expanded_text(session, cmd.sql), ns))
    before = []
    if cmd.has_sql:
        result, before = run_sql(cmd, session.get(), settings, ns, user_ns, target, session.saved)
    elif cmd.out and result is not None:
        user_ns[cmd.out] = result
    if cmd.target is not None and result is None and not cmd.has_sql:
        con = session.get()
        print(f"connected: {session.current} · {con.engine} {con.sqlite_version} · {con.url} · "
              f"{con.policy_summary}")
    if args.interactive and result is not None and not cmd.quiet_out:
        import pandas as pd  # itables renders plain DataFrames (a SqlResult is one, sharing its data)

        interactive.show(pd.DataFrame(result, copy=False),
                         caption=display.footer_text(result, getattr(result, "sqlnb", None)))
        return Outcome(None, before)
    if cmd.quiet_out:
        return Outcome()
    return Outcome(result, before)


def open_target(session: Session, settings: Settings, target, args) -> None:
    """Open ``target`` (a path or URL) or adopt it (an open Connection), and make it current."""
    if isinstance(target, Connection):
        if args.engine or args.mode:
            raise CommandError("--engine and --mode are fixed when a Connection is opened; "
                               "an existing Connection is adopted as it is")
        session.adopt(target, alias=args.alias)
        return
    session.open(target, alias=args.alias, engine=args.engine or settings.default_engine or None,
                 mode=strictest_mode(args.mode, settings.default_mode), timeout=settings.busy_timeout,
                 statement_timeout=settings.timeout or None, strict_quotes=settings.strict_quotes)


def connections(session: Session):
    """The session's connections as a displayable result (``--connections``)."""
    import pandas as pd

    df = pd.DataFrame(session.rows(), columns=["alias", "current", "engine", "version", "url", "policy"])
    return display.wrap(df, None)


def persist_frame(args, ns):
    """The DataFrame ``--persist DF`` names (checked before anything runs)."""
    try:
        df = ns[args.persist]
    except KeyError:
        raise CommandError(f"--persist {args.persist}: no Python variable named {args.persist!r}") from None
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise CommandError(f"--persist {args.persist}: expected a pandas DataFrame, got {type(df).__name__}")
    return df


def persist(con, args, df) -> None:
    """``--persist DF``: write the DataFrame to a table (``Connection.to_table``), within
    ``--timeout`` when given; ``--index`` keeps the index as columns."""
    if args.index:
        df = df.reset_index()
    table = args.table or args.persist
    if_exists = "append" if args.append else "replace" if args.replace else "fail"
    with _timeout(con, args.timeout):
        con.to_table(df, table, if_exists=if_exists)
    rows = f"{len(df):,} row{'s' if len(df) != 1 else ''}"
    done = {"fail": f"created table {table}: {rows}", "replace": f"replaced table {table}: {rows}",
            "append": f"appended {rows} to table {table}"}[if_exists]
    print(done)


class _timeout:
    """``con.statement_timeout`` set for one step, restored after (None: left as it is)."""

    def __init__(self, con, seconds):
        self.con, self.seconds = con, seconds

    def __enter__(self):
        if self.seconds is not None:
            self.old = self.con.statement_timeout
            self.con.statement_timeout = self.seconds

    def __exit__(self, *exc):
        if self.seconds is not None and not self.con.closed:
            self.con.statement_timeout = self.old


def snippets(session: Session):
    """The saved queries as a displayable result (``--snippets``)."""
    import pandas as pd

    df = pd.DataFrame(session.saved.rows(), columns=["name", "uses", "sql"])
    return display.wrap(df, None)


def expanded_text(session: Session, sql: str) -> str:
    """``sql`` (one statement) with the saved queries it uses expanded (for ``--plan``)."""
    x = session.saved.expand(sql, session.get()) if session.saved else None
    return sql if x is None else x.text


def saved_expander(saved, con, sql: str):
    """What :func:`sqlnb.notebook.cell.run_cell` needs to run ``sql`` through saved queries,
    or None when ``sql`` names none of them (the cell then runs exactly as written)."""
    if not saved or not saved.refs(sql):
        return None
    return (lambda text: saved.expand(text, con),
            lambda exc, x, text: _saved.explain(exc, x, text, saved),
            _saved.split_statements)


def run_sql(cmd: Command, con, settings: Settings, ns, user_ns, target=None, saved=None):
    """Run the command's SQL; ``(last result, earlier results to display first)``.

    Every statement's result is kept (``.results`` of the last, ``_sqlnb_results``);
    ``--out`` stores the last, ``--export`` writes it to ``target`` (checked beforehand).
    """
    args = cmd.args
    with pyframes.serving(con, cmd.sql, ns) as served:   # names that are frames in Python (replacement scans)
        run = _cell.run_cell(con, cmd.sql, ns, limit=args.limit, timeout=args.timeout,
                             short_errors=settings.short_errors, frame_class=display.SqlResult,
                             line_offset=cmd.line_offset, expand=saved_expander(saved, con, cmd.sql))
    if served:
        print(pyframes.footer(con, served))
    if not run.frames:
        if target is not None:
            raise CommandError(f"--export {args.export}: the SQL ran and gave no result to write; "
                               f"nothing was written")
        return None, []
    earlier = [display.wrap(df, info) for df, info in zip(run.frames[:-1], run.infos[:-1])]
    last = display.wrap(run.frames[-1], run.infos[-1], earlier)
    if target is not None and not run.infos[-1].has_columns:
        raise CommandError(f"--export {args.export}: the last statement ({run.infos[-1].keyword}) ran and "
                           f"returns no rows to write; nothing was written")
    user_ns["_sqlnb_results"] = [*earlier, last]
    if cmd.out:
        user_ns[cmd.out] = last
    if target is not None:
        export_result(last, *target)
    shown = (args.all or settings.show_all) and not cmd.quiet_out
    return last, (earlier if shown else [])


_EXPORT_ERRORS = (OSError, ValueError, TypeError, ImportError, _errors.Error)


def export_result(df, path, fmt) -> None:
    """Write ``df`` and say what was written: rows, path, format, and whether a file was replaced."""
    path = Path(path)
    existed = path.exists()
    try:
        written = export.write_result(df, path, format=fmt)
    except _EXPORT_ERRORS + tuple(getattr(export, n) for n in ("ExportError",) if hasattr(export, n)) as exc:
        raise CommandError(f"--export {path}: {' '.join(str(exc).split())} (the SQL ran; nothing was "
                           f"written)") from None
    rows = getattr(written, "rows", len(df))
    replaced = getattr(written, "replaced", existed)
    print(f"exported {rows:,} row{'s' if rows != 1 else ''} to {getattr(written, 'path', path)} "
          f"({getattr(written, 'format', fmt)}{', replaced an existing file' if replaced else ''})")


def add_hints(exc, session: Session) -> None:
    """What the user can do next, added to an error's one line: a transaction this cell left
    open; a busy database's wait, which the magic sets (``%config SqlMagic.busy_timeout``)."""
    hints = []
    text = getattr(exc, "sqlnb_message", None) or f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    busy_hint = "%config SqlMagic.busy_timeout = SECONDS waits longer"
    replaced = False
    if isinstance(exc, _errors.BusyError):
        # the library's words name connect(timeout=...); the magic opens its connections itself
        replaced = "connect(timeout=...)" in text
        if replaced:
            text = text.replace("connect(timeout=...)", busy_hint)
        else:
            hints.append(busy_hint)
    try:
        con = session.get()
        open_tx = not con.closed and con.in_transaction
    except _errors.Error:
        open_tx = False
    if open_tx:
        hints.append("a transaction is still open on this connection: COMMIT or ROLLBACK")
    if not hints and not replaced:
        return
    exc.sqlnb_message = text + "".join("; " + h for h in hints)
    if hasattr(exc, "_render_traceback_"):
        _cell.show_in_one_line(exc, exc.sqlnb_message)
    elif hasattr(exc, "add_note"):
        exc.add_note("sqlnb: " + "; ".join(hints or [busy_hint]))
