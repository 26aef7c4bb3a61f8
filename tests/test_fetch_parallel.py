"""Opt-in parallel fetch of plain table scans: identical to the single-threaded result, or refused clearly."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pandas as pd
import pytest

import sqlnb
from sqlnb import errors, frames


def _worker_threads():
    return [t for t in threading.enumerate() if t.name.startswith("sqlnb-parallel-fetch")]


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
    ("SELECT id, v FROM t WHERE id > :limit /* a parameter named like a keyword */", {"limit": 30000}),
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
    sys_con = sqlnb.connect(str(tmp_path / "s.db"), engine="system")  # (another library may not share p.db)
    sys_con.execute("CREATE TABLE t (x)")
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
    monkeypatch.setattr(frames.parallel, "_MIN_RANGE_ROWS", 500)
    monkeypatch.setattr(frames.parallel, "_can_reserve", lambda span, ncol: in_place)
    one = db.query_df(sql)
    many = db.query_df(sql, parallel=3)
    pd.testing.assert_frame_equal(one, many, check_exact=True)
    assert db.query_arrow(sql, parallel=2).equals(db.query_arrow(sql))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("in_place", [True, False])
def test_a_slow_worker_has_its_ranges_taken(db, monkeypatch, in_place):
    """One worker stalls on its first range until the other has read its own region and
    taken a range from the back of the stalled one's: the frame is still the
    single-threaded one, and the stalled worker read only what was left."""
    monkeypatch.setattr(frames.parallel, "_MIN_RANGE_ROWS", 500)
    monkeypatch.setattr(frames.parallel, "_can_reserve", lambda span, ncol: in_place)
    bound, orig = {}, frames.parallel._bind_with_range
    taken = threading.Event()

    def bind(st, params, lo, hi):
        me = threading.current_thread().name
        los = bound.setdefault(me, [])
        los.append(lo)
        if len(los) > 1 and lo < los[-2]:  # went backwards: a range of the other's region
            taken.set()
        if lo == 3:  # the first range of the table: hold this worker up until one was taken
            assert taken.wait(60), "the other worker never took a range of the stalled one's region"
        orig(st, params, lo, hi)

    monkeypatch.setattr(frames.parallel, "_bind_with_range", bind)
    sql = "SELECT * FROM t WHERE id % 4 <> 0"
    many = db.query_df(sql, parallel=2)
    pd.testing.assert_frame_equal(db.query_df(sql), many, check_exact=True)
    slow = next(los for los in bound.values() if los[0] == 3)
    other = next(los for los in bound.values() if los[0] != 3)
    assert len(slow) < 8 and len(slow) + len(other) == 16, bound


def test_a_part_that_overflows_starts_again_with_the_copying_join(db, monkeypatch):
    """A range that returns more rows than its reserved part holds (PartFull; impossible
    for a rowid range, forced here by widening the first range bound) makes the fetch
    start again with separate buffers: the frame is still the single-threaded one."""
    db.execute("CREATE TABLE dense (id INTEGER PRIMARY KEY, x)")
    db.executemany("INSERT INTO dense VALUES (?, ?)", [(i, i * 2) for i in range(1, 20001)])
    db.commit()
    monkeypatch.setattr(frames.parallel, "_MIN_RANGE_ROWS", 500)
    monkeypatch.setattr(frames.parallel, "_can_reserve", lambda span, ncol: True)
    orig, widened = frames.parallel._bind_with_range, []

    def bind(st, params, lo, hi):
        if lo == 1 and not widened:  # the first attempt's first range reads the whole table
            widened.append(lo)
            hi = 20000
        orig(st, params, lo, hi)

    monkeypatch.setattr(frames.parallel, "_bind_with_range", bind)
    many = db.query_df("SELECT * FROM dense", parallel=2)
    assert widened == [1]
    pd.testing.assert_frame_equal(many, db.query_df("SELECT * FROM dense"), check_exact=True)


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
    monkeypatch.setattr(frames.parallel, "_MIN_RANGE_ROWS", 500)
    with pytest.raises(sqlnb.OperationalError, match="malformed JSON"):
        db.query_df("SELECT CASE WHEN id > 45000 THEN json('{') ELSE s END, v FROM t", parallel=2)
    assert len(db.query_df("SELECT * FROM t", parallel=2)) == 20000


@pytest.mark.timeout(120)
def test_statement_timeout_bounds_the_whole_parallel_fetch(db, monkeypatch):
    """The limit is the fetch's, not each range's: on a clock that moves 0.1 s with every
    range taken (and not otherwise), a 0.45 s limit stops the fetch after about 5 of its
    ~100 ranges, although each range alone is far within it."""
    monkeypatch.setattr(frames.parallel, "_MIN_RANGE_ROWS", 100)
    monkeypatch.setattr(frames.parallel, "_RANGES_PER_WORKER", 50)
    clock = {"t": 1000.0, "ranges": 0}
    orig = frames.parallel._bind_with_range

    lock = threading.Lock()

    def bind(st, params, lo, hi):
        with lock:
            clock["ranges"] += 1
            clock["t"] += 0.1
        orig(st, params, lo, hi)

    monkeypatch.setattr(frames.parallel, "_clock", lambda: clock["t"])
    monkeypatch.setattr(frames.parallel, "_bind_with_range", bind)
    db.statement_timeout = 0.45
    with pytest.raises(errors.QueryTimeoutError, match="time limit of 0.45 s"):
        db.query_df("SELECT * FROM t", parallel=2)
    assert 5 <= clock["ranges"] <= 7, clock  # 5 ranges reach the limit; each worker may have one bound
    db.statement_timeout = None
    assert len(db.query_df("SELECT * FROM t", parallel=2)) == 20000
    assert not _worker_threads()


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
    monkeypatch.setattr(frames.parallel, "_MIN_RANGE_ROWS", 500)
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


# ---------------------------------------------------------------------------
# interruptions: Ctrl-C at any moment, interrupt() from another thread
# ---------------------------------------------------------------------------
_CHILD_SETUP = """
import json, os, random, signal, sys, threading
import sqlnb
from sqlnb import frames

