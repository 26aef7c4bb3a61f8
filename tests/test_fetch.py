"""The columnar fetcher: type rules, edge values, options; every engine against the stdlib."""
from __future__ import annotations

import math
import sqlite3
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import sqlnb
from sqlnb import errors, frames
from tests.fetch_oracle import check_column, check_frame, expected_kind

I64_MIN, I64_MAX = -(2**63), 2**63 - 1

# storage-class mixes x NULL patterns: (label, values) where values are what SQLite stores
MIXES = {
    "int": [1, -5, 0, 42],
    "int_extremes": [I64_MIN, I64_MAX, 0, -1],
    "real": [1.5, -0.0, 2.25, 1e300],
    "int_real_exact": [1, 2.5, 2**53, -7],
    "int_real_inexact": [2**53 + 1, 0.5, 3, 4],
    "int_real_extreme": [I64_MAX, 1.0, 2, 3],
    "text": ["a", "", "δέλτα", "x\x00y"],
    "blob": [b"\x00\x01", b"", b"\xff", b"abc"],
    "int_text": [1, "1", 2, "two"],
    "real_blob": [1.5, b"x", 2.5, b""],
    "everything": [1, 2.5, "s", b"b"],
    "text_blob": ["t", b"t", "u", b"u"],
}
NULLS = {
    "no_nulls": lambda vals: vals,
    "some_null": lambda vals: [None if i % 2 else v for i, v in enumerate(vals)],
    "first_null": lambda vals: [None] + vals,
    "last_null": lambda vals: vals + [None],
    "one_value": lambda vals: [None, None, vals[0], None],
}


def _fill(con, values):
    con.execute("CREATE TABLE t (v)")
    for v in values:
        con.execute("INSERT INTO t VALUES (?)", (v,))
    con.commit()


@pytest.mark.parametrize("nulls", sorted(NULLS))
@pytest.mark.parametrize("mix", sorted(MIXES))
def test_dtype_null_matrix(engine, tmp_path, mix, nulls):
    values = NULLS[nulls](list(MIXES[mix]))
    con = sqlnb.connect(str(tmp_path / "m.db"), engine=engine)
    _fill(con, values)
    want = con.execute("SELECT v FROM t ORDER BY rowid").fetchall()
    df = con.query_df("SELECT v FROM t ORDER BY rowid")
    check_frame(df, ["v"], want, f"{engine}/{mix}/{nulls}")
    # and the stdlib agrees on the values themselves (engines other than bdb share the file format)
    if engine != "bdb":
        ref = sqlite3.connect(str(tmp_path / "m.db"))
        assert [r[0] for r in ref.execute("SELECT v FROM t ORDER BY rowid")] == [r[0] for r in want]
        ref.close()
    con.close()


def test_rules_table(con):
    """The documented rules, spelled out once on concrete columns."""
    con.executescript("""
        CREATE TABLE r (i INTEGER, ni INTEGER, f REAL, e, x, s TEXT, b BLOB, m, z);
        INSERT INTO r VALUES (1, NULL, 1.5, 1, 9007199254740993, 'a', x'00', 1, NULL);
        INSERT INTO r VALUES (2, 5, NULL, 2.5, 0.5, 'b', x'01', 'one', NULL);
    """)
    df = con.query_df("SELECT * FROM r")
    assert df["i"].dtype == np.int64
    assert str(df["ni"].dtype) == "Int64" and df["ni"].isna().tolist() == [True, False]
    assert df["f"].dtype == np.float64 and math.isnan(df["f"][1])
    assert df["e"].dtype == np.float64 and df["e"].tolist() == [1.0, 2.5]
    assert df["x"].dtype == object and df["x"].tolist() == [9007199254740993, 0.5]
    assert type(df["x"][0]) is int
    assert isinstance(df["s"].dtype, pd.StringDtype) and df["s"].dtype.storage == "pyarrow"
    assert df["b"].dtype == object and df["b"].tolist() == [b"\x00", b"\x01"]
    assert df["m"].dtype == object and df["m"].tolist() == [1, "one"]
    assert df["z"].dtype == object and df["z"].tolist() == [None, None]


