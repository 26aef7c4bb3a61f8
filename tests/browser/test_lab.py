"""sqlnb in a real JupyterLab, driven through headless chromium.

* ``test_interrupt_button``: a notebook (written into the lab's temporary root)
  runs all cells: a result table, the interactive view, then a runaway
  statement with the live progress display; the stop button ends it with
  KeyboardInterrupt within a bound, and the next cell runs on the same
  connection.
* ``test_tour``: ``notebooks/01-tour.ipynb`` runs all cells with no error,
  shows result tables and footers; a long ``%sql`` query is then stopped with
  the stop button and the next cell runs.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect

from labdriver import (KERNEL_IDLE, add_cell_at_end, code_cells, error_outputs, interrupt, open_notebook,
                       outputs_text, prompt, run_all, run_cell, wait_all_executed, wait_executed)

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"

STOP_BOUND_S = 10.0  # stop button -> KeyboardInterrupt shown (measured: docs/notebook.md)
RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(400)  # let scrolled-to cells paint (content-visibility)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def write_notebook(path, sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, str(path))


def stop_and_measure(page, cell_index, shot_name):
    """Press stop while code cell ``cell_index`` runs.

    Returns (seconds until the progress line says the statement stopped,
    seconds until the cell's KeyboardInterrupt error is shown).
    """
    cell = code_cells(page).nth(cell_index)
    t0 = time.monotonic()
    interrupt(page)
    cell.locator(".sqlnb-progress", has_text="stopped (KeyboardInterrupt)").first.wait_for(
        timeout=STOP_BOUND_S * 1000 * 3)
    stopped = time.monotonic() - t0
    # the cell's error output (not the progress line, which also names the exception)
    cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
                 has_text="KeyboardInterrupt").first.wait_for(timeout=STOP_BOUND_S * 1000 * 3)
    shown = time.monotonic() - t0
    shot(page, shot_name)
    with open(ROOT / "build" / "browser-latency.txt", "a") as f:
        f.write(f"{shot_name}: statement stopped (progress line) {stopped * 1000:.0f} ms, "
                f"error shown {shown * 1000:.0f} ms\n")
    return stopped, shown


@pytest.mark.timeout(300)
def test_interrupt_button(lab, page):
    write_notebook(lab.root / "interrupt-check.ipynb", [
        "import sqlnb, time\nfrom sqlnb import progress\ncon = sqlnb.connect(':memory:')",
        "df = con.query_df(\"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 1000) "
        "SELECT x, x * x AS square, printf('<b>%d</b>', x) AS tagged FROM c\")\ndf.head(3)",
        "import sqlnb.interactive\nsqlnb.interactive.show(df, caption='1,000 rows')",
        f"with progress.track(con.raw, label='runaway'):\n    con.execute({RUNAWAY!r}).fetchall()",
        "print('next cell:', con.execute('SELECT 6 * 7').fetchone()[0])",
    ])
    open_notebook(page, lab, "interrupt-check.ipynb")
    run_all(page)
    for i in range(3):
        wait_executed(page, i)
    assert error_outputs(page).count() == 0, outputs_text(code_cells(page).nth(0))

    # a rendered result table, HTML-escaped
    table = code_cells(page).nth(1).locator(".jp-RenderedHTMLCommon table")
    table.wait_for()
    assert "<b>1</b>" in table.inner_text()
    assert table.locator("b").count() == 0

    # the interactive view: pages of 20 rows out of 1,000, and the next page
    view = code_cells(page).nth(2)
    info = view.locator(".dt-info")
    info.wait_for(timeout=30_000)
    assert "1 to 20 of 1,000" in info.inner_text(), info.inner_text()
    view.locator(".dt-paging-button.next").click()
    assert "21 to 40 of 1,000" in info.inner_text(), info.inner_text()
    shot(page, "interrupt-check-1-tables")

    # the runaway statement: the live progress display appears after about a second ...
    live = code_cells(page).nth(3).locator(".sqlnb-progress")
    live.wait_for(timeout=30_000)
    assert live.inner_text().strip().startswith("\u25b6 running runaway"), live.inner_text()
    first = live.inner_text()
    expect(live).not_to_have_text(first, timeout=30_000)  # ... and it is live: it changes (~0.25 s)
    shot(page, "interrupt-check-2-progress")

    # ... the stop button ends it
    stopped, took = stop_and_measure(page, 3, "interrupt-check-3-stopped")
    assert stopped <= took < STOP_BOUND_S, f"the stop button took {took:.2f} s"
    wait_executed(page, 3)
    print(f"\nstop button -> stopped {stopped * 1000:.0f} ms, KeyboardInterrupt shown {took * 1000:.0f} ms")

    # the next cell (skipped by Run All after the error) runs on the same connection
    run_cell(page, 4)
    wait_executed(page, 4)
    assert "next cell: 42" in outputs_text(code_cells(page).nth(4))
    shot(page, "interrupt-check-4-next-cell")


@pytest.mark.timeout(900)
def test_tour(lab, page):
    """The tour runs all cells in JupyterLab; then a long %sql query is stopped with the stop button."""
    open_notebook(page, lab, "01-tour.ipynb")
    run_all(page)
    n = wait_all_executed(page, timeout=600)
    assert n >= 20
    shot(page, "tour-1-ran-all")
    errors = error_outputs(page)
    assert errors.count() == 0, (errors.first.text_content() or "")[:2000]

    # rendered result tables, each with sqlnb's footer (rows x columns, time, engine, mode)
    results = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output .sqlnb-result")
    assert results.count() >= 10, results.count()
    tables = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output table.sqlnb")
    assert tables.count() >= 8, tables.count()
    footers = page.locator(".jp-NotebookPanel:visible .sqlnb-footer")
    assert footers.count() >= 10
    texts = footers.all_text_contents()
    assert any("336,776" in t for t in texts), texts[:5]  # SELECT * FROM flights: the whole result kept
    full = [t for t in texts if re.search(
        r"[\d,]+ rows? \u00d7 \d+ columns? \u00b7 [\d.]+ (?:\u00b5s|ms|s) \u00b7 sqlite 3\.\d+\.\d+ \u00b7 rw", t)]
    assert len(full) >= 8, texts
    footers.nth(footers.count() // 2).scroll_into_view_if_needed()
    shot(page, "tour-2-results")

    # a long query on the real data: every pair of flights
    long_index = add_cell_at_end(page, "%sql --use flights\n%sql SELECT count(*) FROM flights a, flights b")
    page.keyboard.press("Shift+Enter")
    cell = code_cells(page).nth(long_index)
    cell.locator(".sqlnb-progress").wait_for(timeout=30_000)  # the live display: it is running
    shot(page, "tour-3-long-query-running")
    stopped, took = stop_and_measure(page, long_index, "tour-4-stopped")
    assert stopped <= took < STOP_BOUND_S, f"the stop button took {took:.2f} s"
    wait_executed(page, long_index)

    # the next cell runs on the same connection
    next_index = add_cell_at_end(page, "%sql SELECT count(*) AS airlines FROM airlines")
    page.keyboard.press("Shift+Enter")
    wait_executed(page, next_index)
    out = code_cells(page).nth(next_index)
    out.locator("table.sqlnb").wait_for()
    cells = [c.strip() for c in out.locator("table.sqlnb tbody td").all_inner_texts()]
    assert cells == ["16"], cells  # the demo database's 16 airlines
    shot(page, "tour-5-next-cell")
    print(f"\ntour: stop button -> stopped {stopped * 1000:.0f} ms, KeyboardInterrupt shown {took * 1000:.0f} ms")


@pytest.mark.timeout(300)
def test_run_all_stops_at_a_failing_sql_cell(lab, page):
    """A failing %%sql cell fails the cell: Run All stops there, and the cells after it do not run."""
    write_notebook(lab.root / "run-all-stops.ipynb", [
        "%load_ext sqlnb\n%sql :memory:",
        "%%sql\nCREATE TABLE t(a);\nINSERT INTO t VALUES (1);",
        "%%sql\nSELECT * FROM missing_table",
        "print('after the failing cell')",
        "%sql INSERT INTO t VALUES (2)",
    ])
    open_notebook(page, lab, "run-all-stops.ipynb")
    run_all(page)
    for i in range(3):
        wait_executed(page, i)
    page.wait_for_selector(KERNEL_IDLE, timeout=60_000)
    failing = code_cells(page).nth(2)
    err = failing.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    err.first.wait_for(timeout=30_000)
    assert "SQLError in statement 1" in err.first.inner_text() and "no such table: missing_table" in \
        err.first.inner_text()
    # the cells after it were not run: no execution count, no output
    for i in (3, 4):
        cell = code_cells(page).nth(i)
        assert prompt(cell) == "[ ]:", (i, prompt(cell))
        assert outputs_text(cell).strip() == "", (i, outputs_text(cell))
    # and the database shows it: the INSERT of cell 4 never happened
    run_cell(page, 4)  # (runs it now: a second row, not a third)
    wait_executed(page, 4)
    index = add_cell_at_end(page, "%sql SELECT count(*) AS n FROM t")
    page.keyboard.press("Shift+Enter")
    wait_executed(page, index)
    out = code_cells(page).nth(index)
    out.locator("table.sqlnb").wait_for()
    assert [c.strip() for c in out.locator("table.sqlnb tbody td").all_inner_texts()] == ["2"]
    shot(page, "run-all-stops")
