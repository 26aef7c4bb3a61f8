"""sqlnb.profile(approx=True): one scan, the sqlnb_profile C aggregate (docs/look.md).

* Exact fields (rows, storage classes, min, max, mean, std, text lengths) equal the exact
  profile's and the oracle of tests/test_profile.py on every storage-class mix, NULLs, empty and
  all-NULL tables, 2,000 columns, names that need quoting, views and queries, on sqlite and bdb;
  below the sketches' sizes (distinct values <= ``exact``, numeric values <= K, distinct values
  <= k counters) the approximate fields are exact too, and the test says so.
* On 200,000 rows the sketches are used and each approximate field is held to its documented
  bound against the truth computed in Python: distinct within 3 standard errors of HyperLogLog,
  quartiles within the sample's rank error, every value more frequent than n/(k+1) among the
  common values with a count at most ``undercount`` below the truth.
* ``ro`` leaves the file's sha256 unchanged; the interrupt (stalled at a known row) and the time
  limit stop it and the connection answers afterwards; ``system`` falls back to the exact profile
  and says why.
"""
from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlnb
from sqlnb import _sql, errors
from sqlnb.look import profile as P
from sqlnb.look import sketch as S
from tests.conftest import interrupt_at_call, need_engine
from tests.test_profile import NULLS, _fill, fill_mixes, wide_table, check, close, compensated, mean_ok

SKETCH_ENGINES = ("sqlite", "bdb")
EXACT_KEYS = ("rows", *P.CLASSES, "distinct", "min_length", "max_length")


def sketchy(con) -> bool:
    return con.backend.has("c_aggregates")


def install(con) -> str:
    """sqlnb's C aggregates on ``con``; the profile aggregate's name in SQL."""
    con.backend.install_c_aggregates(con)
    return con.backend.load().PROFILE_AGGREGATE


def same_as_exact(a_row, e_row, label, values=None, exact_sum=True):
    """Every field of the approximate row equals the exact profile's (mean and std: 1e-9 relative;
    a core without compensated sums: the plain-summation bound of tests/test_profile.py)."""
    for key in EXACT_KEYS:
        ga, ge = a_row[key], e_row[key]
        if key in ("min_length", "max_length"):
            ga, ge = (None if pd.isna(ga) else int(ga)), (None if pd.isna(ge) else int(ge))
        assert ga == ge, (label, key, ga, ge)
    for key in ("min", "max"):
        assert type(a_row[key]) is type(e_row[key]) and (a_row[key] == e_row[key] or a_row[key] is None), \
            (label, key, a_row[key], e_row[key])
    if values is not None:
        assert mean_ok(a_row["mean"], e_row["mean"], values, exact_sum), (label, "mean", a_row["mean"], e_row["mean"])
    else:
        assert close(a_row["mean"], e_row["mean"]), (label, "mean")
    assert close(a_row["std"], e_row["std"]), (label, "std", a_row["std"], e_row["std"])
    for q in ("25%", "50%", "75%"):
        assert (math.isnan(a_row[q]) and math.isnan(e_row[q])) or a_row[q] == e_row[q], (label, q, a_row[q], e_row[q])
    assert [n for _, n in a_row["top"]] == [n for _, n in e_row["top"]], (label, a_row["top"], e_row["top"])


# --------------------------------------------------------------------------------------------
# exact fields, and the approximate ones below the sketches' sizes
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("nulls", sorted(NULLS))
def test_every_storage_class_mix(con, nulls):
    columns = fill_mixes(con, nulls)
    df = sqlnb.profile(con, "t", approx=True)
    exact = sqlnb.profile(con, "t")
    assert list(df.columns) == list(P.COLUMNS) and df["column"].tolist() == list(columns)
    for i, (name, values) in enumerate(columns.items()):
        label = f"{con.engine}/{name}/{nulls}"
        check(df.iloc[i], values, label, exact_sum=compensated(con))
        same_as_exact(df.iloc[i], exact.iloc[i], label, values, exact_sum=compensated(con))
    if sketchy(con):
        assert df.attrs["scans"] == 1 == df.attrs["statements"] and df.attrs["rows_fetched"] == 1
        info = df.attrs["approx"]
        # small: nothing was estimated, sampled or counted approximately
        assert info["distinct"]["columns"] == info["quartiles"]["columns"] == info["top"]["columns"] == []
    else:
        assert df.attrs["approx"] == {} and "C aggregate" in df.attrs["approx_unavailable"]


