"""Every notebook in notebooks/ runs headless with nbclient, with no error output."""
from __future__ import annotations

from pathlib import Path

import pytest

from sqlnb import demo

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert any(p.name == "01-tour.ipynb" for p in NOTEBOOKS)


@pytest.fixture(scope="module")
def demo_db():
    return demo.database_path(create=True)


@pytest.mark.notebook
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_errors(path, demo_db):
    nb = demo.execute_notebook(path, timeout=600, db=demo_db)
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code_cells), "every code cell ran"
    if path.name == "01-tour.ipynb":
        html = "\n".join(o.get("data", {}).get("text/html", "") for c in code_cells for o in c.outputs)
        text = "\n".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "")
                         for c in code_cells for o in c.outputs)
        assert "336,776 rows × 19 columns" in html  # the full table was fetched, display truncated
        assert "sqlnb-footer" in html
        assert "QUERY PLAN" in text
        assert "SQLError in statement 2" in text
        assert "flights_still_there" in html
