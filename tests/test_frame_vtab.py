"""Frames as tables: ``Connection.register`` and the sqlnb_frame virtual table (docs/frames-in-sql.md).

The compiled engines (``sqlite``, ``bdb``) read the frame's buffers in place; each test runs on
both. What is read is compared with the documented type mapping, and with the same SQL over the
frame copied into a real table.
"""
from __future__ import annotations

import gc
import os
import signal
import threading
import time
import weakref

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import sqlnb
from sqlnb import errors
from tests.conftest import need_engine

IN_PLACE = ("sqlite", "bdb")


@pytest.fixture(params=IN_PLACE)
def fengine(request):
    need_engine(request.param)
    return request.param


@pytest.fixture
def fcon(fengine, tmp_path):
    c = sqlnb.connect(str(tmp_path / "f.db"), engine=fengine)
    yield c
    c.close()


def rows(con, sql, *params):
    return con.execute(sql, *params).fetchall()


# --- every dtype, with and without missing values ------------------------------------------
def _mixed_frame():
    ts = pd.to_datetime(["2024-01-01", "2024-02-29 13:45:06.25", None], format="ISO8601")
    return pd.DataFrame({
        "i8": np.array([1, -2, 3], dtype=np.int8),
        "i64": np.array([2**62, -(2**62), 0], dtype=np.int64),
        "u32": np.array([1, 2, 4_000_000_000], dtype=np.uint32),
        "u64": np.array([1, 2, 2**64 - 1], dtype=np.uint64),
        "f32": np.array([0.5, np.nan, -1.25], dtype=np.float32),
        "f64": [1.5, np.nan, 3.0],
        "b": [True, False, True],
        "s": pd.array(["x", None, "zé"], dtype="str"),
        "obj": np.array(["p", None, "qé€"], dtype=object),
        "byt": np.array([b"\x00\x01", None, b""], dtype=object),
        "nI64": pd.array([1, None, 3], dtype="Int64"),
        "bool": pd.array([True, None, False], dtype="boolean"),
        "nF64": pd.array([0.25, None, 2.0], dtype="Float64"),
        "ts": ts,
        "tz": ts.tz_localize("UTC"),
        "td": pd.to_timedelta([1, None, 3], unit="s"),
        "cat": pd.Categorical(["u", "v", None]),
        "catn": pd.Categorical([10, None, 30]),
    })


MIXED_ROWS = [
    (1, 2**62, 1, 1, 0.5, 1.5, 1, "x", "p", b"\x00\x01", 1, 1, 0.25, "2024-01-01 00:00:00",
     "2024-01-01 00:00:00+00:00", 1_000_000_000, "u", 10),
    (-2, -(2**62), 2, 2, None, None, 0, None, None, None, None, None, None, "2024-02-29 13:45:06.25",
     "2024-02-29 13:45:06.25+00:00", None, "v", None),
    (3, 0, 4_000_000_000, float(2**64 - 1), -1.25, 3.0, 1, "zé", "qé€", b"", 3, 0, 2.0, None, None,
     3_000_000_000, None, 30),
]


def test_every_dtype_reads_as_documented(fcon):
    df = _mixed_frame()
    fcon.register("df", df)
    assert rows(fcon, "SELECT * FROM df") == MIXED_ROWS
    assert rows(fcon, "SELECT rowid FROM df") == [(0,), (1,), (2,)]
    # the declared types are those to_table writes
    decl = {r[1]: r[2] for r in rows(fcon, "PRAGMA temp.table_info(df)")}
    assert decl["i64"] == "INTEGER" and decl["f64"] == "REAL" and decl["s"] == "TEXT"
    assert decl["byt"] == "BLOB" and decl["b"] == "BOOLEAN" and decl["ts"] == "TIMESTAMP"
    assert decl["cat"] == "TEXT" and decl["catn"] == "INTEGER"


def test_query_df_round_trip_without_missing_values(fcon):
    df = pd.DataFrame({"i": np.arange(5, dtype=np.int64), "f": np.linspace(0, 1, 5), "s": list("abcde"),
                       "n": pd.array(range(5), dtype="Int64"), "c": pd.Categorical(list("xyxyx"))})
    fcon.register("df", df)
    out = fcon.query_df("SELECT * FROM df")
    assert out["i"].tolist() == df["i"].tolist() and out["i"].dtype == np.int64
    assert out["f"].tolist() == df["f"].tolist() and out["f"].dtype == np.float64
    assert out["s"].tolist() == df["s"].tolist()
    assert out["n"].tolist() == list(range(5))
    assert out["c"].tolist() == list("xyxyx")