def test_numbers_against_pandas(con):
    """Values around 1e9 with std 1: the std to 1e-9 relative (two passes over the kept values)."""
    rng = np.random.default_rng(5)
    n = 1001
    cols = {"ints": rng.integers(-50, 50, 997).tolist() + [None] * 4, "reals": (1e9 + rng.normal(0, 1, n)).tolist(),
            "mixed": [x if i % 3 else int(x) for i, x in enumerate(rng.normal(100, 30, 1000).round(2).tolist())] + ["t"]}
    _fill(con, "nums", cols)
    df = sqlnb.profile(con, "nums", approx=True)
    exact = sqlnb.profile(con, "nums")
    for i, (name, values) in enumerate(cols.items()):
        row = df.iloc[i].copy()
        if name == "mixed":  # 1,000 values, about 900 distinct: more than k counters, the top is estimated
            if sketchy(con):
                assert name in df.attrs["approx"]["top"]["columns"]
            truth = Counter((type(v), v) for v in values)
            under = df.attrs["approx"]["top"]["undercount"][name] if sketchy(con) else 0
            for v, n in row["top"]:
                assert truth[(type(v), v)] - under <= n <= truth[(type(v), v)]
            row["top"] = exact.iloc[i]["top"]
        check(row, values, f"{con.engine}/{name}", exact_sum=compensated(con))
    assert 0.9 < df.loc[1, "std"] < 1.1


def test_welford_beyond_the_sample(engine, tmp_path):
    """More numeric values than the sample holds: std from the shifted one-pass update, still
    1e-9 relative against numpy for values around 1e9 with std 1 (the aggregate called directly
    with K = 100, so 5,000 values are enough)."""
    if engine == "system":
        return _fallback_only(engine, tmp_path)
    con = sqlnb.connect(str(tmp_path / "w.db"), engine=engine)
    xs = (1e9 + np.random.default_rng(9).normal(0, 1, 5000)).tolist()
    con.execute("CREATE TABLE t (x REAL)")
    con.executemany("INSERT INTO t VALUES (?)", [(x,) for x in xs])
    con.commit()
    agg = install(con)
    st_ = S.unpack(con.execute(f"SELECT {agg}(x, 100) FROM t").fetchone()[0])
    assert st_["sample"] == 100 and st_["n_num"] == 5000
    std = math.sqrt(st_["m2"] / (st_["n_num"] - 1))
    assert close(std, float(np.std(np.array(xs), ddof=1)))
    con.close()


def _fallback_only(engine, tmp_path):
    """``system``: no C aggregate; approx=True is the exact profile and says so."""
    con = sqlnb.connect(str(tmp_path / "s.db"), engine=engine)
    _fill(con, "t", {"a": [1, 2, 2]})
    df = sqlnb.profile(con, "t", approx=True)
    assert df.attrs["approx"] == {} and df.attrs["approx_unavailable"] == con.backend.lacks("c_aggregates")
    check(df.iloc[0], [1, 2, 2])
    con.close()


values_st = st.one_of(
    st.none(), st.integers(-(2**63), 2**63 - 1), st.integers(-3, 3),
    st.floats(min_value=-1e300, max_value=1e300, width=64),  # (bdb reads a literal near DBL_MAX as inf) st.sampled_from([0.0, -0.0, 1.0, 2.5]),
    st.text(max_size=8), st.binary(max_size=6), st.sampled_from(["a", "é", "a\x00b", "\x80"]))


