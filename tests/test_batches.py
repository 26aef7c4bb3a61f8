"""Streaming results in Arrow batches (issue 25): query_batches, its one schema and its rule,
__arrow_c_stream__, chunked DataFrames, and a reader abandoned half-way."""
from __future__ import annotations

import math
import sqlite3
import time

import pandas as pd
import pyarrow as pa
import pytest

import sqlnb
from sqlnb import errors, frames
from sqlnb.frames import StreamSchemaError
from tests.fetch_oracle import check_frame
from tests.test_fetch import MIXES, NULLS


SINGLE_CLASS = ("int", "int_extremes", "real", "text", "blob")


def _connect(engine, path):
    return sqlnb.connect(str(path), engine=engine)


def _values_equal(got, want) -> bool:
    """One streamed value against the stdlib's: the same value, with the one documented conversion
    (an INTEGER in a float64 column, exactly) and TEXT kept as its bytes in a binary column."""
    if want is None:
        return got is None
    if type(want) is int and type(got) is float:
        return float(want) == got and int(got) == want
    if type(want) is str and type(got) is bytes:
        return want.encode("utf-8", "surrogateescape") == got
    if type(got) is not type(want):
        return False
    if isinstance(want, float):
        return (math.isnan(got) and math.isnan(want)) or (got == want and math.copysign(1, got) == math.copysign(1, want))
    return got == want


# ---------------------------------------------------------------------------
# the concatenated batches equal query_arrow on every dtype mix of the fetcher's tests
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("mix", sorted(MIXES))
def test_batches_equal_query_arrow_on_every_mix(engine, tmp_path, mix):
    con = _connect(engine, tmp_path / "m.db")
    con.execute("CREATE TABLE t (v)")
    for nulls in sorted(NULLS):
        values = NULLS[nulls](list(MIXES[mix]))
        con.execute("DELETE FROM t")
        for v in values:
            con.execute("INSERT INTO t VALUES (?)", (v,))
        con.commit()
        sql = "SELECT v, typeof(v) AS k, rowid AS r FROM t ORDER BY rowid"
        want = con.query_arrow(sql)
        for rows in (1, 2, 3, 100):
            reader = con.query_batches(sql, rows=rows)
            assert isinstance(reader, pa.RecordBatchReader)
            batches = []
            try:
                for b in reader:
                    batches.append(b)
            except StreamSchemaError:
                # the schema was decided before a later batch brought another storage class: the
                # batches handed out are intact (test_a_short_lookahead_never_loses_a_value checks
                # every value); a column of one storage class never gets here
                assert rows < len(values) and mix not in SINGLE_CLASS, (engine, mix, nulls, rows)
                part = pa.Table.from_batches(batches, schema=reader.schema)
                assert part.column("r").to_pylist() == want.column("r").to_pylist()[:part.num_rows]
                continue
            assert all(b.num_rows <= rows for b in batches)
            got = pa.Table.from_batches(batches, schema=reader.schema)
            if rows >= len(values):  # the read-ahead held the whole result: exactly query_arrow
                assert got.schema == want.schema, (engine, mix, nulls, rows, got.schema, want.schema)
                assert got.equals(want), (engine, mix, nulls, rows)
            else:  # the same values (a union decided early has a null member: the documented rule)
                assert got.column("k").equals(want.column("k")) and got.column("r").equals(want.column("r"))
                assert all(_values_equal(g, w) for g, w in zip(got.column("v").to_pylist(),
                                                                want.column("v").to_pylist()))
                assert got.schema.field("v").type == want.schema.field("v").type or \
                    pa.types.is_union(got.schema.field("v").type), (mix, nulls, rows)
        # read ahead over the whole result, any batch size gives exactly query_arrow
        for rows in (1, 2):
            got = con.query_batches(sql, rows=rows, lookahead=len(values)).read_all()
            assert got.equals(want), (engine, mix, nulls, rows)
    con.close()


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_a_short_lookahead_never_loses_a_value(engine, tmp_path, mix):
    """With the schema decided from the first row alone, every mix either streams exactly the
    stdlib's values or stops with StreamSchemaError, after handing out intact batches."""
    con = _connect(engine, tmp_path / "m.db")
    con.execute("CREATE TABLE t (v)")
    for nulls in sorted(NULLS):
        values = NULLS[nulls](list(MIXES[mix]))
        con.execute("DELETE FROM t")
        for v in values:
            con.execute("INSERT INTO t VALUES (?)", (v,))
        con.commit()
        want = [r[0] for r in con.execute("SELECT v FROM t ORDER BY rowid").fetchall()]
        reader = con.query_batches("SELECT v FROM t ORDER BY rowid", rows=1, null_lookahead=1)
        got = []
        failed = None
        try:
            for b in reader:
                got.extend(b.column(0).to_pylist())
        except StreamSchemaError as exc:
            failed = exc
        assert all(_values_equal(g, w) for g, w in zip(got, want)), (mix, nulls, got, want)
        if failed is None:
            assert len(got) == len(want), (mix, nulls)
        else:
            assert failed.column == "v" and failed.row == len(got) and failed.batch == len(got)
            assert "nothing was converted or dropped" in str(failed)
            assert "\n" not in str(failed)
        # the same with types={"v": "mixed"} (or "bytes" for text and blobs) always completes
        kinds = {type(v) for v in want if v is not None}
        fix = "bytes" if kinds <= {str, bytes} and kinds else "mixed"
        reader = con.query_batches("SELECT v FROM t ORDER BY rowid", rows=1, null_lookahead=1, types={"v": fix})
        got = [v for b in reader for v in b.column(0).to_pylist()]
        assert len(got) == len(want) and all(_values_equal(g, w) for g, w in zip(got, want)), (mix, nulls, got)
    con.close()


