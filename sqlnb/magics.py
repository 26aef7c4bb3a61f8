"""The ``%sql`` / ``%%sql`` magics: parse the line, build a command, call plain functions, display.

No SQL logic lives here: statements run in :mod:`sqlnb._cell`, connections are
kept by :mod:`sqlnb._session`, results render in :mod:`sqlnb.display`,
exploration is :mod:`sqlnb.explore`, completion :mod:`sqlnb.completion`.
"""
from __future__ import annotations

import os
import re
from collections import ChainMap
from dataclasses import dataclass

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, observe, validate

from sqlnb import _cell, _session, display, explore
from sqlnb import errors as _errors
from sqlnb.connection import Connection, strictest_mode

_OUT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*<<(.*)$", re.S)
_TOKEN = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\S+")


@dataclass(frozen=True)
class Command:
    """One parsed ``%sql``/``%%sql`` invocation."""

    args: object  # the argparse namespace of the options
    sql: str  # the SQL to run (may be empty)
    target: str | None  # a connection to open first (--connect or the URL shorthand)
    out: str | None  # variable to store the result in (-o NAME or NAME <<)
    quiet_out: bool  # NAME << form: store without displaying


def split_line(line: str, parser) -> tuple[str, str]:
    """Split a magic line into (options text, the rest).

    Options end at the first token that does not start with ``-``, or at a lone
    ``--``; the rest is returned untouched (it is SQL, or ``NAME <<``, or a URL).
    """
    if not line.lstrip().startswith("-"):
        return "", line
    takes_value = _takes_value(parser)
    pos = 0
    for m in _TOKEN.finditer(line):
        tok = m.group(0)
        if pos > m.start():  # consumed as the previous option's value
            continue
        if tok == "--":
            return line[:m.start()], line[m.end():]
        if not tok.startswith("-") or tok == "-":
            return line[:m.start()], line[m.start():]
        name = tok.split("=", 1)[0]
        pos = m.end()
        if takes_value.get(name) and "=" not in tok:
            nxt = _TOKEN.search(line, m.end())
            if nxt is not None:
                pos = nxt.end()
    return line[:pos] if pos else line, line[pos:] if pos else ""


_TAKES_VALUE: dict = {}


def _takes_value(parser) -> dict:
    """{option string: whether it takes a value} of ``parser`` (computed once)."""
    key = id(parser)
    if key not in _TAKES_VALUE:
        _TAKES_VALUE[key] = {opt: action.nargs != 0 for action in parser._actions
                             for opt in action.option_strings}
    return _TAKES_VALUE[key]


def build_command(args, rest: str, cell: str | None) -> Command:
    target = args.connect
    out = args.out
    quiet = False
    rest_stripped = rest.strip()
    if cell is None:
        m = _OUT.match(rest) if "<<" in rest else None
        if m:
            out, quiet, rest_stripped = m.group(1), True, m.group(2).strip()
        if rest_stripped and target is None and _session.looks_like_target(rest_stripped):
            target, rest_stripped = rest_stripped, ""
        sql = rest_stripped
    else:
        m = _OUT.match(rest) if "<<" in rest else None
        if m:
            out, quiet, rest_stripped = m.group(1), True, m.group(2).strip()
        if rest_stripped:
            if target is None and _session.looks_like_target(rest_stripped):
                target = rest_stripped
            else:
                raise UsageError(
                    f"unexpected text on the %%sql line: {rest_stripped!r} (options go on the first "
                    f"line, SQL in the cell body; a URL opens a connection; NAME << stores the result)")
        sql = cell
    return Command(args=args, sql=sql, target=target, out=out, quiet_out=quiet)


_VAR = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)$")


