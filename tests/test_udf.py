"""User-defined functions, aggregates, window functions and collations (issue #22, docs/functions.md).

The stdlib ``sqlite3`` is the oracle: the same calls on both give the same rows and the same
exception classes, on every engine; where sqlnb deliberately says more (the function's name in the
message, the exception as ``__cause__``, a collation's exception reported) the test says so.
"""
from __future__ import annotations

import datetime
import signal
import sqlite3
import threading

import pytest

import sqlnb
from sqlnb import errors

N_BIG = 1_000_000


def oracle():
    return sqlite3.connect(":memory:")


def same_rows(con, ref, sql, params=()):
    got = con.execute(sql, params).fetchall()
    want = ref.execute(sql, params).fetchall()
    assert got == want, sql
    return got


def thousand(con):
    """Table k: 1,000 rows x = 1..1000 (k a, k b: a million rows on every engine, bdb's core has no CTE)."""
    con.execute("CREATE TABLE k(x INTEGER)")
    con.executemany("INSERT INTO k VALUES (?)", [(i,) for i in range(1, 1001)])
    con.commit()


def letters(con):
    con.execute("CREATE TABLE l(x TEXT)")
    con.executemany("INSERT INTO l VALUES (?)", [("a",), ("c",), ("b",)])
    con.commit()


def has_window(con):
    return con.backend.has("window_udf")


# --- scalar functions ---------------------------------------------------------------------------
def test_scalar_matches_stdlib(con):
    ref = oracle()
    for c in (con, ref):
        c.create_function("inc", 1, lambda x: x + 1)
        c.create_function("nargs", -1, lambda *a: len(a))
        c.create_function("show", 1, lambda x: f"{type(x).__name__}:{x!r}")
    same_rows(con, ref, "SELECT inc(41), inc(1.5), nargs(), nargs(1, 2, 3)")
    same_rows(con, ref, "SELECT show(NULL), show(1), show(2.5), show('é'), show(x'00ff')")


@pytest.mark.parametrize("value", [None, 0, -1, 2**63 - 1, -2**63, 1.5, float("inf"), "", "héllo",
                                   b"", b"\x00\xff", bytearray(b"ab"), memoryview(b"cd"), True])
def test_every_return_type(con, value):
    ref = oracle()
    for c in (con, ref):
        c.create_function("v", 0, lambda: value)
    same_rows(con, ref, "SELECT v(), typeof(v())")


def test_nan_result_is_null(con):
    con.create_function("nan", 0, lambda: float("nan"))
    assert con.execute("SELECT nan() IS NULL").fetchone() == (1,)


def test_result_by_the_bind_rule(con):
    # a deliberate difference: the stdlib refuses a date result; sqlnb binds it as ISO text
    con.create_function("d", 0, lambda: datetime.date(2024, 2, 29))
    assert con.execute("SELECT d()").fetchone() == ("2024-02-29",)


