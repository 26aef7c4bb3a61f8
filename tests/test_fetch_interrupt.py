"""Stopping a long fetch: interrupt() from another thread, Ctrl-C (SIGINT), time limits.
Each must leave the connection usable and free the buffers."""
from __future__ import annotations

import signal
import threading
import time

import pytest

import sqlnb
from sqlnb import errors

# a slow statement that produces rows all along (text too, so every buffer kind is in use);
# a cross join rather than a recursive CTE so the bdb engine's 3.7 core runs it too
SLOW = ("SELECT a.x, a.x * 0.5 AS h, a.s || b.s AS s, CASE WHEN b.x % 7 THEN b.x END AS n "
        "FROM nums a, nums b, nums c")


def connect(path, engine, **kw):
    con = sqlnb.connect(str(path), engine=engine, **kw)
    con.execute("CREATE TABLE nums (x INTEGER, s TEXT)")
    con.executemany("INSERT INTO nums VALUES (?, ?)", [(i, f"r{i}") for i in range(1000)])
    con.commit()
    return con


class _signal_later:
    """Call ``func(*args)`` from another thread once the fetch on ``con`` is under way.

    "Under way" is an event, not a delay: the fetch has published at least ``rows`` rows in
    ``raw.rows_seen`` (polled, with a generous 60 s bound). ``cancel()`` stops the thread.
    """

    def __init__(self, con, func, *args, rows=2048):
        self.stop = threading.Event()
        raw = con.raw  # (taken here: the connection itself may refuse other threads)
        raw.rows_seen = 0

        def run():
            deadline = time.monotonic() + 60
            while raw.rows_seen < rows and time.monotonic() < deadline:
                if self.stop.wait(0.001):
                    return
            if not self.stop.is_set():
                func(*args)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def cancel(self):
        self.stop.set()
        self.thread.join()


def _usable(con):
    df = con.query_df("SELECT 41 + 1 AS v")
    assert df["v"].tolist() == [42]
    con.execute("CREATE TABLE IF NOT EXISTS after (x)")
    con.execute("INSERT INTO after VALUES (1)")
    con.commit()
    assert con.execute("SELECT count(*) FROM after").fetchone()[0] >= 1


@pytest.mark.timeout(60)
def test_interrupt_from_another_thread(engine, tmp_path):
    con = connect(tmp_path / "i.db", engine, check_same_thread=False)
    timer = _signal_later(con, con.interrupt)
    t0 = time.monotonic()
    try:
        with pytest.raises(errors.OperationalError) as info:
            con.query_df(SLOW)
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 30
    assert isinstance(info.value, errors.InterruptError) and info.value.result_code == 9
    _usable(con)
    con.close()


@pytest.mark.timeout(60)
def test_ctrl_c_mid_fetch_raises_keyboardinterrupt(engine, tmp_path):
    """SIGINT (the notebook's interrupt button) stops the step loop through the progress handler."""
    con = connect(tmp_path / "k.db", engine)
    timer = _signal_later(con, signal.pthread_kill, threading.get_ident(), signal.SIGINT)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            con.query_df(SLOW)
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 30
    _usable(con)
    con.close()


