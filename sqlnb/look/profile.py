"""Column profiles computed inside SQLite: ``profile(con, table_or_sql)`` -> one row per column.

How it is computed (docs/look.md says the same for users):

* Engines with window functions (``sqlite``, ``system``): **one statement, one read of the
  source and one sort per column** (:func:`column_sql`). The column's values are grouped
  (``GROUP BY x, typeof(x) ORDER BY x, typeof(x)``: SQLite's one temp B-tree); a running count of
  the numeric values and a "differs from the previous group" flag are computed over the groups in
  that order (no second sort); the grouped table ``g`` (a materialized CTE, as small as the
  column's distinct values) is then the only input of every statistic: storage-class counts,
  distinct count, min, max, the mean, the sum of squared deviations from that mean (two passes
  over ``g``, not over the rows: robust where ``sum(x*x) - n*mean**2`` is not), text lengths, the
  values at the two ranks around each quartile, and the most common values (a sort bounded to
  ``top`` rows). A sort per column is the price of exact distinct counts, quartiles and top
  values; one CROSS JOIN of all columns per batch (the first design) sorted 7x the rows with
  windows over them and was ~15x slower.
* Quartiles follow pandas' default ``Series.quantile(q, interpolation="linear")``
  (numpy's "linear", Hyndman & Fan type 7): position ``h = (n-1)*q`` over the sorted
  numeric values, ``x[floor(h)] + (h - floor(h)) * (x[floor(h)+1] - x[floor(h)])``,
  evaluated the way numpy evaluates it.
* Engines without window functions (bdb's SQLite 3.7.6 core) cannot name ``g`` twice
  (no CTE) nor rank in SQL: per batch of :data:`BATCH` columns the aggregates are one scan
  (the rows crossed with the column numbers and grouped), the squared deviations a second one
  (with the means bound as parameters), each quartile an ``ORDER BY value LIMIT 2 OFFSET floor(h)``
  over the column (a scan with a bounded sort) and the common values a
  ``GROUP BY ... ORDER BY count DESC LIMIT k`` per column. The numbers are the same.

Numeric statistics (mean, std, quartiles) are over the column's INTEGER and REAL
values only, as float64; TEXT and BLOB values are counted, not converted.
"""
from __future__ import annotations

import math

from sqlnb import _sql
from sqlnb.look.source import Source, resolve

#: columns per statement of the path without window functions: keeps the CASE, the column list
#: and the bound means far inside SQLite's limits (result columns, compound terms, variables)
BATCH = 100
QUANTILES = (0.25, 0.5, 0.75)
CLASSES = ("integer", "real", "text", "blob", "null")

#: the profile's columns, in order
COLUMNS = ("column", "type", "rows", "integer", "real", "text", "blob", "null", "distinct",
           "min", "max", "mean", "std", "25%", "50%", "75%", "min_length", "max_length", "top")

_NUM = "t IN ('integer', 'real')"


def lerp(a: float, b: float, t: float) -> float:
    """numpy's linear interpolation (``numpy.lib._function_base_impl._lerp``), step for step."""
    diff = b - a
    if t >= 0.5:
        return b - diff * (1 - t)
    return a + diff * t


def quantile_ranks(n: int, q: float) -> tuple[int, float]:
    """(0-based rank of the lower neighbour, fraction) of quantile ``q`` of ``n`` sorted values,
    computed as numpy computes its virtual index for the "linear" method."""
    virtual = n * q + (1 + q * (1 - 1 - 1)) - 1
    lo = math.floor(virtual)
    return int(min(max(lo, 0), n - 1)), virtual - lo


def _keys(m: int, multirow: bool) -> str:
    if multirow:
        return "SELECT column1 AS i FROM (VALUES " + ", ".join(f"({i})" for i in range(m)) + ")"
    return " UNION ALL ".join(f"SELECT {i} AS i" for i in range(m))