# ---------------------------------------------------------------------------
# the schema rule on the cases the issue names
# ---------------------------------------------------------------------------
def test_first_batch_all_null_then_text(engine, tmp_path):
    con = _connect(engine, tmp_path / "n.db")
    con.execute("CREATE TABLE t (i INTEGER, v)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, None if i < 10 else f"s{i}") for i in range(30)])
    con.commit()
    sql = "SELECT i, v FROM t ORDER BY i"
    reader = con.query_batches(sql, rows=4)           # batches 0 and 1 hold only NULL in v
    assert reader.schema.field("v").type == pa.large_string()
    batches = list(reader)
    assert batches[0].column(1).null_count == 4 and batches[0].column(1).type == pa.large_string()
    assert pa.Table.from_batches(batches).equals(con.query_arrow(sql))
    # longer than the read-ahead: a declared TEXT column takes its declared type ...
    con.execute("CREATE TABLE d (i INTEGER, v TEXT)")
    con.execute("INSERT INTO d SELECT i, v FROM t")
    con.commit()
    reader = con.query_batches("SELECT i, v FROM d ORDER BY i", rows=2, null_lookahead=2)
    if con.execute("SELECT v FROM d").description[0][1] == "TEXT":
        got = reader.read_all()
        assert got.schema.field("v").type == pa.large_string()
        assert got.column("v").to_pylist() == [None] * 10 + [f"s{i}" for i in range(10, 30)]
    else:  # an engine that does not report declared types (the stdlib's): as undeclared, below
        with pytest.raises(StreamSchemaError, match="no declared type"):
            reader.read_all()
    del reader
    # ... an undeclared one is of type null, and the first text stops the stream, nothing lost
    reader = con.query_batches(sql, rows=2, null_lookahead=2)
    assert reader.schema.field("v").type == pa.null()
    seen = []
    with pytest.raises(StreamSchemaError, match=r"column 'v' changed type in batch 5 \(rows from 10\)") as ei:
        for b in reader:
            seen.append(b)
    assert ei.value.found == ("text",) and sum(b.num_rows for b in seen) == 10
    assert "no declared type" in str(ei.value) and "types={'v': 'mixed'}" in str(ei.value)
    con.close()


def test_a_column_that_turns_mixed_in_batch_40(engine, tmp_path):
    con = _connect(engine, tmp_path / "b40.db")
    con.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, v)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, "forty" if i == 395 else i) for i in range(500)])
    con.commit()
    sql = "SELECT v FROM t ORDER BY i"
    reader = con.query_batches(sql, rows=10)
    assert reader.schema.field("v").type == pa.int64()
    seen = []
    with pytest.raises(StreamSchemaError) as ei:
        for b in reader:
            seen.append(b)
    assert ei.value.batch == 39 and ei.value.row == 390 and set(ei.value.found) == {"integer", "text"}
    assert [v for b in seen for v in b.column(0).to_pylist()] == list(range(390))
    # the statement is finalized: the connection goes on
    assert con.execute("SELECT count(*) FROM t").fetchone() == (500,)
    # asked for, the mixed type takes it all
    got = con.query_batches(sql, rows=10, types={"v": "mixed"}).read_all().column(0).to_pylist()
    assert got == [("forty" if i == 395 else i) for i in range(500)]
    # an integer in a float64 column: converted when exact, refused when not
    con.execute("CREATE TABLE f (i INTEGER PRIMARY KEY, v)")
    con.executemany("INSERT INTO f VALUES (?, ?)", [(i, i + 0.5) for i in range(20)] + [(20, 7), (21, 2**53 + 1)])
    con.commit()
    reader = con.query_batches("SELECT v FROM f WHERE i <= 20 ORDER BY i", rows=5, lookahead=1)
    assert reader.read_all().column(0).to_pylist() == [i + 0.5 for i in range(20)] + [7.0]
    with pytest.raises(StreamSchemaError, match="a double cannot hold exactly"):
        con.query_batches("SELECT v FROM f ORDER BY i", rows=5, lookahead=1).read_all()
    con.close()