path = sys.argv[1]
con = sqlnb.connect(path, engine="sqlite")
if not con.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone()[0]:
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v, s TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, i * 7, f"s{i}") for i in range(1, 60001)])
    con.commit()
SQL = "SELECT * FROM t"
frames.parallel._MIN_RANGE_ROWS = 2000


def workers_alive():  # any thread but this one (the signal timer is joined before this is asked)
    return [t.name for t in threading.enumerate() if t is not threading.main_thread()]
"""


def _run_child(code, *args, timeout=300):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(_CHILD_SETUP) + textwrap.dedent(code),
                           *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, (
        f"child ended with {proc.returncode}"
        + (f" (signal {signal.Signals(-proc.returncode).name})" if proc.returncode < 0 else "")
        + f"\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("when", ["before", "after"])
def test_ctrl_c_at_the_second_workers_start_joins_every_worker(tmp_path, when):
    """KeyboardInterrupt raised inside the second worker's Thread.start() (before or after
    the thread is running, the first one stepping meanwhile): the fetch raises it, no
    worker is left running, nothing crashes (a child process: a crash is its return code),
    and the connection goes on working. Ten times each."""
    out = _run_child("""
        import threading
        when = sys.argv[2]
        orig_start = threading.Thread.start
        stepping = threading.Event()
        orig_bind = frames.parallel._bind_with_range

        def bind(st, params, lo, hi):
            stepping.set()
            orig_bind(st, params, lo, hi)

        frames.parallel._bind_with_range = bind
        calls = {"n": 0}

        def start(self):  # the fetch's second Thread.start() is its second worker's
            calls["n"] += 1
            if calls["n"] == 2:  # the second worker of the fetch
                if when == "after":
                    orig_start(self)
                assert stepping.wait(60)  # the first worker is reading its range
                raise KeyboardInterrupt
            return orig_start(self)

        threading.Thread.start = start
        results = []
        for i in range(10):
            stepping.clear()
            calls["n"] = 0
            try:
                con.query_df(SQL, parallel=3)
                results.append("completed")
            except KeyboardInterrupt:
                results.append("interrupted")
            results.append(workers_alive())
        threading.Thread.start = orig_start
        frames.parallel._bind_with_range = orig_bind
        n = len(con.query_df(SQL, parallel=3))
        print(json.dumps({"results": results, "n": n, "in_tx": con.in_transaction}))
    """, tmp_path / "c.db", when)
    assert out["results"] == ["interrupted", []] * 10
    assert out["n"] == 60000 and out["in_tx"] is False


@pytest.mark.timeout(600)
@pytest.mark.parametrize("batch", range(4))
def test_random_ctrl_c_never_crashes_nor_leaves_a_worker(tmp_path, batch):
    """200 real SIGINTs (4 child processes x 50, fixed seeds) at random moments of a
    parallel fetch: each ends in the full frame or KeyboardInterrupt, never a crash; no
    worker thread is left; the connection is never left in a transaction."""
    out = _run_child("""
        import time
        rng = random.Random(int(sys.argv[2]))
        expect = con.query_df(SQL)
        t0 = time.perf_counter()
        con.query_df(SQL, parallel=2)
        span = time.perf_counter() - t0  # only to spread the signals over a fetch's length
        outcomes = {"completed": 0, "interrupted": 0}
        bad = []
        for i in range(50):
            timer = threading.Timer(rng.uniform(0, span * 1.2), os.kill, (os.getpid(), signal.SIGINT))
            try:
                timer.start()
                df = con.query_df(SQL, parallel=2)
                ok = df.equals(expect)
                outcomes["completed"] += 1
                if not ok:
                    bad.append((i, "different frame"))
            except KeyboardInterrupt:
                outcomes["interrupted"] += 1
            while True:  # the signal may come after the fetch: take it here
                try:
                    timer.join()
                    for _ in range(100):
                        pass
                    break
                except KeyboardInterrupt:
                    outcomes["interrupted"] += 1
            if workers_alive() or con.in_transaction:
                bad.append((i, workers_alive(), con.in_transaction))
        n = len(con.query_df(SQL, parallel=2))
        print(json.dumps({"outcomes": outcomes, "bad": bad, "n": n}))
    """, tmp_path / "c.db", 1000 + batch)
    assert out["bad"] == [] and out["n"] == 60000, out
    assert out["outcomes"]["interrupted"] >= 1, out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["interrupt", "sigint"])
def test_interrupt_or_ctrl_c_stops_every_parallel_worker(db, monkeypatch, how):
    """A worker stalls at its first range; meanwhile ``Connection.interrupt()`` from another
    thread (or a real SIGINT) arrives: every worker stops at its next range (none reads all
    its own), the fetch raises OperationalError("interrupted") (or KeyboardInterrupt), no
    worker thread is left, and the connection goes on working."""
    from sqlnb import _fast

    monkeypatch.setattr(frames.parallel, "_MIN_RANGE_ROWS", 500)
    orig, bound = frames.parallel._bind_with_range, []
    firsts = []
    reached, go = threading.Event(), threading.Event()
    main = threading.main_thread().ident

    def bind(st, params, lo, hi):
        bound.append(lo)
        if threading.current_thread().name not in firsts:  # each worker's first range: both wait
            firsts.append(threading.current_thread().name)
            if len(firsts) == 2:
                reached.set()
            assert go.wait(60)
            # until the main thread has asked every worker to stop (its SIGINT handler, or
            # its wait loop on seeing interrupt())
            assert stopped.wait(60)
            assert _fast.interrupt_count(st.conn) > 0  # this worker's connection was interrupted
        orig(st, params, lo, hi)

    stopped = threading.Event()
    orig_request = frames.workers.Stop.request

    def request(self):
        orig_request(self)
        stopped.set()

    def other():
        assert reached.wait(60)
        if how == "interrupt":
            db.interrupt()
        else:
            signal.pthread_kill(main, signal.SIGINT)
        go.set()

    monkeypatch.setattr(frames.parallel, "_bind_with_range", bind)
    monkeypatch.setattr(frames.workers.Stop, "request", request)
    helper = threading.Thread(target=other)
    helper.start()
    expected = (errors.InterruptError, "interrupted") if how == "interrupt" else (KeyboardInterrupt, None)
    with pytest.raises(expected[0], match=expected[1]):
        db.query_df("SELECT * FROM t", parallel=2)
    helper.join()
    assert len(bound) == 2 and not _worker_threads() and not db.in_transaction
    monkeypatch.setattr(frames.parallel, "_bind_with_range", orig)
    assert len(db.query_df("SELECT * FROM t", parallel=2)) == 20000


# ---------------------------------------------------------------------------
# the connection's state: shared with the workers, or refused
# ---------------------------------------------------------------------------
def test_temp_and_attached_tables_and_pragmas_are_refused(db, tmp_path):
    """What the extra connections could not see is refused (never read from main, never
    "no such table"): a TEMP table (shadowing main.t or not), an attached database,
    case_sensitive_like, reverse_unordered_selects."""
    db.execute("CREATE TEMP TABLE t (id INTEGER PRIMARY KEY, v)")
    db.executemany("INSERT INTO temp.t VALUES (?, ?)", [(i, i) for i in range(1, 101)])
    db.commit()
    assert len(db.query_df("SELECT * FROM t")) == 100  # the serial query reads temp.t
    for sql in ("SELECT * FROM t", "SELECT * FROM temp.t", "SELECT * FROM main.t"):
        with pytest.raises(frames.ParallelRefused, match="TEMP"):
            db.query_df(sql, parallel=2)
    db.execute("DROP TABLE temp.t")
    assert len(db.query_df("SELECT * FROM t", parallel=2)) == 20000

    other = sqlnb.connect(str(tmp_path / "o.db"), engine="sqlite")
    other.execute("CREATE TABLE x (id INTEGER PRIMARY KEY, y)")
    other.executemany("INSERT INTO x VALUES (?, ?)", [(i, i) for i in range(1, 1001)])
    other.commit()
    other.close()
    db.execute(f"ATTACH DATABASE '{tmp_path / 'o.db'}' AS o")
    for sql in ("SELECT * FROM o.x", "SELECT * FROM t"):
        with pytest.raises(frames.ParallelRefused, match="attached"):
            db.query_df(sql, parallel=2)
    db.execute("DETACH DATABASE o")

    db.execute("PRAGMA case_sensitive_like = 1")
    assert len(db.query_df("SELECT * FROM t WHERE s LIKE 'S%'")) == 0
    with pytest.raises(frames.ParallelRefused, match="case_sensitive_like"):
        db.query_df("SELECT * FROM t WHERE s LIKE 'S%'", parallel=2)
    db.execute("PRAGMA case_sensitive_like = 0")

    db.execute("PRAGMA reverse_unordered_selects = 1")
    with pytest.raises(frames.ParallelRefused, match="reverse_unordered_selects"):
        db.query_df("SELECT * FROM t", parallel=2)
    db.execute("PRAGMA reverse_unordered_selects = 0")
    assert len(db.query_df("SELECT * FROM t WHERE s LIKE 'S%'", parallel=2)) == len(
        db.query_df("SELECT * FROM t WHERE s LIKE 'S%'"))


def test_connection_settings_are_copied_to_the_workers(db):
    """Settings that change what a query returns are copied: double-quoted string
    literals (SQLITE_DBCONFIG_DQS_DML) and the length limit."""
    from sqlnb import _fast

    dqs = 1013  # SQLITE_DBCONFIG_DQS_DML
    before = _fast.db_config_flag(db.raw, dqs)
    try:
        _fast.db_config_flag(db.raw, dqs, 1)
        sql = 'SELECT id, v, "lit" AS k FROM t'
        one = db.query_df(sql)
        assert set(one["k"]) == {"lit"}
        pd.testing.assert_frame_equal(db.query_df(sql, parallel=2), one, check_exact=True)
    finally:
        _fast.db_config_flag(db.raw, dqs, before)
    old = db.raw.limit(0, 60)  # SQLITE_LIMIT_LENGTH: 80 hex digits are too long
    try:
        sql = "SELECT v, s, hex(zeroblob(40)) FROM t"
        with pytest.raises(errors.TooBigError):
            db.query_df(sql)
        with pytest.raises(errors.TooBigError):
            db.query_df(sql, parallel=2)
    finally:
        db.raw.limit(0, old)


@pytest.mark.parametrize("mode", ["ro", "ro-scratch"])
def test_the_policy_holds_on_the_workers(db, tmp_path, mode):
    """ro modes, masks and deny policies run in parallel with the connection's policy on
    every worker: the frame equals the serial one (masked values NULL in both), and what
    the policy refuses is refused the same way."""
    path = db.raw.filename
    ro = sqlnb.connect(path, engine="sqlite", mode=mode)
    try:
        pd.testing.assert_frame_equal(ro.query_df("SELECT * FROM t", parallel=2),
                                      ro.query_df("SELECT * FROM t"), check_exact=True)
    finally:
        ro.close()
    masked = sqlnb.connect(path, engine="sqlite", mode=mode, mask_columns=["t.s"], deny_tables=["e"])
    try:
        one = masked.query_df("SELECT * FROM t")
        assert one["s"].isna().all()
        many = masked.query_df("SELECT * FROM t", parallel=2)
        pd.testing.assert_frame_equal(many, one, check_exact=True)
        with pytest.raises(errors.AccessDeniedError):
            masked.query_df("SELECT * FROM e", parallel=2)
    finally:
        masked.close()
    from sqlnb import authorizer as auth

    seen = []

    def hide_f(action, a1, a2, db_name, inner):  # the user's own authorizer: column f reads as NULL
        seen.append(threading.current_thread().name)
        return auth.IGNORE if (a1, a2) == ("t", "f") else auth.OK

    own = sqlnb.connect(path, engine="sqlite", mode=mode, authorizer=hide_f, allow_tables=["t"])
    try:
        one = own.query_df("SELECT * FROM t")
        assert one["f"].isna().all() and one["s"].notna().any()
        n_serial = len(seen)
        pd.testing.assert_frame_equal(own.query_df("SELECT * FROM t", parallel=2), one, check_exact=True)
        assert len(seen) > n_serial
    finally:
        own.close()


def test_bdb_is_refused(tmp_path):
    from tests.conftest import need_engine

    need_engine("bdb")
    con = sqlnb.connect(str(tmp_path / "b.db"), engine="bdb")
    try:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i, i) for i in range(100)])
        con.commit()
        with pytest.raises(frames.ParallelRefused, match="bdb"):
            con.query_df("SELECT * FROM t", parallel=2)
    finally:
        con.close()


# ---------------------------------------------------------------------------
# one moment: every worker reads the same database state
# ---------------------------------------------------------------------------
_WRITER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
for line in sys.stdin:
    start = int(line)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO t (id, v, s, f) VALUES (?, 'new', 'new', 0)",
                        [(start + i,) for i in range(3)])
        # the first row and a row in every range (each worker reads at least its first range)
        con.execute("UPDATE t SET v = 'changed' WHERE id = 3 OR id % 3000 = 0")
        con.execute("COMMIT")
        print("ok", flush=True)
    except sqlite3.OperationalError as exc:
        if con.in_transaction:
            con.execute("ROLLBACK")
        print("busy", exc, flush=True)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("journal", ["wal", "wal-no-frame", "delete"])
def test_every_worker_reads_one_moment(db, monkeypatch, journal):
    """Another process commits (rows after the last rowid, a change to the first row and to
    rows of every range) between the moment the first worker begins to read and the moment
    the second one does. WAL: every worker opens the main connection's snapshot, so the
    frame is the state before that commit. Rollback journal: the main connection's read
    lock keeps the commit out until every worker has begun (the writer is refused then).
    A WAL with no frame yet has no snapshot to share: the second worker sees that the WAL
    moved, and the fetch starts again, at the state after the commit. Either way the frame
    is exactly one commit's state, as the serial fetch at that moment."""
    from sqlnb import _fast

    assert _fast.HAVE_SNAPSHOT and "ENABLE_SNAPSHOT" in sqlnb.compile_options()
    db.execute(f"PRAGMA journal_mode = {journal[:3] if journal.startswith('wal') else journal}")
    if journal != "wal-no-frame":
        db.execute("INSERT INTO t (id, v) VALUES (60003, 'a frame in the WAL')")
        db.commit()
    before = db.query_df("SELECT * FROM t")
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, db.raw.filename], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    replies = []
    orig = frames.workers.begin_read

    def begin(w, *args):
        out = orig(w, *args)
        if not replies:  # the first worker reads: another process commits now
            writer.stdin.write("70000\n")
            writer.stdin.flush()
            replies.append(writer.stdout.readline().split()[0])
        return out

    try:
        monkeypatch.setattr(frames.workers, "begin_read", begin)
        many = db.query_df("SELECT * FROM t", parallel=2)
        monkeypatch.setattr(frames.workers, "begin_read", orig)
        assert replies == (["busy"] if journal == "delete" else ["ok"])
        if journal == "delete":
            writer.stdin.write("70000\n")
            writer.stdin.flush()
            assert writer.stdout.readline().split()[0] == "ok"
        after = db.query_df("SELECT * FROM t")
        assert len(after) == len(before) + 3 and after["v"].iloc[0] == "changed"
        pd.testing.assert_frame_equal(many, after if journal == "wal-no-frame" else before, check_exact=True)
        pd.testing.assert_frame_equal(db.query_df("SELECT * FROM t", parallel=2), after, check_exact=True)
    finally:
        writer.stdin.close()
        writer.wait(60)


