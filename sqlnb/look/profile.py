"""Column profiles computed inside SQLite: ``profile(con, table_or_sql)`` -> one row per column.

How it is computed (docs/look.md says the same for users):

* The source is read **once per batch of** :data:`BATCH` **columns**: each row is
  crossed with a small list of column numbers (``CROSS JOIN k``, so SQLite reads the
  source in the outer loop) and the ``(column, storage class, value)`` triples are
  grouped with their counts. That grouped table ``g`` (a materialized CTE) is the only
  thing built from the rows; every statistic is an aggregate over it:
  storage-class counts, ``count(DISTINCT)``, min, max, the mean, the sum of squared
  deviations from that mean (two passes over ``g``, not over the rows: robust where
  ``sum(x*x) - n*mean**2`` is not), text lengths, the quartiles (a running
  ``sum(n) OVER (PARTITION BY column ORDER BY value)`` finds the values at the two
  ranks around each quartile) and the most common values (``row_number()``).
* Quartiles follow pandas' default ``Series.quantile(q, interpolation="linear")``
  (numpy's "linear", Hyndman & Fan type 7): position ``h = (n-1)*q`` over the sorted
  numeric values, ``x[floor(h)] + (h - floor(h)) * (x[floor(h)+1] - x[floor(h)])``,
  evaluated the way numpy evaluates it.
* Engines without window functions (bdb's SQLite 3.7.6 core) cannot name ``g`` twice
  (no CTE) nor rank in SQL: the aggregates are one scan per batch, the squared
  deviations a second one (with the means bound as parameters), each quartile an
  ``ORDER BY value LIMIT 2 OFFSET floor(h)`` over the column (a scan with a bounded
  sort) and the common values a ``GROUP BY ... ORDER BY count DESC LIMIT k`` per column.
  The numbers are the same; the scans are more.

Numeric statistics (mean, std, quartiles) are over the column's INTEGER and REAL
values only, as float64; TEXT and BLOB values are counted, not converted.
"""
from __future__ import annotations

import math

from sqlnb import _sql
from sqlnb.look.source import Source, resolve

#: columns per statement: keeps the CASE, the column list and the bound means far
#: inside SQLite's limits (result columns, compound terms, variables) on every engine
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
_PAD = 13  # columns of the combined rows after (kind, i)
_PICKS = ["a0", "b0", "a1", "b1", "a2", "b2"]  # the values at the two ranks around each quartile


def _arm(kind: str, exprs: list[str], frm: str) -> str:
    cols = exprs + ["NULL"] * (_PAD - len(exprs))
    return f"SELECT '{kind}', i, {', '.join(cols)} FROM {frm}"


def window_sql(src: Source, names, top: int, multirow: bool, materialized: bool) -> str:
    """One statement: every statistic of a batch of columns, from one read of the source."""
    mat = "MATERIALIZED " if materialized else ""
    ranks = ", ".join(f"CAST((n_num - 1) * {q!r} AS INTEGER) AS r{j}" for j, q in enumerate(QUANTILES))
    picks = []
    for j in range(len(QUANTILES)):
        picks.append(f"max(CASE WHEN q.cum - q.n <= r.r{j} AND r.r{j} < q.cum THEN q.x END)")
        picks.append(f"max(CASE WHEN q.cum - q.n <= r.r{j} + 1 AND r.r{j} + 1 < q.cum THEN q.x END)")
    # only the rows holding a rank next to a quartile reach the GROUP BY (at most 6 per column)
    near = " OR ".join(f"(q.cum - q.n <= r.r{j} + 1 AND r.r{j} < q.cum)" for j in range(len(QUANTILES)))
    stats_cols = ["n_integer", "n_real", "n_text", "n_blob", "n_null", "n_distinct", "lo", "hi",
                  "n_num", "total", "len_lo", "len_hi"]
    return (
        f"WITH g(i, t, v, n) AS {mat}({grouped_sql(src, names, multirow)}), "
        f"c(i, {', '.join(stats_cols)}) AS ({_STATS.format(g='g')}), "
        "m AS (SELECT i, total / n_num AS mean FROM c WHERE n_num > 0), "
        "var AS (SELECT g.i AS i, sum(g.n * (CAST(g.v AS REAL) - m.mean) * (CAST(g.v AS REAL) - m.mean)) AS ss "
        f"FROM g JOIN m ON g.i = m.i WHERE g.{_NUM} GROUP BY g.i), "
        "q AS (SELECT i, CAST(v AS REAL) AS x, n, sum(n) OVER (PARTITION BY i ORDER BY CAST(v AS REAL) "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum FROM g WHERE {_NUM}), "
        f"r AS (SELECT i, {ranks} FROM c WHERE n_num > 0), "
        f"qs AS (SELECT q.i AS i, {', '.join(f'{p} AS {a}' for p, a in zip(picks, _PICKS))} "
        f"FROM q JOIN r ON q.i = r.i WHERE {near} GROUP BY q.i), "
        "tp AS (SELECT i, v, n FROM (SELECT i, v, n, row_number() OVER (PARTITION BY i ORDER BY n DESC, v) "
        f"AS rn FROM g WHERE t <> 'null') WHERE rn <= {int(top)}) "
        + " UNION ALL ".join([
            _arm("c", stats_cols, "c"),
            _arm("s", ["ss"], "var"),
            _arm("q", _PICKS, "qs"),
            _arm("t", ["v", "n"], "tp"),
        ]))