@pytest.mark.parametrize("engine_name", SKETCH_ENGINES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.lists(values_st, min_size=3, max_size=3), min_size=0, max_size=25))
def test_random_tables_match_exact(engine_name, tmp_path, data):
    """Random rows of three columns (every storage class, NULLs, int/real ties, NUL in text):
    the approximate profile equals the exact one field by field (all below the sketches' sizes)."""
    need_engine(engine_name)
    con = sqlnb.connect(str(tmp_path / f"h_{engine_name}.db"), engine=engine_name)
    try:
        con.execute("DROP TABLE IF EXISTS h")
        con.execute('CREATE TABLE h (a, "b c", d)')
        for row in data:
            con.execute("INSERT INTO h VALUES (" + ", ".join(_literal(v) for v in row) + ")")
        con.commit()
        a, e = sqlnb.profile(con, "h", approx=True), sqlnb.profile(con, "h")
        for i in range(3):
            vals = [r[0] for r in con.execute(f"SELECT {_sql.quote_identifier(a.loc[i, 'column'])} FROM h").fetchall()]
            same_as_exact(a.iloc[i], e.iloc[i], f"{engine_name}/{i}/{vals!r}", vals, exact_sum=compensated(con))
        assert a.attrs["scans"] == 1
    finally:
        con.close()


def test_infinities_follow_ieee_as_pandas(con):
    """[0, inf]: mean inf and std NaN as pandas says (the exact profile's SQL turns the NaN of
    inf - inf into NULL, which sum() skips: std inf there)."""
    _fill(con, "f", {"x": [0.0, math.inf, None]})
    row = sqlnb.profile(con, "f", approx=True).iloc[0]
    assert row["mean"] == math.inf and row["max"] == math.inf and row["real"] == 2
    if sketchy(con):
        assert math.isnan(row["std"]) and math.isnan(pd.Series([0.0, math.inf]).std())


def _literal(v):
    # literals, not parameters: the same path on both engines (bdb binds no NUL inside text differently)
    if v is None:
        return "NULL"
    if isinstance(v, bytes):
        return "X'" + v.hex() + "'"
    if isinstance(v, float):
        if math.isinf(v):
            return "9e999" if v > 0 else "-9e999"
        return repr(v) if v != 0 or math.copysign(1, v) > 0 else "-0.0"
    if isinstance(v, str):
        if "\x00" in v:
            return "CAST(" + "X'" + v.encode("utf-8", "surrogatepass").hex() + "' AS TEXT)"
        return _sql.quote_literal(v)
    return str(v)


def test_all_null_and_empty(con):
    _fill(con, "z", {"a": [None] * 4, "b": [None] * 4})
    df = sqlnb.profile(con, "z", approx=True)
    assert df["null"].tolist() == [4, 4] and df["distinct"].tolist() == [0, 0] and df["rows"].tolist() == [4, 4]
    assert df["min"].isna().all() and df["mean"].isna().all() and df["top"].tolist() == [[], []]
    assert df["25%"].isna().all() and df["std"].isna().all()
    con.execute("CREATE TABLE e (x INTEGER, y TEXT)")
    df = sqlnb.profile(con, "e", approx=True)
    assert df["column"].tolist() == ["x", "y"] and df["type"].tolist() == ["INTEGER", "TEXT"]
    assert df["rows"].tolist() == [0, 0] and df["distinct"].tolist() == [0, 0] and df["top"].tolist() == [[], []]
    assert df["std"].isna().all() and df["25%"].isna().all() and df["min_length"].isna().all()


def test_names_views_queries_and_sample(con):
    names = ["order", "with space", 'quo"te', "it's", "naïve δ", "select"]
    cols = {n: [i, i + 1, None, "x"] for i, n in enumerate(names)}
    _fill(con, 'my "odd" table', cols)
    df = sqlnb.profile(con, 'my "odd" table', approx=True)
    assert df["column"].tolist() == names
    for i, (name, values) in enumerate(cols.items()):
        check(df.iloc[i], values, name)
    con.execute('CREATE VIEW v AS SELECT "order" * 10 AS b FROM "my ""odd"" table"')
    check(sqlnb.profile(con, "v", approx=True).iloc[0], [0, 10, None, 0])
    df = sqlnb.profile(con, 'SELECT "select" + 1 AS s FROM "my ""odd"" table" WHERE "select" IS NOT NULL', approx=True)
    assert df["column"].tolist() == ["s"]
    check(df.iloc[0], [6, 7, 1])
    df = sqlnb.profile(con, 'my "odd" table', sample=2, approx=True)
    assert df.attrs["sample"] == 2
    check(df.iloc[0], [0, 1])