def test_text_column_has_no_python_strings(tmp_path):
    """TEXT arrives as an Arrow large_string array over the fetch buffers (no per-row str)."""
    con = sqlnb.connect(str(tmp_path / "s.db"), engine="sqlite")
    con.execute("CREATE TABLE t (s TEXT)")
    con.executemany("INSERT INTO t VALUES (?)", [(f"v{i}",) for i in range(1000)])
    df = con.query_df("SELECT s FROM t")
    chunks = df["s"].array._pa_array.chunks
    assert len(chunks) == 1 and chunks[0].type == pa.large_string()
    assert df["s"][999] == "v999"


def test_numbers_share_the_fetch_buffer(tmp_path):
    con = sqlnb.connect(str(tmp_path / "n.db"), engine="sqlite")
    con.execute("CREATE TABLE t (i INTEGER, f REAL)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, i / 2) for i in range(5000)])
    res = frames.run(con, "SELECT i, f FROM t")
    df = res.to_pandas()
    assert np.shares_memory(df["i"].to_numpy(), res.raw_columns[0].int64())
    assert np.shares_memory(df["f"].to_numpy(), res.raw_columns[1].float64())


@pytest.mark.parametrize("value", [I64_MIN, I64_MAX, I64_MIN + 1, I64_MAX - 1, 0, -1])
def test_int64_extremes(con, value):
    df = con.query_df("SELECT ? AS v", (value,))
    assert df["v"].dtype == np.int64 and int(df["v"][0]) == value
    df = con.query_df("SELECT ? AS v UNION ALL SELECT NULL", (value,))
    assert str(df["v"].dtype) == "Int64" and int(df["v"][0]) == value


def test_special_floats(con):
    con.execute("CREATE TABLE f (v REAL)")
    for v in (-0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308):
        con.execute("INSERT INTO f VALUES (?)", (v,))
    con.commit()
    want = con.execute("SELECT v FROM f ORDER BY rowid").fetchall()
    assert want[3] == (None,)  # SQLite stores NaN as NULL
    df = con.query_df("SELECT v FROM f ORDER BY rowid")
    check_frame(df, ["v"], want)
    got = df["v"].tolist()
    assert got[1] == math.inf and got[2] == -math.inf and math.isnan(got[3])
    # an expression keeps the sign of -0.0 exactly as the stdlib sees it
    row = con.execute("SELECT -0.0 * 1").fetchone()
    df = con.query_df("SELECT -0.0 * 1 AS z")
    assert math.copysign(1, df["z"][0]) == math.copysign(1, row[0])


def test_huge_text_and_blob(con):
    big_t = "é" * 3_000_000 + "\x00end"
    big_b = bytes(range(256)) * 40_000
    con.execute("CREATE TABLE h (t TEXT, b BLOB)")
    con.execute("INSERT INTO h VALUES (?, ?)", (big_t, big_b))
    con.execute("INSERT INTO h VALUES ('small', x'00')")
    con.commit()
    df = con.query_df("SELECT t, b FROM h ORDER BY rowid")
    assert df["t"][0] == big_t and df["t"][1] == "small"
    assert df["b"][0] == big_b and df["b"][1] == b"\x00"
    tbl = con.query_arrow("SELECT t, b FROM h ORDER BY rowid")
    assert tbl.column("t")[0].as_py() == big_t and tbl.column("b")[0].as_py() == big_b


def test_embedded_nul_in_text(con):
    df = con.query_df("SELECT ? AS s", ("a\x00b\x00",))
    assert df["s"][0] == "a\x00b\x00"
    assert con.execute("SELECT ?", ("a\x00b\x00",)).fetchone()[0] == "a\x00b\x00"


INVALID = [b"\xff", b"ok\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"a\x80b"]


def test_invalid_utf8_policy(engine, tmp_path):
    """TEXT that is not UTF-8: an object column of surrogateescape str (DataFrame), the stored
    bytes as large_binary (Arrow); valid rows of the same column are unaffected; never a crash."""
    con = sqlnb.connect(str(tmp_path / "u.db"), engine=engine)
    con.execute("CREATE TABLE u (s TEXT)")
    con.execute("INSERT INTO u VALUES ('fine')")
    for raw in INVALID:
        con.execute(f"INSERT INTO u VALUES (CAST(x'{raw.hex()}' AS TEXT))")
    con.execute("INSERT INTO u VALUES (NULL)")
    con.commit()
    df = con.query_df("SELECT s FROM u ORDER BY rowid")
    assert df["s"].dtype == object
    want = ["fine"] + [r.decode("utf-8", "surrogateescape") for r in INVALID] + [None]
    assert df["s"].tolist() == want
    tbl = con.query_arrow("SELECT s FROM u ORDER BY rowid")
    assert tbl.schema.field("s").type == pa.large_binary()
    assert tbl.column("s").to_pylist() == [b"fine"] + INVALID + [None]
    # a column with only valid text stays Arrow-backed
    df = con.query_df("SELECT s FROM u WHERE rowid = 1")
    assert isinstance(df["s"].dtype, pd.StringDtype)
    # invalid text mixed with numbers: object of the same values
    df = con.query_df("SELECT s FROM u WHERE rowid <= 2 UNION ALL SELECT 5")
    assert df["s"].tolist() == ["fine", "\udcff", 5]
    con.close()


def test_utf8_validator_agrees_with_python():
    from sqlnb import _fast

    samples = INVALID + [b"", b"plain ascii text", "δέλτα €𝄞".encode(), b"\xef\xbf\xbf", b"\xf0\x9f\x98\x80",
                         b"\xe0\x80\x80", b"\xf8\x88\x80\x80\x80", b"12345678\xff", b"\xc2", b"\xe2\x82"]
    for s in samples:
        try:
            s.decode("utf-8")
            ok = True
        except UnicodeDecodeError:
            ok = False
        assert _fast.utf8_valid(s) is ok, s


def test_empty_result_keeps_names_and_declared_types(engine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "e.db"), engine=engine)
    con.execute("CREATE TABLE e (i INTEGER, f REAL, s VARCHAR(10), b BLOB, n NUMERIC, d DATE)")
    df = con.query_df("SELECT * FROM e")
    assert list(df.columns) == ["i", "f", "s", "b", "n", "d"] and len(df) == 0
    if engine == "system":  # the stdlib does not report declared types: object columns
        assert all(dt == object for dt in df.dtypes)
    else:
        assert df["i"].dtype == np.int64 and df["f"].dtype == np.float64
        assert isinstance(df["s"].dtype, pd.StringDtype)
        assert df["b"].dtype == object and df["n"].dtype == object and df["d"].dtype == object
        assert df.attrs["sqlnb_decltypes"] == ["INTEGER", "REAL", "VARCHAR(10)", "BLOB", "NUMERIC", "DATE"]
    tbl = con.query_arrow("SELECT * FROM e")
    assert tbl.num_rows == 0 and tbl.column_names == ["i", "f", "s", "b", "n", "d"]
    con.close()


def test_statements_without_columns(con):
    df = con.query_df("CREATE TABLE nc (x)")
    assert df.shape == (0, 0)
    res = frames.run(con, "INSERT INTO nc SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3")
    assert res.columns == [] and res.rowcount == 3
    assert con.query_df("").shape == (0, 0)
    assert con.query_df("-- only a comment\n;").shape == (0, 0)
    assert con.query_arrow("DELETE FROM nc").num_columns == 0


def test_multi_statement_returns_last(con):
    df = con.query_df("""
        CREATE TABLE ms (a INTEGER, b TEXT);
        INSERT INTO ms VALUES (1, 'x');
        INSERT INTO ms VALUES (2, 'y');
        SELECT 'not this';
        SELECT a, b FROM ms ORDER BY a; -- trailing comment
    """)
    assert df["a"].tolist() == [1, 2] and df["b"].tolist() == ["x", "y"]
    assert con.execute("SELECT count(*) FROM ms").fetchone()[0] == 2


def test_multi_statement_parameters(con):
    con.execute("CREATE TABLE mp (v)")
    df = con.query_df("INSERT INTO mp VALUES (:v); SELECT v, :w AS w FROM mp", {"v": 7, "w": "w"})
    assert df.values.tolist() == [[7, "w"]]
    df = con.query_df("SELECT 1; SELECT ? AS p", (5,))
    assert df["p"].tolist() == [5]
    with pytest.raises(errors.ParameterError, match="statement 1"):
        con.query_df("INSERT INTO mp VALUES (?); SELECT * FROM mp", (1,))


def test_error_in_a_statement_stops_the_run(con):
    with pytest.raises(errors.OperationalError):
        con.query_df("CREATE TABLE ok (x); SELECT * FROM nope; CREATE TABLE never (x)")
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master")]
    assert "ok" in names and "never" not in names


def test_duplicate_column_names_like_read_sql(con):
    con.execute("CREATE TABLE d1 (id INTEGER, v TEXT)")
    con.execute("CREATE TABLE d2 (id INTEGER, v REAL)")
    con.execute("INSERT INTO d1 VALUES (1, 'a')")
    con.execute("INSERT INTO d2 VALUES (1, 2.5)")
    con.commit()
    sql = "SELECT d1.*, d2.* FROM d1, d2"
    df = con.query_df(sql)
    ref = sqlite3.connect(":memory:")
    want = pd.read_sql("SELECT 1 AS id, 'a' AS v, 1 AS id, 2.5 AS v", ref)
    assert list(df.columns) == list(want.columns) == ["id", "v", "id", "v"]
    assert df.iloc[0].tolist() == [1, "a", 1, 2.5]
    assert df.iloc[:, 1].dtype != df.iloc[:, 3].dtype


def test_limit_and_max_rows(con):
    con.execute("CREATE TABLE lm (i INTEGER)")
    con.executemany("INSERT INTO lm VALUES (?)", [(i,) for i in range(5000)])
    con.commit()
    df = con.query_df("SELECT i FROM lm ORDER BY i", limit=10)
    assert df["i"].tolist() == list(range(10)) and df.attrs["sqlnb_truncated"] is True
    assert con.query_df("SELECT i FROM lm", limit=0).shape == (0, 1)
    df = con.query_df("SELECT i FROM lm", limit=5000)
    assert len(df) == 5000 and df.attrs["sqlnb_truncated"] is False
    with pytest.warns(frames.TruncatedWarning, match="max_rows=100"):
        df = con.query_df("SELECT i FROM lm", max_rows=100)
    assert len(df) == 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(con.query_df("SELECT i FROM lm", max_rows=5000)) == 5000
        assert len(con.query_df("SELECT i FROM lm", limit=7, max_rows=100)) == 7
    assert con.query_arrow("SELECT i FROM lm", limit=3).num_rows == 3
    with pytest.raises(ValueError, match="limit"):
        con.query_df("SELECT 1", limit=-1)


def test_rows_seen_counts_the_fetch(tmp_path):
    con = sqlnb.connect(str(tmp_path / "r.db"), engine="sqlite")
    con.execute("CREATE TABLE r (i)")
    con.executemany("INSERT INTO r VALUES (?)", [(i,) for i in range(3000)])
    con.commit()
    con.query_df("SELECT * FROM r")
    assert con.raw.rows_seen == 3000
    con.query_df("SELECT * FROM r", limit=10)
    assert con.raw.rows_seen == 10
    seen = []
    con.raw.progress_callback = lambda: seen.append(con.raw.rows_seen)
    con.raw.set_progress_report(0.001)
    con.query_df("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) "
                 "SELECT x, x * 2 FROM c")
    con.raw.set_progress_report(0)
    assert seen and max(seen) > 0 and max(seen) <= 300000


def test_cursor_fetch_df(engine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "c.db"), engine=engine)
    con.execute("CREATE TABLE c (i INTEGER, s TEXT)")
    con.executemany("INSERT INTO c VALUES (?, ?)", [(i, f"s{i}") for i in range(100)])
    con.commit()
    cur = con.execute("SELECT i, s FROM c ORDER BY i")
    assert cur.fetchone() == (0, "s0")
    df = cur.fetch_df(limit=10)
    assert df["i"].tolist() == list(range(1, 11)) and df["s"][0] == "s1"
    assert cur.fetchone() == (11, "s11")
    rest = cur.fetch_df()
    assert rest["i"].tolist() == list(range(12, 100))
    assert cur.fetchall() == []
    df = con.execute("SELECT i FROM c WHERE i < 0").fetch_df()
    assert list(df.columns) == ["i"] and len(df) == 0
    df = con.execute("SELECT i, s FROM c ORDER BY i").fetch_df()
    assert len(df) == 100 and df["i"].dtype == np.int64
    con.close()


