"""PEP 249 behaviour, with the stdlib sqlite3 as the oracle where PEP 249 leaves room."""
from __future__ import annotations

import sqlite3

import pytest

import sqlnb
from sqlnb import errors

SCRIPT = """
CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB, n);
INSERT INTO t VALUES (1, 'alpha', 1.5, x'0001', NULL);
INSERT INTO t VALUES (2, 'beta', -0.0, NULL, 7);
INSERT INTO t VALUES (3, NULL, 1048576.25, x'', 'mixed');
INSERT INTO t VALUES (4, 'δέλτα', 2.0, x'ff', 2.5);
"""

QUERIES = [
    "SELECT * FROM t ORDER BY id",
    "SELECT id, typeof(n), n FROM t ORDER BY id DESC",
    "SELECT count(*), sum(score), group_concat(name, '|') FROM t",
    "SELECT 9223372036854775807, -9223372036854775808, 1.0/3, 'x' || NULL",
    "SELECT * FROM t WHERE 0",
]


def both(engine, tmp_path):
    ours = sqlnb.connect(str(tmp_path / "ours.db"), engine=engine)
    ref = sqlite3.connect(str(tmp_path / "ref.db"))
    ours.executescript(SCRIPT)
    ref.executescript(SCRIPT)
    return ours, ref


@pytest.mark.parametrize("sql", QUERIES)
def test_results_equal_stdlib(engine, tmp_path, sql):
    ours, ref = both(engine, tmp_path)
    got = ours.execute(sql).fetchall()
    want = ref.execute(sql).fetchall()
    assert got == want
    assert [tuple(map(type, r)) for r in got] == [tuple(map(type, r)) for r in want]
    assert [d[0] for d in ours.execute(sql).description] == [d[0] for d in ref.execute(sql).description]


def test_fetch_styles(engine, tmp_path):
    ours, ref = both(engine, tmp_path)
    cur = ours.cursor()
    cur.execute("SELECT id FROM t ORDER BY id")
    assert cur.fetchone() == (1,)
    assert cur.fetchmany(2) == [(2,), (3,)]
    cur.arraysize = 5
    assert cur.fetchmany() == [(4,)]
    assert cur.fetchone() is None
    assert cur.fetchall() == []
    # PEP 249: fetching when the statement returned no result set is an error (the stdlib returns [])
    cur.execute("UPDATE t SET n = n")
    with pytest.raises(errors.ProgrammingError, match="no result set"):
        cur.fetchall()
    assert list(cur) == []
    assert [r for r in ours.execute("SELECT id FROM t ORDER BY id")] == [(1,), (2,), (3,), (4,)]


def test_rowcount_lastrowid(engine, tmp_path):
    ours, ref = both(engine, tmp_path)
    for c in (ours, ref):
        cur = c.cursor()
        cur.execute("INSERT INTO t(name) VALUES ('e')")
        assert cur.rowcount == 1 and cur.lastrowid == 5
        cur.execute("UPDATE t SET score = 0 WHERE id > 2")
        assert cur.rowcount == 3
        cur.execute("SELECT 1")
        assert cur.rowcount == -1
        cur.executemany("INSERT INTO t(name) VALUES (?)", [("a",), ("b",), ("c",)])
        assert cur.rowcount == 3
        c.commit()


def test_implicit_transactions_like_stdlib(engine, tmp_path):
    path = tmp_path / "tx.db"
    con = sqlnb.connect(str(path), engine=engine)
    con.execute("CREATE TABLE x (a)")
    assert not con.in_transaction
    con.execute("INSERT INTO x VALUES (1)")
    assert con.in_transaction
    con.rollback()
    assert con.execute("SELECT count(*) FROM x").fetchone() == (0,)
    con.execute("INSERT INTO x VALUES (2)")
    con.commit()
    other = sqlnb.connect(str(path), engine=engine)
    assert other.execute("SELECT a FROM x").fetchall() == [(2,)]
    other.close()
    with con:
        con.execute("INSERT INTO x VALUES (3)")
    with pytest.raises(ZeroDivisionError):
        with con:
            con.execute("INSERT INTO x VALUES (4)")
            raise ZeroDivisionError
    assert con.execute("SELECT a FROM x ORDER BY a").fetchall() == [(2,), (3,)]


def test_autocommit_isolation_none(engine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "ac.db"), engine=engine, isolation_level=None)
    con.execute("CREATE TABLE x (a)")
    con.execute("INSERT INTO x VALUES (1)")
    assert not con.in_transaction


def test_module_globals():
    assert sqlnb.apilevel == "2.0"
    assert sqlnb.threadsafety == 1  # docs/dbapi.md: threads may share the module, not connections
    assert sqlnb.paramstyle == "qmark"
    for name in ("Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
                 "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError"):
        assert issubclass(getattr(sqlnb, name), Exception)
        assert getattr(sqlnb.Connection, name) is getattr(sqlnb, name)
    assert issubclass(sqlnb.DatabaseError, sqlnb.Error) and issubclass(sqlnb.OperationalError, sqlnb.DatabaseError)