# a writer that holds PENDING: its first COMMIT meets our read lock and fails at once (timeout
# 0), which leaves it holding PENDING (no other process can take a new read lock); when told
# to, it commits, waiting in its busy handler as any writer with a busy timeout would
_PENDING_WRITER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
sys.stdin.readline()
con.execute("BEGIN IMMEDIATE")
con.executemany("INSERT INTO t (id, v, s, f) VALUES (?, 'new', 'new', 0)", [(70000 + i,) for i in range(3)])
con.execute("UPDATE t SET v = 'changed' WHERE id = 3 OR id % 3000 = 0")
try:
    con.execute("COMMIT")
    print("committed", flush=True)
except sqlite3.OperationalError:
    print("pending", flush=True)
    sys.stdin.readline()
    con.execute("PRAGMA busy_timeout = 60000")
    con.execute("COMMIT")
    print("ok", flush=True)
"""


_PROBE = """
import sqlite3, sys
try:
    sqlite3.connect(sys.argv[1], timeout=0).execute("SELECT count(*) FROM t").fetchall()
    print("read")
except sqlite3.OperationalError:
    print("busy")
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("at", [0, 1])
def test_a_writer_waiting_to_commit_in_rollback_mode(db, monkeypatch, at):
    """Rollback journal: another process starts its COMMIT (takes PENDING, so no other
    process can take a new read lock: a probe process finds the database busy) while the
    main connection holds its read lock, before worker ``at`` begins to read. The workers
    still begin at once: SQLite's unix VFS keeps one POSIX lock per file and process, and a
    connection of a process that already holds SHARED shares it without asking the file
    again. The frame is the state before the commit, which waits for the fetch to end."""
    before = db.query_df("SELECT * FROM t")
    writer = subprocess.Popen([sys.executable, "-c", _PENDING_WRITER, db.raw.filename], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    orig = frames.workers.begin_read
    calls, seen = [], []

    def begin(w, *args):
        calls.append(w)
        if len(calls) - 1 == at:
            writer.stdin.write("go\n")
            writer.stdin.flush()
            seen.append(writer.stdout.readline().split()[0])
            probe = subprocess.run([sys.executable, "-c", _PROBE, db.raw.filename], capture_output=True,
                                   text=True, check=True)
            seen.append(probe.stdout.split()[0])
        return orig(w, *args)

    try:
        monkeypatch.setattr(frames.workers, "begin_read", begin)
        many = db.query_df("SELECT * FROM t", parallel=2)
        monkeypatch.setattr(frames.workers, "begin_read", orig)
        assert seen == ["pending", "busy"] and len(calls) == 2
        writer.stdin.write("commit\n")
        writer.stdin.flush()
        assert writer.stdout.readline().split()[0] == "ok"
        after = db.query_df("SELECT * FROM t")
        assert len(after) == len(before) + 3 and after["v"].iloc[0] == "changed"
        pd.testing.assert_frame_equal(many, before, check_exact=True)
    finally:
        writer.stdin.close()
        writer.wait(60)


@pytest.mark.timeout(120)
def test_workers_that_cannot_take_a_read_lock_are_refused_at_once(tmp_path, monkeypatch):
    """Where the workers' read locks are not shared with the main connection's (here the
    unix-dotfile VFS, whose one lock file excludes every other connection; elsewhere a
    writer holding PENDING on a system whose locks are per connection), a worker that
    cannot begin reading does not wait out a busy timeout (before: 5 s, then "database is
    locked"): the fetch lets go of every lock and starts again, and is refused clearly when
    no attempt gets every worker reading. The connection is left as it was."""
    con = sqlnb.connect(f"file:{tmp_path / 'd.db'}?vfs=unix-dotfile", engine="sqlite", uri=True, timeout=30)
    try:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i, i) for i in range(50000)])
        con.commit()
        orig = frames.workers.begin_read
        busy = []

        def begin(w, *args):
            try:
                return orig(w, *args)
            except errors.BusyError:
                busy.append(w)
                raise

        monkeypatch.setattr(frames.workers, "begin_read", begin)
        with pytest.raises(frames.ParallelRefused, match="could not begin reading"):
            con.query_df("SELECT * FROM t", parallel=2)
        assert len(busy) == frames.parallel._MOMENT_TRIES and all(w.closed for w in busy)
        assert con.raw.autocommit and not _worker_threads()
        assert len(con.query_df("SELECT * FROM t")) == 50000
    finally:
        con.close()


