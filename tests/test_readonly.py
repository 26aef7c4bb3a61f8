"""Read-only modes and table/column policies (issue 5).

The corpus of write and escape attempts runs in ``ro`` and ``ro-scratch`` on every
engine, twice: on a handle opened read-only (the normal ``connect(mode="ro")``) and
on a handle opened read-write with the policy installed by hand, so the authorizer
alone has to hold. Afterwards the database file's sha256, ``PRAGMA data_version`` seen
by an observer and the directory listing must be unchanged.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass, field

import pytest

import sqlnb
from sqlnb import errors
from sqlnb.engines import open as _modes
from sqlnb.authorizer import DENY, IGNORE, OK, AuthAction, Policy, Why
from sqlnb.connection import Connection

from tests.conftest import has_feature

pytestmark = pytest.mark.timeout(120)


def feature(engine: str, f: str) -> bool:
    """Features beyond conftest's table that this file needs."""
    if f == "vacuum_into":
        return engine == "sqlite" or (engine == "system" and sqlite3.sqlite_version_info >= (3, 27))
    if f == "rename_column":
        return engine != "bdb"
    if f == "pragma_vtab":  # table-valued pragma functions (3.16+)
        return engine != "bdb"
    if f == "data_version":
        return engine != "bdb"
    if f == "fts3_tokenizer":
        return engine == "system"  # Debian's build enables the two-argument form
    if f == "bdb":
        return engine == "bdb"
    return has_feature(engine, f)


# --------------------------------------------------------------------------------------
# the database under test
# --------------------------------------------------------------------------------------
def build_db(engine: str, d) -> str:
    path = str(d / "main.db")
    con = sqlnb.connect(path, engine=engine, isolation_level=None)
    con.executescript("""
        CREATE TABLE flights(id INTEGER PRIMARY KEY, origin TEXT, dest TEXT, dep_delay REAL);
        CREATE INDEX idx_flights_origin ON flights(origin);
        CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT);
        CREATE TABLE secrets(k TEXT, v TEXT);
        CREATE TABLE audit(flight INTEGER);
        CREATE VIEW v_flights AS SELECT origin, dest FROM flights;
        CREATE VIEW v_users AS SELECT name, email FROM users;
        CREATE VIEW v_secrets AS SELECT * FROM secrets;
        CREATE TRIGGER tr_flights AFTER INSERT ON flights BEGIN INSERT INTO audit VALUES(new.id); END;
        PRAGMA user_version = 7;
    """)
    airports = ["JFK", "LGA", "EWR", "LAX", "SFO", "ORD"]
    for i in range(1, 41):
        con.execute("INSERT INTO flights VALUES(?,?,?,?)",
                    (i, airports[i % 3], airports[3 + i % 3], float((i * 7) % 23 - 5)))
    con.executemany("INSERT INTO users(name, email) VALUES(?,?)",
                    [("ann", "ann@example.org"), ("bob", "bob@example.org")])
    con.execute("INSERT INTO secrets VALUES('api_key', 's3cr3t')")
    if feature(engine, "fts5"):
        con.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body)")
        con.executemany("INSERT INTO docs VALUES(?,?)",
                        [("delays", "late departures from JFK"), ("weather", "storms over ORD")])
    if feature(engine, "rtree"):
        con.execute("CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1, y0, y1)")
        con.execute("INSERT INTO boxes VALUES(1, 0, 10, 0, 10)")
    if feature(engine, "lsm1"):
        con.execute(f"CREATE VIRTUAL TABLE kv USING lsm1('{d / 'kv.lsm'}', key, TEXT, val)")
        con.execute("INSERT INTO kv VALUES('k1', 'v1')")
    con.close()
    other = sqlnb.connect(str(d / "other.db"), engine=engine, isolation_level=None)
    other.execute("CREATE TABLE t(a)")
    other.close()
    return path


@pytest.fixture
def db(engine, tmp_path):
    """A fresh database (for the corpus: it checks that nothing at all changes)."""
    return build_db(engine, tmp_path)


@pytest.fixture(scope="module")
def _db_cache(tmp_path_factory):
    return {}, tmp_path_factory


@pytest.fixture
def rdb(engine, _db_cache):
    """One database per engine shared by the tests that only read or are refused."""
    cache, factory = _db_cache
    if engine not in cache:
        cache[engine] = build_db(engine, factory.mktemp(f"ro-{engine}"))
    return cache[engine]


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@dataclass
class Snapshot:
    files: list
    hashes: dict
    data_version: int | None = None
    observer: object = field(default=None, repr=False)


def snapshot(engine, path, observer=None) -> Snapshot:
    d = os.path.dirname(path)
    files = sorted(os.listdir(d))
    hashes = {f: sha256(os.path.join(d, f)) for f in files if os.path.isfile(os.path.join(d, f))}
    dv = observer.execute("PRAGMA data_version").fetchone()[0] if observer is not None else None
    return Snapshot(files, hashes, dv)


def make_observer(engine, path):
    """A second connection that sees commits of others through PRAGMA data_version."""
    if not feature(engine, "data_version"):
        return None
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    con.execute("PRAGMA data_version").fetchone()
    return con


