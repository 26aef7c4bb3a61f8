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

import time
from pathlib import Path

import nbformat
import pytest

from labdriver import (add_cell_at_end, code_cells, error_outputs, interrupt, open_notebook, outputs_text,
                       run_all, run_cell, wait_all_executed, wait_executed)

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"

STOP_BOUND_S = 10.0  # stop button -> KeyboardInterrupt shown (measured: docs/notebook.md)
RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def write_notebook(path, sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, str(path))


def stop_and_measure(page, cell_index, shot_name):
    """Press stop while code cell ``cell_index`` runs; return seconds until KeyboardInterrupt shows."""
    cell = code_cells(page).nth(cell_index)
    t0 = time.monotonic()
    interrupt(page)
    cell.locator(".jp-OutputArea-output", has_text="KeyboardInterrupt").first.wait_for(
        timeout=STOP_BOUND_S * 1000 * 3)
    took = time.monotonic() - t0
    shot(page, shot_name)
    return took


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
    time.sleep(1.0)
    assert live.inner_text() != first  # ... and it is live
    shot(page, "interrupt-check-2-progress")

    # ... the stop button ends it
    took = stop_and_measure(page, 3, "interrupt-check-3-stopped")
    assert took < STOP_BOUND_S, f"the stop button took {took:.2f} s"
    wait_executed(page, 3)
    assert "stopped (KeyboardInterrupt)" in code_cells(page).nth(3).locator(".sqlnb-progress").inner_text()
    (lab.root.parent / "browser-latency.txt").write_text(f"{took:.3f}\n")
    print(f"\nstop button -> KeyboardInterrupt shown: {took * 1000:.0f} ms")

    # the next cell (skipped by Run All after the error) runs on the same connection
    run_cell(page, 4)
    wait_executed(page, 4)
    assert "next cell: 42" in outputs_text(code_cells(page).nth(4))
    shot(page, "interrupt-check-4-next-cell")