def test_null_and_blob_arguments(con):
    seen = []
    con.create_function("see", 2, lambda a, b: seen.append((a, b)) or len(seen))
    con.execute("CREATE TABLE t(a, b)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(None, b"\x00\x01"), (b"", None), (b"\xff" * 1000, 7)])
    con.commit()
    assert con.execute("SELECT see(a, b) FROM t ORDER BY rowid").fetchall() == [(1,), (2,), (3,)]
    assert seen == [(None, b"\x00\x01"), (b"", None), (b"\xff" * 1000, 7)]


def test_raising_function_names_it_with_cause(con):
    ref = oracle()
    def bad(x):
        raise ZeroDivisionError("no thanks")
    for c in (con, ref):
        c.create_function("bad", 1, bad)
    with pytest.raises(sqlite3.OperationalError):
        ref.execute("SELECT bad(1)").fetchall()
    with pytest.raises(errors.OperationalError) as info:
        con.execute("SELECT bad(1)").fetchall()
    assert "bad" in str(info.value) and "ZeroDivisionError" in str(info.value)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert con.execute("SELECT 1").fetchone() == (1,)   # the connection stays usable


def test_raising_function_in_the_middle_of_a_fetch(con):
    con.execute("CREATE TABLE t(x)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5000)])
    con.commit()
    def f(x):
        if x == 4000:
            raise ValueError("row 4000")
        return x
    con.create_function("f", 1, f)
    with pytest.raises(errors.OperationalError) as info:
        con.execute("SELECT f(x) FROM t").fetchall()   # (rowid order: from a fetch, or the bdb engine's buffer)
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(errors.OperationalError) as info:
        con.query_df("SELECT f(x) FROM t ORDER BY x")
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("make", [lambda: 2**64, lambda: -2**63 - 1])
def test_int_too_large(con, make):
    ref = oracle()
    for c in (con, ref):
        c.create_function("big", 0, make)
    with pytest.raises(sqlite3.DataError):
        ref.execute("SELECT big()").fetchall()
    with pytest.raises(errors.DataError) as info:
        con.execute("SELECT big()").fetchall()
    assert isinstance(info.value.__cause__, OverflowError)


@pytest.mark.parametrize("value", ["x" * 200, b"x" * 200])
def test_value_over_the_length_limit(con, value):
    ref = oracle()
    ref.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 100)
    con.setlimit(sqlnb.SQLITE_LIMIT_LENGTH, 100)
    for c in (con, ref):
        c.create_function("long", 0, lambda: value)
    with pytest.raises(sqlite3.DataError):
        ref.execute("SELECT long()").fetchall()
    with pytest.raises(errors.DataError):
        con.execute("SELECT long()").fetchall()


def test_unsupported_result_type(con):
    ref = oracle()
    for c in (con, ref):
        c.create_function("obj", 0, object)
    with pytest.raises(sqlite3.OperationalError):
        ref.execute("SELECT obj()").fetchall()
    with pytest.raises(errors.OperationalError) as info:
        con.execute("SELECT obj()").fetchall()
    assert isinstance(info.value.__cause__, TypeError)  # BindError: the bind rule refused it


def test_keyboard_interrupt_inside_a_function(con):
    def f(x):
        if x == 500:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C lands while the function runs
        return x
    con.create_function("f", 1, f)
    thousand(con)
    with pytest.raises(KeyboardInterrupt):
        con.execute("SELECT sum(f(x)) FROM k").fetchall()
    assert con.execute("SELECT f(3)").fetchone() == (3,)


def test_interrupt_a_million_calls(con):
    """con.interrupt() from another thread while a UDF runs on row 500,000 of 1,000,000:
    stalled at a known point (the function waits until the interrupt was sent)."""
    started, sent = threading.Event(), threading.Event()
    calls = [0]

    def f(x):
        calls[0] += 1
        if calls[0] == N_BIG // 2:
            started.set()
            assert sent.wait(60)
        return x

    con.create_function("f", 1, f)
    thousand(con)

    def stopper():
        assert started.wait(60)
        con.interrupt()
        sent.set()

    t = threading.Thread(target=stopper)
    t.start()
    try:
        with pytest.raises(errors.OperationalError) as info:
            con.execute("SELECT sum(f(a.x * 1000 + b.x)) FROM k a, k b").fetchall()  # N_BIG rows
    finally:
        t.join(60)
    assert info.value.result_code == 9  # SQLITE_INTERRUPT
    assert N_BIG // 2 <= calls[0] < N_BIG
    calls[0] = 0
    assert con.execute("SELECT f(41) + 1").fetchone() == (42,)  # usable, the function too


def test_deterministic(con):
    con.execute("CREATE TABLE t(x)")
    if con.backend.version_tuple() < (3, 9):   # (bdb's 3.7 core: no flag, no expression indexes)
        with pytest.raises(errors.NotSupportedError):
            con.create_function("twice", 1, lambda x: 2 * x, deterministic=True)
        return
    ref = oracle()
    ref.execute("CREATE TABLE t(x)")
    for c, err in ((con, errors.OperationalError), (ref, sqlite3.OperationalError)):
        c.create_function("rnd", 1, lambda x: 2 * x)
        with pytest.raises(err):
            c.execute("CREATE INDEX bad ON t(rnd(x))")
        c.create_function("twice", 1, lambda x: 2 * x, deterministic=True)
        c.execute("CREATE INDEX good ON t(twice(x))")
        c.execute("INSERT INTO t VALUES (21)")
    same_rows(con, ref, "SELECT x FROM t WHERE twice(x) = 42")


def test_replace_and_remove(con):
    con.create_function("f", 0, lambda: 1)
    con.create_function("f", 0, lambda: 2)
    assert con.execute("SELECT f()").fetchone() == (2,)
    con.create_function("f", 0, None)
    with pytest.raises(errors.OperationalError):
        con.execute("SELECT f()").fetchall()


def test_bad_registrations(con):
    ref = oracle()
    for c, err in ((con, errors.OperationalError), (ref, sqlite3.OperationalError)):
        with pytest.raises(err):
            c.create_function("f", 200, len)
        with pytest.raises(TypeError):
            c.create_function(5, 1, len)
        with pytest.raises(TypeError):
            c.create_collation("z", 5)
    with pytest.raises(TypeError):  # sqlnb checks at once (the stdlib fails at the first call)
        con.create_function("f", 1, 5)


def test_function_inside_a_function(con):
    con.execute("CREATE TABLE t(x)")
    con.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    con.commit()
    con.create_function("count_t", 0, lambda: con.execute("SELECT count(*) FROM t").fetchone()[0])
    assert con.execute("SELECT count_t() + x FROM t ORDER BY x").fetchall() == [(3,), (4,)]


# --- read-only modes -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["ro", "ro-scratch"])
def test_functions_work_read_only_and_writes_stay_refused(engine, tmp_path, mode):
    path = str(tmp_path / "ro.db")
    with sqlnb.connect(path, engine=engine) as w:
        w.execute("CREATE TABLE t(x)")
        w.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
    w.close()
    con = sqlnb.connect(path, engine=engine, mode=mode)
    try:
        con.create_function("sq", 1, lambda x: x * x)
        assert con.execute("SELECT sum(sq(x)) FROM t").fetchone() == (14,)

        def writer(x):
            con.execute("INSERT INTO t VALUES (99)")
            return x
        con.create_function("writer", 1, writer)
        with pytest.raises(errors.OperationalError) as info:
            con.execute("SELECT writer(x) FROM t").fetchall()
        assert isinstance(info.value.__cause__, errors.ReadOnlyError)  # the mode's refusal, from inside
        assert con.execute("SELECT count(*) FROM t").fetchone() == (3,)
    finally:
        con.close()


# --- aggregates ---------------------------------------------------------------------------------
class Sum:
    def __init__(self):
        self.total = 0

    def step(self, x):
        if x is not None:
            self.total += x

    def inverse(self, x):
        if x is not None:
            self.total -= x

    def value(self):
        return self.total

    def finalize(self):
        return self.total


def test_aggregate_matches_stdlib(con):
    ref = oracle()
    for c in (con, ref):
        c.execute("CREATE TABLE t(g, x)")
        c.executemany("INSERT INTO t VALUES (?, ?)", [(i % 3, i) for i in range(100)] + [(5, None)])
        c.create_aggregate("mysum", 1, Sum)
    same_rows(con, ref, "SELECT g, mysum(x), sum(x) FROM t GROUP BY g ORDER BY g")
    same_rows(con, ref, "SELECT mysum(x) FROM t WHERE 0")   # no row: NULL (finalize not called)


@pytest.mark.parametrize("method", ["__init__", "step", "finalize"])
def test_aggregate_method_raises(con, method):
    class Agg(Sum):
        def __init__(self):
            if method == "__init__":
                raise ValueError("init")
            super().__init__()

        def step(self, x):
            if method == "step":
                raise ValueError("step")

        def finalize(self):
            if method == "finalize":
                raise ValueError("finalize")
            return 1

    ref = oracle()
    for c in (con, ref):
        c.create_aggregate("agg", 1, Agg)
    with pytest.raises(sqlite3.OperationalError):
        ref.execute("SELECT agg(1)").fetchall()
    with pytest.raises(errors.OperationalError) as info:
        con.execute("SELECT agg(1)").fetchall()
    assert method in str(info.value) and "'agg'" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)
    assert con.execute("SELECT 2").fetchone() == (2,)