def open_policy(engine, path, mode, handle, **policy):
    """A Connection in ``mode`` on a handle opened read-only ("ro") or read-write ("rw")."""
    if handle == "ro":
        return sqlnb.connect(path, engine=engine, mode=mode, isolation_level=None, **policy)
    raw = _modes.open_raw(engine, path, mode="rw")
    try:
        raw.busy_timeout(5.0)
        _modes.install(raw, engine, mode=mode, **policy)
    except BaseException:
        raw.close()
        raise
    return Connection(raw, engine=engine, mode=mode, database=path, isolation_level=None)


# --------------------------------------------------------------------------------------
# the corpus: (label, statements, needs, temp)  temp=True: allowed in ro-scratch
# --------------------------------------------------------------------------------------
CORPUS = [
    ("insert", ["INSERT INTO flights VALUES(100, 'JFK', 'BOS', 1.0)"], (), False),
    ("insert default values", ["INSERT INTO flights DEFAULT VALUES"], (), False),
    ("insert select", ["INSERT INTO flights(origin, dest) SELECT dest, origin FROM flights"], (), False),
    ("update", ["UPDATE flights SET dep_delay = 0"], (), False),
    ("update with subquery", ["UPDATE flights SET origin = (SELECT name FROM users LIMIT 1)"], (), False),
    ("delete", ["DELETE FROM flights"], (), False),
    ("delete with subquery", ["DELETE FROM flights WHERE id IN (SELECT id FROM flights WHERE dep_delay > 0)"], (), False),
    ("replace", ["REPLACE INTO flights VALUES(1, 'X', 'Y', 0)"], (), False),
    ("insert or replace", ["INSERT OR REPLACE INTO users VALUES(1, 'eve', 'eve@example.org')"], (), False),
    ("upsert", ["INSERT INTO flights VALUES(1, 'A', 'B', 0) ON CONFLICT(id) DO UPDATE SET dep_delay = 99"],
     ("upsert",), False),
    ("delete returning", ["DELETE FROM flights RETURNING id"], ("returning",), False),
    ("update returning", ["UPDATE flights SET origin = 'Z' RETURNING *"], ("returning",), False),
    ("insert returning", ["INSERT INTO audit VALUES(5) RETURNING flight"], ("returning",), False),
    ("WITH ... DELETE", ["WITH x AS (SELECT 1) DELETE FROM flights"], ("cte",), False),
    ("WITH ... UPDATE", ["WITH x AS (SELECT id FROM flights) UPDATE flights SET dest = 'Q' WHERE id IN x"],
     ("cte",), False),
    ("WITH ... INSERT", ["WITH x(a) AS (SELECT 'JFK') INSERT INTO flights(origin) SELECT a FROM x"], ("cte",), False),
    ("create table", ["CREATE TABLE t2(a)"], (), False),
    ("create table as", ["CREATE TABLE t3 AS SELECT * FROM flights"], (), False),
    ("drop table", ["DROP TABLE flights"], (), False),
    ("alter rename table", ["ALTER TABLE flights RENAME TO f2"], (), False),
    ("alter add column", ["ALTER TABLE flights ADD COLUMN extra TEXT"], (), False),
    ("alter rename column", ["ALTER TABLE flights RENAME COLUMN origin TO o"], ("rename_column",), False),
    ("create index", ["CREATE INDEX i2 ON flights(dest)"], (), False),
    ("drop index", ["DROP INDEX idx_flights_origin"], (), False),
    ("create view", ["CREATE VIEW v2 AS SELECT 1"], (), False),
    ("drop view", ["DROP VIEW v_flights"], (), False),
    ("create trigger", ["CREATE TRIGGER tr2 AFTER DELETE ON flights BEGIN SELECT 1; END"], (), False),
    ("drop trigger", ["DROP TRIGGER tr_flights"], (), False),
    ("update schema table", ["UPDATE sqlite_master SET sql = 'x' WHERE name = 'flights'"], (), False),
    ("temp table", ["CREATE TEMP TABLE s1(a)", "INSERT INTO s1 VALUES(1)", "UPDATE s1 SET a = 2",
                    "DELETE FROM s1", "DROP TABLE s1"], (), True),
    ("temp table as select", ["CREATE TEMP TABLE s2 AS SELECT * FROM flights WHERE dep_delay > 0",
                              "SELECT * FROM s2"], (), True),
    ("temp index", ["CREATE TEMP TABLE s3(a)", "CREATE INDEX s3_a ON s3(a)", "DROP INDEX s3_a"], (), True),
    ("temp view", ["CREATE TEMP VIEW tv AS SELECT origin FROM flights", "SELECT * FROM tv",
                   "DROP VIEW tv"], (), True),
    ("temp trigger", ["CREATE TEMP TABLE s4(a)", "CREATE TEMP TRIGGER ttr AFTER INSERT ON s4 BEGIN SELECT 1; END",
                      "INSERT INTO s4 VALUES(1)", "DROP TRIGGER ttr"], (), True),
    ("temp alter", ["CREATE TEMP TABLE s5(a)", "ALTER TABLE s5 RENAME TO s6", "ALTER TABLE s6 ADD COLUMN b"],
     (), True),
    ("temp trigger writing main", ["CREATE TEMP TABLE s7(a)",
                                   "CREATE TEMP TRIGGER t7 AFTER INSERT ON s7 BEGIN DELETE FROM flights; END",
                                   "INSERT INTO s7 VALUES(1)"], (), False),
    ("temp view instead-of writing main", [
        "CREATE TEMP VIEW tv8 AS SELECT 1 AS a",
        "CREATE TEMP TRIGGER t8 INSTEAD OF INSERT ON tv8 BEGIN UPDATE flights SET dep_delay = 0; END",
        "INSERT INTO tv8 VALUES(1)"], (), False),
    ("attach other file then write", ["ATTACH '{dir}/other.db' AS o", "INSERT INTO o.t VALUES(1)"], (), False),
    ("attach same file read-write then write", ["ATTACH 'file:{path}?mode=rw' AS again",
                                                "DELETE FROM again.flights"], ("uri",), False),
    ("attach new file", ["ATTACH '{dir}/new.db' AS n", "CREATE TABLE n.x(a)"], (), False),
    ("attach memory", ["ATTACH ':memory:' AS m", "CREATE TABLE m.x(a)"], (), False),
    ("detach", ["DETACH DATABASE temp"], (), False),
    ("vacuum", ["VACUUM"], (), False),
    ("vacuum into", ["VACUUM INTO '{dir}/copy.db'"], ("vacuum_into",), False),
    ("reindex", ["REINDEX"], (), False),
    ("reindex index", ["REINDEX idx_flights_origin"], (), False),
    ("analyze", ["ANALYZE"], (), False),
    ("analyze table", ["ANALYZE flights"], (), False),
    ("query_only=0 then insert", ["PRAGMA query_only = 0", "INSERT INTO audit VALUES(1)"], (), False),
    ("query_only=OFF", ["PRAGMA query_only = OFF"], (), False),
    ("writable_schema=1", ["PRAGMA writable_schema = 1",
                           "UPDATE sqlite_master SET sql = 'x' WHERE name = 'flights'"], (), False),
    ("journal_mode=wal", ["PRAGMA journal_mode = WAL"], (), False),
    ("journal_mode=delete", ["PRAGMA main.journal_mode = DELETE"], (), False),
    ("user_version", ["PRAGMA user_version = 42"], (), False),
    ("user_version call form", ["PRAGMA user_version(43)"], (), False),
    ("schema_version", ["PRAGMA schema_version = 99"], (), False),
    ("application_id", ["PRAGMA application_id = 5"], (), False),
    ("auto_vacuum", ["PRAGMA auto_vacuum = FULL"], (), False),
    ("page_size", ["PRAGMA page_size = 8192"], (), False),
    ("incremental_vacuum", ["PRAGMA incremental_vacuum"], (), False),
    ("wal_checkpoint", ["PRAGMA wal_checkpoint"], (), False),
    ("optimize", ["PRAGMA optimize"], (), False),
    ("savepoint around insert", ["SAVEPOINT a", "INSERT INTO audit VALUES(1)", "RELEASE a"], (), False),
    ("savepoint rollback-to", ["SAVEPOINT b", "DELETE FROM flights", "ROLLBACK TO b", "RELEASE b"], (), False),
    ("begin immediate delete commit", ["BEGIN IMMEDIATE", "DELETE FROM flights", "COMMIT"], (), False),
    ("load_extension", ["SELECT load_extension('{dir}/nonexistent.so')"], (), False),
    ("fts3_tokenizer", ["SELECT fts3_tokenizer('simple')"], ("fts3_tokenizer",), False),
    ("fts5 optimize", ["INSERT INTO docs(docs) VALUES('optimize')"], ("fts5",), False),
    ("fts5 rebuild", ["INSERT INTO docs(docs) VALUES('rebuild')"], ("fts5",), False),
    ("fts5 delete-all", ["INSERT INTO docs(docs) VALUES('delete-all')"], ("fts5",), False),
    ("fts5 config", ["INSERT INTO docs(docs, rank) VALUES('rank', 'bm25(10.0, 5.0)')"], ("fts5",), False),
    ("fts5 insert", ["INSERT INTO docs VALUES('new', 'row')"], ("fts5",), False),
    ("fts5 shadow write", ["DELETE FROM docs_data"], ("fts5",), False),
    ("fts5 drop", ["DROP TABLE docs"], ("fts5",), False),
    ("fts5 temp vtable", ["CREATE VIRTUAL TABLE temp.ft2 USING fts5(x)"], ("fts5",), False),
    ("rtree insert", ["INSERT INTO boxes VALUES(2, 0, 1, 0, 1)"], ("rtree",), False),
    ("rtree shadow insert", ["INSERT INTO boxes_node VALUES(99, x'00')"], ("rtree",), False),
    ("rtree shadow delete after connect", ["DELETE FROM boxes_node WHERE nodeno IN (SELECT id FROM boxes)"],
     ("rtree",), False),
    ("rtree shadow update after connect", ["UPDATE boxes_node SET data = (SELECT x'00' FROM boxes LIMIT 1)"],
     ("rtree",), False),
    ("lsm1 create", ["CREATE VIRTUAL TABLE kv2 USING lsm1('{dir}/kv2.lsm', key, TEXT, val)"], ("lsm1",), False),
    ("lsm1 create temp then insert", ["CREATE VIRTUAL TABLE temp.kv3 USING lsm1('{dir}/kv3.lsm', key, TEXT, val)",
                                      "INSERT INTO kv3 VALUES('a', 'b')"], ("lsm1",), False),
    ("lsm1 insert", ["INSERT INTO kv VALUES('k9', 'v9')"], ("lsm1",), False),
    ("lsm1 delete", ["DELETE FROM kv"], ("lsm1",), False),
    ("bdb pragma multiversion", ["PRAGMA multiversion = ON"], ("bdb",), False),
    ("bdb pragma txn_bulk", ["PRAGMA txn_bulk = ON"], ("bdb",), False),
    ("bdb pragma error file", ["PRAGMA bdbsql_error_file = '{dir}/errors.txt'"], ("bdb",), False),
]