def test_two_thousand_columns_one_statement(engine, tmp_path):
    ncols = 2000
    con, names, rows = wide_table(engine, tmp_path, ncols)
    con.commit()
    df = sqlnb.profile(con, "w", approx=True)
    assert len(df) == ncols
    for i in (0, 1, 99, 100, 1000, 1998, 1999):
        check(df.iloc[i], [r[i] for r in rows], f"column {i}")
    if sketchy(con):
        assert df.attrs["scans"] == 1 == df.attrs["statements"]
        cfg = S.settings(ncols)
        assert ncols * S.column_bytes(cfg) <= S.BUDGET and cfg["K"] >= S.FLOORS["K"]
    con.close()


def test_sizes_stay_within_the_budget():
    for ncols in (1, 7, 60, 61, 100, 500, 2000):
        cfg = S.settings(ncols)
        assert cfg["K"] & (cfg["K"] - 1) == 0 and S.FLOORS["K"] <= cfg["K"] <= S.DEFAULTS["K"]
        at_floor = all(cfg[k] == S.FLOORS[k] for k in ("K", "p", "k", "exact", "copy"))
        assert ncols * S.column_bytes(cfg) <= S.BUDGET or at_floor, (ncols, cfg)
    assert S.settings(7) == S.DEFAULTS and S.settings(7, top=100)["k"] == 400


def test_default_sizes_are_the_aggregates_own():
    """The C defaults and sketch.DEFAULTS agree (the statement leaves default sizes out), and the
    sizes a wide source needs are passed and used."""
    from sqlnb.look.source import Source

    src = Source(sql="SELECT a FROM t", label="t", columns=("a",), types=("",), table='"t"')
    assert S.statement(src, "sqlnb_profile", ["a"], S.DEFAULTS) == 'SELECT sqlnb_profile(s."a") FROM (SELECT "a" FROM "t") AS s'
    wide = S.settings(2000)
    assert S.statement(src, "agg", ["a"], wide).startswith(
        f'SELECT agg(s."a", {wide["K"]}, {wide["p"]}, {wide["k"]}, {wide["exact"]}, {wide["copy"]})')


# --------------------------------------------------------------------------------------------
# the sketches at work: 200,000 rows, against the truth computed in Python
# --------------------------------------------------------------------------------------------
N = 200_000


@pytest.fixture(scope="module")
def big_data():
    rng = np.random.default_rng(23)
    heavy = rng.choice(np.array(["red", "green", "blue"]), N, p=[0.5, 0.3, 0.2])
    light = np.array([f"w{i}" for i in range(N)])
    mixed_top = np.where(rng.random(N) < 0.25, heavy, light)     # 3 frequent values among 150,000 singletons
    cols = {
        "u": rng.permutation(N).tolist(),                           # 200,000 distinct ints
        "m": rng.integers(0, 50_000, N).tolist(),                   # ~49,000 distinct: mid-range HyperLogLog
        "r": rng.normal(50, 20, N).tolist(),                        # reals: sampled quartiles
        "few": rng.integers(0, 9_000, N).tolist(),                  # distinct <= exact: counted exactly
        "cat": rng.choice(np.array([f"c{i}" for i in range(200)]), N).tolist(),  # 200 <= k values: exact top
        "tops": mixed_top.tolist(),
        "part": [float(x) if i % 4 == 0 else None for i, x in enumerate(rng.normal(0, 1, N))],  # 50,000 <= K
    }
    return cols


@pytest.fixture(scope="module", params=SKETCH_ENGINES)
def big(request, tmp_path_factory, big_data):
    from tests.conftest import interrupt_at_call, need_engine

    need_engine(request.param)
    path = tmp_path_factory.mktemp(f"big_{request.param}") / "big.db"
    con = sqlnb.connect(str(path), engine=request.param)
    names = list(big_data)
    con.execute(f"CREATE TABLE big ({', '.join(names)})")
    con.executemany(f"INSERT INTO big VALUES ({', '.join('?' * len(names))})", list(zip(*big_data.values())))
    con.commit()
    yield con, sqlnb.profile(con, "big", approx=True)
    con.close()


