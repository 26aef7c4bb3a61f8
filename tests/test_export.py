"""DataFrame export (issue 8): to_table's schema, type rules, atomicity, and write_result.

Every test runs on each engine (``engine`` fixture: sqlite, bdb, system).
Stored values are checked with plain SQL (``typeof`` + value), independent of
the fetcher; the round-trip through ``con.query_df`` is then checked against
the fetcher's documented per-column rules (int64 / Int64 / float64 /
Arrow-backed string / bytes objects / object). While ``sqlnb.frames`` is still
the interim fetchall-based version, a dtype that only the columnar fetcher
gets right is an expected failure naming the difference.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sqlnb
from sqlnb import export, frames, progress
from sqlnb.export import columns as export_columns
from sqlnb.export import table as export_table
from sqlnb.errors import BindError, IntegrityError

pa = pytest.importorskip("pyarrow")

INTERIM_FRAMES = "Interim implementation" in (frames.__doc__ or "")
ROOT = Path(__file__).resolve().parent.parent


def stored(con, table, col):
    q = export.quote_identifier
    return con.execute(f"SELECT typeof({q(col)}), {q(col)} FROM {q(table)} ORDER BY rowid").fetchall()


def integrity(con):
    return con.execute("PRAGMA integrity_check").fetchall()


def table_names(con):
    return [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]


# ---------------------------------------------------------------------------
# the dtype x NULL-pattern matrix
# ---------------------------------------------------------------------------
def _null_at(n, pattern):
    if pattern == "none":
        return np.zeros(n, dtype=bool)
    if pattern == "all":
        return np.ones(n, dtype=bool)
    return np.array([i % 3 == 1 for i in range(n)])  # "some": rows 1, 4


N = 6
TS = ["2024-01-01 00:00:00", "1999-12-31 23:59:59.250", "1970-01-01 00:00:00",
      "2038-01-19 03:14:07.999", "1901-12-13 20:45:52", "2262-04-11 23:47:16"]


def _case(name, patterns, make, storage):
    """make(nulls) -> Series; storage(i) -> (typeof, value) for a non-NULL row i."""
    return [pytest.param(name, p, make, storage, id=f"{name}-{p}") for p in patterns]


def _ts_text(i, frac="", utc=False):
    return TS[i] + frac + ("+00:00" if utc else "")


MATRIX = (
    _case("int64", ["none"], lambda m: pd.Series(np.array([0, 1, -1, 2**62, -(2**63), 2**63 - 1], dtype="int64")),
          lambda i: ("integer", [0, 1, -1, 2**62, -(2**63), 2**63 - 1][i]))
    + _case("int32", ["none"], lambda m: pd.Series(np.arange(-3, 3, dtype="int32")), lambda i: ("integer", i - 3))
    + _case("uint8", ["none"], lambda m: pd.Series(np.arange(250, 256, dtype="uint8")), lambda i: ("integer", 250 + i))
    + _case("Int64", ["none", "some", "all"],
            lambda m: pd.Series(pd.array([None if m[i] else i * 10 for i in range(N)], dtype="Int64")),
            lambda i: ("integer", i * 10))
    + _case("UInt32", ["some"],
            lambda m: pd.Series(pd.array([None if m[i] else 4_000_000_000 + i for i in range(N)], dtype="UInt32")),
            lambda i: ("integer", 4_000_000_000 + i))
    + _case("float64", ["none", "some", "all"],
            lambda m: pd.Series([np.nan if m[i] else [0.5, -0.0, 1e300, -2.25, float("inf"), 3.0][i] for i in range(N)]),
            lambda i: ("real", [0.5, -0.0, 1e300, -2.25, float("inf"), 3.0][i]))
    + _case("float32", ["none"], lambda m: pd.Series(np.array([0.5, 1.25, -2, 3, 4, 5], dtype="float32")),
            lambda i: ("real", [0.5, 1.25, -2.0, 3.0, 4.0, 5.0][i]))
    + _case("Float64", ["some"],
            lambda m: pd.Series(pd.array([None if m[i] else i + 0.5 for i in range(N)], dtype="Float64")),
            lambda i: ("real", i + 0.5))
    + _case("bool", ["none"], lambda m: pd.Series([True, False, True, True, False, False]),
            lambda i: ("integer", int([True, False, True, True, False, False][i])))
    + _case("boolean", ["some", "all"],
            lambda m: pd.Series(pd.array([None if m[i] else bool(i % 2) for i in range(N)], dtype="boolean")),
            lambda i: ("integer", i % 2))
    + _case("datetime64[ns]", ["none", "some"],
            lambda m: pd.Series(pd.to_datetime([None if m[i] else TS[i] for i in range(N)], format="ISO8601")),
            lambda i: ("text", _ts_text(i, "" if "." in TS[i] else ".000")))
    + _case("datetime64[s]", ["some"],
            lambda m: pd.Series(pd.to_datetime([None if m[i] else TS[i][:19] for i in range(N)]).as_unit("s")),
            lambda i: ("text", TS[i][:19]))
    + _case("datetime-tz", ["some"],
            lambda m: pd.Series(pd.to_datetime([None if m[i] else TS[i][:19] for i in range(N)])
                                .tz_localize("UTC").tz_convert("America/New_York")),
            lambda i: ("text", TS[i][:19] + "+00:00"))
    + _case("timedelta64[ns]", ["none", "some"],
            lambda m: pd.Series(pd.to_timedelta([None if m[i] else i * 1.5 for i in range(N)], unit="s")),
            lambda i: ("integer", int(i * 1_500_000_000)))
    + _case("str", ["none", "some", "all"],
            lambda m: pd.Series([None if m[i] else ["a", "", "héllo", "x" * 1000, "nul\x00in", "😀"][i] for i in range(N)],
                                dtype="str"),
            lambda i: ("text", ["a", "", "héllo", "x" * 1000, "nul\x00in", "😀"][i]))
    + _case("string[python]", ["some"],
            lambda m: pd.Series([None if m[i] else f"s{i}" for i in range(N)], dtype="string[python]"),
            lambda i: ("text", f"s{i}"))
    + _case("string[pyarrow]", ["some"],
            lambda m: pd.Series([None if m[i] else f"p{i}" for i in range(N)], dtype="string[pyarrow]"),
            lambda i: ("text", f"p{i}"))
    + _case("arrow-string", ["some"],
            lambda m: pd.Series([None if m[i] else f"a{i}" for i in range(N)], dtype=pd.ArrowDtype(pa.string())),
            lambda i: ("text", f"a{i}"))
    + _case("arrow-sliced", ["some"],
            lambda m: pd.Series(["junk"] * 3 + [None if m[i] else f"z{i}" for i in range(N)],
                                dtype=pd.ArrowDtype(pa.large_string())).iloc[3:].reset_index(drop=True),
            lambda i: ("text", f"z{i}"))
    + _case("arrow-int64", ["some"],
            lambda m: pd.Series([None if m[i] else -i for i in range(N)], dtype=pd.ArrowDtype(pa.int64())),
            lambda i: ("integer", -i))
    + _case("object-str", ["some"],
            lambda m: pd.Series(np.array([None if m[i] else f"o{i}" for i in range(N)], dtype=object), dtype=object),
            lambda i: ("text", f"o{i}"))
    + _case("category-str", ["none", "some"],
            lambda m: pd.Series(pd.Categorical([None if m[i] else "bca"[i % 3] for i in range(N)])),
            lambda i: ("text", "bca"[i % 3]))
    + _case("category-int", ["some"],
            lambda m: pd.Series(pd.Categorical([None if m[i] else 2**40 + i % 2 for i in range(N)])),
            lambda i: ("integer", 2**40 + i % 2))
    + _case("bytes", ["some"],
            lambda m: pd.Series([None if m[i] else bytes([i, 0, 255]) for i in range(N)], dtype=object),
            lambda i: ("blob", bytes([i, 0, 255])))
    + _case("arrow-binary", ["some"],
            lambda m: pd.Series([None if m[i] else b"\x00" * i for i in range(N)], dtype=pd.ArrowDtype(pa.binary())),
            lambda i: ("blob", b"\x00" * i))
    + _case("mixed", ["some"],
            lambda m: pd.Series([None if m[i] else [1, "two", 3.5, b"four", True, np.int64(6)][i] for i in range(N)],
                                dtype=object),
            lambda i: [("integer", 1), ("text", "two"), ("real", 3.5), ("blob", b"four"), ("integer", 1),
                       ("integer", 6)][i])
    + _case("date", ["some"],
            lambda m: pd.Series([None if m[i] else dt.date(2020, 1, i + 1) for i in range(N)], dtype=object),
            lambda i: ("text", f"2020-01-0{i + 1}"))
    + _case("object-none", ["all"], lambda m: pd.Series([None] * N, dtype=object), lambda i: None)
)


def _frame_expectation(kinds, values):
    """The dtype the columnar fetcher documents for a column holding these storage classes."""
    present = {k for k in kinds if k != "null"}
    if not present:
        return "object"
    if present == {"integer"}:
        return "Int64" if "null" in kinds else "int64"
    if present == {"real"}:
        return "float64"
    if present == {"text"}:
        return "string"
    if present == {"blob"}:
        return "bytes"
    return "object"


@pytest.mark.parametrize("label,pattern,make,storage", MATRIX)
def test_dtype_matrix_roundtrip(con, label, pattern, make, storage):
    nulls = _null_at(N, pattern)
    s = make(nulls)
    df = pd.DataFrame({"c": s, "k": np.arange(len(s), dtype="int64")})
    assert con.to_table(df, "t") == len(s)
    want = [("null", None) if nulls[i] else storage(i) for i in range(len(s))]
    got = stored(con, "t", "c")
    assert [g[0] for g in got] == [w[0] for w in want]
    for (gk, gv), (wk, wv) in zip(got, want):
        if wk == "real":  # (SQLite keeps a whole REAL compactly: -0.0 reads back as 0.0)
            assert gv == wv and type(gv) is float
        else:
            assert gv == wv and type(gv) is type(wv)
    assert integrity(con) == [("ok",)]

    frame = con.query_df("SELECT c FROM t ORDER BY rowid")
    col = frame["c"]
    expect = _frame_expectation([w[0] for w in want], [w[1] for w in want])
    # values first (independent of dtype): NULL -> missing, everything else equal
    vals = [None if pd.isna(v) is True else v for v in col.astype(object).tolist()]
    assert vals == [w[1] for w in want]
    if expect == "string":
        ok = isinstance(col.dtype, pd.StringDtype) and col.dtype.storage == "pyarrow"
    elif expect == "bytes":
        ok = col.dtype == object and all(isinstance(v, bytes) or v is None for v in col.tolist())
    else:
        ok = str(col.dtype) == expect
    assert ok, f"query_df dtype {col.dtype}, documented {expect}"


def test_declared_types(con):
    df = pd.DataFrame({
        "i": [1], "f": [1.0], "b": [True], "s": ["x"], "t": pd.to_datetime(["2024-01-01"]),
        "d": pd.to_timedelta([1], unit="s"), "y": [b"x"], "m": pd.Series(["x"], dtype=object),
        "c": pd.Categorical(["a"]), "n": pd.array([1], dtype="Int8"),
    })
    con.to_table(df, "t")
    decl = [(r[1], r[2]) for r in con.execute('PRAGMA table_info("t")').fetchall()]
    assert decl == [("i", "INTEGER"), ("f", "REAL"), ("b", "BOOLEAN"), ("s", "TEXT"), ("t", "TIMESTAMP"),
                    ("d", "INTEGER"), ("y", "BLOB"), ("m", "TEXT"), ("c", "TEXT"), ("n", "INTEGER")]
    assert export.schema_for(df) == decl


def test_mixed_column_has_no_declared_type(con):
    df = pd.DataFrame({"m": pd.Series([1, "a", 2.5, dt.time(1, 2, 3), dt.date(2024, 5, 6)], dtype=object)})
    con.to_table(df, "t")
    assert con.execute('PRAGMA table_info("t")').fetchall()[0][2] == ""
    # dates and times in a mixed column become ISO-8601 text, as the DB-API binds them
    assert stored(con, "t", "m") == [("integer", 1), ("text", "a"), ("real", 2.5), ("text", "01:02:03"),
                                     ("text", "2024-05-06")]


def test_datetime_text_matches_numpy_and_sqlite(engine):
    """The Cython formatter writes what numpy writes (the system engine's formatter), and SQLite reads it."""
    mod = sqlnb.engines.get("sqlite" if engine == "system" else engine).load()
    rng = np.random.default_rng(1)
    secs = rng.integers(-62135596800, 253402300799, 2000)
    ns = rng.integers(-(2**62), 2**62, 2000)
    for vals, ticks, src, unit, frac in ((secs, 1, "s", "s", 0), (ns, 10**9, "ns", "ns", 9),
                                         (ns // 1000, 10**6, "us", "us", 6), (ns // 10**6, 1000, "ms", "ms", 3),
                                         (secs * 1000, 1000, "ms", "s", 0), (ns // 1000 * 1000, 10**9, "ns", "us", 6)):
        for utc in (False, True):
            got = mod.format_datetimes(vals.tolist(), ticks, frac, utc)
            if engine == "system":
                col = export_columns._Col("c", "TIMESTAMP", "datetime", "datetime", ticks=ticks, frac=frac,
                                          utc=utc)
                want = export_columns._format_datetimes_py(col, vals.astype(np.int64))
            else:
                text = np.datetime_as_string(vals.astype(f"datetime64[{src}]"), unit=unit)
                want = [t.replace("T", " ") + ("+00:00" if utc else "") for t in text.tolist()]
            assert got == want
    c = sqlnb.connect(":memory:", engine=engine)
    text = mod.format_datetimes([1_700_000_000_123_000_000], 10**9, 3, True)[0]
    assert text == "2023-11-14 22:13:20.123+00:00"
    assert c.execute("SELECT strftime('%s', ?)", (text,)).fetchone() == ("1700000000",)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_every_datetime_row_keeps_its_own_text(engine, unit):
    """Each row of a datetime column stored by to_table holds its own value (a multi-row INSERT binds
    many rows before it steps: the text of one row must not be overwritten by the next), NaT is NULL,
    and a timezone-aware column gets its offset."""
    rng = np.random.default_rng(7)
    n = 1_003   # more than one multi-row statement, and a partial last one
    vals = rng.integers(0, 4_102_444_800 * 10**6, n).astype("datetime64[us]").astype(f"datetime64[{unit}]")
    vals[5] = np.datetime64("NaT")
    df = pd.DataFrame({"i": np.arange(n), "t": vals, "z": pd.Series(vals).dt.tz_localize("UTC"),
                       "c": pd.Categorical(vals)})
    con = sqlnb.connect(":memory:", engine=engine)
    con.to_table(df, "t")
    got = pd.DataFrame(con.execute("SELECT t, z, c FROM t ORDER BY i").fetchall(), columns=["t", "z", "c"])
    con.close()
    want = pd.Series(vals).astype("datetime64[ns]")
    for col in ("t", "c"):   # (the fraction has as many digits as the column needs: docs/export.md)
        assert pd.to_datetime(got[col], format="ISO8601").astype("datetime64[ns]").equals(want), col
    assert got["z"].dropna().str.endswith("+00:00").all()
    z = pd.to_datetime(got["z"], format="ISO8601", utc=True).astype("datetime64[ns, UTC]")
    assert z.equals(want.dt.tz_localize("UTC"))


# ---------------------------------------------------------------------------
# names, options, errors before any write
# ---------------------------------------------------------------------------
def test_hostile_names_are_just_names(con):
    con.execute("CREATE TABLE y (a)")
    con.commit()
    name = 'x"; DROP TABLE y; --'
    df = pd.DataFrame({'a"b': [1], "with space": ["s"], "ünï": [2.5], "'q'": [None]})
    con.to_table(df, name)
    assert sorted(table_names(con)) == sorted([name, "y"])
    q = export.quote_identifier
    assert con.execute(f"SELECT * FROM {q(name)}").fetchall() == [(1, "s", 2.5, None)]
    assert [r[1] for r in con.execute(f"PRAGMA table_info({q(name)})")] == ['a"b', "with space", "ünï", "'q'"]


def test_fail_replace_append(con):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    con.to_table(df, "t")
    with pytest.raises(export.TableExistsError, match="already exists"):
        con.to_table(df, "t")
    with pytest.raises(export.TableExistsError):
        con.to_table(df, "T")  # SQLite names are case-insensitive
    con.to_table(df, "t", if_exists="append")
    assert con.execute("SELECT count(*) FROM t").fetchone() == (4,)
    con.to_table(df.iloc[:1], "t", if_exists="replace")
    assert con.execute("SELECT a, b FROM t").fetchall() == [(1, "x")]
    con.to_table(df, "new", if_exists="append")  # created when missing
    assert con.execute("SELECT count(*) FROM new").fetchone() == (2,)
    assert integrity(con) == [("ok",)]


def test_append_case_insensitive_subset_and_defaults(con):
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, Name TEXT NOT NULL, score REAL DEFAULT 0, note)")
    con.commit()
    con.to_table(pd.DataFrame({"name": ["a", "b"], "SCORE": [1, 2]}), "T", if_exists="append")
    assert con.execute("SELECT id, Name, score, note FROM t").fetchall() == [(1, "a", 1.0, None), (2, "b", 2.0, None)]


def test_append_incompatible_says_what(con):
    con.execute("CREATE TABLE t (i INTEGER, s TEXT, r REAL, must TEXT NOT NULL, anything)")
    con.execute("INSERT INTO t VALUES (1, 'a', 1.0, 'm', NULL)")
    con.commit()
    df = pd.DataFrame({"i": [1.5], "s": [3], "r": ["no"], "extra": [1], "anything": [object()]})
    with pytest.raises(export.IncompatibleTableError) as ei:
        con.to_table(df, "t", if_exists="append")
    msg = str(ei.value)
    for part in ("'i' (float64) does not fit declared type INTEGER", "'s' (int64) does not fit declared type TEXT",
                 "'r' (str) does not fit declared type REAL", "'extra' is not a column of the table",
                 "'must' is NOT NULL without a default"):
        assert part in msg
    assert "'anything'" not in msg  # no declared type: anything goes
    assert con.execute("SELECT count(*) FROM t").fetchone() == (1,)
    # whole floats go into INTEGER columns; datetimes into TEXT/TIMESTAMP
    con.execute("CREATE TABLE u (i INTEGER, ts TIMESTAMP, d TEXT)")
    con.commit()
    con.to_table(pd.DataFrame({"i": [2.0, np.nan], "ts": pd.to_datetime(["2024-01-01", None]),
                               "d": pd.to_datetime(["2024-01-02", "2024-01-03"])}), "u", if_exists="append")
    assert con.execute("SELECT typeof(i), i, ts, d FROM u").fetchall() == [
        ("integer", 2, "2024-01-01 00:00:00", "2024-01-02 00:00:00"), ("null", None, None, "2024-01-03 00:00:00")]


def test_views_are_not_replaced(con):
    con.execute("CREATE VIEW v AS SELECT 1 AS a")
    con.commit()
    for how in ("fail", "replace", "append"):
        with pytest.raises(export.TableExistsError, match="view 'v'"):
            con.to_table(pd.DataFrame({"a": [1]}), "v", if_exists=how)
    assert con.execute("SELECT * FROM v").fetchall() == [(1,)]


def test_index_and_dtype_options(con):
    df = pd.DataFrame({"v": [1.5, 2.5]}, index=pd.Index(["a", "b"], name="key"))
    con.to_table(df, "t", index=True, dtype={"v": "NUMERIC(10, 2)"})
    assert [(r[1], r[2]) for r in con.execute('PRAGMA table_info("t")')] == [("key", "TEXT"), ("v", "NUMERIC(10, 2)")]
    assert con.execute("SELECT key, v FROM t").fetchall() == [("a", 1.5), ("b", 2.5)]
    con.to_table(pd.DataFrame({"a": [1], "b": [2]}), "all_text", dtype="TEXT")
    assert con.execute("SELECT typeof(a), typeof(b) FROM all_text").fetchone() == ("text", "text")
    for bad in ("INTEGER); DROP TABLE t; --", "INT, x", "TEXT -- c"):
        with pytest.raises(ValueError, match="not a SQL type name"):
            con.to_table(pd.DataFrame({"a": [1]}), "u", dtype={"a": bad})
    with pytest.raises(ValueError, match="columns the frame does not have"):
        con.to_table(pd.DataFrame({"a": [1]}), "u", dtype={"zz": "TEXT"})
    assert "u" not in table_names(con)


def test_bad_inputs_are_clear_errors(con):
    with pytest.raises(ValueError, match="if_exists"):
        con.to_table(pd.DataFrame({"a": [1]}), "t", if_exists="truncate")
    with pytest.raises(ValueError, match="same name in SQLite"):
        con.to_table(pd.DataFrame([[1, 2]], columns=["A", "a"]), "t")
    with pytest.raises(TypeError, match="DataFrame"):
        con.to_table([[1, 2]], "t")
    with pytest.raises(ValueError, match="no columns"):
        con.to_table(pd.DataFrame(), "t")
    with pytest.raises(BindError, match="period"):
        con.to_table(pd.DataFrame({"p": pd.period_range("2024-01", periods=2, freq="M")}), "t")
    with pytest.raises(OverflowError, match=r"column 'u', row 1"):
        con.to_table(pd.DataFrame({"u": np.array([1, 2**64 - 1], dtype="uint64")}), "t")
    with pytest.raises(ValueError, match="chunk_rows"):
        con.to_table(pd.DataFrame({"a": [1]}), "t", chunk_rows=0)
    with pytest.raises(ValueError, match="NUL"):
        con.to_table(pd.DataFrame({"a": [1]}), "t\x00x")
    assert table_names(con) == []
    assert con.in_transaction is False


def test_empty_frame_creates_table(con):
    con.to_table(pd.DataFrame({"a": pd.Series([], dtype="int64"), "s": pd.Series([], dtype="str")}), "t")
    assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert [r[2] for r in con.execute('PRAGMA table_info("t")')] == ["INTEGER", "TEXT"]


def test_progress_total_and_rows_seen(con, monkeypatch):
    seen = []
    import contextlib

    @contextlib.contextmanager
    def fake_track(raw, *, label="", total=None):
        seen.append((label, total))
        yield None
        seen.append(("after", raw.rows_seen))

    monkeypatch.setattr(progress, "track", fake_track)
    n = 10_000
    con.to_table(pd.DataFrame({"a": np.arange(n)}), "t", chunk_rows=999)
    assert seen == [("to_table t", n), ("after", n)]
    assert con.raw.rows_seen == n


# ---------------------------------------------------------------------------
# atomicity: errors, interrupts, kills
# ---------------------------------------------------------------------------
def _frame_with_bad_row(n=20_000, bad=5000, value=None):
    m = pd.Series(np.arange(n), dtype=object)
    m[bad] = {"not": "storable"} if value is None else value
    return pd.DataFrame({"a": np.arange(n), "s": pd.Series([f"v{i}" for i in range(n)], dtype="str"), "m": m})


def test_error_halfway_rolls_back_create(con):
    with pytest.raises(BindError) as ei:
        con.to_table(_frame_with_bad_row(), "t", chunk_rows=1000)
    assert "column 'm', row 5000" in str(ei.value) and "'dict'" in str(ei.value)
    assert "t" not in table_names(con)
    assert con.in_transaction is False
    assert integrity(con) == [("ok",)]
    con.to_table(pd.DataFrame({"a": [1]}), "t")  # the connection is fine afterwards
    assert con.execute("SELECT a FROM t").fetchall() == [(1,)]


def test_error_halfway_rolls_back_append_and_replace(con):
    con.execute("CREATE TABLE t (a INTEGER, s TEXT, m)")
    con.execute("INSERT INTO t VALUES (-1, 'old', 0)")
    con.commit()
    for how in ("append", "replace"):
        with pytest.raises(BindError):
            con.to_table(_frame_with_bad_row(), "t", if_exists=how, chunk_rows=1000)
        assert con.execute("SELECT a, s, m FROM t").fetchall() == [(-1, "old", 0)]
    assert integrity(con) == [("ok",)]


def test_int_overflow_in_object_column_names_row(con):
    with pytest.raises(OverflowError, match=r"column 'm', row 5000"):
        con.to_table(_frame_with_bad_row(value=2**70), "t", chunk_rows=1000)
    assert table_names(con) == []


def test_unsupported_value_types_name_column_and_row(con):
    for bad, tname in ((Decimal("1.5"), "Decimal"), ({1, 2}, "set"), (1 + 2j, "complex")):
        df = pd.DataFrame({"x": pd.Series([1, "a", bad], dtype=object)})
        # the one bind rule's words (sqlnb._bind.adapt), or the compiled loop's own until it calls it
        with pytest.raises(BindError, match=rf"column 'x', row 2: (a value of )?type '{tname}'") as ei:
            con.to_table(df, "t")
        said = " ".join([str(ei.value), *getattr(ei.value, "__notes__", [])])
        assert "convert the column first, e.g. df['x'].astype(str)" in said
    assert table_names(con) == []


def test_constraint_violation_halfway_rolls_back(con):
    con.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, s TEXT)")
    con.execute("INSERT INTO t VALUES (-1, 'keep')")
    con.commit()
    a = np.arange(20_000)
    a[5000] = 10  # duplicate key
    with pytest.raises(IntegrityError) as ei:
        con.to_table(pd.DataFrame({"a": a, "s": ["x"] * len(a)}), "t", if_exists="append", chunk_rows=1000)
    notes = " ".join(getattr(ei.value, "__notes__", []))
    # on our SQLite row 5000 sits inside a 16-row INSERT step: that step is undone and its rows
    # go again one by one, so the error still names the row
    assert "while inserting row 5000 " in notes and ei.value.row == 5000
    assert con.execute("SELECT * FROM t").fetchall() == [(-1, "keep")]
    assert integrity(con) == [("ok",)]


@pytest.mark.parametrize("bad", [0, 15, 16, 19_990, 19_999])
def test_constraint_violation_row_at_step_edges(bad):
    """The duplicate in the first/last row of a 16-row step, and in the rows after the last whole step."""
    con = sqlnb.connect(":memory:")
    con.execute("CREATE TABLE t (a INTEGER PRIMARY KEY)")
    con.execute("INSERT INTO t VALUES (-1)")
    a = np.arange(20_000)
    a[bad] = -1
    with pytest.raises(IntegrityError) as ei:
        con.to_table(pd.DataFrame({"a": a}), "t", if_exists="append", chunk_rows=9_999)
    assert ei.value.row == bad
    assert con.execute("SELECT a FROM t").fetchall() == [(-1,)]


def test_rows_per_step(con):
    rows_per_step = export_table._rows_per_step
    if con.engine == "sqlite":
        assert rows_per_step(con.backend, 7) == export.ROWS_PER_STEP == 16
        assert rows_per_step(con.backend, 2000) == 16   # 32,000 parameters: under the build's limit
    else:   # bdb: its 3.7.6 core has no multi-row VALUES; system: one executemany row at a time
        assert rows_per_step(con.backend, 7) == 1


def test_inside_user_transaction(con):
    con.execute("CREATE TABLE log (x)")
    con.commit()
    con.execute("INSERT INTO log VALUES (1)")
    assert con.in_transaction
    con.to_table(pd.DataFrame({"a": [1, 2]}), "t")
    assert con.in_transaction  # the export did not commit the user's transaction
    with pytest.raises(BindError):
        con.to_table(_frame_with_bad_row(), "bad", chunk_rows=1000)
    assert con.in_transaction
    assert "bad" not in table_names(con)
    assert con.execute("SELECT x FROM log").fetchall() == [(1,)]
    con.rollback()  # the user decides: both the insert and the export go
    assert table_names(con) == ["log"]
    assert con.execute("SELECT count(*) FROM log").fetchone() == (0,)


class _InterruptAt:
    """An int-like value whose conversion raises KeyboardInterrupt (as Ctrl-C would at that moment)."""

    def __index__(self):
        raise KeyboardInterrupt


def test_keyboard_interrupt_halfway_rolls_back(con):
    con.execute("CREATE TABLE t (a INTEGER, s TEXT, m)")
    con.execute("INSERT INTO t VALUES (-1, 'old', 0)")
    con.commit()
    df = _frame_with_bad_row(value=_InterruptAt())
    with pytest.raises(KeyboardInterrupt):
        con.to_table(df, "t", if_exists="append", chunk_rows=1000)
    assert con.execute("SELECT a, s, m FROM t").fetchall() == [(-1, "old", 0)]
    assert con.in_transaction is False
    assert integrity(con) == [("ok",)]


class _StallAt:
    """An int-like value whose conversion calls ``hook`` first: the export stalls at a known row.

    The export converts an object column's values one row at a time, inside its
    transaction, so ``hook`` runs in the middle of the export (never before it starts
    nor after it ends), whatever the machine's speed.
    """

    def __init__(self, hook):
        self.hook = hook

    def __index__(self):
        self.hook()
        return 0


@pytest.mark.timeout(120)
def test_sigint_halfway_rolls_back(con):
    """A real SIGINT (Jupyter's interrupt button), sent by another thread in the middle of an export."""
    main = threading.main_thread().ident
    reached, sent = threading.Event(), threading.Event()

    def fire():
        if reached.wait(60):
            signal.pthread_kill(main, signal.SIGINT)
            sent.set()

    def at_row():
        reached.set()
        # the signal lands while this thread is blocked here, halfway through the export
        assert sent.wait(60), "the signal was never sent"

    th = threading.Thread(target=fire, daemon=True)
    th.start()
    df = _frame_with_bad_row(value=_StallAt(at_row))
    # the stdlib turns a Ctrl-C that lands inside sqlite3_step into OperationalError('interrupted')
    expected = (KeyboardInterrupt, sqlnb.errors.InterruptError) if con.engine == "system" else KeyboardInterrupt
    try:
        with pytest.raises(expected):
            con.to_table(df, "t", chunk_rows=1000)
    finally:
        reached.set()
        th.join()
    assert sent.is_set()
    assert "t" not in table_names(con)
    assert con.in_transaction is False
    assert integrity(con) == [("ok",)]


CHILD = textwrap.dedent("""
    import os, sys, threading
    import numpy as np, pandas as pd, sqlnb
    engine, db, how, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    con = sqlnb.connect(db, engine=engine)
    rng = np.random.default_rng(0)
    raw = con.raw

    class StallHere:
        # converted halfway through the export, inside its transaction: say so, then wait for the kill
        def __index__(self):
            print(raw.rows_seen, flush=True)
            threading.Event().wait()

    d = pd.Series(np.arange(n), dtype=object)
    d[n // 2] = StallHere()
    df = pd.DataFrame({"a": np.arange(n), "b": rng.random(n),
                       "c": pd.Categorical.from_codes(rng.integers(0, 3, n), ["x", "yy", "zzz"]), "d": d})
    con.to_table(df, "t", if_exists=how, chunk_rows=5000)
    print("done", flush=True)
""")


SETUP = textwrap.dedent("""
    import sys
    import pandas as pd, sqlnb
    engine, db, how = sys.argv[1:4]
    c = sqlnb.connect(db, engine=engine)
    c.execute("CREATE TABLE keep (x)")
    c.execute("INSERT INTO keep VALUES (42)")
    if how == "append":
        c.execute("CREATE TABLE t (a INTEGER, b REAL, c TEXT, d)")
        c.execute("INSERT INTO t VALUES (-1, 0.5, 'old', 7)")
    c.commit()
    c.close()
""")

VERIFY = textwrap.dedent("""
    import json, sys
    import pandas as pd, sqlnb
    engine, db = sys.argv[1:3]
    c = sqlnb.connect(db, engine=engine)
    out = {"integrity": c.execute("PRAGMA integrity_check").fetchall(),
           "keep": c.execute("SELECT x FROM keep").fetchall(),
           "tables": [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]}
    if "t" in out["tables"]:
        out["t"] = c.execute("SELECT a, b, c, d FROM t").fetchall()
    c.to_table(pd.DataFrame({"a": [1]}), "after")
    out["after"] = c.execute("SELECT a FROM after").fetchall()
    c.close()
    print(json.dumps(out))
""")


def _python(code, *args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout, check=True).stdout


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["fail", "append"])
def test_sigkill_halfway_leaves_database_as_before(engine, tmp_path, how):
    """A writer SIGKILLed mid-export: the next opener finds the database as it was.

    Setup and the check after the kill run in their own processes, so this test process
    never attaches to the database.
    """
    import json

    db = str(tmp_path / "k.db")
    _python(SETUP, engine, db, how)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    n = 200_000 if engine == "bdb" else 1_000_000
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, str(script), engine, db, how, str(n)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        midway = proc.stdout.readline().strip()  # blocks until the child stalls halfway (or exits)
        if not midway.isdigit():
            proc.wait(30)
            pytest.fail(f"child never reached the middle of the export: {midway!r} {proc.stderr.read()[-2000:]}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert 0 < int(midway) < n
    try:
        out = json.loads(_python(VERIFY, engine, db, timeout=120))
    except subprocess.TimeoutExpired:
        pytest.fail(f"opening the {engine} database after the kill hung for 120 s")
    assert out["integrity"] == [["ok"]]
    assert out["keep"] == [[42]]
    if how == "append":
        assert out["t"] == [[-1, 0.5, "old", 7]]
    else:
        assert "t" not in out["tables"]
    assert out["after"] == [[1]]


def test_interrupt_from_another_thread(con):
    """Connection.interrupt() from another thread stops a running export; the transaction rolls back."""
    reached, fired = threading.Event(), threading.Event()

    def fire():
        if reached.wait(60):
            con.interrupt()
            fired.set()

    def at_row():
        reached.set()
        assert fired.wait(60), "interrupt() never returned"

    th = threading.Thread(target=fire, daemon=True)
    th.start()
    try:
        with pytest.raises(sqlnb.errors.InterruptError):
            con.to_table(_frame_with_bad_row(value=_StallAt(at_row)), "t", chunk_rows=1000)
    finally:
        reached.set()
        th.join()
    assert fired.is_set()
    assert "t" not in table_names(con)
    assert con.in_transaction is False
    assert integrity(con) == [("ok",)]


@pytest.mark.timeout(120)
def test_statement_timeout_bounds_the_export(con):
    """The time limit stops an export that outlives it; the rows before stay unwritten.

    Row 5000's conversion does not return before the limit has passed (it waits for
    the clock, at a known point inside the export), so the limit fires on any machine.
    """
    con.execute("CREATE TABLE t (a INTEGER, s TEXT, m)")
    con.execute("INSERT INTO t VALUES (-1, 'old', 0)")
    con.commit()
    limit = 0.2

    def outlive_the_limit():
        t0 = time.monotonic()
        while time.monotonic() - t0 <= limit:
            threading.Event().wait(limit)

    con.statement_timeout = limit
    with pytest.raises(sqlnb.errors.QueryTimeoutError) as ei:
        con.to_table(_frame_with_bad_row(value=_StallAt(outlive_the_limit)), "t", if_exists="append",
                     chunk_rows=1000)
    con.statement_timeout = None
    assert ei.value.timeout == limit
    assert con.execute("SELECT a, s, m FROM t").fetchall() == [(-1, "old", 0)]
    assert con.in_transaction is False
    assert integrity(con) == [("ok",)]


def test_large_export_matches(con):
    n = 50_000 if con.engine == "bdb" else 200_000
    rng = np.random.default_rng(3)
    df = pd.DataFrame({
        "i": rng.integers(-(2**62), 2**62, n),
        "f": rng.standard_normal(n),
        "s": pd.Series(rng.integers(0, 1000, n).astype(str), dtype="str"),
        "n": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 9, n)), dtype="Int64"),
    })
    con.to_table(df, "t", chunk_rows=7777)
    rows = con.execute("SELECT i, f, s, n FROM t ORDER BY rowid").fetchall()
    assert len(rows) == n
    assert [r[0] for r in rows] == df["i"].tolist()
    assert [r[1] for r in rows] == df["f"].tolist()
    assert [r[2] for r in rows] == df["s"].tolist()
    assert [r[3] for r in rows] == [None if v is pd.NA else v for v in df["n"].astype(object).tolist()]