# --- window functions ---------------------------------------------------------------------------
FRAMES = [
    "ORDER BY x ROWS BETWEEN 3 PRECEDING AND 3 FOLLOWING",
    "PARTITION BY g ORDER BY x ROWS BETWEEN 2 PRECEDING AND CURRENT ROW",
    "ORDER BY x ROWS BETWEEN 1 FOLLOWING AND 2 FOLLOWING",
    "ORDER BY v RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW",
    "PARTITION BY g ORDER BY v RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING",
    "ORDER BY v ROWS BETWEEN 1 PRECEDING AND 1 PRECEDING",
]


@pytest.mark.parametrize("frame", FRAMES)
def test_window_function_against_builtin_sum(con, frame):
    if not has_window(con):
        with pytest.raises(errors.FeatureNotSupportedError, match="window"):
            con.create_window_function("wsum", 1, Sum)
        assert con.backend.lacks("window_udf")  # the reason: bdb's 3.7 core; the stdlib's crash (gh-153800)
        return
    con.execute("CREATE TABLE t(g, x, v)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i % 4, i, (i * 7) % 10) for i in range(200)])
    con.commit()
    con.create_window_function("wsum", 1, Sum)
    rows = con.execute(f"SELECT wsum(x) OVER ({frame}), coalesce(sum(x) OVER ({frame}), 0) FROM t ORDER BY x").fetchall()
    assert len(rows) == 200 and all(a == b for a, b in rows)
    if "1 PRECEDING AND 1 PRECEDING" in frame:
        return  # an empty frame: the stdlib (3.11) crashes on it (value() before any step); sqlnb does not
    ref = oracle()
    ref.execute("CREATE TABLE t(g, x, v)")
    ref.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i % 4, i, (i * 7) % 10) for i in range(200)])
    ref.create_window_function("wsum", 1, Sum)
    same_rows(con, ref, f"SELECT wsum(x) OVER ({frame}) FROM t ORDER BY x")


