"""The magics' defects and paper cuts of issue #26 (item 6), each with the behaviour it must have."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from sqlnb import errors
from tests.magics_shell import close_shell, new_shell


@pytest.fixture
def ip():
    shell = new_shell()
    yield shell
    close_shell(shell)


@pytest.fixture
def mem(ip):
    ip.run_cell("%sql :memory:")
    return ip


def one_line(exc) -> str:
    lines = exc._render_traceback_()
    assert len(lines) == 1, lines
    return lines[0]


def usage(ip, cell) -> str:
    """The UsageError a cell fails with (IPython shows it as one line, no traceback)."""
    with pytest.raises(UsageError) as info:
        ip.run_cell(cell)
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# --- --tables fails as a SELECT fails ---------------------------------------------------------
LOCKER = textwrap.dedent("""
    import sqlite3, sys
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    con.execute("INSERT INTO t VALUES (2)")
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes our stdin
    con.execute("ROLLBACK")
""")


def test_tables_fails_while_another_process_holds_a_write_lock(ip, tmp_path):
    path = tmp_path / "locked.db"
    ip.run_cell(f"%sql --connect {path}")
    ip.run_cell("%sql CREATE TABLE t(a)")
    ip.run_line_magic("config", "SqlMagic.busy_timeout = 0.2")  # a bounded wait for the lock
    ip.run_cell("%sql --close locked")
    ip.run_cell(f"%sql --connect {path}")
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"  # the other process holds the lock now
        res = ip.run_cell_result("%sql SELECT * FROM t")
        assert isinstance(res.error_in_exec, errors.BusyError)
        res = ip.run_cell_result("%sql --tables")
        exc = res.error_in_exec
        assert isinstance(exc, errors.BusyError), exc
        text = one_line(exc)
        assert "BusyError" in text and "%config SqlMagic.busy_timeout" in text
        assert "connect(timeout" not in text  # the magic's setting, not the library's argument
        assert res.result is None
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


def test_tables_fails_on_a_file_that_is_not_a_database(ip, tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database file " * 200)
    ip.run_cell(f"%sql --connect {path}")
    res = ip.run_cell_result("%sql SELECT * FROM t")
    select_line = one_line(res.error_in_exec)
    res = ip.run_cell_result("%sql --tables")
    assert isinstance(res.error_in_exec, errors.NotADatabaseError)
    assert res.result is None
    assert "file is not a database" in one_line(res.error_in_exec)
    assert "file is not a database" in select_line


# --- --export / --persist: checked first, one line, a success line ----------------------------
def test_export_arguments_are_checked_before_the_sql_runs(mem, tmp_path):
    mem.run_cell("%sql CREATE TABLE t(a); INSERT INTO t VALUES (1), (2)")
    text = usage(mem, f"%sql --export {tmp_path}/out.xlsx DELETE FROM t WHERE a = 1")
    assert "out.xlsx" in text
    text = usage(mem, f"%sql --export {tmp_path}/nodir/out.csv DELETE FROM t WHERE a = 1")
    assert "nodir" in text
    text = usage(mem, f"%sql --export {tmp_path}/out.csv --format parquet DELETE FROM t WHERE a = 1")
    assert "csv" in text and "parquet" in text
    assert mem.run_cell("%sql SELECT count(*) AS n FROM t").result["n"][0] == 2  # nothing ran
    assert not list(tmp_path.iterdir())  # nothing written


def test_export_says_what_it_wrote_and_when_it_replaced(mem, tmp_path):
    out = tmp_path / "out.csv"
    with capture_output() as cap:
        mem.run_cell(f"%sql --export {out} SELECT 1 AS a UNION ALL SELECT 2")
    assert f"exported 2 rows to {out} (csv)" in cap.stdout
    with capture_output() as cap:
        mem.run_cell(f"%sql --export {out} SELECT 3 AS a")
    assert f"exported 1 row to {out} (csv" in cap.stdout and "replaced" in cap.stdout
    assert pd.read_csv(out)["a"].tolist() == [3]
    with capture_output() as cap:  # --format where the extension does not say
        mem.run_cell(f"%sql --export {tmp_path / 'data.out'} --format jsonl SELECT 4 AS a")
    assert "(jsonl)" in cap.stdout


def test_persist_errors_are_one_line_and_checked_before_the_sql(mem):
    mem.run_cell("%sql CREATE TABLE t(a); INSERT INTO t VALUES (1)")
    text = usage(mem, "%sql --persist nothing DELETE FROM t")
    assert "nothing" in text
    assert mem.run_cell("%sql SELECT count(*) AS n FROM t").result["n"][0] == 1
    mem.user_ns["frame"] = pd.DataFrame({"a": [1]})
    res = mem.run_cell_result("%sql --persist frame --table t")
    assert isinstance(res.error_in_exec, errors.Error)
    assert "t" in one_line(res.error_in_exec)


def test_persist_success_lines_and_index(mem):
    mem.user_ns["frame"] = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="key"))
    with capture_output() as cap:
        mem.run_cell("%sql --persist frame")
    assert "created table frame: 2 rows" in cap.stdout and "fail" not in cap.stdout
    with capture_output() as cap:
        mem.run_cell("%sql --persist frame --append")
    assert "appended 2 rows to table frame" in cap.stdout
    with capture_output() as cap:
        mem.run_cell("%sql --persist frame --table keyed --index")
    assert "created table keyed: 2 rows" in cap.stdout
    r = mem.run_cell("%sql SELECT key, a FROM keyed ORDER BY key").result
    assert r["key"].tolist() == ["x", "y"] and r["a"].tolist() == [1, 2]
    with capture_output() as cap:
        mem.run_cell("%sql --persist frame --table keyed --replace")
    assert "replaced table keyed: 2 rows" in cap.stdout
    cols = mem.run_cell("%sql SELECT name FROM pragma_table_info('keyed')").result["name"].tolist()
    assert cols == ["a"]  # without --index the index is not written


def test_timeout_applies_to_persist(mem, monkeypatch):
    """--timeout is the connection's time limit while --persist writes, and is restored after."""
    con = mem._sqlnb_magics.session.get()
    seen = []
    write = type(con).to_table

    def watching(self, *args, **kwargs):
        seen.append(self.statement_timeout)
        return write(self, *args, **kwargs)

    monkeypatch.setattr(type(con), "to_table", watching)
    mem.user_ns["frame"] = pd.DataFrame({"a": [1]})
    before = con.statement_timeout
    mem.run_cell("%sql --persist frame --timeout 7.5")
    assert seen == [7.5]
    assert con.statement_timeout == before  # restored afterwards
    assert mem.run_cell("%sql SELECT a FROM frame").result["a"].tolist() == [1]


