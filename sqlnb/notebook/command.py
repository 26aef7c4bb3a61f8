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
from typing import Protocol

from sqlnb import export
from sqlnb.connection import Connection, strictest_mode
from sqlnb.notebook import cell as _cell
from sqlnb.notebook import display
from sqlnb.notebook import explore
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


def execute(cmd: Command, session: Session, settings: Settings, ns, user_ns) -> Outcome:
    """Carry out ``cmd``: connections first, then listings, ``--persist``, and the SQL.

    :param ns: where Python values come from (``:name`` parameters, ``--persist DF``).
    :param user_ns: where results are stored (``--out``, ``_sqlnb_results``).
    """
    args = cmd.args
    result = None
    if args.append and args.replace:
        raise CommandError("--append and --replace cannot be used together")
    if (args.alias or args.engine or args.mode) and cmd.target is None:
        raise CommandError("--alias, --engine and --mode apply when opening a connection: "
                           "add --connect TARGET (or give the URL)")
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
    if args.persist:
        result = persist(session, args, ns)
    if args.tables:
        result = explore.tables(session.get())
    if args.columns:
        result = explore.describe(session.get(), args.columns)
    sql = cmd.sql or ""
    if args.plan:
        if not sql.strip():
            raise CommandError("--plan needs the SQL to explain")
        return Outcome(explore.plan(session.get(), sql, ns))
    before = []
    if sql.strip():
        result, before = run_sql(cmd, session.get(), settings, ns, user_ns)
    elif cmd.out and result is not None:
        user_ns[cmd.out] = result
    if cmd.target is not None and result is None and not sql.strip():
        con = session.get()
        print(f"connected: {session.current} · {con.engine} {con.sqlite_version} · {con.url} · "
              f"{con.policy_summary}")
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


def persist(session: Session, args, ns) -> None:
    """``--persist DF``: write the DataFrame in variable ``DF`` to a table (``Connection.to_table``)."""
    try:
        df = ns[args.persist]
    except KeyError:
        raise CommandError(f"--persist {args.persist}: no Python variable named {args.persist!r}") from None
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise CommandError(f"--persist {args.persist}: expected a pandas DataFrame, got {type(df).__name__}")
    table = args.table or args.persist
    if_exists = "append" if args.append else "replace" if args.replace else "fail"
    session.get().to_table(df, table, if_exists=if_exists)
    print(f"persisted {len(df):,} rows to {table} ({if_exists})")


def run_sql(cmd: Command, con, settings: Settings, ns, user_ns):
    """Run the command's SQL; ``(last result, earlier results to display first)``.

    Every statement's result is kept (``.results`` of the last, ``_sqlnb_results``);
    ``--out`` stores the last, ``--export`` writes it.
    """
    args = cmd.args
    run = _cell.run_cell(con, cmd.sql, ns, limit=args.limit, timeout=args.timeout,
                         short_errors=settings.short_errors, frame_class=display.SqlResult)
    if not run.frames:
        return None, []
    earlier = [display.wrap(df, info) for df, info in zip(run.frames[:-1], run.infos[:-1])]
    last = display.wrap(run.frames[-1], run.infos[-1], earlier)
    user_ns["_sqlnb_results"] = last.results
    if cmd.out:
        user_ns[cmd.out] = last
    if args.export:
        export.write_result(last, args.export, format=args.format)
    shown = (args.all or settings.show_all) and not cmd.quiet_out
    return last, (earlier if shown else [])