READS = [
    ("select", "SELECT * FROM flights WHERE dep_delay > 0 ORDER BY id", ()),
    ("aggregate", "SELECT origin, count(*), avg(dep_delay) FROM flights GROUP BY origin", ()),
    ("join", "SELECT f.id, u.name FROM flights f JOIN users u ON u.id = f.id % 2 + 1", ()),
    ("subquery", "SELECT * FROM flights WHERE id IN (SELECT id FROM flights WHERE origin = 'JFK')", ()),
    ("view", "SELECT * FROM v_flights", ()),
    ("schema", "SELECT name FROM sqlite_master", ()),
    ("explain", "EXPLAIN QUERY PLAN SELECT * FROM flights WHERE origin = 'JFK'", ()),
    ("cte", "WITH d AS (SELECT * FROM flights WHERE dep_delay > 0) SELECT count(*) FROM d", ("cte",)),
    ("recursive cte", "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 100) "
                      "SELECT sum(n) FROM c", ("cte",)),
    ("window", "SELECT id, rank() OVER (PARTITION BY origin ORDER BY dep_delay) FROM flights", ("window",)),
    ("json_each", "SELECT value FROM json_each('[1, 2, 3]')", ("json",)),
    ("json function", "SELECT json_extract('{\"a\": 1}', '$.a')", ("json",)),
    ("fts5 match", "SELECT title, bm25(docs) FROM docs WHERE docs MATCH 'storms'", ("fts5",)),
    ("fts5 highlight", "SELECT highlight(docs, 1, '[', ']') FROM docs WHERE docs MATCH 'JFK'", ("fts5",)),
    ("rtree", "SELECT id FROM boxes WHERE x0 <= 5 AND x1 >= 5", ("rtree",)),
    ("lsm1", "SELECT * FROM kv", ("lsm1",)),
    ("dbstat", "SELECT count(*) FROM dbstat", ("dbstat",)),
    ("pragma table_info", "PRAGMA table_info(flights)", ()),
    ("pragma index_list", "PRAGMA index_list(flights)", ()),
    ("pragma index_info", "PRAGMA index_info(idx_flights_origin)", ()),
    ("pragma foreign_key_list", "PRAGMA foreign_key_list(flights)", ()),
    ("pragma integrity_check", "PRAGMA integrity_check", ()),
    ("pragma quick_check", "PRAGMA quick_check", ()),
    ("pragma compile_options", "PRAGMA compile_options", ()),
    ("pragma database_list", "PRAGMA database_list", ()),
    ("pragma user_version", "PRAGMA user_version", ()),
    ("pragma schema_version", "PRAGMA schema_version", ()),
    ("pragma journal_mode", "PRAGMA journal_mode", ()),
    ("pragma page_count", "PRAGMA main.page_count", ()),
    ("pragma data_version", "PRAGMA data_version", ("data_version",)),
    ("pragma table-valued", "SELECT name FROM pragma_table_info('flights')", ("pragma_vtab",)),
]