def test_parse_dates_and_dtype(engine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "p.db"), engine=engine)
    con.executescript("""
        CREATE TABLE ev (ts TIMESTAMP, day DATE, unix INTEGER, flag BOOLEAN, v);
        INSERT INTO ev VALUES ('2024-01-02 03:04:05', '2024-01-02', 86400, 1, 1);
        INSERT INTO ev VALUES ('2024-02-29T12:00:00', NULL, 0, 0, 2);
    """)
    df = con.query_df("SELECT * FROM ev ORDER BY rowid", parse_dates=["ts", "day", "unix"])
    assert df["ts"].dtype.kind == "M" and df["ts"][1] == pd.Timestamp("2024-02-29 12:00:00")
    assert pd.isna(df["day"][1]) and df["unix"][0] == pd.Timestamp("1970-01-02")
    assert df["flag"].dtype == np.int64  # declared BOOLEAN changes nothing unless asked
    df = con.query_df("SELECT * FROM ev ORDER BY rowid", dtype={"flag": bool, "v": "float32"},
                      parse_dates={"day": "%Y-%m-%d"})
    assert df["flag"].tolist() == [True, False] and df["v"].dtype == np.float32
    assert df["day"][0] == pd.Timestamp("2024-01-02")
    if engine != "system":
        df = con.query_df("SELECT * FROM ev", parse_dates=True)
        assert df["ts"].dtype.kind == "M" and df["day"].dtype.kind == "M" and df["unix"].dtype == np.int64
    with pytest.raises(ValueError, match="nope"):
        con.query_df("SELECT * FROM ev", parse_dates=["nope"])
    with pytest.raises(ValueError, match="'v'"):
        con.query_df("SELECT 'not a date' AS v", parse_dates=["v"])
    con.close()


