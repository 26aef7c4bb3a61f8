"""Double-quoted string literals: a schema written by the stdlib (or any older tool) reads here too.

Our build compiles SQLite with ``SQLITE_DQS=0``; sqlnb turns double-quoted strings
back on per connection at open (``SQLITE_DBCONFIG_DQS_DML``/``_DDL``), as the stdlib
reads them, and ``connect(..., strict_quotes=True)`` / ``%config SqlMagic.strict_quotes``
asks for strict. The database below is written by the stdlib's sqlite3 (bdb has its own
file format: there the same schema is written through the bdb engine, without the
partial index its 3.7.6 core lacks).
"""
from __future__ import annotations

import hashlib
import sqlite3
import sys

import pytest

import sqlnb
from sqlnb import errors

SCHEMA = [
    'CREATE TABLE t (a TEXT, b TEXT CHECK (b <> "bad"))',
    "CREATE TABLE log (what TEXT)",
    'CREATE VIEW v AS SELECT "lit" AS k, a FROM t',
    'CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES ("inserted " || new.a); END',
]
PARTIAL_INDEX = 'CREATE INDEX t_a ON t(a) WHERE a <> "x"'


def make_db(engine, path):
    """The database, written by the stdlib (or by bdb itself); returns its bytes' digest."""
    if engine == "bdb":
        con = sqlnb.connect(str(path), engine="bdb")
        for sql in SCHEMA:
            con.execute(sql)
        con.execute("INSERT INTO t VALUES ('one', 'fine')")
        con.commit()
        con.close()
        return None
    con = sqlite3.connect(str(path))
    for sql in SCHEMA + [PARTIAL_INDEX]:
        con.execute(sql)
    con.execute("INSERT INTO t VALUES ('one', 'fine')")
    con.commit()
    con.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_build_is_strict_and_the_connection_is_not():
    """The premise: our SQLite is built strict (SQLITE_DQS=0); connections undo it at open."""
    opts = sqlnb.compile_options("sqlite")
    assert "DQS=0" in opts, opts
    con = sqlnb.connect(":memory:", engine="sqlite")
    assert con.execute('SELECT "nope"').fetchall() == [("nope",)]
    con.close()


def test_a_stdlib_schema_with_double_quoted_strings_reads_as_in_the_stdlib(engine, tmp_path):
    path = tmp_path / "old.db"
    make_db(engine, path)
    con = sqlnb.connect(str(path), engine=engine)
    # the view, the trigger and the CHECK constraint all carry a double-quoted string
    assert con.execute("SELECT k, a FROM v").fetchall() == [("lit", "one")]
    assert con.execute("SELECT what FROM log").fetchall() == [("inserted one",)]
    con.execute("INSERT INTO t VALUES ('two', 'ok')")
    assert con.execute("SELECT what FROM log ORDER BY rowid").fetchall() == [("inserted one",), ("inserted two",)]
    with pytest.raises(errors.ConstraintError):
        con.execute("INSERT INTO t VALUES ('three', 'bad')")
    if engine != "bdb":  # the partial index: the planner uses it for a matching WHERE
        assert con.execute("SELECT a FROM t WHERE a <> 'x' ORDER BY a").fetchall() == [("one",), ("two",)]
        plan = " ".join(str(r) for r in con.execute("EXPLAIN QUERY PLAN SELECT a FROM t WHERE a <> 'x'"))
        assert "t_a" in plan, plan
    # and in a statement of one's own, as the stdlib reads it
    assert con.execute('SELECT "nope", a FROM t WHERE a = "one"').fetchall() == [("nope", "one")]
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    con.commit()
    con.close()


def test_the_stdlib_reads_the_same(tmp_path):
    """The oracle: what the stdlib itself returns for the same file and statements."""
    path = tmp_path / "old.db"
    make_db("system", path)
    std = sqlite3.connect(str(path))
    ours = sqlnb.connect(str(path), engine="sqlite")
    for sql in ("SELECT k, a FROM v", "SELECT what FROM log", 'SELECT "nope", a FROM t WHERE a = "one"'):
        assert ours.execute(sql).fetchall() == std.execute(sql).fetchall(), sql
    ours.close()
    std.close()


def test_strict_quotes_on_the_sqlite_engine(tmp_path):
    path = tmp_path / "old.db"
    digest = make_db("sqlite", path)
    con = sqlnb.connect(str(path), engine="sqlite", strict_quotes=True)
    with pytest.raises(errors.SQLError, match='no such column: "nope"'):
        con.execute('SELECT "nope"')
    with pytest.raises(errors.SQLError, match="lit"):
        con.execute("SELECT k FROM v").fetchall()
    assert con.execute('SELECT "a" FROM t').fetchall() == [("one",)]  # identifiers still quote
    # a new CHECK or partial index with a double-quoted string is refused, not stored
    with pytest.raises(errors.SQLError, match='no such column: "x"'):
        con.execute('CREATE TABLE w (c CHECK (c <> "x"))')
    with pytest.raises(errors.SQLError, match='no such column: "x"'):
        con.execute('CREATE INDEX t_b ON t(b) WHERE b <> "x"')
    con.rollback()
    con.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # nothing written
    # the setting is the connection's: another one, opened after, reads the view again
    con = sqlnb.connect(str(path), engine="sqlite")
    assert con.execute("SELECT k FROM v").fetchall() == [("lit",)]
    con.close()


def test_strict_quotes_on_an_lsm_url_connection(tmp_path):
    con = sqlnb.connect(f"lsm:///{tmp_path / 'kv.lsm'}", strict_quotes=True)
    with pytest.raises(errors.SQLError, match='no such column: "nope"'):
        con.execute('SELECT "nope"')
    con.close()


@pytest.mark.parametrize("engine_name", ["bdb", "system"])
def test_strict_quotes_where_the_engine_cannot(engine_name, tmp_path):
    """bdb's 3.7.6 core always reads them; the stdlib can set it only from Python 3.12 (setconfig)."""
    from tests.conftest import need_engine

    need_engine(engine_name)
    path = tmp_path / "s.db"
    if engine_name == "system" and sys.version_info >= (3, 12):
        con = sqlnb.connect(str(path), engine="system", strict_quotes=True)
        with pytest.raises(errors.SQLError):
            con.execute('SELECT "nope"')
        con.close()
        return
    with pytest.raises(errors.FeatureNotSupportedError, match="strict quotes") as ei:
        sqlnb.connect(str(path), engine=engine_name, strict_quotes=True)
    assert ("3.7.6" in str(ei.value)) if engine_name == "bdb" else ("Python 3.12" in str(ei.value))

# the SqlMagic.strict_quotes trait: tests/test_magics.py::test_strict_quotes_trait
