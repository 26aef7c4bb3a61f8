"""Streaming export (issue 25): write_query / write_result from a batch reader into CSV, Parquet,
JSON lines, JSON and Arrow IPC; temporary name, umask, interrupt, empty results, check_target."""
from __future__ import annotations

import json
import os
import stat

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import sqlnb
from sqlnb import errors, export
from sqlnb.export import ExportError, ExportTargetError, check_target

EXTS = {"csv": ".csv", "parquet": ".parquet", "jsonl": ".jsonl", "json": ".json", "feather": ".arrow"}


def _table(con, n=1000):
    con.execute("CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BLOB)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",
                    [(i, None if i % 7 == 0 else i / 8, None if i % 5 == 0 else f"s,\"{i}\"", bytes([i % 256, 255]))
                     for i in range(n)])
    con.commit()


def _read(path, fmt, schema=None):
    """A file back as a pyarrow Table (CSV read with the written schema's text/number types)."""
    if fmt == "parquet":
        return pq.read_table(path)
    if fmt == "feather":
        return feather.read_table(path)
    if fmt == "csv":
        types = {f.name: (pa.large_string() if pa.types.is_large_binary(f.type) else f.type) for f in schema}
        return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types=types,
                                                                        strings_can_be_null=True))
    text = path.read_text()
    rows = [json.loads(line) for line in text.splitlines()] if fmt == "jsonl" else json.loads(text)
    return pa.Table.from_pylist(rows, schema=pa.schema([(f.name, pa.large_string() if pa.types.is_large_binary(f.type)
                                                         else f.type) for f in schema])) if rows else None


def _no_leftovers(d, *names):
    """Only ``names`` (and the database's own files) are in ``d``: no temporary file is left."""
    assert sorted(p.name for p in d.iterdir() if not p.name.endswith(".db") and ".db-" not in p.name) == sorted(names)


@pytest.mark.parametrize("fmt", sorted(EXTS))
def test_round_trip_every_format(engine, tmp_path, fmt):
    con = sqlnb.connect(str(tmp_path / "e.db"), engine=engine)
    _table(con)
    sql = "SELECT * FROM t ORDER BY i"
    want = con.query_arrow(sql)
    target = tmp_path / f"out{EXTS[fmt]}"
    seen = []
    w = export.write_query(con, sql, target, rows=128, progress=seen.append)
    assert w == target and w.path == target and w.rows == 1000 and w.format == fmt and w.replaced is False
    assert seen == [min(1000, 128 * k) for k in range(1, 9)]
    _no_leftovers(tmp_path, target.name)
    back = _read(target, fmt, want.schema)
    if fmt in ("parquet", "feather"):
        assert back.equals(want)
    else:  # text formats: a BLOB is written as its hexadecimal digits
        b = [None if v is None else v.hex() for v in want.column("b").to_pylist()]
        assert back.column("b").to_pylist() == b
        for name in ("i", "f", "s"):
            assert back.column(name).to_pylist() == want.column(name).to_pylist(), name
    con.close()


@pytest.mark.parametrize("fmt", sorted(EXTS))
def test_empty_result_is_a_valid_file_with_the_schema(con, tmp_path, fmt):
    con.execute("CREATE TABLE t (i INTEGER, f REAL, s TEXT)")
    target = tmp_path / f"empty{EXTS[fmt]}"
    w = export.write_query(con, "SELECT * FROM t", target)
    assert w.rows == 0 and target.exists()
    if fmt == "parquet":
        got = pq.read_table(target)
        assert got.num_rows == 0 and got.schema.names == ["i", "f", "s"]
        if con.execute("SELECT i FROM t").description[0][1]:  # engines that report declared types
            assert got.schema.field("i").type == pa.int64() and got.schema.field("s").type == pa.large_string()
    elif fmt == "feather":
        got = feather.read_table(target)
        assert got.num_rows == 0 and got.schema.names == ["i", "f", "s"]
    elif fmt == "csv":
        assert target.read_text().splitlines() == ['"i","f","s"']
    elif fmt == "jsonl":
        assert target.read_bytes() == b""
    else:
        assert json.loads(target.read_text()) == []


def test_new_file_follows_the_umask(con, tmp_path):
    con.execute("CREATE TABLE t (i)")
    con.execute("INSERT INTO t VALUES (1)")
    old = os.umask(0o027)
    try:
        export.write_query(con, "SELECT * FROM t", tmp_path / "a.csv")
        import pandas as pd

        export.write_result(pd.DataFrame({"x": [1]}), tmp_path / "b.parquet")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.csv").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "b.parquet").stat().st_mode) == 0o640
    os.umask(0o022)
    try:
        export.write_query(con, "SELECT * FROM t", tmp_path / "c.jsonl")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "c.jsonl").stat().st_mode) == 0o644