# --- results do not carry the earlier ones ---------------------------------------------------
def test_last_result_does_not_carry_earlier_results(mem):
    mem.run_cell("%sql CREATE TABLE big(x)")
    mem.run_cell("%sql WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) "
                 "INSERT INTO big SELECT printf('%0100d', i) FROM n")
    r = mem.run_cell("%%sql\nSELECT * FROM big;\nSELECT 1 AS one").result
    assert len(r.results) == 2  # both while _sqlnb_results holds them
    assert not any(isinstance(v, pd.DataFrame) for v in r.attrs.values())
    size = len(pickle.dumps(r))
    assert size < 10_000, size  # the 1x1 result alone (the first is ~20 MB)
    back = pickle.loads(pickle.dumps(r))
    assert back["one"].tolist() == [1] and back.sqlnb.keyword == "SELECT"
    mem.run_cell("%sql SELECT 2")  # the next cell replaces _sqlnb_results
    import gc

    gc.collect()
    assert [x.sqlnb.index for x in r.results] == [2]  # the big one is gone: r did not keep it


# --- quoted option values --------------------------------------------------------------------
def test_quoted_option_values_lose_their_quotes(ip, tmp_path):
    os.chdir(tmp_path)
    ip.run_cell("%sql --connect 'my data.db' --alias d")
    assert (tmp_path / "my data.db").exists()
    assert not any("'" in p.name for p in tmp_path.iterdir())
    ip.user_ns["frame"] = pd.DataFrame({"a": [1]})
    ip.run_cell('%sql --persist frame --table "my table"')
    assert ip.run_cell('%sql SELECT a FROM "my table"').result["a"].tolist() == [1]
    ip.run_cell("%sql --export 'my out.csv' SELECT a FROM \"my table\"")
    assert (tmp_path / "my out.csv").exists()
    text = usage(ip, "%sql --export 'unclosed.csv SELECT 1")
    assert "quote" in text


# --- help, comments, line numbers, bound names ----------------------------------------------
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_flag(mem, flag):
    with capture_output() as cap:
        r = mem.run_cell(f"%sql {flag}").result
    assert r is None
    assert "--connect" in cap.stdout and "--export" in cap.stdout


def test_double_dash_note_is_a_comment(mem):
    r = mem.run_cell("%sql -- note to self").result
    assert r is None
    r = mem.run_cell("%sql --limit 1 -- note").result
    assert r is None
    r = mem.run_cell("%%sql --limit 1 -- a note on the cell line\nSELECT 1 AS a UNION ALL SELECT 2").result
    assert r["a"].tolist() == [1]
    assert mem.run_cell("%sql -- SELECT 5 AS x").result["x"].tolist() == [5]  # the documented separator