def run(con, sql):
    """Execute ``sql``; its rows, or [] for a statement without a result set."""
    cur = con.execute(sql)
    return cur.fetchall() if cur.description else []


def _fmt(stmts, path):
    d = os.path.dirname(path)
    return [s.format(dir=d, path=path) for s in stmts]


def _needs_ok(engine, needs):
    return all(feature(engine, n) for n in needs)


def run_corpus(con, engine, path, mode):
    """Run every corpus entry; return the labels of entries that were NOT refused as expected."""
    bad = []
    for label, stmts, needs, temp in CORPUS:
        if not _needs_ok(engine, needs):
            continue
        allowed = temp and mode == "ro-scratch"
        err = None
        for sql in _fmt(stmts, path):
            try:
                run(con, sql)
            except errors.Error as exc:
                err = exc
                break
        if con.in_transaction:
            con.rollback()
        if allowed and err is not None:
            bad.append(f"{label}: expected to run in {mode}, got {type(err).__name__}: {err}")
        elif not allowed:
            if err is None:
                bad.append(f"{label}: ran in {mode}")
            elif not isinstance(err, errors.ReadOnlyError) and not _core_refused_load_extension(err, label):
                bad.append(f"{label}: refused with {type(err).__name__}: {err} (not ReadOnlyError)")
    return bad


# Attempts the SQLite core itself refuses before asking the authorizer (then any
# error is a refusal; the unchanged files and data_version still prove nothing leaked):
# load_extension() while extension loading is off (3.50 checks that first; it is always
# off in the ro modes), and writes to sqlite_master without writable_schema.
CORE_REFUSES = {"load_extension": "not authorized", "update schema table": "may not be modified",
                "fts3_tokenizer": "not authorized"}


def _core_refused_load_extension(err, label) -> bool:
    return label in CORE_REFUSES and CORE_REFUSES[label] in str(err)


def corpus_size(engine) -> int:
    return sum(1 for _, _, needs, _ in CORPUS if _needs_ok(engine, needs))