def _row(df, name):
    return df[df["column"] == name].iloc[0]


def test_big_exact_fields(big, big_data):
    con, df = big
    assert df.attrs["scans"] == 1 and df.attrs["rows_fetched"] == 1
    for name, values in big_data.items():
        row = _row(df, name)
        nums = np.array([v for v in values if v is not None], dtype=float) if name not in ("cat", "tops") else None
        assert row["rows"] == N
        if nums is not None:
            assert row["null"] == N - len(nums)
            assert row["min"] == min(v for v in values if v is not None)
            assert row["max"] == max(v for v in values if v is not None)
            assert close(row["mean"], float(nums.mean()), 1e-9) and close(row["std"], float(nums.std(ddof=1)), 1e-9)


def test_big_distinct_within_three_standard_errors(big, big_data):
    con, df = big
    info = df.attrs["approx"]["distinct"]
    se = info["stderr"]
    assert info["registers"] == 2 ** 14 and se == pytest.approx(1.04 / 128)
    for name in ("u", "m", "r", "tops"):
        truth = len(set(v for v in big_data[name] if v is not None))
        got = _row(df, name)["distinct"]
        assert name in info["columns"]
        assert abs(got - truth) <= 3 * se * truth, (name, got, truth)
    # at most `exact` distinct values: counted exactly, not estimated
    assert "few" not in info["columns"] and _row(df, "few")["distinct"] == len(set(big_data["few"]))
    assert _row(df, "cat")["distinct"] == 200


def test_big_quartiles_within_the_rank_error(big, big_data):
    con, df = big
    info = df.attrs["approx"]["quartiles"]
    assert info["sample"] == 65536 and "r" in info["columns"] and "part" not in info["columns"]
    xs = np.sort(np.array(big_data["r"]))
    for key, q in zip(("25%", "50%", "75%"), P.QUANTILES):
        got = _row(df, "r")[key]
        lo, hi = np.searchsorted(xs, got, "left") / N, np.searchsorted(xs, got, "right") / N
        bound = S.rank_error(info["sample"], q) + 1 / N
        assert lo - bound <= q <= hi + bound, (key, got, lo, hi, bound)
    # at most K numeric values: every one kept, the quartiles exact (pandas' linear definition)
    part = pd.Series([v for v in big_data["part"] if v is not None])
    assert [_row(df, "part")[k] for k in ("25%", "50%", "75%")] == part.quantile([0.25, 0.5, 0.75]).tolist()


def test_big_common_values(big, big_data):
    con, df = big
    info = df.attrs["approx"]["top"]
    k = info["counters"]
    for name in ("tops", "cat"):
        truth = Counter(big_data[name])
        top = _row(df, name)["top"]
        got = dict(top)
        if name in info["columns"]:
            under = info["undercount"][name]
            assert under <= N / (k + 1)
            for value, count in truth.items():
                if count > N / (k + 1):
                    assert value in got, (name, value, count)
            for value, count in top:
                assert truth[value] - under <= count <= truth[value], (value, count, truth[value], under)
        else:  # at most k distinct values: the exact counts
            assert [n for _, n in top] == sorted(truth.values(), reverse=True)[:5]
            assert all(truth[v] == n for v, n in top)
    assert "tops" in info["columns"] and "cat" not in info["columns"]
    assert [v for v, _ in _row(df, "tops")["top"][:3]] == ["red", "green", "blue"]