def test_datetimes_parse_back_and_epoch_option(fcon):
    ts = pd.to_datetime(["2024-01-01 00:00:01.5", "1969-12-31 23:59:59", None], format="ISO8601")
    df = pd.DataFrame({"t": ts})
    fcon.register("d", df)
    back = fcon.query_df("SELECT t FROM d", parse_dates=True)["t"]
    assert back.tolist()[:2] == ts.tolist()[:2] and pd.isna(back.iloc[2])
    fcon.register("e", df, datetimes="epoch")
    assert rows(fcon, "SELECT t FROM e") == [(1704067201.5,), (-1.0,), (None,)]
    assert rows(fcon, "SELECT datetime(t, 'unixepoch') FROM e LIMIT 1") == [("2024-01-01 00:00:01",)]
    with pytest.raises(ValueError, match="datetimes must be one of"):
        fcon.register("x", df, datetimes="julian")


def test_object_column_values_beyond_str(fcon):
    from decimal import Decimal

    df = pd.DataFrame({"o": np.array([7, 2**70, Decimal("1.5"), pd.NA, pd.NaT, 2.5, b"b", True, "s"],
                                     dtype=object)})
    fcon.register("o", df)
    assert [r[0] for r in rows(fcon, "SELECT o FROM o")] == [7, str(2**70), "1.5", None, None, 2.5, b"b", 1, "s"]


def test_named_index_is_a_column(fcon):
    df = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.Index(["a", "b"], name="key"))
    fcon.register("n", df)
    assert rows(fcon, "SELECT key, v FROM n") == [("a", 1.0), ("b", 2.0)]
    multi = pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_tuples([(1, "x"), (2, "y")], names=["k", None]))
    fcon.register("m", multi)
    assert rows(fcon, "SELECT * FROM m") == [(1, "x", 1), (2, "y", 2)]
    assert [r[1] for r in rows(fcon, "PRAGMA temp.table_info(m)")] == ["k", "level_1", "v"]
    unnamed = pd.DataFrame({"v": [5]}, index=[9])
    fcon.register("u", unnamed)
    assert rows(fcon, "SELECT * FROM u") == [(5,)]


def test_strided_column_of_a_2d_block(fcon):
    block = np.arange(12, dtype=np.float64).reshape(4, 3)   # pandas keeps it as one (transposed) block
    df = pd.DataFrame(block, columns=["a", "b", "c"])
    fcon.register("blk", df)
    assert rows(fcon, "SELECT b FROM blk") == [(1.0,), (4.0,), (7.0,), (10.0,)]


# --- Arrow -----------------------------------------------------------------------------------
def test_arrow_chunks_slices_large_strings_views(fcon):
    strs = pa.array(["zero", "one", None, "three", "a string longer than twelve bytes"])
    t = pa.table({
        "n": pa.chunked_array([pa.array([1, 2, 3, 4, 5, 6]).slice(2, 2), pa.array([None, 10], pa.int64())]),
        "s": pa.chunked_array([strs.slice(1, 3), strs.slice(4, 1)]),
        "ls": pa.chunked_array([pa.array(["x", None], pa.large_string()), pa.array(["é", "yy"], pa.large_string())]),
        "sv": pa.array(["tiny", None, "a view longer than twelve bytes", ""], pa.string_view()),
        "bv": pa.array([b"a", b"b" * 20, None, b""], pa.binary_view()),
        "bin": pa.array([b"\x00", None, b"zz", b""], pa.large_binary()),
        "bo": pa.chunked_array([pa.array([True, False, None, True, False]).slice(1, 3), pa.array([True])]),
        "d": pa.array([0, 1, None, 19_000], pa.date32()),
        "tz": pa.array([0, 1_500_000, None, 86_400_000_000], pa.timestamp("us", tz="Europe/Paris")),
        "nul": pa.nulls(4),
        "dec": pa.array([1, 2, None, 4], pa.decimal128(10, 2)),
    })
    fcon.register("t", t)
    assert rows(fcon, "SELECT * FROM t") == [
        (3, "one", "x", "tiny", b"a", b"\x00", 0, "1970-01-01", "1970-01-01 00:00:00+00:00", None, "1.00"),
        (4, None, None, None, b"b" * 20, None, None, "1970-01-02", "1970-01-01 00:00:01.5+00:00", None, "2.00"),
        (None, "three", "é", "a view longer than twelve bytes", None, b"zz", 1, None, None, None, None),
        (10, "a string longer than twelve bytes", "yy", "", b"", b"", 1, "2022-01-08",
         "1970-01-02 00:00:00+00:00", None, "4.00"),
    ]