def test_error_lines_count_as_the_editor_shows(mem):
    res = mem.run_cell_result("%%sql\nSELECT 1;\n\nSELECT nocol;")
    text = one_line(res.error_in_exec)
    assert "statement 2 (line 4)" in text  # line 1 is the %%sql line
    res = mem.run_cell_result("%sql SELECT nocol")
    assert "statement 1 (line 1)" in one_line(res.error_in_exec)


@pytest.mark.parametrize("sql", ["SELECT * FROM :t", "SELECT * FROM {{t}}", "SELECT :col FROM x JOIN $t"])
def test_parameter_as_table_name_explains(mem, sql):
    mem.user_ns["t"] = "flights"
    mem.user_ns["col"] = "a"
    res = mem.run_cell_result(f"%sql {sql}")
    text = one_line(res.error_in_exec)
    assert "values only" in text and "--save" in text


# --- silent no-ops become one-line usage errors ------------------------------------------------
@pytest.mark.parametrize("line, word", [
    ("-o 1bad SELECT 1", "1bad"),
    ("-o class SELECT 1", "keyword"),
    ("-o a.b SELECT 1", "a.b"),
    ("class << SELECT 1", "keyword"),
    ("-o x", "no SQL"),
    ("x <<", "x <<: there is no SQL"),
    ("--format csv SELECT 1", "--export"),
    ("--export out.csv", "no SQL"),
    ("--timeout -1 SELECT 1", "--timeout"),
    ("--limit -1 SELECT 1", "--limit"),
    ("--tables --columns t", "--tables"),
    ("--table t SELECT 1", "--persist"),
    ("--mode ro SELECT 1", "opens none"),
])
def test_silent_no_ops_are_refused(mem, line, word):
    text = usage(mem, f"%sql {line}")
    assert word in text, text


def test_listings_still_store_with_o(mem):
    mem.run_cell("%sql CREATE TABLE t(a)")
    mem.run_cell("%sql -o listing --tables")
    assert mem.user_ns["listing"]["name"].tolist() == ["t"]
    mem.run_cell("%sql -o cons --connections")
    assert mem.user_ns["cons"]["alias"].tolist() == ["memory"]


# --- display ------------------------------------------------------------------------------
def test_display_marks_hidden_rows_and_columns_at_limit_one(mem):
    mem.run_line_magic("config", "SqlMagic.display_max_rows = 1")
    mem.run_line_magic("config", "SqlMagic.display_max_cols = 1")
    r = mem.run_cell("%sql SELECT 1 AS a, 2 AS b, 3 AS c UNION ALL SELECT 4, 5, 6 UNION ALL SELECT 7, 8, 9").result
    html = r._repr_html_()
    assert "2 more rows" in html and 'class="sqlnb-more"' in html and "2 more columns" in html
    text = repr(r)
    assert "[2 more rows]" in text and "…" in text
    assert " b " not in text and "c" not in text.split("\n")[0]  # the text honours the limits too


def test_text_repr_honours_settings_and_spells_null_once(mem):
    mem.user_ns["frame"] = pd.DataFrame({"i": pd.array([1, None], dtype="Int64"), "f": [1.5, np.nan],
                                         "s": ["x", None],
                                         "t": pd.to_datetime(["2024-01-01", None])})
    mem.run_cell("%sql --persist frame")
    r = mem.run_cell("%sql SELECT i, f, s, CAST(NULL AS TEXT) AS n FROM frame").result
    text = repr(r)
    assert "None" not in text and "NaN" not in text and "<NA>" not in text and "NaT" not in text
    assert text.count("NULL") >= 4
    mem.run_line_magic("config", "SqlMagic.display_max_chars = 3")
    r = mem.run_cell("%sql SELECT 'abcdefgh' AS long").result
    assert "abc…" in repr(r) and "abcd" not in repr(r)


def test_html_floats_in_full(mem):
    r = mem.run_cell("%sql SELECT 0.1 + 0.2 AS x, 1234567.891011121 AS y").result
    html = r._repr_html_()
    assert "0.30000000000000004" in html and "1234567.891011121" in html


# --- hints -----------------------------------------------------------------------------------
def test_failed_transaction_cell_says_the_transaction_is_open(mem):
    res = mem.run_cell_result("%%sql\nCREATE TABLE t(a UNIQUE);\nBEGIN;\nINSERT INTO t VALUES (1);\n"
                              "INSERT INTO t VALUES (1);\nCOMMIT;")
    text = one_line(res.error_in_exec)
    assert "ConstraintError" in text
    assert "a transaction is still open on this connection: COMMIT or ROLLBACK" in text
    mem.run_cell("%sql ROLLBACK")
    res = mem.run_cell_result("%sql SELECT nocol")  # no transaction: no hint
    assert "transaction" not in one_line(res.error_in_exec)


