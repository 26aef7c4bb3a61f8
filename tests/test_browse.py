"""The page browser (``%sql --browse``): each page one SQL statement, keyset where a key exists.

Walks whole tables page by page, forwards and backwards, sorted by a column full of duplicate
values and NULLs, and checks that every row is seen exactly once and in the order SQLite's own
``ORDER BY`` gives; the same through LIMIT/OFFSET for sources without a key (a query, a view);
the filter and its shape checks; a read-only connection stays unwritten; the time limit and an
interrupt stop a page and the view says so.
"""
from __future__ import annotations

import hashlib
import re
import threading

import pytest

import sqlnb
from sqlnb import errors
from sqlnb.frames import pages
from sqlnb.notebook import browse

from .conftest import need_engine

N = 237  # rows: not a multiple of any page size used


def _fill(con, without_rowid=False):
    con.execute("CREATE TABLE t (id INTEGER NOT NULL, k INTEGER, s TEXT, x REAL"
                + (", PRIMARY KEY (id)) WITHOUT ROWID" if without_rowid else ")"))
    rows = []
    for i in range(N):
        # k: 7 distinct values, each repeated, and NULL every fifth row; s: duplicates and NULLs too
        k = None if i % 5 == 0 else (i * 7919) % 7
        s = None if i % 11 == 0 else f"s{(i * 31) % 13:02d}"
        rows.append((1000 - i, k, s, i / 8))
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    con.execute("CREATE INDEX t_k ON t (k)")
    con.commit()


def _walk(b: browse.Browser):
    """Every row from the first page to the last by 'next', then back to the first by 'previous'."""
    forward, pages_seen = [], []
    s = b.first()
    while True:
        assert len(s.rows) <= b.pager.size
        forward.extend(s.rows)
        pages_seen.append(s.index)
        if not s.has_next:
            break
        s = b.next()
    backward = list(s.rows)
    while s.index > 0:
        s = b.previous()
        backward[:0] = s.rows
    assert pages_seen == list(range(len(pages_seen)))
    return forward, backward


def _order_by(sort, desc, key):
    d = " DESC" if desc else ""
    return (f"{sort}{d}, " if sort else "") + ", ".join(f"{k}{d}" for k in key)


@pytest.mark.parametrize("size", [1, 10, 20])
@pytest.mark.parametrize("sort,desc", [(None, False), (None, True), ("k", False), ("k", True),
                                       ("s", False), ("s", True)])
def test_keyset_sees_every_row_once_in_order(engine, tmp_path, size, sort, desc):
    con = sqlnb.connect(str(tmp_path / "b.db"), engine=engine)
    _fill(con)
    b = browse.Browser(con, "t", size=size, sort=sort, desc=desc)
    assert b.pager.keyset and b.source.key == ("rowid",)
    want = con.execute(f"SELECT id, k, s, x FROM t ORDER BY {_order_by(sort, desc, ['rowid'])}").fetchall()
    forward, backward = _walk(b)
    assert forward == want            # none skipped, none repeated, SQLite's own order (NULLs included)
    assert backward == want
    # each keyset page is one statement with no OFFSET
    assert "OFFSET" not in b.shown.sql
    con.close()


@pytest.mark.parametrize("engine_name", ["sqlite", "system"])  # WITHOUT ROWID needs SQLite 3.8.2 (bdb: 3.7)
@pytest.mark.parametrize("sort,desc", [(None, False), ("k", False), ("k", True), ("s", True)])
def test_keyset_on_the_primary_key_of_a_without_rowid_table(engine_name, tmp_path, sort, desc):
    need_engine(engine_name)
    con = sqlnb.connect(str(tmp_path / "w.db"), engine=engine_name)
    _fill(con, without_rowid=True)
    b = browse.Browser(con, "t", size=15, sort=sort, desc=desc)
    assert b.source.key == ('"id"',)
    want = con.execute(f"SELECT id, k, s, x FROM t ORDER BY {_order_by(sort, desc, ['id'])}").fetchall()
    assert _walk(b) == (want, want)
    con.close()