def test_invalid_utf8_after_the_read_ahead(engine, tmp_path):
    con = _connect(engine, tmp_path / "u.db")
    con.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, v)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"t{i}") for i in range(8)])
    con.execute("INSERT INTO t VALUES (8, CAST(x'ff61' AS TEXT))")
    con.commit()
    sql = "SELECT v FROM t ORDER BY i"
    with pytest.raises(StreamSchemaError, match=r"not valid UTF-8; .* types=\{'v': 'bytes'\}"):
        con.query_batches(sql, rows=2, lookahead=1).read_all()
    got = con.query_batches(sql, rows=2, lookahead=1, types={"v": "bytes"}).read_all()
    assert got.column(0).to_pylist() == [f"t{i}".encode() for i in range(8)] + [b"\xffa"]
    # within the read-ahead the stream is exactly query_arrow (large_binary: the stored bytes)
    assert con.query_batches(sql, rows=2, lookahead=5).read_all().equals(con.query_arrow(sql))
    con.close()


def test_options_are_checked(con):
    con.execute("CREATE TABLE t (a, b)")
    for bad in (0, -1, 1.5, True, None):
        with pytest.raises(ValueError, match="rows must be a positive int"):
            con.query_batches("SELECT * FROM t", rows=bad)
    with pytest.raises(ValueError, match=r"types names column\(s\) 'zz' not in the result"):
        con.query_batches("SELECT * FROM t", types={"zz": "int"})
    with pytest.raises(ValueError, match=r"types\['a'\] must be one of"):
        con.query_batches("SELECT * FROM t", types={"a": "decimal"})
    with pytest.raises(errors.OperationalError):
        con.query_batches("SELECT * FROM nope")
    # the connection holds no statement after a refused call
    con.execute("INSERT INTO t VALUES (1, 2)")
    con.commit()


def test_empty_result_and_statements_before(con):
    con.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, x)")
    reader = con.query_batches("INSERT INTO t VALUES (1, 2.5, 's', x'00', 1); SELECT * FROM t WHERE i > 5")
    table = reader.read_all()
    assert table.num_rows == 0
    assert table.schema == con.query_arrow("SELECT * FROM t WHERE i > 5").schema
    assert con.query_batches("SELECT * FROM t").read_all().num_rows == 1  # the INSERT ran
    assert con.query_batches("UPDATE t SET i = 2").read_all().num_columns == 0
    assert con.execute("SELECT i FROM t").fetchone() == (2,)