def test_window_function_errors(con):
    if not has_window(con):
        with pytest.raises(errors.FeatureNotSupportedError):
            con.create_window_function("w", 1, Sum)
        return

    class NoInverse:
        def step(self, x):
            pass

        def value(self):
            return 0

        def finalize(self):
            return 0

    ref = oracle()
    for c in (con, ref):
        c.create_window_function("w", 1, NoInverse)
    sql = "WITH t(x) AS (VALUES (1), (2), (3)) SELECT w(x) OVER (ORDER BY x ROWS 1 PRECEDING) FROM t"
    with pytest.raises(sqlite3.OperationalError):
        ref.execute(sql).fetchall()
    with pytest.raises(errors.OperationalError) as info:
        con.execute(sql).fetchall()
    assert isinstance(info.value.__cause__, AttributeError) and "inverse" in str(info.value)


# --- collations ---------------------------------------------------------------------------------
def test_collation_matches_stdlib(con):
    ref = oracle()
    words = [("b",), ("A",), ("a",), ("é",), ("C",)]
    for c in (con, ref):
        c.execute("CREATE TABLE w(s)")
        c.executemany("INSERT INTO w VALUES (?)", words)
        c.create_collation("nocase_rev", lambda a, b: (a.lower() < b.lower()) - (a.lower() > b.lower()))
    same_rows(con, ref, "SELECT s FROM w ORDER BY s COLLATE nocase_rev, s")
    for c in (con, ref):
        c.create_collation("nocase_rev", None)
    with pytest.raises(sqlite3.OperationalError):
        ref.execute("SELECT s FROM w ORDER BY s COLLATE nocase_rev")
    with pytest.raises(errors.OperationalError):
        con.execute("SELECT s FROM w ORDER BY s COLLATE nocase_rev").fetchall()


@pytest.mark.parametrize("compare", [lambda a, b: 1 / 0, lambda a, b: "x"])
def test_collation_error_is_reported(con, compare):
    # a deliberate difference: the stdlib ignores the exception (and sorts as if equal)
    con.create_collation("boom", compare)
    letters(con)
    with pytest.raises(errors.OperationalError) as info:
        con.execute("SELECT x FROM l ORDER BY x COLLATE boom").fetchall()
    assert "'boom'" in str(info.value)
    assert isinstance(info.value.__cause__, (ZeroDivisionError, TypeError))
    assert con.execute("SELECT 1").fetchone() == (1,)


def test_parallel_fetch_workers_get_the_functions(tmp_path):
    """query_df(parallel=N) runs the SQL on worker connections: they get the user's functions and
    collations (on the engine that has a parallel fetch)."""
    con = sqlnb.connect(str(tmp_path / "p.db"), engine="sqlite")
    try:
        assert con.backend.has("parallel_fetch")
        con.execute("CREATE TABLE t(x INTEGER, s TEXT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"s{i % 7}") for i in range(50_000)])
        con.commit()
        con.create_function("inc", 1, lambda x: x + 1)
        con.create_collation("rev", lambda a, b: (a < b) - (a > b))
        df = con.query_df("SELECT inc(x) AS y, s FROM t WHERE s > 's2' COLLATE rev", parallel=2)
        want = con.execute("SELECT sum(inc(x)), count(*) FROM t WHERE s > 's2' COLLATE rev").fetchone()
        assert (int(df["y"].sum()), len(df)) == want and 0 < len(df) < 50_000   # (a refused plan would raise)
    finally:
        con.close()