def test_corpus_is_big_enough(engine):
    assert corpus_size(engine) >= 40, corpus_size(engine)


@pytest.mark.parametrize("handle", ["ro", "rw"])
@pytest.mark.parametrize("mode", ["ro", "ro-scratch"])
def test_corpus_refused_and_nothing_changes(engine, db, mode, handle):
    observer = make_observer(engine, db)
    before = snapshot(engine, db, observer)
    con = open_policy(engine, db, mode, handle)
    try:
        assert con.raw.policy.mode == mode
        bad = run_corpus(con, engine, db, mode)
        # every read form still works after the attempts
        for label, sql, needs in READS:
            if _needs_ok(engine, needs):
                run(con, sql)
    finally:
        con.close()
    after = snapshot(engine, db, observer)
    if observer is not None:
        observer.close()
    assert bad == [], "\n".join(bad)
    assert after.files == before.files, "files appeared or vanished in the database's directory"
    assert after.hashes == before.hashes, "a file in the database's directory changed"
    assert after.data_version == before.data_version


@pytest.mark.parametrize("handle", ["ro", "rw"])
@pytest.mark.parametrize("label,sql,needs", READS, ids=[r[0] for r in READS])
@pytest.mark.allowed_skip
def test_reads_work_in_ro(engine, rdb, handle, label, sql, needs):
    if not _needs_ok(engine, needs):
        pytest.skip(f"{engine} lacks {needs}")
    con = open_policy(engine, rdb, "ro", handle)
    try:
        rows = run(con, sql)
    finally:
        con.close()
    if label in ("select", "view", "aggregate", "join", "cte", "recursive cte", "window", "json_each",
                 "fts5 match", "fts5 highlight", "rtree", "lsm1", "pragma table_info"):
        assert rows, f"{label} returned no rows"


def test_read_results_match_rw(engine, rdb):
    ro = open_policy(engine, rdb, "ro", "rw")
    rw = sqlnb.connect(rdb, engine=engine, mode="rw")
    try:
        for label, sql, needs in READS:
            if _needs_ok(engine, needs) and label not in ("explain", "pragma data_version", "dbstat",
                                                          "pragma database_list"):
                assert run(ro, sql) == run(rw, sql), label
    finally:
        ro.close()
        rw.close()


def test_transactions_of_reads_work(engine, rdb):
    con = open_policy(engine, rdb, "ro", "ro")
    try:
        con.execute("BEGIN")
        assert con.execute("SELECT count(*) FROM flights").fetchone() == (40,)
        con.execute("COMMIT")
        con.execute("SAVEPOINT s")
        con.execute("SELECT 1").fetchall()
        con.execute("RELEASE s")
        con.execute("BEGIN")
        con.execute("ROLLBACK")
    finally:
        con.close()


# --------------------------------------------------------------------------------------
# refusals are clear
# --------------------------------------------------------------------------------------
def test_refusal_names_mode_action_and_object(engine, rdb):
    con = open_policy(engine, rdb, "ro", "rw")
    try:
        with pytest.raises(errors.ReadOnlyError) as ei:
            con.execute("INSERT INTO flights VALUES(100, 'JFK', 'BOS', 1.0)")
        e = ei.value
        assert str(e) == "mode 'ro' refused INSERT on main.flights"
        assert (e.mode, e.action, e.target) == ("ro", "INSERT", "main.flights")
        assert e.result_code == 23  # SQLITE_AUTH: the authorizer refused, not the file
        assert e.sql.startswith("INSERT INTO flights")
        with pytest.raises(errors.ReadOnlyError, match=r"mode 'ro' refused PRAGMA user_version = 5"):
            con.execute("PRAGMA user_version = 5")
        with pytest.raises(errors.ReadOnlyError, match=r"mode 'ro' refused DROP TABLE on main.flights"):
            con.execute("DROP TABLE flights")
        with pytest.raises(errors.ReadOnlyError, match=r"mode 'ro' refused CREATE TEMP TABLE on temp.x$"):
            con.execute("CREATE TEMP TABLE x(a)")
        with pytest.raises(errors.ReadOnlyError, match=r"mode 'ro' refused ATTACH of '.*other.db'"):
            con.execute(f"ATTACH '{os.path.dirname(rdb)}/other.db' AS o")
        with pytest.raises(errors.ReadOnlyError, match=r"mode 'ro' refused VACUUM"):
            con.execute("VACUUM")
        if feature(engine, "pragma_vtab"):  # refused while stepping: SQLite prepares the PRAGMA then
            with pytest.raises(errors.ReadOnlyError, match=r"mode 'ro' refused PRAGMA secure_delete"):
                run(con, "SELECT * FROM pragma_secure_delete")
    finally:
        con.close()


def test_ro_scratch_refusal_explains_temp(engine, rdb):
    con = open_policy(engine, rdb, "ro-scratch", "rw")
    try:
        with pytest.raises(errors.ReadOnlyError, match=r"refused UPDATE on main.flights.dep_delay .*only on the temp"):
            con.execute("UPDATE flights SET dep_delay = 0")
    finally:
        con.close()


def test_ro_mode_opens_readonly_handle(engine, rdb):
    con = sqlnb.connect(rdb, engine=engine, mode="ro")
    try:
        if engine != "system":
            assert con.raw.db_readonly("main") in (1, -1)  # -1: the bdb core cannot tell
    finally:
        con.close()


