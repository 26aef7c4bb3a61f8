"""The BerkeleyDB SQL engine (``engine="bdb"``, a SQLite 3.7.6.2 core).

* the feature matrix runs on every engine: where the core has the feature the
  SQL must work, on bdb it must fail with the clear FeatureNotSupportedError;
* valid SQL that merely mentions those keywords works everywhere;
* all engines and the stdlib in one process, the import-time version guard;
* foreign files (SQLite file on bdb, BDB file on sqlite/system), nothing changed;
* locking (no statement left open, in-process refusal, cross-process wait
  that ends) and fork, each under a watchdog so a hang fails;
* a process killed with the database open (holding a mutex of the
  environment, too): the next open recovers instead of hanging.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError
from pathlib import Path

import pytest

import sqlnb
from sqlnb import engines, errors
from sqlnb.engines import bdb as _bdb
from sqlnb.engines import bdb_features

from tests.conftest import need_engine

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(60)


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def version_tuple(v: str) -> tuple:
    return tuple(int(x) for x in v.split(".")[:3])


def supports(engine: str, since: str, feature: str | None = None) -> bool:
    """Does ``engine``'s core have a feature added in SQLite ``since``?"""
    if engine == "sqlite":
        return True
    if engine == "bdb":
        return False
    from tests.conftest import has_feature

    if feature in ("math", "fts5", "rtree", "json"):
        return has_feature(engine, feature)
    return sqlite3.sqlite_version_info >= version_tuple(since)


@pytest.fixture
def bdb(tmp_path):
    need_engine("bdb")
    c = sqlnb.connect(str(tmp_path / "b.db"), engine="bdb")
    yield c
    c.close()


def _seed(con):
    for sql in ("CREATE TABLE t (a INTEGER, b TEXT)",
                "INSERT INTO t VALUES (1, 'x')", "INSERT INTO t VALUES (2, 'y')",
                "INSERT INTO t VALUES (3, NULL)",
                "CREATE TABLE u (k INTEGER PRIMARY KEY, v TEXT)", "INSERT INTO u VALUES (1, 'one')",
                "CREATE TABLE t2 (a, b)"):
        con.execute(sql)
    con.commit()


# (feature key reported on bdb, SQLite release that added it, SQL, expected rows or None for "runs")
CASES = [
    ("window", "3.25.0", "SELECT a, row_number() OVER (ORDER BY a DESC) FROM t ORDER BY a", [(1, 3), (2, 2), (3, 1)]),
    ("window", "3.25.0", "SELECT a, sum(a) OVER w FROM t WINDOW w AS (ORDER BY a) ORDER BY a",
     [(1, 1), (2, 3), (3, 6)]),
    ("window", "3.25.0", "SELECT a, lag(a) OVER (ORDER BY a) FROM t ORDER BY a", [(1, None), (2, 1), (3, 2)]),
    ("filter", "3.30.0", "SELECT count(*) FILTER (WHERE a > 1) FROM t", [(2,)]),
    ("cte", "3.8.3", "WITH x AS (SELECT 7 AS v) SELECT v FROM x", [(7,)]),
    ("cte", "3.8.3", "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3) "
                     "SELECT n FROM c", [(1,), (2,), (3,)]),
    ("json", "3.38.0", """SELECT json_extract('{"a": 5}', '$.a')""", [(5,)]),
    ("json", "3.38.0", """SELECT '{"a": 5}' ->> '$.a'""", [(5,)]),
    ("json", "3.38.0", "SELECT value FROM json_each('[1, 2]')", [(1,), (2,)]),
    ("fts5", "3.9.0", "CREATE VIRTUAL TABLE docs USING fts5(body)", None),
    ("rtree", "3.7.6", "CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)", None),
    ("upsert", "3.24.0", "INSERT INTO u VALUES (1, 'uno') ON CONFLICT(k) DO UPDATE SET v = excluded.v", None),
    ("returning", "3.35.0", "INSERT INTO t VALUES (9, 'z') RETURNING a", [(9,)]),
    ("strict", "3.37.0", "CREATE TABLE s (a INTEGER) STRICT", None),
    ("generated", "3.31.0", "CREATE TABLE g (a INTEGER, b INTEGER AS (a * 2))", None),
    ("math", "3.35.0", "SELECT sqrt(16.0)", [(4.0,)]),
    ("function", "3.32.0", "SELECT iif(1, 'y', 'n')", [("y",)]),
    ("multirow_values", "3.7.11", "INSERT INTO t VALUES (5, 'e'), (6, 'f')", None),
    ("without_rowid", "3.8.2", "CREATE TABLE w (k PRIMARY KEY, v) WITHOUT ROWID", None),
    ("nulls_order", "3.30.0", "SELECT b FROM t ORDER BY b NULLS LAST", [("x",), ("y",), (None,)]),
    ("drop_column", "3.35.0", "ALTER TABLE t2 DROP COLUMN b", None),
    ("rename_column", "3.25.0", "ALTER TABLE t2 RENAME COLUMN b TO c", None),
    ("update_from", "3.33.0", "UPDATE t SET b = u.v FROM u WHERE u.k = t.a", None),
    ("is_distinct", "3.39.0", "SELECT 1 IS NOT DISTINCT FROM 1", [(1,)]),
    ("right_join", "3.39.0", "SELECT t.a, u.k FROM t RIGHT JOIN u ON u.k = t.a", [(1, 1)]),
    ("true_false", "3.23.0", "SELECT a FROM t WHERE true AND NOT false ORDER BY a", [(1,), (2,), (3,)]),
    ("hex_literal", "3.8.6", "SELECT 0x10 + 1", [(17,)]),
]


