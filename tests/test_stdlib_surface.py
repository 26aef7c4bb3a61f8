"""The stdlib ``sqlite3`` Connection/Cursor surface beyond PEP 249 (issue #22), with the stdlib as the
oracle on every engine: ``sqlnb.Row``, ``text_factory``, ``isolation_level`` checks, limits."""
from __future__ import annotations

import sqlite3

import pytest

import sqlnb
from sqlnb import errors


def both(con):
    ref = sqlite3.connect(":memory:")
    for c in (con, ref):
        c.execute("CREATE TABLE t(Id INTEGER, Name TEXT, data BLOB)")
        c.executemany("INSERT INTO t VALUES (?, ?, ?)", [(1, "ä", b"\x00"), (2, None, None)])
        c.commit()
    return ref


# --- sqlnb.Row ---------------------------------------------------------------------------------
def test_row_like_sqlite3_row(con):
    ref = both(con)
    con.row_factory, ref.row_factory = sqlnb.Row, sqlite3.Row
    got = con.execute("SELECT Id, Name, data FROM t ORDER BY Id").fetchall()
    want = ref.execute("SELECT Id, Name, data FROM t ORDER BY Id").fetchall()
    assert [type(r) for r in got] == [sqlnb.Row] * 2
    for g, w in zip(got, want):
        assert g.keys() == w.keys() == ["Id", "Name", "data"]
        assert tuple(g) == tuple(w) and len(g) == len(w)
        assert [g[i] for i in range(3)] == [w[i] for i in range(3)] and g[-1] == w[-1] and g[0:2] == w[0:2]
        assert [g[k] for k in ("id", "NAME", "Data")] == [w[k] for k in ("id", "NAME", "Data")]
    for key, err in (("nope", IndexError), (7, IndexError), (1.5, IndexError)):
        with pytest.raises(err):
            got[0][key]
        with pytest.raises(err):
            want[0][key]


def test_row_equality_and_hash(con):
    both(con)
    con.row_factory = sqlnb.Row
    a = con.execute("SELECT Id, Name FROM t WHERE Id = 1").fetchone()
    b = con.execute("SELECT Id, Name FROM t WHERE Id = 1").fetchone()
    c = con.execute("SELECT Id, Name FROM t WHERE Id = 2").fetchone()
    d = con.execute("SELECT Id AS x, Name FROM t WHERE Id = 1").fetchone()
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != c and a != d
    assert a != (1, "ä")            # never equal to a plain tuple (as in the stdlib)
    with pytest.raises(TypeError):
        sqlnb.Row(1, (1,))
    with pytest.raises(TypeError):
        sqlite3.Row(1, (1,))


def test_row_factory_per_cursor_and_fetch_paths(con):
    both(con)
    con.row_factory = sqlnb.Row
    cur = con.execute("SELECT Id FROM t ORDER BY Id")
    assert [r["id"] for r in cur.fetchmany(1)] + [r["id"] for r in cur] == [1, 2]
    cur = con.cursor()
    cur.row_factory = None
    assert cur.execute("SELECT Id FROM t ORDER BY Id").fetchall() == [(1,), (2,)]
    con.row_factory = lambda cursor, row: dict(zip([d[0] for d in cursor.description], row))
    assert con.execute("SELECT Id, Name FROM t WHERE Id = 1").fetchone() == {"Id": 1, "Name": "ä"}


# --- text_factory --------------------------------------------------------------------------------
@pytest.mark.parametrize("factory", [bytes, bytearray, lambda b: b.decode("utf-8").upper(), str])
def test_text_factory(con, factory):
    ref = both(con)
    for c in (con, ref):
        c.text_factory = factory
    sql = "SELECT Name, Id, data, 'x' || Name FROM t ORDER BY Id"
    assert con.execute(sql).fetchall() == ref.execute(sql).fetchall()
    assert con.execute(sql).fetchone() == ref.execute(sql).fetchone()
    assert con.text_factory is factory