def test_mode_cannot_be_changed_after_open(engine, rdb):
    con = sqlnb.connect(rdb, engine=engine, mode="ro")
    try:
        with pytest.raises(errors.ProgrammingError, match="cannot be changed"):
            _modes.install(con.raw, engine, mode="rw")
        with pytest.raises(errors.ReadOnlyError):
            con.execute("DELETE FROM flights")
    finally:
        con.close()


def test_ro_does_not_create_a_missing_file(engine, tmp_path):
    with pytest.raises(errors.CantOpenError, match="does not exist"):
        sqlnb.connect(str(tmp_path / "missing.db"), engine=engine, mode="ro").execute("SELECT 1")
    assert not (tmp_path / "missing.db").exists()


# --------------------------------------------------------------------------------------
# load_extension in rw
# --------------------------------------------------------------------------------------
def test_rw_refuses_load_extension_unless_allowed(engine, rdb, tmp_path):
    lib = str(tmp_path / "nonexistent")
    con = sqlnb.connect(rdb, engine=engine)
    try:
        with pytest.raises(errors.PolicyError, match="refused load_extension") as ei:
            con.execute(f"SELECT load_extension('{lib}')")
        assert "cannot open" not in str(ei.value) and "No such file" not in str(ei.value)
    finally:
        con.close()
    if engine == "system" and not hasattr(sqlite3.Connection, "enable_load_extension"):
        with pytest.raises(errors.NotSupportedError, match="without extension loading"):
            sqlnb.connect(rdb, engine=engine, allow_load_extension=True)
        return
    con = sqlnb.connect(rdb, engine=engine, allow_load_extension=True)
    try:
        assert "load_extension allowed" in con.policy_summary
        with pytest.raises(errors.SQLError) as ei:
            con.execute(f"SELECT load_extension('{lib}')")
        # now the function really ran: the loader itself complains about the missing file
        assert "nonexistent" in str(ei.value)
        assert not isinstance(ei.value, errors.PolicyError)
    finally:
        con.close()


def test_allow_load_extension_is_rw_only(engine, rdb):
    with pytest.raises(ValueError, match="only possible in mode 'rw'"):
        sqlnb.connect(rdb, engine=engine, mode="ro", allow_load_extension=True)


# --------------------------------------------------------------------------------------
# policies
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["rw", "ro", "ro-scratch"])
def test_mask_columns_read_as_null(engine, rdb, mode):
    con = open_policy(engine, rdb, mode, "rw", mask_columns=["users.email"])
    try:
        assert con.execute("SELECT name, email FROM users ORDER BY id").fetchall() == [("ann", None), ("bob", None)]
        assert con.execute("SELECT * FROM users ORDER BY id").fetchall() == [(1, "ann", None), (2, "bob", None)]
        # no leak through filters, expressions or views
        assert con.execute("SELECT count(*) FROM users WHERE email LIKE 'ann%'").fetchone() == (0,)
        assert con.execute("SELECT upper(email) FROM users").fetchall() == [(None,), (None,)]
        assert con.execute("SELECT email FROM v_users").fetchall() == [(None,), (None,)]
        assert con.execute("SELECT name FROM users ORDER BY id").fetchall() == [("ann",), ("bob",)]
        assert "mask: users.email" in con.policy_summary
    finally:
        con.close()


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_deny_tables_refused(engine, rdb, mode):
    con = open_policy(engine, rdb, mode, "rw", deny_tables=["secrets"])
    try:
        with pytest.raises(errors.AccessDeniedError, match=r"refused READ on main.secrets.\w+: the table is in deny_tables"):
            con.execute("SELECT * FROM secrets")
        with pytest.raises(errors.AccessDeniedError):
            con.execute("SELECT v FROM v_secrets")  # through a view
        with pytest.raises(errors.AccessDeniedError):
            con.execute("SELECT * FROM flights WHERE origin IN (SELECT k FROM secrets)")
        if engine != "bdb":  # the 3.7.6.2 core does not authorize count(*) as a READ
            with pytest.raises(errors.AccessDeniedError):
                con.execute("SELECT count(*) FROM secrets")
        assert con.execute("SELECT count(*) FROM flights").fetchone() == (40,)
        if mode == "rw":
            for sql in ("DELETE FROM secrets", "DROP TABLE secrets", "INSERT INTO secrets VALUES('a', 'b')",
                        "CREATE INDEX si ON secrets(k)", "ALTER TABLE secrets RENAME TO s2"):
                with pytest.raises(errors.AccessDeniedError):
                    con.execute(sql)
        assert con.policy_summary == f"{mode}; deny: secrets"
    finally:
        con.close()


def test_deny_tables_qualified_and_case_insensitive(engine, rdb):
    con = open_policy(engine, rdb, "ro", "rw", deny_tables=["main.SECRETS"])
    try:
        with pytest.raises(errors.AccessDeniedError):
            con.execute("SELECT * FROM Secrets")
        if engine != "bdb":  # count(*) reaches the authorizer with no database name
            with pytest.raises(errors.AccessDeniedError):
                con.execute("SELECT count(*) FROM secrets")
    finally:
        con.close()