def grouped_sql(src: Source, names, multirow: bool) -> str:
    """``(i, t, v, n)``: each column's (number in batch, storage class, value, count); one read of the source."""
    case = " ".join(f"WHEN {i} THEN {src.column(n)}" for i, n in enumerate(names))
    return (f"SELECT i, typeof(v) AS t, v, count(*) AS n FROM ("
            f"SELECT k.i AS i, CASE k.i {case} END AS v FROM ({src.select(names)}) AS s CROSS JOIN ({_keys(len(names), multirow)}) AS k"
            f") GROUP BY i, typeof(v), v")


_STATS = ("SELECT i, "
          + ", ".join(f"sum(CASE WHEN t = '{c}' THEN n ELSE 0 END)" for c in CLASSES)
          + ", count(DISTINCT v), min(v), max(v), "
          f"sum(CASE WHEN {_NUM} THEN n ELSE 0 END), "
          f"sum(CASE WHEN {_NUM} THEN n * CAST(v AS REAL) END), "
          "min(CASE WHEN t = 'text' THEN length(v) END), max(CASE WHEN t = 'text' THEN length(v) END) "
          "FROM {g} GROUP BY i")
_W = 12  # values per row of :func:`column_sql` after the kind


def _row(kind: str, exprs: list[str]) -> str:
    return f"SELECT '{kind}', " + ", ".join(exprs + ["NULL"] * (_W - len(exprs)))


def column_sql(src: Source, name: str, top: int, materialized: bool = True) -> str:
    """Every statistic of one column from one read of the source and one sort of that column.

    ``g``: the column's groups ``(value, storage class, count)`` in the GROUP BY's own order
    (NULL, then numbers by value, an integer before an equal real, then text, then blobs), with
    a running count of the numeric values ``cum`` and ``new`` (the value differs from the previous
    group's: 1 and 1.0 are one distinct value, as in pandas' ``nunique``). The windows read ``g``
    in that order, so SQLite sorts nothing more (EXPLAIN QUERY PLAN: one temp B-tree, the GROUP
    BY's). Then, from ``g`` only (plain passes, no sort): the counts per class, distinct count,
    min, max, numeric sum, text lengths, the sum of squared deviations from the mean (two-pass
    variance over the groups), the values next to the quartiles' ranks, and the most common values
    (a sort bounded to ``top`` rows)."""
    col = src.column(name)
    num = f"g.{_NUM}"
    x = "CAST(g.v AS REAL)"
    stats = [f"sum(CASE WHEN g.t = '{c}' THEN g.n ELSE 0 END)" for c in CLASSES]
    stats += ["sum(CASE WHEN g.t <> 'null' AND g.new THEN 1 ELSE 0 END)", "min(g.v)", "max(g.v)",
              f"sum(CASE WHEN {num} THEN g.n ELSE 0 END)", f"sum(CASE WHEN {num} THEN g.n * {x} END)",
              "min(CASE WHEN g.t = 'text' THEN length(g.v) END)", "max(CASE WHEN g.t = 'text' THEN length(g.v) END)"]
    ranks = ", ".join(f"CAST((n_num - 1) * {q!r} AS INTEGER) AS r{j}" for j, q in enumerate(QUANTILES))
    picks, near = [], []
    for j in range(len(QUANTILES)):
        picks.append(f"max(CASE WHEN g.cum - g.n <= r.r{j} AND r.r{j} < g.cum THEN {x} END)")
        picks.append(f"max(CASE WHEN g.cum - g.n <= r.r{j} + 1 AND r.r{j} + 1 < g.cum THEN {x} END)")
        near.append(f"(g.cum - g.n <= r.r{j} + 1 AND r.r{j} < g.cum)")
    mat = "MATERIALIZED " if materialized else ""
    return (
        f"WITH g(v, t, n, cum, new) AS {mat}(SELECT v, t, n, sum(CASE WHEN {_NUM} THEN n ELSE 0 END) OVER w, "
        "v IS NOT lag(v) OVER w FROM (SELECT x AS v, typeof(x) AS t, count(*) AS n FROM "
        f"(SELECT {col} AS x FROM ({src.select([name])}) AS s) GROUP BY x, typeof(x) ORDER BY x, typeof(x)) "
        "WINDOW w AS (ORDER BY v, t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)), "
        f"m AS (SELECT sum(g.n) AS n_num, sum(g.n * {x}) / sum(g.n) AS mean FROM g WHERE {num}), "
        f"r AS (SELECT {ranks} FROM m WHERE n_num > 0) "
        + " UNION ALL ".join([
            _row("c", stats) + " FROM g",
            _row("s", [f"sum(g.n * ({x} - m.mean) * ({x} - m.mean))"]) + f" FROM g, m WHERE {num}",
            _row("q", picks) + f" FROM g, r WHERE {num} AND ({' OR '.join(near)})",
            _row("t", ["v", "n", "rn"]) + " FROM (SELECT v, n, row_number() OVER (ORDER BY n DESC, v) AS rn "
            f"FROM (SELECT v, n FROM g WHERE t <> 'null' ORDER BY n DESC, v LIMIT {int(top)}))",
        ]))