def test_text_factory_must_be_callable(con):
    with pytest.raises(TypeError):
        con.text_factory = 5
    assert con.text_factory is str


# --- isolation_level -----------------------------------------------------------------------------
@pytest.mark.parametrize("value, err", [("BOGUS", ValueError), (5, TypeError), ("BEGIN", ValueError)])
def test_isolation_level_checks(engine, tmp_path, value, err):
    with pytest.raises(err):
        sqlite3.connect(":memory:", isolation_level=value)
    with pytest.raises(err):
        sqlnb.connect(str(tmp_path / "never.db"), engine=engine, isolation_level=value)
    assert not (tmp_path / "never.db").exists()   # refused before anything touched the disk
    con = sqlnb.connect(":memory:", engine=engine)
    try:
        with pytest.raises(err):
            con.isolation_level = value
        assert con.isolation_level == ""
    finally:
        con.close()


def test_isolation_level_values(con):
    ref = sqlite3.connect(":memory:")
    for value in ("deferred", "IMMEDIATE", "Exclusive", "", None):
        ref.isolation_level = value
        con.isolation_level = value
        assert con.isolation_level == ref.isolation_level


def test_isolation_level_none_commits(con):
    con.execute("CREATE TABLE x(a)")
    con.commit()
    con.execute("INSERT INTO x VALUES (1)")
    assert con.in_transaction
    con.isolation_level = None
    assert not con.in_transaction
    con.execute("INSERT INTO x VALUES (2)")   # autocommit now
    assert not con.in_transaction
    assert con.execute("SELECT count(*) FROM x").fetchone() == (2,)


# --- limits --------------------------------------------------------------------------------------
def test_limits_like_the_stdlib(con):
    ref = sqlite3.connect(":memory:")
    for name in ("SQLITE_LIMIT_LENGTH", "SQLITE_LIMIT_SQL_LENGTH", "SQLITE_LIMIT_COLUMN",
                 "SQLITE_LIMIT_VARIABLE_NUMBER", "SQLITE_LIMIT_ATTACHED", "SQLITE_LIMIT_WORKER_THREADS"):
        assert getattr(sqlnb, name) == getattr(sqlite3, name)
    cat = sqlnb.SQLITE_LIMIT_SQL_LENGTH
    old = con.getlimit(cat)
    assert con.setlimit(cat, 100) == old and con.getlimit(cat) == 100
    ref_old = ref.getlimit(cat)
    assert ref.setlimit(cat, 100) == ref_old and ref.getlimit(cat) == 100
    long_sql = "SELECT " + " + ".join(["1"] * 100)
    with pytest.raises(sqlite3.DataError):
        ref.execute(long_sql)
    with pytest.raises(errors.DataError):
        con.execute(long_sql)
    assert con.setlimit(cat, -1) == 100 and con.getlimit(cat) == 100   # negative: unchanged
    for bad in (-1, 1000):
        with pytest.raises(sqlite3.ProgrammingError):
            ref.getlimit(bad)
        with pytest.raises(errors.ProgrammingError):
            con.getlimit(bad)
    with pytest.raises(TypeError):
        con.getlimit("LENGTH")


# --- set_progress_handler (layered), set_trace_callback -------------------------------------------
def thousand(con):
    con.execute("CREATE TABLE k(x INTEGER)")
    con.executemany("INSERT INTO k VALUES (?)", [(i,) for i in range(1, 1001)])
    con.commit()


def test_progress_handler_like_the_stdlib(con):
    ref = sqlite3.connect(":memory:")
    thousand(con)
    thousand(ref)
    sql = "SELECT count(*) FROM k a, k b WHERE a.x < 100"
    for c, err in ((con, errors.OperationalError), (ref, sqlite3.OperationalError)):
        calls = []
        c.set_progress_handler(lambda: calls.append(1) or 0, 100)
        assert c.execute(sql).fetchone() == (99_000,)
        assert len(calls) > 10
        c.set_progress_handler(lambda: 1, 100)          # a true result stops the statement
        with pytest.raises(err):
            c.execute(sql).fetchall()
        c.set_progress_handler(None, 100)
        assert c.execute("SELECT count(*) FROM k").fetchone() == (1000,)
    con.set_progress_handler(lambda: 1, 100)
    with pytest.raises(errors.InterruptError):
        con.execute(sql).fetchall()
    con.set_progress_handler(None, 0)