def test_allow_tables(engine, rdb):
    con = open_policy(engine, rdb, "ro", "rw", allow_tables=["flights", "docs"])
    try:
        assert con.execute("SELECT count(*) FROM flights").fetchone() == (40,)
        assert con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
        with pytest.raises(errors.AccessDeniedError, match="not in allow_tables"):
            con.execute("SELECT * FROM users")
        with pytest.raises(errors.AccessDeniedError):
            con.execute("SELECT * FROM v_users")
        if feature(engine, "fts5"):  # FTS5 reads its shadow tables: allowed with the table
            assert con.execute("SELECT title FROM docs WHERE docs MATCH 'storms'").fetchall() == [("weather",)]
        assert con.policy_summary.startswith("ro; allow: flights, docs")
    finally:
        con.close()


def test_ro_scratch_temp_tables_exempt_from_allow_list(engine, rdb):
    con = open_policy(engine, rdb, "ro-scratch", "rw", allow_tables=["flights"])
    try:
        con.execute("CREATE TEMP TABLE late AS SELECT * FROM flights WHERE dep_delay > 10")
        # (count(*) names no database on some cores, so it is checked like a main table)
        assert con.execute("SELECT count(id) FROM late").fetchone()[0] > 0
        with pytest.raises(errors.AccessDeniedError):
            con.execute("CREATE TEMP TABLE u AS SELECT * FROM users")
    finally:
        con.close()


def test_bad_policy_arguments(engine, rdb):
    with pytest.raises(ValueError, match="bad mask_columns entry 'email'"):
        sqlnb.connect(rdb, engine=engine, mask_columns=["email"])
    with pytest.raises(ValueError, match="bad deny_tables entry"):
        sqlnb.connect(rdb, engine=engine, deny_tables=["a.b.c"])
    with pytest.raises(TypeError, match="authorizer must be callable"):
        sqlnb.connect(rdb, engine=engine, authorizer=42)
    with pytest.raises(ValueError, match="mode must be one of"):
        sqlnb.connect(rdb, engine=engine, mode="readonly")
    if engine != "system":
        with pytest.raises(ValueError, match="NUL"):
            sqlnb.connect(rdb, engine=engine, deny_tables=["sec\0rets"])


def test_mask_columns_forms(engine, rdb):
    con = open_policy(engine, rdb, "ro", "ro", mask_columns={"users": ["email", "name"]})
    try:
        assert con.execute("SELECT id, name, email FROM users ORDER BY id").fetchall() == [(1, None, None),
                                                                                         (2, None, None)]
    finally:
        con.close()


# --------------------------------------------------------------------------------------
# the user's Python authorizer
# --------------------------------------------------------------------------------------
class Boom(Exception):
    pass


def test_user_authorizer_exception_denies_and_surfaces(engine, rdb):
    def policy(action, a1, a2, dbname, inner):
        if action == AuthAction.READ and a1 == "users":
            raise Boom("no users for you")
        return OK

    con = open_policy(engine, rdb, "ro", "rw", authorizer=policy)
    try:
        with pytest.raises(Boom, match="no users for you"):
            con.execute("SELECT name FROM users")
        assert con.execute("SELECT count(*) FROM flights").fetchone() == (40,)
        assert "authorizer: policy" in con.policy_summary
    finally:
        con.close()


@pytest.mark.parametrize("bad", [None, "ok", True, 7, 0.0])
def test_user_authorizer_bad_return_denies(engine, rdb, bad):
    con = open_policy(engine, rdb, "rw", "rw", authorizer=lambda *a: bad)
    try:
        with pytest.raises(TypeError, match="must return sqlnb.authorizer.OK, DENY or IGNORE"):
            con.execute("SELECT 1")
    finally:
        con.close()


def test_user_authorizer_deny_and_ignore(engine, rdb):
    def policy(action, a1, a2, dbname, inner):
        if action == AuthAction.READ and a1 == "users" and a2 == "name":
            return IGNORE
        if action == AuthAction.READ and a1 == "secrets":
            return DENY
        return OK

    con = open_policy(engine, rdb, "rw", "rw", authorizer=policy)
    try:
        assert con.execute("SELECT name, email FROM users ORDER BY id").fetchall() == [
            (None, "ann@example.org"), (None, "bob@example.org")]
        with pytest.raises(errors.AccessDeniedError, match="the user authorizer refused READ on main.secrets"):
            con.execute("SELECT * FROM secrets")
    finally:
        con.close()


def test_user_authorizer_cannot_loosen_mode(engine, rdb):
    seen = []

    def allow_all(action, a1, a2, dbname, inner):
        seen.append(action)
        return OK

    con = open_policy(engine, rdb, "ro", "rw", authorizer=allow_all)
    try:
        with pytest.raises(errors.ReadOnlyError):
            con.execute("DELETE FROM flights")
        assert AuthAction.DELETE not in seen  # the built-in check refused first
        con.execute("SELECT * FROM flights").fetchall()
        assert AuthAction.SELECT in seen
    finally:
        con.close()