def _chunked(values, sizes, typ):
    """A pandas Arrow-backed column whose ChunkedArray has chunks of ``sizes`` (some sliced, some empty)."""
    chunks, at = [], 0
    for k, size in enumerate(sizes):
        part = values[at:at + size]
        at += size
        if k % 2:   # an offset into a bigger array, as a sliced batch has
            chunks.append(pa.array(["pad"] * 3 + part + ["pad"], typ).slice(3, len(part)))
        else:
            chunks.append(pa.array(part, typ))
    assert at == len(values)
    return pd.array(pa.chunked_array(chunks, typ), dtype=pd.ArrowDtype(typ))


def test_arrow_columns_in_several_chunks(con):
    """Arrow string/binary columns chunked differently (as read_parquet gives them) are written
    chunk by chunk, without combining them, with the same result as a single array."""
    n = 3000
    text = [None if i % 7 == 0 else f"t{i}é" for i in range(n)]
    data = [None if i % 5 == 0 else bytes([i % 256]) * (i % 4) for i in range(n)]
    df = pd.DataFrame({
        "i": np.arange(n),
        "s": _chunked(text, [0, 1000, 0, 1, 999, 1000], pa.large_string()),
        "narrow": _chunked(text, [1500, 1500], pa.string()),
        "b": _chunked(data, [7, 2000, 993], pa.large_binary()),
    })
    assert df["s"].array._pa_array.num_chunks == 6
    con.to_table(df, "t", chunk_rows=333)
    rows = con.execute("SELECT i, s, narrow, b FROM t ORDER BY rowid").fetchall()
    assert rows == [(i, text[i], text[i], data[i]) for i in range(n)]
    con.to_table(df.iloc[:0], "empty")
    assert con.execute("SELECT count(*) FROM empty").fetchone() == (0,)
    m = pd.Series(np.arange(n), dtype=object)
    m[2500] = {"not": "storable"}
    bad = df.assign(m=m)
    with pytest.raises(BindError, match="column 'm', row 2500"):
        con.to_table(bad, "t", if_exists="replace", chunk_rows=100)
    assert con.execute("SELECT i, s, narrow, b FROM t ORDER BY rowid").fetchall() == rows


