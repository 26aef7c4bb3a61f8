"""The ``%sql`` / ``%%sql`` magics: parse the line, build a command, call plain functions, display.

No SQL logic lives here: :mod:`sqlnb.notebook.command` carries a :class:`Command`
out over the connections of :mod:`sqlnb.notebook.session`; statements run in
:mod:`sqlnb.notebook.cell`, results render in :mod:`sqlnb.notebook.display`,
exploration is :mod:`sqlnb.notebook.explore`, completion :mod:`sqlnb.notebook.completion`.
"""
from __future__ import annotations

import re
from collections import ChainMap

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display as ipy_display
from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, observe, validate

from sqlnb._consts import ENGINES, MODES
from sqlnb.notebook import cell as _cell
from sqlnb.notebook import completion, display
from sqlnb.notebook import session as _session
from sqlnb.notebook.command import Command, CommandError, execute

# the magic's own command line (not SQL): NAME << ..., and its tokens (quoted or not)
_OUT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*<<(.*)$", re.S)
_TOKEN = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\S+")

#: the magic's options: (option strings, argparse keywords), in the order ``%sql?`` lists them
OPTIONS = (
    (("-c", "--connect"), dict(
        metavar="TARGET",
        help="Open a connection: a path, :memory:, or a URL (sqlite:///path, bdb:///path, "
             "system:///path, lsm:///file.lsm?table=..&key_type=..), and make it current. "
             "A lone URL or :memory: as the whole line does the same. --connect :name takes "
             "the path, URL or sqlnb.Connection from Python variable name.")),
    (("-a", "--alias"), dict(metavar="NAME",
                             help="Name of the connection being opened (default: the file's stem).")),
    (("-e", "--engine"), dict(choices=list(ENGINES),
                              help="Engine of the connection being opened (default: the URL's scheme, "
                                   "else SqlMagic.default_engine).")),
    (("-m", "--mode"), dict(choices=list(MODES),
                            help="Mode of the connection being opened; the strictest of this, "
                                 "SqlMagic.default_mode and the URL's ?mode= wins (rw < ro-scratch < ro).")),
    (("--use",), dict(metavar="NAME", help="Switch the current connection to NAME.")),
    (("-l", "--connections"), dict(action="store_true", help="List the open connections: alias, engine, "
                                                             "version, URL (secrets hidden), mode.")),
    (("--close",), dict(metavar="NAME", help="Close connection NAME.")),
    (("-t", "--timeout"), dict(type=float, metavar="SECONDS", help="Time limit for each statement of this "
                                                                  "run (QueryTimeoutError when exceeded).")),
    (("-n", "--limit"), dict(type=int, metavar="N", help="Fetch at most N rows of each result.")),
    (("-o", "--out"), dict(metavar="NAME", help="Also store the (last) result in variable NAME.")),
    (("--all",), dict(action="store_true", help="Display every statement's result, not only the last.")),
    (("--persist",), dict(metavar="DF", help="Write the DataFrame in variable DF to a table (named DF "
                                             "unless --table).")),
    (("--table",), dict(metavar="NAME", help="Table name for --persist.")),
    (("--append",), dict(action="store_true", help="--persist appends to an existing table.")),
    (("--replace",), dict(action="store_true", help="--persist replaces an existing table.")),
    (("--export",), dict(metavar="PATH", help="Write the (last) result to a file: CSV, Parquet, JSON lines "
                                              "or Arrow IPC.")),
    (("--format",), dict(metavar="FMT", help="Format for --export (csv, parquet, jsonl, arrow); default from "
                                             "the extension.")),
    (("--tables",), dict(action="store_true", help="List tables and views of every attached database (with "
                                                   "lsm1 details).")),
    (("--columns", "--describe"), dict(metavar="TABLE", dest="columns",
                                       help="Show TABLE's columns, types, indexes and foreign keys.")),
    (("--plan",), dict(action="store_true", help="Show the EXPLAIN QUERY PLAN of the SQL as an indented tree "
                                                 "instead of running it.")),
    (("--function",), dict(metavar="NAME", help="Make Python function NAME callable from SQL on every connection "
                                                "(open and opened later); a class with step/finalize: an aggregate "
                                                "(with inverse/value: a window function). See docs/functions.md.")),
)

