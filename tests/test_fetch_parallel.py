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


@pytest.mark.timeout(120)
@pytest.mark.parametrize("in_place", [True, False])
@pytest.mark.parametrize("sql", ["SELECT * FROM t", "SELECT s, v FROM t WHERE id % 11 <> 0"])
def test_many_ranges_in_place_or_appended(db, monkeypatch, in_place, sql):
    """Workers take many small rowid ranges in turn; with rowids 3, 6, 9, ... the in-place
    join moves every range down over the gaps, the other join copies: both equal the
    single-threaded frame."""
    monkeypatch.setattr(frames, "_MIN_RANGE_ROWS", 500)
    monkeypatch.setattr(frames, "_can_reserve", lambda span, ncol: in_place)
    one = db.query_df(sql)
    many = db.query_df(sql, parallel=3)
    pd.testing.assert_frame_equal(one, many, check_exact=True)
    assert db.query_arrow(sql, parallel=2).equals(db.query_arrow(sql))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("in_place", [True, False])
def test_a_slow_worker_has_its_ranges_taken(db, monkeypatch, in_place):
    """One worker stalls on its first range: the other reads its own region, then takes the
    stalled worker's ranges from the back; the frame is still the single-threaded one."""
    import threading
    import time

    monkeypatch.setattr(frames, "_MIN_RANGE_ROWS", 500)
    monkeypatch.setattr(frames, "_can_reserve", lambda span, ncol: in_place)
    bound, orig = {}, frames._bind_with_range
    first = threading.Event()

    def bind(st, params, lo, hi):
        me = threading.current_thread().name
        bound.setdefault(me, []).append(lo)
        if lo == 3 and not first.is_set():  # the first range of the table: hold this worker up
            first.set()
            time.sleep(0.5)
        orig(st, params, lo, hi)

    monkeypatch.setattr(frames, "_bind_with_range", bind)
    sql = "SELECT * FROM t WHERE id % 4 <> 0"
    many = db.query_df(sql, parallel=2)
    pd.testing.assert_frame_equal(db.query_df(sql), many, check_exact=True)
    # the other worker went backwards at some point: it took ranges from the stalled one's region
    assert any(any(b < a for a, b in zip(los, los[1:])) for los in bound.values()), bound
    slow = next(los for los in bound.values() if los[0] == 3)
    assert len(slow) < 8


def test_rowids_at_the_int64_ends(db):
    db.execute("CREATE TABLE ends (x)")
    db.executemany("INSERT INTO ends (rowid, x) VALUES (?, ?)",
                   [(-(2 ** 63), "min"), (0, 0.5), (2 ** 63 - 1, 7)])
    db.commit()
    many = db.query_df("SELECT rowid AS r, x FROM ends", parallel=2)
    pd.testing.assert_frame_equal(many, db.query_df("SELECT rowid AS r, x FROM ends"), check_exact=True)
    assert list(many["r"]) == [-(2 ** 63), 0, 2 ** 63 - 1]


def test_error_in_one_range_is_the_error_raised(db, monkeypatch):
    """A row that fails in one worker stops the others; the error raised is that row's
    (not the interruption of the others), and the connection goes on working."""
    monkeypatch.setattr(frames, "_MIN_RANGE_ROWS", 500)
    with pytest.raises(sqlnb.OperationalError, match="malformed JSON"):
        db.query_df("SELECT CASE WHEN id > 45000 THEN json('{') ELSE s END, v FROM t", parallel=2)
    assert len(db.query_df("SELECT * FROM t", parallel=2)) == 20000


@pytest.mark.timeout(120)
def test_statement_timeout_bounds_the_whole_parallel_fetch(db, monkeypatch):
    """Each of ~100 ranges takes far less than the limit; together they take more: the
    limit is the fetch's, so it stops it (a per-range limit would restart each time)."""
    monkeypatch.setattr(frames, "_MIN_RANGE_ROWS", 100)
    monkeypatch.setattr(frames, "_RANGES_PER_WORKER", 50)
    sql = "SELECT s FROM t WHERE length(hex(randomblob(20000))) > 0"
    db.statement_timeout = 0.5
    with pytest.raises(errors.QueryTimeoutError, match="time limit of 0.5 s"):
        db.query_df(sql, parallel=2)
    db.statement_timeout = None
    assert len(db.query_df("SELECT * FROM t", parallel=2)) == 20000