@pytest.mark.parametrize("flavour", ["sqlite", "bdb"])   # the engines with the Cython insert loop
def test_export_columns_refuse_rows_outside_the_current_chunk(flavour):
    """The Cython loop never reads past the Arrow chunk a column points at: insert() refuses."""
    mod = sqlnb.engines.get(flavour).load()
    raw = mod.RawConnection(":memory:", 0x2 | 0x4)
    st, _ = raw.prepare(b"create table t(s)")
    st.run()
    ins, _ = raw.prepare(b"insert into t values (?)")
    chunk = pa.array(["a", "b"], pa.large_string())
    ec = mod.ExportColumns(4, None)
    slot = ec.add_arrow("s", 2, *export_columns._arrow_buffers(chunk), rows=4)
    with pytest.raises(ValueError, match="rows 1..2 are not all in the Arrow chunk"):
        ec.insert(ins, 1, 3, True)
    assert ec.insert(ins, 0, 2, True) == 2
    with pytest.raises(ValueError, match="outside the frame"):
        ec.set_arrow_chunk(slot, 3, 2, *export_columns._arrow_buffers(chunk))
    ec.set_arrow_chunk(slot, 2, 2, *export_columns._arrow_buffers(chunk))
    assert ec.insert(ins, 2, 4, False) == 2
    ins.finalize()
    out, _ = raw.prepare(b"select group_concat(s, '') from t")
    out.step()
    assert out.row() == ("abab",)
    out.finalize()
    raw.close()


