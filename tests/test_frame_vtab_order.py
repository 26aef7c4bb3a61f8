"""GROUP BY / ORDER BY one column of a registered frame, served in order by the virtual table
(``sqlnb/_core/frame_order.h``, docs/frames-in-sql.md "GROUP BY and ORDER BY").

For every groupable kind of column the grouped and ordered queries give exactly what the same SQL
gives on the frame copied into a native table (``to_table``), on ``sqlite`` and ``bdb``; the
query plan shows SQLite's sorter skipped where the table serves the order, and kept where it
does not.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
import os
import signal
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlnb
from sqlnb import errors
from tests.conftest import need_engine
from tests.test_frame_vtab import IN_PLACE, fcon, fengine, stop_when_read  # noqa: F401 (fixtures)

N = 400
SORTER = "USE TEMP B-TREE"


def rows(con, sql):
    return con.execute(sql).fetchall()


def plan(con, sql) -> str:
    return " | ".join(str(r[-1]) for r in rows(con, "EXPLAIN QUERY PLAN " + sql))


# --- one frame per kind of column: c (the key, with duplicates and missing values), v (a value)
def _pick(values, n=N, seed=0):
    rng = np.random.default_rng(seed)
    return [values[i] for i in rng.integers(0, len(values), n)]


def _obj(values):
    """A numpy object column (pandas 3 would infer its str dtype from an object array of str)."""
    return pd.Series(np.array(values, dtype=object), dtype=object)


def _fresh_str(s):
    """A str object of its own, its UTF-8 form not cached yet (the C path then asks Python)."""
    return None if s is None else "".join(list(s))


def _kinds():
    rng = np.random.default_rng(1)
    v = np.arange(N, dtype=np.int64)
    ints = _pick([-3, 0, 7, 1000, -(2**40), 2**40])
    floats = _pick([0.0, -0.0, 1.5, -2.25, np.nan, 1e30, -np.inf, np.inf])
    strs = _pick(["b", "a", "ab", "", "zé", "€uro", "a longer string than twelve bytes", None])
    k = {}
    for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"):
        info = np.iinfo(t)
        k[t] = pd.DataFrame({"c": np.array(_pick([info.min, info.max, 0, 1, 5]), dtype=t), "v": v})
    # above 2**63-1 a uint64 is REAL: 2**63 and 2**63+1 are one REAL, so one group
    k["uint64"] = pd.DataFrame({"c": np.array(_pick([0, 5, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 1]),
                                              dtype=np.uint64), "v": v})
    k["float64"] = pd.DataFrame({"c": np.array(floats, dtype=np.float64), "v": v})
    k["float32"] = pd.DataFrame({"c": np.array(floats, dtype=np.float32), "v": v})
    k["bool"] = pd.DataFrame({"c": np.array(_pick([True, False]), dtype=bool), "v": v})
    k["Int64"] = pd.DataFrame({"c": pd.array(_pick([1, None, -5, 2**62]), dtype="Int64"), "v": v})
    k["boolean"] = pd.DataFrame({"c": pd.array(_pick([True, None, False]), dtype="boolean"), "v": v})
    k["Float64"] = pd.DataFrame({"c": pd.array(_pick([0.5, None, -0.0, 0.0, 3.0]), dtype="Float64"), "v": v})
    k["object_str"] = pd.DataFrame({"c": _obj([_fresh_str(s) for s in strs]), "v": v})
    k["object_str_nan"] = pd.DataFrame({"c": _obj([np.nan if s is None else _fresh_str(s) for s in strs]),
                                        "v": v})
    k["pandas_str"] = pd.DataFrame({"c": pd.array(strs, dtype="str"), "v": v})
    k["pandas_str_python"] = pd.DataFrame({"c": pd.array(strs, dtype=pd.StringDtype("python")), "v": v})
    k["categorical_object"] = pd.DataFrame({"c": pd.Categorical(strs, categories=pd.Index(
        ["zé", "b", "a", "", "ab", "€uro", "a longer string than twelve bytes"], dtype=object)), "v": v})
    k["categorical"] = pd.DataFrame({"c": pd.Categorical(strs, categories=["zé", "b", "a", "", "ab", "€uro",
                                                                          "a longer string than twelve bytes"]),
                                     "v": v})
    k["categorical_int"] = pd.DataFrame({"c": pd.Categorical(_pick([3, 1, None, 2])), "v": v})
    times = pd.to_datetime(_pick(["2024-01-01", "2024-02-29 13:45:06.25", None, "1999-12-31 23:59:59",
                                  "2024-01-01 00:00:00.000001"]), format="ISO8601")
    k["datetime_ns"] = pd.DataFrame({"c": times.as_unit("ns"), "v": v})
    k["datetime_us"] = pd.DataFrame({"c": times.as_unit("us"), "v": v})
    k["datetime_tz"] = pd.DataFrame({"c": times.tz_localize("UTC"), "v": v})
    k["timedelta"] = pd.DataFrame({"c": pd.to_timedelta(_pick([1, 2, None, -5]), unit="s"), "v": v})
    # Arrow
    half = N // 2
    pv = pa.array(v)
    k["arrow_string"] = pa.table({"c": pa.array(strs, pa.string()), "v": pv})
    k["arrow_large_string"] = pa.table({"c": pa.array(strs, pa.large_string()), "v": pv})
    k["arrow_string_view"] = pa.table({"c": pa.array(strs, pa.string_view()), "v": pv})
    k["arrow_binary"] = pa.table({"c": pa.array([None if s is None else s.encode() for s in strs], pa.binary()),
                                  "v": pv})
    k["arrow_bool"] = pa.table({"c": pa.array(_pick([True, False, None])), "v": pv})
    k["arrow_chunks"] = pa.table({"c": pa.chunked_array([pa.array(ints[:half]), pa.array(ints[half:])]),
                                  "v": pv})
    big = pa.array(_pick([4, None, 2, 9], n=N + 30))
    k["arrow_sliced"] = pa.table({"c": pa.chunked_array([big.slice(7, half), big.slice(7 + half, N - half)]),
                                  "v": pv})
    d1 = pa.array(strs[:half]).dictionary_encode()
    d2 = pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 3, N - half), d1.type.index_type),
                                        pa.array(["ab", "zé", "b"]))   # another dictionary
    k["arrow_dictionary"] = pa.table({"c": pa.chunked_array([d1, d2]), "v": pv})
    k["arrow_date32"] = pa.table({"c": pa.array(_pick([0, 19_000, None, -400]), pa.date32()), "v": pv})
    k["arrow_timestamp_ms"] = pa.table({"c": pa.array(_pick([0, 1_700_000_000_123, None, -1]),
                                                      pa.timestamp("ms")), "v": pv})
    return k


KINDS = _kinds()


# to_table takes pandas frames only, writes datetime64 text with all six or nine digits (and, on
# this frame, a wrong text in row 0: reported), refuses uint64 above 2**63-1: these are copied with
# CREATE TABLE ... AS SELECT from the registered table (the same values, stored natively)
COPY_BY_SQL = {"uint64", "datetime_ns", "datetime_us", "datetime_tz"}


def _native(con, frame, kind=""):
    """The frame (registered as f) copied into the native table t; the rowid of its first row."""
    con.execute("DROP TABLE IF EXISTS t")
    if isinstance(frame, pd.DataFrame) and kind not in COPY_BY_SQL:
        con.to_table(frame, "t")
    else:
        con.execute("CREATE TABLE t AS SELECT * FROM f")
    return rows(con, "SELECT min(rowid) FROM t")[0][0] or 0


def _tie(con, x):
    """x as the engine's comparison sees it: BerkeleyDB's 3.7 core compares an INTEGER with a REAL
    as two doubles (2**63-1 and 2**63.0 are a tie there, ordered either way)."""
    if con.engine == "bdb" and isinstance(x, int | float) and not isinstance(x, bool):
        return float(x)
    return x


def no_sorter(con, sql) -> bool:
    """SQLite's sorter is skipped: no temp B-tree for the GROUP BY, and none for the ORDER BY but
    where BerkeleyDB's 3.7 core sorts the groups of `GROUP BY c ORDER BY c DESC` (a few rows)."""
    p = plan(con, sql)
    if con.engine == "bdb" and "GROUP BY" in sql and "ORDER BY" in sql:
        return "FOR GROUP BY" not in p
    return SORTER not in p


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_grouped_and_ordered_like_a_native_table(fcon, kind):
    frame = KINDS[kind]
    if kind.startswith("object"):
        assert frame["c"].dtype == object
    fcon.register("f", frame)
    first = _native(fcon, frame, kind)
    # the values read in place are those of the copy (the comparisons below mean something)
    assert rows(fcon, "SELECT c, v FROM f") == rows(fcon, "SELECT c, v FROM t")
    queries = [
        ("SELECT c, count(*), sum(v), min(v) FROM {t} GROUP BY c", "all"),
        ("SELECT c, count(*) FROM {t} GROUP BY c ORDER BY c DESC", "all"),
        ("SELECT c, v FROM {t} ORDER BY c", "key"),
        ("SELECT c, v FROM {t} ORDER BY c DESC", "key"),
        ("SELECT c FROM {t} ORDER BY c LIMIT 7 OFFSET 11", "key"),
        ("SELECT c FROM {t} ORDER BY c DESC LIMIT 50 OFFSET 3", "key"),
        ("SELECT c, v FROM {t} WHERE rowid BETWEEN {lo} AND {hi} ORDER BY c DESC", "key"),
        ("SELECT c, count(*), sum(v) FROM {t} WHERE rowid > {lo} AND rowid < {hi} GROUP BY c", "all"),
        ("SELECT c, v FROM {t} WHERE rowid = {lo} ORDER BY c", "all"),
    ]
    for q, same in queries:
        got = rows(fcon, q.format(t="f", lo=20, hi=250))
        want = rows(fcon, q.format(t="t", lo=20 + first, hi=250 + first))
        if same == "key":     # ORDER BY: the order of the key column, the same rows
            assert [_tie(fcon, r[0]) for r in got] == [_tie(fcon, r[0]) for r in want], q
            assert Counter(got) == Counter(want), q
        else:
            assert got == want, q
        assert no_sorter(fcon, q.format(t="f", lo=20, hi=250)), q
    src = fcon.registered["f"]
    assert src.order_classes == (1, 1)


