"""The ``%sql`` / ``%%sql`` magics: parse the line, build a command, call plain functions, display.

No SQL logic lives here: :mod:`sqlnb.notebook.command` carries a :class:`Command`
out over the connections of :mod:`sqlnb.notebook.session`; statements run in
:mod:`sqlnb.notebook.cell`, results render in :mod:`sqlnb.notebook.display`,
exploration is :mod:`sqlnb.notebook.explore`, completion :mod:`sqlnb.notebook.completion`.
"""
from __future__ import annotations

import keyword
import re
import shlex
from collections import ChainMap

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope, no_var_expand
from IPython.core.magic import line_magic
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display as ipy_display
from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, observe, validate

from sqlnb import _sql
from sqlnb._consts import ENGINES, MODES
from sqlnb.notebook import cell as _cell
from sqlnb.notebook import completion, display
from sqlnb.notebook import session as _session
from sqlnb.notebook.command import Command, CommandError, add_hints, execute
from sqlnb.notebook import look as _look

# the magic's own command line (not SQL): NAME << ..., and its tokens (quoted or not)
_OUT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*<<(.*)$", re.S)
_TOKEN = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\S+")

#: the words an SQL statement starts with (SQLite's grammar): after a lone ``--`` they mean SQL
STATEMENT_KEYWORDS = frozenset(
    "ALTER ANALYZE ATTACH BEGIN COMMIT CREATE DELETE DETACH DROP END EXPLAIN INSERT PRAGMA REINDEX "
    "RELEASE REPLACE ROLLBACK SAVEPOINT SELECT UPDATE VACUUM VALUES WITH".split())

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
    (("--format",), dict(metavar="FMT", help="Format for --export (csv, parquet, jsonl, arrow) when the "
                                             "extension does not say.")),
    (("--index",), dict(action="store_true", help="--persist also writes the DataFrame's index as columns.")),
    (("--save",), dict(metavar="NAME", help="Keep the SQL (one query) as saved query NAME, checked but not "
                                            "run; later SQL uses NAME as a table (run as a WITH clause).")),
    (("--snippets",), dict(action="store_true", help="List the saved queries: name, the saved queries "
                                                     "each uses, SQL.")),
    (("--delete",), dict(metavar="NAME", help="Forget saved query NAME.")),
    (("--tables",), dict(action="store_true", help="List tables and views of every attached database (with "
                                                   "lsm1 details).")),
    (("--columns", "--describe"), dict(metavar="TABLE", dest="columns",
                                       help="Show TABLE's columns, types, indexes and foreign keys.")),
    (("--plan",), dict(action="store_true", help="Show the EXPLAIN QUERY PLAN of the SQL as an indented tree "
                                                 "instead of running it.")),
    (("--profile",), dict(action="store_true", help="Profile the table, view or SELECT given (the rest of the "
                                                    "line, or the cell): storage classes, distinct, min/max, "
                                                    "mean/std, quartiles, text lengths, common values, computed "
                                                    "inside SQLite; with --limit N, of the first N rows.")),
    (("--approx",), dict(action="store_true", help="With --profile: every column in ONE scan (a C aggregate): "
                                                   "counts, min/max, mean/std exact; distinct (HyperLogLog), "
                                                   "quartiles (a sample) and common values approximate on big "
                                                   "columns, the footer says which (not on the system engine: "
                                                   "the exact profile).")),
    (("--browse",), dict(action="store_true",
                         help="Browse a table (%sql --browse TABLE) or a query (the rest of the line, or the "
                              "cell body) page by page in an interactive view: page size, next/previous/jump, "
                              "sort, filter; each page is one SQL query, only the page reaches the browser "
                              "(--limit: rows per page, --timeout: each page's limit). See docs/browse.md.")),
    (("--interactive",), dict(action="store_true",
                              help="Show the (last) result in the itables view (sort, search and pages in the "
                                   "browser, the rows sent with the output; needs the interactive extra).")),
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
    ``--``: followed by a statement (``-- SELECT '-n' AS x``) the ``--`` only ends the
    options; followed by anything else it is an SQL comment and stays in the rest
    (``%sql -- note`` runs nothing). The rest is returned untouched (it is SQL, or
    ``NAME <<``, or a URL).
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
            after = line[m.end():]
            if _sql.first_keyword(after) in STATEMENT_KEYWORDS or not after.strip():
                return line[:m.start()], after
            return line[:m.start()], line[m.start():]  # an SQL comment: it stays
        if tok.startswith("---"):  # a comment written with more dashes
            return line[:m.start()], line[m.start():]
        if not tok.startswith("-") or tok == "-":
            return line[:m.start()], line[m.start():]
        name = tok.split("=", 1)[0]
        pos = m.end()
        if takes_value.get(name) and "=" not in tok:
            nxt = _TOKEN.search(line, m.end())
            if nxt is not None:
                pos = nxt.end()
    return line[:pos] if pos else line, line[pos:] if pos else ""


