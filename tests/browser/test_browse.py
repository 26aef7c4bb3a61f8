"""``%sql --browse`` in a real JupyterLab: the page browser over the demo's 336,776 flights.

A read-only connection; the view is paged forward twice, sorted by a column with NULLs (an
indexed one), then filtered; after each step the rows in the DOM are exactly the rows the
same page's SQL gives (computed here, on a separate read-only connection), only one page of
rows is in the DOM, and the footer says how the page was read.
"""
from __future__ import annotations

import time

import pytest

import sqlnb
from sqlnb.notebook import browse
from labdriver import code_cells, error_outputs, interrupt, open_notebook, run_all, wait_all_executed
from test_lab import shot, write_notebook

pytestmark = [pytest.mark.browser]

COLUMNS = ("year, month, day, dep_time, sched_dep_time, dep_delay, arr_time, sched_arr_time, arr_delay, "
           "carrier, flight, tailnum, origin, dest, air_time, distance, hour, minute, time_hour")

_ROWS = """view => Array.from(view.querySelectorAll('table.sqlnb-browse tbody tr'))
  .map(tr => Array.from(tr.querySelectorAll('td')).map(td => td.textContent))"""


def expected(con, where="", order="rowid", offset=0, size=20):
    sql = f"SELECT {COLUMNS} FROM flights {'WHERE ' + where if where else ''} ORDER BY {order} " \
          f"LIMIT {size} OFFSET {offset}"
    return [["NULL" if v is None else browse._text(v) for v in row] for row in con.execute(sql).fetchall()]


def shown_rows(view):
    return view.element_handle().evaluate(_ROWS)


def wait_rows(view, want, timeout=60.0):
    """Wait until the view shows ``want`` (the page is read in the kernel, then sent)."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = shown_rows(view)
        if got == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"the view shows {got[:2] if got else got}... instead of {want[:2]}...")


@pytest.mark.timeout(400)
def test_browse_pages_sort_and_filter(lab, page, demo_db):
    write_notebook(lab.root / "browse-check.ipynb", [
        f"%load_ext sqlnb\n%sql --connect {demo_db} --mode ro --alias f",
        "%sql --browse flights",
    ])
    con = sqlnb.connect(str(demo_db), mode="ro")
    open_notebook(page, lab, "browse-check.ipynb")
    run_all(page)
    wait_all_executed(page)
    assert error_outputs(page).count() == 0
    view = code_cells(page).nth(1).locator(".sqlnb-browse-view")
    view.wait_for(timeout=60_000)
    footer = view.locator(".sqlnb-browse-footer")

    wait_rows(view, expected(con))
    assert "rows 1–20" in footer.inner_text() and "keyset paging on rowid" in footer.inner_text()
    assert "ro" in footer.inner_text()

    # forward twice: rows 41-60, in rowid order, by keyset (no OFFSET)
    nxt = view.locator("button", has_text="next")
    nxt.click()
    wait_rows(view, expected(con, offset=20))
    nxt.click()
    wait_rows(view, expected(con, offset=40))
    assert "rows 41–60" in footer.inner_text() and "page 3" in footer.inner_text()
    assert view.locator("table.sqlnb-browse tr").count() == 21  # the header and one page: nothing more
    shot(page, "browse-1-page-3")

    # sort by tailnum (indexed; 2,512 flights have none: NULLs first), then one page on
    view.locator(".widget-dropdown", has_text="sort").locator("select").select_option("tailnum")
    wait_rows(view, expected(con, order="tailnum, rowid"))
    assert shown_rows(view)[0][11] == "NULL"
    assert "keyset paging on tailnum, rowid" in footer.inner_text()
    assert "index: flights_tailnum" in footer.inner_text(), footer.inner_text()
    nxt.click()
    wait_rows(view, expected(con, order="tailnum, rowid", offset=20))
    shot(page, "browse-2-sorted")

    # filter: an SQL expression; the sort stays, the view starts again at page 1
    box = view.locator("input[type=text]")
    box.fill("dep_delay > 300 AND origin = 'JFK'")
    box.press("Enter")
    where = "dep_delay > 300 AND origin = 'JFK'"
    wait_rows(view, expected(con, where=where, order="tailnum, rowid"))
    nxt.click()
    wait_rows(view, expected(con, where=where, order="tailnum, rowid", offset=20))
    assert "rows 21–40" in footer.inner_text()
    shot(page, "browse-3-filtered")

    # a filter SQLite refuses: one line in the footer, the page stays
    box.fill("dep_delay >")
    box.press("Enter")
    error = view.locator(".sqlnb-browse-error")
    error.wait_for(timeout=30_000)
    assert error.inner_text().startswith("SQLError: ") and "syntax error" in error.inner_text(), \
        error.inner_text()
    assert shown_rows(view) == expected(con, where=where, order="tailnum, rowid", offset=20)
    assert error_outputs(page).count() == 0
    shot(page, "browse-4-bad-filter")

    # a page that never ends: the stop button stops it; the page and the filter stay
    box.fill("(SELECT count(*) FROM flights f1, flights f2) > 0")
    box.press("Enter")
    view.locator(".sqlnb-browse-running").wait_for(timeout=30_000)
    t0 = time.monotonic()
    interrupt(page)
    view.locator(".sqlnb-browse-error", has_text="stopped (KeyboardInterrupt)").wait_for(timeout=30_000)
    took = time.monotonic() - t0
    assert took < 10, f"the stop button took {took:.1f} s to stop the page"
    assert shown_rows(view) == expected(con, where=where, order="tailnum, rowid", offset=20)
    shot(page, "browse-5-stopped")
    nxt.click()  # the connection is ready: the next page of the kept filter
    wait_rows(view, expected(con, where=where, order="tailnum, rowid", offset=40))
    assert error_outputs(page).count() == 0
    con.close()
