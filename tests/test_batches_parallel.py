"""query_batches(parallel=N) (issue 25, item 4): the parallel fetch feeds the stream, in rowid
order, with a bounded number of pieces held; refused where query_df(parallel=N) is refused."""
from __future__ import annotations

import gc
import threading

import pyarrow as pa
import pytest

import sqlnb
from sqlnb import errors, frames
from sqlnb.frames import StreamSchemaError
from tests.test_fetch import MIXES, NULLS


def _worker_threads():
    return [t for t in threading.enumerate() if t.name.startswith("sqlnb-parallel-fetch")]


def _outcome(reader):
    """Every batch a reader hands out, and the error that ended it (None: the end)."""
    batches = []
    try:
        for b in reader:
            batches.append(b)
    except StreamSchemaError as exc:
        return batches, (exc.column, exc.batch, exc.row, exc.found)
    return batches, None


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "p.db"
    con = sqlnb.connect(str(path), engine="sqlite")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v, s TEXT, f REAL, b BLOB)")
    rows = [(i * 3, i if i % 5 else f"t{i}", f"s{i}" if i % 7 else None, i / 4, bytes([i % 256]) * (i % 3))
            for i in range(1, 20001)]  # rowids 3, 6, 9, ...: every range has gaps
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
    con.execute("CREATE TABLE d (n INTEGER, x REAL, s TEXT)")  # dense rowids 1..5000
    con.executemany("INSERT INTO d VALUES (?, ?, ?)", [(i, i / 2, f"x{i}") for i in range(5000)])
    con.execute("CREATE TABLE e (x)")
    con.commit()
    yield con
    con.close()
    assert not _worker_threads()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mix", sorted(MIXES))
def test_parallel_stream_equals_query_arrow_on_every_mix(tmp_path, mix):
    """Every dtype mix of the fetcher's tests, with every NULL pattern, in a table whose rowids
    have gaps: the concatenated parallel stream is query_arrow's table (read ahead whole: the
    exact schema), and with a one-batch read-ahead it is the serial stream's (same batches
    where the rowids are dense, same StreamSchemaError at the same batch)."""
    con = sqlnb.connect(str(tmp_path / "m.db"), engine="sqlite")
    con.execute("CREATE TABLE g (v)")
    con.execute("CREATE TABLE d (v)")
    for nulls in sorted(NULLS):
        values = NULLS[nulls](list(MIXES[mix]))
        con.execute("DELETE FROM g")
        con.execute("DELETE FROM d")
        con.executemany("INSERT INTO g (rowid, v) VALUES (?, ?)", [(7 + 5 * i, v) for i, v in enumerate(values)])
        con.executemany("INSERT INTO d (rowid, v) VALUES (?, ?)", [(1 + i, v) for i, v in enumerate(values)])
        con.commit()
        for sql in ("SELECT v, typeof(v) AS k, rowid AS r FROM g",
                    "SELECT rowid AS r, v FROM g WHERE rowid <> 12"):
            want = con.query_arrow(sql)
            for n, rows in ((2, 1), (3, 2), (2, 100)):
                got = con.query_batches(sql, rows=rows, parallel=n, lookahead=len(values) + 1).read_all()
                assert got.schema == want.schema and got.equals(want), (mix, nulls, sql, n, rows)
        sql = "SELECT v, typeof(v) AS k, rowid AS r FROM d"
        for n, rows in ((2, 1), (3, 2), (2, 3)):
            par = _outcome(con.query_batches(sql, rows=rows, parallel=n))
            ser = _outcome(con.query_batches(sql, rows=rows))
            assert par[1] == ser[1] and len(par[0]) == len(ser[0]), (mix, nulls, n, rows, par[1], ser[1])
            assert all(a.equals(b) for a, b in zip(par[0], ser[0])), (mix, nulls, n, rows)
    con.close()
    assert not _worker_threads()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("sql, params", [
    ("SELECT * FROM t", None),
    ("SELECT id, s, v FROM t AS a WHERE a.v > ? -- comment", (100,)),
    ("SELECT s, b FROM main.t WHERE s LIKE :p", {"p": "s1%"}),
    ("SELECT rowid, n, x, s FROM d", None),
    ("SELECT id, f FROM t WHERE id > 59000", None),
])
def test_parallel_stream_in_rowid_order(db, n, sql, params):
    """Many pieces (rows=500) over gaps, a WHERE clause, parameters: the stream read ahead whole
    equals query_arrow (row order included), and with the default read-ahead the same values."""
    want = db.query_arrow(sql, params)
    got = db.query_batches(sql, params, rows=500, parallel=n, lookahead=10 ** 6).read_all()
    assert got.equals(want)
    reader = db.query_batches(sql, params, rows=500, parallel=n, types={"v": "mixed"} if "v" in want.column_names else None)
    batches = list(reader)
    assert all(b.num_rows <= 500 for b in batches)
    got = pa.Table.from_batches(batches, schema=reader.schema)
    assert got.num_rows == want.num_rows
    for name in want.column_names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


