"""Multi-statement text is split by SQLite's own tail pointer: comments, strings, triggers."""
from __future__ import annotations

import pytest

import sqlnb

SCRIPT = """-- leading comment; with a semicolon
CREATE TABLE t (a TEXT); /* block; comment */
INSERT INTO t VALUES ('semi;colon');INSERT INTO t VALUES ('quote''s;');
CREATE TRIGGER tr AFTER INSERT ON t BEGIN
  INSERT INTO log VALUES (new.a); SELECT 1;
END;
CREATE TABLE log (a);
INSERT INTO t VALUES ('x -- not a comment');
-- trailing comment only
"""


def test_script_with_comments_and_semicolons_in_strings(engine):
    con = sqlnb.connect(":memory:", engine=engine, isolation_level=None)
    con.executescript(SCRIPT)
    assert [r[0] for r in con.execute("SELECT a FROM t ORDER BY rowid")] == [
        "semi;colon", "quote's;", "x -- not a comment"]
    assert con.execute("SELECT a FROM log").fetchall() == [("x -- not a comment",)]


def test_statements_offsets(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    sql = "SELECT 'é;'; /* c */ SELECT 2 -- tail\n;"
    pieces = [(sql[s:e], st) for st, s, e in con.statements(sql)]
    texts = [p for p, _ in pieces]
    assert texts[0] == "SELECT 'é;';"
    assert "SELECT 2" in texts[1]
    for _, st in pieces:
        st.finalize()


@pytest.mark.parametrize("sql", ["", "   ", "-- only a comment", "/* c */ ;; -- x"])
def test_empty_or_comment_only(engine, sql):
    con = sqlnb.connect(":memory:", engine=engine)
    cur = con.execute(sql)
    assert cur.description is None and list(cur) == []
    assert list(con.statements(sql)) == []


def test_error_in_second_statement_names_it(engine):
    con = sqlnb.connect(":memory:", engine=engine, isolation_level=None)
    with pytest.raises(sqlnb.OperationalError) as ei:
        con.executescript("CREATE TABLE a(x);\nSELECT * FROM missing_table;")
    assert "missing_table" in str(ei.value)
    assert con.execute("SELECT name FROM sqlite_master").fetchall() == [("a",)]


def test_double_quoted_strings_are_identifiers_when_strict():
    # strict_quotes=True: "x" is never silently a string literal (the default reads it as the stdlib
    # does: tests/test_quotes.py)
    con = sqlnb.connect(":memory:", strict_quotes=True)
    with pytest.raises(sqlnb.errors.SQLError, match="no such column"):
        con.execute('SELECT "not_a_string"')
    assert sqlnb.connect(":memory:").execute('SELECT "not_a_string"').fetchall() == [("not_a_string",)]