def leading_target(rest: str) -> tuple[str | None, str]:
    """``(target, text after it)`` when ``rest`` starts with a connection target (a URL or
    ``:memory:``, quoted or not), else ``(None, rest)``."""
    m = _TOKEN.search(rest)
    if m is None:
        return None, rest
    tok = m.group(0)
    if tok[:1] in "'\"" and len(tok) > 1:
        tok = _unquote(tok)
        if not _session.looks_like_target(tok, spaces=True):
            return None, rest
    elif not _session.looks_like_target(tok):
        return None, rest
    return tok, rest[m.end():]


def _unquote(tok: str) -> str:
    try:
        parts = shlex.split(tok)
    except ValueError:
        return tok
    return parts[0] if len(parts) == 1 else tok


def forgive_target(opts: str, rest: str) -> tuple[str, str, str | None]:
    """A line that opens a connection may give options after the target as well as before:
    ``sqlite:///x.db --alias d --mode ro``. Returns ``(all options, rest, target)``; the
    target is None when the rest does not start with one (the rest is then SQL, untouched)."""
    target, tail = leading_target(rest)
    if target is None:
        return opts, rest, None
    more, after = split_line(tail)
    if after.strip() and not after.lstrip().startswith("--"):
        raise UsageError(
            f"after the connection target {target} only options may follow (--alias, --mode, "
            f"--engine ...), not {after.strip()!r}: run SQL on a line of its own")
    return f"{opts} {more}".strip(), after, target


def out_name(name: str) -> str:
    """``-o NAME`` / ``NAME <<`` must name a Python variable code can reach."""
    if not name.isidentifier() or keyword.iskeyword(name):
        why = "a Python keyword" if keyword.iskeyword(name) else "not a Python variable name"
        raise UsageError(f"-o {name}: {name!r} is {why}; store the result under a name like "
                         f"df or late_flights")
    return name