@pytest.mark.timeout(120)
def test_pieces_held_never_exceed_twice_the_workers(db, monkeypatch):
    """The consumer reads one batch and stops: the workers claim pieces until 2N are held (claimed
    and not handed out) and then wait, each piece holding at most _PIECE_BATCHES batches; the
    counts are observed through the stream's hook, under its lock. Reading on, the bound holds
    to the end and the rows are all there, in order."""
    seen = []
    full = threading.Event()
    held_when_full = []

    def watch(event, pieces, batches):
        seen.append((event, pieces, batches))
        if event == "full":
            held_when_full.append(pieces)
            full.set()

    monkeypatch.setattr(frames.parallel, "_stream_watch", watch)
    n = 2
    reader = db.query_batches("SELECT n, x FROM d", rows=100, parallel=n)  # 50 pieces of 100 rowids
    first = reader.read_next_batch()
    assert first.column("n").to_pylist() == list(range(100))
    assert full.wait(60)  # the workers ran ahead until the window was full, and wait
    assert held_when_full and max(held_when_full) == 2 * n
    rest = pa.Table.from_batches([first, *reader], schema=reader.schema)
    assert rest.column("n").to_pylist() == list(range(5000))
    assert max(p for _e, p, _b in seen) <= 2 * n
    assert max(b for _e, _p, b in seen) <= 2 * n * frames.parallel._PIECE_BATCHES
    del reader
    gc.collect()
    assert not _worker_threads()


@pytest.mark.timeout(120)
def test_a_piece_wider_than_a_batch_is_read_a_batch_at_a_time(db, monkeypatch):
    """A sparse rowid span (rowids up to 2**62) cut into few pieces: each piece holds many more
    rows than a batch; its worker reads it ``rows`` at a time and waits once it holds
    _PIECE_BATCHES batches. The stream equals query_arrow."""
    db.execute("INSERT INTO d (rowid, n, x, s) VALUES (4611686018427387904, -1, -1.0, 'far')")
    db.commit()
    monkeypatch.setattr(frames.parallel, "_STREAM_MAX_PIECES", 4)
    most = []
    monkeypatch.setattr(frames.parallel, "_stream_watch", lambda e, p, b: most.append(b))
    sql = "SELECT rowid AS r, n, x, s FROM d"
    want = db.query_arrow(sql)
    reader = db.query_batches(sql, rows=64, parallel=2)
    batches = list(reader)
    assert pa.Table.from_batches(batches, schema=reader.schema).equals(want)
    assert all(b.num_rows <= 64 for b in batches) and len(batches) >= 5001 // 64
    assert max(most) <= 2 * 2 * frames.parallel._PIECE_BATCHES


