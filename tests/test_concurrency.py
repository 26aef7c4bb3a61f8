"""Concurrency: threads sharing a connection, another process writing, use after close.

Every scenario that could deadlock runs in a child process with a deadline, so a
hang (or a crash) is reported as a failure of that test instead of freezing the
run; the child prints one JSON line with what it saw.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import sqlnb
from sqlnb import errors

ROOT = str(Path(sqlnb.__file__).resolve().parent.parent)
WAL_ENGINES = ("sqlite", "system")  # bdb ignores journal_mode=WAL (see docs/guarantees.md)


def need_engine(name: str):
    info = {e.name: e for e in sqlnb.engines()}[name]
    if not info.available:
        pytest.skip(f"engine {name!r} unavailable: {info.why}")


def run_child(code: str, timeout: float = 120, cwd=None) -> dict:
    """Run ``code`` in a fresh interpreter importing this checkout's sqlnb; return its last JSON line."""
    env = {**os.environ, "PYTHONPATH": ROOT, "PYTHONFAULTHANDLER": "1"}
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                              text=True, timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"child did not finish in {timeout} s (deadlock?)\n{exc.stderr or ''}")
    assert proc.returncode == 0, f"child exited with {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- two threads, one connection ----------------------------------------------------------
def test_other_thread_refused_by_default(engine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "t.db"), engine=engine)
    con.execute("create table t(a)")
    cur = con.execute("select 1")
    seen = []

    def other():
        for call in (lambda: con.execute("select 1"), cur.fetchall, con.commit, con.cursor):
            try:
                call()
                seen.append(None)
            except BaseException as exc:  # noqa: BLE001 - we record whatever came
                seen.append(exc)

    th = threading.Thread(target=other)
    th.start()
    th.join()
    assert len(seen) == 4
    for exc in seen:
        assert isinstance(exc, errors.ProgrammingError), seen
        assert "same thread" in str(exc) and "check_same_thread=False" in str(exc)
    # the owner thread is unaffected
    assert cur.fetchall() == [(1,)]
    con.close()


HAMMER = """
    import json, sys, threading, sqlnb
    engine, path = sys.argv[1], sys.argv[2]
    con = sqlnb.connect(path, engine=engine, check_same_thread=False)
    con.execute("create table t(a integer, b text)")
    con.executemany("insert into t values (?, ?)", [(i, str(i) * 5) for i in range(5000)])
    con.commit()
    errs, counts = [], []

    def work(k):
        try:
            for j in range(25):
                cur = con.execute("select a, b from t where a % ? = 0 and a < 5000", (k + 1,))
                n = 0
                while True:
                    rows = cur.fetchmany(97)
                    if not rows:
                        break
                    n += len(rows)
                    assert all(r[1] == str(r[0]) * 5 for r in rows)
                counts.append((k, n))
                if j % 5 == 0:
                    con.execute("insert into t values (?, 'w')", (100000 + k * 100 + j,))
                    con.commit()
                one = con.execute("select count(*) from t where a < 5000").fetchone()
                assert one == (5000,), one
        except BaseException as exc:
            errs.append(repr(exc))

    ths = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    [th.start() for th in ths]
    [th.join() for th in ths]
    extra = con.execute("select count(*) from t where a >= 100000").fetchone()[0]
    con.close()
    print(json.dumps({"errs": errs, "counts": sorted(set(counts)), "extra": extra}))
"""


@pytest.mark.timeout(200)
def test_shared_connection_four_threads(engine, tmp_path):
    """check_same_thread=False: four threads query, fetch and write on one connection, serialized."""
    out = run_child(HAMMER.replace("sys.argv[1], sys.argv[2]", f"{engine!r}, {str(tmp_path / 'h.db')!r}"),
                    timeout=180)
    assert out["errs"] == []
    assert out["counts"] == [[k, len(range(0, 5000, k + 1))] for k in range(4)]
    assert out["extra"] == 4 * 5