@pytest.mark.parametrize("what", ["SELECT k, s, x FROM t WHERE x < 20", "view"])
@pytest.mark.parametrize("sort,desc", [(None, False), ("k", False), ("s", True)])
def test_offset_pages_of_a_query_or_view(engine, tmp_path, what, sort, desc):
    con = sqlnb.connect(str(tmp_path / "q.db"), engine=engine)
    _fill(con)
    con.execute("CREATE VIEW v AS SELECT k, s, x FROM t WHERE x < 20")
    b = browse.Browser(con, "v" if what == "view" else what, size=12, sort=sort, desc=desc)
    assert not b.pager.keyset
    assert "LIMIT/OFFSET" in b.footer()
    forward, backward = _walk(b)
    base = "SELECT k, s, x FROM t WHERE x < 20"
    if sort:
        # the other columns break the sort's ties, so OFFSET pages of one order never overlap
        rest = [c for c in ("k", "s", "x") if c != sort]
        want = con.execute(f"{base} ORDER BY {sort}{' DESC' if desc else ''}, {', '.join(rest)}").fetchall()
        assert forward == want and backward == want
    else:
        assert sorted(forward, key=repr) == sorted(con.execute(base).fetchall(), key=repr)
        assert backward == forward
    con.close()


def test_filter_sort_jump_last_and_count(engine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "f.db"), engine=engine)
    _fill(con)
    b = browse.Browser(con, "t", size=10, sort="k", where="k IS NULL OR s > 's05'")
    want = con.execute("SELECT id, k, s, x FROM t WHERE k IS NULL OR s > 's05' ORDER BY k, rowid").fetchall()
    assert _walk(b) == (want, want)
    assert b.count() == len(want)
    # jump to page 3 (OFFSET), then keyset on from there
    s = b.jump(3)
    assert s.rows == want[20:30] and s.how == "offset"
    assert b.next().rows == want[30:40] and b.shown.how == "keyset"
    assert b.previous().rows == want[20:30]
    # the last page holds what is left over
    s = b.last()
    last_index = (len(want) - 1) // 10
    assert s.index == last_index and s.rows == want[last_index * 10:] and not s.has_next
    assert b.previous().rows == want[(last_index - 1) * 10:last_index * 10]
    # changing the sort starts again at page 1, in the new order
    s = b.configure(sort="x", desc=True)
    want = con.execute("SELECT id, k, s, x FROM t WHERE k IS NULL OR s > 's05' ORDER BY x DESC, rowid DESC"
                       ).fetchall()
    assert s.index == 0 and s.rows == want[:10]
    # a filter that keeps nothing: an empty first page, no next
    s = b.configure(where="k = 99")
    assert s.rows == [] and not s.has_next and b.count() == 0
    con.close()


@pytest.mark.parametrize("bad,what", [
    ("k = 1; DELETE FROM t", "no ';'"),
    ("1); DELETE FROM t; --", "without its '('"),
    ("1) UNION SELECT (1", "without its '('"),
    ("(k = 1", "without its ')'"),
    ("k = 1 /* open", "'/*'"),
    ("   ", "empty"),
])
def test_a_filter_is_one_expression(bad, what):
    src = pages.table_source("main", "t", ["k"])
    with pytest.raises(pages.FilterError, match=re.escape(what)):
        pages.Pager(src, 10, where=bad)