def test_progress_handler_raising_and_layered(con):
    thousand(con)

    def boom():
        raise ValueError("stop here")

    con.set_progress_handler(boom, 50)
    with pytest.raises(errors.OperationalError) as info:
        con.execute("SELECT count(*) FROM k a, k b").fetchall()
    assert isinstance(info.value.__cause__, ValueError) and "progress handler" in str(info.value)
    # sqlnb's own handler stays under the user's: the statement time limit still ends a statement that
    # would otherwise run for a very long time (10^9 rows), while a user handler is installed
    seen = []
    con.set_progress_handler(lambda: seen.append(1) and 0, 1000)
    con.statement_timeout = 0.5
    with pytest.raises(errors.QueryTimeoutError):
        con.execute("SELECT count(*) FROM k a, k b, k c").fetchall()
    assert seen
    con.statement_timeout = None
    con.set_progress_handler(None, 0)


def test_trace_callback(con):
    ref = sqlite3.connect(":memory:")
    for c in (con, ref):
        traced = []
        c.set_trace_callback(traced.append)
        c.execute("SELECT 40 + ?", (2,)).fetchall()
        c.set_trace_callback(None)
        c.execute("SELECT 'not traced'").fetchall()
        assert any("SELECT 40 + 2" in t for t in traced), traced
        assert not any("not traced" in t for t in traced)
    with pytest.raises(TypeError):
        con.set_trace_callback(5)


# --- serialize / deserialize ------------------------------------------------------------------------
def test_serialize_deserialize(con, tmp_path):
    ref = both(con)
    if con.backend.version_tuple() < (3, 23):   # bdb's 3.7 core
        with pytest.raises(errors.FeatureNotSupportedError):
            con.serialize()
        with pytest.raises(errors.FeatureNotSupportedError):
            con.deserialize(ref.serialize())
        return
    image = con.serialize()
    assert image[:16] == b"SQLite format 3\x00"
    other = sqlite3.connect(":memory:")
    other.deserialize(image)
    sql = "SELECT * FROM t ORDER BY Id"
    assert other.execute(sql).fetchall() == ref.execute(sql).fetchall()
    fresh = sqlnb.connect(":memory:", engine=con.engine)
    try:
        fresh.deserialize(ref.serialize())
        assert fresh.execute(sql).fetchall() == ref.execute(sql).fetchall()
        assert fresh.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        fresh.close()
    con.commit()
    ro = sqlnb.connect(str(tmp_path / "t.db"), engine=con.engine, mode="ro")
    try:
        assert ro.serialize()[:16] == b"SQLite format 3\x00"
        with pytest.raises(errors.ReadOnlyError):
            ro.deserialize(image)
    finally:
        ro.close()


# --- backup ---------------------------------------------------------------------------------------
def test_backup_between_sqlnb_connections(con, tmp_path):
    both(con)
    con.execute("CREATE TABLE big(x)")
    con.executemany("INSERT INTO big VALUES (?)", [("x" * 500,) for _ in range(200)])
    con.commit()
    target = sqlnb.connect(str(tmp_path / "copy.db"), engine=con.engine)
    try:
        steps = []
        con.backup(target, pages=2, progress=lambda status, remaining, total: steps.append((status, remaining, total)))
        assert len(steps) > 2 and steps[-1][1] == 0 and steps[-1][0] == 101
        for sql in ("SELECT * FROM t ORDER BY Id", "SELECT count(*), sum(length(x)) FROM big"):
            assert target.execute(sql).fetchall() == con.execute(sql).fetchall()
        assert target.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        with pytest.raises(ValueError):
            con.backup(con)
    finally:
        target.close()