RAW_HAMMER = """
    import json, threading, sqlnb
    from sqlnb import engines, errors
    mod = engines.get(ENGINE).load()
    # opened as sqlnb opens it: our SQLite without its own mutex (SQLITE_OPEN_NOMUTEX),
    # so sqlnb's per-connection lock is all that keeps the threads apart
    raw = mod.RawConnection(":memory:", 0x2 | 0x4 | (0x8000 if ENGINE == "sqlite" else 0))
    st, _ = raw.prepare(b"create table t(a)")
    st.run(); st.finalize()
    st, _ = raw.prepare(b"insert into t values (?)")
    for i in range(3000):
        st.bind((i,)); st.run()
    st.finalize()
    shared, _ = raw.prepare(b"select a, a * 2, 'x' || a from t")
    bad, ok = [], [0]
    stop, enough = threading.Event(), threading.Event()

    def hammer(k):
        # all four threads drive the SAME statement and their own ones, concurrently
        try:
            while not stop.is_set():
                try:
                    if k % 2:
                        shared.fetchmany(50)
                        shared.column_names()
                        if shared.step():
                            shared.row()
                        shared.reset()
                    else:
                        own, _ = raw.prepare(b"select sum(a) from t where a > ?")
                        own.bind((k,))
                        own.step()
                        assert own.row()[0] == sum(range(k + 1, 3000))
                        if k == 0:
                            own.finalize()
                        else:
                            del own   # finalized by deallocation, which takes the lock too
                        shared.bind(())
                    ok[0] += 1
                    if ok[0] >= 40:
                        enough.set()
                except errors.Error:
                    # only the closed-connection error is acceptable, after close()
                    if not raw.closed:
                        raise
                    return
        except BaseException as exc:
            bad.append(repr(exc))
            enough.set()

    ths = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    [th.start() for th in ths]
    enough.wait(300)     # (slow under valgrind)
    raw.close()          # while the others are mid-flight
    # each thread's next call meets the closed connection and returns; one that does not is a bug
    [th.join(60) for th in ths]
    stuck = sum(th.is_alive() for th in ths)
    stop.set()
    [th.join() for th in ths]
    after = []
    for call in (lambda: shared.fetchmany(1), shared.step, shared.row, shared.column_names,
                 lambda: shared.bind(()), shared.run, lambda: raw.prepare(b"select 1")):
        try:
            call()
            after.append("no error")
        except errors.ConnectionClosedError:
            after.append("closed")
        except BaseException as exc:
            after.append(repr(exc))
    shared.finalize(); shared.reset(); raw.close()   # idempotent, no crash
    print(json.dumps({"bad": bad, "ok": ok[0], "after": after, "stuck": stuck}))
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flavour", ["sqlite", "bdb"])
def test_raw_objects_four_threads_then_close(flavour):
    """RawConnection/RawStatement driven from 4 threads (one statement shared, others finalized or
    dropped), closed mid-flight: no crash, no hang."""
    need_engine(flavour)
    out = run_child(RAW_HAMMER.replace("ENGINE", repr(flavour)), timeout=100)
    assert out["bad"] == []
    assert out["ok"] >= 40
    assert out["stuck"] == 0
    assert out["after"] == ["closed"] * 7


@pytest.mark.timeout(60)
@pytest.mark.parametrize("flavour", ["sqlite", "bdb"])
def test_statement_dropped_while_another_thread_steps(flavour):
    """A statement deallocated while another thread holds the connection is finalized by that
    thread when it lets go, not under its feet (our SQLite has no mutex of its own)."""
    need_engine(flavour)
    mod = sqlnb.engines.get(flavour).load()
    raw = mod.RawConnection(":memory:", 0x2 | 0x4 | (0x8000 if flavour == "sqlite" else 0))
    for sql in (b"create table t(a)", b"insert into t values (1)", b"insert into t select a + 1 from t",
                *[b"insert into t select a + (select count(*) from t) from t"] * 7):
        st, _ = raw.prepare(sql)
        st.run()
        st.finalize()                            # t: 256 rows (bdb's 3.7 core has no WITH RECURSIVE)
    dropped, _ = raw.prepare(b"select a from t")
    assert dropped.step()                       # mid-result: a live read
    long_q, _ = raw.prepare(b"select count(*) from t x, t y, t z where z.a < 60")
    stepping, dropped_done, out = threading.Event(), threading.Event(), []

    def in_step():   # the progress report, called from inside sqlite3_step: the lock is held
        stepping.set()
        dropped_done.wait(30)

    raw.progress_callback = in_step
    raw.set_progress_report(0.001)

    def work():
        long_q.step()
        out.append(long_q.row()[0])

    th = threading.Thread(target=work)
    th.start()
    assert stepping.wait(30)
    del dropped
    waiting = raw.statements_awaiting_finalize
    dropped_done.set()
    th.join()
    raw.set_progress_report(0)
    assert out == [256 * 256 * 59]
    assert waiting == 1                          # handed to the stepping thread...
    assert raw.statements_awaiting_finalize == 0  # ...which finalized it when it let go
    long_q.finalize()
    raw.close()                                  # bdb's sqlite3_close refuses unfinalized statements
    assert raw.closed


EXPORT_AND_QUERY = """
    import json, threading, sqlnb
    import numpy as np, pandas as pd
    con = sqlnb.connect(DB, engine=ENGINE, check_same_thread=False)
    con.execute("create table s(a)")
    con.executemany("insert into s values (?)", [(i,) for i in range(1000)])
    con.commit()
    n = 50_000 if ENGINE == "bdb" else 300_000
    df = pd.DataFrame({"i": np.arange(n), "t": pd.Series([f"v{k % 97}" for k in range(n)], dtype="str")})
    errs, sums = [], []
    midway, queried = threading.Event(), threading.Event()

    class Midway:
        # converted in the middle of the first export (inside its transaction)
        def __index__(self):
            midway.set()
            return 0

    first = df.assign(o=pd.Series(np.arange(n), dtype=object))
    first.loc[n // 2, "o"] = Midway()

    def export():
        try:
            con.to_table(first, "t0")
            # the next exports start only once a query has gone through on the shared connection
            if not queried.wait(60):
                errs.append("no query ran within 60 s of the first export's middle")
            for k in (1, 2):
                con.to_table(df, f"t{k}")
        except BaseException as exc:
            errs.append(repr(exc))

    def query():
        try:
            if not midway.wait(60):
                errs.append("the first export never reached its middle")
            while th.is_alive():
                sums.append(con.query_df("select sum(a) as s from s")["s"][0])
                queried.set()
        except BaseException as exc:
            errs.append(repr(exc))

    th = threading.Thread(target=export)
    th.start()
    q = threading.Thread(target=query)
    q.start()
    th.join(); q.join()
    counts = [con.execute(f"select count(*), sum(i) from t{k}").fetchone() for k in range(3)]
    print(json.dumps({"errs": errs, "sums": sorted(set(int(x) for x in sums)), "queries": len(sums),
                      "counts": counts, "n": n}))
"""


@pytest.mark.timeout(200)
def test_export_and_queries_share_a_connection(engine, tmp_path):
    """check_same_thread=False: one thread runs to_table while another queries the same connection.
    The export's Cython loop holds the connection's lock per chunk, so they interleave safely."""
    code = EXPORT_AND_QUERY.replace("DB, engine=ENGINE", f"{str(tmp_path / 'e.db')!r}, engine={engine!r}")
    out = run_child(code.replace('ENGINE == "bdb"', f"{engine!r} == 'bdb'"), timeout=180)
    assert out["errs"] == []
    n = out["n"]
    assert out["counts"] == [[n, n * (n - 1) // 2]] * 3
    assert out["queries"] >= 1 and out["sums"] == [499500]


# --- use after close ---------------------------------------------------------------------
def test_connection_and_cursor_after_close(engine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "c.db"), engine=engine)
    con.execute("create table t(a)")
    con.executemany("insert into t values (?)", [(i,) for i in range(100)])
    con.commit()
    cur = con.execute("select a from t")
    assert cur.fetchone() == (0,)
    open_cur = con.cursor()
    con.close()
    with pytest.raises(errors.ConnectionClosedError):  # PEP 249: closing twice is an error too
        con.close()
    assert con.closed
    calls = [
        lambda: con.execute("select 1"), lambda: con.executemany("insert into t values (?)", [(1,)]),
        lambda: con.executescript("select 1;"), con.cursor, con.commit, con.rollback,
        lambda: con.in_transaction, lambda: con.total_changes, lambda: con.raw,
        cur.fetchone, cur.fetchall, lambda: cur.fetchmany(10), lambda: list(cur),
        lambda: open_cur.execute("select 1"),
    ]
    for call in calls:
        with pytest.raises(errors.ConnectionClosedError, match="closed database"):
            call()
    con.interrupt()  # harmless on a closed connection


@pytest.mark.parametrize("engine", ["sqlite", "bdb"])  # the stdlib adapter has no raw lifecycle
def test_raw_statement_after_raw_close(engine):
    """RawConnection.close finalizes live statements; using one later raises, never crashes."""
    need_engine(engine)
    raw = sqlnb.engines.get(engine).load().RawConnection(":memory:", 0x2 | 0x4)
    st, _ = raw.prepare(b"select 1 union all select 2 union all select 3")
    assert st.step() and st.row() == (1,)
    raw.close()
    assert st.finalized
    for call in (st.step, st.row, lambda: st.fetchmany(2), st.run, lambda: st.bind(()),
                 st.column_names, st.decltypes, st.param_names, lambda: st.readonly,
                 lambda: st.column_count, raw.changes, raw.errmsg, lambda: raw.prepare(b"select 1"),
                 lambda: raw.busy_timeout(1.0), lambda: raw.autocommit):
        with pytest.raises(errors.ConnectionClosedError):
            call()
    st.reset()
    st.finalize()
    raw.close()
    raw.interrupt()


# --- another process writes while the notebook reads (WAL) ----------------------------------
WRITER = """
    import sys, sqlnb
    engine, path, n, lockstep = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    con = sqlnb.connect(path, engine=engine)   # default busy timeout
    for b in range(n):
        # each transaction keeps the invariant: 10 rows per batch, total == 10 * batches
        cur = con.cursor()
        cur.execute("begin immediate")
        cur.executemany("insert into items(batch, v) values (?, ?)", [(b, i) for i in range(10)])
        cur.execute("update counter set n = n + 10")
        con.commit()
        if b < lockstep:
            # the first commits wait for the reader to have seen them, so it sees states in
            # between on any machine; the rest run freely, concurrently with its reads
            print(b, flush=True)
            sys.stdin.readline()
    con.close()
    print("writer done", flush=True)
"""


def _wal_db(engine, path):
    """A WAL database with the WRITER script's tables (counter at 0): ``(path, connection)``."""
    need_engine(engine)
    path = str(path)
    con = sqlnb.connect(path, engine=engine)
    assert con.execute("pragma journal_mode=wal").fetchone() == ("wal",)
    con.executescript("create table items(batch integer, v integer); create table counter(n integer);"
                      "insert into counter values (0);")
    return path, con


@pytest.mark.timeout(180)
@pytest.mark.parametrize("wal_engine", WAL_ENGINES)
def test_wal_reader_sees_consistent_snapshots(wal_engine, tmp_path):
    path, con = _wal_db(wal_engine, tmp_path / "wal.db")
    con.commit()
    batches, lockstep = 300, 3
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), wal_engine, path, str(batches), str(lockstep)],
        env={**os.environ, "PYTHONPATH": ROOT}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    reads, seen_growth, last = 0, set(), -1

    def read_once():
        nonlocal reads, last
        # one statement: its snapshot must hold the invariant
        n_rows, n_batches, counter = con.execute(
            "select count(*), count(distinct batch), (select n from counter) from items").fetchone()
        assert n_rows == 10 * n_batches == counter, (n_rows, n_batches, counter)
        # an explicit read transaction: two statements see the same snapshot
        cur = con.cursor()
        cur.execute("begin")
        a = cur.execute("select count(*) from items").fetchone()[0]
        rows = cur.execute("select batch, count(*) from items group by batch").fetchall()
        b = cur.execute("select n from counter").fetchone()[0]
        con.commit()
        assert a == b == sum(c for _, c in rows) and all(c == 10 for _, c in rows)
        assert n_rows >= last
        last = n_rows
        seen_growth.add(n_rows)
        reads += 1
        return n_rows

    try:
        for b in range(lockstep):
            line = writer.stdout.readline()
            assert line.strip() == str(b), (line, writer.stderr.read() if not line else "")
            assert read_once() == 10 * (b + 1)   # the writer waits: this is exactly its last commit
            writer.stdin.write("go\n")
            writer.stdin.flush()
        while True:
            done = writer.poll() is not None
            read_once()
            if done:
                break
        out, err = writer.communicate(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    assert "writer done" in out
    assert last == 10 * batches
    assert {10, 20, 30} <= seen_growth, sorted(seen_growth)[:10]
    con.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("wal_engine", WAL_ENGINES)
def test_wal_reader_with_open_cursor_does_not_block_writer(wal_engine, tmp_path):
    """A notebook cursor left half-fetched must not make another process's writes fail."""
    path, con = _wal_db(wal_engine, tmp_path / "wal2.db")
    cur = con.execute("select * from counter")  # open read, never finished
    assert cur.fetchone() == (0,)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(WRITER), wal_engine, path, "20", "0"],
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr
    # the half-read cursor still sees its snapshot; a new statement sees the writes
    assert cur.fetchall() == []
    assert con.execute("select n from counter").fetchone() == (200,)
    con.close()