def test_rows_read_counts_the_rows_emitted(fcon):
    fcon.register("f", KINDS["int64"])
    src = fcon.registered["f"]
    before = src.rows_read
    assert len(rows(fcon, "SELECT c FROM f ORDER BY c LIMIT 10")) == 10
    assert src.rows_read - before == 10
    before = src.rows_read
    rows(fcon, "SELECT c, count(*) FROM f GROUP BY c")
    assert src.rows_read - before == N


def test_the_sorter_runs_where_the_table_does_not_serve_the_order(fcon):
    mixed = _obj(_pick(["x", 3, Decimal("1.5"), None, dt.date(2024, 1, 2), 2.5]))
    fcon.register("f", pd.DataFrame({"c": mixed, "d": np.arange(N), "e": np.zeros(N)}))
    assert fcon.registered["f"].order_classes == (0, 1, 1)
    fcon.to_table(pd.DataFrame({"c": [str(x) if x is not None else None for x in mixed]}), "t")
    for q in ["SELECT c, count(*) FROM f GROUP BY c",            # an object column Python must read
              "SELECT c FROM f ORDER BY c",
              "SELECT d, e FROM f ORDER BY d, e",                 # two terms
              "SELECT d FROM f ORDER BY d DESC, e"]:
        assert SORTER in plan(fcon, q), q
    assert rows(fcon, "SELECT d FROM f ORDER BY d DESC LIMIT 3") == [(N - 1,), (N - 2,), (N - 3,)]
    assert SORTER not in plan(fcon, "SELECT d FROM f ORDER BY d DESC LIMIT 3")
    # the object column still groups right through the sorter
    got = rows(fcon, "SELECT c, count(*) FROM f GROUP BY c")
    assert sum(n for _, n in got) == N and len(got) == len({repr(x) for x in mixed})