def test_big_misra_gries_with_few_counters(big, big_data):
    """The aggregate called with k = 8: every value above n/9 present (30% and 15% of the rows
    among 110,000 singletons), counts within the undercount."""
    con, _ = big
    agg = install(con)
    st_ = S.unpack(con.execute(f"SELECT {agg}(CASE WHEN u < 60000 THEN 1 WHEN u < 90000 THEN 2 ELSE u END, "
                               "1024, 14, 8) FROM big").fetchone()[0])
    truth = Counter(1 if u < 60000 else 2 if u < 90000 else u for u in big_data["u"])
    got = {v: c for v, c, _ in st_["counters"]}
    assert st_["k"] == 8 and len(got) <= 8 and st_["decrements"] <= N / 9
    assert truth[1] > N / 9 and truth[2] > N / 9
    for value, count in truth.items():
        if count > N / 9:
            assert value in got
    for value, count in got.items():
        assert truth[value] - st_["decrements"] <= count <= truth[value]


# --------------------------------------------------------------------------------------------
# the aggregate itself: equality, arguments, huge values
# --------------------------------------------------------------------------------------------
@pytest.fixture(params=SKETCH_ENGINES)
def agg_con(request, tmp_path):
    """(connection, the aggregate's name) on each engine that has it (``system`` lacks it:
    test_system_falls_back_to_exact)."""
    need_engine(request.param)
    con = sqlnb.connect(str(tmp_path / "a.db"), engine=request.param)
    yield con, install(con)
    con.close()


def test_c_defaults_match_sketch_defaults(agg_con):
    con, agg = agg_con
    con.execute("CREATE TABLE d (x)")
    con.executemany("INSERT INTO d VALUES (?)", [(i,) for i in range(S.DEFAULTS["exact"] + 5)])
    con.commit()
    st_ = S.unpack(con.execute(f"SELECT {agg}(x) FROM d").fetchone()[0])
    assert st_["p"] == S.DEFAULTS["p"] and st_["k"] == S.DEFAULTS["k"] and st_["sample"] == S.DEFAULTS["exact"] + 5
    assert st_["distinct_exact"] is None   # one more than `exact` values: HyperLogLog
    st_ = S.unpack(con.execute(f"SELECT {agg}(x) FROM d WHERE x < {S.DEFAULTS['exact']}").fetchone()[0])
    assert st_["distinct_exact"] == S.DEFAULTS["exact"]
    big = con.execute(f"SELECT {agg}(x) FROM (SELECT a.x * 100000 + b.x AS x FROM d a, d b LIMIT "
                      f"{S.DEFAULTS['K'] + 1})").fetchone()[0]
    assert S.unpack(big)["sample"] == S.DEFAULTS["K"]


def test_sqlite_equality_for_distinct(agg_con):
    con, agg = agg_con
    con.execute("CREATE TABLE e (x)")
    for lit in ("1", "1.0", "0.0", "-0.0", "0", "'a'", "X'61'", "'1'"):
        con.execute(f"INSERT INTO e VALUES ({lit})")
    con.commit()
    want = con.execute("SELECT count(DISTINCT x) FROM e").fetchone()[0]
    for exact in (10000, 0):   # the exact set, then HyperLogLog alone: the same small count
        got = S.unpack(con.execute(f"SELECT {agg}(x, 100, 14, 4, {exact}) FROM e").fetchone()[0])
        assert (got["distinct_exact"] is None) == (exact == 0)
        assert round(got["distinct_estimate"]) == want == 5, got
    # the common values keep 1 and 1.0 apart (as the exact profile's groups do), 0.0 and -0.0 together
    got = S.unpack(con.execute(f"SELECT {agg}(x) FROM e").fetchone()[0])
    assert sorted(c for _, c, _ in got["counters"]) == [1] * 6 + [2] and got["decrements"] == 0


def test_bad_arguments_one_line(agg_con):
    con, agg = agg_con
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")
    for args, word in (("0", "K"), ("10, 3", "p"), ("10, 14, 0", "k"), ("10, 14, 8, -1", "exact"),
                       ("10, 14, 8, 5, 'x'", "copy"), ("1, 14, 8, 5, 5, 6", "1 to 6")):
        with pytest.raises(errors.Error) as info:
            con.execute(f"SELECT {agg}(x, {args}) FROM t").fetchall()
        assert word in str(info.value) and "\n" not in str(info.value)
    assert con.execute(f"SELECT length({agg}(x)) > 0 FROM t").fetchone() == (1,)