def test_workers_closed_and_read_ended_when_joining_fails(db, monkeypatch):
    """An exception out of joining the workers (``workers.Crew.close``) still ends the main
    connection's read transaction and closes every worker connection."""
    import sqlite3

    conns = []
    orig_share, orig_close = frames.workers.share_settings, frames.workers.Crew.close

    def share(raw, mod, w):
        conns.append(w)
        return orig_share(raw, mod, w)

    def close(self, stop):
        orig_close(self, stop)
        raise RuntimeError("joining failed")

    monkeypatch.setattr(frames.workers, "share_settings", share)
    monkeypatch.setattr(frames.workers.Crew, "close", close)
    with pytest.raises(RuntimeError, match="joining failed"):
        db.query_df("SELECT * FROM t", parallel=2)
    assert len(conns) == 2 and all(w.closed for w in conns)
    assert db.raw.autocommit
    other = sqlite3.connect(db.raw.filename, timeout=0)  # no read lock is left: a write commits at once
    try:
        other.execute("INSERT INTO e VALUES (1)")
        other.commit()
    finally:
        other.close()


@pytest.mark.parametrize("op", [1000, 1001, 1005, 1009, 999, 1023, -1])
def test_db_config_flag_takes_only_the_listed_switches(db, op):
    """SQLITE_DBCONFIG_MAINDBNAME (1000) and LOOKASIDE (1001) take pointers, others must not
    be switched from here (load extension, reset database): ValueError, nothing called."""
    from sqlnb import _fast

    with pytest.raises(ValueError, match=str(op)):
        _fast.db_config_flag(db.raw, op)
    with pytest.raises(ValueError, match=str(op)):
        _fast.db_config_flag(db.raw, op, 1)
    assert _fast.db_config_flag(db.raw, 1019) == 0  # REVERSE_SCANORDER: read only
    with pytest.raises(ValueError, match="1019"):
        _fast.db_config_flag(db.raw, 1019, 1)


def test_fetch_steps_only_under_the_connection_lock(db):
    """Fetch.run takes the connection's lock; the stepping inside it is not callable from Python."""
    from sqlnb import _fast

    assert not hasattr(_fast.Fetch(), "_run")
    st, _ = db.raw.prepare(b"SELECT id FROM t WHERE id < 10", 0)
    try:
        f = _fast.Fetch()
        assert f.run(st) == "done" and f.nrows == 3
    finally:
        st.finalize()
