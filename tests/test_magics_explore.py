"""Exploration (--tables, --columns, --plan) and completion inside %%sql cells."""
from __future__ import annotations

import pytest
from IPython.core.completer import provisionalcompleter

from sqlnb import errors
from tests.magics_shell import close_shell, new_shell

SCHEMA = """
CREATE TABLE flights(id INTEGER PRIMARY KEY, carrier TEXT NOT NULL, dep_delay REAL DEFAULT 0,
                     tailnum TEXT REFERENCES planes(tailnum));
CREATE INDEX flights_carrier ON flights(carrier, dep_delay);
CREATE UNIQUE INDEX flights_tail ON flights(tailnum);
CREATE TABLE planes(tailnum TEXT PRIMARY KEY, seats INTEGER);
CREATE VIEW late AS SELECT * FROM flights WHERE dep_delay > 60;
CREATE VIRTUAL TABLE notes USING fts5(body);
ATTACH DATABASE ':memory:' AS aux;
CREATE TABLE aux.weather(origin TEXT, temp REAL);
"""


@pytest.fixture
def ip():
    shell = new_shell()
    shell.run_cell("%sql :memory:")
    shell.run_cell("%%sql\n" + SCHEMA)
    yield shell
    close_shell(shell)


def test_tables_lists_every_schema(ip):
    r = ip.run_cell("%sql --tables").result
    rows = {(s, n): (t, m, c) for s, n, t, m, c in r[["schema", "name", "type", "module", "columns"]].itertuples(index=False)}
    assert rows[("main", "flights")] == ("table", "", 4)
    assert rows[("main", "late")][0] == "view"
    assert rows[("main", "notes")][:2] == ("virtual", "fts5")
    assert rows[("aux", "weather")] == ("table", "", 2)
    assert not any(n.startswith("sqlite_") for _, n in rows)


def test_tables_on_bdb(tmp_path):
    from tests.conftest import need_engine

    need_engine("bdb")
    shell = new_shell()
    try:
        shell.run_cell(f"%sql bdb:///{tmp_path}/b.db")
        shell.run_cell("%%sql\nCREATE TABLE t(a INTEGER, b TEXT);\nCREATE INDEX t_a ON t(a);")
        r = shell.run_cell("%sql --tables").result
        assert list(r["name"]) == ["t"]
        d = shell.run_cell("%sql --columns t").result
        assert list(d.columns["name"]) == ["a", "b"]
        assert list(d.indexes["name"]) == ["t_a"]
        p = shell.run_cell("%sql --plan SELECT * FROM t WHERE a = 1").result
        assert "t_a" in repr(p)
    finally:
        close_shell(shell)


def test_describe_columns_indexes_foreign_keys(ip):
    d = ip.run_cell("%sql --columns flights").result
    assert list(d.columns["name"]) == ["id", "carrier", "dep_delay", "tailnum"]
    assert list(d.columns["type"]) == ["INTEGER", "TEXT", "REAL", "TEXT"]
    assert list(d.columns["notnull"]) == [0, 1, 0, 0]
    assert list(d.columns["pk"]) == [1, 0, 0, 0]
    idx = {n: (u, c) for n, u, _, c in d.indexes.itertuples(index=False)}
    assert idx["flights_carrier"] == (False, "carrier, dep_delay")
    assert idx["flights_tail"] == (True, "tailnum")
    assert d.foreign_keys["table"].tolist() == ["planes"]
    html = d._repr_html_()
    assert "flights_carrier" in html and "foreign keys" in html
    d2 = ip.run_cell("%sql --describe aux.weather").result
    assert (d2.schema, d2.name) == ("aux", "weather")
    assert ip.run_cell("%sql --columns late").result.type == "view"


def test_describe_missing_table(ip):
    with pytest.raises(errors.ProgrammingError, match="no table or view named 'nope'"):
        ip.run_cell("%sql --columns nope")


def test_plan_tree(ip):
    ip.user_ns["c"] = "UA"
    p = ip.run_cell("%%sql --plan\nSELECT f.carrier, p.seats FROM flights f JOIN planes p USING (tailnum)\n"
                    "WHERE f.carrier = :c ORDER BY p.seats").result
    text = repr(p)
    assert text.startswith("QUERY PLAN")
    assert "SEARCH f USING" in text and "flights_carrier" in text
    assert "|--" in text or "`--" in text
    assert "<pre" in p._repr_html_()
    # nested: a subquery is indented under its parent
    p2 = ip.run_cell("%sql --plan SELECT * FROM flights WHERE id IN (SELECT id FROM flights WHERE dep_delay > 5 LIMIT 3)").result
    assert any(line.startswith(("|  ", "   ")) for line in repr(p2).splitlines())
    # nothing was run: --plan of a write leaves the table unchanged
    ip.run_cell("%sql --plan INSERT INTO planes VALUES ('N1', 3)")
    assert ip.run_cell("%sql SELECT count(*) AS n FROM planes").result["n"][0] == 0


def test_plan_needs_sql(ip):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        ip.run_cell("%sql --plan")


def test_per_statement_timing(ip):
    r = ip.run_cell("%%sql\nSELECT 1;\nSELECT count(*) FROM flights;").result
    assert all(x.sqlnb.elapsed > 0 for x in r.results)
    assert "statements: 1 SELECT" in repr(r)


def test_tables_include_lsm_details(tmp_path):
    from sqlnb.lsm import lsm_tables  # noqa: F401
    shell = new_shell()
    try:
        shell.run_cell("%sql :memory:")
        shell.run_cell(f"%sql CREATE VIRTUAL TABLE kv USING lsm1('{tmp_path}/kv.lsm', key, TEXT, val)")
        r = shell.run_cell("%sql --tables").result
        row = r[r["name"] == "kv"].iloc[0]
        assert row["module"] == "lsm1" and row["key"] == "key" and row["key_type"] == "TEXT"
        assert str(tmp_path) in row["file"]
    finally:
        close_shell(shell)


