"""Saved queries (#26 item 3): %%sql --save NAME, NAME used as a table (a WITH clause in front of
the statement), dependencies, cycles, the shadowing rule, --snippets, --delete, Tab, and errors in
the terms of what the user wrote."""
from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.completer import provisionalcompleter
from IPython.utils.capture import capture_output

from sqlnb import errors
from sqlnb.notebook.saved import SavedQueryError, split_statements
from tests.magics_shell import close_shell, new_shell

DATA = ("CREATE TABLE flights(id INTEGER PRIMARY KEY, delay, carrier);\n"
        "INSERT INTO flights VALUES (1, 90, 'UA');\nINSERT INTO flights VALUES (2, 10, 'AA');\n"
        "INSERT INTO flights VALUES (3, 200, 'UA');\nINSERT INTO flights VALUES (4, 75, 'AA');")


@pytest.fixture
def ip(tmp_path):
    shell = new_shell()
    shell.run_cell(f"%sql --connect {tmp_path / 'f.db'}")
    shell.run_cell("%%sql\n" + DATA)
    yield shell
    close_shell(shell)


def one_line(exc) -> str:
    lines = exc._render_traceback_()
    assert len(lines) == 1, lines
    return lines[0]


def fails(ip, cell):
    res = ip.run_cell_result(cell)
    assert res.error_in_exec is not None, cell
    return res.error_in_exec


def test_save_then_use_as_a_table(ip):
    with capture_output() as cap:
        r = ip.run_cell("%%sql --save late\nSELECT * FROM flights WHERE delay > 60  -- late ones\n").result
    assert r is None  # kept, not run
    assert "saved query late" in cap.stdout
    r = ip.run_cell("%sql SELECT id FROM late ORDER BY id").result
    assert r["id"].tolist() == [1, 3, 4]
    # the cell's statement stays as written (statement info, line numbers)
    assert r.sqlnb.sql == "SELECT id FROM late ORDER BY id"
    r = ip.run_cell("%%sql\nSELECT 1;\nSELECT count(*) AS n FROM late l JOIN flights f USING (id)").result
    assert r["n"][0] == 3 and r.sqlnb.line == 3
    # also inside INSERT … SELECT, CREATE TABLE … AS and a statement with its own WITH
    ip.run_cell("%sql CREATE TABLE late_copy AS SELECT * FROM late")
    ip.run_cell("%sql INSERT INTO late_copy SELECT * FROM late WHERE carrier = 'UA'")
    assert ip.run_cell("%sql SELECT count(*) AS n FROM late_copy").result["n"][0] == 5
    r = ip.run_cell("%%sql\nWITH ua AS (SELECT * FROM late WHERE carrier = 'UA') SELECT id FROM ua ORDER BY id").result
    assert r["id"].tolist() == [1, 3]
    r = ip.run_cell("%%sql\nWITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3)\n"
                    "SELECT count(*) AS c FROM n, late").result
    assert r["c"][0] == 9
    plan = ip.run_cell("%sql --plan SELECT * FROM late").result
    assert "flights" in str(plan)


def test_saved_queries_using_each_other(ip):
    ip.run_cell("%%sql --save late\nSELECT * FROM flights WHERE delay > 60")
    ip.run_cell("%%sql --save late_ua\nSELECT * FROM late WHERE carrier = 'UA'")
    ip.run_cell("%%sql --save late_ua_ids\nSELECT id FROM late_ua")
    r = ip.run_cell("%sql SELECT id FROM late_ua_ids ORDER BY id").result
    assert r["id"].tolist() == [1, 3]
    # re-saving one changes what the others give
    ip.run_cell("%%sql --save late\nSELECT * FROM flights WHERE delay > 100")
    assert ip.run_cell("%sql SELECT id FROM late_ua_ids").result["id"].tolist() == [3]
    rows = ip.run_cell("%sql --snippets").result
    assert rows["name"].tolist() == ["late", "late_ua", "late_ua_ids"]
    assert rows["uses"].tolist() == ["", "late", "late_ua"]


def test_a_cycle_is_refused_with_a_clear_error(ip):
    ip.run_cell("%%sql --save a\nSELECT * FROM flights")
    ip.run_cell("%%sql --save b\nSELECT * FROM a")
    exc = fails(ip, "%%sql --save a\nSELECT * FROM b")
    assert isinstance(exc, SavedQueryError)
    assert "cycle: a → b → a" in one_line(exc)
    assert ip.run_cell("%sql SELECT count(*) AS n FROM b").result["n"][0] == 4  # the old a stays
    exc = fails(ip, "%%sql --save self\nSELECT * FROM self")
    assert "cycle: self → self" in one_line(exc)


def test_a_real_table_wins_over_a_saved_query(ip):
    exc = fails(ip, "%%sql --save flights\nSELECT 1 AS x")
    assert isinstance(exc, SavedQueryError) and "a real table wins" in one_line(exc)
    ip.run_cell("%%sql --save late\nSELECT * FROM flights WHERE delay > 60")
    ip.run_cell("%sql CREATE TABLE late(id); INSERT INTO late VALUES (42)")
    assert ip.run_cell("%sql SELECT id FROM late").result["id"].tolist() == [42]  # the table
    ip.run_cell("%sql DROP TABLE late")
    assert len(ip.run_cell("%sql SELECT id FROM late").result) == 3  # the saved query again


def test_the_statements_own_cte_wins(ip):
    ip.run_cell("%%sql --save late\nSELECT * FROM flights WHERE delay > 60")
    r = ip.run_cell("%%sql\nWITH late AS (SELECT 7 AS id) SELECT id FROM late").result
    assert r["id"].tolist() == [7]