def test_large_export_raises_the_page_cache_then_restores_it(engine, tmp_path, monkeypatch):
    """Our SQLite: a large export runs with EXPORT_CACHE_KIB of page cache; the connection's own
    setting comes back afterwards, after a failure too. The other engines keep theirs throughout."""
    con = sqlnb.connect(str(tmp_path / "c.db"), engine=engine)
    con.execute("PRAGMA cache_size=-3000")
    base = con.execute("PRAGMA cache_size").fetchone()[0]   # bdb's 3.7 core reports 3000 (pages)
    seen = []
    original = export_table._insert   # the one insert driver of every engine

    def spy(raw, *args, **kwargs):
        seen.append(export_table._run(raw, "PRAGMA main.cache_size")[0][0])
        return original(raw, *args, **kwargs)

    monkeypatch.setattr(export_table, "_insert", spy)
    n = export_table._EXPORT_CACHE_ROWS
    con.to_table(pd.DataFrame({"a": np.arange(n)}), "big")
    con.to_table(pd.DataFrame({"a": np.arange(10)}), "small")
    bad = pd.Series(np.arange(n), dtype=object)
    bad[n - 2] = {"not": "bindable"}
    with pytest.raises(BindError):
        con.to_table(pd.DataFrame({"a": bad}), "broken")
    raised = -export.EXPORT_CACHE_KIB if engine == "sqlite" else base
    assert seen == [raised, base, raised]
    assert con.execute("PRAGMA cache_size").fetchone()[0] == base
    assert con.execute("SELECT count(*) FROM big").fetchone()[0] == n
    assert "broken" not in table_names(con)