@pytest.mark.timeout(120)
def test_abandoned_parallel_reader_stops_its_workers(db, tmp_path):
    """Half-way: the workers' read transactions hold the file's shared lock (rollback journal),
    so another connection cannot commit. The reader freed: no worker thread is left, every
    worker statement is finalized and connection closed, and the other connection commits."""
    path = tmp_path / "p.db"
    reader = db.query_batches("SELECT n, s FROM d", rows=100, parallel=2)
    assert reader.read_next_batch().num_rows == 100
    assert len(_worker_threads()) == 2
    # (a connection of the same library: POSIX locks of one process are shared across libraries)
    other = sqlnb.connect(str(path), engine="sqlite", timeout=0.05)
    with pytest.raises(errors.OperationalError, match="locked"):
        other.execute("INSERT INTO e VALUES (1)")
        other.commit()
    other.rollback()
    del reader
    gc.collect()
    assert not _worker_threads()
    other.execute("INSERT INTO e VALUES (2)")
    other.commit()
    assert db.execute("SELECT x FROM e").fetchall() == [(2,)]
    # refused after the workers' connections were opened, before any thread started: closed too
    with pytest.raises(ValueError, match="not in the result"):
        db.query_batches("SELECT n FROM d", rows=100, parallel=2, types={"zz": "int"})
    other.execute("INSERT INTO e VALUES (3)")
    other.commit()
    other.close()
    assert not _worker_threads()


@pytest.mark.timeout(120)
def test_interrupt_and_time_limit_stop_the_stream(db, monkeypatch):
    """interrupt() between two batches: the next read raises InterruptError, the workers are
    joined and the connection works. The time limit covers the whole stream: on a clock moved
    past it after the first batch, the next read raises QueryTimeoutError."""
    reader = db.query_batches("SELECT n FROM d", rows=100, parallel=2)
    assert reader.read_next_batch().num_rows == 100
    db.interrupt()
    with pytest.raises(errors.InterruptError):
        reader.read_all()
    del reader
    gc.collect()
    assert not _worker_threads()
    clock = {"t": 1000.0}
    monkeypatch.setattr(frames.parallel, "_clock", lambda: clock["t"])
    db.statement_timeout = 5
    reader = db.query_batches("SELECT n FROM d", rows=100, parallel=2)
    assert reader.read_next_batch().num_rows == 100
    clock["t"] += 10
    with pytest.raises(errors.QueryTimeoutError):
        reader.read_all()
    del reader
    gc.collect()
    db.statement_timeout = None
    assert not _worker_threads()
    assert db.query_batches("SELECT n FROM d", rows=100, parallel=2).read_all().num_rows == 5000


@pytest.mark.timeout(120)
def test_error_in_a_later_piece_and_schema_error(db):
    """A row that fails in a later piece: the batches before it are handed out intact, then its
    error (not the other workers' interruption). A column that turns to TEXT in a later piece:
    the same StreamSchemaError as the serial stream's, at the same batch."""
    reader = db.query_batches("SELECT CASE WHEN id > 45000 THEN json('{') ELSE id END AS c FROM t",
                              rows=1000, parallel=2)
    got = []
    with pytest.raises(sqlnb.OperationalError, match="malformed JSON"):
        for b in reader:
            got.extend(b.column("c").to_pylist())
    assert got == list(range(3, 45001, 3))[:len(got)] and len(got) >= 14000
    del reader
    gc.collect()
    assert not _worker_threads()
    sql = "SELECT CASE WHEN n < 3000 THEN n ELSE 'x' || n END AS c FROM d"
    par = _outcome(db.query_batches(sql, rows=100, parallel=3))
    ser = _outcome(db.query_batches(sql, rows=100))
    assert par[1] == ser[1] == ("c", 30, 3000, ("text",))
    assert all(a.equals(b) for a, b in zip(par[0], ser[0])) and len(par[0]) == 30


@pytest.mark.parametrize("sql, why", [
    ("SELECT * FROM t ORDER BY rowid", "ORDER"),
    ("SELECT count(*) FROM t", "combines rows|COVERING INDEX"),
    ("SELECT * FROM t LIMIT 5", "LIMIT"),
    ("SELECT * FROM t; SELECT 1", "one statement"),
    ("SELECT 1", "no table"),
])
def test_unsplittable_queries_are_refused_as_query_df_refuses(db, sql, why):
    """What query_df(parallel=N) refuses, the stream refuses with the same error (no fallback)."""
    with pytest.raises(frames.ParallelRefused, match=why) as df_exc:
        db.query_df(sql, parallel=2)
    with pytest.raises(frames.ParallelRefused, match=why) as st_exc:
        db.query_batches(sql, parallel=2)
    assert str(st_exc.value) == str(df_exc.value)
    with pytest.raises(ValueError, match="parallel"):
        db.query_batches("SELECT * FROM t", parallel=-1)
    assert not _worker_threads()


