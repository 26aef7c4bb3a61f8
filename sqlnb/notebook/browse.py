"""Browse a table or a query page by page, each page one SQL statement (``%sql --browse``).

:class:`Browser` holds the state (the source, page size, sort, filter, the page
shown) and runs each page's statement on the connection; the statements come
from :mod:`sqlnb.frames.pages` (keyset pages where the source has a key, OFFSET
otherwise). :class:`BrowseView` is its ipywidgets face: page size, first /
previous / next / last, a page number to jump to, a sort column and direction,
a filter box (an SQL expression) and a footer saying how the page was read.
Only the rows of the page shown are rendered and sent to the browser.

Pages run on the connection as it is: its mode (a read-only connection stays
read-only: the browser only ever runs SELECT and EXPLAIN QUERY PLAN), its
statement time limit, and the kernel's interrupt (the page stops, the view says
so, the connection is ready for the next page).
"""
from __future__ import annotations

import asyncio
import html
import signal
import threading
import time
from dataclasses import dataclass

from sqlnb import _sql
from sqlnb import errors as _errors
from sqlnb.frames import pages as _pages
from sqlnb.notebook import explore

__all__ = ["Browser", "BrowseView", "browse", "source_of", "target", "from_command", "BrowseError", "PAGE_SIZES"]

PAGE_SIZES = (10, 20, 50, 100, 500)

#: the first keywords that make ``--browse``'s argument a query rather than a table name
QUERY_WORDS = frozenset(("SELECT", "WITH", "VALUES"))


class BrowseError(ValueError):
    """What to browse cannot be browsed as written (no such table, not one SELECT)."""


def _run(con, sql, params=None, size=None, timeout=None):
    """Run one statement, read at most ``size`` rows; ``timeout`` (seconds) replaces the
    connection's statement time limit for this statement only."""
    kept = con.statement_timeout
    if timeout:
        con.statement_timeout = timeout
    cur = con.cursor()
    try:
        cur.execute(sql, params or None)
        names = [d[0] for d in cur.description] if cur.description else []
        rows = cur.fetchall() if size is None else cur.fetchmany(size)
        return names, rows
    finally:
        cur.close()
        if timeout:
            con.statement_timeout = kept


def source_of(con, what: str) -> _pages.Source:
    """The :class:`~sqlnb.frames.pages.Source` of ``what``: a table or view name (``schema.name``
    allowed) or one SELECT statement."""
    what = (what or "").strip()
    if not what:
        raise BrowseError("--browse needs a table name, or a query in the cell body")
    if _sql.first_keyword(what) in QUERY_WORDS:
        try:
            names, _ = _run(con, f"SELECT * FROM (\n{what.rstrip().rstrip(';')}\n) LIMIT 0")
        except _errors.ProgrammingError as exc:
            raise BrowseError(f"--browse: the query is not one SELECT statement ({exc})") from None
        return _pages.query_source(what, names)
    return _table_source(con, what)


def _table_source(con, name: str) -> _pages.Source:
    known = explore.table_names(con)
    schema, table = _split(name, {s for s, *_ in known})
    found = [t for t in known if t[1] == table and (schema is None or t[0] == schema)]
    if not found:  # SQLite's names are case-insensitive
        found = [t for t in known if t[1].lower() == table.lower()
                 and (schema is None or t[0].lower() == schema.lower())]
    if not found:
        names = ", ".join(sorted({t[1] for t in known})[:12]) or "none"
        raise BrowseError(f"--browse: no table or view named {name!r} (tables: {names})")
    schema, table, kind, sql = found[0]
    info = explore.columns_of(con, schema, table)
    columns = [r[1] for r in info]
    if kind == "table" and explore.virtual_module(sql) is not None:
        kind = "virtual table"
    pk = []
    if kind == "table" and _without_rowid(sql):
        pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    return _pages.table_source(schema, table, columns, without_rowid_pk=pk, kind=kind)