def test_arrow_dictionary_per_chunk_and_record_batch(fcon):
    a = pa.array(["x", "y", "x"]).dictionary_encode()
    b = pa.array(["z", None, "x"]).dictionary_encode()
    t = pa.table({"c": pa.chunked_array([a, b])})
    fcon.register("dct", t)
    assert [r[0] for r in rows(fcon, "SELECT c FROM dct")] == ["x", "y", "x", "z", None, "x"]
    batch = pa.record_batch({"k": pa.array([1, 2]), "v": pa.array(["a", "b"])})
    fcon.register("rb", batch)
    assert rows(fcon, "SELECT k, v FROM rb") == [(1, "a"), (2, "b")]


def test_arrow_pycapsule_stream_object(fcon):
    pl = pytest.importorskip("polars")
    p = pl.DataFrame({"s": ["short", "a much longer polars string", None], "n": [1, None, 3]})
    fcon.register("p", p)
    assert rows(fcon, "SELECT s, n FROM p") == [("short", 1), ("a much longer polars string", None), (None, 3)]


def test_reading_in_place_shares_the_buffers():
    """The table reads the frame's own memory: a value written into the numpy array is seen."""
    con = sqlnb.connect(":memory:")
    arr = np.arange(4, dtype=np.int64)
    t = pa.table({"x": pa.array(arr)})          # zero-copy over the numpy array
    con.register("t", t)
    arr[2] = 99
    assert rows(con, "SELECT x FROM t") == [(0,), (1,), (99,), (3,)]


# --- shapes and names ----------------------------------------------------------------------
def test_empty_frame_and_no_columns(fcon):
    fcon.register("e", pd.DataFrame({"a": pd.Series([], dtype="int64"), "s": pd.Series([], dtype="str")}))
    assert rows(fcon, "SELECT * FROM e") == []
    assert rows(fcon, "SELECT count(*) FROM e") == [(0,)]
    with pytest.raises(ValueError, match="no columns"):
        fcon.register("none", pd.DataFrame())


def test_two_thousand_columns(fcon):
    df = pd.DataFrame(np.arange(2000 * 3, dtype=np.int64).reshape(3, 2000), columns=[f"c{i}" for i in range(2000)])
    fcon.register("wide", df)
    assert rows(fcon, "SELECT c0, c1999 FROM wide") == [(0, 1999), (2000, 3999), (4000, 5999)]
    assert len(rows(fcon, "SELECT * FROM wide")[0]) == 2000


def test_names_that_need_quoting(fcon):
    df = pd.DataFrame({"a b": [1], "select": [2], 'x"y': [3], "é ü": [4], 5: [6]})
    fcon.register('my "frame"', df)
    assert rows(fcon, 'SELECT "a b", "select", "x""y", "é ü", "5" FROM "my ""frame"""') == [(1, 2, 3, 4, 6)]
    with pytest.raises(ValueError, match="same name in SQL"):
        fcon.register("dup", pd.DataFrame([[1, 2]], columns=["A", "a"]))
    with pytest.raises(TypeError, match="cannot serve a builtins.list"):
        fcon.register("lst", [1, 2])
    with pytest.raises(ValueError, match="table name"):
        fcon.register("", pd.DataFrame({"a": [1]}))


# --- registry --------------------------------------------------------------------------------
def test_register_unregister_replace(fcon):
    df = pd.DataFrame({"a": [1, 2]})
    assert fcon.register("r", df) is fcon
    assert set(fcon.registered) == {"r"} and fcon.registered["r"].frame is df
    with pytest.raises(errors.ProgrammingError, match="already registered as 'r'"):
        fcon.register("r", df)
    fcon.register("R", pd.DataFrame({"b": [3]}), replace=True)
    assert rows(fcon, "SELECT * FROM r") == [(3,)]
    fcon.unregister("r")
    assert fcon.registered == {}
    with pytest.raises(errors.OperationalError, match="no such table"):
        fcon.execute("SELECT * FROM r")
    with pytest.raises(errors.ProgrammingError, match="no frame is registered as 'r'"):
        fcon.unregister("r")