# --------------------------------------------------------------------------------------
# the C table and the Python rules agree
# --------------------------------------------------------------------------------------
ACTION_SAMPLES = [
    (AuthAction.READ, "flights", "origin", "main"), (AuthAction.READ, "secrets", "v", "main"),
    (AuthAction.READ, "users", "email", "main"), (AuthAction.READ, "users", "name", "main"),
    (AuthAction.READ, "s", "a", "temp"), (AuthAction.READ, "sqlite_master", "sql", "main"),
    (AuthAction.INSERT, "flights", None, "main"), (AuthAction.INSERT, "s", None, "temp"),
    (AuthAction.INSERT, "boxes_node", None, "main"), (AuthAction.DELETE, "boxes_node", None, "main"),
    (AuthAction.UPDATE, "boxes_node", "data", "main"), (AuthAction.UPDATE, "flights", "origin", "main"),
    (AuthAction.DELETE, "secrets", None, "main"), (AuthAction.CREATE_TABLE, "t", None, "main"),
    (AuthAction.CREATE_TEMP_TABLE, "t", None, "temp"), (AuthAction.CREATE_TEMP_INDEX, "i", "t", "temp"),
    (AuthAction.CREATE_INDEX, "i", "secrets", "main"), (AuthAction.DROP_TABLE, "secrets", None, "main"),
    (AuthAction.ALTER_TABLE, "temp", "s", None), (AuthAction.ALTER_TABLE, "main", "flights", None),
    (AuthAction.PRAGMA, "table_info", "flights", None), (AuthAction.PRAGMA, "user_version", None, None),
    (AuthAction.PRAGMA, "user_version", "5", None), (AuthAction.PRAGMA, "journal_mode", "wal", "main"),
    (AuthAction.PRAGMA, "writable_schema", None, None), (AuthAction.FUNCTION, None, "load_extension", None),
    (AuthAction.FUNCTION, None, "LOAD_EXTENSION", None), (AuthAction.FUNCTION, None, "fts3_tokenizer", None),
    (AuthAction.FUNCTION, None, "count", None), (AuthAction.ATTACH, "x.db", None, None),
    (AuthAction.DETACH, "x", None, None), (AuthAction.REINDEX, "i", None, "temp"),
    (AuthAction.REINDEX, "i", None, "main"), (AuthAction.ANALYZE, "flights", None, "main"),
    (AuthAction.CREATE_VTABLE, "k", "lsm1", "temp"), (AuthAction.TRANSACTION, "BEGIN", None, None),
    (AuthAction.SAVEPOINT, "BEGIN", "a", None), (AuthAction.RECURSIVE, None, None, None),
    (AuthAction.SELECT, None, None, None), (99, None, None, None),
]


@pytest.mark.parametrize("mode", ["rw", "ro", "ro-scratch"])
def test_c_table_agrees_with_python_rules(mode):
    from sqlnb import _fast

    pol = Policy(mode, deny_tables=["secrets"], mask_columns=["users.email"])
    pol.bind_schema([("main", "boxes", "virtual"), ("main", "boxes_node", "shadow"),
                     ("main", "boxes_rowid", "shadow"), ("main", "flights", "table")])
    raw = _fast.RawConnection(":memory:")
    try:
        table = _fast.install_policy(raw, pol.c_spec())
        for action, a1, a2, dbname in ACTION_SAMPLES:
            for inner in (None, "tr"):
                for first in (True, False):
                    c = table.decide(int(action), a1, a2, dbname, inner, first)
                    p = pol.decide(int(action), a1, a2, dbname, inner, first)
                    assert c == (int(p[0]), int(p[1])), (mode, action, a1, a2, dbname, inner, first)
    finally:
        raw.close()


def test_rules_spot_checks():
    ro = Policy("ro")
    assert ro.decide(AuthAction.INSERT, "flights", None, "main") == (DENY, Why.MODE)
    assert ro.decide(AuthAction.PRAGMA, "table_info", "t", None) == (OK, Why.NONE)
    assert ro.decide(AuthAction.PRAGMA, "user_version", "1", None) == (DENY, Why.PRAGMA)
    assert ro.decide(99, None, None, None) == (DENY, Why.MODE)  # unknown action codes fail closed
    sc = Policy("ro-scratch")
    assert sc.decide(AuthAction.INSERT, "x", None, "temp") == (OK, Why.NONE)
    assert sc.decide(AuthAction.CREATE_VTABLE, "x", "fts5", "temp") == (DENY, Why.MODE)
    assert sc.decide(AuthAction.ATTACH, "", None, None) == (DENY, Why.MODE)
    rw = Policy("rw")
    assert rw.decide(AuthAction.FUNCTION, None, "load_extension", None) == (DENY, Why.LOADEXT)
    assert Policy("rw", allow_load_extension=True).decide(AuthAction.FUNCTION, None, "load_extension", None) == (OK, Why.NONE)


def test_authorizer_is_c_level_without_user_policy(tmp_path):
    """The C table decides alone: count its calls (no Python runs per action)."""
    db = build_db("sqlite", tmp_path)
    con = open_policy("sqlite", db, "ro", "rw")
    try:
        table = con.raw.policy.table
        before = table.calls
        con.execute("SELECT origin, dest FROM flights WHERE dep_delay > 0").fetchall()
        assert table.calls > before
        assert table.user is None
    finally:
        con.close()


# --------------------------------------------------------------------------------------
# the notebook
# --------------------------------------------------------------------------------------
@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_read_only_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    nb = nbformat.read(os.path.join(root, "notebooks", "03-read-only.ipynb"), as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "outputs are committed stripped"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "ReadOnlyError: mode 'ro' refused INSERT on main.flights" in text
    assert "AccessDeniedError: policy refused READ on main.payroll" in text
    assert "unchanged" in text