def test_closed_connection_and_cursor(engine, tmp_path):
    con = sqlnb.connect(str(tmp_path / "c.db"), engine=engine)
    cur = con.execute("SELECT 1 UNION ALL SELECT 2")
    cur2 = con.cursor()
    cur2.close()
    with pytest.raises(errors.ProgrammingError):
        cur2.execute("SELECT 1")
    con.close()
    with pytest.raises(errors.ConnectionClosedError):
        con.close()  # PEP 249: an error, unlike the stdlib
    with pytest.raises(errors.ConnectionClosedError):
        con.execute("SELECT 1")
    with pytest.raises(errors.ConnectionClosedError):
        cur.fetchall()


def test_execute_one_statement_only(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    with pytest.raises(errors.ProgrammingError, match="one statement"):
        con.execute("SELECT 1; SELECT 2")
    # trailing comments and semicolons are not a second statement
    assert con.execute("SELECT 1; -- done\n;").fetchall() == [(1,)]


def test_executemany_rejects_select(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    with pytest.raises(errors.ProgrammingError):
        con.executemany("SELECT ?", [(1,), (2,)])


def test_integrity_error_class(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    con.execute("CREATE TABLE u (a UNIQUE)")
    con.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(sqlnb.IntegrityError) as ei:
        con.execute("INSERT INTO u VALUES (1)")
    assert ei.value.result_code == 19


def test_check_same_thread(engine):
    import threading

    con = sqlnb.connect(":memory:", engine=engine)
    seen = []

    def other():
        try:
            con.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001
            seen.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen and isinstance(seen[0], sqlnb.ProgrammingError) and "thread" in str(seen[0])


def test_row_factory(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    con.row_factory = lambda cur, row: {d[0]: v for d, v in zip(cur.description, row)}
    assert con.execute("SELECT 1 AS a, 'x' AS b").fetchone() == {"a": 1, "b": "x"}


def test_url_forms_and_redaction(tmp_path):
    assert sqlnb.parse_url("sqlite:///rel.db")[:2] == ("sqlite", "rel.db")
    assert sqlnb.parse_url("sqlite:////abs/x.db")[:2] == ("sqlite", "/abs/x.db")
    assert sqlnb.parse_url("bdb:///x.db")[0] == "bdb"
    assert sqlnb.parse_url("system://")[1] == ":memory:"
    assert sqlnb.redact("sqlite://user:hunter2@host/x.db?key=abc&a=1") == "sqlite://user:***@host/x.db?key=***&a=1"
    with pytest.raises(sqlnb.InterfaceError, match="unknown URL scheme"):
        sqlnb.connect("postgres://x/y")
    with pytest.raises(sqlnb.InterfaceError, match="unknown engine"):
        sqlnb.connect(":memory:", engine="oracle")
    con = sqlnb.connect(f"sqlite:///{tmp_path}/u.db")
    con.execute("CREATE TABLE a (x)")
    assert (tmp_path / "u.db").exists()


def test_uri_filenames(tmp_path):
    path = tmp_path / "uri.db"
    sqlnb.connect(str(path)).executescript("CREATE TABLE a(x); INSERT INTO a VALUES (1);")
    con = sqlnb.connect(f"file:{path}?mode=ro", uri=True)
    assert con.execute("SELECT x FROM a").fetchall() == [(1,)]
    with pytest.raises(sqlnb.OperationalError):
        con.execute("INSERT INTO a VALUES (2)")


def test_dates_bind_as_iso_text(engine):
    import datetime

    con = sqlnb.connect(":memory:", engine=engine)
    d, t, ts = datetime.date(2024, 2, 29), datetime.time(13, 5, 1), datetime.datetime(2024, 2, 29, 13, 5, 1)
    assert con.execute("SELECT ?, ?, ?", (d, t, ts)).fetchone() == ("2024-02-29", "13:05:01", "2024-02-29 13:05:01")


@pytest.mark.parametrize("engine_name", ["sqlite", "system"])
def test_busy_timeout_from_connect(engine_name, tmp_path):
    """connect(timeout=s) is SQLite's busy timeout (docs: seconds to wait on a locked database).

    (bdb: BerkeleyDB ignores the busy handler; its waits are bounded by a lock timeout, tested in
    tests/test_bdb.py.)
    """
    path = str(tmp_path / "busy.db")
    for seconds, ms in ((5.0, 5000), (0.25, 250), (0, 0)):
        con = sqlnb.connect(path, engine=engine_name, timeout=seconds)
        assert con.execute("PRAGMA busy_timeout").fetchone() == (ms,)
        con.close()
    # with no wait allowed, a database another connection holds locked is refused at once
    holder = sqlnb.connect(path, engine=engine_name, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        con = sqlnb.connect(path, engine=engine_name, timeout=0)
        with pytest.raises(sqlnb.errors.BusyError):
            con.execute("CREATE TABLE t(a)")
        con.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # and once the lock is gone the same statement runs
    con = sqlnb.connect(path, engine=engine_name, timeout=0)
    con.execute("CREATE TABLE t(a)")
    con.commit()
    assert con.execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]
    con.close()