# ---------------------------------------------------------------------------
# interrupted in the middle: no file at the target, the connection usable
# ---------------------------------------------------------------------------
def _big(con, n=20000):
    con.execute("CREATE TABLE t (i INTEGER, s TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", ((x, f"row {x}") for x in range(n)))
    con.commit()


def _still_usable(con, path, engine):
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] > 0
    other = sqlnb.connect(str(path), engine=engine, timeout=0.5)  # the statement is finalized: a writer gets in
    other.execute("INSERT INTO t VALUES (-1, 'x')")
    other.commit()
    other.close()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "feather", "jsonl"])
def test_keyboard_interrupt_mid_export_leaves_no_file(engine, tmp_path, fmt):
    path = tmp_path / "e.db"
    con = sqlnb.connect(str(path), engine=engine)
    _big(con)
    target = tmp_path / f"out{EXTS[fmt]}"
    calls = []

    def progress(rows):  # the interrupt button pressed at a known point: after the third batch
        calls.append(rows)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export.write_query(con, "SELECT * FROM t", target, rows=1000, progress=progress)
    assert calls == [1000, 2000, 3000]
    _no_leftovers(tmp_path)  # neither the target nor the temporary file
    _still_usable(con, path, engine)
    con.close()


def test_interrupt_from_another_caller_mid_export(engine, tmp_path):
    path = tmp_path / "e.db"
    con = sqlnb.connect(str(path), engine=engine, check_same_thread=False)
    _big(con)
    target = tmp_path / "out.parquet"
    target.write_bytes(b"previous")

    def progress(rows):
        if rows == 2000:
            con.interrupt()   # what the notebook's interrupt button does to a running statement

    with pytest.raises(errors.OperationalError, match="interrupt"):
        export.write_query(con, "SELECT * FROM t", target, rows=1000, progress=progress)
    assert target.read_bytes() == b"previous"
    _no_leftovers(tmp_path, "out.parquet")
    _still_usable(con, path, engine)
    con.close()


def test_time_limit_applies_to_the_export(con, tmp_path):
    _big(con)
    con.statement_timeout = 0.05
    import time

    t0 = time.monotonic()

    def progress(rows):  # the writer is slow: work until the limit has surely passed
        while time.monotonic() < t0 + 0.1:
            pass

    with pytest.raises(errors.QueryTimeoutError):
        export.write_query(con, "SELECT * FROM t", tmp_path / "slow.csv", rows=1000, progress=progress)
    con.statement_timeout = 0
    _no_leftovers(tmp_path)


def test_a_mixed_column_mid_stream_removes_the_file(con, tmp_path):
    con.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, v)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, "late" if i == 950 else i) for i in range(1000)])
    with pytest.raises(sqlnb.frames.StreamSchemaError, match="batch 9"):
        export.write_query(con, "SELECT v FROM t ORDER BY i", tmp_path / "m.csv", rows=100)
    _no_leftovers(tmp_path)
    w = export.write_query(con, "SELECT v FROM t ORDER BY i", tmp_path / "m.csv", rows=100, types={"v": "mixed"})
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert w.rows == 1000 and lines[0] == '"v"' and lines[951] == '"late"' and lines[1] == '"0"'
    # Arrow IPC keeps the union as it is; Parquet has no union type: refused before anything is written
    export.write_query(con, "SELECT v FROM t ORDER BY i", tmp_path / "m.arrow", rows=100, types={"v": "mixed"})
    assert feather.read_table(tmp_path / "m.arrow").column("v").to_pylist()[949:952] == [949, "late", 951]
    with pytest.raises(ExportError, match="Parquet has no such type"):
        export.write_query(con, "SELECT v FROM t ORDER BY i", tmp_path / "m.parquet", types={"v": "mixed"})
    assert not (tmp_path / "m.parquet").exists()


def test_replaced_and_compressed(con, tmp_path):
    _big(con, 500)
    target = tmp_path / "r.csv"
    target.write_text("old")
    w = export.write_query(con, "SELECT * FROM t", target)
    assert w.replaced is True and target.read_text().startswith('"i","s"')
    gz = export.write_query(con, "SELECT * FROM t", tmp_path / "r.csv.gz")
    assert gz.format == "csv"
    assert pcsv.read_csv(tmp_path / "r.csv.gz").num_rows == 500
    with pytest.raises(ExportError, match="cannot compress to .xz"):
        export.write_query(con, "SELECT * FROM t", tmp_path / "r.csv.xz")
    assert not (tmp_path / "r.csv.xz").exists()