def test_a_trailing_line_comment_in_the_filter_does_not_swallow_the_page(con):
    con.execute("CREATE TABLE t (a)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(30)])
    b = browse.Browser(con, "t", size=5, where="a >= 10 -- the tens")
    assert [r[0] for r in b.shown.rows] == [10, 11, 12, 13, 14] and b.shown.has_next


def test_bad_targets_say_what_was_wrong(con):
    con.execute("CREATE TABLE flights (a)")
    with pytest.raises(browse.BrowseError, match="no table or view named 'flight'.*flights"):
        browse.Browser(con, "flight")
    with pytest.raises(browse.BrowseError, match="needs a table name"):
        browse.Browser(con, "  ")
    with pytest.raises(ValueError, match="no column 'nope' to sort by"):
        browse.Browser(con, "flights", sort="nope")
    with pytest.raises(errors.Error):
        browse.Browser(con, "SELECT * FROM nowhere")


def test_names_are_quoted_and_case_insensitive(con):
    con.execute('CREATE TABLE "my ""odd"" table" ("a b" INTEGER, "rowid" TEXT)')  # a column hides rowid
    con.executemany('INSERT INTO "my ""odd"" table" VALUES (?, ?)', [(i, str(i)) for i in range(7)])
    b = browse.Browser(con, '"MY ""ODD"" TABLE"', size=3, sort="a b", desc=True)
    assert b.source.key == ("_rowid_",)
    assert _walk(b)[0] == [(i, str(i)) for i in range(6, -1, -1)]
    b = browse.Browser(con, '"my ""odd"" table"', size=3)
    assert len(b.shown.rows) == 3


def test_read_only_connection_writes_nothing(engine, tmp_path):
    path = tmp_path / "ro.db"
    con = sqlnb.connect(str(path), engine=engine)
    _fill(con)
    con.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    files = sorted(p.name for p in tmp_path.iterdir())
    con = sqlnb.connect(str(path), engine=engine, mode="ro")
    b = browse.Browser(con, "t", size=25, sort="s", where="x > 3")
    _walk(b)
    b.last()
    b.jump(2)
    b.count()
    b.configure(sort="k", desc=True)
    with pytest.raises(pages.FilterError):
        b.configure(where="1); DELETE FROM t; --")
    assert con.total_changes == 0
    con.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no journal, no WAL, nothing new


def test_the_footer_says_how_pages_are_read(tmp_path):
    con = sqlnb.connect(str(tmp_path / "p.db"), engine="sqlite")
    _fill(con)
    b = browse.Browser(con, "t", size=10, sort="k")
    foot = b.footer()
    assert "keyset paging on k, rowid" in foot and "index: t_k" in foot and "rows 1–10" in foot
    b.configure(sort="x")  # no index on x: SQLite sorts for each page, and the footer says so
    assert "sorts the rows for each page" in b.footer()
    b.count()
    assert f"of {N:,}" in b.footer()
    con.close()


def test_only_the_page_is_rendered(con):
    con.execute("CREATE TABLE t (a, b)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, "<b>x</b>" if i == 0 else None) for i in range(1000)])
    b = browse.Browser(con, "t", size=20)
    h = browse.page_html(b.shown)
    assert h.count("<tr>") == 21  # the header and 20 rows
    assert "&lt;b&gt;x&lt;/b&gt;" in h and "<b>x</b>" not in h and 'class="sqlnb-null">NULL' in h


def test_time_limit_stops_a_page_and_the_view_says_so(engine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "tl.db"), engine=engine)
    con.execute("CREATE TABLE t (a)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(300)])
    con.commit()
    b = browse.Browser(con, "t", size=10)
    view = browse.BrowseView(b)
    con.statement_timeout = 0.3
    # a filter that never finishes for a row: a three-way self-join counted for each row
    view._do(lambda: b.configure(where="(SELECT count(*) FROM t t1, t t2, t t3, t t4) > 0"))
    assert "QueryTimeoutError" in view.error and "time limit" in view.error
    assert "QueryTimeoutError" in view.status.value
    con.statement_timeout = None
    view._do(lambda: b.configure(where="a >= 290"))  # the connection is ready for the next page
    assert view.error == "" and [r[0] for r in b.shown.rows] == list(range(290, 300))
    con.close()


def test_interrupt_stops_a_page_and_the_view_says_so(tmp_path):
    con = sqlnb.connect(str(tmp_path / "i.db"), engine="sqlite")
    con.execute("CREATE TABLE t (a)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(300)])
    b = browse.Browser(con, "t", size=10)
    view = browse.BrowseView(b)
    done = threading.Event()

    def keep_interrupting():  # until the page has stopped (it never ends by itself)
        while not done.wait(0.01):
            con.interrupt()

    t = threading.Thread(target=keep_interrupting)
    t.start()
    try:
        view._do(lambda: b.configure(where="(SELECT count(*) FROM t t1, t t2, t t3, t t4, t t5) > 0"))
    finally:
        done.set()
        t.join(10)
    assert "Interrupt" in view.error
    assert b.pager.where is None  # the stopped filter did not replace the page's settings
    view._do(b.next)
    assert view.error == "" and [r[0] for r in b.shown.rows] == list(range(10, 20))
    con.close()


def test_the_view_moves_and_renders(con):
    con.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"r{i}") for i in range(45)])
    view = browse.BrowseView(browse.Browser(con, "t", size=20))
    assert view.prev_b.disabled and not view.next_b.disabled
    view.next_b.click()
    view.next_b.click()
    assert view.page_box.value == 3 and view.next_b.disabled and "<td>44</td>" in view.table.value
    view.sort_dd.value = "b"
    view.desc_cb.value = True
    assert view.page_box.value == 1 and "<td>r9</td>" in view.table.value.split("</tr>")[1]
    view.filter_tx.value = "a < 3"
    assert view.table.value.count("<tr>") == 4
    view.filter_tx.value = "a <"  # an SQL error: one line in the footer, the page stays
    assert "Error" in view.error and view.table.value.count("<tr>") == 4
    view.size_dd.value = 10
    assert view.browser.pager.size == 10