def test_backup_refusals(con, tmp_path):
    both(con)
    path = str(tmp_path / "ro.db")
    with sqlnb.connect(path, engine=con.engine) as w:
        w.execute("CREATE TABLE x(a)")
    w.close()
    ro = sqlnb.connect(path, engine=con.engine, mode="ro")
    other_engine = "system" if con.engine != "system" else "sqlite"
    other = sqlnb.connect(":memory:", engine=other_engine)
    try:
        with pytest.raises(errors.ReadOnlyError):
            con.backup(ro)
        with pytest.raises(errors.FeatureNotSupportedError):
            con.backup(other)
        with pytest.raises(TypeError):
            con.backup("not a connection")
    finally:
        ro.close()
        other.close()


def test_backup_to_a_stdlib_connection(con):
    ref = both(con)
    target = sqlite3.connect(":memory:")
    if con.backend.version_tuple() < (3, 23):   # bdb: another file format, and no serialize
        with pytest.raises(errors.FeatureNotSupportedError):
            con.backup(target)
        return
    con.backup(target)
    sql = "SELECT * FROM t ORDER BY Id"
    assert target.execute(sql).fetchall() == ref.execute(sql).fetchall()


WRITER = r"""
import os, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
batch = 0
while True:
    con.execute("BEGIN IMMEDIATE")
    con.executemany("INSERT INTO w VALUES (?, ?)", [(batch, "y" * 200) for _ in range(10)])
    con.execute("COMMIT")
    batch += 1
    if batch == 20:
        print("writing", flush=True)      # the backup may start: the writer keeps going
    if batch >= 20 and os.path.exists(sys.argv[2]):   # the test is done with it
        break
"""


def test_backup_of_a_wal_database_another_process_writes(engine, tmp_path):
    import subprocess
    import sys

    if not sqlnb.engines.engine(engine).has("wal"):
        with sqlnb.connect(str(tmp_path / "x.db"), engine=engine) as c:
            assert c.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal"
        return
    path = str(tmp_path / "wal.db")
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE w(batch INTEGER, pad TEXT)")
    setup.commit()
    setup.close()
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, path, str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"   # 20 batches are in, more are coming
        src = sqlnb.connect(path, engine=engine)
        dst = sqlnb.connect(str(tmp_path / "copy.db"), engine=engine)
        try:
            src.backup(dst)   # one step: one consistent read of the source
            assert writer.poll() is None        # the writer was still writing
        finally:
            src.close()
        try:
            assert dst.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            n, batches, full = dst.execute(
                "SELECT count(*), count(DISTINCT batch), min(c) FROM (SELECT batch, count(*) AS c FROM w GROUP BY batch)"
            ).fetchone()
            assert n >= 20 and batches == n and full == 10   # whole transactions only
            assert dst.execute("SELECT count(*) FROM w").fetchone()[0] == 10 * n
        finally:
            dst.close()
    finally:
        stop.touch()
        assert writer.wait(60) == 0


# --- iterdump ---------------------------------------------------------------------------------------
SCHEMA = [
    "CREATE TABLE a(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, score REAL, raw BLOB)",
    'CREATE TABLE "odd ""name"""(x, "y z")',
    "CREATE INDEX a_name ON a(name)",
    "CREATE VIEW v AS SELECT name, score FROM a WHERE score > 1",
    "CREATE TRIGGER tr AFTER INSERT ON a BEGIN UPDATE a SET score = coalesce(score, 0) WHERE id = new.id; END",
]
ROWS = [("it's", 1.5, b"\x00\x01"), ("b", None, None), ("ünï", 2.0, b"")]


