"""sqlnb.look.plots: the numbers behind each plot against numpy/pandas/matplotlib on the same data,
only aggregated rows leaving SQLite, ro files unchanged, bad input in one line; and ``%sqlplot``."""
from __future__ import annotations

import hashlib
import math
from collections import Counter

import matplotlib
import numpy as np
import pandas as pd
import pytest

import sqlnb
from sqlnb import errors
from sqlnb.look import plots
from tests.magics_shell import close_shell, new_shell

matplotlib.use("Agg")

N = 4000


@pytest.fixture
def data(con):
    """``t``: x (normal reals with a few ints and texts mixed in), g (group), d (date text), k (category)."""
    rng = np.random.default_rng(11)
    xs = rng.normal(10, 4, N).round(3)
    rows = []
    for i in range(N):
        x = float(xs[i]) if i % 50 else int(xs[i])
        if i % 397 == 0:
            x = "n/a"
        if i % 211 == 0:
            x = None
        day = pd.Timestamp("2023-12-20") + pd.Timedelta(hours=int(i * 7 % (24 * 70)))
        rows.append((x, "abc"[i % 3] if i % 13 else None, day.strftime("%Y-%m-%d %H:%M:%S"),
                     f"k{int(abs(rng.normal(0, 6)))}", i * 0.5))
    con.execute("CREATE TABLE t (x, g TEXT, d TEXT, k TEXT, w REAL)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
    con.commit()
    return pd.DataFrame(rows, columns=["x", "g", "d", "k", "w"])


def numeric(series):
    return series[series.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v == v)].astype(float)


@pytest.mark.parametrize("bins", [1, 7, 20, 113])
def test_histogram_counts_match_numpy(con, data, bins):
    d = plots.histogram_data(con, "t", "x", bins=bins)
    xs = numeric(data["x"]).to_numpy()
    want, edges = np.histogram(xs, bins=d.values["edges"])
    assert np.array_equal(edges, np.histogram_bin_edges(xs, bins=bins))  # numpy's own edges
    assert d.values["counts"] == want.tolist()
    assert d.values["left_out"] == data["x"].map(lambda v: isinstance(v, str)).sum()
    # the min/max row, a dates row when the column holds text (C path), and at most one row per bin
    assert d.rows_fetched <= bins + 2


def test_histogram_given_range_and_dates(con, data):
    d = plots.histogram_data(con, "t", "x", bins=10, range=(5, 15))
    want, _ = np.histogram(numeric(data["x"]).to_numpy(), bins=10, range=(5, 15))
    assert d.values["counts"] == want.tolist()
    d = plots.histogram_data(con, "t", "d", bins=9)
    assert d.values["dates"]
    jd = pd.to_datetime(data["d"]).map(lambda t: t.to_julian_date()).to_numpy()
    want, _ = np.histogram(jd, bins=d.values["edges"])
    assert d.values["counts"] == want.tolist()


def test_histogram_of_a_numeric_column_is_two_reads_without_a_sort(con):
    """Where the engine has sqlnb's C aggregates (sqlite, bdb): one read for the range, one for the
    counts, one row each, no sorter; values on the edges, big integers and -0.0 as numpy bins them."""
    vals = [0, -0.0, 1, 2.5, 2**53, -(2**53), 10.0, 10, 1e-300, None, b"\x00", "7"]
    con.execute("CREATE TABLE h (x)")
    con.executemany("INSERT INTO h VALUES (?)", [(v,) for v in vals])
    con.commit()
    nums = np.array([float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)])
    for bins in (1, 3, 64):
        d = plots.histogram_data(con, "h", "x", bins=bins)
        want, edges = np.histogram(nums, bins=bins)
        assert np.array_equal(d.values["edges"], edges)
        assert d.values["counts"] == want.tolist()
        assert d.values["left_out"] == 2  # the BLOB and the TEXT that is no date
        if con.backend.has("c_aggregates"):
            assert (d.statements, d.rows_fetched) == (3, 3)  # + the dates read: the column holds text
    con.execute("DELETE FROM h WHERE typeof(x) IN ('text', 'blob')")
    con.commit()
    d = plots.histogram_data(con, "h", "x", bins=5, range=(0, 10))
    assert d.values["counts"] == np.histogram(nums, bins=5, range=(0, 10))[0].tolist()
    if con.backend.has("c_aggregates"):
        assert (d.statements, d.rows_fetched) == (2, 2)
        plan = " ".join(str(r) for r in con.execute(
            "EXPLAIN QUERY PLAN SELECT sqlnb_histogram(x, ?) FROM h", [np.zeros(3).tobytes()]).fetchall())
        assert "TEMP B-TREE" not in plan, plan
        with pytest.raises(sqlnb.OperationalError, match="sqlnb_histogram: the edges must be a BLOB"):
            con.execute("SELECT sqlnb_histogram(x, 'not edges') FROM h").fetchall()
        with pytest.raises(sqlnb.OperationalError, match="sqlnb_histogram: the edges must increase"):
            con.execute("SELECT sqlnb_histogram(x, ?) FROM h", [np.array([0.0, 2.0, 1.0]).tobytes()]).fetchall()
        assert con.execute("SELECT sqlnb_histogram(x, ?) FROM h WHERE 0", [np.zeros(3).tobytes()]).fetchall() == [(None,)]
    else:
        assert con.backend.lacks("c_aggregates")