# --- the magic: %sql --browse, %sql --interactive -----------------------------------------------
@pytest.fixture
def ip(tmp_path):
    from tests.magics_shell import close_shell, new_shell

    shell = new_shell()
    shell.run_cell(f"%sql sqlite:///{tmp_path / 'm.db'}")
    shell.run_cell("%sql CREATE TABLE flights (id INTEGER, carrier TEXT)")
    shell.run_cell("%sql INSERT INTO flights WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
                   "WHERE i < 95) SELECT i, 'C' || (i % 4) FROM c")
    yield shell
    close_shell(shell)


def test_magic_browse_a_table_a_query_and_the_page_size(ip):
    view = ip.run_cell("%sql --browse flights").result
    assert isinstance(view, browse.BrowseView) and view.browser.pager.keyset
    assert [r[0] for r in view.browser.shown.rows] == list(range(1, 21))
    assert "sqlnb-browse" in view._repr_mimebundle_()["text/plain"] or view.widget is not None
    view = ip.run_cell("%%sql --browse --limit 7\nSELECT id, carrier FROM flights\nWHERE carrier = 'C1'").result
    assert not view.browser.pager.keyset and view.browser.pager.size == 7
    assert [r[0] for r in view.browser.shown.rows] == [1, 5, 9, 13, 17, 21, 25]
    view = ip.run_cell("%sql --browse SELECT id FROM flights WHERE id > 90").result
    assert [r[0] for r in view.browser.shown.rows] == [91, 92, 93, 94, 95]
    view = ip.run_cell("%sql --limit 10 --timeout 5 --browse main.flights").result
    assert view.browser.pager.size == 10 and view.browser.timeout == 5


@pytest.mark.parametrize("line,msg", [
    ("%sql --browse", "needs a table name"),
    ("%sql --browse nope", "no table or view named 'nope' (tables: flights)"),
    ("%sql --browse --limit 0 flights", "page size must be at least 1"),
    ("%sql --browse flights --limit 10", "'flights --limit 10' is not a table name"),
    ("%sql --browse DELETE FROM flights", "'DELETE FROM flights' is not a table name"),
    ("%sql --browse flightz", "no table or view named 'flightz' (tables: flights)"),
])
def test_magic_browse_usage_errors_are_one_line(ip, line, msg):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=re.escape(msg)):
        ip.run_cell(line)