def test_small_sketches_every_path(agg_con):
    """Tiny sizes (K=64, 2^4 registers, 4 counters, 16 exact, 8 bytes kept) on 3,000 rows: the
    HyperLogLog, the sample's replacements, the block merges, the counters' decrements and cut
    copies all run (the path valgrind checks; tools/memcheck.py)."""
    con, agg = agg_con
    rng = np.random.default_rng(4)
    vals = []
    for i in range(3000):
        r = i % 10
        vals.append("heavy" if r < 4 else int(rng.integers(0, 500)) if r < 6 else
                    float(1e9 + rng.normal()) if r < 8 else "t" * int(rng.integers(0, 40)) + str(i)
                    if r == 8 else bytes(rng.integers(0, 256, int(rng.integers(0, 30))).astype(np.uint8)))
    con.execute("CREATE TABLE s (x)")
    con.executemany("INSERT INTO s VALUES (?)", [(v,) for v in vals])
    con.commit()
    st_ = S.unpack(con.execute(f"SELECT {agg}(x, 64, 4, 4, 16, 8) FROM s").fetchone()[0])
    kinds = Counter(type(v).__name__ for v in vals)
    assert (st_["rows"], st_["integer"], st_["real"], st_["text"], st_["blob"]) == \
        (3000, kinds["int"], kinds["float"], kinds["str"], kinds["bytes"])
    assert st_["distinct_exact"] is None and st_["p"] == 4 and st_["sample"] == 64 and st_["k"] == 4
    assert st_["decrements"] > 0 and len(st_["counters"]) <= 4
    nums = np.array([float(v) for v in vals if isinstance(v, (int, float))])
    assert close(math.sqrt(st_["m2"] / (len(nums) - 1)), float(nums.std(ddof=1)))
    assert st_["min"] == min(v for v in vals if isinstance(v, (int, float)))
    assert st_["max"] == max((v for v in vals if isinstance(v, bytes)), key=bytes)
    truth = Counter((type(v), v) for v in vals)
    got = {v: (c, cut) for v, c, cut in st_["counters"]}
    assert got["heavy"][0] <= truth[(str, "heavy")] and truth[(str, "heavy")] - st_["decrements"] <= got["heavy"][0]
    for v, (_, cut) in got.items():   # a cut value is its first 8 bytes
        if cut:
            assert len(v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v) == 8
    assert all(nums.min() <= q <= nums.max() for q in st_["q"])


def test_huge_values_are_bounded(agg_con):
    """5 MB blobs and texts: min/max exact (whole values), the counters keep 1,024 bytes of each
    and the profile says a shown value was cut."""
    con, agg = agg_con
    con.execute("CREATE TABLE h (b, t)")
    big_b = [bytes([i]) * 5_000_000 for i in (3, 1, 2)]
    for i, b in enumerate(big_b):
        con.execute("INSERT INTO h VALUES (?, ?)", (b, chr(ord("a") + i) * 3_000_000))
    con.commit()
    df = sqlnb.profile(con, "h", approx=True)
    assert df.loc[0, "min"] == big_b[1] and df.loc[0, "max"] == big_b[0] and df.loc[0, "distinct"] == 3
    assert df.loc[1, "max_length"] == 3_000_000 and df.loc[1, "max"] == "c" * 3_000_000
    assert all(len(v) == 1024 for v, _ in df.loc[0, "top"])
    assert all(v.endswith("\u2026") and len(v) == 1025 for v, _ in df.loc[1, "top"])