class _Runner:
    """Runs the profile's statements, counting those that read the source."""

    def __init__(self, con):
        self.con = con
        self.scans = 0
        self.statements = 0
        self.fetched = 0  # rows that left SQLite

    def rows(self, sql, params=None, scans=1):
        self.statements += 1
        self.scans += scans
        cur = self.con.execute(sql, params) if params else self.con.execute(sql)
        try:
            rows = cur.fetchall()
            self.fetched += len(rows)
            return rows
        finally:
            cur.close()


def _empty_stat():
    return {"integer": 0, "real": 0, "text": 0, "blob": 0, "null": 0, "distinct": 0, "min": None,
            "max": None, "n_num": 0, "total": None, "min_length": None, "max_length": None,
            "ss": None, "q": None, "top": []}


def _take_stats(stat, row):
    (stat["integer"], stat["real"], stat["text"], stat["blob"], stat["null"], stat["distinct"],
     stat["min"], stat["max"], stat["n_num"], stat["total"], stat["min_length"], stat["max_length"]) = row[:12]


def _window_batch(run: _Runner, src, names, top, multirow, materialized):
    """One read of the source per column (:func:`column_sql`)."""
    out = []
    for name in names:
        st = _empty_stat()
        top_rows = []
        for kind, *rest in run.rows(column_sql(src, name, top, materialized)):
            if kind == "c":
                _take_stats(st, rest)
            elif kind == "s":
                st["ss"] = rest[0]
            elif kind == "q":
                st["q"] = tuple(rest[:6])
            else:
                top_rows.append(tuple(rest[:3]))
        st["top"] = [(v, n) for v, n, _ in sorted(top_rows, key=lambda r: r[2])]
        out.append(st)
    return out


def _plain_batch(run: _Runner, src, names, top, multirow):
    """The same statistics without window functions or CTEs (bdb's 3.7 core): more scans."""
    out = [_empty_stat() for _ in names]
    g = f"({grouped_sql(src, names, multirow)})"
    for row in run.rows(_STATS.format(g=g)):
        _take_stats(out[row[0]], row[1:])
    means = [(i, st["total"] / st["n_num"]) for i, st in enumerate(out) if st["n_num"]]
    if means:
        m = " UNION ALL ".join("SELECT ? AS i, ? AS mean" for _ in means)
        sql = (f"SELECT g.i, sum(g.n * (CAST(g.v AS REAL) - m.mean) * (CAST(g.v AS REAL) - m.mean)) "
               f"FROM {g} AS g JOIN ({m}) AS m ON g.i = m.i WHERE g.{_NUM} GROUP BY g.i")
        for i, ss in run.rows(sql, [x for pair in means for x in pair]):
            out[i]["ss"] = ss
    for i, name in enumerate(names):
        st = out[i]
        col = src.column(name)
        if st["n_num"]:
            picks = []
            for q in QUANTILES:
                lo, _ = quantile_ranks(st["n_num"], q)
                vals = [r[0] for r in run.rows(
                    f"SELECT CAST(x AS REAL) FROM (SELECT {col} AS x FROM ({src.select([name])}) AS s) "
                    f"WHERE typeof(x) IN ('integer', 'real') ORDER BY 1 LIMIT 2 OFFSET {int(lo)}")]
                picks += [vals[0], vals[1] if len(vals) > 1 else None]
            st["q"] = tuple(picks)
        if st["distinct"]:
            st["top"] = [tuple(r) for r in run.rows(
                f"SELECT v, count(*) AS n FROM (SELECT {col} AS v FROM ({src.select([name])}) AS s) "
                f"WHERE v IS NOT NULL GROUP BY typeof(v), v ORDER BY n DESC, v LIMIT {int(top)}")]
    return out


