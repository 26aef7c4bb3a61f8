"""Column profiles computed inside SQLite: ``profile(con, table_or_sql)`` -> one row per column.

How it is computed (docs/look.md says the same for users):

* Engines with sqlnb's C functions (``sqlite``, ``bdb``): one read of the source for every column, and
  a second for the columns whose many TEXT/BLOB values repeat in no order (:mod:`sqlnb.look.exact`,
  C in ``sqlnb/_core/profile_exact.h``). A column the C path cannot finish exactly (a hash collision,
  values that change between the reads, too big for the memory budget alone) is profiled as below;
  ``.attrs["sql_columns"]`` names those.
* Plain SQL (the ``system`` engine, those columns, or ``C_EXACT = False``) with window functions: **one statement and one read of the
  source per column** (:func:`column_sql`). The column's values are grouped by (value, storage
  class) into a materialized CTE ``g`` (SQLite's grouping is a sort of the rows: the one sort of
  the rows per column); ``g`` is as small as the column's distinct values and is the only input of
  every statistic: storage-class counts, distinct count, min, max, the mean, the sum of squared
  deviations from that mean (two passes over ``g``, not over the rows: robust where
  ``sum(x*x) - n*mean**2`` is not), text lengths, the quartiles (a running
  ``sum(n) OVER (ORDER BY value)`` over the numeric groups finds the values at the two ranks
  around each quartile: a sort of the groups) and the most common values (a sort bounded to
  ``top`` rows). The first design crossed every row with a batch's column numbers and grouped
  all (column, value) pairs in one statement: one read, but a sort of rows x columns pairs and
  windows over them, several times slower than a sort per column.
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
from sqlnb.look import exact as _exact
from sqlnb.look import sketch as _sketch
from sqlnb.look.source import Source, resolve

#: columns per statement of the path without window functions: keeps the CASE, the column list
#: and the bound means far inside SQLite's limits (result columns, compound terms, variables)
BATCH = 100
QUANTILES = (0.25, 0.5, 0.75)
#: the most common values a profile keeps at most (the C functions' limit)
MAX_TOP = 65536
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
    """Every statistic of one column from one read of the source.

    ``g``: the column's groups ``(value, storage class, count)`` (NULL is a group; the GROUP BY is
    the one sort of the rows). Then, from ``g`` only: the counts per class, distinct count, min,
    max, numeric count and sum, text lengths (one pass); ``o``: the REAL groups equal to an INTEGER
    group (1 and 1.0 are two groups but one distinct value, as in pandas' ``nunique``); the sum of
    squared deviations from the mean (two-pass variance over the groups, not the rows); the values
    at the two ranks around each quartile (a running count over the numeric groups: a sort of the
    groups, not of the rows); the most common values (a sort bounded to ``top`` rows)."""
    col = src.column(name)
    num = f"g.{_NUM}"
    x = "CAST(g.v AS REAL)"
    stats = [f"sum(CASE WHEN g.t = '{c}' THEN g.n ELSE 0 END)" for c in CLASSES]
    stats += ["sum(g.t <> 'null')", "min(g.v)", "max(g.v)",
              f"sum(CASE WHEN {num} THEN g.n ELSE 0 END)", f"sum(CASE WHEN {num} THEN g.n * {x} END)",
              "min(CASE WHEN g.t = 'text' THEN length(g.v) END)", "max(CASE WHEN g.t = 'text' THEN length(g.v) END)"]
    ranks = ", ".join(f"CAST((n_num - 1) * {q!r} AS INTEGER) AS r{j}" for j, q in enumerate(QUANTILES))
    picks, near = [], []
    for j in range(len(QUANTILES)):
        picks.append(f"max(CASE WHEN q.cum - q.n <= r.r{j} AND r.r{j} < q.cum THEN q.x END)")
        picks.append(f"max(CASE WHEN q.cum - q.n <= r.r{j} + 1 AND r.r{j} + 1 < q.cum THEN q.x END)")
        near.append(f"(q.cum - q.n <= r.r{j} + 1 AND r.r{j} < q.cum)")
    mat = "MATERIALIZED " if materialized else ""
    # the CTEs' names are sqlnb's own: a source query may read tables called g, m, r or q
    return (
        f"WITH sqlnb_g(v, t, n) AS {mat}(SELECT x, typeof(x), count(*) FROM "
        f"(SELECT {col} AS x FROM ({src.select([name])}) AS s) GROUP BY x, typeof(x)), "
        f"sqlnb_m AS (SELECT sum(g.n) AS n_num, sum(g.n * {x}) / sum(g.n) AS mean FROM sqlnb_g AS g WHERE {num}), "
        f"sqlnb_r AS (SELECT {ranks} FROM sqlnb_m WHERE n_num > 0), "
        "sqlnb_q AS (SELECT CAST(v AS REAL) AS x, n, sum(n) OVER (ORDER BY CAST(v AS REAL) "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum FROM sqlnb_g WHERE {_NUM}) "
        + " UNION ALL ".join([
            _row("c", stats) + " FROM sqlnb_g AS g",
            _row("o", ["count(*)"]) + " FROM sqlnb_g AS a WHERE a.t = 'real' AND EXISTS "
            "(SELECT 1 FROM sqlnb_g AS b WHERE b.t = 'integer' AND b.v = a.v)",
            _row("s", [f"sum(g.n * ({x} - m.mean) * ({x} - m.mean))"]) + f" FROM sqlnb_g AS g, sqlnb_m AS m WHERE {num}",
            _row("q", picks) + f" FROM sqlnb_q AS q, sqlnb_r AS r WHERE {' OR '.join(near)}",
            _row("t", ["v", "n", "rn"]) + " FROM (SELECT v, n, row_number() OVER (ORDER BY n DESC, v) AS rn "
            f"FROM (SELECT v, n FROM sqlnb_g WHERE t <> 'null' ORDER BY n DESC, v LIMIT {int(top)}))",
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
    """Per column: one read of the source (:func:`column_sql`)."""
    out = []
    for name in names:
        st = _empty_stat()
        top_rows = []
        for kind, *rest in run.rows(column_sql(src, name, top, materialized)):
            if kind == "c":
                _take_stats(st, rest)
            elif kind == "o":
                st["distinct"] = (st["distinct"] or 0) - rest[0]
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


def _approx_record(name, decl, st, top) -> dict:
    """A profile row from one column's ``sqlnb_profile`` result (:func:`sqlnb.look.sketch.unpack`)."""
    n_num = st["n_num"]
    mean = st["total"] / n_num if n_num else math.nan
    std = math.sqrt(st["m2"] / (n_num - 1)) if n_num > 1 else math.nan
    quarts = [math.nan] * len(QUANTILES)
    if st["sample"]:
        for j, q in enumerate(QUANTILES):
            _, frac = quantile_ranks(st["sample"], q)
            quarts[j] = lerp(st["q"][2 * j], st["q"][2 * j + 1], frac)
    distinct = st["distinct_exact"]
    if distinct is None:
        distinct = int(round(st["distinct_estimate"]))
    counters = sorted(st["counters"], key=lambda c: (-c[1], _sketch.order_key(c[0])))[:top]
    tops = [((v + "\u2026" if isinstance(v, str) else v) if cut else v, n) for v, n, cut in counters]
    return {"column": name, "type": decl, "rows": st["rows"], **{c: int(st[c]) for c in CLASSES},
            "distinct": distinct, "min": st["min"], "max": st["max"], "mean": mean, "std": std,
            "25%": quarts[0], "50%": quarts[1], "75%": quarts[2],
            "min_length": st["min_length"], "max_length": st["max_length"], "top": tops}


def _approx_info(cols, stats, cfg) -> dict:
    """``.attrs["approx"]``: which statistics are approximate, for which columns, with what error."""
    hll = [n for n, st in zip(cols, stats) if st["distinct_exact"] is None]
    sampled = [n for n, st in zip(cols, stats) if st["sample"] < st["n_num"]]
    mg = {n: st["decrements"] for n, st in zip(cols, stats) if st["decrements"]}
    return {
        "scans": 1,
        "exact": ["rows", *CLASSES, "min", "max", "mean", "std", "min_length", "max_length"],
        "distinct": {"method": "HyperLogLog", "registers": 1 << cfg["p"],
                     "stderr": _sketch.hll_error(cfg["p"]), "exact_up_to": cfg["exact"], "columns": hll},
        "quartiles": {"method": "uniform reservoir sample", "sample": cfg["K"],
                      "rank_error": _sketch.rank_error(cfg["K"]), "columns": sampled},
        "top": {"method": "Misra-Gries", "counters": cfg["k"], "columns": list(mg),
                "undercount": mg, "bytes_kept": cfg["copy"]},
    }


def _approx(con, src: Source, top: int, run: _Runner):
    """Every column from ONE statement of ``sqlnb_profile`` calls (one read of the source)."""
    con.backend.install_c_aggregates(con)
    agg = con.backend.load().PROFILE_AGGREGATE
    cols = list(src.columns)
    cfg = _sketch.settings(len(cols), top)
    row = run.rows(_sketch.statement(src, agg, cols, cfg))[0] if cols else ()
    stats = [_sketch.unpack(b) for b in row]
    records = [_approx_record(n, t, st, top) for n, t, st in zip(cols, src.types, stats)]
    return records, _approx_info(cols, stats, cfg)


def profile(con, table_or_sql: str, *, sample: int | None = None, top: int = 5, approx: bool = False):
    """A profile of every column of a table, a view or a query, computed inside SQLite.

    :param con: an ``sqlnb.Connection`` (any engine, any mode: only SELECTs run).
    :param table_or_sql: a table or view name (``schema.name`` allowed; any characters,
        it is quoted), or a ``SELECT``/``WITH``/``VALUES`` query.
    :param sample: profile only the first ``sample`` rows in the source's order (a
        ``LIMIT``, not a random sample: a random one would have to read every row).
    :param top: how many most common values to keep per column (1 to :data:`MAX_TOP`).
    :param approx: one read of the source for all columns (the ``sqlnb_profile`` C aggregate):
        counts, min, max, mean, std and text lengths exact; distinct counts (HyperLogLog),
        quartiles (a sample) and common values (Misra-Gries) approximate beyond a size
        (docs/look.md). An engine without the aggregate (``system``) computes the exact
        profile instead and says why in ``.attrs["approx_unavailable"]``.
    :returns: a DataFrame, one row per column (:data:`COLUMNS`); ``.attrs`` holds
        ``source``, ``sample``, ``scans`` (reads of the source), ``statements``,
        ``rows_fetched`` (rows that left SQLite), ``engine``, ``approx`` (``{}`` for an exact
        profile; else what is approximate, for which columns, with what error), ``sql_columns``
        (an exact profile's columns computed with plain SQL instead of sqlnb's C functions).
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive number of values, got {top!r}")
    if top > MAX_TOP:
        raise ValueError(f"top must be at most {MAX_TOP:,} values, got {top:,}")
    src = resolve(con, table_or_sql, sample)
    backend = getattr(con, "backend", None)
    unavailable = ""
    if approx:
        unavailable = backend.lacks("c_aggregates") if backend is not None else "not an sqlnb connection"
    if approx and not unavailable:
        run = _Runner(con)
        records, info = _approx(con, src, top, run)
        return _frame(records, src, sample, run, con, info)
    run = _Runner(con)
    cols = list(src.columns)
    by_name = {}
    left = cols
    if C_EXACT and backend is not None and backend.has("c_aggregates"):
        backend.install_c_aggregates(con)
        done, left = _exact.run(run, src, cols, top)
        by_name = {n: _from_c(st) for n, st in done.items()}
    by_name.update(zip(left, _sql_stats(con, backend, run, src, left, top)))
    records = [_finish(n, t, by_name[n]) for n, t in zip(cols, src.types)]
    df = _frame(records, src, sample, run, con, {})
    df.attrs["sql_columns"] = list(left)
    if unavailable:
        df.attrs["approx_unavailable"] = unavailable
    return df


#: profile with the C functions where the engine has them (``sqlite``, ``bdb``); False: plain SQL
#: everywhere (the tests compare the two)
C_EXACT = True


def _from_c(st: dict) -> dict:
    """A column's statistics from the C functions (:mod:`sqlnb.look.exact`), as the SQL path gives them."""
    out = {key: st[key] for key in (*CLASSES, "distinct", "min", "max", "n_num", "total", "min_length",
                                     "max_length", "top")}
    out["ss"] = st["m2"] if st["n_num"] else None
    out["q"] = st["q"] if st["n_num"] else None
    return out


def _sql_stats(con, backend, run: _Runner, src, cols, top):
    """The statistics of ``cols`` in plain SQL: one read per column with window functions, else batches."""
    window = backend is None or backend.has("window")
    multirow = backend is None or backend.has("multirow_values")
    materialized = _version(con) >= (3, 35)
    stats = []
    for b in range(0, len(cols), BATCH):
        names = cols[b:b + BATCH]
        if window:
            stats += _window_batch(run, src, names, top, multirow, materialized)
        else:
            stats += _plain_batch(run, src, names, top, multirow)
    return stats


def _frame(records, src, sample, run: _Runner, con, approx: dict):
    import pandas as pd

    df = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    for key in ("min", "max", "top"):  # values as SQLite stored them (an int stays an int)
        df[key] = pd.Series([r[key] for r in records], index=df.index, dtype=object)
    for key in ("min_length", "max_length"):
        df[key] = pd.array([r[key] for r in records], dtype="Int64")
    df.attrs.update(source=src.label, sample=sample, scans=run.scans, statements=run.statements, rows_fetched=run.fetched,
                    engine=getattr(con, "engine", ""), approx=approx)
    return df


def _version(con) -> tuple:
    try:
        return tuple(int(x) for x in str(con.sqlite_version).split(".")[:2])
    except (AttributeError, ValueError):
        return (0, 0)


__all__ = ["profile", "MAX_TOP", "COLUMNS", "QUANTILES", "BATCH", "lerp", "quantile_ranks", "grouped_sql", "column_sql"]