@pytest.mark.parametrize("feature,since,sql,rows", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_newer_feature(con, engine, feature, since, sql, rows):
    _seed(con)
    if supports(engine, since, feature):
        cur = con.execute(sql)
        if rows is not None:
            assert cur.fetchall() == rows
        return
    if engine != "bdb":
        pytest.skip(f"the {engine} engine's SQLite {sqlite3.sqlite_version} predates {feature}")
    with pytest.raises(errors.FeatureNotSupportedError) as ei:
        con.execute(sql)
    err = ei.value
    msg = str(err)
    assert msg.startswith("the bdb engine (SQLite 3.7.6.2 core) has no "), msg
    assert "use engine='sqlite'" in msg
    assert err.feature == feature
    assert err.engine == "bdb" and err.core_version == "3.7.6.2"
    assert isinstance(err, errors.NotSupportedError) and err.result_code == 1
    assert isinstance(err.__cause__, errors.SQLError)  # SQLite's own message stays reachable
    # the connection is still usable afterwards
    assert con.execute("SELECT count(*) FROM u").fetchall() == [(1,)]


@pytest.mark.parametrize("script", [
    "CREATE TABLE ok1 (a); CREATE VIRTUAL TABLE docs USING fts5(body); CREATE TABLE ok2 (a);",
    "CREATE TABLE ok1 (a); INSERT INTO ok1 VALUES (1), (2);",
])
def test_executescript_explains_too(con, engine, script):
    if engine != "bdb":
        con.executescript(script)
        assert con.execute("SELECT count(*) FROM ok1").fetchone() == ((2,) if "INSERT" in script else (0,))
        assert con.execute("SELECT name FROM sqlite_master WHERE name = 'ok2'").fetchall() == (
            [("ok2",)] if "ok2" in script else [])
        return
    with pytest.raises(errors.FeatureNotSupportedError, match="bdb engine"):
        con.executescript(script)


def test_valid_sql_mentioning_the_keywords_still_runs(con, engine):
    con.execute('CREATE TABLE q ("over" INTEGER, "with" TEXT, "returning" TEXT, "strict" INTEGER)')
    con.execute("""INSERT INTO q VALUES (1, 'WITH x AS (', 'RETURNING *', 1)""")
    sql = """SELECT "over", "with", 'sum(a) OVER (ORDER BY a) ->> json(1)' AS s
             FROM q -- RETURNING a; WITH x AS (SELECT 1) ON CONFLICT DO NOTHING
             WHERE "strict" = 1 /* over ( ... ) STRICT, json_each( */"""
    assert con.execute(sql).fetchall() == [(1, "WITH x AS (", "sum(a) OVER (ORDER BY a) ->> json(1)")]
    # an alias named over/filter (legal in every core) stays legal
    assert con.execute("SELECT 5 AS over").fetchall() == [(5,)]


@pytest.mark.parametrize("sql", [
    "SELEC 'sum(a) OVER (ORDER BY a)'",       # a real typo; the window is only in a string
    "SELECT * FROM q WHERE \"over\" (",        # broken SQL mentioning over as a quoted name
    "SELECT nosuchfunction(1)",                # an unknown function is not a missing feature
    "SELECT * FROM nosuchtable -- WITH x AS (",
])
def test_plain_errors_stay_plain(con, engine, sql):
    con.execute('CREATE TABLE q ("over" INTEGER)')
    with pytest.raises(errors.SQLError) as ei:  # SQLITE_ERROR, as SQLite reports it
        con.execute(sql)
    assert not isinstance(ei.value, errors.FeatureNotSupportedError), str(ei.value)


def test_missing_feature_needs_tokens_and_message():
    """The explainer's pure part: the message and the tokens must agree."""
    mf = bdb_features.missing_feature
    assert mf('near "(": syntax error', "SELECT sum(a) OVER (ORDER BY a) FROM t").key == "window"
    assert mf('near "(": syntax error', "SELECT 'sum(a) OVER (' , foo(") is None
    assert mf('near "(": syntax error', 'SELECT "over" (1)') is None
    assert mf('near "(": syntax error', "SELECT 1 -- OVER (\n(") is None
    assert mf("no such table: t", "WITH x AS (SELECT 1) SELECT * FROM t") is None
    assert mf("no such function: json_extract", "SELECT json_extract(x, '$')").key == "json"
    assert mf("no such function: my_json", "SELECT my_json(1)") is None
    assert mf("no such function: rank", "SELECT rank() FROM t").key == "window"
    assert mf("no such module: fts5", "CREATE VIRTUAL TABLE f USING fts5(a)").key == "fts5"
    assert mf("no such module: mymod", "CREATE VIRTUAL TABLE f USING mymod(a)") is None
    assert mf('near "returning": syntax error', "INSERT INTO t VALUES (1) RETURNING a").key == "returning"
    assert mf('near "x": syntax error', "SELECT returning x FROM t") is None
    assert mf("no such column: true", 'SELECT "true" FROM t') is None  # a quoted name is not a literal
    assert mf("no such column: true", "SELECT true").key == "true_false"
    assert mf('unrecognized token: "0x1g"', "SELECT 0x1g") is None
    # ON CONFLICT in a table definition is old SQL, not UPSERT
    assert mf('near "foo": syntax error', "CREATE TABLE t (a UNIQUE ON CONFLICT REPLACE) foo") is None
    toks = bdb_features.tokenize("SELECT 'a''b', \"c\"\"d\", [e f], `g`, x'00' -- z\n/* w */ ->> ?1 :n")
    assert [t.kind for t in toks] == ["word", "string", "op", "ident", "op", "ident", "op", "ident", "op",
                                      "blob", "op", "param", "param"]


@pytest.mark.bdb
def test_uri_filenames_refused_clearly(tmp_path, monkeypatch):
    need_engine("bdb")
    monkeypatch.chdir(tmp_path)
    for kwargs in ({"uri": True}, {}):
        with pytest.raises(errors.FeatureNotSupportedError) as ei:
            sqlnb.connect("file:x.db?mode=ro", engine="bdb", **kwargs)
        assert "URI filenames" in str(ei.value) and "SQLite 3.7.6.2" in str(ei.value)
        assert "engine='sqlite'" in str(ei.value)
    assert list(tmp_path.iterdir()) == []  # BDB would have created 'file:x.db?mode=ro' literally


# ---------------------------------------------------------------------------
# the engine itself: version, registry, one process with every SQLite
# ---------------------------------------------------------------------------
@pytest.mark.bdb
def test_engines_reports_the_bdb_core():
    need_engine("bdb")
    info = {e.name: e for e in sqlnb.engines()}
    assert info["bdb"].available and info["bdb"].version == "3.7.6.2"
    assert sqlnb.sqlite_version("bdb") == "3.7.6.2"
    assert "BERKELEY_DB" in sqlnb.compile_options("bdb")
    c = sqlnb.connect("bdb:///:memory:")
    assert c.engine == "bdb" and c.sqlite_version == "3.7.6.2"
    assert c.execute("SELECT sqlite_version()").fetchone() == ("3.7.6.2",)
    c.close()


ONE_PROCESS = r"""
import ctypes, ctypes.util, os, sqlite3, sys
# the worst case from the engine notes: the system libsqlite3 in the GLOBAL symbol scope first
ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0", mode=os.RTLD_GLOBAL)
import sqlnb._fast                                     # our own SQLite, loaded before bdb
import sqlnb
std = sqlite3.connect(":memory:")
assert std.execute("select sqlite_version()").fetchone()[0] == sqlite3.sqlite_version
out = {}
for eng in ("sqlite", "bdb", "system"):
    c = sqlnb.connect(":memory:", engine=eng)
    c.execute("CREATE TABLE t (a)")
    c.execute("INSERT INTO t VALUES (41)")
    out[eng] = (c.execute("SELECT sqlite_version(), a + 1 FROM t").fetchone(), c.sqlite_version)
    c.close()
out["stdlib"] = (std.execute("SELECT sqlite_version(), 42").fetchone(), sqlite3.sqlite_version)
print(repr(out))
"""


@pytest.mark.bdb
def test_all_engines_and_the_stdlib_in_one_process():
    need_engine("bdb")
    r = subprocess.run([sys.executable, "-c", ONE_PROCESS], capture_output=True, text=True, timeout=50,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    out = eval(r.stdout)  # noqa: S307 - our own subprocess's repr
    assert out["bdb"] == (("3.7.6.2", 42), "3.7.6.2")
    assert out["sqlite"][0][0] == out["sqlite"][1] and version_tuple(out["sqlite"][1]) >= (3, 50)
    assert out["system"] == (out["stdlib"][0], sqlite3.sqlite_version)
    assert out["stdlib"][0][0] == sqlite3.sqlite_version
    assert len({out["bdb"][1], out["sqlite"][1], out["stdlib"][1]}) == 3


MISBOUND = r"""
import ctypes, ctypes.util, importlib, os, sys
ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0", mode=os.RTLD_GLOBAL)
sys.setdlopenflags(os.RTLD_NOW | os.RTLD_LOCAL)        # deliberately WITHOUT RTLD_DEEPBIND
try:
    importlib.import_module("sqlnb._fast_bdb")
except ImportError as exc:
    print("REFUSED:", exc)
else:
    import sqlnb._fast_bdb as m
    print("LOADED:", m.sqlite_version(), m.HEADER_VERSION)
"""


@pytest.mark.bdb
def test_import_time_version_guard_runs_for_bdb():
    """Loaded the naive way after a global libsqlite3, the bdb module would bind to the wrong
    SQLite; its import-time check must refuse instead of silently writing a SQLite file."""
    need_engine("bdb")
    r = subprocess.run([sys.executable, "-c", MISBOUND], capture_output=True, text=True, timeout=50,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("REFUSED:"), r.stdout
    assert "compiled against 3.7.6.2" in r.stdout and "mis-bound" in r.stdout


# ---------------------------------------------------------------------------
# foreign files
# ---------------------------------------------------------------------------
def _sqlite_file(p: Path) -> Path:
    s = sqlite3.connect(p)
    s.execute("CREATE TABLE t (a)")
    s.execute("INSERT INTO t VALUES (1)")
    s.commit()
    s.close()
    return p


def _bdb_file(p: Path) -> Path:
    c = sqlnb.connect(str(p), engine="bdb")
    c.execute("CREATE TABLE t (a)")
    c.execute("INSERT INTO t VALUES (1)")
    c.commit()
    c.close()
    return p


@pytest.mark.bdb
def test_sqlite_file_opened_with_bdb(tmp_path):
    need_engine("bdb")
    p = _sqlite_file(tmp_path / "real.db")
    before = sha256(p)
    with pytest.raises(errors.NotADatabaseError) as ei:
        sqlnb.connect(str(p), engine="bdb").execute("SELECT * FROM t")
    assert "SQLite database file" in str(ei.value) and "engine='sqlite'" in str(ei.value)
    assert sha256(p) == before
    assert not (tmp_path / "real.db-journal").exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["real.db"]
    assert sqlite3.connect(p).execute("SELECT a FROM t").fetchall() == [(1,)]  # still fine


@pytest.mark.parametrize("other", ["sqlite", "system"])
@pytest.mark.bdb
def test_bdb_file_opened_with_sqlite(tmp_path, other):
    need_engine("bdb")
    need_engine(other)
    p = _bdb_file(tmp_path / "b.db")
    before = sha256(p)
    env_before = sorted(x.name for x in (tmp_path / "b.db-journal").iterdir())
    with pytest.raises(errors.NotADatabaseError) as ei:
        sqlnb.connect(str(p), engine=other).execute("SELECT * FROM t")
    assert "BerkeleyDB SQL database" in str(ei.value) and "engine='bdb'" in str(ei.value)
    assert sha256(p) == before
    assert sorted(x.name for x in (tmp_path / "b.db-journal").iterdir()) == env_before
    c = sqlnb.connect(str(p), engine="bdb")  # and bdb still reads it
    assert c.execute("SELECT a FROM t").fetchall() == [(1,)]
    c.close()


@pytest.mark.parametrize("content", [b"", b"this is not a database at all" * 100, b"\x00" * 8192])
@pytest.mark.bdb
def test_non_database_files_on_bdb(tmp_path, content):
    need_engine("bdb")
    p = tmp_path / "junk.db"
    p.write_bytes(content)
    with pytest.raises(errors.NotADatabaseError, match="not a BerkeleyDB SQL database"):
        sqlnb.connect(str(p), engine="bdb")
    assert p.read_bytes() == content
    assert sorted(x.name for x in tmp_path.iterdir()) == ["junk.db"]


@pytest.mark.bdb
def test_stray_bdb_environment_next_to_a_sqlite_file(tmp_path):
    """A real BDB environment directory left next to a SQLite file: SQLite alone reports
    'disk I/O error'; sqlnb names the directory and what to do."""
    need_engine("bdb")
    _bdb_file(tmp_path / "b.db")
    p = _sqlite_file(tmp_path / "s.db")
    (tmp_path / "b.db-journal").rename(tmp_path / "s.db-journal")
    before = sha256(p)
    with pytest.raises(errors.OperationalError) as ei:
        sqlnb.connect(str(p), engine="sqlite").execute("SELECT * FROM t")
    assert "s.db-journal" in str(ei.value) and "Remove that directory" in str(ei.value)
    assert sha256(p) == before


@pytest.mark.bdb
def test_missing_directory_and_read_only_missing_file(tmp_path):
    need_engine("bdb")
    with pytest.raises(errors.CantOpenError, match="does not exist"):
        sqlnb.connect(str(tmp_path / "no" / "such.db"), engine="bdb")
    assert not (tmp_path / "no").exists()
    with pytest.raises(errors.CantOpenError, match="never creates one"):
        sqlnb.connect(str(tmp_path / "none.db"), engine="bdb", mode="ro")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# locking: nothing left open, no self-deadlock, cross-process waits end
# ---------------------------------------------------------------------------
@pytest.mark.bdb
def test_cursor_keeps_no_statement_open(tmp_path, bdb):
    bdb.execute("CREATE TABLE big (i INTEGER, s TEXT)")
    bdb.executemany("INSERT INTO big VALUES (?, ?)", ((i, f"r{i}") for i in range(10000)))
    bdb.commit()
    cur = bdb.execute("SELECT i, s FROM big ORDER BY i")
    assert cur.fetchone() == (0, "r0")  # the rest is not fetched yet ...
    other = sqlnb.connect(str(tmp_path / "b.db"), engine="bdb", isolation_level=None)
    # ... and still another connection reads and writes the same table (on a raw bdb
    # statement this would deadlock this thread forever)
    assert other.execute("SELECT count(*) FROM big").fetchone() == (10000,)
    other.execute("INSERT INTO big VALUES (-1, 'other')")
    assert cur.fetchmany(3) == [(1, "r1"), (2, "r2"), (3, "r3")]
    rest = cur.fetchall()
    assert len(rest) == 10000 - 4 and rest[-1] == (9999, "r9999")  # a snapshot of execute() time
    assert cur.fetchone() is None and cur.fetchall() == []
    assert [r for r, in bdb.execute("SELECT i FROM big WHERE i < 2 ORDER BY i")] == [-1, 0, 1]
    other.close()


def test_fetch_styles_agree_across_engines(con):
    con.execute("CREATE TABLE n (i)")
    con.executemany("INSERT INTO n VALUES (?)", ((i,) for i in range(5000)))
    con.commit()
    cur = con.execute("SELECT i FROM n ORDER BY i")
    got = [cur.fetchone()[0]] + [r[0] for r in cur.fetchmany(4500)] + [r[0] for r in cur]
    assert got == list(range(5000))
    cur.row_factory = lambda c, r: {"i": r[0]}
    assert cur.execute("SELECT i FROM n WHERE i < 2 ORDER BY i").fetchall() == [{"i": 0}, {"i": 1}]
    assert cur.description[0][0] == "i"


@pytest.mark.bdb
def test_open_transaction_in_another_connection_is_refused(tmp_path, bdb):
    bdb.execute("CREATE TABLE t (a)")
    bdb.commit()
    writer = sqlnb.connect(str(tmp_path / "b.db"), engine="bdb")
    writer.execute("INSERT INTO t VALUES (1)")  # implicit BEGIN: a transaction stays open
    assert writer.in_transaction
    with pytest.raises(errors.BusyError) as ei:
        bdb.execute("SELECT * FROM t")
    assert "open transaction" in str(ei.value) and "commit()" in str(ei.value)
    writer.commit()
    assert bdb.execute("SELECT a FROM t").fetchall() == [(1,)]
    # autocommit writers never leave a transaction behind
    auto = sqlnb.connect(str(tmp_path / "b.db"), engine="bdb", isolation_level=None)
    auto.execute("INSERT INTO t VALUES (2)")
    assert bdb.execute("SELECT a FROM t ORDER BY a").fetchall() == [(1,), (2,)]
    writer.close()
    auto.close()


@pytest.mark.bdb
def test_other_databases_are_not_affected(tmp_path, bdb):
    writer = sqlnb.connect(str(tmp_path / "other.db"), engine="bdb")
    writer.execute("CREATE TABLE t (a)")
    writer.execute("INSERT INTO t VALUES (1)")
    assert writer.in_transaction
    assert bdb.execute("SELECT 1").fetchall() == [(1,)]  # a different file: no refusal
    writer.rollback()
    writer.close()


HOLDER = r"""
import sys, time, sqlnb
c = sqlnb.connect(sys.argv[1], engine="bdb")
c.execute("INSERT INTO t VALUES (42)")
print("holding", flush=True)
time.sleep(1.5)
c.commit()
c.close()
print("committed", flush=True)
"""


@pytest.mark.bdb
def test_cross_process_reader_waits_for_the_commit(tmp_path, bdb):
    bdb.execute("CREATE TABLE t (a)")
    bdb.commit()
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "b.db")], stdout=subprocess.PIPE,
                         text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert p.stdout.readline().strip() == "holding"
        # BerkeleyDB blocks this read until the other process commits; the wait ends
        assert bdb.execute("SELECT a FROM t").fetchall() == [(42,)]
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()


HOLD_UNTIL_TOLD = r"""
import sys, time, sqlnb
c = sqlnb.connect(sys.argv[1], engine="bdb")
c.execute("INSERT INTO t VALUES (42)")
print("holding", flush=True)
sys.stdin.readline()  # the test says when (or closes the pipe)
c.commit()
c.close()
print("committed", flush=True)
"""


@pytest.mark.bdb
# Should a wait ever outlast the bound again, it blocks inside BerkeleyDB's lock manager, where the
# module's signal timeout cannot reach: the thread method then ends the run with every stack
# dumped, instead of leaving it hanging (docs/berkeleydb.md, "Lost expiries")
@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("warm", [False, True], ids=["first-read", "table-read-before"])
def test_cross_process_lock_held_on_is_refused_after_the_timeout(tmp_path, bdb, warm):
    """A transaction another process never ends would block a BerkeleyDB read forever (its lock
    manager ignores the busy timeout and Ctrl-C); sqlnb bounds the wait by the connection's timeout."""
    bdb.execute("CREATE TABLE t (a)")
    bdb.commit()
    reader = sqlnb.connect(str(tmp_path / "b.db"), engine="bdb", timeout=0.5)
    if warm:
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
    p = subprocess.Popen([sys.executable, "-c", HOLD_UNTIL_TOLD, str(tmp_path / "b.db")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert p.stdout.readline().strip() == "holding"
        for attempt in (lambda: reader.query_df("SELECT a FROM t"),
                        lambda: reader.execute("SELECT a FROM t").fetchall()):
            t0 = time.monotonic()
            with pytest.raises(sqlnb.errors.BusyError, match="database is locked"):
                attempt()
            took = time.monotonic() - t0
            assert 0.4 <= took < 15, took  # about the timeout (BerkeleyDB's own retries add a little)
        p.stdin.write("commit\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "committed"
        assert reader.execute("SELECT a FROM t").fetchall() == [(42,)]
        assert list(reader.query_df("SELECT a FROM t")["a"]) == [42]
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
        reader.close()


READ_IN_A_PROCESS_OF_ITS_OWN = r"""
import sys, time, sqlnb
from sqlnb import errors
c = sqlnb.connect(sys.argv[1], engine="bdb", timeout=0.5)
for attempt in range(2):                   # the first statement of this process, then another
    t0 = time.monotonic()
    try:
        c.execute("SELECT a FROM t").fetchall()
        print("read", flush=True)
    except errors.Error as exc:
        print(type(exc).__name__, round(time.monotonic() - t0, 1), flush=True)
print("told?", flush=True)
sys.stdin.readline()                       # the holder has committed
print(c.execute("SELECT a FROM t").fetchall(), flush=True)
"""


@pytest.mark.bdb
def test_first_statement_of_a_process_blocked_by_another_process_is_refused(tmp_path, bdb):
    """The first statement of a process opens the database; BerkeleyDB SQL retries that open 100
    times while another process holds a lock it needs, each wait refused after the lock timeout,
    then answers SQLITE_BUSY and, once, SQLITE_NOMEM. The reader gets BusyError (never NoMemError,
    never a wait without end) and reads normally once the holder has committed.

    Run in processes of their own: a wait without end would block the reader process, not this
    one, and the test fails at its deadline instead of hanging the run."""
    bdb.execute("CREATE TABLE t (a)")
    bdb.commit()
    db = str(tmp_path / "b.db")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_UNTIL_TOLD, db], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    reader = None
    try:
        assert holder.stdout.readline().strip() == "holding"
        reader = subprocess.Popen([sys.executable, "-c", READ_IN_A_PROCESS_OF_ITS_OWN, db],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env)
        lines = []
        with ThreadPoolExecutor(1) as pool:  # each line within a deadline, or the test fails
            for _ in range(3):
                try:
                    lines.append(pool.submit(reader.stdout.readline).result(timeout=90).split())
                except TimeoutError:
                    reader.kill()
                    pytest.fail(f"the reader process waited without end; it said {lines}")
        assert [line[0] for line in lines] == ["BusyError", "BusyError", "told?"], lines
        holder.stdin.write("commit\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "committed"
        out, err = reader.communicate("go\n", timeout=90)
        assert out.strip() == "[(42,)]", (out, err)
        assert reader.returncode == 0, err
        assert holder.wait(timeout=30) == 0
    finally:
        for p in (holder, reader):
            if p is not None and p.poll() is None:
                p.kill()


@pytest.mark.bdb
def test_query_df_leaves_nothing_open(tmp_path, bdb):
    pytest.importorskip("pandas")
    bdb.execute("CREATE TABLE t (a, b)")
    bdb.executemany("INSERT INTO t VALUES (?, ?)", [(i, str(i)) for i in range(100)])
    bdb.commit()
    df = bdb.query_df("SELECT a, b FROM t ORDER BY a")
    assert list(df.columns) == ["a", "b"] and len(df) == 100 and df["a"].iloc[-1] == 99
    other = sqlnb.connect(str(tmp_path / "b.db"), engine="bdb", isolation_level=None)
    other.execute("DELETE FROM t WHERE a >= 50")
    assert bdb.execute("SELECT count(*) FROM t").fetchone() == (50,)
    other.close()


@pytest.mark.bdb
def test_fetch_df_after_partial_fetch(tmp_path, bdb):
    """Cursor.fetch_df takes the rows a bdb cursor buffered at execute(), from where fetchone() stopped."""
    pytest.importorskip("pandas")
    bdb.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    bdb.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(10)])
    bdb.commit()
    cur = bdb.execute("SELECT a, b FROM t ORDER BY a")
    assert cur.fetchone() == (0, "v0")
    df = cur.fetch_df()
    assert list(df.columns) == ["a", "b"]
    assert df["a"].tolist() == list(range(1, 10)) and df["b"].iloc[-1] == "v9"
    assert cur.fetchone() is None


# ---------------------------------------------------------------------------
# fork
# ---------------------------------------------------------------------------
def _in_child(fn) -> tuple[int, str]:
    """Run ``fn`` in a forked child; return (exit code, what it wrote)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        os.close(r)
        code = 0
        try:
            msg = fn()
        except BaseException as exc:  # noqa: BLE001
            msg, code = f"{type(exc).__name__}: {exc}", 3
        os.write(w, str(msg).encode())
        os.close(w)
        os._exit(code)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), data.decode()


@pytest.mark.bdb
def test_fork_with_open_bdb_connection(tmp_path, bdb):
    bdb.execute("CREATE TABLE t (a)")
    bdb.execute("INSERT INTO t VALUES (1)")
    bdb.commit()
    assert bdb.execute("SELECT a FROM t").fetchall() == [(1,)]

    def child():
        out = []
        for what, action in (
                ("inherited", lambda: bdb.execute("SELECT a FROM t").fetchall()),
                ("new", lambda: sqlnb.connect(str(tmp_path / "b.db"), engine="bdb")),
                ("new-memory", lambda: sqlnb.connect(":memory:", engine="bdb"))):
            try:
                action()
                out.append(f"{what}: USED")
            except errors.EngineUnavailableError as exc:
                out.append(f"{what}: refused ({'not fork-safe' in str(exc)})")
        bdb.close()  # must not close the parent's handle
        import gc
        gc.collect()
        # the sqlite engine is unaffected in the child
        c = sqlnb.connect(str(tmp_path / "child-sqlite.db"), engine="sqlite")
        c.execute("CREATE TABLE x (a)")
        c.close()
        return "; ".join(out)

    code, msg = _in_child(child)
    assert code == 0, msg
    assert msg == "inherited: refused (True); new: refused (True); new-memory: refused (True)"
    # the parent carries on: its connection, and new ones, still work
    bdb.execute("INSERT INTO t VALUES (2)")
    bdb.commit()
    assert bdb.execute("SELECT a FROM t ORDER BY a").fetchall() == [(1,), (2,)]
    c2 = sqlnb.connect(str(tmp_path / "b.db"), engine="bdb")
    assert c2.execute("SELECT count(*) FROM t").fetchone() == (2,)
    c2.close()


@pytest.mark.bdb
def test_fork_without_open_bdb_connections_is_fine(tmp_path):
    need_engine("bdb")
    _bdb_file(tmp_path / "b.db")

    def child():
        c = sqlnb.connect(str(tmp_path / "b.db"), engine="bdb")
        rows = c.execute("SELECT a FROM t").fetchall()
        c.close()
        return repr(rows)

    import gc

    gc.collect()  # a connection an earlier test dropped without close() is closed by the collector
    assert engines.get("bdb").open_connections() == [], "a bdb connection is still open before the fork"
    code, msg = _in_child(child)
    assert (code, msg) == (0, "[(1,)]")
    c = sqlnb.connect(str(tmp_path / "b.db"), engine="bdb")
    assert c.execute("SELECT a FROM t").fetchall() == [(1,)]
    c.close()


# ---------------------------------------------------------------------------
# the notebook
# ---------------------------------------------------------------------------
@pytest.mark.timeout(300)
@pytest.mark.notebook
@pytest.mark.bdb
def test_berkeleydb_notebook_runs(tmp_path):
    need_engine("bdb")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = ROOT / "notebooks" / "04-berkeleydb.ipynb"
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + env_before if env_before else "")
    try:
        client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = env_before
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "FeatureNotSupportedError" in text and "3.7.6.2" in text


FORK_EXIT = r"""
import os, sys
import sqlnb
from sqlnb import errors
p = sys.argv[1]
c = sqlnb.connect(p, engine="bdb")
c.execute("CREATE TABLE t (a)")
c.execute("INSERT INTO t VALUES (1)")
c.commit()
pid = os.fork()
if pid == 0:
    try:
        c.execute("SELECT * FROM t")
    except errors.EngineUnavailableError:
        print("child: refused", flush=True)
    sys.exit(0)  # a normal exit: interpreter finalization deallocates the inherited connection
_, status = os.waitpid(pid, 0)
c2 = sqlnb.connect(p, engine="bdb")   # without the guard: CorruptError, then a hang
print("parent:", c2.execute("SELECT count(*) FROM t").fetchone(), flush=True)
c.execute("INSERT INTO t VALUES (2)")
c.commit()
print("parent:", c.execute("SELECT count(*) FROM t").fetchone(), os.waitstatus_to_exitcode(status), flush=True)
"""


@pytest.mark.bdb
def test_fork_child_exiting_normally_leaves_the_parent_working(tmp_path):
    """The hazard of the engine notes: a forked child that exits normally used to close the
    parent's BerkeleyDB handle; the parent's next open then failed ('database disk image is
    malformed') and hung."""
    need_engine("bdb")
    r = subprocess.run([sys.executable, "-c", FORK_EXIT, str(tmp_path / "f.db")], capture_output=True,
                       text=True, timeout=50, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["child: refused", "parent: (1,)", "parent: (2,) 0"]


# ---------------------------------------------------------------------------
# a process killed with the database open: the next open recovers, never hangs
# ---------------------------------------------------------------------------
DIE_IN_ENV = r"""
import ctypes, os, signal, sys
import sqlnb
db, mutex = sys.argv[1], int(sys.argv[2])
c = sqlnb.connect(db, engine="bdb")
c.execute("INSERT INTO keep VALUES (-1)")  # never committed: recovery must roll it back
if mutex:
    # Die holding one of the environment's mutexes, as a writer SIGKILLed inside BerkeleyDB
    # can: join the environment with a handle of our own and lock mutex number `mutex`
    # (BerkeleyDB's own entry points; the public ones are function pointers in DB_ENV).
    lib = ctypes.CDLL("libdb_sql-5.3.so")
    env = ctypes.c_void_p()
    assert lib.db_env_create(ctypes.byref(env), 0) == 0
    assert getattr(lib, "__env_open_pp")(env, (db + "-journal").encode(), 0, 0) == 0  # DB_JOINENV
    assert getattr(lib, "__mutex_lock_pp")(env, mutex) == 0
os.kill(os.getpid(), signal.SIGKILL)
"""

CHECK_AFTER_DEATH = r"""
import json, sys
import sqlnb
c = sqlnb.connect(sys.argv[1], engine="bdb")
out = {"integrity": c.execute("PRAGMA integrity_check").fetchall(),
       "keep": c.execute("SELECT x FROM keep ORDER BY x").fetchall()}
c.execute("INSERT INTO keep VALUES (2)")
c.commit()
out["after"] = c.execute("SELECT x FROM keep ORDER BY x").fetchall()
c.close()
print(json.dumps(out))
"""


def _py(code, *args, timeout=60):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def _new_keep_db(tmp_path) -> str:
    db = str(tmp_path / "k.db")
    r = _py("import sys, sqlnb\nc = sqlnb.connect(sys.argv[1], engine='bdb')\n"
            "c.execute('CREATE TABLE keep (x)')\nc.execute('INSERT INTO keep VALUES (42)')\n"
            "c.commit()\nc.close()", db)
    assert r.returncode == 0, r.stderr
    return db


@pytest.mark.bdb
@pytest.mark.parametrize("mutex", [0, 1, 2], ids=["no-mutex", "mutex-1", "mutex-2"])
def test_open_after_a_process_died_in_the_environment(tmp_path, mutex):
    """A process SIGKILLed with the database open, mid-transaction. When it died holding one
    of the environment's mutexes (1: the mutex region's, which BerkeleyDB SQL's own "failchk"
    open waits for; 2: the environment region's, which joining the environment waits for),
    the next open blocked forever. Now BerkeleyDB runs full recovery: the committed row is
    kept, the unfinished insert is gone, and the database takes writes again."""
    import json
    import signal

    need_engine("bdb")
    db = _new_keep_db(tmp_path)
    r = _py(DIE_IN_ENV, db, mutex)
    assert r.returncode == -signal.SIGKILL, r.stderr
    try:
        r = _py(CHECK_AFTER_DEATH, db, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("opening the database after the SIGKILL hung for 30 s")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"integrity": [["ok"]], "keep": [[42]], "after": [[2], [42]]}


HOLD_OPEN = r"""
import sys, sqlnb
c = sqlnb.connect(sys.argv[1], engine="bdb")
print(c.execute("SELECT count(*) FROM keep").fetchone()[0], flush=True)
sys.stdin.readline()
c.close()
"""


@pytest.mark.bdb
def test_environment_of_a_live_process_is_left_alone(tmp_path):
    """The region files are removed only when every process registered in the environment is
    dead: with a live one too, nothing is touched (that would split the environment in two)."""
    import signal

    need_engine("bdb")
    clear = engines.get("bdb").load().clear_dead_env
    db = _new_keep_db(tmp_path)
    home = Path(db + "-journal")
    assert clear(str(home)) == _bdb.ENV_HEALTHY  # everybody closed cleanly
    live = subprocess.Popen([sys.executable, "-c", HOLD_OPEN, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert live.stdout.readline().strip() == "1"
        assert _py(DIE_IN_ENV, db, 0).returncode == -signal.SIGKILL
        assert clear(str(home)) == _bdb.ENV_SHARED_DEAD
        assert (home / "__db.001").exists()
        live.communicate("close\n", timeout=30)
        assert live.returncode == 0
    finally:
        if live.poll() is None:
            live.kill()
    assert clear(str(home)) == _bdb.ENV_CLEARED  # only the dead one is left registered
    assert not list(home.glob("__db.0*")) and (home / "__db.register").exists()
    assert clear(str(home)) == _bdb.ENV_CLEARED  # (idempotent until BerkeleyDB recovers)
    r = _py(CHECK_AFTER_DEATH, db, timeout=30)
    assert r.returncode == 0, r.stderr
    assert clear(str(home)) == _bdb.ENV_HEALTHY  # recovered and closed cleanly


@pytest.mark.bdb
def test_registry_check_keeps_this_process_registered(tmp_path, bdb):
    """fcntl locks are per process, and closing any descriptor of a file drops them all: the
    check must not open the registry of an environment this process uses, or this process
    would look dead to the others (and they would remove the regions under it)."""
    bdb.execute("CREATE TABLE t (a)")
    bdb.commit()
    home = str(tmp_path / "b.db-journal")
    assert engines.get("bdb").load().clear_dead_env(home) == _bdb.ENV_OPEN_HERE
    r = _py("import sys\nfrom sqlnb import engines\nprint(engines.get('bdb').load().clear_dead_env(sys.argv[1]))", home)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(_bdb.ENV_HEALTHY)  # this process still holds its slot
    assert os.path.exists(os.path.join(home, "__db.001"))
    bdb.execute("INSERT INTO t VALUES (1)")
    bdb.commit()
    assert bdb.execute("SELECT a FROM t").fetchall() == [(1,)]
