"""sqlnb.profile: every statistic against pandas (and Python) computed on the same stored values.

The oracle reads the column's values back with a plain ``SELECT`` and computes: storage-class
counts by Python type, ``nunique``, min/max under SQLite's ordering (numbers < text < blob;
text by UTF-8 bytes, blobs by bytes), pandas' ``mean``/``std``/``quantile`` (default linear
interpolation) over the INTEGER and REAL values as float64, text lengths as SQLite's
``length()`` counts them, and value counts keyed by (storage class, value).
Counts, min, max and quartiles must be exact; mean and std within 1e-9 relative.

Each statistic is checked on both ways the exact profile is computed (the ``via`` fixture): ``c``,
the C functions of sqlnb's core where the engine has them (``sqlite``, ``bdb``; ``system`` has no C
code of ours and profiles with plain SQL even then), and ``sql``, plain SQL on every engine.
tests/test_profile_exact.py tests what only the C path does (its table and arrays, the memory
budget, the second read, hash collisions).
"""
from __future__ import annotations

import hashlib
import math
import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

import sqlnb
from sqlnb import _sql, errors
from sqlnb.look import profile as P

I64_MIN, I64_MAX = -(2**63), 2**63 - 1

MIXES = {
    "int": [1, -5, 0, 42, 42],
    "int_extremes": [I64_MIN, I64_MAX, 0, -1],
    "real": [1.5, -0.0, 2.25, 1e300, 1.5],
    "int_real": [1, 2.5, 2**53, -7, 1.0],
    "text": ["a", "", "δέλτα", "a", "zz"],
    "blob": [b"\x00\x01", b"", b"\xff", b"abc"],
    "int_text": [1, "1", 2, "two"],
    "real_blob": [1.5, b"x", 2.5, b""],
    "everything": [1, 2.5, "s", b"b", 1],
    "text_blob": ["t", b"t", "u", b"u"],
}
NULLS = {
    "no_nulls": lambda vals: vals,
    "some_null": lambda vals: [None if i % 2 else v for i, v in enumerate(vals)],
    "first_null": lambda vals: [None] + vals,
    "one_value": lambda vals: [None, None, vals[0], None],
}