def test_boxplot_stats_match_pandas_and_matplotlib(con, data):
    from matplotlib import cbook

    d = plots.box_stats(con, "t", "x", by="g")
    stats = {s["label"]: s for s in d.values["stats"]}
    groups = {("None" if g is None else g): sub for g, sub in
              data.assign(g=data["g"].astype(object)).groupby(data["g"].fillna("None"))}
    assert set(stats) == set(groups)
    for label, sub in groups.items():
        xs = numeric(sub["x"])
        q = xs.quantile([0.25, 0.5, 0.75]).tolist()
        s = stats[label]
        assert [s["q1"], s["med"], s["q3"]] == q
        ref = cbook.boxplot_stats(xs.to_numpy())[0]
        assert (s["whislo"], s["whishi"]) == (ref["whislo"], ref["whishi"])
        assert sorted(s["fliers"]) == sorted(set(ref["fliers"].tolist()))
    whole = plots.box_stats(con, "t", "x").values["stats"][0]
    assert whole["med"] == numeric(data["x"]).median()


def test_top_values_and_other(con, data):
    d = plots.top_values(con, "t", "k", top=4)
    counts = data["k"].value_counts()
    assert d.values["counts"] == counts.iloc[:4].tolist()
    assert [counts[v] for v in d.values["labels"]] == d.values["counts"]
    assert d.values["other"] == N - sum(d.values["counts"])
    assert d.rows_fetched <= 4 + 1


@pytest.mark.parametrize("every, freq", [("day", "D"), ("week", "W-MON"), ("month", "MS")])
def test_time_series_buckets(con, data, every, freq):
    d = plots.time_series(con, "t", "d", by=every)
    ts = pd.to_datetime(data["d"])
    if every == "week":
        key = (ts.dt.normalize() - pd.to_timedelta(ts.dt.day_of_week, unit="D")).dt.strftime("%Y-%m-%d")
    elif every == "month":
        key = ts.dt.strftime("%Y-%m-01")
    else:
        key = ts.dt.strftime("%Y-%m-%d")
    want = key.value_counts().sort_index()
    assert d.values["buckets"] == want.index.tolist() and d.values["values"] == want.tolist()
    s = plots.time_series(con, "t", "d", y="w", by=every, agg="sum")
    assert s.values["values"] == pytest.approx(data.groupby(key)["w"].sum().tolist(), rel=1e-12)


def test_scatter_samples_above_the_limit(con, data):
    small = plots.scatter_points(con, "t", "w", "w", points=N)
    assert small.values["total"] == N and not small.values["sampled"] and len(small.values["x"]) == N
    d = plots.scatter_points(con, "t", "x", "w", points=300)
    pairs = set(zip(numeric(data["x"]).tolist(), data.loc[numeric(data["x"]).index, "w"].tolist()))
    assert d.values["sampled"] and len(d.values["x"]) == 300 and d.rows_fetched == 301
    assert set(zip(d.values["x"], d.values["y"])) <= pairs
    assert "random sample of 300" in d.note


def test_drawing_returns_axes(con, data):
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    for ax in (plots.histogram(con, "t", "x"), plots.histogram(con, "t", "d"), plots.boxplot(con, "t", "x", by="g"),
               plots.bar(con, "t", "k", top=3), plots.pie(con, "t", "g"), plots.line(con, "t", "d", by="week"),
               plots.scatter(con, "t", "x", "w", points=100)):
        assert isinstance(ax, Axes) and ax.sqlnb.rows_fetched < 600
        assert ax.patches or ax.lines or ax.collections
    plt.close("all")


def test_only_aggregates_leave_sqlite_on_a_big_table(con):
    con.execute("CREATE TABLE big (v REAL, c TEXT)")
    con.executemany("INSERT INTO big VALUES (?, ?)", ((i * 0.37 % 1000, f"c{i % 40}") for i in range(60_000)))
    con.commit()
    fetched = [plots.histogram_data(con, "big", "v", bins=50).rows_fetched,
               plots.box_stats(con, "big", "v").rows_fetched,
               plots.top_values(con, "big", "c").rows_fetched,
               plots.scatter_points(con, "big", "v", "v").rows_fetched]
    assert max(fetched) <= plots.SCATTER_POINTS + 1, fetched