def _split(name: str, schemas: set) -> tuple[str | None, str]:
    """``(schema or None, table)`` of ``name``: one name or ``schema.name``, quoted or not."""
    toks = [t for t in _sql.tokens(name, space=True) if t.kind != "space"]
    if len(toks) == 3 and toks[1].text == "." and toks[0].name in schemas and toks[2].name:
        return toks[0].name, toks[2].name
    if len(toks) == 1 and toks[0].name:
        return None, toks[0].name
    raise BrowseError(f"--browse: {name!r} is not a table name (a name or schema.name; a query starts "
                      "with SELECT, WITH or VALUES; the magic's options go before the name)")


def _without_rowid(create_sql: str) -> bool:
    """A ``CREATE TABLE`` whose table options (after the closing parenthesis) say WITHOUT ROWID."""
    words = [t.upper for t in _sql.tokens(create_sql) if t.depth == 0 and t.kind == "word"]
    return any(a == "WITHOUT" and b == "ROWID" for a, b in zip(words, words[1:]))


@dataclass
class Shown:
    """The page on screen: its rows (shown values), their keys, where it starts, how it was read."""

    columns: list
    rows: list
    keys: list
    index: int  # 0-based page number
    has_next: bool
    seconds: float
    how: str  # "keyset" or "offset"
    sql: str