@pytest.mark.timeout(60)
def test_ctrl_c_during_cursor_fetch_df(tmp_path):
    con = connect(tmp_path / "kc.db", "sqlite")
    cur = con.execute(SLOW)
    timer = _signal_later(con, signal.pthread_kill, threading.get_ident(), signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            cur.fetch_df()
    finally:
        timer.cancel()
    _usable(con)


@pytest.mark.timeout(60)
def test_statement_timeout_stops_fetch(engine, tmp_path):
    con = connect(tmp_path / "t.db", engine, statement_timeout=0.5)
    with pytest.raises(errors.QueryTimeoutError) as info:
        con.query_df(SLOW)
    assert info.value.result_code == 9 and "time limit of 0.5 s" in str(info.value)
    con.statement_timeout = None
    _usable(con)
    con.close()


@pytest.mark.timeout(120)
def test_repeated_interrupts_do_not_leak(tmp_path):
    """Many interrupted fetches: peak memory stays bounded (buffers are freed each time)."""
    psutil = pytest.importorskip("psutil")
    con = connect(tmp_path / "leak.db", "sqlite", check_same_thread=False)
    proc = psutil.Process()

    def once():
        t = _signal_later(con, con.interrupt)
        try:
            with pytest.raises(errors.OperationalError):
                con.query_df(SLOW)
        finally:
            t.cancel()

    once()
    base = proc.memory_info().rss
    for _ in range(8):
        once()
    grown = proc.memory_info().rss - base
    assert grown < 60 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 8 interrupted fetches"
    _usable(con)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("compiled", ["sqlite", "bdb"])
def test_compiled_core_builds_stop_errors_through_errors_module(compiled, tmp_path, monkeypatch):
    """The core has no error text of its own for a stopped statement: the time limit comes from
    errors.timeout_error and interrupt() from errors.interrupted, on the row-by-row step and the
    columnar fetch alike."""
    from tests.conftest import need_engine

    need_engine(compiled)
    made = []
    real_timeout, real_interrupted = errors.timeout_error, errors.interrupted
    monkeypatch.setattr(errors, "timeout_error", lambda s, sql=None: made.append(("timeout", s)) or real_timeout(s, sql))
    monkeypatch.setattr(errors, "interrupted", lambda sql=None: made.append("interrupted") or real_interrupted(sql))
    con = connect(tmp_path / "c.db", compiled, check_same_thread=False)
    con.statement_timeout = 0.25
    with pytest.raises(errors.QueryTimeoutError):
        con.query_df(SLOW)  # the columnar fetch
    assert made == [("timeout", 0.25)]
    if compiled == "sqlite":  # (bdb's cursor buffers every row first, and its 3.7 core calls the
        # progress handler per step call only: cheap rows there are bounded by the fetch loop's check)
        with pytest.raises(errors.QueryTimeoutError):
            con.execute(SLOW).fetchall()  # RawStatement.step
        assert made[-1] == ("timeout", 0.25)
    con.statement_timeout = None
    made.clear()
    timer = _signal_later(con, con.interrupt)
    try:
        with pytest.raises(errors.InterruptError):
            con.query_df(SLOW)
    finally:
        timer.cancel()
    assert made == ["interrupted"]
    _usable(con)
    con.close()


@pytest.mark.parametrize("how", ["fetchall", "query_df", "fetchone"])
def test_ctrl_c_lost_by_python_still_stops_the_statement(engine, tmp_path, how):
    """Ctrl-C whose KeyboardInterrupt Python loses: the handler runs inside code that swallows it
    (as a weakref callback or __del__ run by the garbage collector does: "Exception ignored in").
    The row function below plays that code at its 3,000th call, with the SIGINT handler that is
    installed while the statement runs. The statement stops with KeyboardInterrupt all the same,
    far from its 10^9 rows (it would run for hours), and the connection answers afterwards."""
    from sqlnb import _sigint

    con = connect(tmp_path / "l.db", engine)
    calls, seen = [0], []

    def row(x):
        calls[0] += 1
        if calls[0] == 3000:
            handler = signal.getsignal(signal.SIGINT)
            seen.append(handler)
            try:
                handler(signal.SIGINT, None)
            except KeyboardInterrupt:
                pass   # swallowed, as Python swallows it in a weakref callback
        return x

    con.create_function("row", 1, row)
    sql = "SELECT row(a.x), b.s FROM nums a, nums b, nums c"
    with pytest.raises(KeyboardInterrupt):
        if how == "fetchall":
            con.execute(sql).fetchall()
        elif how == "query_df":
            con.query_df(sql)
        else:
            cur = con.execute(sql)
            while cur.fetchone() is not None:
                pass
    assert seen == [_sigint._handler]   # sqlnb's counting handler was the one Python ran
    assert calls[0] < 100_000
    assert con.execute("SELECT count(*) FROM nums").fetchone() == (1000,)
    con.close()


def test_a_handler_of_the_users_is_left_alone(engine, tmp_path):
    """SIGINT handled by the user's own handler (not Python's default): sqlnb neither replaces it nor
    counts it, and the statement runs to its end."""
    con = connect(tmp_path / "u.db", engine)
    got = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        def row(x):
            if x == 500:
                signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
            return x

        con.create_function("row", 1, row)
        assert con.execute("SELECT count(row(a.x)) FROM nums a, nums b").fetchone() == (1_000_000,)
        assert got and signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, old)
    con.close()