def test_magic_interactive_shows_the_itables_view(ip):
    from IPython.core.error import UsageError
    from IPython.utils.capture import capture_output

    pytest.importorskip("itables")
    with capture_output() as cap:
        ip.run_cell("%sql --interactive -o df SELECT * FROM flights")
    html = "".join(o.data.get("text/html", "") for o in cap.outputs)
    assert "<table" in html and "95 rows × 2 columns" in html and "datatable" in html.lower()
    assert ip.user_ns["df"].shape == (95, 2)
    with pytest.raises(UsageError, match="--interactive shows the result of a query"):
        ip.run_cell("%sql --interactive")


def test_the_interrupt_signal_stops_a_page_and_the_view_says_so(engine, tmp_path):
    """SIGINT (the kernel's interrupt button) while a page runs, with SIGINT ignored around it as
    ipykernel ignores it between cells: the view takes it for the page's duration, so the
    statement stops with KeyboardInterrupt; one line in the view, the settings kept, the next
    page runs, and the handler it found is back."""
    import os
    import signal

    con = sqlnb.connect(str(tmp_path / "s.db"), engine=engine)
    con.execute("CREATE TABLE t (a)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(300)])
    con.commit()
    b = browse.Browser(con, "t", size=10, timeout=120)  # a safety net: never a hung run
    view = browse.BrowseView(b)
    done = threading.Event()

    def idle(signum, frame):  # what a kernel between cells does with SIGINT: nothing
        pass

    def send():  # until the page has stopped (it never ends by itself)
        while not done.wait(0.02):
            os.kill(os.getpid(), signal.SIGINT)

    old = signal.signal(signal.SIGINT, idle)
    t = threading.Thread(target=send)
    try:
        t.start()
        view._do(lambda: b.configure(where="(SELECT count(*) FROM t t1, t t2, t t3, t t4, t t5) > 0"))
        assert signal.getsignal(signal.SIGINT) is idle
    finally:
        done.set()
        t.join(10)
        signal.signal(signal.SIGINT, old)
    assert view.error.startswith("■ stopped (KeyboardInterrupt)"), view.error
    assert b.pager.where is None
    view._do(b.next)
    assert view.error == "" and [r[0] for r in b.shown.rows] == list(range(10, 20))
    con.close()


def test_a_move_from_another_thread_runs_on_the_views_thread(tmp_path):
    """JupyterLab sends widget messages over a kernel subshell (another thread in ipykernel 7):
    the move is handed to the event loop of the thread that made the view, where the connection
    lives (check_same_thread) and where the interrupt arrives."""
    import asyncio

    con = sqlnb.connect(str(tmp_path / "th.db"), engine="sqlite")
    con.execute("CREATE TABLE t (a)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(50)])
    main = threading.get_ident()
    ran_in = []

    async def scenario():
        view = browse.BrowseView(browse.Browser(con, "t", size=10))  # made in a cell: a loop runs
        orig = view._do
        view._do = lambda action: (ran_in.append(threading.get_ident()), orig(action))
        t = threading.Thread(target=view.next_b.click)  # a click handled in a subshell's thread
        t.start()
        t.join(10)
        for _ in range(1000):  # the move is queued on this loop; let it run (bounded)
            if ran_in:
                break
            await asyncio.sleep(0.01)
        return view

    # Playwright's sync API (the browser tests' session fixture, alive for the rest of a full run)
    # marks an event loop as running in this thread; a cell's own loop stands in for it here
    outer = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(None)
    try:
        view = asyncio.run(scenario())
    finally:
        asyncio.events._set_running_loop(outer)
    assert ran_in == [main]
    assert view.error == "" and [r[0] for r in view.browser.shown.rows] == list(range(10, 20))
    con.close()


def test_magic_browse_a_second_statement_is_never_run(ip):
    from sqlnb import errors as sqlnb_errors

    with pytest.raises(sqlnb_errors.Error):
        ip.run_cell("%sql --browse SELECT * FROM flights; DELETE FROM flights")
    assert ip.run_cell("%sql SELECT count(*) AS n FROM flights").result["n"][0] == 95
