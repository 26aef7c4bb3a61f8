"""Plots whose numbers are computed inside SQLite: only aggregated rows leave it.

Each plot has a data function (``histogram_data``, ``box_stats``, ``top_values``,
``time_series``, ``scatter_points``) returning the few aggregated rows as a
:class:`PlotData`, and a drawing function returning matplotlib ``Axes`` (matplotlib
is imported inside the drawing functions only). All take a Connection-like object and
a table, view or ``SELECT`` (see :func:`sqlnb.look.source.resolve`).

* histogram: min and max in one scan, then each value's bin by comparing it with the
  edges (bound as parameters; a balanced ``CASE`` tree) and ``GROUP BY`` bin in a second
  scan. Edges and bin rule are numpy's: ``linspace(min, max, bins + 1)``, bins half-open
  ``[e_i, e_i+1)``, the last closed. Date/time text columns are binned by ``julianday()``.
* boxplot: quartiles by ``row_number() OVER (PARTITION BY group ORDER BY value)`` (the
  profile's definition: pandas' linear interpolation), whiskers at the furthest values
  within 1.5 IQR of the box (matplotlib's rule) and the fliers beyond them (at most
  :data:`MAX_FLIERS` distinct values each side) in a second scan.
* bar, pie: ``GROUP BY`` value, the ``top`` most common, the rest summed as "other".
* line: ``GROUP BY`` the day, week (starting Monday) or month of a date/time column
  (TEXT that SQLite's date functions read, e.g. ISO-8601; other values are left out).
* scatter: every point when there are at most ``points``; else a uniform random sample of
  ``points`` rows without replacement (``ORDER BY random() LIMIT points``: SQLite reads
  every row and keeps only ``points`` of them in its sorter).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sqlnb import errors as _errors
from sqlnb.look import profile as _profile
from sqlnb.look.source import resolve

NUMERIC = "typeof(v) IN ('integer', 'real')"
MAX_BINS = 500  # edges are bound parameters: bdb allows 999 a statement
MAX_FLIERS = 100
SCATTER_POINTS = 2000
BUCKETS = {
    "day": "date(v)",
    "week": "date(v, '-6 days', 'weekday 1')",  # the Monday on or before the day
    "month": "strftime('%Y-%m-01', v)",
}
AGGREGATES = ("count", "sum", "avg", "min", "max")
JULIAN_UNIX_EPOCH = 2440587.5  # julianday('1970-01-01'): matplotlib's dates count days from there


@dataclass
class PlotData:
    """The aggregated rows behind one plot, and how many rows left SQLite to make them."""

    kind: str
    column: str
    values: dict = field(default_factory=dict)
    rows_fetched: int = 0
    statements: int = 0
    note: str = ""


class _Run(_profile._Runner):
    def data(self, kind, column, **values):
        return PlotData(kind, column, values, rows_fetched=self.fetched, statements=self.statements)


def _src_col(con, table_or_sql, column, sample=None):
    src = resolve(con, table_or_sql, sample)
    return src, src.column(column)


def _window(con) -> bool:
    backend = getattr(con, "backend", None)
    return backend is None or backend.has("window")


# --- histogram -------------------------------------------------------------------------------
def _bin_case(edges_count: int) -> str:
    """A balanced CASE tree giving the bin of ``x`` for inner edges bound as ?1..?n (numpy's rule)."""
    def tree(lo, hi):  # bins lo..hi; inner edge k+1 (1-based) separates bin k and k+1
        if lo == hi:
            return str(lo)
        mid = (lo + hi + 1) // 2
        return f"CASE WHEN x < ?{mid} THEN {tree(lo, mid - 1)} ELSE {tree(mid, hi)} END"
    return tree(0, edges_count)


def histogram_data(con, table_or_sql, column, *, bins=20, range=None, sample=None) -> PlotData:  # noqa: A002
    """Bin counts of ``column`` (numbers, or date/time text by ``julianday``) computed in SQLite.

    ``values``: ``edges`` (numpy's ``linspace``), ``counts`` (one per bin), ``dates`` (True when
    the edges are julian days), ``left_out`` (values neither numbers nor dates, and NULLs).
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise ValueError(f"bins must be a whole number from 1 to {MAX_BINS}, got {bins!r}")
    src, col = _src_col(con, table_or_sql, column, sample)
    run = _Run(con)
    source = f"(SELECT {col} AS v FROM ({src.select([column])}) AS s)"
    c_agg = _c_aggregates(con)
    if c_agg:   # one C call per row (_core/look.pxi); the dates, if any text, in a second read
        (packed,), = run.rows(f"SELECT sqlnb_numeric_range(v) FROM {source}")
        n_num, n_text, n_other = (int(n) for n in np.frombuffer(packed, dtype=np.int64, count=3))
        lo_n, hi_n = (float(x) for x in np.frombuffer(packed, dtype=np.float64, count=2, offset=24))
        n_date, lo_d, hi_d = 0, None, None
        if n_text:
            (n_date, lo_d, hi_d), = run.rows(
                f"SELECT count(j), min(j), max(j) FROM (SELECT julianday(v) AS j FROM {source} "
                "WHERE typeof(v) = 'text')")
    else:
        (n_num, n_text, n_date, n_other, lo_n, hi_n, lo_d, hi_d), = run.rows(
            f"SELECT sum({NUMERIC}), sum(typeof(v) = 'text'), sum(typeof(v) = 'text' AND julianday(v) IS NOT NULL), "
            f"sum(typeof(v) = 'blob'), min(CASE WHEN {NUMERIC} THEN CAST(v AS REAL) END), "
            f"max(CASE WHEN {NUMERIC} THEN CAST(v AS REAL) END), "
            "min(CASE WHEN typeof(v) = 'text' THEN julianday(v) END), max(CASE WHEN typeof(v) = 'text' THEN julianday(v) END) "
            f"FROM {source}")
    n_num, n_text, n_date = n_num or 0, n_text or 0, n_date or 0
    if n_num == 0 and n_date == 0:
        what = f"{n_text:,} TEXT values that are not dates" if n_text else (
            f"{n_other or 0:,} BLOB values" if n_other else "only NULLs")
        raise _errors.ProgrammingError(
            f"column {column!r} of {src.label} is not numeric nor date/time: it holds {what} "
            f"(a histogram needs numbers or dates; a bar chart counts other values)")
    dates = n_date > n_num
    x = "julianday(v)" if dates else "CAST(v AS REAL)"
    keep = "typeof(v) = 'text' AND julianday(v) IS NOT NULL" if dates else NUMERIC
    lo, hi = (lo_d, hi_d) if dates else (lo_n, hi_n)
    if range is not None:
        lo, hi = float(range[0]), float(range[1])
    edges = np.histogram_bin_edges(np.array([lo, hi], dtype=float), bins=bins, range=(lo, hi))
    if c_agg:
        arg = "CASE WHEN typeof(v) = 'text' THEN julianday(v) END" if dates else "v"
        (packed,), = run.rows(f"SELECT sqlnb_histogram({arg}, ?) FROM {source}",
                              [np.ascontiguousarray(edges, dtype=np.float64).tobytes()])
        counts = [0] * bins if packed is None else [int(n) for n in np.frombuffer(packed, dtype=np.int64)]
    else:
        inner = [float(e) for e in edges[1:-1]]
        params = inner + [float(edges[0]), float(edges[-1])]
        n_in = len(inner)
        rows = run.rows(
            f"SELECT b, count(*) FROM (SELECT {_bin_case(n_in)} AS b FROM (SELECT {x} AS x FROM "
            f"{source} WHERE {keep}) WHERE x >= ?{n_in + 1} AND x <= ?{n_in + 2}) GROUP BY b", params)
        counts = [0] * bins
        for b, n in rows:
            counts[int(b)] = int(n)
    left_out = (n_num + n_text + (n_other or 0)) - (n_date if dates else n_num)
    return run.data("histogram", column, edges=edges, counts=counts, dates=dates, left_out=left_out)


def _c_aggregates(con) -> bool:
    """Whether ``con``'s engine has sqlnb's C aggregates; registers them on it if so."""
    backend = getattr(con, "backend", None)
    if backend is None or not backend.has("c_aggregates"):
        return False
    backend.install_c_aggregates(con)
    return True


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(6.4, 3.6))
    return ax


def histogram(con, table_or_sql, column, *, bins=20, range=None, sample=None, ax=None):  # noqa: A002
    """A histogram of ``column`` whose bins are counted in SQLite; the matplotlib Axes."""
    d = histogram_data(con, table_or_sql, column, bins=bins, range=range, sample=sample)
    ax = _axes(ax)
    edges = d.values["edges"]
    if d.values["dates"]:
        edges = edges - JULIAN_UNIX_EPOCH
        ax.xaxis_date()
    ax.stairs(d.values["counts"], edges, fill=True, alpha=0.8)
    ax.set_xlabel(column)
    ax.set_ylabel("rows")
    ax.set_title(f"{column}: {sum(d.values['counts']):,} values in {len(d.values['counts'])} bins")
    ax.sqlnb = d
    return ax


# --- boxplot ---------------------------------------------------------------------------------
def _quartile_rows(run, con, inner_sql, groups_known=None):
    """``{group: (n, [a0, b0, a1, b1, a2, b2])}``: the values at the ranks around each quartile of
    ``x`` per ``g`` in ``inner_sql`` (columns g, x; numeric x only)."""
    out = {}
    if _window(con):
        picks = " OR ".join(f"rn IN (CAST((cnt - 1) * {q!r} AS INTEGER), CAST((cnt - 1) * {q!r} AS INTEGER) + 1)"
                            for q in _profile.QUANTILES)
        rows = run.rows(f"SELECT g, rn, x, cnt FROM (SELECT g, x, row_number() OVER (PARTITION BY g ORDER BY x) - 1 "
                        f"AS rn, count(*) OVER (PARTITION BY g) AS cnt FROM ({inner_sql})) WHERE {picks}")
        at: dict = {}
        for g, rn, x, cnt in rows:
            at.setdefault(g, ({}, cnt))[0][rn] = x
        for g, (xs, cnt) in at.items():
            vals = []
            for q in _profile.QUANTILES:
                lo, _ = _profile.quantile_ranks(cnt, q)
                vals += [xs[lo], xs.get(lo + 1)]
            out[g] = (cnt, vals)
        return out
    counts = run.rows(f"SELECT g, count(*) FROM ({inner_sql}) GROUP BY g")
    for g, cnt in counts:
        vals = []
        for q in _profile.QUANTILES:
            lo, _ = _profile.quantile_ranks(cnt, q)
            got = [r[0] for r in run.rows(f"SELECT x FROM ({inner_sql}) WHERE g IS ? ORDER BY x LIMIT 2 OFFSET {lo}",
                                          (g,))]
            vals += [got[0], got[1] if len(got) > 1 else None]
        out[g] = (cnt, vals)
    return out


def box_stats(con, table_or_sql, column, *, by=None, whis=1.5, sample=None) -> PlotData:
    """Per group of ``by`` (or for the whole column): q1, median, q3, whiskers and fliers, as
    matplotlib's ``bxp`` takes them (``values["stats"]``, a list of dicts)."""
    src = resolve(con, table_or_sql, sample)
    col = src.column(column)
    grp = src.column(by) if by is not None else "NULL"
    names = [column] + ([by] if by is not None else [])
    inner = (f"SELECT g, CAST(v AS REAL) AS x FROM (SELECT {grp} AS g, {col} AS v FROM "
             f"({src.select(names)}) AS s) WHERE {NUMERIC}")
    run = _Run(con)
    quart = _quartile_rows(run, con, inner)
    if not quart:
        raise _errors.ProgrammingError(f"column {column!r} of {src.label} holds no numbers to draw a boxplot of")
    stats = {}
    for g, (cnt, v) in quart.items():
        q = [_profile.lerp(v[2 * j], v[2 * j] if v[2 * j + 1] is None else v[2 * j + 1],
                           _profile.quantile_ranks(cnt, p)[1]) for j, p in enumerate(_profile.QUANTILES)]
        iqr = q[2] - q[0]
        stats[g] = {"label": "" if g is None and by is None else str(g), "q1": q[0], "med": q[1], "q3": q[2],
                    "n": cnt, "lo_fence": q[0] - whis * iqr, "hi_fence": q[2] + whis * iqr, "fliers": []}
    keys = list(stats)
    fences = " UNION ALL ".join("SELECT ? AS g, ? AS lo, ? AS hi" for _ in keys)
    params = [x for g in keys for x in (g, stats[g]["lo_fence"], stats[g]["hi_fence"])]
    for g, wlo, whi in run.rows(
            f"SELECT d.g, min(CASE WHEN d.x >= f.lo THEN d.x END), max(CASE WHEN d.x <= f.hi THEN d.x END) "
            f"FROM ({inner}) AS d JOIN ({fences}) AS f ON d.g IS f.g GROUP BY d.g", params):
        stats[g]["whislo"], stats[g]["whishi"] = wlo, whi
    for g in keys:
        st = stats[g]
        low = run.rows(f"SELECT DISTINCT x FROM ({inner}) WHERE g IS ? AND x < ? ORDER BY x LIMIT {MAX_FLIERS}",
                       (g, st["whislo"]))
        high = run.rows(f"SELECT DISTINCT x FROM ({inner}) WHERE g IS ? AND x > ? ORDER BY x DESC LIMIT {MAX_FLIERS}",
                        (g, st["whishi"]))
        st["fliers"] = [r[0] for r in low] + [r[0] for r in reversed(high)]
    order = sorted(keys, key=lambda g: (g is None, str(g) if not isinstance(g, (int, float)) else "", g
                                        if isinstance(g, (int, float)) else 0))
    return run.data("boxplot", column, stats=[stats[g] for g in order], by=by)


def boxplot(con, table_or_sql, column, *, by=None, whis=1.5, sample=None, ax=None):
    """Box plots of ``column`` (one per value of ``by``), every number computed in SQLite."""
    d = box_stats(con, table_or_sql, column, by=by, whis=whis, sample=sample)
    ax = _axes(ax)
    ax.bxp([{k: s[k] for k in ("label", "q1", "med", "q3", "whislo", "whishi", "fliers")}
            for s in d.values["stats"]], showfliers=True)
    ax.set_ylabel(column)
    if by is not None:
        ax.set_xlabel(by)
    ax.set_title(f"{column}" + (f" by {by}" if by else ""))
    ax.sqlnb = d
    return ax


# --- bar and pie ----------------------------------------------------------------------------
def top_values(con, table_or_sql, column, *, top=10, sample=None) -> PlotData:
    """The ``top`` most common values of ``column`` with counts, and the rest as ``other``."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive number of values, got {top!r}")
    src, col = _src_col(con, table_or_sql, column, sample)
    run = _Run(con)
    grouped = (f"SELECT v, count(*) AS n FROM (SELECT {col} AS v FROM ({src.select([column])}) AS s) "
               "GROUP BY typeof(v), v")
    if _window(con):
        rows = run.rows(f"SELECT v, n, sum(n) OVER () FROM ({grouped}) ORDER BY n DESC, v LIMIT {int(top)}")
        total = rows[0][2] if rows else 0
        rows = [r[:2] for r in rows]
    else:
        rows = [tuple(r) for r in run.rows(f"{grouped} ORDER BY n DESC, v LIMIT {int(top)}")]
        total = run.rows(f"SELECT count(*) FROM ({src.select([column])})")[0][0]
    other = int(total) - sum(n for _, n in rows)
    return run.data("bar", column, labels=[v for v, _ in rows], counts=[int(n) for _, n in rows], other=other)


def _labels(values):
    return ["NULL" if v is None else str(v) for v in values]


def _top_with_other(con, table_or_sql, column, top, sample):
    """The top values of ``column`` (bar and pie): ``(data, labels, counts)``, with "other" last when
    other values exist."""
    d = top_values(con, table_or_sql, column, top=top, sample=sample)
    labels, counts = _labels(d.values["labels"]), list(d.values["counts"])
    if d.values["other"]:
        labels.append("other")
        counts.append(d.values["other"])
    return d, labels, counts


def bar(con, table_or_sql, column, *, top=10, sample=None, ax=None):
    """Bars of the ``top`` most common values of ``column`` and one for all others."""
    d, labels, counts = _top_with_other(con, table_or_sql, column, top, sample)
    ax = _axes(ax)
    ax.bar(range(len(counts)), counts, tick_label=labels)
    ax.tick_params(axis="x", labelrotation=45)
    ax.set_ylabel("rows")
    ax.set_title(f"{column}: the {len(d.values['counts'])} most common values")
    ax.sqlnb = d
    return ax


def pie(con, table_or_sql, column, *, top=10, sample=None, ax=None):
    """A pie of the ``top`` most common values of ``column`` and one slice for all others."""
    d, labels, counts = _top_with_other(con, table_or_sql, column, top, sample)
    ax = _axes(ax)
    ax.pie(counts, labels=labels, autopct="%1.0f%%")
    ax.set_title(column)
    ax.sqlnb = d
    return ax


# --- line over time ------------------------------------------------------------------------------
def time_series(con, table_or_sql, column, *, y=None, by="day", agg="count", sample=None) -> PlotData:
    """Rows (or ``agg`` of ``y``) per day, week or month of the date/time column ``column``."""
    if by not in BUCKETS:
        raise ValueError(f"by must be one of {', '.join(BUCKETS)}, got {by!r}")
    if agg not in AGGREGATES:
        raise ValueError(f"agg must be one of {', '.join(AGGREGATES)}, got {agg!r}")
    src, col = _src_col(con, table_or_sql, column, sample)
    names = [column] + ([y] if y is not None else [])
    if agg != "count" and y is None:
        raise ValueError(f"agg={agg!r} needs y (the column to aggregate)")
    yexpr = src.column(y) if y is not None else "1"
    value = "count(*)" if agg == "count" and y is None else (
        f"count(w)" if agg == "count" else f"{agg}(CASE WHEN typeof(w) IN ('integer', 'real') THEN w END)")
    run = _Run(con)
    bucket = f"CASE WHEN typeof(v) = 'text' THEN {BUCKETS[by]} END"  # (a number would be read as a julian day)
    rows = run.rows(f"SELECT b, {value} FROM (SELECT {bucket} AS b, w FROM (SELECT {col} AS v, {yexpr} AS w "
                    f"FROM ({src.select(names)}) AS s)) WHERE b IS NOT NULL GROUP BY b ORDER BY b")
    if not rows:
        raise _errors.ProgrammingError(f"column {column!r} of {src.label} holds no dates or times to plot over")
    return run.data("line", column, buckets=[r[0] for r in rows], values=[r[1] for r in rows], by=by, agg=agg, y=y)


def line(con, table_or_sql, column, *, y=None, by="day", agg="count", sample=None, ax=None):
    """A line over time: rows (or ``agg`` of ``y``) per day/week/month of ``column``."""
    import pandas as pd

    d = time_series(con, table_or_sql, column, y=y, by=by, agg=agg, sample=sample)
    ax = _axes(ax)
    ax.plot(pd.to_datetime(d.values["buckets"]), d.values["values"])
    ax.set_ylabel("rows" if y is None else f"{agg}({y})")
    ax.set_xlabel(f"{column} by {by}")
    ax.set_title(f"{'rows' if y is None else f'{agg} of {y}'} per {by}")
    ax.sqlnb = d
    return ax


# --- scatter -------------------------------------------------------------------------------------
def scatter_points(con, table_or_sql, x, y, *, points=SCATTER_POINTS) -> PlotData:
    """Up to ``points`` (x, y) pairs with both numeric: all of them, or a uniform random sample."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise ValueError(f"points must be a positive number, got {points!r}")
    src = resolve(con, table_or_sql)
    cx, cy = src.column(x), src.column(y)
    inner = (f"SELECT CAST(a AS REAL) AS x, CAST(b AS REAL) AS y FROM (SELECT {cx} AS a, {cy} AS b FROM "
             f"({src.select([x, y] if x != y else [x])}) AS s) WHERE typeof(a) IN ('integer', 'real') "
             "AND typeof(b) IN ('integer', 'real')")
    run = _Run(con)
    total = run.rows(f"SELECT count(*) FROM ({inner})")[0][0]
    sampled = total > points
    rows = run.rows(f"SELECT x, y FROM ({inner})" + (f" ORDER BY random() LIMIT {int(points)}" if sampled else ""))
    d = run.data("scatter", x, x=[r[0] for r in rows], y=[r[1] for r in rows], total=total, y_column=y,
                 sampled=sampled)
    if sampled:
        d.note = f"a random sample of {len(rows):,} of {total:,} points"
    return d


def scatter(con, table_or_sql, x, y, *, points=SCATTER_POINTS, ax=None):
    """A scatter of ``x`` against ``y``; above ``points`` rows, a uniform random sample of them."""
    d = scatter_points(con, table_or_sql, x, y, points=points)
    ax = _axes(ax)
    ax.scatter(d.values["x"], d.values["y"], s=6, alpha=0.5)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{y} against {x}" + (f" ({d.note})" if d.note else ""))
    ax.sqlnb = d
    return ax


__all__ = ["histogram", "histogram_data", "boxplot", "box_stats", "bar", "pie", "top_values", "line",
           "time_series", "scatter", "scatter_points", "PlotData", "MAX_BINS", "SCATTER_POINTS"]