def _cls(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        raise TypeError
    return {int: "integer", float: "real", str: "text", bytes: "blob"}[type(v)]


def _order_key(v):
    rank = {"integer": 1, "real": 1, "text": 2, "blob": 3}[_cls(v)]
    if rank == 1:
        return (1, v, b"")  # ints and floats compare numerically (Python does it exactly, as SQLite)
    return (rank, 0, v.encode("utf-8") if isinstance(v, str) else v)


def oracle(values):
    """What the profile of one column holding ``values`` must say."""
    classes = Counter(_cls(v) for v in values)
    present = [v for v in values if v is not None]
    nums = pd.Series([float(v) for v in present if _cls(v) in ("integer", "real")], dtype="float64")
    texts = [v.split("\x00")[0] for v in present if isinstance(v, str)]
    q = nums.quantile([0.25, 0.5, 0.75]) if len(nums) else None
    return {
        "rows": len(values), **{c: classes.get(c, 0) for c in P.CLASSES},
        "distinct": pd.Series(present, dtype=object).nunique(),
        # SQLite's order; an INTEGER and an equal REAL (1 and 1.0, 0 and -0.0): the INTEGER (docs/look.md)
        "min": min(present, key=lambda v: (_order_key(v), isinstance(v, float))) if present else None,
        "max": max(present, key=lambda v: (_order_key(v), isinstance(v, int))) if present else None,
        "mean": nums.mean() if len(nums) else math.nan,
        "std": nums.std() if len(nums) else math.nan,
        "quartiles": list(q) if q is not None else [math.nan] * 3,
        "min_length": min(map(len, texts)) if texts else None,
        "max_length": max(map(len, texts)) if texts else None,
        "counts": Counter((_cls(v), v) for v in present),
    }


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return type(a) is type(b) and a == b


def close(a, b, rel=1e-9):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


def compensated(con) -> bool:
    """SQLite >= 3.43 sums REAL values with Kahan-Babushka-Neumaier compensation; older cores
    (bdb's 3.7, an older stdlib) add them plainly, in the grouped values' order."""
    return tuple(int(x) for x in con.sqlite_version.split(".")[:2]) >= (3, 43)


def mean_ok(got, want, values, exact_sum):
    if close(got, want):
        return True
    # a plain floating sum errs by at most (n-1) * eps * sum(|x|): the bound an uncompensated
    # core is held to (it matters only where large values cancel, as in int_extremes)
    nums = [float(v) for v in values if v is not None and _cls(v) in ("integer", "real")]
    return not exact_sum and abs(got - want) <= len(nums) * 2.3e-16 * sum(map(abs, nums)) / len(nums)


def check(row, values, label="", exact_sum=True):
    want = oracle(values)
    for key in ("rows", *P.CLASSES, "distinct"):
        assert row[key] == want[key], (label, key, row[key], want[key])
    assert _same(row["min"], want["min"]), (label, "min", row["min"], want["min"])
    assert _same(row["max"], want["max"]), (label, "max", row["max"], want["max"])
    assert mean_ok(row["mean"], want["mean"], values, exact_sum), (label, "mean", row["mean"], want["mean"])
    assert close(row["std"], want["std"]), (label, "std", row["std"], want["std"])
    got_q = [row["25%"], row["50%"], row["75%"]]
    for g, w in zip(got_q, want["quartiles"]):
        assert (math.isnan(g) and math.isnan(w)) or g == w, (label, "quartiles", got_q, want["quartiles"])
    for key in ("min_length", "max_length"):
        got = row[key]
        got = None if pd.isna(got) else int(got)
        assert got == want[key], (label, key, got, want[key])
    counts = want["counts"]
    top = row["top"]
    assert [n for _, n in top] == sorted(counts.values(), reverse=True)[:5], (label, top)
    for v, n in top:
        assert counts[(_cls(v), v)] == n, (label, v, n)


@pytest.fixture(params=["c", "sql"])
def via(request, monkeypatch):
    """The way the exact profile is computed: the C functions where the engine has them, or plain SQL."""
    monkeypatch.setattr(P, "C_EXACT", request.param == "c")
    return request.param


def in_c(con, via) -> bool:
    return via == "c" and con.backend.has("c_aggregates")


def used_path(df, con, via):
    """Every column was computed the way ``via`` says (no fallback to SQL in the C path)."""
    assert df.attrs["sql_columns"] == ([] if in_c(con, via) else df["column"].tolist())


def _fill(con, name, columns: dict):
    cols = ", ".join(_sql.quote_identifier(c) for c in columns)
    con.execute(f"CREATE TABLE {_sql.quote_identifier(name)} ({cols})")
    n = max((len(v) for v in columns.values()), default=0)
    marks = ", ".join("?" * len(columns))
    for i in range(n):
        con.execute(f"INSERT INTO {_sql.quote_identifier(name)} VALUES ({marks})",
                    tuple(v[i] for v in columns.values()))
    con.commit()


def fill_mixes(con, nulls: str) -> dict:
    """Table ``t``: one column per storage-class mix of MIXES, NULLs placed by ``NULLS[nulls]``,
    padded with NULLs to one length; the columns as written."""
    columns = {mix: NULLS[nulls](list(vals)) for mix, vals in MIXES.items()}
    n = max(map(len, columns.values()))
    columns = {k: v + [None] * (n - len(v)) for k, v in columns.items()}
    _fill(con, "t", columns)
    return columns


@pytest.mark.parametrize("nulls", sorted(NULLS))
def test_every_storage_class_mix(con, nulls, via):
    columns = fill_mixes(con, nulls)
    df = sqlnb.profile(con, "t")
    used_path(df, con, via)
    assert list(df.columns) == list(P.COLUMNS)
    assert df["column"].tolist() == list(columns)
    for (_, row), (name, values) in zip(df.iterrows(), columns.items()):
        check(row, values, f"{con.engine}/{name}/{nulls}", exact_sum=compensated(con))


def test_numbers_against_pandas(con, via):
    """Many values, ties and a large offset (a naive sum-of-squares variance would lose it)."""
    rng = np.random.default_rng(5)
    ints = rng.integers(-50, 50, 997).tolist()
    reals = (1e9 + rng.normal(0, 1, 1001)).tolist()
    mixed = [x if i % 3 else int(x) for i, x in enumerate(rng.normal(100, 30, 1000).round(2).tolist())]
    n = 1001
    cols = {"ints": ints + [None] * (n - len(ints)), "reals": reals,
            "mixed": mixed + ["text"] * (n - len(mixed))}
    _fill(con, "nums", cols)
    df = sqlnb.profile(con, "nums")
    used_path(df, con, via)
    for (_, row), (name, values) in zip(df.iterrows(), cols.items()):
        check(row, values, f"{con.engine}/{name}")
    # the offset case: std about 1 around 1e9, exact to 1e-9 relative
    assert 0.9 < df.loc[1, "std"] < 1.1


def test_only_aggregates_leave_sqlite(con, via):
    con.execute("CREATE TABLE big (id INTEGER, x REAL, s TEXT)")
    con.executemany("INSERT INTO big VALUES (?, ?, ?)", [(i, i / 7, f"v{i % 50}") for i in range(5000)])
    con.commit()
    df = sqlnb.profile(con, "big")
    used_path(df, con, via)
    # per column: a stats row, a squared-deviation row, the quartiles' neighbours (one row, or
    # bdb's 3 x 2) and 5 common values: a few dozen rows of 5,000 x 3 values
    assert df.attrs["rows_fetched"] <= 3 * (2 + 6 + 5)
    assert df.loc[0, "distinct"] == 5000 and df.loc[2, "distinct"] == 50


def test_all_null_and_empty(con, via):
    _fill(con, "z", {"a": [None] * 4, "b": [None] * 4})
    df = sqlnb.profile(con, "z")
    used_path(df, con, via)
    assert df["null"].tolist() == [4, 4] and df["distinct"].tolist() == [0, 0]
    assert df["min"].isna().all() and df["mean"].isna().all() and df["top"].tolist() == [[], []]
    con.execute("CREATE TABLE e (x INTEGER, y TEXT)")
    df = sqlnb.profile(con, "e")
    used_path(df, con, via)
    assert df["column"].tolist() == ["x", "y"] and df["type"].tolist() == ["INTEGER", "TEXT"]
    assert df["rows"].tolist() == [0, 0] and df["distinct"].tolist() == [0, 0]
    assert df["std"].isna().all() and df["25%"].isna().all()


def test_names_that_need_quoting(con, via):
    names = ["order", "with space", 'quo"te', "it's", "naïve δ", "select"]
    cols = {n: [i, i + 1, None, "x"] for i, n in enumerate(names)}
    _fill(con, 'my "odd" table', cols)
    df = sqlnb.profile(con, 'my "odd" table')
    used_path(df, con, via)
    assert df["column"].tolist() == names
    for (_, row), (name, values) in zip(df.iterrows(), cols.items()):
        check(row, values, name)


def test_query_and_sample(con, via):
    _fill(con, "t", {"a": list(range(10)), "b": [str(i) for i in range(10)]})
    df = sqlnb.profile(con, "SELECT a, a * 2 AS twice FROM t WHERE a > 2")
    used_path(df, con, via)
    assert df["column"].tolist() == ["a", "twice"]
    check(df.iloc[1], [a * 2 for a in range(3, 10)])
    df = sqlnb.profile(con, "t", sample=4)
    assert df.attrs["sample"] == 4
    check(df.iloc[0], [0, 1, 2, 3])


def test_a_query_over_tables_named_like_the_profiles_own(con, via):
    """The statements name their own parts (CTEs, aliases): a source query reading tables called
    g, m, r, q, s or t still profiles (plain SQL once failed here with "circular reference: g")."""
    for name in ("g", "m", "r", "q", "s", "t"):
        _fill(con, name, {"a": [1, 2, 2, None]})
    sql = "SELECT g.a AS g, m.a + r.a AS r, q.a AS q FROM g, m, r, q, s, t WHERE g.a = m.a AND m.a = r.a " \
          "AND r.a = q.a AND q.a = s.a AND s.a = t.a"
    df = sqlnb.profile(con, sql)
    used_path(df, con, via)
    rows = con.execute(sql).fetchall()
    for j in range(3):
        check(df.iloc[j], [r[j] for r in rows], df.loc[j, "column"])


def wide_table(engine, tmp_path, ncols=2000):
    """Table ``w`` of ``ncols`` columns (ints in odd ones, text in even ones) and 6 rows; (con, names, rows)."""
    con = sqlnb.connect(str(tmp_path / "wide.db"), engine=engine)
    names = [f"c{i}" for i in range(ncols)]
    con.execute(f"CREATE TABLE w ({', '.join(names)})")
    rows = [tuple((r * 7 + i) % 5 if i % 2 else f"s{(r + i) % 3}" for i in range(ncols)) for r in range(6)]
    for r in rows:  # (literals: bdb allows 999 parameters a statement)
        con.execute(f"INSERT INTO w VALUES ({', '.join(str(v) if isinstance(v, int) else _sql.quote_literal(v) for v in r)})")
    return con, names, rows


def test_many_columns_are_batched(engine, tmp_path, via):
    """2,000 columns (SQLite's default column limit): the C path reads them all in one statement (a
    call per 100 columns); plain SQL one statement per column (per batch of columns on bdb)."""
    ncols = 2000
    con, names, rows = wide_table(engine, tmp_path, ncols)
    con.commit()
    df = sqlnb.profile(con, "w")
    used_path(df, con, via)
    assert len(df) == ncols
    for i in (0, 1, 99, 100, 101, 1998, 1999):
        check(df.iloc[i], [r[i] for r in rows], f"column {i}")
    if in_c(con, via):
        assert df.attrs["scans"] == 1   # every column in one read (a configuration statement besides)
        assert df.attrs["statements"] == 2
    elif con.backend.has("window"):
        # one read per column, whatever the width
        assert df.attrs["scans"] == ncols == df.attrs["statements"]
    con.close()


def test_scans_are_counted(con, via):
    _fill(con, "t", {"a": [1, 2, 3], "b": ["x", "y", None]})
    df = sqlnb.profile(con, "t")
    used_path(df, con, via)
    if in_c(con, via):
        assert df.attrs["scans"] == 1   # every column in one read: small columns need no second read
    elif con.backend.has("window"):
        # one read per column: every statistic of it from its groups
        assert df.attrs["scans"] == 2 == df.attrs["statements"]
    else:
        # bdb: aggregates, squared deviations, 3 quartile reads for the numeric column, one top-values read each
        assert df.attrs["scans"] == 2 + 3 + 2


def test_readonly_file_unchanged(engine, tmp_path, via):
    path = tmp_path / "ro.db"
    con = sqlnb.connect(str(path), engine=engine)
    _fill(con, "t", {"a": [1, 2.5, "x", None], "b": [b"z", 1, 2, 3]})
    con.close()
    # BerkeleyDB writes the file once more at the first open after it was written (its checkpoint),
    # read-only or not (see tests/test_integrity_modes.py): settle it, on every engine alike
    settle = sqlnb.connect(str(path), engine=engine, mode="ro")
    settle.execute("SELECT count(*) FROM t").fetchone()
    settle.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    ro = sqlnb.connect(str(path), engine=engine, mode="ro")
    df = sqlnb.profile(ro, "t")
    used_path(df, ro, via)
    check(df.iloc[0], [1, 2.5, "x", None])
    ro.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("bad, message", [
    ("no_such_table", "no table or view named 'no_such_table'"),
    ("", "expected a table or view name or a SELECT query"),
    ("SELECT nope FROM t", "no such column: nope"),
])
def test_bad_input_one_line(con, bad, message):
    _fill(con, "t", {"a": [1]})
    with pytest.raises(errors.Error) as info:
        sqlnb.profile(con, bad)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_options(con):
    _fill(con, "t", {"a": [1]})
    with pytest.raises(errors.ProgrammingError, match="sample must be a positive number of rows, got 0"):
        sqlnb.profile(con, "t", sample=0)
    with pytest.raises(ValueError, match="top must be a positive"):
        sqlnb.profile(con, "t", top=0)
    with pytest.raises(ValueError, match="top must be at most 65,536 values, got 65,537"):
        sqlnb.profile(con, "t", top=65537)


def test_quantile_definition_is_pandas_linear():
    rnd = random.Random(3)
    for n in (1, 2, 3, 4, 5, 10, 101):
        xs = sorted(rnd.uniform(-1e6, 1e6) for _ in range(n))
        want = pd.Series(xs).quantile([0.25, 0.5, 0.75]).tolist()
        got = []
        for q in P.QUANTILES:
            lo, frac = P.quantile_ranks(n, q)
            got.append(P.lerp(xs[lo], xs[min(lo + 1, n - 1)], frac))
        assert got == want


def test_time_limit_stops_a_profile(con):
    """A source of 10^9 rows under a 0.3 s limit: only the time limit can end the profile (no race: it
    would run for hours otherwise); the connection's own limit is back and it answers afterwards."""
    from sqlnb.notebook import look

    con.execute("CREATE TABLE t (x INTEGER)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    con.commit()
    before = con.statement_timeout
    with pytest.raises(errors.QueryTimeoutError):
        look.run_profile(con, "SELECT a.x AS x, b.x AS y FROM t a, t b, t c", timeout=0.3)
    assert con.statement_timeout == before
    assert con.execute("SELECT count(*) FROM t").fetchone() == (1000,)


def test_views_and_attached_schemas(con, tmp_path, via):
    _fill(con, "t", {"a": [1, 2, 3]})
    con.execute("CREATE VIEW v AS SELECT a * 10 AS b FROM t")
    df = sqlnb.profile(con, "v")
    assert df["column"].tolist() == ["b"]
    check(df.iloc[0], [10, 20, 30])
    other = sqlnb.connect(str(tmp_path / "aux.db"), engine=con.engine)
    _fill(other, "t", {"z": ["x", "y"]})
    other.close()
    con.execute("ATTACH DATABASE ? AS aux", (str(tmp_path / "aux.db"),))
    df = sqlnb.profile(con, "aux.t")
    assert df["column"].tolist() == ["z"] and df["text"].tolist() == [2]
    assert sqlnb.profile(con, "t")["column"].tolist() == ["a"]  # main first, as SQLite resolves a bare name