def test_dtype_backends(con):
    con.executescript("""
        CREATE TABLE db (i INTEGER, f REAL, s TEXT, b BLOB, m);
        INSERT INTO db VALUES (1, 1.5, 'a', x'01', 1);
        INSERT INTO db VALUES (2, NULL, NULL, NULL, 'x');
    """)
    df = con.query_df("SELECT * FROM db ORDER BY rowid", dtype_backend="numpy_nullable")
    assert str(df["i"].dtype) == "Int64" and str(df["f"].dtype) == "Float64"
    assert df["f"].isna().tolist() == [False, True] and df["s"].dtype == pd.StringDtype("pyarrow")
    df = con.query_df("SELECT * FROM db ORDER BY rowid", dtype_backend="pyarrow")
    assert str(df["i"].dtype) == "int64[pyarrow]" and str(df["f"].dtype) == "double[pyarrow]"
    assert str(df["s"].dtype) == "large_string[pyarrow]" and df["m"].dtype == object
    assert df["b"].tolist()[0] == b"\x01"
    with pytest.raises(ValueError, match="dtype_backend"):
        con.query_df("SELECT 1", dtype_backend="nope")


def test_query_arrow_types_and_values(engine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "a.db"), engine=engine)
    con.executescript("""
        CREATE TABLE a (i INTEGER, f REAL, s TEXT, b BLOB, m, z, e);
        INSERT INTO a VALUES (1, 1.5, 'a', x'01', 1, NULL, 1);
        INSERT INTO a VALUES (NULL, NULL, NULL, NULL, 'x', NULL, 2.5);
        INSERT INTO a VALUES (3, 2.0, 'ccc', x'', NULL, NULL, 3);
    """)
    tbl = con.query_arrow("SELECT * FROM a ORDER BY rowid")
    types = {f.name: f.type for f in tbl.schema}
    assert types["i"] == pa.int64() and types["f"] == pa.float64() and types["e"] == pa.float64()
    assert types["s"] == pa.large_string() and types["b"] == pa.large_binary() and types["z"] == pa.null()
    assert pa.types.is_union(types["m"])
    want = con.execute("SELECT * FROM a ORDER BY rowid").fetchall()
    for j, name in enumerate(tbl.column_names):
        got = tbl.column(name).to_pylist()
        exp = [r[j] for r in want]
        if name == "e":
            exp = [float(v) for v in exp]
        assert got == exp, name
    assert [type(v) for v in tbl.column("m").to_pylist()] == [int, str, type(None)]
    con.close()