class TestParts:
    """Fetch.reserve / part / join_parts: the in-place join's own guard rails."""

    @pytest.fixture
    def raw(self, db):
        return db.raw

    def _stmt(self, raw, sql):
        st, _ = raw.prepare(sql.encode(), 0)
        return st

    def test_parts_fill_in_place_and_join(self, raw):
        from sqlnb import _fast

        dest = _fast.Fetch()
        dest.reserve(2, 10)
        a, b = dest.part(0, 4), dest.part(6, 4)
        a.run(self._stmt(raw, "SELECT 1, 'x' UNION ALL SELECT 2, NULL"))
        b.run(self._stmt(raw, "SELECT 3.5, 'yz'"))
        with pytest.raises(ValueError, match="not joined"):
            dest.columns()
        dest.join_parts([a, b])
        nums, texts = dest.columns()
        assert nums.nrows == 3 and nums.objects().tolist() == [1, 2, 3.5]
        assert texts.objects().tolist() == ["x", None, "yz"]
        # a joined part is an empty Fetch of its own again: it no longer writes into dest's rows
        a.run(self._stmt(raw, "SELECT 9, 'zz'"))
        assert a.nrows == 1 and nums.objects().tolist() == [1, 2, 3.5]

    def test_a_part_refuses_more_rows_than_its_range(self, raw):
        from sqlnb import _fast

        dest = _fast.Fetch()
        dest.reserve(1, 10)
        p = dest.part(0, 2)
        with pytest.raises(_fast.PartFull):
            p.run(self._stmt(raw, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                  "WHERE x < 5) SELECT x FROM c"))
        dest.join_parts([])  # the full part gave its rows back: nothing outstanding
        assert dest.columns()[0].nrows == 0

    def test_misuse_is_refused(self, raw):
        from sqlnb import _fast

        dest = _fast.Fetch()
        with pytest.raises(ValueError, match="reserve"):
            dest.part(0, 1)
        with pytest.raises(MemoryError, match="reserve"):
            _fast.Fetch().reserve(1, 2 ** 62)
        dest.reserve(1, 10)
        with pytest.raises(ValueError, match="outside"):
            dest.part(8, 3)
        with pytest.raises(ValueError, match="outside"):
            dest.part(2 ** 62, 2 ** 62)
        a, b = dest.part(0, 5), dest.part(3, 5)  # capacities may overlap, written rows may not
        a.run(self._stmt(raw, "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4"))
        with pytest.raises(ValueError, match="overlap"):
            dest.join_parts([a, b])
        with pytest.raises(ValueError, match="outstanding"):
            dest.join_parts([a])
        with pytest.raises(ValueError, match="part"):
            dest.append(_fast.Fetch())
        with pytest.raises(ValueError, match="parts"):
            a.append(_fast.Fetch())
        del b  # a dropped part gives its range back
        dest.join_parts([a])
        assert dest.columns()[0].objects().tolist() == [1, 2, 3, 4]


def test_text_of_later_regions_stays_in_chunks(db, monkeypatch):
    """The join copies no TEXT: a parallel result's text columns are chunks (one per region);
    Arrow and pandas take them as they are, and offsets()/data()/objects() join them on demand."""
    monkeypatch.setattr(frames, "_MIN_RANGE_ROWS", 500)
    sql = "SELECT s, v, CAST(id AS BLOB) AS b FROM t"
    par = frames.run(db, sql, parallel=3)
    one = frames.run(db, sql)
    for pc, oc in zip(par.raw_columns, one.raw_columns):
        assert pc.text_chunks() is not None and len(pc.text_chunks()) >= 3
        assert sum(nr for _, nr, _, _ in pc.text_chunks()) == pc.nrows
    tbl = par.to_arrow()
    assert tbl.column("s").num_chunks >= 3 and tbl.equals(one.to_arrow())
    df = par.to_pandas()
    pd.testing.assert_frame_equal(df, one.to_pandas(), check_exact=True)
    for pc, oc in zip(par.raw_columns, one.raw_columns):
        assert bytes(pc.offsets()) == bytes(oc.offsets()) and bytes(pc.data()) == bytes(oc.data())
        assert pc.text_chunks() is None  # joined once, on demand
        assert pc.objects().tolist() == oc.objects().tolist()