def test_read_only_refusal_names_the_frame(fcon):
    fcon.register("trips", pd.DataFrame({"a": [1]}))
    for sql in ("INSERT INTO trips VALUES (2)", "UPDATE trips SET a = 5", "DELETE FROM trips"):
        with pytest.raises(errors.ReadOnlyError, match="trips is a frame registered from Python and is read-only"):
            fcon.execute(sql)
    assert rows(fcon, "SELECT a FROM trips") == [(1,)]


def test_unknown_key_in_sql_is_a_clear_error(fcon):
    fcon.register("k", pd.DataFrame({"a": [1]}))
    with pytest.raises(errors.OperationalError, match="no frame is registered under the key '999'"):
        fcon.execute("CREATE VIRTUAL TABLE temp.z USING sqlnb_frame(999)")


@pytest.mark.parametrize("mode", ["ro", "ro-scratch"])
def test_allowed_in_read_only_modes_which_still_refuse_the_rest(fengine, tmp_path, mode):
    path = str(tmp_path / "ro.db")
    w = sqlnb.connect(path, engine=fengine)
    w.execute("CREATE TABLE m (a INTEGER)")
    w.execute("INSERT INTO m VALUES (1)")
    w.commit()
    w.close()
    con = sqlnb.connect(path, engine=fengine, mode=mode)
    con.register("df", pd.DataFrame({"a": [1, 2, 3]}))
    assert rows(con, "SELECT sum(df.a) FROM df JOIN m USING (a)") == [(1,)]
    refused = ["CREATE VIRTUAL TABLE temp.z USING sqlnb_frame(1)", "INSERT INTO df VALUES (1)",
               "DROP TABLE df", "INSERT INTO m SELECT a FROM df", "DELETE FROM m"]
    if mode == "ro":
        refused.append("CREATE TEMP TABLE q (x)")
    for sql in refused:
        with pytest.raises(errors.ReadOnlyError):
            con.execute(sql)
    con.unregister("df")
    con.close()


def test_frames_are_let_go_when_the_connection_closes(fengine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "c.db"), engine=fengine)
    df = pd.DataFrame({"a": [1]})
    ref = weakref.ref(df)
    con.register("df", df)
    del df
    gc.collect()
    assert ref() is not None
    con.close()
    gc.collect()
    assert ref() is None


# --- lifetime: garbage collection and mutation ------------------------------------------------
def test_frame_collected_elsewhere_while_a_statement_steps(fcon):
    df = pd.DataFrame({"a": np.arange(5000, dtype=np.int64), "s": [f"v{i}" for i in range(5000)]})
    ref = weakref.ref(df)
    fcon.register("g", df)
    cur = fcon.execute("SELECT a, s FROM g")
    first = cur.fetchmany(10)
    del df                       # the table's reference keeps the frame
    gc.collect()
    assert ref() is not None
    rest = cur.fetchall()
    got = first + rest
    assert len(got) == 5000 and got[4999] == (4999, "v4999")


def test_frame_mutated_while_a_statement_steps_keeps_the_scan_consistent(fcon):
    df = pd.DataFrame({"a": np.arange(3000, dtype=np.int64)})
    fcon.register("m", df)
    cur = fcon.execute("SELECT a FROM m")
    head = cur.fetchmany(5)
    df["a"] = np.full(3000, -1, dtype=np.int64)   # a new column array: the old one stays alive for the scan
    gc.collect()
    assert head + cur.fetchall() == [(i,) for i in range(3000)]
    assert rows(fcon, "SELECT min(a), max(a) FROM m") == [(-1, -1)]   # the next statement reads it as it is now