def test_collations_other_than_binary_are_left_to_sqlite():
    need_engine("sqlite")
    con = sqlnb.connect(":memory:")
    con.register("f", KINDS["object_str"])
    q = "SELECT c FROM f ORDER BY c COLLATE NOCASE"
    assert SORTER in plan(con, q)
    con.to_table(KINDS["object_str"], "t")
    assert rows(con, q) == rows(con, q.replace("FROM f", "FROM t"))
    con.close()


def test_times_beyond_year_9999_are_grouped_but_not_ordered(fcon):
    """ISO text sorts in time order only with four-digit years: outside 0000-9999 the table still
    serves GROUP BY (grouping is enough: sqlite3_vtab_distinct, 3.38+) but not ORDER BY."""
    t = pa.table({"c": pa.array(_pick([0, 400_000_000_000, None, -100_000_000_000]), pa.timestamp("s")),
                  "v": pa.array(np.arange(N))})
    fcon.register("f", t)
    assert fcon.registered["f"].order_classes == (2, 1)
    assert SORTER in plan(fcon, "SELECT c FROM f ORDER BY c")
    grouped = plan(fcon, "SELECT c, count(*) FROM f GROUP BY c")
    version = tuple(int(x) for x in rows(fcon, "SELECT sqlite_version()")[0][0].split("."))
    assert (SORTER not in grouped) == (version >= (3, 38))     # bdb's 3.7 core: the sorter
    got = rows(fcon, "SELECT c, count(*), sum(v) FROM f GROUP BY c")
    copy = [tuple(r) for r in rows(fcon, "SELECT c, v FROM f")]
    want = {}
    for c, v in copy:
        n, s = want.get(c, (0, 0))
        want[c] = (n + 1, s + v)
    assert sorted(map(repr, got)) == sorted(repr((c, n, s)) for c, (n, s) in want.items())
    by_text = rows(fcon, "SELECT c FROM f ORDER BY c")
    assert [r[0] for r in by_text] == sorted((c for c, _ in copy), key=lambda x: (x is not None, x or ""))