def test_engines_give_identical_frames(tmp_path):
    path = str(tmp_path / "same.db")
    ref = sqlite3.connect(path)
    ref.executescript("""
        CREATE TABLE s (a, b INTEGER, c TEXT, d REAL);
        INSERT INTO s VALUES (1, 2, 'x', 1.0), ('t', NULL, NULL, 2), (x'00', 3, 'z', NULL), (2.5, 4, '', -0.0);
    """)
    ref.close()
    frames_by_engine = {}
    for eng in ("sqlite", "system"):
        c = sqlnb.connect(path, engine=eng)
        frames_by_engine[eng] = c.query_df("SELECT * FROM s ORDER BY rowid")
        c.close()
    a, b = frames_by_engine["sqlite"], frames_by_engine["system"]
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert [type(v) for v in a["a"]] == [type(v) for v in b["a"]]


def test_expected_kind_oracle_itself():
    assert expected_kind([1, None]) == "int" and expected_kind([2**53 + 1, 0.5]) == "object"
    assert expected_kind([None]) == "null" and expected_kind(["\udcff"]) == "object"


def test_closed_connection_and_bad_sql(engine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "x.db"), engine=engine)
    with pytest.raises(errors.OperationalError):
        con.query_df("SELECT * FROM missing_table")
    with pytest.raises(TypeError):
        con.query_df(b"SELECT 1")
    con.close()
    with pytest.raises(errors.ConnectionClosedError):
        con.query_df("SELECT 1")


def test_step_error_mid_fetch_leaves_connection_usable(con):
    # abs(-9223372036854775808) overflows at the last row: the error comes after rows were buffered
    con.execute("CREATE TABLE ov (v INTEGER)")
    con.executemany("INSERT INTO ov VALUES (?)", [(i,) for i in range(5000)] + [(I64_MIN,)])
    con.commit()
    with pytest.raises(errors.SQLError, match="integer overflow"):
        con.query_df("SELECT abs(v) FROM ov ORDER BY rowid")
    assert con.query_df("SELECT count(*) AS n FROM ov")["n"][0] == 5001
    check_column(con.query_df("SELECT v FROM ov WHERE v < 3 AND v >= 0 ORDER BY v")["v"], [0, 1, 2])