def test_frame_mutated_between_two_queries(fcon):
    df = pd.DataFrame({"a": [1, 2, 3], "s": ["x", "y", "z"]})
    fcon.register("mut", df)
    assert rows(fcon, "SELECT sum(a) FROM mut") == [(6,)]
    df.loc[0, "a"] = 10
    df.loc[1, "s"] = "changed"
    assert rows(fcon, "SELECT sum(a), group_concat(s) FROM mut") == [(15, "x,changed,z")]
    df.loc[3] = [4, "w"]                      # one more row (the same object, enlarged)
    assert rows(fcon, "SELECT count(*), sum(a) FROM mut") == [(4, 19)]
    df["extra"] = 1                           # a column the table does not have
    with pytest.raises(errors.OperationalError, match="columns changed since it was registered"):
        fcon.execute("SELECT * FROM mut")
    del df["extra"]
    assert rows(fcon, "SELECT count(*) FROM mut") == [(4,)]
    df = pd.DataFrame({"a": [100], "s": ["new"]})   # a new object in the variable: not read
    assert rows(fcon, "SELECT sum(a) FROM mut") == [(19,)]


# --- the planner: row count, rowid ranges, LIMIT ----------------------------------------------
def test_limit_and_rowid_ranges_read_only_those_rows(fcon):
    df = pd.DataFrame({"a": np.arange(100_000, dtype=np.int64)})
    fcon.register("big", df)
    src = fcon.registered["big"]
    before = src.rows_read
    assert len(rows(fcon, "SELECT * FROM big LIMIT 10")) == 10
    assert src.rows_read - before <= 11
    before = src.rows_read
    assert rows(fcon, "SELECT a FROM big WHERE rowid BETWEEN 500 AND 502") == [(500,), (501,), (502,)]
    assert rows(fcon, "SELECT a FROM big WHERE rowid > 99998") == [(99999,)]
    assert rows(fcon, "SELECT a FROM big WHERE rowid = 7") == [(7,)]
    assert rows(fcon, "SELECT a FROM big WHERE rowid = 7.5 OR rowid = 'x'") == []
    assert rows(fcon, "SELECT count(*) FROM big WHERE rowid < 2.5") == [(3,)]
    assert src.rows_read - before <= 10
    before = src.rows_read
    assert rows(fcon, "SELECT a FROM big WHERE rowid >= 1000 LIMIT 2 OFFSET 3") == [(1003,), (1004,)]
    assert src.rows_read - before <= 6


def test_limit_with_other_constraints_or_an_order_stays_correct(fcon):
    df = pd.DataFrame({"a": np.arange(1000, dtype=np.int64) % 7})
    fcon.register("f", df)
    assert rows(fcon, "SELECT rowid FROM f WHERE a = 3 LIMIT 2 OFFSET 1") == [(10,), (17,)]
    assert rows(fcon, "SELECT rowid FROM f ORDER BY rowid DESC LIMIT 3") == [(999,), (998,), (997,)]
    assert rows(fcon, "SELECT rowid FROM f ORDER BY a DESC, rowid LIMIT 2 OFFSET 1") == [(13,), (20,)]
    assert rows(fcon, "SELECT rowid FROM f ORDER BY rowid LIMIT 2 OFFSET 5") == [(5,), (6,)]
    assert rows(fcon, "SELECT rowid FROM f WHERE rowid < 10 ORDER BY rowid DESC LIMIT 2") == [(9,), (8,)]


def test_limit_is_taken_by_the_table_where_sqlite_passes_it():
    need_engine("sqlite")
    con = sqlnb.connect(":memory:")
    con.register("big", pd.DataFrame({"a": np.arange(100)}))
    plan = con.execute("EXPLAIN QUERY PLAN SELECT * FROM big LIMIT 10 OFFSET 5").fetchall()
    assert "INDEX 96:" in plan[0][3]   # LIMIT (32) and OFFSET (64) consumed by xFilter
    plan = con.execute("EXPLAIN QUERY PLAN SELECT * FROM big ORDER BY rowid DESC LIMIT 3").fetchall()
    assert "INDEX 0:" in plan[0][3]    # the sort comes after the scan: no LIMIT in the scan
    con.close()