def _agg_terms(col: str) -> list[str]:
    """The cheap statistics of one column, as aggregates over the source (order of :data:`_AGG`)."""
    num = f"typeof({col}) IN ('integer', 'real')"
    return ([f"sum(typeof({col}) = '{c}')" for c in CLASSES[:4]] + [f"sum({col} IS NULL)",
            f"min({col})", f"max({col})", f"sum(CASE WHEN {num} THEN CAST({col} AS REAL) END)",
            f"min(CASE WHEN typeof({col}) = 'text' THEN length({col}) END)",
            f"max(CASE WHEN typeof({col}) = 'text' THEN length({col}) END)"])


_AGG = ("integer", "real", "text", "blob", "null", "min", "max", "total", "min_length", "max_length")


def aggregates_sql(src: Source, names) -> str:
    """One read of the source: counts per storage class, min, max, the numeric sum and the text
    lengths of every column of a batch (one result row)."""
    terms = [t for n in names for t in _agg_terms(src.column(n))]
    return f"SELECT {', '.join(terms)} FROM ({src.select(names)}) AS s"


def deviations_sql(src: Source, names) -> str:
    """One read of the source: each column's sum of squared deviations from its mean, the mean of
    column ``k`` bound as parameter ``?k+1`` (the second pass of the two-pass variance)."""
    terms = []
    for k, n in enumerate(names, 1):
        col = src.column(n)
        d = f"(CAST({col} AS REAL) - ?{k})"
        terms.append(f"sum(CASE WHEN typeof({col}) IN ('integer', 'real') THEN {d} * {d} END)")
    return f"SELECT {', '.join(terms)} FROM ({src.select(names)}) AS s"


def column_sql(src: Source, name: str, st: dict, top: int, materialized: bool = True) -> str:
    """One read of the source for one column: its ``(storage class, value, count)`` groups ``g``
    (one sort of that column) and, from ``g`` only, the distinct count, the most common values and
    the values next to the quartiles' ranks (a running count over the numeric groups)."""
    col = src.column(name)
    arms = ["SELECT 'd', count(*), NULL, NULL, NULL, NULL, NULL FROM g"]
    if st["integer"] and st["real"]:  # 1 and 1.0 are one distinct value (as in pandas' nunique)
        arms.append("SELECT 'o', count(*), NULL, NULL, NULL, NULL, NULL FROM g AS a WHERE a.t = 'real' AND "
                    "EXISTS (SELECT 1 FROM g AS b WHERE b.t = 'integer' AND b.v = a.v)")
    arms.append(f"SELECT 't', v, n, row_number() OVER (ORDER BY n DESC, v), NULL, NULL, NULL FROM "
                f"(SELECT v, n FROM g WHERE t <> 'null' ORDER BY n DESC, v LIMIT {int(top)})")
    n_num = st["integer"] + st["real"]
    if n_num:
        ranks = [quantile_ranks(n_num, q)[0] for q in QUANTILES]
        picks, near = [], []
        for r in ranks:
            picks.append(f"max(CASE WHEN cum - n <= {r} AND {r} < cum THEN x END)")
            picks.append(f"max(CASE WHEN cum - n <= {r + 1} AND {r + 1} < cum THEN x END)")
            near.append(f"(cum - n <= {r + 1} AND {r} < cum)")
        arms.append(f"SELECT 'q', {', '.join(picks)} FROM (SELECT x, n, sum(n) OVER (ORDER BY x ROWS BETWEEN "
                    "UNBOUNDED PRECEDING AND CURRENT ROW) AS cum FROM (SELECT CAST(v AS REAL) AS x, n FROM g "
                    f"WHERE {_NUM})) WHERE {' OR '.join(near)}")
    mat = "MATERIALIZED " if materialized else ""
    return (f"WITH g(t, v, n) AS {mat}(SELECT typeof(x), x, count(*) FROM "
            f"(SELECT {col} AS x FROM ({src.select([name])}) AS s) WHERE x IS NOT NULL GROUP BY typeof(x), x) "
            + " UNION ALL ".join(arms))




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
    """Aggregates of the batch (one read), squared deviations (one read), then one read per column
    with values for its distinct count, common values and quartiles."""
    out = [_empty_stat() for _ in names]
    row = run.rows(aggregates_sql(src, names))[0]
    w = len(_AGG)
    for i, st in enumerate(out):
        st.update(zip(_AGG, row[i * w:(i + 1) * w]))
        for c in CLASSES:
            st[c] = st[c] or 0  # sum() over no rows is NULL
        st["n_num"] = st["integer"] + st["real"]
    numeric = [i for i, st in enumerate(out) if st["n_num"]]
    if numeric:
        row = run.rows(deviations_sql(src, [names[i] for i in numeric]),
                       [out[i]["total"] / out[i]["n_num"] for i in numeric])[0]
        for i, ss in zip(numeric, row):
            out[i]["ss"] = ss
    for name, st in zip(names, out):
        if st["null"] == sum(st[c] for c in CLASSES):
            continue  # no values: nothing to group
        top_rows = []
        for kind, *rest in run.rows(column_sql(src, name, st, top, materialized)):
            if kind == "d":
                st["distinct"] += rest[0]
            elif kind == "o":
                st["distinct"] -= rest[0]
            elif kind == "t":
                top_rows.append((rest[2], rest[0], rest[1]))
            else:
                st["q"] = tuple(rest[:6])
        st["top"] = [(v, n) for _, v, n in sorted(top_rows, key=lambda r: r[0])]
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


__all__ = ["profile", "COLUMNS", "QUANTILES", "BATCH", "lerp", "quantile_ranks", "grouped_sql", "window_sql", "aggregates_sql", "deviations_sql",
           "column_sql"]