# ---------------------------------------------------------------------------
# write_result
# ---------------------------------------------------------------------------
@pytest.fixture
def result_df():
    return pd.DataFrame({
        "i": np.array([1, 2, 3], dtype="int64"),
        "f": [0.5, np.nan, -2.25],
        "s": pd.Series(["a", None, "c,\"q\""], dtype="str"),
        "b": [True, False, True],
        "n": pd.array([1, None, 3], dtype="Int64"),
    })


@pytest.mark.parametrize("ext,fmt", [(".csv", "csv"), (".parquet", "parquet"), (".jsonl", "jsonl"),
                                     (".feather", "feather"), (".arrow", "feather"), (".json", "json"),
                                     (".csv.gz", "csv"), (".pq", "parquet"), (".ndjson", "jsonl"),
                                     (".tsv", "csv")])
def test_write_result_formats_read_back(tmp_path, result_df, ext, fmt):
    path = tmp_path / f"out{ext}"
    assert export.format_for(path) == fmt
    assert export.write_result(result_df, path) == path
    if fmt == "csv":
        back = pd.read_csv(path, dtype={"s": "str", "n": "Int64"}, sep="\t" if ext == ".tsv" else ",")
    elif fmt == "parquet":
        back = pd.read_parquet(path)
    elif fmt == "jsonl":
        back = pd.read_json(path, lines=True, dtype={"n": "Int64", "f": "float64"})
    elif fmt == "json":
        back = pd.read_json(path, orient="records", dtype={"n": "Int64", "f": "float64"})
    else:
        back = pd.read_feather(path)
    pd.testing.assert_frame_equal(back, result_df, check_dtype=fmt in ("parquet", "feather"))
    if fmt not in ("parquet", "feather"):
        for c in result_df.columns:
            assert back[c].astype(object).where(back[c].notna(), None).tolist() == \
                result_df[c].astype(object).where(result_df[c].notna(), None).tolist()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_write_result_from_arrow_and_query(tmp_path, con, result_df):
    con.to_table(result_df, "t")
    table = pa.table({"x": [1, 2], "y": ["a", None]})
    for ext in (".parquet", ".feather", ".csv", ".jsonl"):
        export.write_result(table, tmp_path / f"a{ext}")
    assert pd.read_parquet(tmp_path / "a.parquet")["x"].tolist() == [1, 2]
    assert pa.feather.read_table(tmp_path / "a.feather").equals(table)
    out = export.write_result(con.query_df("SELECT i, s FROM t ORDER BY i"), tmp_path / "q.data", format="parquet")
    assert pd.read_parquet(out)["i"].tolist() == [1, 2, 3]