def build_command(args, rest: str, cell: str | None, target: str | None = None) -> Command:
    """The :class:`Command` of parsed options ``args``, the rest of the line, and the cell body.

    ``target`` is a connection target found at the start of the line (:func:`forgive_target`).
    """
    if target is not None and args.connect is not None:
        raise UsageError(f"two connection targets on one line: --connect {args.connect} and {target}")
    target = args.connect if target is None else target
    out = args.out
    quiet = False
    rest_stripped = rest.strip()
    m = _OUT.match(rest) if "<<" in rest else None
    if m:
        out, quiet, rest_stripped = m.group(1), True, m.group(2).strip()
    if out is not None:
        out_name(out)
    if cell is None:
        if rest_stripped and target is None and _session.looks_like_target(rest_stripped):
            target, rest_stripped = rest_stripped, ""
        sql = rest_stripped
    else:
        if rest_stripped and not _sql.is_blank(rest_stripped):  # (a -- comment on the line is fine)
            if target is None and _session.looks_like_target(rest_stripped):
                target = rest_stripped
            else:
                raise UsageError(
                    f"unexpected text on the %%sql line: {rest_stripped!r} (options go on the first "
                    f"line, SQL in the cell body; a URL opens a connection; NAME << stores the result)")
        sql = cell
    return Command(args=args, sql=sql, target=target, out=out, quiet_out=quiet,
                   line_offset=1 if cell is not None else 0)


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

        Saved queries: ``%%sql --save NAME`` keeps a query; later SQL uses NAME as
        a table; ``--snippets`` lists them, ``--delete NAME`` forgets one.
        Exploration: ``--tables``, ``--columns TABLE``, ``--plan``.
        Files and tables: ``--export out.parquet``, ``--persist df --table t --replace``.
        Settings: ``%config SqlMagic`` (display limits, default engine/mode,
        short errors, timeout, ...); see docs/magics.md. ``%sql --help`` (``-h``)
        shows this help.
        """
        try:
            return self._sql(line, cell, local_ns)
        except CommandError as exc:
            raise UsageError(str(exc)) from None
        except _cell.SHORT_ERRORS as exc:
            if self.short_errors:
                _cell.shorten(exc)
            add_hints(exc, self.session)
            raise

    def _sql(self, line, cell, local_ns):
        opts, rest = split_line(line)
        opts, rest, target = forgive_target(opts, rest)
        args = self._parse(opts)
        if args is None:  # --help
            return None
        cmd = build_command(args, rest, cell, target)
        user_ns = self.shell.user_ns
        ns = ChainMap(local_ns, user_ns) if local_ns is not None else user_ns
        outcome = execute(cmd, self.session, self, ns, user_ns)
        for r in outcome.before:
            ipy_display(r)
        return outcome.value

    @no_var_expand
    @magic_arguments()
    @argument("kind", choices=list(_look.KINDS), help="The plot: histogram, boxplot, bar, pie, line, scatter.")
    @argument("-t", "--table", required=True, metavar="TABLE",
              help="Table or view to plot (a name; quote a SELECT to plot a query).")
    @argument("-c", "--column", required=True, metavar="COLUMN",
              help="The column (the x axis of line and scatter).")
    @argument("-y", "--y", metavar="COLUMN", help="scatter: the vertical axis; line: the column --agg aggregates.")
    @argument("--by", metavar="COLUMN", help="boxplot: one box per value of this column.")
    @argument("--every", choices=["day", "week", "month"], default="day", help="line: the time bucket.")
    @argument("--agg", choices=["count", "sum", "avg", "min", "max"], default="count",
              help="line: what is drawn per bucket (count of rows, or AGG of --y).")
    @argument("-b", "--bins", type=int, default=20, help="histogram: the number of bins (computed in SQL).")
    @argument("--top", type=int, default=10, help="bar, pie: the most common values shown; the rest is 'other'.")
    @argument("-n", "--limit", type=int, metavar="N", help="Plot the first N rows only.")
    @argument("--points", type=int, metavar="N", help="scatter: above N points, a random sample of N "
                                                     "(default 2000).")
    @argument("--timeout", type=float, metavar="SECONDS", help="Time limit for each statement.")
    @argument("--connection", metavar="NAME", help="The connection (default: the current one).")
    @line_magic
    def sqlplot(self, line=""):
        """Plot a column with the aggregation done inside SQLite; returns the matplotlib Axes.

        ``%sqlplot histogram --table flights --column dep_delay --bins 40``,
        ``%sqlplot boxplot -t flights -c dep_delay --by carrier``,
        ``%sqlplot bar -t flights -c carrier --top 8``, ``%sqlplot line -t flights -c time_hour --every week``,
        ``%sqlplot scatter -t flights -c distance -y air_time``. See docs/look.md.
        """
        try:
            args = parse_argstring(self.sqlplot, line)
        except ValueError as exc:  # unbalanced quotes
            raise UsageError(f"could not parse {line!r}: {exc}") from None
        table = args.table  # (IPython's argument splitter keeps a quoted value's quotes)
        if len(table) >= 2 and table[0] == table[-1] and table[0] in "\"'":
            table = table[1:-1]
        try:
            return _look.run_plot(self.session.get(args.connection), args.kind, table=table, column=args.column,
                                  y=args.y, by=args.by, every=args.every, bins=args.bins, top=args.top,
                                  agg=args.agg, sample=args.limit, points=args.points, timeout=args.timeout)
        except (_cell.SHORT_ERRORS + (ValueError,)) as exc:
            if not self.short_errors:
                raise
            raise UsageError(f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None

    def _parse(self, opts: str):
        """The parsed options (quotes removed, as a shell would: ``--table 'my table'``);
        None after showing the help for ``-h``/``--help``."""
        if not opts.strip():  # the parser's defaults, without running argparse for every query
            return self._defaults()
        try:
            argv = shlex.split(opts)
        except ValueError as exc:  # unbalanced quotes in the options
            raise UsageError(f"could not read the options {opts.strip()!r}: {exc} (close the quote)") from None
        if "-h" in argv or "--help" in argv:
            print(self.sql.__doc__)
            return None
        try:
            return self.sql.parser.parse_args(argv)
        except UsageError as exc:  # argparse's words, and where to look
            raise UsageError(f"{exc} (%sql --help lists the options)") from None

    def _defaults(self):
        # shared by every call without options: nothing downstream assigns to the parsed args
        if self._default_args is None:
            self._default_args = parse_argstring(self.sql, "")
        return self._default_args


def load_ipython_extension(ipython):
    magics = SqlMagic(shell=ipython)
    ipython.register_magics(magics)
    completion.install(ipython, magics, options=sorted(TAKES_VALUE), split=split_line,
                       extra_tables=magics.session.saved.names)
    ipython._sqlnb_magics = magics


def unload_ipython_extension(ipython):
    magics = getattr(ipython, "_sqlnb_magics", None)
    completion.uninstall(ipython)
    if magics is not None:
        magics.session.close_all()
        del ipython._sqlnb_magics


__all__ = ["SqlMagic", "Command", "OPTIONS", "split_line", "build_command", "load_ipython_extension",
           "unload_ipython_extension"]