def test_joins_and_windows_agree_with_the_copied_table(fcon):
    rng = np.random.default_rng(7)
    n = 2000
    df = pd.DataFrame({"k": rng.integers(0, 50, n), "x": rng.normal(size=n).round(6),
                       "cat": pd.Categorical(rng.choice(["a", "b", "c"], n)),
                       "s": rng.choice(["p", "q", None], n)})
    dim = pd.DataFrame({"k": np.arange(50), "name": [f"n{i}" for i in range(50)]})
    fcon.register("fv", df)
    fcon.register("dv", dim)
    fcon.to_table(df, "fc")
    fcon.to_table(dim, "dc")
    queries = [
        "SELECT d.name, count(*), round(sum(f.x), 6) FROM {f} f JOIN {d} d USING (k) GROUP BY d.name ORDER BY 1",
        "SELECT cat, k, x, rank() OVER (PARTITION BY cat ORDER BY x, k) FROM {f} ORDER BY cat, x, k LIMIT 200",
        "SELECT s, count(*), sum(x > 0) FROM {f} GROUP BY s ORDER BY s",
        "SELECT k, avg(x) OVER (ORDER BY k ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM "
        "(SELECT k, sum(x) AS x FROM {f} GROUP BY k) ORDER BY k",
        "SELECT count(*) FROM {f} a JOIN {f} b ON a.k = b.k AND a.cat = b.cat WHERE a.x < b.x",
    ]
    for q in queries:
        if "OVER" in q and fcon.engine == "bdb":
            continue   # BerkeleyDB's 3.7 core has no window functions
        assert rows(fcon, q.format(f="fv", d="dv")) == rows(fcon, q.format(f="fc", d="dc")), q


def stop_when_read(con, src, sql, stop_it, expected, rows_read=300_000):
    """Run ``sql`` (hours long); once the frame table ``src`` has read ``rows_read`` rows (a known
    point: its row counter), ``stop_it(con)`` from another thread must end it with ``expected``."""
    stop = threading.Event()

    def once_under_way():
        deadline = time.monotonic() + 60
        while src.rows_read < rows_read and time.monotonic() < deadline:
            if stop.wait(0.001):
                return
        stop_it(con)

    t = threading.Thread(target=once_under_way, daemon=True)
    t.start()
    try:
        with pytest.raises(expected):
            con.execute(sql).fetchall()
    finally:
        stop.set()
        t.join()
    assert src.rows_read >= rows_read


def _stop_scan_midway(fengine, tmp_path, stop_it, expected):
    """Start a scan of a large frame that would run for hours; once it has read 300,000 rows,
    ``stop_it(con)`` from another thread must end it."""
    con = sqlnb.connect(str(tmp_path / "i.db"), engine=fengine, check_same_thread=False)
    df = pd.DataFrame({"a": np.arange(200_000, dtype=np.int64), "f": np.ones(200_000)})
    con.register("big", df)
    src = con.registered["big"]
    stop_when_read(con, src, "SELECT count(*) FROM big a, big b WHERE a.f = b.f", stop_it, expected)   # 4e10 rows
    assert rows(con, "SELECT count(*), sum(a) FROM big") == [(200_000, 199_999 * 100_000)]
    con.close()


@pytest.mark.timeout(120)
def test_interrupt_in_the_middle_of_a_scan(tmp_path):
    """interrupt() from another thread (our core checks it on the virtual table's loop; BerkeleyDB's
    3.7 core does not: there Ctrl-C and time limits stop a frame scan, below)."""
    need_engine("sqlite")
    _stop_scan_midway("sqlite", tmp_path, lambda con: con.interrupt(), errors.InterruptError)


@pytest.mark.timeout(120)
def test_ctrl_c_in_the_middle_of_a_scan(fengine, tmp_path):
    _stop_scan_midway(fengine, tmp_path, lambda con: os.kill(os.getpid(), signal.SIGINT), KeyboardInterrupt)


# --- the system engine: a TEMP copy, said once ------------------------------------------------
def test_system_engine_copies_into_a_temp_table_and_says_so_once(tmp_path, capsys):
    con = sqlnb.connect(str(tmp_path / "s.db"), engine="system")
    df = _mixed_frame()
    con.register("df", df)
    assert rows(con, "SELECT * FROM df") == MIXED_ROWS          # the same values as in place
    assert "copies a registered frame into a TEMP table" in capsys.readouterr().err
    assert con.backend.frames_served == "copy" and set(con.registered) == {"df"}
    df.loc[0, "i64"] = 5                                           # a copy: not seen
    assert rows(con, "SELECT i64 FROM df LIMIT 1") == [(2**62,)]
    con.register("df", df, replace=True)
    assert rows(con, "SELECT i64 FROM df LIMIT 1") == [(5,)]
    assert capsys.readouterr().err == ""                           # said once per connection
    with pytest.raises(errors.ProgrammingError, match="already registered"):
        con.register("df", df)
    con.unregister("df")
    with pytest.raises(errors.OperationalError, match="no such table"):
        con.execute("SELECT * FROM df")
    con.close()