# --------------------------------------------------------------------------------------------
# modes, interrupt, time limit
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["ro", "ro-scratch"])
def test_readonly_file_unchanged(engine, tmp_path, mode):
    path = tmp_path / "ro.db"
    con = sqlnb.connect(str(path), engine=engine)
    _fill(con, "t", {"a": [1, 2.5, "x", None], "b": [b"z", 1, 2, 3]})
    con.close()
    settle = sqlnb.connect(str(path), engine=engine, mode="ro")   # bdb's checkpoint at the first open (see test_profile)
    settle.execute("SELECT count(*) FROM t").fetchone()
    settle.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    ro = sqlnb.connect(str(path), engine=engine, mode=mode)
    df = sqlnb.profile(ro, "t", approx=True)
    check(df.iloc[0], [1, 2.5, "x", None])
    check(df.iloc[1], [b"z", 1, 2, 3])
    ro.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_interrupt_in_the_middle(engine, tmp_path):
    """The source calls a Python function that stops at its 1,000th row until the test has called
    interrupt(): the profile ends with InterruptError there, and the connection answers afterwards."""
    con = sqlnb.connect(str(tmp_path / "i.db"), engine=engine, check_same_thread=False)
    con.execute("CREATE TABLE t (x INTEGER)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    con.commit()
    out, calls = interrupt_at_call(
        con, 1000, lambda: sqlnb.profile(con, "SELECT mark(a.x) AS x, b.x AS y FROM t a, t b", approx=True))
    assert isinstance(out.get("exc"), errors.InterruptError), out
    assert calls[0] < 1_000_000   # stopped in the middle
    assert con.execute("SELECT count(*) FROM t").fetchone() == (1000,)
    con.close()


def test_time_limit_stops_it(con):
    from sqlnb.notebook import look

    con.execute("CREATE TABLE t (x INTEGER)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    con.commit()
    before = con.statement_timeout
    with pytest.raises(errors.QueryTimeoutError):
        look.run_profile(con, "SELECT a.x AS x, b.x AS y FROM t a, t b, t c", timeout=0.3, approx=True)
    assert con.statement_timeout == before
    assert con.execute("SELECT count(*) FROM t").fetchone() == (1000,)


# --------------------------------------------------------------------------------------------
# %sql --profile --approx
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine_name", ["sqlite", "system"])
def test_profile_magic_approx(tmp_path, engine_name):
    from IPython.core.error import UsageError

    from tests.conftest import interrupt_at_call, need_engine
    from tests.magics_shell import close_shell, new_shell

    need_engine(engine_name)
    ip = new_shell()
    try:
        con = sqlnb.connect(str(tmp_path / "m.db"), engine=engine_name)
        con.execute("CREATE TABLE t (x REAL, c TEXT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i * 0.5, f"c{i % 300}") for i in range(20_000)])
        con.commit()
        con.close()
        ip.run_cell(f"%sql {engine_name}:///{tmp_path / 'm.db'}")
        ip.run_cell("p = %sql --profile --approx t")
        p = ip.user_ns["p"]
        html = p._repr_html_()
        if engine_name == "sqlite":
            assert p.attrs["scans"] == 1 and "1 read of the source" in html
            # x: 20,000 distinct values (HyperLogLog, more than k counters); c: 300 (exact, but more than k)
            assert p.attrs["approx"]["distinct"]["columns"] == ["x"]
            assert "≈ distinct: HyperLogLog, about ±0.8%, exact up to 10,000 (x)" in html
            assert "top: Misra-Gries, 256 counters, counts are lower bounds (x, c)" in html
            assert "quartiles: from a sample of 65,536 values (none here)" in html
        else:
            assert p.attrs["scans"] == 2 and "exact (approx unavailable: the stdlib" in html
        ip.run_cell("%%sql --profile --approx -o q\nSELECT c FROM t WHERE x < 10")
        assert ip.user_ns["q"]["rows"].tolist() == [20] and ip.user_ns["q"]["distinct"].tolist() == [20]
        with pytest.raises(UsageError, match="--approx goes with --profile"):
            ip.run_cell("%sql --approx SELECT 1")
    finally:
        close_shell(ip)


def test_approx_while_another_cursor_is_open(agg_con):
    """A cursor still stepping on the same connection: the aggregate is registered once, so the
    profile runs (SQLite refuses to replace a function while a statement is active)."""
    con, agg = agg_con
    _fill(con, "t", {"a": list(range(50))})
    cur = con.execute("SELECT a FROM t")
    assert cur.fetchone() == (0,)
    for _ in range(2):
        assert sqlnb.profile(con, "t", approx=True)["distinct"].tolist() == [50]
    assert len(cur.fetchall()) == 49