def test_snippets_and_delete(ip):
    ip.run_cell("%%sql --save late\nSELECT * FROM flights WHERE delay > 60")
    ip.run_cell("%%sql --save late_ua\nSELECT * FROM late WHERE carrier = 'UA'")
    exc = fails(ip, "%sql --delete late")
    assert "late_ua" in one_line(exc) and "delete them first" in one_line(exc)
    with capture_output() as cap:
        ip.run_cell("%sql --delete late_ua")
    assert "deleted saved query late_ua" in cap.stdout
    assert ip.run_cell("%sql --snippets").result["name"].tolist() == ["late"]
    exc = fails(ip, "%sql --delete nothing")
    assert "no saved query named 'nothing'" in one_line(exc)
    ip.run_cell("%sql --delete late")
    assert isinstance(fails(ip, "%sql SELECT * FROM late"), errors.SQLError)


def test_tab_completes_saved_names(ip):
    ip.run_cell("%%sql --save late_flights\nSELECT * FROM flights WHERE delay > 60")
    with provisionalcompleter():
        got = [c.text for c in ip.Completer.completions("%%sql\nSELECT * FROM late_", 24)]
    assert "late_flights" in got


def test_errors_in_the_terms_of_what_was_written(ip):
    # an error in the cell's own statement: the cell's line and column
    ip.run_cell("%%sql --save late\nSELECT id, delay\nFROM flights WHERE delay > 60")
    text = one_line(fails(ip, "%%sql\nSELECT 1;\nSELECT nocol FROM late"))
    assert "statement 2 (line 3) at line 3, column 8 near 'nocol FROM late'" in text
    assert "WITH" not in text
    # an error inside the saved query (its table changed): the saved query and its own line
    ip.run_cell("%sql DROP TABLE flights; CREATE TABLE flights(id, carrier)")
    text = one_line(fails(ip, "%sql SELECT * FROM late"))
    assert "in saved query late at line 1, column 12" in text and "no such column: delay" in text
    # saving a query that does not prepare: not saved, the error names the saved text
    text = one_line(fails(ip, "%%sql --save bad\nSELECT\n  nocol FROM flights"))
    assert "in saved query bad at line 2, column 3" in text and "not saved" in text
    assert "bad" not in ip.run_cell("%sql --snippets").result["name"].tolist()


def test_parameters_of_a_saved_query_bind_when_used(ip):
    ip.run_cell("%%sql --save over\nSELECT id FROM flights WHERE delay > :limit_minutes")
    ip.user_ns["limit_minutes"] = 80
    assert ip.run_cell("%sql SELECT id FROM over ORDER BY id").result["id"].tolist() == [1, 3]
    ip.user_ns["limit_minutes"] = 150
    assert ip.run_cell("%sql SELECT id FROM over").result["id"].tolist() == [3]


@pytest.mark.parametrize("cell, word", [
    ("%%sql --save two\nSELECT 1; SELECT 2", "one query"),
    ("%%sql --save ins\nINSERT INTO flights VALUES (9, 9, 'X')", "SELECT, VALUES or WITH"),
    ("%%sql --save 9x\nSELECT 1", "plain SQL name"),
])
def test_what_cannot_be_saved(ip, cell, word):
    exc = fails(ip, cell)
    assert word in one_line(exc)
    assert ip.run_cell("%sql SELECT count(*) AS n FROM flights").result["n"][0] == 4  # nothing ran


def test_save_options_that_would_do_nothing(ip):
    with pytest.raises(UsageError, match="without running"):
        ip.run_cell("%%sql --save x -o y\nSELECT 1")
    with pytest.raises(UsageError, match="no SQL"):
        ip.run_cell("%sql --save x")


def test_saved_queries_in_read_only_mode(ip, tmp_path):
    """A CTE writes nothing: saved queries work where even a TEMP view would be refused."""
    ip.run_cell("%%sql --save late\nSELECT * FROM flights WHERE delay > 60")
    ip.run_cell(f"%sql --connect {tmp_path / 'f.db'} --mode ro --alias readonly")
    assert len(ip.run_cell("%sql SELECT * FROM late").result) == 3
    with pytest.raises(errors.Error):
        ip.run_cell("%sql CREATE TEMP VIEW v AS SELECT 1")


def test_on_every_engine(engine, tmp_path):
    shell = new_shell()
    try:
        shell.run_cell(f"%sql --connect {tmp_path / 'e.db'} --engine {engine}")
        shell.run_cell("%sql CREATE TABLE t(a)")
        shell.run_cell("%sql INSERT INTO t VALUES (1)")
        res = shell.run_cell_result("%%sql --save s\nSELECT a FROM t")
        if engine == "bdb":  # its SQLite 3.7.6 core has no WITH: said in one line, nothing saved
            text = one_line(res.error_in_exec)
            assert "common table expressions" in text and "not saved" in text
            return
        assert res.error_in_exec is None
        assert shell.run_cell("%sql SELECT a FROM s").result["a"].tolist() == [1]
    finally:
        close_shell(shell)


def test_split_statements_follows_sqlite():
    text = ("SELECT ';' AS a; -- c;\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2 END; "
            "UPDATE t SET a = 1; END;\nSELECT (1;")
    spans = [text[s:e].strip() for s, e in split_statements(text)]
    assert spans[0] == "SELECT ';' AS a;"
    assert spans[1].startswith("-- c;\nCREATE TRIGGER") and spans[1].endswith("END;")
    assert spans[2] == "SELECT (1;"