# --- completion -------------------------------------------------------------------------------
def complete(ip, text, cursor=None):
    cursor = len(text) if cursor is None else cursor
    with provisionalcompleter():
        return [(c.text, c.type, c.start, c.end) for c in ip.Completer.completions(text, cursor)]


def texts(ip, text, cursor=None):
    return [c[0] for c in complete(ip, text, cursor)]


def test_complete_table_names(ip):
    got = complete(ip, "%%sql\nSELECT * FROM fl")
    names = [c[0] for c in got]
    assert "flights" in names
    assert all(c[2] == len("%%sql\nSELECT * FROM ") for c in got if c[0] == "flights")
    assert "late" in texts(ip, "%%sql\nSELECT * FROM la")
    assert "weather" in texts(ip, "%%sql\nSELECT * FROM wea")


def test_complete_columns_after_table_and_alias(ip):
    assert set(texts(ip, "%%sql\nSELECT flights.")) == {"id", "carrier", "dep_delay", "tailnum"}
    assert texts(ip, "%%sql\nSELECT flights.dep") == ["dep_delay"]
    cell = "%%sql\nSELECT f.ca FROM flights AS f"
    assert texts(ip, cell, cell.index("f.ca") + 4) == ["carrier"]
    cell = "%%sql\nSELECT p.se\nFROM planes p"
    with provisionalcompleter():
        got = [c.text for c in ip.Completer.completions(cell, cell.index("p.se") + 4)]
    assert got == ["seats"]


def test_complete_attached_schema(ip):
    assert texts(ip, "%%sql\nSELECT * FROM aux.") == ["weather"]
    assert set(texts(ip, "%%sql\nSELECT aux.weather.")) == {"origin", "temp"}  # schema.table. -> its columns


def test_complete_columns_of_tables_in_cell(ip):
    got = texts(ip, "%%sql\nSELECT se")
    assert "seats" in got and "SELECT" not in got
    cell = "%%sql\nSELECT dep FROM flights"
    got = texts(ip, cell, cell.index("dep") + 3)
    assert "dep_delay" in got


def test_complete_keywords_in_case(ip):
    assert "WHERE" in texts(ip, "%%sql\nSELECT * FROM flights WHE")
    assert "where" in texts(ip, "%%sql\nSELECT * FROM flights whe")


def test_complete_line_magic(ip):
    assert "planes" in texts(ip, "%sql SELECT * FROM pla")


def test_no_sql_completion_outside_sql(ip):
    ip.user_ns["flights_py"] = 1
    got = complete(ip, "fligh")
    assert all(c[1] not in ("table", "column") for c in got)
    assert "flights_py" in [c[0] for c in got]
    # the magic's own first line is not SQL
    assert all(c[1] != "table" for c in complete(ip, "%%sql --tab"))


def test_completion_follows_schema_changes(ip):
    assert "newtab" not in texts(ip, "%%sql\nSELECT * FROM new")
    ip.run_cell("%sql CREATE TABLE newtab(x)")
    assert "newtab" in texts(ip, "%%sql\nSELECT * FROM new")


def test_autocomplete_trait(ip):
    ip.run_line_magic("config", "SqlMagic.autocomplete = False")
    assert "flights" not in texts(ip, "%%sql\nSELECT * FROM fl")


# --- what the notebook layer reads of the SQL text (through sqlnb._sql) ------------------------
def test_table_refs_follow_sqlite_tokens():
    from sqlnb.notebook.completion import table_refs

    assert table_refs("SELECT * FROM flights f JOIN planes AS p ON f.tailnum = p.tailnum") == [
        ("flights", "f"), ("planes", "p")]
    assert table_refs("select * from aux.weather w, airlines") == [("aux.weather", "w"), ("airlines", None)]
    assert table_refs('SELECT * FROM "my table" "t" WHERE x') == [("my table", "t")]
    # a keyword is not an alias; FROM inside strings and comments names no table
    assert table_refs("SELECT 'from nowhere' -- join x\nFROM t WHERE 1 /* into y */") == [("t", None)]
    assert table_refs("INSERT INTO t(a, b) SELECT a, b FROM (SELECT 1 a, 2 b)") == [("t", None)]


def test_word_before_the_cursor():
    from sqlnb.notebook.completion import word_before

    assert word_before("SELECT f.dep_") == ("f", "dep_")
    assert word_before("SELECT aux.") == ("aux", "")
    assert word_before('SELECT "my table".co') == ("my table", "co")
    assert word_before("SELECT f. dep") == (None, "dep")
    assert word_before("SELECT ") == (None, "")
    assert word_before('SELECT * FROM "fli') == (None, "fli")
    # inside a string or a comment: nothing to complete
    assert word_before("SELECT 'abc") is None
    assert word_before("SELECT 'it''s fl") is None
    assert word_before("SELECT 1 -- the fl") is None
    assert word_before("SELECT 1 /* fl") is None
    assert word_before("SELECT 'abc' || fl") == (None, "fl")
    assert word_before("SELECT 1 /* x */ fl") == (None, "fl")


def test_virtual_module_from_the_schema_sql():
    from sqlnb.notebook.explore import virtual_module

    assert virtual_module("CREATE VIRTUAL TABLE t USING fts5(a, b)") == "fts5"
    assert virtual_module('CREATE VIRTUAL TABLE "using" USING "rtree"(id, x0, x1)') == "rtree"
    assert virtual_module("CREATE TABLE t(a, b)") is None
    assert virtual_module("CREATE VIEW v AS SELECT 'CREATE VIRTUAL'") is None
