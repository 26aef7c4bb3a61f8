"""Opt-in parallel fetch of plain table scans: identical to the single-threaded result, or refused clearly."""
from __future__ import annotations

import pandas as pd
import pytest

import sqlnb
from sqlnb import errors, frames


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "p.db"
    con = sqlnb.connect(str(path), engine="sqlite")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v, s TEXT, f REAL)")
    rows = [(i * 3, i if i % 5 else f"t{i}", f"s{i}" if i % 7 else None, i / 4) for i in range(1, 20001)]
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    con.execute("CREATE TABLE e (x)")
    con.execute("CREATE TABLE wr (k TEXT PRIMARY KEY, v) WITHOUT ROWID")
    con.execute("CREATE INDEX t_f ON t(f)")
    con.commit()
    yield con
    con.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("n", [2, 3, 7])
@pytest.mark.parametrize("sql, params", [
    ("SELECT * FROM t", None),
    ("SELECT id, s, v FROM t AS a WHERE a.v > ? -- comment", (100,)),
    ("SELECT s FROM main.t WHERE s LIKE :p", {"p": "s1%"}),
    ("SELECT id * 2 AS d, upper(s) FROM t WHERE id < 3000", None),
    ("SELECT * FROM e", None),
])
def test_parallel_equals_single(db, n, sql, params):
    one = db.query_df(sql, params)
    many = db.query_df(sql, params, parallel=n)
    pd.testing.assert_frame_equal(one, many, check_exact=True)
    assert list(one.dtypes) == list(many.dtypes)
    tbl = db.query_arrow(sql, params, parallel=n)
    assert tbl.equals(db.query_arrow(sql, params))


@pytest.mark.parametrize("sql, why", [
    ("SELECT count(*) FROM t", "combines rows|COVERING INDEX"),
    ("SELECT * FROM t ORDER BY f", "ORDER"),
    ("SELECT DISTINCT v FROM t", "DISTINCT"),
    ("SELECT * FROM t LIMIT 5", "LIMIT"),
    ("SELECT * FROM t, e", "more than one table"),
    ("SELECT * FROM t JOIN e", "JOIN"),
    ("SELECT f FROM t WHERE f > 3", "plan"),
    ("SELECT * FROM wr", "rowid"),
    ("SELECT 1", "no table"),
    ("SELECT * FROM t; SELECT 1", "one statement"),
    ("SELECT sum(f) OVER () FROM t", "combines rows|CO-ROUTINE"),
    ("SELECT sum(v) OVER () FROM t", "combines rows|CO-ROUTINE"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "plain 'SELECT"),
])
def test_parallel_refuses_what_it_cannot_split(db, sql, why):
    with pytest.raises(frames.ParallelRefused, match=why):
        db.query_df(sql, parallel=2)


def test_parallel_refuses_unsafe_connections(db, tmp_path):
    mem = sqlnb.connect(":memory:", engine="sqlite")
    mem.execute("CREATE TABLE t (x)")
    with pytest.raises(frames.ParallelRefused, match="in-memory"):
        mem.query_df("SELECT * FROM t", parallel=2)
    db.execute("INSERT INTO e VALUES (1)")  # opens a transaction
    with pytest.raises(frames.ParallelRefused, match="transaction"):
        db.query_df("SELECT * FROM t", parallel=2)
    db.rollback()
    with pytest.raises(frames.ParallelRefused, match="limit"):
        db.query_df("SELECT * FROM t", parallel=2, limit=5)
    with pytest.raises(ValueError, match="parallel"):
        db.query_df("SELECT * FROM t", parallel=-2)
    sys_con = sqlnb.connect(str(tmp_path / "p.db"), engine="system")
    with pytest.raises(frames.ParallelRefused, match="system"):
        sys_con.query_df("SELECT * FROM t", parallel=2)
    assert isinstance(frames.ParallelRefused("x"), errors.ProgrammingError)
    # parallel=1 is simply the ordinary fetch
    assert len(db.query_df("SELECT * FROM t", parallel=1)) == 20000