#: {option string: whether it takes a value} (split_line needs it to find where the options end)
TAKES_VALUE = {opt: kw.get("action") != "store_true" for opts, kw in OPTIONS for opt in opts}


def _with_options(fn):
    """Declare :data:`OPTIONS` on the magic function (IPython's ``@argument``, in order)."""
    for opts, kw in reversed(OPTIONS):
        fn = argument(*opts, **kw)(fn)
    return fn


def split_line(line: str, takes_value=TAKES_VALUE) -> tuple[str, str]:
    """Split a magic line into (options text, the rest).

    Options end at the first token that does not start with ``-``, or at a lone
    ``--``; the rest is returned untouched (it is SQL, or ``NAME <<``, or a URL).
    ``takes_value`` tells which options consume the next token.
    """
    if not line.lstrip().startswith("-"):
        return "", line
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


def build_command(args, rest: str, cell: str | None) -> Command:
    """The :class:`Command` of parsed options ``args``, the rest of the line, and the cell body."""
    target = args.connect
    out = args.out
    quiet = False
    rest_stripped = rest.strip()
    m = _OUT.match(rest) if "<<" in rest else None
    if m:
        out, quiet, rest_stripped = m.group(1), True, m.group(2).strip()
    if cell is None:
        if rest_stripped and target is None and _session.looks_like_target(rest_stripped):
            target, rest_stripped = rest_stripped, ""
        sql = rest_stripped
    else:
        if rest_stripped:
            if target is None and _session.looks_like_target(rest_stripped):
                target = rest_stripped
            else:
                raise UsageError(
                    f"unexpected text on the %%sql line: {rest_stripped!r} (options go on the first "
                    f"line, SQL in the cell body; a URL opens a connection; NAME << stores the result)")
        sql = cell
    return Command(args=args, sql=sql, target=target, out=out, quiet_out=quiet)


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
    default_mode = Enum(list(MODES), "rw", help="Mode for new connections: the least "
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
    @_with_options
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
        except CommandError as exc:
            raise UsageError(str(exc)) from None
        except _cell.SHORT_ERRORS as exc:
            if self.short_errors:
                _cell.shorten(exc)
            raise

    def _sql(self, line, cell, local_ns):
        opts, rest = split_line(line)
        try:
            # no options: the parser's defaults, without running argparse for every query
            args = self._defaults() if not opts.strip() else parse_argstring(self.sql, opts)
        except UsageError:
            raise
        except ValueError as exc:  # unbalanced quotes in the options
            raise UsageError(f"could not parse the options {opts!r}: {exc}") from None
        cmd = build_command(args, rest, cell)
        user_ns = self.shell.user_ns
        ns = ChainMap(local_ns, user_ns) if local_ns is not None else user_ns
        outcome = execute(cmd, self.session, self, ns, user_ns)
        for r in outcome.before:
            ipy_display(r)
        return outcome.value

    def _defaults(self):
        # shared by every call without options: nothing downstream assigns to the parsed args
        if self._default_args is None:
            self._default_args = parse_argstring(self.sql, "")
        return self._default_args


def load_ipython_extension(ipython):
    magics = SqlMagic(shell=ipython)
    ipython.register_magics(magics)
    completion.install(ipython, magics)
    ipython._sqlnb_magics = magics


def unload_ipython_extension(ipython):
    magics = getattr(ipython, "_sqlnb_magics", None)
    completion.uninstall(ipython)
    if magics is not None:
        magics.session.close_all()
        del ipython._sqlnb_magics


__all__ = ["SqlMagic", "Command", "OPTIONS", "split_line", "build_command", "load_ipython_extension",
           "unload_ipython_extension"]