def test_distinct_keeps_every_value_once(fcon):
    fcon.register("f", KINDS["object_str"])
    fcon.to_table(KINDS["object_str"], "t")
    for q in ["SELECT DISTINCT c FROM {}", "SELECT DISTINCT c FROM {} ORDER BY c",
              "SELECT DISTINCT c FROM {} ORDER BY c DESC"]:
        got, want = rows(fcon, q.format("f")), rows(fcon, q.format("t"))
        assert sorted(map(repr, got)) == sorted(map(repr, want)), q
        if "ORDER" in q:
            assert got == want, q
    assert SORTER not in plan(fcon, "SELECT DISTINCT c FROM f ORDER BY c")   # the rows come ordered


@pytest.mark.parametrize("groups", [255, 256, 700, 2048, 2049, 9000])
def test_many_groups(fcon, groups):
    """One tag pass (<= 255 groups), batches of 255 (up to 2048), a permutation above."""
    rng = np.random.default_rng(groups)
    n = 12_000
    keys = rng.permutation(np.resize(np.arange(groups), n))
    frame = pd.DataFrame({"c": (keys * 7 - 3000).astype(np.int64), "s": _obj([f"k{x:05d}" for x in keys]),
                          "a": pd.array([f"k{x:05d}" for x in keys], dtype="str"), "v": rng.integers(0, 100, n)})
    fcon.register("f", frame)
    first = _native(fcon, frame)
    for q in ["SELECT c, count(*), sum(v) FROM {t} GROUP BY c", "SELECT s, count(*), sum(v) FROM {t} GROUP BY s",
              "SELECT a, count(*) FROM {t} GROUP BY a",
              "SELECT s, max(v) FROM {t} GROUP BY s ORDER BY s DESC",
              "SELECT c FROM {t} WHERE rowid >= {lo} ORDER BY c DESC LIMIT 100 OFFSET 2000"]:
        assert rows(fcon, q.format(t="f", lo=500)) == rows(fcon, q.format(t="t", lo=500 + first)), q
        assert no_sorter(fcon, q.format(t="f", lo=500)), q


