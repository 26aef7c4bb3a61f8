"""The notebooks in notebooks/: committed without outputs, and each one runs headless with nbclient
and shows what it teaches.

What a notebook shows is checked against an oracle computed outside it: the stdlib
``sqlite3`` on the same demo database (the tour), or the notebook's own data generated
again with numpy (the lsm1 notebook). The results are read from the kernel's ``Out``
history by one extra cell appended to the executed copy (the committed file is not changed).
"""
from __future__ import annotations

import io
import json
import re
import sqlite3
from pathlib import Path

import pytest

from sqlnb import demo

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))

DUMP = ("import json as _json, pandas as _pd\n"
        "print('SQLNB-OUT ' + _json.dumps({str(k): v.to_json(orient='split', double_precision=15) for k, v in Out.items()"
        " if isinstance(v, _pd.DataFrame)}))")


def test_there_are_notebooks():
    assert {"01-tour.ipynb", "05-lsm1.ipynb"} <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    """Outputs are made by running a notebook, never committed (they go stale, and carry paths and timings)."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    with_outputs = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and c.get("outputs")]
    counted = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
               and c.get("execution_count") is not None]
    assert with_outputs == [] and counted == [], (
        f"{path.name}: cells {with_outputs or counted} carry outputs or execution counts; clear them "
        "(Jupyter: Edit > Clear Outputs of All Cells; or jupyter nbconvert --clear-output --inplace)")


@pytest.fixture(scope="module")
def demo_db():
    return demo.database_path(create=True)


def run(path, tmp_path, demo_db):
    """Execute a copy of ``path`` with the DUMP cell appended: (notebook, {source: DataFrame})."""
    import nbformat
    import pandas as pd

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(DUMP))
    target = tmp_path / path.name
    nbformat.write(nb, target)
    executed = demo.execute_notebook(target, timeout=600, db=demo_db)
    code_cells = [c for c in executed.cells if c.cell_type == "code"]
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(code_cells)
              for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert all(c.execution_count is not None for c in code_cells), "every code cell ran"
    dump = "".join(o.get("text", "") for o in code_cells[-1].outputs if o.output_type == "stream")
    frames, _ = json.JSONDecoder().raw_decode(dump.split("SQLNB-OUT ", 1)[1])
    by_source = {}
    for c in code_cells[:-1]:
        if str(c.execution_count) in frames:
            by_source[c.source] = pd.read_json(io.StringIO(frames[str(c.execution_count)]), orient="split",
                                                   precise_float=True)
    return code_cells[:-1], by_source


def cell_with(cells_or_frames, needle):
    found = [v for k, v in cells_or_frames.items() if needle in k]
    assert len(found) == 1, (needle, len(found))
    return found[0]


@pytest.mark.notebook
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name not in ("01-tour.ipynb", "02-look-at-data.ipynb",
                                                                     "05-lsm1.ipynb")],
                         ids=lambda p: p.stem)
def test_notebook_runs_without_errors(path, tmp_path, demo_db):
    run(path, tmp_path, demo_db)


@pytest.mark.notebook
@pytest.mark.timeout(900)
def test_tour_teaches_what_it_says(tmp_path, demo_db):
    path = next(p for p in NOTEBOOKS if p.name == "01-tour.ipynb")
    cells, frames = run(path, tmp_path, demo_db)
    html = "\n".join(o.get("data", {}).get("text/html", "") for c in cells for o in c.outputs)
    text = "\n".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "")
                     for c in cells for o in c.outputs)
    assert "336,776 rows × 19 columns" in html  # the full table was fetched, display truncated
    assert "sqlnb-footer" in html
    assert "QUERY PLAN" in text
    assert "SQLError in statement 2" in text
    assert "flights_still_there" in html

    std = sqlite3.connect(f"file:{demo_db}?mode=ro", uri=True)
    try:
        # --tables: every table of the demo database with its column count
        tables = cell_with(frames, "%sql --tables")
        expected = [("main", name, "table", len(std.execute(f"PRAGMA table_info({name})").fetchall()))
                    for (name,) in std.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                               "AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name")]
        assert list(zip(tables.schema, tables.name, tables.type, tables["columns"])) == expected
        # the window functions: running totals and ranks, as the stdlib computes them
        for needle in ("AS running_total", "rank()         OVER w AS rnk"):
            source = next(c.source for c in cells if needle in c.source)
            sql = source.split("\n", 1)[1].replace(":carrier", "'UA'")
            got = cell_with(frames, needle)
            want = std.execute(sql).fetchall()
            assert [tuple(r) for r in got.itertuples(index=False)] == [tuple(r) for r in want], needle
        running = cell_with(frames, "AS running_total")
        assert running.iloc[-1].tolist() == ["2013-12-31", 143, 58665, 100.0]  # UA's year, as the text says
    finally:
        std.close()


LSM_DATA = """
rng = np.random.default_rng(5)
n = 50_000
t0 = int(pd.Timestamp("2026-01-01", tz="UTC").value // 1000)
ts = t0 + np.sort(rng.choice(86_400_000_000, size=n, replace=False))
kind = rng.choice(["view", "click", "buy"], size=n, p=[0.8, 0.17, 0.03])
df = pd.DataFrame({
    "ts": ts,
    "kind": kind,
    "user_id": rng.integers(1, 500, size=n),
    "amount": np.where(kind == "buy", rng.gamma(2.0, 20.0, n).round(2), np.nan),
})
"""


@pytest.mark.notebook
@pytest.mark.timeout(900)
def test_lsm_notebook_teaches_what_it_says(tmp_path, demo_db):
    import numpy as np
    import pandas as pd

    path = next(p for p in NOTEBOOKS if p.name == "05-lsm1.ipynb")
    cells, frames = run(path, tmp_path, demo_db)
    # the oracle: the notebook's data, generated again (the notebook must still generate it this way)
    load_cell = next(c.source for c in cells if "default_rng(5)" in c.source)
    for line in LSM_DATA.strip().splitlines():
        if not line.startswith(("rng =", "n =", "t0 =", "ts =", "kind =")):
            continue
        assert line.split("#")[0].strip() in load_cell, line
    ns = {"np": np, "pd": pd}
    exec(LSM_DATA, ns)
    df, t0 = ns["df"], ns["t0"]
    us = 1_000_000
    noon = t0 + 12 * 3600 * us
    out = {c.source: "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream") for c in cells}

    assert f"{len(df):,} events loaded" in cell_with(out, "events.load(df)")
    in_hour = int(((df.ts >= noon) & (df.ts < noon + 3600 * us)).sum())
    assert cell_with(out, "events between 12:00").startswith(f"{in_hour} events between 12:00 and 13:00; {in_hour}")
    hour = cell_with(frames, "events between 12:00")
    want = df[df.ts >= noon].head(5).reset_index(drop=True)
    assert hour.ts.tolist() == want.ts.tolist() and hour.kind.tolist() == want.kind.tolist()
    latest = cell_with(frames, "reverse=True, limit=5")
    assert latest.ts.tolist() == df[df.ts <= noon].ts.iloc[::-1].head(5).tolist()
    # the upsert and the rolled-back put
    assert cell_with(out, "events.put(noon").strip() == "('note', None, None) False"
    # the URL connection's per-kind summary: the day's events plus the one 'note'
    summary = cell_with(frames, "avg_ticket")
    counts = df.kind.value_counts()
    assert dict(zip(summary.kind, summary.n)) == {**{k: int(v) for k, v in counts.items()}, "note": 1}
    buy = summary.set_index("kind").loc["buy"]
    assert buy.revenue == pytest.approx(round(df.amount[df.kind == "buy"].sum(), 2))
    assert re.fullmatch(r"[\d.]+", str(buy.avg_ticket))


@pytest.mark.notebook
@pytest.mark.timeout(900)
def test_look_notebook_teaches_what_it_says(tmp_path, demo_db):
    """02-look-at-data: the profiles show (a sample says so), their numbers agree with the stdlib on
    the demo database, and every plot cell shows an image."""
    path = next(p for p in NOTEBOOKS if p.name == "02-look-at-data.ipynb")
    cells, frames = run(path, tmp_path, demo_db)
    html = "\n".join(o.get("data", {}).get("text/html", "") for c in cells for o in c.outputs)
    assert html.count('class="sqlnb-profile"') == 2 and "<svg" in html
    assert "a sample: the first 20,000 rows of flights" in html
    plot_cells = [c for c in cells if "sqlplot" in c.source or "plots.histogram" in c.source]
    assert len(plot_cells) == 6
    for c in plot_cells:
        assert any("image/png" in o.get("data", {}) for o in c.outputs), c.source
    std = sqlite3.connect(f"file:{demo_db}?mode=ro", uri=True)
    try:
        prof = cell_with(frames, "--profile -o delays").set_index("column")
        for col in ("dep_delay", "arr_delay", "carrier", "origin"):
            n, nulls, distinct = std.execute(f"SELECT count(*), count(*) - count({col}), count(DISTINCT {col}) "
                                             "FROM flights").fetchone()
            assert (prof.loc[col, "rows"], prof.loc[col, "null"], prof.loc[col, "distinct"]) == (n, nulls, distinct)
        mean, = std.execute("SELECT avg(dep_delay) FROM flights").fetchone()
        assert abs(prof.loc["dep_delay", "mean"] - mean) <= 1e-9 * abs(mean)
        sample = cell_with(frames, "--profile --limit 20000").set_index("column")
        assert (sample["rows"] == 20000).all() and len(sample) == 19
    finally:
        std.close()