def _finish(name, decl, st) -> dict:
    n_num = st["n_num"] or 0
    rows = sum(st[c] or 0 for c in CLASSES)
    mean = st["total"] / n_num if n_num else math.nan
    std = math.sqrt(st["ss"] / (n_num - 1)) if n_num > 1 and st["ss"] is not None else math.nan
    quarts = [math.nan] * len(QUANTILES)
    if n_num and st["q"] is not None:
        for j, q in enumerate(QUANTILES):
            a, b = st["q"][2 * j], st["q"][2 * j + 1]
            _, frac = quantile_ranks(n_num, q)
            quarts[j] = lerp(a, a if b is None else b, frac)
    return {"column": name, "type": decl, "rows": rows,
            **{c: int(st[c] or 0) for c in CLASSES}, "distinct": int(st["distinct"] or 0),
            "min": st["min"], "max": st["max"], "mean": mean, "std": std,
            "25%": quarts[0], "50%": quarts[1], "75%": quarts[2],
            "min_length": st["min_length"], "max_length": st["max_length"], "top": list(st["top"])}


def profile(con, table_or_sql: str, *, sample: int | None = None, top: int = 5):
    """A profile of every column of a table, a view or a query, computed inside SQLite.

    :param con: an ``sqlnb.Connection`` (any engine, any mode: only SELECTs run).
    :param table_or_sql: a table or view name (``schema.name`` allowed; any characters,
        it is quoted), or a ``SELECT``/``WITH``/``VALUES`` query.
    :param sample: profile only the first ``sample`` rows in the source's order (a
        ``LIMIT``, not a random sample: a random one would have to read every row).
    :param top: how many most common values to keep per column.
    :returns: a DataFrame, one row per column (:data:`COLUMNS`); ``.attrs`` holds
        ``source``, ``sample``, ``scans`` (reads of the source), ``statements``,
        ``rows_fetched`` (rows that left SQLite), ``engine``.
    """
    import pandas as pd

    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive number of values, got {top!r}")
    src = resolve(con, table_or_sql, sample)
    backend = getattr(con, "backend", None)
    window = backend is None or backend.has("window")
    multirow = backend is None or backend.has("multirow_values")
    materialized = _version(con) >= (3, 35)
    run = _Runner(con)
    stats = []
    cols = list(src.columns)
    for b in range(0, len(cols), BATCH):
        names = cols[b:b + BATCH]
        if window:
            stats += _window_batch(run, src, names, top, multirow, materialized)
        else:
            stats += _plain_batch(run, src, names, top, multirow)
    records = [_finish(n, t, st) for n, t, st in zip(cols, src.types, stats)]
    df = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    for key in ("min", "max", "top"):  # values as SQLite stored them (an int stays an int)
        df[key] = pd.Series([r[key] for r in records], index=df.index, dtype=object)
    for key in ("min_length", "max_length"):
        df[key] = pd.array([r[key] for r in records], dtype="Int64")
    df.attrs.update(source=src.label, sample=sample, scans=run.scans, statements=run.statements, rows_fetched=run.fetched,
                    engine=getattr(con, "engine", ""))
    return df


def _version(con) -> tuple:
    try:
        return tuple(int(x) for x in str(con.sqlite_version).split(".")[:2])
    except (AttributeError, ValueError):
        return (0, 0)


__all__ = ["profile", "COLUMNS", "QUANTILES", "BATCH", "lerp", "quantile_ranks", "grouped_sql", "column_sql"]