def test_plot_under_ro_writes_nothing(engine, tmp_path):
    path = tmp_path / "ro.db"
    con = sqlnb.connect(str(path), engine=engine)
    con.execute("CREATE TABLE t (x REAL, g TEXT, d TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i / 3, "ab"[i % 2], f"2024-01-{1 + i % 28:02d}") for i in range(500)])
    con.commit()
    con.close()
    # BerkeleyDB writes the file once more at the first open after it was written (its checkpoint),
    # read-only or not (see tests/test_integrity_modes.py): settle it, on every engine alike
    settle = sqlnb.connect(str(path), engine=engine, mode="ro")
    settle.execute("SELECT count(*) FROM t").fetchone()
    settle.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    ro = sqlnb.connect(str(path), engine=engine, mode="ro")
    plots.histogram(ro, "t", "x")
    plots.boxplot(ro, "t", "x", by="g")
    plots.bar(ro, "t", "g")
    plots.line(ro, "t", "d", by="month")
    plots.scatter(ro, "t", "x", "x", points=50)
    ro.close()
    import matplotlib.pyplot as plt

    plt.close("all")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("call, message", [
    (lambda c: plots.histogram_data(c, "t", "nope"), "no column named 'nope' in t"),
    (lambda c: plots.histogram_data(c, "t", "k"), "column 'k' of t is not numeric nor date/time"),
    (lambda c: plots.histogram_data(c, "missing", "x"), "no table or view named 'missing'"),
    (lambda c: plots.box_stats(c, "t", "k"), "column 'k' of t holds no numbers"),
    (lambda c: plots.time_series(c, "t", "x"), "column 'x' of t holds no dates"),
    (lambda c: plots.histogram_data(c, "t", "x", bins=0), "bins must be a whole number from 1 to 500"),
    (lambda c: plots.time_series(c, "t", "d", by="hour"), "by must be one of day, week, month"),
])
def test_bad_input_one_line(con, data, call, message):
    with pytest.raises((errors.Error, ValueError)) as info:
        call(con)
    assert message in str(info.value) and "\n" not in str(info.value)


# --- %sqlplot and %sql --profile -------------------------------------------------------------
@pytest.fixture
def ip(tmp_path):
    shell = new_shell()
    shell.run_cell(f"%sql sqlite:///{tmp_path / 'm.db'}")
    shell.run_cell("%sql CREATE TABLE t (x REAL, c TEXT, d TEXT)")
    con = shell._sqlnb_magics.session.get()
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i % 17 * 1.5, f"c{i % 5}", f"2024-03-{1 + i % 30:02d}")
                                                       for i in range(300)])
    con.commit()
    yield shell
    close_shell(shell)


def test_sqlplot_magic_draws_each_kind(ip):
    from matplotlib.axes import Axes

    lines = ["histogram --table t --column x --bins 5", "boxplot -t t -c x --by c", "bar -t t -c c --top 2",
             "pie -t t -c c", "line -t t -c d --every week", "line -t t -c d -y x --agg avg --every month",
             "scatter -t t -c x -y x --points 10", 'histogram --table "SELECT x * 2 AS y FROM t" --column y']
    for line in lines:
        ax = ip.run_line_magic("sqlplot", line)
        assert isinstance(ax, Axes), line
    assert ax.sqlnb.values["counts"] == plots.histogram_data(
        ip._sqlnb_magics.session.get(), "SELECT x * 2 AS y FROM t", "y").values["counts"]


def test_sqlplot_bad_input_is_one_line(ip):
    from IPython.core.error import UsageError

    for line, message in [("histogram -t t -c nope", "no column named 'nope' in t"),
                          ("histogram -t t -c c", "column 'c' of t is not numeric nor date/time"),
                          ("violin -t t -c x", "invalid choice: 'violin'"),
                          ("histogram -t t", "required: -c/--column")]:
        with pytest.raises(UsageError) as info:
            ip.run_line_magic("sqlplot", line)
        assert message in str(info.value) and "\n" not in str(info.value), line


def test_profile_magic(ip):
    ip.run_cell("p = %sql --profile t")
    p = ip.user_ns["p"]
    assert p["column"].tolist() == ["x", "c", "d"] and p.attrs["scans"] == 1  # every column in one read (C)
    html = p._repr_html_()
    assert html.count("<svg") == 3 and "1 read of the source" in html
    ip.run_cell("%%sql --profile --limit 10 -o q\nSELECT c FROM t")
    q = ip.user_ns["q"]
    assert q["rows"].tolist() == [10] and "a sample: the first 10 rows" in q._repr_html_()
    with pytest.raises(errors.ProgrammingError, match="no table or view named 'nope'"):
        ip.run_cell("%sql --profile nope")