# ---------------------------------------------------------------------------
# the target is checked before any SQL runs
# ---------------------------------------------------------------------------
def test_check_target(tmp_path):
    assert check_target(tmp_path / "a.parquet") == (tmp_path / "a.parquet", "parquet")
    assert check_target(str(tmp_path / "a.data"), "arrow") == (tmp_path / "a.data", "feather")
    with pytest.raises(ExportError, match="cannot tell the export format from"):
        check_target(tmp_path / "a.xlsx")
    with pytest.raises(ExportError, match="unknown export format 'xls'"):
        check_target(tmp_path / "a.csv", "xls")
    with pytest.raises(ExportTargetError, match="directory .* does not exist"):
        check_target(tmp_path / "nope" / "a.csv")
    with pytest.raises(FileNotFoundError):
        check_target(tmp_path / "nope" / "a.csv")
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(ExportTargetError, match="it is a directory"):
        check_target(tmp_path / "d.csv")
    for bad in ("a.xlsx", "nope/a.csv"):
        with pytest.raises(ExportError) as ei:
            check_target(tmp_path / bad)
        assert "\n" not in str(ei.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_bad_target_runs_no_sql(con, tmp_path):
    con.execute("CREATE TABLE t (i)")
    con.commit()
    for bad in (tmp_path / "x.xlsx", tmp_path / "nodir" / "x.csv"):
        with pytest.raises(ExportError):
            export.write_query(con, "INSERT INTO t VALUES (1); SELECT * FROM t", bad)
    assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_write_result_takes_a_stream_and_a_result(con, tmp_path):
    _big(con, 3000)
    reader = con.query_batches("SELECT * FROM t ORDER BY i", rows=500)
    w = export.write_result(reader, tmp_path / "s.parquet")
    assert w.rows == 3000 and pq.read_table(tmp_path / "s.parquet").equals(con.query_arrow("SELECT * FROM t ORDER BY i"))
    res = sqlnb.frames.run(con, "SELECT * FROM t ORDER BY i")
    w = export.write_result(res, tmp_path / "r.arrow")    # a Result: through __arrow_c_stream__
    assert w.rows == 3000 and feather.read_table(tmp_path / "r.arrow").equals(res.to_arrow())


# ---------------------------------------------------------------------------
# 10,000,000 rows in CSV and Parquet, read back equal
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_ten_million_rows_csv_and_parquet(tmp_path):
    n = 10_000_000
    con = sqlnb.connect(str(tmp_path / "big.db"))
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, f REAL, s TEXT)")
    con.execute("CREATE TEMP TABLE k (x INTEGER PRIMARY KEY)")   # 0..999, cross-joined: 10,000,000 rows
    con.executemany("INSERT INTO k VALUES (?)", [(x,) for x in range(1000)])
    con.execute("INSERT INTO t SELECT v, v * 0.25, CASE WHEN v % 10 = 0 THEN NULL ELSE 'r' || (v % 1000) END "
                "FROM (SELECT a.x * 1000000 + b.x * 1000 + c.x + 1 AS v FROM k a, k b, k c "
                f"WHERE a.x < {n // 1000000} ORDER BY a.x, b.x, c.x)")
    con.commit()
    sql = "SELECT i, f, s FROM t ORDER BY i"
    pw = export.write_query(con, sql, tmp_path / "big.parquet")
    cw = export.write_query(con, sql, tmp_path / "big.csv")
    assert pw.rows == cw.rows == n
    back = pq.read_table(tmp_path / "big.parquet")
    assert back.num_rows == n
    schema = back.schema
    csv = pcsv.read_csv(tmp_path / "big.csv", convert_options=pcsv.ConvertOptions(
        column_types={f.name: f.type for f in schema}, strings_can_be_null=True))
    import pyarrow.compute as pc

    for name in ("i", "f", "s"):
        assert csv.column(name).equals(back.column(name)), name
    assert pc.sum(back.column("i")).as_py() == n * (n + 1) // 2
    assert back.column("s").null_count == n // 10
    assert back.slice(n - 2).to_pylist() == [{"i": n - 1, "f": (n - 1) * 0.25, "s": f"r{(n - 1) % 1000}"},
                                             {"i": n, "f": n * 0.25, "s": None}]
    assert pq.ParquetFile(tmp_path / "big.parquet").metadata.num_row_groups <= n // (1 << 18) + 1
    con.close()