def test_iterdump_like_the_stdlib_and_reexecuted(con, tmp_path):
    ref = sqlite3.connect(":memory:")
    for c in (con, ref):
        for s in SCHEMA:
            c.execute(s)
        c.executemany("INSERT INTO a(name, score, raw) VALUES (?, ?, ?)", ROWS)
        c.execute('INSERT INTO "odd ""name""" VALUES (1, ?)', ('q"uo\'te',))
        c.commit()
    dump = list(con.iterdump())
    assert dump == list(ref.iterdump())
    fresh = sqlnb.connect(str(tmp_path / "fresh.db"), engine=con.engine)
    try:
        fresh.executescript("\n".join(dump))
        assert fresh.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        for sql in ("SELECT * FROM a ORDER BY id", 'SELECT * FROM "odd ""name"""', "SELECT * FROM v ORDER BY name",
                    "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"):
            assert fresh.execute(sql).fetchall() == con.execute(sql).fetchall()
    finally:
        fresh.close()


# --- blobopen -------------------------------------------------------------------------------------
def blob_table(c):
    c.execute("CREATE TABLE b(id INTEGER PRIMARY KEY, data BLOB)")
    c.execute("INSERT INTO b VALUES (1, ?)", (bytes(range(10)),))
    c.commit()


def test_blob_like_the_stdlib(con):
    ref = sqlite3.connect(":memory:")
    blob_table(con)
    blob_table(ref)
    results = []
    for c in (con, ref):
        out = []
        with c.blobopen("b", "data", 1) as blob:
            out += [len(blob), blob.read(3), blob.tell(), blob[0], blob[-1], blob[2:5], blob[::3]]
            if c is con:   # (the stdlib 3.11 fails on a negative step: SystemError)
                assert blob[::-2] == bytes(range(10))[::-2] and blob[8:2:-3] == bytes(range(10))[8:2:-3]
            blob.seek(-2, 2)
            out += [blob.read(), blob.tell()]
            blob.seek(0)
            blob.write(b"AB")
            blob[5] = 255
            blob[6:8] = b"xy"
            out += [blob.tell(), blob.read(2)]
            for bad, err in ((lambda: blob.write(b"z" * 20), ValueError), (lambda: blob.seek(50), ValueError),
                             (lambda: blob[10], IndexError), (lambda: blob.__setitem__(0, 256), ValueError),
                             (lambda: blob.__setitem__(slice(0, 2), b"abc"), IndexError)):
                with pytest.raises(err):
                    bad()
        c.commit()
        out.append(c.execute("SELECT data FROM b").fetchone()[0])
        results.append(out)
        with pytest.raises((errors.ProgrammingError, sqlite3.ProgrammingError)):
            blob.read()
    assert results[0] == results[1]
    with pytest.raises(errors.OperationalError):
        con.blobopen("b", "data", 99)           # no such row
    with con.blobopen("b", "data", 1, readonly=True) as ro:
        with pytest.raises(errors.Error):
            ro.write(b"no")


def test_blob_refused_read_only_and_under_policies(engine, tmp_path):
    path = str(tmp_path / "b.db")
    with sqlnb.connect(path, engine=engine) as w:
        blob_table(w)
    w.close()
    for mode in ("ro", "ro-scratch"):
        con = sqlnb.connect(path, engine=engine, mode=mode)
        try:
            with pytest.raises(errors.ReadOnlyError):
                con.blobopen("b", "data", 1)
            with con.blobopen("b", "data", 1, readonly=True) as blob:
                assert blob.read(2) == b"\x00\x01"
        finally:
            con.close()
    con = sqlnb.connect(path, engine=engine, mask_columns=["b.data"])
    try:
        with pytest.raises(errors.PolicyError):
            con.blobopen("b", "data", 1, readonly=True)
    finally:
        con.close()


# --- set_authorizer (layered) ---------------------------------------------------------------------
def test_set_authorizer_like_the_stdlib(con):
    ref = both(con)
    def deny_reads_of_name(action, a1, a2, db, source):
        return sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_READ and a2 == "Name" else sqlite3.SQLITE_OK
    for c, err in ((con, errors.DatabaseError), (ref, sqlite3.DatabaseError)):
        c.set_authorizer(deny_reads_of_name)
        with pytest.raises(err):
            c.execute("SELECT Name FROM t").fetchall()
        assert c.execute("SELECT Id FROM t ORDER BY Id").fetchall() == [(1,), (2,)]
        c.set_authorizer(None)
        assert len(c.execute("SELECT Name FROM t").fetchall()) == 2