@pytest.mark.parametrize("dtype,keys", [
    ("int8", np.arange(-128, 128)),                                    # every int8: 256 groups
    ("int16", np.arange(700) * 93 - 32_500),                           # span 65,007: ranks by table
    ("int32", np.arange(700) * 94 - 32_000),                           # span 65,706: ranks by hash
    ("int64", np.array([-2**63, 2**63 - 1] + list(range(-300, 300)))),  # span 2**64 - 1
    ("int64", np.iinfo(np.int64).max - np.arange(0, 65_536, 93)),      # the top, span 65,472
])
def test_integer_keys_of_every_width_and_span(fcon, dtype, keys):
    """More than 255 integer keys: the batches' ranks come from a table indexed by key - min when
    the keys span less than 65,536, else from the hash; both agree with a native table."""
    rng = np.random.default_rng(len(keys))
    n = 6_000
    frame = pd.DataFrame({"c": rng.permutation(np.resize(keys, n)).astype(dtype), "v": rng.integers(0, 100, n)})
    fcon.register("f", frame)
    first = _native(fcon, frame)
    for q in ["SELECT c, count(*), sum(v) FROM {t} GROUP BY c",
              "SELECT c FROM {t} ORDER BY c DESC LIMIT 3000 OFFSET 10",
              "SELECT c, count(*) FROM {t} WHERE rowid >= {lo} GROUP BY c ORDER BY c DESC"]:
        got = rows(fcon, q.format(t="f", lo=700))
        assert got == rows(fcon, q.format(t="t", lo=700 + first)), q
        assert no_sorter(fcon, q.format(t="f", lo=700)), q
    assert len(rows(fcon, "SELECT DISTINCT c FROM f")) == len(set(keys.tolist())) > 255


def test_an_inner_loop_reuses_its_groups(fcon):
    """The ordered table as the inner loop of a join (xFilter again and again) stays right."""
    a = pd.DataFrame({"k": np.array(_pick([1, 2, 3], n=60), dtype=np.int64), "s": _pick(["x", "y", None], n=60)})
    fcon.register("a", a)
    fcon.to_table(a, "ta")
    for q in ["SELECT x.k, (SELECT group_concat(s, '') FROM (SELECT s FROM {t} y ORDER BY s) ) FROM {t} x "
              "GROUP BY x.k",
              "SELECT x.k, y.s, count(*) FROM {t} x JOIN {t} y ON x.k = y.k GROUP BY x.k, y.s"]:
        assert rows(fcon, q.format(t="a")) == rows(fcon, q.format(t="ta")), q


def test_a_frame_changed_between_queries(fcon):
    df = pd.DataFrame({"c": np.array([3, 1, 2, 1], dtype=np.int64), "v": [1, 2, 3, 4]})
    fcon.register("f", df)
    q = "SELECT c, sum(v) FROM f GROUP BY c"
    assert rows(fcon, q) == [(1, 6), (2, 3), (3, 1)]
    df.loc[0, "c"] = 0                       # a value written in place
    assert rows(fcon, q) == [(0, 1), (1, 6), (2, 3)]
    df["c"] = _obj(["b", "a", "b", None])                        # another dtype, same statement
    assert rows(fcon, q) == [(None, 4), ("a", 2), ("b", 4)]
    df["c"] = _obj([Decimal("2.5"), 1, "x", None])                # values only Python reads
    assert rows(fcon, q) == [(None, 4), (1, 2), ("2.5", 1), ("x", 3)]
    assert rows(fcon, "SELECT c FROM f ORDER BY c DESC") == [("x",), ("2.5",), (1,), (None,)]


# --- random frames ---------------------------------------------------------------------------
_cells = st.one_of(st.none(), st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=False, width=32),
                   st.sampled_from(["", "a", "B", "é", "ab"]))


