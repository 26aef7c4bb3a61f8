"""Bad input: every case gets a clear error type and message, never a crash, and nothing is written.

Each case runs on every engine (``engine`` fixture) where it applies. Cases that
could crash the interpreter (corrupted files) run in a child process, so a
segfault is a failed test, not a dead test run. See docs/guarantees.md.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sqlnb
from sqlnb import errors

ROOT = str(Path(sqlnb.__file__).resolve().parent.parent)


# --- helpers --------------------------------------------------------------------------------
def snapshot(directory: Path) -> dict:
    """Every file under ``directory`` with its size and hash: 'nothing written' is snapshot equality."""
    out = {}
    for p in sorted(directory.rglob("*")):
        rel = str(p.relative_to(directory))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def connect_ro(path, engine, **kw):
    """connect(mode="ro")."""
    return sqlnb.connect(str(path), engine=engine, mode="ro", **kw)


def first_error(fn):
    with pytest.raises(errors.Error) as info:
        fn()
    return info.value


def need_engine(name: str):
    info = {e.name: e for e in sqlnb.engines()}[name]
    if not info.available:
        pytest.skip(f"engine {name!r} unavailable: {info.why}")


def run_child(code: str, timeout: float = 120) -> dict:
    env = {**os.environ, "PYTHONPATH": ROOT, "PYTHONFAULTHANDLER": "1"}
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"child did not finish in {timeout} s\n{exc.stderr or ''}")
    assert proc.returncode == 0, f"child exited with {proc.returncode} (crash?)\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- paths ------------------------------------------------------------------------------------
def test_missing_path_rw_creates_the_database(engine, tmp_path):
    """Documented: mode='rw' (the default) creates a missing database file, as SQLite does."""
    path = tmp_path / "new.db"
    con = sqlnb.connect(str(path), engine=engine)
    # sqlite/system create the (empty) file at connect, bdb at the first write
    assert path.exists() == (engine != "bdb")
    con.execute("create table t(a)")
    con.commit()
    con.close()
    assert path.exists()
    assert sqlnb.connect(str(path), engine=engine).execute("select count(*) from t").fetchone() == (0,)


def test_missing_path_ro_is_an_error_and_creates_nothing(engine, tmp_path):
    before = snapshot(tmp_path)
    for target in (tmp_path / "missing.db", tmp_path / "no" / "such" / "dir.db"):
        exc = first_error(lambda: sqlnb.connect(str(target), engine=engine, mode="ro"))
        assert isinstance(exc, errors.OperationalError), exc
        assert str(target) in str(exc) and "does not exist" in str(exc)
        if target.parent.is_dir():
            assert "read-only" in str(exc) or "mode='ro'" in str(exc)
        assert exc.filename == str(target)
    assert snapshot(tmp_path) == before


def test_missing_directory_rw(engine, tmp_path):
    target = tmp_path / "nodir" / "x.db"
    # (bdb opens lazily: its error comes with the first statement)
    exc = first_error(lambda: sqlnb.connect(str(target), engine=engine).execute("create table t(a)"))
    assert isinstance(exc, (errors.CantOpenError, errors.ReadOnlyError)), exc
    assert repr(str(target)) in str(exc) and "directory does not exist" in str(exc)
    assert exc.filename == str(target)
    assert not (tmp_path / "nodir").exists()


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_directory(engine, tmp_path, mode):
    d = tmp_path / "adir"
    d.mkdir()
    before = snapshot(tmp_path)
    exc = first_error(lambda: sqlnb.connect(str(d), engine=engine, mode=mode).execute(
        "select * from sqlite_master").fetchall())
    assert isinstance(exc, (errors.CantOpenError, errors.IOError_)), exc
    assert f"{str(d)!r} is a directory" in str(exc)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("bad", [123, None, 4.5, ["a.db"]])
def test_path_of_wrong_type(bad):
    with pytest.raises(TypeError, match="database must be a path"):
        sqlnb.connect(bad)


def test_path_with_nul(engine, tmp_path):
    with pytest.raises(ValueError, match="NUL|null"):
        sqlnb.connect(str(tmp_path / "a\0b.db"), engine=engine)
    assert snapshot(tmp_path) == {}


# --- files that are not (good) databases ------------------------------------------------------
def test_empty_file_is_an_empty_database(engine, tmp_path):
    """Documented: SQLite treats a 0-byte file as an empty database; reading it writes nothing.

    The bdb engine cannot open a 0-byte file: a clear NotADatabaseError naming it.
    """
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    if engine == "bdb":
        exc = first_error(lambda: sqlnb.connect(str(path), engine=engine).execute(
            "select * from sqlite_master").fetchall())
        assert isinstance(exc, errors.NotADatabaseError)
        assert f"{str(path)!r} is an empty file" in str(exc)
        return
    con = sqlnb.connect(str(path), engine=engine)
    assert con.execute("select name from sqlite_master").fetchall() == []
    assert con.execute("pragma user_version").fetchone() == (0,)
    con.close()
    assert path.stat().st_size == 0
    assert snapshot(tmp_path) == {"empty.db": hashlib.sha256(b"").hexdigest()}


@pytest.mark.parametrize("engine", ["sqlite", "system"])  # bdb cannot open a 0-byte file at all (above)
def test_empty_file_ro(engine, tmp_path):
    need_engine(engine)
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    con = connect_ro(path, engine)
    assert con.execute("select count(*) from sqlite_master").fetchone() == (0,)
    con.close()
    assert snapshot(tmp_path) == {"empty.db": hashlib.sha256(b"").hexdigest()}


JUNK = b"hello, this is a text file and certainly not a database\n" * 200


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_file_that_is_not_a_database(engine, tmp_path, mode):
    path = tmp_path / "notes.txt"
    path.write_bytes(JUNK)
    before = snapshot(tmp_path)
    try:
        con = sqlnb.connect(str(path), engine=engine, mode=mode)  # opening is lazy in SQLite
    except errors.NotADatabaseError as exc:
        # the bdb engine checks the file's header at connect, and so do the ro modes
        # (they read the schema to learn shadow tables): the same clear error, earlier
        assert "not a database" in str(exc) and str(path) in str(exc)
        assert snapshot(tmp_path) == before
        return
    for sql in ("select * from sqlite_master", "create table t(a)", "pragma user_version"):
        exc = first_error(lambda: con.execute(sql).fetchall())
        assert isinstance(exc, errors.NotADatabaseError), exc
        assert "not a database" in str(exc) and str(path) in str(exc)
        assert exc.filename == str(path)
    con.close()
    after = snapshot(tmp_path)
    assert after["notes.txt"] == before["notes.txt"]
    assert after == before


def test_truncated_header(engine, tmp_path):
    """A database cut inside its 100-byte header is 'not a database' (or corrupt), named."""
    good = tmp_path / "good.db"
    con = sqlnb.connect(str(good), engine="system")
    con.execute("create table t(a)")
    con.commit()
    con.close()
    path = tmp_path / "cut.db"
    path.write_bytes(good.read_bytes()[:60])
    before = snapshot(tmp_path)
    exc = first_error(lambda: sqlnb.connect(str(path), engine=engine).execute("select * from t").fetchall())
    assert isinstance(exc, (errors.NotADatabaseError, errors.CorruptError)), exc
    assert str(path) in str(exc)
    if engine != "bdb":
        assert snapshot(tmp_path) == before


CORRUPT_CHILD = """
    import json, os, sqlnb
    from sqlnb import errors
    engine, path = ENGINE, PATH
    con = sqlnb.connect(path, engine=engine)
    con.execute("create table t(id integer primary key, payload text)")
    con.executemany("insert into t(payload) values (?)", [("x" * 200 + str(i),) for i in range(20000)])
    con.commit()
    con.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:           # overwrite 40 pages in the middle with garbage
        f.seek((size // 2) // 4096 * 4096)
        f.write(os.urandom(40 * 4096))
    result = {"size": size}
    con = sqlnb.connect(path, engine=engine)
    for how in ("fetchmany", "fetchall", "iterate", "query_df"):
        got = 0
        try:
            if how == "query_df":
                got = len(con.query_df("select * from t"))
            else:
                cur = con.execute("select * from t")
                if how == "fetchmany":
                    while True:
                        rows = cur.fetchmany(500)
                        if not rows:
                            break
                        got += len(rows)
                elif how == "fetchall":
                    got = len(cur.fetchall())
                else:
                    for _ in cur:
                        got += 1
            result[how] = ["no error", got, ""]
        except errors.Error as exc:
            result[how] = [type(exc).__name__, got, str(exc)]
    # the connection is still usable afterwards
    result["after"] = con.execute("select 42").fetchone()[0]
    con.close()
    print(json.dumps(result))
"""


@pytest.mark.timeout(180)
def test_corrupted_database_errors_mid_fetch(engine, tmp_path):
    path = str(tmp_path / "corrupt.db")
    out = run_child(CORRUPT_CHILD.replace("ENGINE", repr(engine)).replace("PATH", repr(path)))
    assert out["after"] == 42
    if engine == "bdb":
        # BerkeleyDB keeps recent pages in its environment/log: overwriting the file may go
        # unnoticed. The guarantee checked here is the child's clean exit (no crash, no hang).
        for how in ("fetchmany", "fetchall", "iterate", "query_df"):
            assert out[how][0] in ("no error", "CorruptError", "NotADatabaseError", "IOError", "IOError_"), out
        return
    for how in ("fetchmany", "fetchall", "iterate", "query_df"):
        kind, got, msg = out[how]
        assert kind == "CorruptError", (how, out[how])
        assert "malformed" in msg and path in msg
    # fetchmany/iterate got rows before the damaged pages: the error came mid-fetch
    assert 0 < out["fetchmany"][1] < 20000
    assert 0 < out["iterate"][1] < 20000


def test_sqlite_engine_on_a_berkeleydb_file(tmp_path):
    """A BerkeleyDB database opened with the sqlite/system engines: a clear error, nothing touched."""
    need_engine("bdb")
    path = tmp_path / "b.db"
    con = sqlnb.connect(str(path), engine="bdb")
    con.execute("create table t(a)")
    con.execute("insert into t values (1)")
    con.commit()
    con.close()
    before = snapshot(tmp_path)
    for eng in ("sqlite", "system"):
        # with the BDB environment directory next to it (as bdb leaves it) and without
        exc = first_error(lambda: sqlnb.connect(str(path), engine=eng).execute("select * from t").fetchall())
        assert isinstance(exc, (errors.NotADatabaseError, errors.IOError_)), exc
        assert f"{str(path)!r} is a BerkeleyDB" in str(exc) and "engine='bdb'" in str(exc)
        assert snapshot(tmp_path) == before
    env = tmp_path / "b.db-journal"
    env.rename(tmp_path / "env-moved")
    before = snapshot(tmp_path)
    for eng in ("sqlite", "system"):
        exc = first_error(lambda: sqlnb.connect(str(path), engine=eng).execute("select * from t").fetchall())
        assert isinstance(exc, errors.NotADatabaseError), exc
        assert f"{str(path)!r} is a BerkeleyDB" in str(exc) and "engine='bdb'" in str(exc)
        assert snapshot(tmp_path) == before
    (tmp_path / "env-moved").rename(env)
    assert sqlnb.connect(str(path), engine="bdb").execute("select * from t").fetchall() == [(1,)]


# --- a locked database ----------------------------------------------------------------------
HOLDER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "wal":
    con.execute("pragma journal_mode=wal")
con.execute("begin exclusive" if sys.argv[2] == "exclusive" else "begin immediate")
con.execute("insert into t values (1)")
print("holding", flush=True)
sys.stdin.readline()
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("lock, blocked, expect", [
    ("exclusive", "read", "holds an EXCLUSIVE lock"),
    ("exclusive", "write", "holds an EXCLUSIVE lock"),
    ("immediate", "write", "holds a RESERVED lock"),
    ("wal", "write", "holds the WAL write lock"),
])
@pytest.mark.parametrize("lk_engine", ["sqlite", "system"])
def test_locked_database(lk_engine, tmp_path, lock, blocked, expect):
    """After the busy timeout: BusyError saying it is locked, by whom, and which lock.

    (The bdb engine has its own lock manager, which waits instead of timing out:
    see docs/guarantees.md.)"""
    need_engine(lk_engine)
    path = str(tmp_path / "locked.db")
    con = sqlnb.connect(path, engine=lk_engine)
    con.execute("create table t(a)")
    con.commit()
    con.close()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, path, lock], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        con = sqlnb.connect(path, engine=lk_engine, timeout=0.3)
        sql = "select * from t" if blocked == "read" else "insert into t values (2)"
        exc = first_error(lambda: con.execute(sql).fetchall())
        assert isinstance(exc, errors.BusyError), exc
        msg = str(exc)
        assert "database is locked" in msg and repr(path) in msg
        assert f"process {holder.pid} {expect}" in msg, msg
        assert "busy timeout" in msg
        if blocked == "read":
            assert lock == "exclusive"
        else:  # reads still work while another process only writes (RESERVED / WAL)
            if lock != "exclusive":
                assert con.execute("select count(*) from t").fetchone() == (0,)
        con.close()
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    # once released, the same database works
    con = sqlnb.connect(path, engine=lk_engine)
    con.execute("insert into t values (3)")
    con.commit()
    assert con.execute("select count(*) from t").fetchone() == (1,)


# --- values ------------------------------------------------------------------------------------
def test_invalid_utf8_in_text(engine, tmp_path):
    """Documented: sqlite/bdb decode invalid UTF-8 with 'surrogateescape' (lossless: binding the
    value back stores the same bytes); the stdlib engine raises a clear OperationalError."""
    con = sqlnb.connect(str(tmp_path / "u.db"), engine=engine)
    con.execute("create table t(s text)")
    con.execute("insert into t values (cast(x'41ff42c328' as text))")
    con.commit()
    if engine == "system":
        exc = first_error(lambda: con.execute("select s from t").fetchall())
        assert isinstance(exc, errors.OperationalError)
        assert "Could not decode to UTF-8" in str(exc) and "'s'" in str(exc)
        assert con.execute("select hex(s) from t").fetchone() == ("41FF42C328",)
        return
    (value,) = con.execute("select s from t").fetchone()
    assert value == "A\udcffB\udcc3("
    con.execute("create table u(s text)")
    con.execute("insert into u values (?)", (value,))
    assert con.execute("select hex(s), typeof(s) from u").fetchone() == ("41FF42C328", "text")
    assert con.execute("select count(*) from t, u where t.s = u.s").fetchone() == (1,)


@pytest.mark.timeout(300)
def test_large_blob_and_text(engine):
    """200 MB values (within SQLITE_MAX_LENGTH) round-trip; over the limit: TooBigError."""
    con = sqlnb.connect(":memory:", engine=engine)
    n = 200_000_000
    (blob,) = con.execute("select zeroblob(?)", (n,)).fetchone()
    assert isinstance(blob, bytes) and len(blob) == n
    del blob
    big = b"\x01" * n
    (length, back) = con.execute("select length(?), ?", (big, big)).fetchone()
    assert length == n and back == big
    del back, big
    text = "é" * (n // 2)  # 200 MB of UTF-8
    (length, nbytes) = con.execute("select length(?), length(cast(? as blob))", (text, text)).fetchone()
    assert (length, nbytes) == (n // 2, n)
    del text
    for sql in ("select zeroblob(2000000000)", "select randomblob(1100000000)",
                "select zeroblob(1000000001)"):
        exc = first_error(lambda: con.execute(sql).fetchone())
        assert isinstance(exc, errors.TooBigError), (sql, exc)
        assert "too big" in str(exc)
    assert con.execute("select 1").fetchone() == (1,)


@pytest.mark.parametrize("engine", ["sqlite", "bdb"])  # the stdlib adapter exposes no sqlite3_limit
def test_parameter_over_the_length_limit(engine):
    """Binding a value longer than SQLITE_LIMIT_LENGTH: TooBigError (limit lowered to keep memory small)."""
    need_engine(engine)
    con = sqlnb.connect(":memory:", engine=engine)
    con.raw.limit(0, 1_000_000)  # SQLITE_LIMIT_LENGTH
    for value in (b"x" * 1_000_001, "y" * 1_000_001):
        exc = first_error(lambda: con.execute("select ?", (value,)).fetchone())
        assert isinstance(exc, errors.TooBigError) and "too big" in str(exc)
    assert con.execute("select length(?)", (b"x" * 999_999,)).fetchone() == (999_999,)


def test_two_thousand_columns(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    cols = ", ".join(f"c{i}" for i in range(2000))
    con.execute(f"create table w({cols})")
    con.execute(f"insert into w values ({', '.join(map(str, range(2000)))})")  # bdb allows 999 variables
    cur = con.execute("select * from w")
    assert len(cur.description) == 2000 and cur.description[1999][0] == "c1999"
    assert cur.fetchall() == [tuple(range(2000))]
    df = con.query_df("select * from w")
    assert df.shape == (1, 2000) and int(df["c1999"].iloc[0]) == 1999
    exc = first_error(lambda: con.execute(f"create table w2({cols}, c2000)"))
    assert isinstance(exc, errors.SQLError) and "too many columns" in str(exc)
    exc = first_error(lambda: con.execute("select " + ", ".join(["1"] * 2001)))
    assert isinstance(exc, errors.SQLError) and "too many columns" in str(exc)


def vm_ticks(con, fn):
    """How many times SQLite's progress handler (every 1000 VM instructions) fired while ``fn`` ran.

    The count is of work done, not of time: the report is due at every tick (``every`` is 1 ns,
    and 1000 instructions always take longer than that).
    """
    ticks = [0]

    def tick():
        ticks[0] += 1
        return 0

    con.raw.progress_callback = tick
    con.raw.set_progress_report(1e-9)
    try:
        fn()
    finally:
        con.raw.progress_callback = None
        con.raw.set_progress_report(0)
    return ticks[0]


@pytest.mark.timeout(120)
def test_ten_million_rows_with_a_limit(engine):
    """A 10,000,000-row result is never computed when only the first rows are asked for.

    SQLite's own instruction counter (its progress handler) proves it: fetching the first
    1,005 rows, or ``query_df(limit=1000)``, does a small fraction of the work that fetching
    the first 100,000 rows does; computing the whole result would take a hundred times more.
    """
    con = sqlnb.connect(":memory:", engine=engine)
    con.execute("create table d(x integer)")
    con.executemany("insert into d values (?)", [(i,) for i in range(10)])
    # 10^7 rows, from a 7-way cross join (every engine, also the 3.7 core without CTEs)
    sql = ("select a.x * 1000000 + b.x * 100000 + c.x * 10000 + d.x * 1000 + e.x * 100 + f.x * 10 + g.x "
           "from d a, d b, d c, d d, d e, d f, d g")
    got = {}

    def first_rows():
        cur = con.execute(sql)
        got["first"] = cur.fetchmany(1000)
        got["more"] = cur.fetchmany(5)
        cur.close()

    def hundred_thousand():
        cur = con.execute(sql)
        got["100k"] = cur.fetchmany(100_000)
        cur.close()

    small = vm_ticks(con, first_rows)
    df_ticks = vm_ticks(con, lambda: got.__setitem__("df", con.query_df(sql, limit=1000)))
    large = vm_ticks(con, hundred_thousand)
    assert got["first"][:3] == [(0,), (1,), (2,)] and len(got["first"]) == 1000
    assert got["more"] == [(1000,), (1001,), (1002,), (1003,), (1004,)]
    assert len(got["df"]) == 1000 and got["df"].iloc[-1, 0] == 999
    assert len(got["100k"]) == 100_000 and got["100k"][-1] == (99_999,)
    assert con.execute("select count(*) from d").fetchone() == (10,)  # the connection is free again
    if engine == "bdb":
        # bdb's cursor fetches a SELECT's whole result at execute() (docs/berkeleydb.md, "Locking"),
        # and its 3.7.6 core counts progress-handler instructions per sqlite3_step call, so a
        # statement returning rows never reaches a tick: nothing to count there
        assert small == large == 0
        return
    assert large > 200, large  # the counter counts: 100,000 rows are well over 200,000 instructions
    # 100x the rows is about 100x the work; a fetch that computed all 10^7 rows would be 100x MORE
    assert small * 10 < large, (small, large)
    assert df_ticks * 10 < large, (df_ticks, large)
    # the recursive-CTE form (SQLite >= 3.8.3)
    def cte():
        cur = con.execute("with recursive r(i) as (select 1 union all select i + 1 from r where i < 10000000) "
                          "select i from r")
        got["cte"] = [r[0] for r in cur.fetchmany(3)]
        cur.close()

    assert vm_ticks(con, cte) * 10 < large
    assert got["cte"] == [1, 2, 3]


# --- parameters --------------------------------------------------------------------------------
class Opaque:
    pass


@pytest.mark.parametrize("value, typename", [
    (Opaque(), "Opaque"), ([1, 2], "list"), ({"a": 1}, "dict"), ({1}, "set"), (1 + 2j, "complex"),
    (object(), "object"), (Exception("x"), "Exception"),
])
def test_unsupported_parameter_types(engine, value, typename):
    con = sqlnb.connect(":memory:", engine=engine)
    for sql, params, label in (("select ?", (value,), "parameter 1"),
                               ("select ?, ?", (1, value), "parameter 2"),
                               ("select :val", {"val": value}, "parameter :val")):
        with pytest.raises(TypeError) as info:
            con.execute(sql, params)
        exc = info.value
        assert isinstance(exc, errors.BindError) and isinstance(exc, errors.ProgrammingError)
        assert label in str(exc) and f"'{typename}'" in str(exc), str(exc)
    con.execute("create table t(a)")
    with pytest.raises(errors.BindError, match="parameter 1"):
        con.executemany("insert into t values (?)", [(1,), (value,)])
    con.rollback()
    assert con.execute("select count(*) from t").fetchone() == (0,)  # nothing half-written


def test_parameter_shape_errors(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    cases = [
        (("select ?, ?", (1,)), "Incorrect number of bindings"),
        (("select ?", (1, 2)), "Incorrect number of bindings"),
        (("select :a", {"b": 1}), "You did not supply a value for binding parameter :a"),
        (("select ?", "a"), "not a string"),
        (("select ?", b"a"), "not a string"),
        (("select ?", 42), "unsupported type 'int'"),
    ]
    for (sql, params), msg in cases:
        with pytest.raises(errors.ProgrammingError, match=msg):
            con.execute(sql, params)
    with pytest.raises(OverflowError, match=r"parameter 1: Python int 18446744073709551616 does not fit"):
        con.execute("select ?", (2**64,))
    assert con.execute("select ?, ?", (-(2**63), 2**63 - 1)).fetchone() == (-(2**63), 2**63 - 1)


# --- SQL text ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sql", ["", "   \n\t", "-- only a comment", "/* block */", "-- a\n/* b */\n  ", ";", ";;  ;"])
def test_empty_or_comment_only_sql(engine, sql):
    """Documented: execute() of SQL with no statement returns the cursor with description None;
    fetching from it is PEP 249's 'no result set' ProgrammingError."""
    con = sqlnb.connect(":memory:", engine=engine)
    cur = con.execute(sql)
    assert cur.description is None and cur.rowcount == -1
    for fetch in (cur.fetchone, cur.fetchall, lambda: cur.fetchmany(5)):
        with pytest.raises(errors.ProgrammingError, match="no result set"):
            fetch()
    assert con.executemany(sql, [(1,), (2,)]).rowcount == -1
    con.executescript(sql)
    assert list(con.statements(sql)) == []
    assert con.execute("select 1").fetchone() == (1,)


def test_sql_with_a_nul_character(engine):
    """SQLite stops at a NUL: the rest would be silently ignored, so it is refused."""
    con = sqlnb.connect(":memory:", engine=engine)
    con.execute("create table t(a)")
    for call in (lambda: con.execute("select 1\0; drop table t"),
                 lambda: con.executescript("select 1;\0 drop table t;"),
                 lambda: list(con.statements("select 1\0"))):
        with pytest.raises(errors.ProgrammingError, match="NUL character"):
            call()
    assert con.execute("select count(*) from t").fetchone() == (0,)


def test_sql_of_wrong_type_or_many_statements(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    with pytest.raises(TypeError, match="SQL must be str"):
        con.execute(b"select 1")
    with pytest.raises(errors.ProgrammingError, match="one statement at a time"):
        con.execute("select 1; select 2")
    exc = first_error(lambda: con.execute("selec 1"))
    assert isinstance(exc, errors.SQLError) and "syntax error" in str(exc)