def test_set_authorizer_cannot_allow_what_the_mode_refuses(engine, tmp_path):
    path = str(tmp_path / "a.db")
    with sqlnb.connect(path, engine=engine) as w:
        w.execute("CREATE TABLE t(x)")
    w.close()
    asked = []
    con = sqlnb.connect(path, engine=engine, mode="ro")
    try:
        con.set_authorizer(lambda *a: asked.append(a) or 0)   # "allow everything"
        with pytest.raises(errors.ReadOnlyError):
            con.execute("INSERT INTO t VALUES (1)")
        assert not any(a[0] == sqlite3.SQLITE_INSERT for a in asked)   # never even asked about it
        assert con.execute("SELECT count(*) FROM t").fetchone() == (0,) and asked
    finally:
        con.close()
    outer = []
    con = sqlnb.connect(path, engine=engine, authorizer=lambda *a: outer.append(a) or 0)
    try:
        con.set_authorizer(lambda action, *rest: 1 if action == sqlite3.SQLITE_INSERT else 0)
        with pytest.raises(errors.PolicyError):
            con.execute("INSERT INTO t VALUES (1)")
        assert outer    # the authorizer given to connect() still runs (before this one)
    finally:
        con.close()


# --- extensions -----------------------------------------------------------------------------------
EXTENSION = r"""
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
static void half(sqlite3_context *c, int n, sqlite3_value **v) {
    (void)n;
    sqlite3_result_double(c, sqlite3_value_double(v[0]) / 2);
}
int sqlite3_extension_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
    (void)err;
    SQLITE_EXTENSION_INIT2(api);
    return sqlite3_create_function(db, "half", 1, SQLITE_UTF8, 0, half, 0, 0);
}
"""


@pytest.fixture(scope="module")
def extension(tmp_path_factory):
    """A real SQLite extension (a function half(x)), compiled here from sqlite3ext.h."""
    import subprocess

    d = tmp_path_factory.mktemp("ext")
    (d / "half.c").write_text(EXTENSION)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(d / "half.so"), str(d / "half.c")], check=True)
    return str(d / "half.so")


def test_load_extension(con, extension, tmp_path):
    with pytest.raises(errors.OperationalError):          # off by default (as in the stdlib)
        con.load_extension(extension)
    con.enable_load_extension(True)
    if con.engine == "system" and not hasattr(sqlite3.Connection, "load_extension"):
        # this Python's sqlite3 was built without extension loading (pyenv's default): said clearly
        with pytest.raises(errors.FeatureNotSupportedError):
            con.load_extension(extension)
        return
    con.load_extension(extension)
    assert con.execute("SELECT half(5)").fetchone() == (2.5,)
    with pytest.raises(errors.OperationalError):
        con.load_extension(str(tmp_path / "missing.so"))
    with pytest.raises(errors.PolicyError):               # the SQL function stays refused
        con.execute(f"SELECT load_extension('{extension}')").fetchall()
    con.enable_load_extension(False)
    with pytest.raises(errors.OperationalError):
        con.load_extension(extension)


@pytest.mark.parametrize("mode", ["ro", "ro-scratch"])
def test_load_extension_refused_read_only(engine, tmp_path, extension, mode):
    path = str(tmp_path / "e.db")
    with sqlnb.connect(path, engine=engine) as w:
        w.execute("CREATE TABLE t(x)")
    w.close()
    con = sqlnb.connect(path, engine=engine, mode=mode)
    try:
        with pytest.raises(errors.PolicyError):
            con.enable_load_extension(True)
        with pytest.raises(errors.PolicyError):
            con.load_extension(extension)
        with pytest.raises(errors.OperationalError):
            con.execute("SELECT half(1)").fetchall()     # nothing was loaded
    finally:
        con.close()