def _target_value(target: str, ns):
    """``--connect :name`` takes the target from Python variable ``name`` (a path, URL or Connection)."""
    m = _VAR.match(target)
    if not m:
        return target
    try:
        value = ns[m.group(1)]
    except KeyError:
        raise UsageError(f"--connect {target}: no Python variable named {m.group(1)!r}") from None
    if isinstance(value, (str, Connection)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise UsageError(f"--connect {target}: expected a path, URL or sqlnb.Connection, "
                     f"got {type(value).__name__}")


def _short(exc, short: bool):
    if short and not hasattr(exc, "_render_traceback_"):
        text = getattr(exc, "sqlnb_message", None) or f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        exc._render_traceback_ = _cell._short_renderer(text)


@magics_class
class SqlMagic(Magics):
    """sqlnb's SQL magics (``%config SqlMagic`` lists the settings)."""

    display_max_rows = Int(20, help="Rows shown of a result (the first and last half); the full "
                           "result is always kept. 0 shows all.").tag(config=True)
    display_max_cols = Int(30, help="Columns shown of a result (the first and last half). 0 shows all."
                           ).tag(config=True)
    display_max_chars = Int(200, help="Characters shown of one value before it is cut with '…'."
                            ).tag(config=True)
    show_timing = Bool(True, help="Under a multi-statement cell, show each statement's time and "
                       "row count.").tag(config=True)
    show_all = Bool(False, help="Display every statement's result of a cell, not only the last "
                    "(all are kept either way: .results, _sqlnb_results).").tag(config=True)
    default_engine = Unicode("", help="Engine for new connections when neither --engine nor the URL "
                             "names one: sqlite, bdb or system ('' = sqlnb's default).").tag(config=True)
    default_mode = Enum(["rw", "ro", "ro-scratch"], "rw", help="Mode for new connections: the least "
                        "strict they get (--mode and a URL's ?mode= may only make it stricter).").tag(config=True)
    short_errors = Bool(True, help="Show a failing statement as one line (class, statement number, "
                        "line, SQLite's message) instead of a Python traceback. The cell still "
                        "fails.").tag(config=True)
    timeout = Float(0.0, help="Default per-statement time limit in seconds for new connections "
                    "(0 = none); --timeout overrides it for one run.").tag(config=True)
    busy_timeout = Float(5.0, help="Seconds to wait on a database locked by another connection."
                         ).tag(config=True)
    strict_quotes = Bool(False, help="New connections read double-quoted strings as identifiers only "
                         "(SQLite's recommendation; the sqlite3 shell's default since 3.41). False: a "
                         "double-quoted string naming no column is a string literal, as the stdlib reads "
                         "it. Not available on the bdb engine, nor on the system engine before Python "
                         "3.12.").tag(config=True)
    autocomplete = Bool(True, help="Complete table, column and keyword names inside %%sql cells "
                        "and after %sql.").tag(config=True)

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self.session = _session.Session()
        self._default_args = None
        self._sync_display()

    # --- traits ----------------------------------------------------------------------
    @validate("default_engine")
    def _check_engine(self, proposal):
        value = proposal["value"]
        from sqlnb.connection import ENGINES

        if value and value not in ENGINES:
            raise TraitError(f"default_engine must be one of {', '.join(ENGINES)} or '', not {value!r}")
        return value

    @validate("display_max_rows", "display_max_cols", "display_max_chars", "timeout", "busy_timeout")
    def _check_nonnegative(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(f"{proposal['trait'].name} must be >= 0")
        return proposal["value"]

    @observe("display_max_rows", "display_max_cols", "display_max_chars", "show_timing")
    def _on_display(self, change):
        self._sync_display()

    def _sync_display(self):
        display.OPTIONS.max_rows = self.display_max_rows
        display.OPTIONS.max_cols = self.display_max_cols
        display.OPTIONS.max_chars = self.display_max_chars
        display.OPTIONS.show_timing = self.show_timing

    # --- the magic ---------------------------------------------------------------------
    @no_var_expand
    @needs_local_scope
    @magic_arguments()
    @argument("-c", "--connect", metavar="TARGET",
              help="Open a connection: a path, :memory:, or a URL (sqlite:///path, bdb:///path, "
                   "system:///path, lsm:///file.lsm?table=..&key_type=..), and make it current. "
                   "A lone URL or :memory: as the whole line does the same. --connect :name takes "
                   "the path, URL or sqlnb.Connection from Python variable name.")
    @argument("-a", "--alias", metavar="NAME",
              help="Name of the connection being opened (default: the file's stem).")
    @argument("-e", "--engine", choices=["sqlite", "bdb", "system"],
              help="Engine of the connection being opened (default: the URL's scheme, else "
                   "SqlMagic.default_engine).")
    @argument("-m", "--mode", choices=["rw", "ro", "ro-scratch"],
              help="Mode of the connection being opened; the strictest of this, SqlMagic.default_mode "
                   "and the URL's ?mode= wins (rw < ro-scratch < ro).")
    @argument("--use", metavar="NAME", help="Switch the current connection to NAME.")
    @argument("-l", "--connections", action="store_true",
              help="List the open connections: alias, engine, version, URL (secrets hidden), mode.")
    @argument("--close", metavar="NAME", help="Close connection NAME.")
    @argument("-t", "--timeout", type=float, metavar="SECONDS",
              help="Time limit for each statement of this run (QueryTimeoutError when exceeded).")
    @argument("-n", "--limit", type=int, metavar="N", help="Fetch at most N rows of each result.")
    @argument("-o", "--out", metavar="NAME", help="Also store the (last) result in variable NAME.")
    @argument("--all", action="store_true", help="Display every statement's result, not only the last.")
    @argument("--persist", metavar="DF",
              help="Write the DataFrame in variable DF to a table (named DF unless --table).")
    @argument("--table", metavar="NAME", help="Table name for --persist.")
    @argument("--append", action="store_true", help="--persist appends to an existing table.")
    @argument("--replace", action="store_true", help="--persist replaces an existing table.")
    @argument("--export", metavar="PATH",
              help="Write the (last) result to a file: CSV, Parquet, JSON lines or Arrow IPC.")
    @argument("--format", metavar="FMT",
              help="Format for --export (csv, parquet, jsonl, arrow); default from the extension.")
    @argument("--tables", action="store_true",
              help="List tables and views of every attached database (with lsm1 details).")
    @argument("--columns", "--describe", metavar="TABLE", dest="columns",
              help="Show TABLE's columns, types, indexes and foreign keys.")
    @argument("--plan", action="store_true",
              help="Show the EXPLAIN QUERY PLAN of the SQL as an indented tree instead of running it.")
    @line_cell_magic
    def sql(self, line="", cell=None, local_ns=None):
        """Run SQL on an sqlnb connection; Python values enter only as bound parameters.

        Line form ``%sql [options] [SQL]``, cell form ``%%sql [options]`` with
        the SQL in the cell body (any number of statements; comments anywhere).

        Connections::

            %sql sqlite:///flights.db          # open (also :memory:, bdb:///, system:///, lsm:///)
            %sql --connect data.db --alias d --mode ro
            %sql --use d                       # switch;  %sql --connections  # list;  %sql --close d

        Queries and results::

            %sql SELECT * FROM flights WHERE carrier = :carrier   # carrier from Python
            df = %sql SELECT ...               # a DataFrame (the whole result)
            %sql -o df SELECT ...              # store in df and display
            %sql df << SELECT ...              # store in df quietly
            %%sql --limit 1000 --timeout 5     # cap the fetch; per-statement time limit

        Parameters ``:name``, ``$name`` and ``@name`` are bound from the Python
        namespace (never pasted into the SQL); SQLite's parser decides what is a
        parameter, so ``':1'`` in strings, slices and comments are left alone.
        Each statement's result is kept (``.results``, ``_sqlnb_results``); the
        last is displayed. A failing statement stops the cell with one line
        naming the statement and its line.

        Exploration: ``--tables``, ``--columns TABLE``, ``--plan``.
        Files and tables: ``--export out.parquet``, ``--persist df --table t --replace``.
        Settings: ``%config SqlMagic`` (display limits, default engine/mode,
        short errors, timeout, ...); see docs/magics.md.
        """
        try:
            return self._sql(line, cell, local_ns)
        except _cell.SHORT_ERRORS as exc:
            _short(exc, self.short_errors)
            raise

    def _sql(self, line, cell, local_ns):
        parser = self.sql.parser
        opts, rest = split_line(line, parser)
        try:
            # no options: the parser's defaults, without running argparse for every query
            args = self._defaults() if not opts.strip() else parse_argstring(self.sql, opts)
        except UsageError:
            raise
        except ValueError as exc:  # unbalanced quotes in the options
            raise UsageError(f"could not parse the options {opts!r}: {exc}") from None
        cmd = build_command(args, rest, cell)
        ns = ChainMap(local_ns, self.shell.user_ns) if local_ns is not None else self.shell.user_ns
        return self.execute(cmd, ns)

    def _defaults(self):
        # shared by every call without options: nothing downstream assigns to the parsed args
        if self._default_args is None:
            self._default_args = parse_argstring(self.sql, "")
        return self._default_args

    def execute(self, cmd: Command, ns):
        """Carry out a parsed command; returns what the cell should show."""
        args = cmd.args
        result = None
        if args.append and args.replace:
            raise UsageError("--append and --replace cannot be used together")
        if (args.alias or args.engine or args.mode) and cmd.target is None:
            raise UsageError("--alias, --engine and --mode apply when opening a connection: "
                             "add --connect TARGET (or give the URL)")
        if cmd.target is not None:
            target = _target_value(cmd.target, ns)
            if isinstance(target, Connection):
                if args.engine or args.mode:
                    raise UsageError("--engine and --mode are fixed when a Connection is opened; "
                                     "an existing Connection is adopted as it is")
                self.session.adopt(target, alias=args.alias)
            else:
                self.session.open(target, alias=args.alias,
                                  engine=args.engine or self.default_engine or None,
                                  mode=strictest_mode(args.mode, self.default_mode), timeout=self.busy_timeout,
                                  statement_timeout=self.timeout or None, strict_quotes=self.strict_quotes)
        if args.close:
            self.session.close(args.close)
            print(f"closed {args.close}" + (f"; current: {self.session.current}" if self.session.current else ""))
        if args.use:
            self.session.use(args.use)
        if args.connections:
            result = self._connections()
        if args.persist:
            result = self._persist(args, ns)
        if args.tables:
            result = explore.tables(self.session.get())
        if args.columns:
            result = explore.describe(self.session.get(), args.columns)
        sql = cmd.sql or ""
        if args.plan:
            if not sql.strip():
                raise UsageError("--plan needs the SQL to explain")
            return explore.plan(self.session.get(), sql, ns)
        if sql.strip():
            result = self._run_sql(cmd, sql, ns)
        elif cmd.out and result is not None:
            ns_set = self.shell.user_ns
            ns_set[cmd.out] = result
        if cmd.target is not None and result is None and not sql.strip():
            alias = self.session.current
            con = self.session.get()
            print(f"connected: {alias} · {con.engine} {con.sqlite_version} · {con.url} · {con.policy_summary}")
        if cmd.quiet_out:
            return None
        return result

    def _connections(self):
        import pandas as pd

        rows = self.session.rows()
        df = pd.DataFrame(rows, columns=["alias", "current", "engine", "version", "url", "policy"])
        return display.wrap(df, None)

    def _persist(self, args, ns):
        try:
            df = ns[args.persist]
        except KeyError:
            raise UsageError(f"--persist {args.persist}: no Python variable named {args.persist!r}") from None
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise UsageError(f"--persist {args.persist}: expected a pandas DataFrame, got {type(df).__name__}")
        table = args.table or args.persist
        if_exists = "append" if args.append else "replace" if args.replace else "fail"
        con = self.session.get()
        con.to_table(df, table, if_exists=if_exists)
        print(f"persisted {len(df):,} rows to {table} ({if_exists})")
        return None

    def _run_sql(self, cmd, sql, ns):
        args = cmd.args
        con = self.session.get()
        run = _cell.run_cell(con, sql, ns, limit=args.limit, timeout=args.timeout,
                             short_errors=self.short_errors, frame_class=display.SqlResult)
        if not run.frames:
            return None
        earlier = [display.wrap(df, info) for df, info in zip(run.frames[:-1], run.infos[:-1])]
        last = display.wrap(run.frames[-1], run.infos[-1], earlier)
        results = last.results
        user_ns = self.shell.user_ns
        user_ns["_sqlnb_results"] = results
        if cmd.out:
            user_ns[cmd.out] = last
        if args.export:
            from sqlnb import export

            export.write_result(last, args.export, format=args.format)
        if (args.all or self.show_all) and not cmd.quiet_out:
            from IPython.display import display as ipy_display

            for r in results[:-1]:
                ipy_display(r)
        return last


def _help_text() -> str:
    """The full ``%sql?`` help (docstring + options), for docs and tests."""
    return SqlMagic.sql.__doc__


def load_ipython_extension(ipython):
    magics = SqlMagic(shell=ipython)
    ipython.register_magics(magics)
    from sqlnb import completion

    completion.install(ipython, magics)
    ipython._sqlnb_magics = magics


def unload_ipython_extension(ipython):
    magics = getattr(ipython, "_sqlnb_magics", None)
    from sqlnb import completion

    completion.uninstall(ipython)
    if magics is not None:
        magics.session.close_all()
        del ipython._sqlnb_magics


__all__ = ["SqlMagic", "Command", "split_line", "build_command", "load_ipython_extension",
           "unload_ipython_extension"]