def test_write_result_errors_leave_files_alone(tmp_path, result_df):
    with pytest.raises(ValueError, match="cannot tell the export format"):
        export.write_result(result_df, tmp_path / "out.xyz")
    with pytest.raises(ValueError, match="unknown export format 'xls'"):
        export.write_result(result_df, tmp_path / "out.csv", format="xls")
    with pytest.raises(TypeError, match="DataFrame or a pyarrow Table"):
        export.write_result([1, 2], tmp_path / "out.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export.write_result(result_df, tmp_path / "nodir" / "out.csv")
    target = tmp_path / "keep.parquet"
    target.write_bytes(b"previous contents")
    bad = pd.DataFrame({"m": pd.Series([1, "a", b"x"], dtype=object)})  # pyarrow cannot type this column
    with pytest.raises((pa.ArrowException, TypeError, ValueError)):
        export.write_result(bad, target)
    assert target.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.parquet"]
    assert export.format_for("x.out", format="arrow") == "feather"


def test_edge_shapes(con):
    con.to_table(pd.Series([1, 2], name="s"), "series")
    assert con.execute("SELECT s FROM series").fetchall() == [(1,), (2,)]
    mi = pd.MultiIndex.from_tuples([(1, "x"), (2, "y")])
    con.to_table(pd.DataFrame({"v": [1.5, 2.5]}, index=mi), "multi", index=True)
    assert [r[1] for r in con.execute('PRAGMA table_info("multi")')] == ["level_0", "level_1", "v"]
    assert con.execute("SELECT * FROM multi").fetchall() == [(1, "x", 1.5), (2, "y", 2.5)]
    cat = pd.Categorical(pd.to_datetime(["2024-01-01", None, "2024-01-01 12:00"], format="ISO8601"))
    con.to_table(pd.DataFrame({"d": cat, 0: [1, 2, 3]}), "cats")
    assert con.execute('SELECT d, "0" FROM cats').fetchall() == [
        ("2024-01-01 00:00:00", 1), (None, 2), ("2024-01-01 12:00:00", 3)]
    ts = pd.Series([pd.Timestamp("2024-01-01"), None], dtype=object)
    con.to_table(pd.DataFrame({"o": ts}), "objts")
    assert stored(con, "objts", "o") == [("text", "2024-01-01 00:00:00"), ("null", None)]


def test_lone_surrogates(con):
    df = pd.DataFrame({"s": pd.Series(["ok", "a\udcff", None], dtype=object)})
    if con.engine == "system":
        with pytest.raises(BindError, match=r"column 's', row 1: text with lone surrogates"):
            con.to_table(df, "t")
        assert table_names(con) == []
    else:  # bound with surrogateescape, as RawStatement.bind does: the original bytes come back
        con.to_table(df, "t")
        assert con.execute("SELECT hex(s) FROM t ORDER BY rowid").fetchall() == [("6F6B",), ("61FF",), ("",)]