def test_params_and_types_fixed(con):
    con.execute("CREATE TABLE t (a)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
    got = con.query_batches("SELECT a FROM t WHERE a >= :lo ORDER BY a", {"lo": 7}, rows=2,
                            types={"a": "float"}).read_all()
    assert got.schema.field("a").type == pa.float64() and got.column(0).to_pylist() == [7.0, 8.0, 9.0]


# ---------------------------------------------------------------------------
# the Arrow PyCapsule stream interface
# ---------------------------------------------------------------------------
def test_arrow_c_stream_pyarrow_and_polars(engine, tmp_path):
    pl = pytest.importorskip("polars")
    con = _connect(engine, tmp_path / "c.db")
    con.execute("CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BLOB)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",
                    [(i, i / 4, None if i % 3 else f"s{i}", bytes([i % 256])) for i in range(1000)])
    con.commit()
    sql = "SELECT * FROM t ORDER BY i"
    direct = con.query_arrow(sql)
    res = frames.run(con, sql)
    assert pa.table(res).equals(direct)                                  # a Result
    assert pa.table(con.query_batches(sql, rows=64)).equals(direct)     # a running query
    assert pa.RecordBatchReader.from_stream(res).read_all().equals(direct)
    want = pl.from_arrow(direct)
    assert pl.DataFrame(res).equals(want)
    assert pl.DataFrame(con.query_batches(sql, rows=64)).equals(want)
    assert pl.from_arrow(con.query_batches(sql, rows=64)).equals(want)
    duckdb = pytest.importorskip("duckdb")
    reader = con.query_batches(sql, rows=64)                             # DuckDB scans a running query
    assert duckdb.sql("SELECT count(*), sum(i), count(s) FROM reader").fetchall() == [(1000, 499500, 334)]
    del reader
    con.close()


# ---------------------------------------------------------------------------
# an abandoned reader finalizes its statement
# ---------------------------------------------------------------------------
def test_abandoned_reader_finalizes_its_statement(engine, tmp_path):
    path = tmp_path / "lock.db"
    con = _connect(engine, path)
    con.execute("CREATE TABLE t (i)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5000)])
    con.commit()
    other = sqlnb.connect(str(path), engine=engine, timeout=0.05)
    reader = con.query_batches("SELECT i FROM t", rows=100)
    assert reader.read_next_batch().num_rows == 100
    # the half-read statement holds the file's shared lock: the other connection cannot commit
    with pytest.raises(errors.OperationalError, match="locked"):
        other.execute("INSERT INTO t VALUES (-1)")
        other.commit()
    other.rollback()
    del reader   # abandoned: no read_all, no close; freeing it finalizes the statement
    other.execute("INSERT INTO t VALUES (-1)")
    other.commit()
    assert con.execute("SELECT count(*) FROM t").fetchone() == (5001,)
    other.close()
    con.close()


# ---------------------------------------------------------------------------
# query_df(chunksize=)
# ---------------------------------------------------------------------------
def test_query_df_chunksize(engine, tmp_path):
    con = _connect(engine, tmp_path / "df.db")
    con.execute("CREATE TABLE t (i INTEGER, v, s TEXT)")
    rows = [(i, None if i < 6 else i * 1.5, f"s{i}") for i in range(23)]
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    con.commit()
    chunks = con.query_df("SELECT * FROM t ORDER BY i", chunksize=5)
    assert not isinstance(chunks, pd.DataFrame)
    chunks = list(chunks)
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 3]
    for k, c in enumerate(chunks):   # each frame follows the type rules on its own rows
        check_frame(c.reset_index(drop=True), ["i", "v", "s"], rows[5 * k:5 * k + 5], f"chunk {k}")
    assert chunks[0]["v"].dtype == object and chunks[2]["v"].dtype == "float64"
    whole = pd.concat(chunks, ignore_index=True)
    direct = con.query_df("SELECT * FROM t ORDER BY i")
    pd.testing.assert_frame_equal(whole[["i", "s"]], direct[["i", "s"]], check_dtype=False)
    pd.testing.assert_series_equal(whole["v"].astype("float64"), direct["v"])  # (all-NULL chunk: None)
    # an empty result: one empty frame with the columns; a closed iterator finalizes its statement
    empty = list(con.query_df("SELECT * FROM t WHERE i < 0", chunksize=5))
    assert len(empty) == 1 and list(empty[0].columns) == ["i", "v", "s"] and len(empty[0]) == 0
    it = con.query_df("SELECT * FROM t", chunksize=5)
    next(it)
    it.close()
    con.execute("DELETE FROM t")
    con.commit()
    with pytest.raises(ValueError, match="chunksize must be a positive int"):
        list(con.query_df("SELECT 1", chunksize=0))
    con.close()


# ---------------------------------------------------------------------------
# the time limit covers the whole stream; progress counts on
# ---------------------------------------------------------------------------
def test_time_limit_covers_the_stream(engine, tmp_path):
    con = _connect(engine, tmp_path / "tl.db")
    con.execute("CREATE TABLE t (i)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(3000)])
    con.commit()
    con.statement_timeout = 1.0          # generous: the first 1024 rows take a few ms
    t0 = time.monotonic()
    reader = con.query_batches("SELECT i FROM t", rows=1024)
    reader.read_next_batch()
    while time.monotonic() < t0 + 1.1:   # the consumer works until the limit has surely passed
        pass
    with pytest.raises(errors.QueryTimeoutError):
        while True:
            reader.read_next_batch()
    con.statement_timeout = 0
    assert con.execute("SELECT count(*) FROM t").fetchone() == (3000,)
    con.close()


def test_rows_seen_counts_the_whole_stream(con):
    con.execute("CREATE TABLE t (i)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5000)])
    reader = con.query_batches("SELECT i FROM t", rows=2048)
    n = 0
    for b in reader:
        n += b.num_rows
        assert con.raw.rows_seen >= n
    assert con.raw.rows_seen == 5000


def test_stdlib_agrees(tmp_path):
    """The values streamed by our core from a file are the stdlib's (a second opinion)."""
    path = tmp_path / "s.db"
    ref = sqlite3.connect(path)
    ref.execute("CREATE TABLE t (v)")
    ref.executemany("INSERT INTO t VALUES (?)", [(v,) for v in (1, 2.5, "x", b"y", None) * 50])
    ref.commit()
    want = [r[0] for r in ref.execute("SELECT v FROM t ORDER BY rowid")]
    ref.close()
    con = sqlnb.connect(str(path))
    got = [v for b in con.query_batches("SELECT v FROM t ORDER BY rowid", rows=7) for v in b.column(0).to_pylist()]
    assert got == want
    con.close()