@settings(max_examples=int(os.environ.get("SQLNB_FUZZ_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ints=st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=0, max_size=60),
       floats=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=60),
       strs=st.lists(st.one_of(st.none(), st.text(max_size=3)), min_size=0, max_size=60),
       desc=st.booleans(), lo=st.integers(-2, 70), limit=st.integers(-1, 70))
def test_random_frames_match_the_native_table(fcon, ints, floats, strs, desc, lo, limit):
    n = min(len(ints), len(floats), len(strs))
    frame = pd.DataFrame({"i": pd.array(ints[:n], dtype="Int64"), "f": np.array(floats[:n], dtype=np.float64),
                          "s": _obj(strs[:n]), "v": np.arange(n)})
    fcon.register("f", frame, replace=True)
    first = _native(fcon, frame)
    assert rows(fcon, "SELECT i, f, s, v FROM f") == rows(fcon, "SELECT i, f, s, v FROM t")
    d = " DESC" if desc else ""
    for c in ("i", "f", "s"):
        for q in [f"SELECT {c}, count(*), sum(v) FROM {{t}} GROUP BY {c}",
                  f"SELECT {c} FROM {{t}} WHERE rowid >= {{lo}} ORDER BY {c}{d} LIMIT {limit}",
                  f"SELECT {c}, count(*) FROM {{t}} GROUP BY {c} ORDER BY {c}{d}"]:
            got = rows(fcon, q.format(t="f", lo=lo))
            want = rows(fcon, q.format(t="t", lo=lo + first))
            assert got == want, q
            assert no_sorter(fcon, q.format(t="f", lo=lo)), q


# --- interrupt -------------------------------------------------------------------------------
def _stop_grouped_scan_midway(fengine, tmp_path, stop_it, expected):
    """A grouped scan of a large frame joined with itself would run for hours; once the table has
    emitted 300,000 rows (a known point: its row counter), ``stop_it(con)`` from another thread
    must end it."""
    con = sqlnb.connect(str(tmp_path / "i.db"), engine=fengine, check_same_thread=False)
    n = 200_000
    df = pd.DataFrame({"g": np.arange(n, dtype=np.int64) % 97, "f": np.ones(n)})
    con.register("big", df)
    src = con.registered["big"]
    q = "SELECT a.g, count(*) FROM big a, big b WHERE a.f = b.f GROUP BY a.g"
    assert "GROUP BY" not in plan(con, q)            # served grouped: no sorter for the GROUP BY
    stop_when_read(con, src, q, stop_it, expected)
    assert rows(con, "SELECT g, count(*) FROM big GROUP BY g LIMIT 2") == [(0, 2062), (1, 2062)]
    con.close()


@pytest.mark.timeout(120)
def test_interrupt_in_the_middle_of_a_grouped_scan(tmp_path):
    need_engine("sqlite")
    _stop_grouped_scan_midway("sqlite", tmp_path, lambda con: con.interrupt(), errors.InterruptError)


@pytest.mark.timeout(120)
def test_ctrl_c_in_the_middle_of_a_grouped_scan(fengine, tmp_path):
    _stop_grouped_scan_midway(fengine, tmp_path, lambda con: os.kill(os.getpid(), signal.SIGINT), KeyboardInterrupt)


def test_object_strings_python_must_encode(fcon):
    """Non-ASCII str objects whose UTF-8 form is not made yet, a lone surrogate (xColumn gives
    its surrogatepass bytes), pd.NA: ordered like the values the table reads."""
    vals = [_fresh_str("é"), "\ud800x", pd.NA, _fresh_str("€"), "a", None, _fresh_str("é"), "\ud800x"]
    fcon.register("f", pd.DataFrame({"c": _obj(vals), "v": np.arange(len(vals))}))
    assert fcon.registered["f"].order_classes == (1, 1)
    read = [r[0] for r in rows(fcon, "SELECT c FROM f")]
    fcon.execute("CREATE TABLE t AS SELECT c, v FROM f")
    for q in ["SELECT c, count(*), sum(v) FROM {} GROUP BY c", "SELECT c FROM {} ORDER BY c DESC"]:
        assert rows(fcon, q.format("f")) == rows(fcon, q.format("t")), q
        assert SORTER not in plan(fcon, q.format("f")), q
    assert len(read) == len(vals)