class Browser:
    """Pages of a table or query on ``con``; every move runs one statement and keeps one page."""

    def __init__(self, con, what: str, *, size: int = 20, sort: str | None = None, desc: bool = False,
                 where: str | None = None, timeout: float | None = None):
        self.con = con
        self.timeout = timeout  # seconds per page (None: the connection's own limit)
        self.source = source_of(con, what)
        self.pager = _pages.Pager(self.source, size, sort, desc, where or None)
        self.shown: Shown | None = None
        self.total: int | None = None
        self.plan_note = ""
        self.first()

    # --- settings (each shows the first page again) -----------------------------------------
    def configure(self, *, size=None, sort=..., desc=None, where=...) -> Shown:
        """Change page size, sort column, direction or filter, and show the first page."""
        p = self.pager
        pager = _pages.Pager(self.source, p.size if size is None else int(size),
                             p.sort if sort is ... else (sort or None),
                             p.desc if desc is None else bool(desc),
                             p.where if where is ... else ((where or "").strip() or None))
        kept = self.pager, self.total, self.plan_note
        self.pager, self.total, self.plan_note = pager, None, ""
        try:
            return self.first()
        except BaseException:  # the page failed or was stopped: the settings stay as they were
            self.pager, self.total, self.plan_note = kept
            raise

    # --- moves ------------------------------------------------------------------------------
    def first(self) -> Shown:
        return self._show(self.pager.first(), 0)

    def next(self) -> Shown:
        s = self.shown
        if s is None or not s.has_next:
            return s
        if self.pager.keyset and s.keys:
            return self._show(self.pager.after(s.keys[-1]), s.index + 1)
        return self._show(self.pager.at(s.index + 1), s.index + 1)

    def previous(self) -> Shown:
        s = self.shown
        if s is None or s.index == 0:
            return s
        if self.pager.keyset and s.keys:
            return self._show(self.pager.before(s.keys[0]), s.index - 1)
        return self._show(self.pager.at(s.index - 1), s.index - 1)

    def jump(self, number: int) -> Shown:
        """Page ``number`` (1-based), read by OFFSET (keyset moves go on from there)."""
        number = int(number)
        if number < 1:
            raise BrowseError(f"page numbers start at 1, not {number}")
        return self._show(self.pager.at(number - 1), number - 1)

    def last(self) -> Shown:
        """The last page: with a key, the first page of the reverse order (needs the row count
        for its number); without one, by OFFSET from the row count."""
        total = self.count()
        index = max(0, (total - 1) // self.pager.size)
        if not self.pager.keyset:
            return self._show(self.pager.at(index), index)
        # the first page of the reverse order, cut to the rows the last page holds
        return self._show(self.pager.last(), index, has_next=False,
                          keep=max(1, total - index * self.pager.size))

    def count(self) -> int:
        """The number of rows the filter keeps (one ``count(*)``; kept until a setting changes)."""
        if self.total is None:
            self.total = int(_run(self.con, self.pager.count(), timeout=self.timeout)[1][0][0])
        return self.total

    # --- running one page ---------------------------------------------------------------------
    def _show(self, page: _pages.Page, index: int, *, has_next: bool = True, keep: int | None = None) -> Shown:
        """Run ``page`` (one statement, at most size + 1 rows read) and keep it as the page shown.

        A reverse page (previous, last) comes back nearest row first: ``keep`` rows of it are
        shown in order; when no row lies before them they are the first page. ``has_next``
        tells a reverse page whether rows follow it (a forward page finds out by its extra row).
        """
        size = self.pager.size
        t0 = time.perf_counter()
        names, rows = _run(self.con, page.sql, page.params, size + 1, self.timeout)
        seconds = time.perf_counter() - t0
        more = len(rows) > size
        rows = rows[:size if keep is None else keep]
        if page.reverse:
            rows.reverse()
            if not more:
                index = 0
            more = has_next
        self.shown = Shown(names[page.nkey:], [tuple(r[page.nkey:]) for r in rows],
                           [tuple(r[:page.nkey]) for r in rows], index, more, seconds,
                           "offset" if page.offset is not None else "keyset", page.sql)
        if not self.plan_note:
            self.plan_note = self._plan_note(page)
        return self.shown

    def _plan_note(self, page: _pages.Page) -> str:
        """Whether SQLite reads the page from an index or sorts the rows for it (its query plan)."""
        try:
            _, rows = _run(self.con, "EXPLAIN QUERY PLAN " + page.sql, page.params, timeout=self.timeout)
        except _errors.Error:
            return ""
        details = [str(r[-1]) for r in rows]
        if any("ORDER BY" in d and "TEMP B-TREE" in d for d in details):
            return "SQLite sorts the rows for each page (no index on the sort column)"
        index = next((d for d in details if " INDEX " in d or "PRIMARY KEY" in d), "")
        return ("index: " + index.split(" INDEX ", 1)[-1].split(" (")[0]) if " INDEX " in index else (
            "read in rowid order" if not self.pager.sort and self.pager.keyset else "")

    def footer(self) -> str:
        """One line: rows shown, page, how the page was read, time, mode."""
        s = self.shown
        if s is None:
            return ""
        start = s.index * self.pager.size
        rows = f"rows {start + 1:,}–{start + len(s.rows):,}" if s.rows else "no rows"
        total = f" of {self.total:,}" if self.total is not None else ""
        pages = f" of {(max(self.total, 1) - 1) // self.pager.size + 1:,}" if self.total is not None else ""
        how = self.pager.describe() if s.how == "keyset" else (
            "LIMIT/OFFSET (jump)" if self.pager.keyset else self.pager.describe())
        parts = [f"{rows}{total}", f"page {s.index + 1:,}{pages}", how]
        if self.plan_note:
            parts.append(self.plan_note)
        parts.append(f"{s.seconds * 1000:.1f} ms")
        parts.append(f"{self.con.engine} · {self.con.policy_summary}")
        return " · ".join(parts)


# --- the widget --------------------------------------------------------------------------------

def page_html(shown: Shown | None, sort: str | None = None, desc: bool = False) -> str:
    """The page as an HTML table (values escaped; NULL marked)."""
    if shown is None:
        return ""
    head = "".join(
        f'<th data-col="{html.escape(c)}">{html.escape(c)}'
        f'{(" ▼" if desc else " ▲") if c == sort else ""}</th>' for c in shown.columns)
    body = []
    for row in shown.rows:
        cells = "".join('<td class="sqlnb-null">NULL</td>' if v is None else
                        f"<td>{html.escape(_text(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    return (f'{_STYLE}<div style="overflow-x:auto"><table class="sqlnb-browse"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


# compact rows (the widget's own line height is a button's); NULL in grey
_STYLE = ("<style>table.sqlnb-browse{border-collapse:collapse;font-size:var(--jp-code-font-size,13px)}"
          "table.sqlnb-browse th,table.sqlnb-browse td{line-height:1.4;padding:2px 8px;text-align:right;"
          "white-space:nowrap;border-bottom:1px solid var(--jp-border-color2,#eee)}"
          "table.sqlnb-browse td.sqlnb-null{color:var(--jp-ui-font-color3,#999);font-style:italic}</style>")


def _text(v) -> str:
    if isinstance(v, bytes):
        return "x'" + v[:32].hex() + ("…" if len(v) > 32 else "") + "'"
    s = repr(v) if isinstance(v, float) else str(v)
    return s if len(s) <= 200 else s[:199] + "…"


class BrowseView:
    """The ipywidgets view of a :class:`Browser` (``.widget`` is what is displayed)."""

    def __init__(self, browser: Browser):
        import ipywidgets as w

        self.browser = browser
        lay = w.Layout(width="auto")
        self.table = w.HTML()
        self.table.add_class("sqlnb-browse-table")
        self.status = w.HTML()
        self.status.add_class("sqlnb-browse-footer")
        self.first_b = w.Button(description="« first", layout=lay)
        self.prev_b = w.Button(description="◀ previous", layout=lay)
        self.next_b = w.Button(description="next ▶", layout=lay)
        self.last_b = w.Button(description="last »", layout=lay)
        self.page_box = w.BoundedIntText(value=1, min=1, max=2**62, description="page",
                                         layout=w.Layout(width="150px"))
        self.go_b = w.Button(description="go", layout=lay)
        p = browser.pager
        self.size_dd = w.Dropdown(options=sorted(set(PAGE_SIZES) | {p.size}), value=p.size,
                                  description="rows", layout=w.Layout(width="140px"))
        self.sort_dd = w.Dropdown(options=[("(key order)" if p.keyset else "(as is)", "")]
                                  + [(c, c) for c in browser.source.columns],
                                  value=p.sort or "", description="sort", layout=w.Layout(width="220px"))
        self.desc_cb = w.Checkbox(value=p.desc, description="descending", indent=False, layout=lay)
        self.filter_tx = w.Text(value=p.where or "", placeholder="filter: an SQL expression, e.g. dep_delay > 60",
                                continuous_update=False, layout=w.Layout(width="420px"))
        self.count_b = w.Button(description="count rows", layout=lay)
        # the thread (and its event loop) of the cell that made the view: moves run there
        self._owner = threading.get_ident()
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        for b, fn in ((self.first_b, browser.first), (self.prev_b, browser.previous),
                      (self.next_b, browser.next), (self.last_b, browser.last),
                      (self.count_b, browser.count)):
            b.on_click(lambda _b, fn=fn: self._move(fn))
        self.go_b.on_click(lambda _b: self._move(lambda: browser.jump(self.page_box.value)))
        self.size_dd.observe(lambda ch: self._move(lambda: browser.configure(size=ch["new"])), "value")
        self.sort_dd.observe(lambda ch: self._move(lambda: browser.configure(sort=ch["new"] or None)), "value")
        self.desc_cb.observe(lambda ch: self._move(lambda: browser.configure(desc=ch["new"])), "value")
        self.filter_tx.observe(lambda ch: self._move(lambda: browser.configure(where=ch["new"])), "value")
        title = w.HTML(f"<b>{html.escape(browser.source.what)}</b>")
        self.widget = w.VBox([
            w.HBox([title, self.size_dd, self.sort_dd, self.desc_cb, self.filter_tx]),
            w.HBox([self.first_b, self.prev_b, self.next_b, self.last_b, self.page_box, self.go_b,
                    self.count_b]),
            self.table, self.status])
        self.widget.add_class("sqlnb-browse-view")
        self.error = ""
        self.render()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _move(self, action) -> None:
        """Run a move on the thread that made the view (the kernel's main thread).

        JupyterLab 4.4+ sends widget messages over a kernel subshell, which ipykernel 7 handles
        in a thread of its own; the connection belongs to the main thread, and the interrupt
        button's KeyboardInterrupt arrives there. So a move from another thread is handed to
        the main thread's event loop (it runs when no cell is running), else it runs at once.
        """
        loop = self._loop
        if threading.get_ident() != self._owner and loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self._do, action)
        else:
            self._do(action)

    def _do(self, action) -> None:
        """Run one move; an SQL error, a time limit or the interrupt leaves the page as it was and
        says so in the footer (the connection is ready for the next move)."""
        self.error = ""
        # say at once that a page is being read (a slow one can then be stopped knowingly)
        self.status.value = ('<span class="sqlnb-browse-running" style="font-size:smaller">… reading the '
                             'page (the stop button stops it)</span>')
        # a move runs outside any cell: ipykernel ignores SIGINT then; let the interrupt button
        # stop the page as it stops a cell (ipykernel does the same around each cell)
        main = threading.current_thread() is threading.main_thread()
        kept = signal.signal(signal.SIGINT, signal.default_int_handler) if main else None
        try:
            try:
                action()
            finally:  # at once: a second press must not land in the handling below
                if main:
                    signal.signal(signal.SIGINT, kept)
        except KeyboardInterrupt:
            self.error = "■ stopped (KeyboardInterrupt): the page was not read"
        except (_errors.Error, _pages.FilterError, BrowseError, ValueError) as exc:
            self.error = f"{type(exc).__name__.rstrip('_')}: {exc}"
        self.render()

    def render(self) -> None:
        b = self.browser
        s = b.shown
        self.table.value = page_html(s, b.pager.sort, b.pager.desc)
        foot = html.escape(b.footer())
        if self.error:
            foot = f'<span class="sqlnb-browse-error" style="color:#b00">{html.escape(self.error)}</span><br>' + foot
        self.status.value = f'<span style="font-size:smaller">{foot}</span>'
        if s is not None:
            self.page_box.value = s.index + 1
            self.prev_b.disabled = self.first_b.disabled = s.index == 0
            self.next_b.disabled = not s.has_next


def browse(con, what: str, *, size: int = 20, sort=None, desc=False, where=None, timeout=None):
    """Show the page browser of ``what`` (a table name or one SELECT) on ``con``; returns the view."""
    view = BrowseView(Browser(con, what, size=size, sort=sort, desc=desc, where=where, timeout=timeout))
    from IPython.display import display

    display(view.widget)
    return view


def target(sql: str) -> str:
    """What ``%sql --browse TEXT`` (or ``%%sql --browse`` with TEXT in the body) browses: a query
    when TEXT starts with SELECT, WITH or VALUES, else the table or view TEXT names."""
    sql = (sql or "").strip()
    if not sql:
        raise BrowseError("--browse needs a table name (%sql --browse flights) or a query "
                          "(%sql --browse SELECT ..., or %%sql --browse with the query in the cell body)")
    return sql


def from_command(con, sql: str, *, limit=None, timeout=None) -> BrowseView:
    """The view ``%sql --browse`` returns (``--limit`` is the page size, ``--timeout`` each page's limit)."""
    if limit is not None and limit < 1:
        raise BrowseError(f"--limit {limit}: the page size must be at least 1")
    if timeout is not None and timeout <= 0:
        raise BrowseError(f"--timeout {timeout}: each page's time limit must be more than 0 seconds")
    return BrowseView(Browser(con, target(sql), size=limit or 20, timeout=timeout))