def test_empty_table_and_parallel_one_stream_serially(db):
    """An empty table (query_df falls back to the serial fetch): the serial stream, equal to
    query_arrow; parallel=1 is the ordinary stream."""
    want = db.query_arrow("SELECT * FROM e")
    assert db.query_batches("SELECT * FROM e", parallel=2).read_all().equals(want)
    assert db.query_batches("SELECT n FROM d", parallel=1).read_all().equals(db.query_arrow("SELECT n FROM d"))


def test_system_and_bdb_are_refused_as_query_df(tmp_path):
    """The engines without a parallel fetch refuse the parallel stream as they refuse query_df."""
    from tests.conftest import need_engine

    for engine in ("system", "bdb"):
        need_engine(engine)
        con = sqlnb.connect(str(tmp_path / f"{engine}.db"), engine=engine)
        try:
            con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
            con.executemany("INSERT INTO t VALUES (?, ?)", [(i, i) for i in range(100)])
            con.commit()
            with pytest.raises(frames.ParallelRefused, match=engine) as df_exc:
                con.query_df("SELECT * FROM t", parallel=2)
            with pytest.raises(frames.ParallelRefused, match=engine) as st_exc:
                con.query_batches("SELECT * FROM t", parallel=2)
            assert str(st_exc.value) == str(df_exc.value)
            assert con.query_batches("SELECT * FROM t").read_all().num_rows == 100  # and usable
        finally:
            con.close()


@pytest.mark.timeout(120)
def test_ctrl_c_while_the_stream_waits_for_a_piece(db, monkeypatch):
    """Every worker stalls binding its piece after the first ones; a real SIGINT arrives while the
    reader waits for the next piece: KeyboardInterrupt, every worker joined (the stalled ones are
    released by the stop request), and the connection works."""
    import signal

    orig = frames.parallel._bind_with_range
    stalled = threading.Event()
    stopped = threading.Event()
    main = threading.main_thread().ident
    count = {"n": 0}
    lock = threading.Lock()

    def bind(st, params, lo, hi):
        with lock:
            count["n"] += 1
            late = count["n"] > 4
        if late:
            stalled.set()
            assert stopped.wait(60)
        orig(st, params, lo, hi)

    orig_request = frames.workers.Stop.request

    def request(self):
        orig_request(self)
        stopped.set()

    def other():
        assert stalled.wait(60)
        signal.pthread_kill(main, signal.SIGINT)

    monkeypatch.setattr(frames.parallel, "_bind_with_range", bind)
    monkeypatch.setattr(frames.workers.Stop, "request", request)
    helper = threading.Thread(target=other)
    reader = db.query_batches("SELECT n FROM d", rows=100, parallel=2)
    with pytest.raises(KeyboardInterrupt):
        # pieces 0-3 (100 rows each) were bound, piece 4 never will be; the reader holds one
        # batch ahead (whether a batch is the last), so three can be read without waiting
        for k in range(3):
            assert reader.read_next_batch().column("n")[0].as_py() == 100 * k
        helper.start()  # the SIGINT comes once a worker stalls: the reader waits for piece 4 by then
        for _b in reader:  # (read_all would install pyarrow's own SIGINT handling around the read)
            pass
    helper.join()
    del reader
    gc.collect()
    assert not _worker_threads()
    monkeypatch.setattr(frames.parallel, "_bind_with_range", orig)
    assert db.query_batches("SELECT n FROM d", rows=100, parallel=2).read_all().num_rows == 5000


def test_write_query_streams_a_parallel_read_into_a_file(db, tmp_path):
    """``export.write_query(..., parallel=N)``: the file holds the serial result, in rowid order."""
    import pyarrow.parquet as pq

    from sqlnb import export

    sql = "SELECT * FROM d"  # (t has a mixed column, which Parquet refuses)
    written = export.write_query(db, sql, tmp_path / "out.parquet", parallel=2, rows=1000)
    assert written.rows == db.query_arrow(sql).num_rows
    assert pq.read_table(written.path).equals(db.query_arrow(sql))
    assert _worker_threads() == []
