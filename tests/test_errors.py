"""Result codes map to exception classes through one table, never by message text."""
from __future__ import annotations

import sqlite3

import pytest

import sqlnb
from sqlnb import errors


def test_table_covers_every_primary_code():
    assert sorted(errors.CODE_TO_CLASS) == list(range(1, 27))
    for code, cls in errors.CODE_TO_CLASS.items():
        assert issubclass(cls, errors.Error)
        exc = errors.make_error(code | (3 << 8), "m", error_offset=4, sql="x")
        assert type(exc) is cls and exc.result_code == code and exc.extended_code == code | (3 << 8)


@pytest.mark.parametrize("code,stdlib_cls", [
    (1, sqlite3.OperationalError), (5, sqlite3.OperationalError), (8, sqlite3.OperationalError),
    (11, sqlite3.DatabaseError), (18, sqlite3.DataError), (19, sqlite3.IntegrityError),
    (20, sqlite3.IntegrityError), (26, sqlite3.DatabaseError), (21, sqlite3.InterfaceError),
])
def test_classes_sit_where_the_stdlib_puts_them(code, stdlib_cls):
    ours = errors.CODE_TO_CLASS[code]
    assert getattr(errors, stdlib_cls.__name__) in ours.__mro__


def cases(engine):
    yield "SELEC 1", errors.SQLError, 1
    yield "SELECT * FROM nowhere", errors.SQLError, 1
    yield "INSERT INTO u VALUES (1)", errors.ConstraintError, 19
    if engine == "sqlite":
        yield "SELECT zeroblob(2000000000)", errors.TooBigError, 18
        yield "CREATE TABLE s (a INT) STRICT; INSERT INTO s VALUES ('x')", errors.ConstraintError, 19


def test_real_errors_are_mapped(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    con.execute("CREATE TABLE u (a UNIQUE)")
    con.execute("INSERT INTO u VALUES (1)")
    for sql, cls, code in cases(engine):
        with pytest.raises(cls) as ei:
            con.executescript(sql)
        assert ei.value.result_code == code, sql
        assert str(ei.value)


def test_error_offset_reported():
    con = sqlnb.connect(":memory:")
    with pytest.raises(errors.SQLError) as ei:
        con.execute("SELECT 1 FROM (SELECT 1 AS a) WHERE nocol = 1")
    # our 3.50 core locates errors in the statement text
    assert ei.value.error_offset >= 0 and ei.value.sql.startswith("SELECT")


def test_not_a_database(tmp_path, engine):
    p = tmp_path / "junk.db"
    p.write_bytes(b"this is not a database at all" * 100)
    before = p.read_bytes()
    with pytest.raises(errors.DatabaseError) as ei:
        sqlnb.connect(str(p), engine=engine).execute("SELECT * FROM sqlite_master").fetchall()
    assert "database" in str(ei.value).lower()
    assert p.read_bytes() == before


def test_cant_open(tmp_path, engine):
    with pytest.raises(errors.OperationalError) as ei:
        sqlnb.connect(str(tmp_path / "no" / "such" / "dir.db"), engine=engine).execute("SELECT * FROM sqlite_master")
    assert "open" in str(ei.value).lower()
    assert not (tmp_path / "no").exists()