def test_user_facing_class_names_have_no_underscore():
    assert errors.PermissionError_.__name__ == "PermissionError"
    assert errors.IOError_.__name__ == "IOError"
    exc = errors.make_error(3, "access permission denied")
    assert type(exc).__name__ == "PermissionError"
    again = pickle.loads(pickle.dumps(exc))  # still found by pickle under its importable name
    assert type(again) is errors.PermissionError_


def test_numpy_datetime64_and_timedelta64_bind(engine):
    import sqlnb

    con = sqlnb.connect(":memory:", engine=engine)
    row = con.execute("SELECT ?, ?, ?, ?, ?, typeof(?)", (
        np.datetime64("2024-02-29T13:05:01"), np.datetime64("2024-02-29T13:05:01.250", "ns"),
        np.datetime64("2024-02-29", "D"), np.timedelta64(90, "s"), np.datetime64("NaT"),
        np.timedelta64(1, "D"))).fetchone()
    con.close()
    assert row == ("2024-02-29 13:05:01", "2024-02-29 13:05:01.250000000", "2024-02-29",
                   90_000_000_000, None, "integer")


def test_numpy_datetime_in_a_magic_parameter(mem):
    mem.user_ns["when"] = np.datetime64("2024-02-29T13:05:01")
    assert mem.run_cell("%sql SELECT :when AS w").result["w"].tolist() == ["2024-02-29 13:05:01"]


# --- completion ------------------------------------------------------------------------------
def _texts(ip, text, cursor=None):
    from IPython.core.completer import provisionalcompleter

    cursor = len(text) if cursor is None else cursor
    with provisionalcompleter():
        return [c.text for c in ip.Completer.completions(text, cursor)]


@pytest.fixture
def planes(mem):
    mem.run_cell("%sql CREATE TABLE flights(tailnum, dep_delay); CREATE TABLE planes(tailnum, manufacturer)")
    return mem


@pytest.mark.parametrize("text", [
    "%sql SELECT manu FROM flights JOIN planes USING (tailnum)",
    "%%sql\nSELECT manu FROM flights JOIN planes USING(tailnum) JOIN flights f2 USING (tailnum)",
    "%%sql\nSELECT manu\nFROM flights, planes WHERE flights.tailnum = planes.tailnum",
    "%%sql\nSELECT manu FROM flights AS f, planes AS p",
    "%%sql\nSELECT manu FROM flights NATURAL JOIN planes",
])
def test_completion_with_using_and_comma_joins(planes, text):
    cursor = text.index("manu") + 4
    assert "manufacturer" in _texts(planes, text, cursor)


@pytest.mark.parametrize("text", ["%sql SELECT 'sel", "%sql SELECT 1 -- sel", "%%sql\nSELECT /* fro",
                                  "%%sql\nSELECT 'it''s fl"])
def test_no_completion_inside_strings_and_comments(planes, text):
    """No SQL keyword, table or function inside a literal or a comment. (IPython's own Python
    completion may still answer there: a matcher with nothing to offer cannot silence it.)"""
    got = _texts(planes, text)
    assert not any(g.upper() in ("SELECT", "FROM", "FLIGHTS") for g in got), got
    assert not [g for g in got if g in ("flights", "planes", "tailnum")], got


@pytest.mark.parametrize("text, want", [("%sql --con", "--connect"), ("%sql --conn", "--connections"),
                                         ("%%sql --lim", "--limit"), ("%sql -n 5 --exp", "--export"),
                                         ("%sql --table 'my t' --app", "--append")])
def test_completion_of_the_magics_options(planes, text, want):
    got = _texts(planes, text)
    assert want in got, got
    assert not any(g.isupper() for g in got)  # no SQL keywords


def test_no_option_completion_inside_the_sql(planes):
    got = _texts(planes, "%sql SELECT 1 --con")  # a comment in the SQL: nothing to offer
    assert "--connect" not in got


def test_export_of_a_statement_without_a_result_says_so(mem, tmp_path):
    out = tmp_path / "out.csv"
    text = usage(mem, f"%sql --export {out} CREATE TABLE t(a)")
    assert "CREATE" in text and "nothing was written" in text
    assert not out.exists()
    assert mem.run_cell("%sql SELECT count(*) AS n FROM t").result["n"][0] == 0  # the CREATE ran
