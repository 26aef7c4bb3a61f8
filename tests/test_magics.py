"""The %sql / %%sql magics in a real IPython shell, over the real engines."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from IPython.utils.capture import capture_output

import sqlnb
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


def magics_of(ip):
    return ip._sqlnb_magics


def cell(ip, body, line=""):
    return ip.run_cell(f"%%sql {line}\n{body}").result


# --- extension, help ----------------------------------------------------------------------
def test_load_ext_registers_line_and_cell_magic(ip):
    assert "sql" in ip.magics_manager.magics["line"]
    assert "sql" in ip.magics_manager.magics["cell"]


def _python(code: str) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(root)))


IPYTHON_LOADED = "[m for m in sys.modules if m == 'IPython' or m.startswith('IPython.')]"


def test_import_sqlnb_never_imports_ipython():
    """The library is usable without IPython: ``import sqlnb`` (and the notebook layer's plain
    modules) import no IPython module; only sqlnb.magics does."""
    r = _python(f"import sys, sqlnb\nloaded = {IPYTHON_LOADED}\nassert not loaded, loaded")
    assert r.returncode == 0, r.stderr
    r = _python("import sys, sqlnb, sqlnb.display, sqlnb.explore, sqlnb.interactive, sqlnb.demo\n"
                "from sqlnb.notebook import cell, command, completion, display, explore, session\n"
                f"loaded = {IPYTHON_LOADED}\nassert not loaded, loaded")
    assert r.returncode == 0, r.stderr
    r = _python(f"import sys, sqlnb.magics\nloaded = {IPYTHON_LOADED}\nassert loaded, loaded")
    assert r.returncode == 0, r.stderr


def test_option_table_is_the_parser():
    """split_line's table of options that take a value is the one the parser was built from."""
    from sqlnb import magics

    parser = magics.SqlMagic.sql.parser
    from_parser = {opt: action.nargs != 0 for action in parser._actions for opt in action.option_strings
                   if opt not in ("-h", "--help")}
    assert from_parser == magics.TAKES_VALUE


def test_help_lists_every_flag(ip):
    doc = ip.find_line_magic("sql").__doc__
    parser = magics_of(ip).sql.parser
    for action in parser._actions:
        for opt in action.option_strings:
            if opt.startswith("--"):
                assert opt in doc, opt
    assert ":name" in doc and "%config SqlMagic" in doc
    with capture_output() as cap:
        ip.run_cell("%sql?")
    # the pager payload or stdout carries the help
    payload = ip.payload_manager.read_payload()
    text = cap.stdout + str(payload)
    assert "--connect" in text


# --- connections ---------------------------------------------------------------------------
def test_open_by_url_path_and_memory_with_aliases(ip, tmp_path):
    p = tmp_path / "a.db"
    ip.run_cell(f"%sql sqlite:///{p}")
    ip.run_cell(f"%sql --connect {tmp_path / 'b.db'} --alias bee")
    ip.run_cell("%sql :memory:")
    s = magics_of(ip).session
    assert list(s.connections) == ["a", "bee", "memory"]
    assert s.current == "memory"
    assert s.connections["a"].path == str(p)
    ip.run_cell("%sql --use bee")
    ip.run_cell("%sql CREATE TABLE only_in_b(x)")
    ip.run_cell("%sql --use a")
    with pytest.raises(errors.SQLError, match="no such table: only_in_b"):
        ip.run_cell("%sql SELECT * FROM only_in_b")
    listing = ip.run_cell("%sql --connections").result
    assert list(listing["alias"]) == ["a", "bee", "memory"]
    assert list(listing["current"]) == [True, False, False]
    assert set(listing["engine"]) == {"sqlite"}
    assert listing["url"][0] == f"sqlite:///{p}"
    assert listing["policy"][0] == "rw"
    ip.run_cell("%sql --close bee")
    assert list(s.connections) == ["a", "memory"]
    with pytest.raises(errors.InterfaceError, match="no connection named 'bee'"):
        ip.run_cell("%sql --use bee")


def test_url_is_listed_without_secrets(ip, tmp_path):
    ip.run_cell(f"%sql sqlite:///{tmp_path}/s.db?password=hunter2")
    listing = ip.run_cell("%sql --connections").result
    assert "hunter2" not in listing._repr_html_()
    assert "hunter2" not in repr(listing)
    assert listing["url"][0] == f"sqlite:///{tmp_path}/s.db?password=***"


def test_no_connection_is_a_clear_error(ip):
    with pytest.raises(errors.InterfaceError, match="no connection is open"):
        ip.run_cell("%sql SELECT 1")


def test_duplicate_and_bad_alias(ip):
    ip.run_cell("%sql --connect :memory: --alias m")
    with pytest.raises(errors.InterfaceError, match="already open"):
        ip.run_cell("%sql --connect :memory: --alias m")
    with pytest.raises(errors.InterfaceError, match="not a valid name"):
        ip.run_cell("%sql --connect :memory: --alias 9x")


def test_alias_without_connect_is_a_usage_error(mem):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="--connect"):
        mem.run_cell("%sql --alias x SELECT 1")


@pytest.mark.parametrize("scheme,engine", [("sqlite", "sqlite"), ("system", "system"), ("bdb", "bdb")])
def test_engine_schemes_and_flag(ip, tmp_path, scheme, engine):
    from tests.conftest import need_engine

    need_engine(engine)
    ip.user_ns["a"] = 1
    ip.run_cell(f"%sql {scheme}:///{tmp_path}/e.db")
    con = magics_of(ip).session.get()
    assert con.engine == engine
    r = cell(ip, "CREATE TABLE t(a, b);\nINSERT INTO t VALUES (:a, 'x');\nSELECT a, b FROM t;",)
    assert r.sqlnb.engine == engine
    ip.run_cell(f"%sql --connect {tmp_path}/f.db --engine {engine} --alias f")
    assert magics_of(ip).session.get("f").engine == engine


def test_engine_flag_on_every_engine_binds(ip, engine, tmp_path):
    ip.user_ns.update(a=7, s="'); DROP TABLE t; --")
    ip.run_cell(f"%sql --connect {tmp_path}/x.db --engine {engine}")
    r = cell(ip, "CREATE TABLE t(a, s);\nINSERT INTO t VALUES (:a, :s);\nSELECT a, s FROM t;")
    assert r.values.tolist() == [[7, "'); DROP TABLE t; --"]]
    assert len(r.results) == 3
    r = cell(ip, "INSERT INTO t SELECT a + 1, s FROM t;\nINSERT INTO t SELECT a + 2, s FROM t;\nSELECT a FROM t ORDER BY a;",
             line="--limit 2")
    assert r["a"].tolist() == [7, 8] and r.sqlnb.truncated
    res = ip.run_cell_result("%%sql\nSELECT 1;\nSELECT nocol FROM t;")
    assert isinstance(res.error_in_exec, errors.Error)
    assert res.error_in_exec.statement_no == 2 and res.error_in_exec.line == 3  # the %%sql line is 1
    assert "no such column" in res.error_in_exec._render_traceback_()[0]


def test_lsm_url_is_passed_to_connect(ip, tmp_path):
    import sqlnb.lsm as lsm  # noqa: F401
    ip.run_cell(f"%sql lsm:///{tmp_path}/ev.lsm?table=ev&key_type=TEXT")
    con = magics_of(ip).session.get()
    assert con.url.startswith("lsm:///")
    cell(ip, "INSERT INTO ev(key, value) VALUES ('a', 'b');")


def test_mode_ro_refuses_writes(ip, tmp_path):
    db = tmp_path / "ro.db"
    c = sqlnb.connect(str(db))
    c.execute("CREATE TABLE t(x)")
    c.commit()
    c.close()
    ip.run_cell(f"%sql --connect {db} --mode ro --alias r")
    assert magics_of(ip).session.get().mode == "ro"
    with pytest.raises(errors.ReadOnlyError, match="mode 'ro' refused INSERT"):
        ip.run_cell("%sql INSERT INTO t VALUES (1)")
    assert ip.run_cell("%sql SELECT count(*) AS n FROM t").result["n"][0] == 0


def test_mode_rw_flag_plumbing(ip, tmp_path):
    ip.run_cell(f"%sql --connect {tmp_path}/w.db --mode rw")
    con = magics_of(ip).session.get()
    assert con.mode == "rw"


# --- statements, parameters ------------------------------------------------------------------
def test_line_magic_returns_dataframe(mem):
    df = mem.run_cell("df = %sql SELECT 1 AS one, 'two' AS two\ndf").result
    assert isinstance(df, pd.DataFrame)
    assert df.to_dict("records") == [{"one": 1, "two": "two"}]
    assert mem.user_ns["df"] is df


def test_out_flag_and_double_angle(mem):
    r = mem.run_cell("%sql -o first SELECT 41 + 1 AS n").result
    assert mem.user_ns["first"]["n"][0] == 42 and r is mem.user_ns["first"]
    r = mem.run_cell("%sql second << SELECT 'q' AS s").result
    assert r is None
    assert mem.user_ns["second"]["s"][0] == "q"
    r = mem.run_cell("%%sql third <<\nSELECT 3 AS t").result
    assert r is None and mem.user_ns["third"]["t"][0] == 3
    mem.run_cell("%%sql --out fourth\nSELECT 4 AS f")
    assert mem.user_ns["fourth"]["f"][0] == 4


HOSTILE = [
    "'); DROP TABLE t; --",
    "Robert'); DELETE FROM t WHERE ('1'='1",
    ":other",
    "$other @other ?1",
    "\x00nul inside",
    "<script>alert('x')</script>",
    "emoji 😀 and ünïcödé",
    "a" * 100_000,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_data(mem, value):
    mem.user_ns["v"] = value
    mem.user_ns["other"] = "NOT USED"
    cell(mem, "CREATE TABLE t(v);\nINSERT INTO t VALUES (:v);")
    r = mem.run_cell("%sql SELECT v, (SELECT count(*) FROM t) AS n FROM t").result
    assert r["v"][0] == value
    assert r["n"][0] == 1
    cell(mem, "DROP TABLE t;")


@pytest.mark.parametrize("value", [None, 0, -(2**63), 2**63 - 1, 1.5, math.inf, b"\x00\xff", True,
                                   np.int64(5), np.float32(0.25), bytearray(b"ab")])
def test_any_bindable_type(mem, value):
    mem.user_ns["v"] = value
    r = mem.run_cell("%sql SELECT :v AS v, typeof(:v) AS t").result
    got = r["v"][0]
    if value is None:
        assert got is None or (isinstance(got, float) and math.isnan(got))
        assert r["t"][0] == "null"
    elif isinstance(value, (bytes, bytearray)):
        assert got == bytes(value)
    else:
        assert got == value


def test_dollar_and_at_names_and_locals(mem):
    mem.user_ns.update(a=1, b=2, c=3)
    r = mem.run_cell("%sql SELECT :a + $b + @c AS s").result
    assert r["s"][0] == 6
    mem.run_cell("def f(a):\n    r = %sql SELECT :a * 10 AS s\n    return r\nres = f(5)")
    assert mem.user_ns["res"]["s"][0] == 50


def test_not_parameters_json_slice_comments(mem):
    """':1' in JSON, '[:2]' slices, and comments are left to SQLite's parser: no parameters."""
    body = """-- a comment with :x and $y and @z
SELECT json_extract('{"a": ":1", "b": [1,2,3]}', '$.a') AS a, /* :c [:2] */
       substr('abcdef', 1, 2) AS s, '[:2]' AS lit, ':1' AS colon -- :trailing
"""
    r = cell(mem, body)
    assert r.iloc[0].tolist() == [":1", "ab", "[:2]", ":1"]
    assert r.sqlnb.params == ()


def test_missing_parameter_names_it(mem):
    with pytest.raises(errors.ParameterError, match=r":carrier.*'carrier'"):
        mem.run_cell("%sql SELECT :carrier")


def test_missing_parameter_system_engine(ip):
    ip.run_cell("%sql system:///:memory:")
    with pytest.raises(errors.ProgrammingError, match="carrier"):
        ip.run_cell("%sql SELECT :carrier")
    ip.user_ns["carrier"] = "UA"
    assert ip.run_cell("%sql SELECT :carrier AS c").result["c"][0] == "UA"


def test_positional_parameter_is_refused(mem):
    with pytest.raises(errors.ParameterError, match="positional"):
        mem.run_cell("%sql SELECT ?")
    with pytest.raises(errors.ParameterError, match="not a Python variable name"):
        mem.run_cell("%sql SELECT :1")


def test_unbindable_value_is_a_clear_error(mem):
    mem.user_ns["v"] = object()
    with pytest.raises(errors.BindError, match="object"):
        mem.run_cell("%sql SELECT :v")


# --- multi-statement cells ---------------------------------------------------------------------
def test_every_statement_result_is_kept(mem):
    r = cell(mem, """CREATE TABLE t(a INTEGER);  -- one
INSERT INTO t VALUES (1), (2), (3);
SELECT count(*) AS n FROM t;
/* between */ SELECT a FROM t ORDER BY a;
UPDATE t SET a = a + 1 WHERE a > 1;
""")
    assert [x.sqlnb.keyword for x in r.results] == ["CREATE", "INSERT", "SELECT", "SELECT", "UPDATE"]
    assert r.results[1].sqlnb.rowcount == 3
    assert r.results[2]["n"][0] == 3
    assert r.results[3]["a"].tolist() == [1, 2, 3]
    assert r.sqlnb.rowcount == 2
    assert mem.user_ns["_sqlnb_results"] == r.results or all(
        a is b for a, b in zip(mem.user_ns["_sqlnb_results"], r.results))
    assert [x.sqlnb.line for x in r.results] == [2, 3, 4, 5, 6]  # as the editor counts: %%sql is line 1
    assert "statements: 1 CREATE" in repr(r)


def test_error_names_statement_and_line_and_fails_cell(mem):
    body = "CREATE TABLE t(a);\nINSERT INTO t VALUES (1);\n\n-- comment\nSELECT * FROM\n  t WHERE nocol = 1;\nSELECT 'never';"
    res = mem.run_cell_result(f"%%sql\n{body}")
    exc = res.error_in_exec
    assert isinstance(exc, errors.SQLError)
    assert exc.statement_no == 3
    assert exc.line == 6  # the statement starts at line 6 of the cell as the editor shows it
    lines = exc._render_traceback_()
    assert len(lines) == 1
    text = lines[0]
    assert "statement 3 (line 6)" in text and "no such column: nocol" in text
    assert "line 7, column 11" in text  # SQLite's offset, mapped into the cell
    assert "Traceback" not in text
    # earlier statements ran (autocommit), later ones did not
    assert mem.run_cell("%sql SELECT count(*) AS n FROM t").result["n"][0] == 1


def test_statements_after_the_failing_one_have_not_run(mem):
    """docs/magics.md: statements before the failing one have run (autocommit); the ones after have not."""
    res = mem.run_cell_result("%%sql\nCREATE TABLE t(a);\nINSERT INTO t VALUES (1);\n"
                              "INSERT INTO nowhere VALUES (2);\nINSERT INTO t VALUES (3);\nCREATE TABLE after(b);")
    assert isinstance(res.error_in_exec, errors.SQLError) and res.error_in_exec.statement_no == 3
    assert mem.run_cell("%sql SELECT a FROM t").result["a"].tolist() == [1]  # 1 committed, 3 never inserted
    names = mem.run_cell("%sql SELECT name FROM sqlite_master ORDER BY name").result["name"].tolist()
    assert names == ["t"]  # the CREATE after the failing statement did not run
    assert magics_of(mem).session.get().in_transaction is False


def test_error_at_step_names_statement(mem):
    res = mem.run_cell_result("%%sql\nCREATE TABLE u(a UNIQUE);\nINSERT INTO u VALUES (1);\nINSERT INTO u VALUES (1);")
    exc = res.error_in_exec
    assert isinstance(exc, errors.ConstraintError)
    assert exc.statement_no == 3 and exc.line == 4
    assert "ConstraintError in statement 3 (line 4)" in exc._render_traceback_()[0]


def test_syntax_error_offset(mem):
    res = mem.run_cell_result("%%sql\nSELECT 1;\nSELECT 2 FROM WHERE;")
    exc = res.error_in_exec
    assert exc.statement_no == 2
    assert re.search(r"line 3, column \d+ near 'WHERE", exc._render_traceback_()[0])


def test_long_errors_keep_traceback(mem):
    mem.run_line_magic("config", "SqlMagic.short_errors = False")
    res = mem.run_cell_result("%sql SELECT nocol")
    exc = res.error_in_exec
    assert isinstance(exc, errors.SQLError)
    assert not hasattr(exc, "_render_traceback_")
    assert any("statement 1 (line 1)" in n for n in exc.__notes__)


def test_run_all_stops_at_failing_cell(mem):
    """Through the kernel-style path: an error in exec is reported (so Run All stops)."""
    res = mem.run_cell_result("%sql SELECT * FROM missing_table")
    assert not res.success and res.error_in_exec is not None


# --- flags -----------------------------------------------------------------------------------
RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("engine_name", ["sqlite", "system"])
def test_timeout_flag(ip, engine_name):
    ip.run_cell(f"%sql --connect :memory: --engine {engine_name}")
    with pytest.raises(errors.QueryTimeoutError):
        ip.run_cell(f"%sql --timeout 0.2 {RUNAWAY}")
    assert magics_of(ip).session.get().statement_timeout is None  # restored after the run
    assert ip.run_cell("%sql SELECT 1 AS x").result["x"][0] == 1


@pytest.mark.timeout(30)
def test_timeout_flag_restores_a_previous_limit(ip):
    """--timeout is for one run: a connection's own limit (here 30 s) is back afterwards, after a
    timeout and after a run that ended normally."""
    ip.run_line_magic("config", "SqlMagic.timeout = 30")
    ip.run_cell("%sql --connect :memory:")
    con = magics_of(ip).session.get()
    assert con.statement_timeout == 30
    with pytest.raises(errors.QueryTimeoutError, match="time limit of 0.2 s"):
        ip.run_cell(f"%sql --timeout 0.2 {RUNAWAY}")
    assert con.statement_timeout == 30
    assert ip.run_cell("%sql --timeout 5 SELECT 1 AS x").result["x"][0] == 1
    assert con.statement_timeout == 30
    con.statement_timeout = 0.3  # set on the connection itself: kept the same way
    ip.run_cell("%sql --timeout 5 SELECT 2 AS x")
    assert con.statement_timeout == pytest.approx(0.3)


def test_limit_caps_fetch(mem):
    r = mem.run_cell("%sql --limit 5 WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100) SELECT x FROM c").result
    assert len(r) == 5 and r.sqlnb.truncated
    assert "--limit 5" in repr(r)
    r = mem.run_cell("%sql -n 500 WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100) SELECT x FROM c").result
    assert len(r) == 100 and not r.sqlnb.truncated


def test_all_flag_displays_every_result(mem):
    with capture_output() as cap:
        mem.run_cell("%%sql --all\nSELECT 'first' AS a;\nSELECT 'second' AS b;")
    html = [o.data.get("text/html", "") for o in cap.outputs]
    assert any("first" in h for h in html)


def test_export_flag(mem, tmp_path):
    out = tmp_path / "r.csv"
    mem.run_cell(f"%sql --export {out} SELECT 1 AS a, 'x' AS b")
    assert pd.read_csv(out).to_dict("records") == [{"a": 1, "b": "x"}]
    out2 = tmp_path / "r.data"
    mem.run_cell(f"%sql --export {out2} --format parquet SELECT 2 AS a")
    assert pd.read_parquet(out2)["a"].tolist() == [2]


def test_persist_flag(mem):
    mem.user_ns["frame"] = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    mem.run_cell("%sql --persist frame")
    assert mem.run_cell("%sql SELECT count(*) AS n FROM frame").result["n"][0] == 2
    mem.run_cell("%sql --persist frame --table other")
    mem.run_cell("%sql --persist frame --table other --append")
    assert mem.run_cell("%sql SELECT count(*) AS n FROM other").result["n"][0] == 4
    mem.run_cell("%sql --persist frame --table other --replace")
    assert mem.run_cell("%sql SELECT count(*) AS n FROM other").result["n"][0] == 2
    from sqlnb.export import TableExistsError

    with pytest.raises(TableExistsError, match="other"):
        mem.run_cell("%sql --persist frame --table other")


def test_persist_flag_errors(mem):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="no Python variable named 'nothing'"):
        mem.run_cell("%sql --persist nothing")
    mem.user_ns["notframe"] = [1, 2]
    with pytest.raises(UsageError, match="DataFrame"):
        mem.run_cell("%sql --persist notframe")
    mem.user_ns["frame"] = pd.DataFrame({"a": [1]})
    with pytest.raises(UsageError, match="together"):
        mem.run_cell("%sql --persist frame --append --replace")


def test_options_stop_at_sql_and_double_dash(mem):
    r = mem.run_cell("%sql -- SELECT '-n 5' AS x").result
    assert r["x"][0] == "-n 5"
    r = mem.run_cell("%sql --limit=1 SELECT '--limit 9' AS x UNION ALL SELECT 'b'").result
    assert len(r) == 1


def test_bad_option_is_usage_error(mem):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        mem.run_cell("%sql --no-such-flag SELECT 1")
    with pytest.raises(UsageError):
        mem.run_cell("%sql --limit notanumber SELECT 1")


def test_cell_line_rejects_stray_text(mem):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="unexpected text"):
        mem.run_cell("%%sql SELECT 1\nSELECT 2")


def test_connect_in_cell_line_then_run(ip, tmp_path):
    r = ip.run_cell(f"%%sql sqlite:///{tmp_path}/c.db\nCREATE TABLE t(x);\nSELECT 1 AS one;").result
    assert r["one"][0] == 1
    assert magics_of(ip).session.current == "c"


# --- display ---------------------------------------------------------------------------------
def test_html_escapes_values_and_names(mem):
    mem.user_ns["v"] = "<script>alert(1)</script>"
    r = mem.run_cell('%sql SELECT :v AS "<b>x</b>", \'&amp;\' AS amp').result
    html = r._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "&amp;amp;" in html


def test_display_truncates_only_display(mem):
    mem.run_line_magic("config", "SqlMagic.display_max_rows = 6")
    mem.run_line_magic("config", "SqlMagic.display_max_cols = 4")
    cols = ", ".join(f"x + {i} AS c{i}" for i in range(10))
    r = mem.run_cell(f"%sql WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x+1 FROM s LIMIT 1000) SELECT {cols} FROM s").result
    assert r.shape == (1000, 10)  # the whole result is kept
    html = r._repr_html_()
    assert html.count("<tr>") == 1 + 6 + 1  # header, 6 rows, the "more rows" row
    assert "994 more rows" in html
    assert ">c0<" in html and ">c1<" in html and ">c8<" in html and ">c9<" in html and ">c5<" not in html
    assert "1,000 rows × 10 columns" in html


def test_display_max_rows_and_cols_zero_show_all(mem):
    """docs: display_max_rows / display_max_cols = 0 show every row / column."""
    mem.run_line_magic("config", "SqlMagic.display_max_rows = 0")
    mem.run_line_magic("config", "SqlMagic.display_max_cols = 0")
    cols = ", ".join(f"x + {i} AS c{i}" for i in range(40))
    r = mem.run_cell(f"%sql WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x+1 FROM s LIMIT 250) SELECT {cols} FROM s").result
    html = r._repr_html_()
    assert html.count("<tr>") == 1 + 250  # the header and every row
    assert 'class="sqlnb-more"' not in html and "…" not in html  # no "… more rows …" row, no cut column
    assert all(f">c{i}<" in html for i in range(40))
    assert "<td>249</td>" in html and "<td>288</td>" in html  # the last row, last column (249 + 39)


def test_display_max_chars_and_null(mem):
    mem.run_line_magic("config", "SqlMagic.display_max_chars = 10")
    r = mem.run_cell("%sql SELECT 'abcdefghijklmnopqrstuvwxyz' AS s, NULL AS n").result
    html = r._repr_html_()
    assert "abcdefghij…" in html and "klmnop" not in html
    assert "NULL" in html
    assert r["s"][0] == "abcdefghijklmnopqrstuvwxyz"


def test_footer(mem):
    r = mem.run_cell("%sql SELECT 1 AS a, 2 AS b").result
    html = r._repr_html_()
    assert "1 row × 2 columns" in html
    assert f"sqlite {sqlnb.sqlite_version('sqlite')}" in html
    assert " · rw" in html
    assert re.search(r"\d+(\.\d)? (µs|ms|s)", html)


def test_show_timing_trait(mem):
    r = cell(mem, "SELECT 1;\nSELECT 2;")
    assert "statements:" in r._repr_html_()
    mem.run_line_magic("config", "SqlMagic.show_timing = False")
    assert "statements:" not in r._repr_html_()


def test_show_all_trait(mem):
    mem.run_line_magic("config", "SqlMagic.show_all = True")
    with capture_output() as cap:
        mem.run_cell("%%sql\nSELECT 'alpha' AS a;\nSELECT 'beta' AS b;")
    html = "".join(o.data.get("text/html", "") for o in cap.outputs)
    assert "alpha" in html


def test_derived_frames_are_plain(mem):
    r = mem.run_cell("%sql SELECT 1 AS a UNION ALL SELECT 2").result
    assert type(r.head(1)) is pd.DataFrame
    assert r["a"].sum() == 3


def test_non_query_shows_rows_changed(mem):
    r = cell(mem, "CREATE TABLE t(a);\nINSERT INTO t VALUES (1), (2);")
    assert "INSERT: 2 rows changed" in r._repr_html_()


# --- traits ----------------------------------------------------------------------------------
def test_default_engine_trait(ip):
    ip.run_line_magic("config", "SqlMagic.default_engine = 'system'")
    ip.run_cell("%sql :memory:")
    assert magics_of(ip).session.get().engine == "system"
    from traitlets import TraitError

    with pytest.raises(TraitError):
        magics_of(ip).default_engine = "oracle"


def test_default_mode_trait(ip, tmp_path):
    from traitlets import TraitError

    with pytest.raises(TraitError):
        magics_of(ip).default_mode = "wr"
    ip.run_line_magic("config", "SqlMagic.default_mode = 'ro'")
    db = tmp_path / "m.db"
    sqlnb.connect(str(db)).close()
    ip.run_cell(f"%sql --connect {db}")
    assert magics_of(ip).session.get().mode == "ro"


def test_strict_quotes_trait(ip, tmp_path):
    """A schema with a double-quoted string reads by default; SqlMagic.strict_quotes makes new connections strict."""
    import sqlite3

    path = tmp_path / "old.db"
    std = sqlite3.connect(str(path))
    std.execute('CREATE VIEW v AS SELECT "lit" AS k')
    std.close()
    assert magics_of(ip).strict_quotes is False
    ip.run_cell(f"%sql --connect sqlite:///{path} --alias loose")
    assert list(ip.run_cell("%sql SELECT k FROM v").result.k) == ["lit"]
    ip.run_line_magic("config", "SqlMagic.strict_quotes = True")
    ip.run_cell(f"%sql --connect sqlite:///{path} --alias strict")
    with pytest.raises(errors.SQLError, match="lit"):
        ip.run_cell("%sql SELECT k FROM v")
    ip.run_cell("%sql --use loose")  # the connection opened before keeps its setting
    assert list(ip.run_cell("%sql SELECT k FROM v").result.k) == ["lit"]


@pytest.mark.timeout(30)
def test_timeout_trait(ip):
    ip.run_line_magic("config", "SqlMagic.timeout = 0.2")
    ip.run_cell("%sql :memory:")
    assert magics_of(ip).session.get().statement_timeout == pytest.approx(0.2)
    with pytest.raises(errors.QueryTimeoutError):
        ip.run_cell(f"%sql {RUNAWAY}")


def test_busy_timeout_trait(ip, tmp_path):
    ip.run_line_magic("config", "SqlMagic.busy_timeout = 0.1")
    db = tmp_path / "busy.db"
    ip.run_cell(f"%sql --connect {db}")
    other = sqlnb.connect(str(db), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(errors.BusyError):
            ip.run_cell("%sql CREATE TABLE t(x)")
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_display_traits_validate(ip):
    from traitlets import TraitError

    for name in ("display_max_rows", "display_max_cols", "display_max_chars", "timeout", "busy_timeout"):
        with pytest.raises(TraitError):
            setattr(magics_of(ip), name, -1)


def test_every_trait_documented_and_tested():
    """Every trait and every flag appears in docs/magics.md."""
    from pathlib import Path

    from sqlnb.magics import SqlMagic

    docs = (Path(__file__).parent.parent / "docs" / "magics.md").read_text()
    traits = [n for n, t in SqlMagic.class_traits(config=True).items()]
    assert len(traits) >= 10
    for n in traits:
        assert f"SqlMagic.{n}" in docs, n
    for action in SqlMagic.sql.parser._actions:
        for opt in action.option_strings:
            assert f"`{opt}" in docs or f"{opt} " in docs or f"{opt}`" in docs, opt
    # and every trait is exercised by a test in this file
    here = "".join(p.read_text() for p in Path(__file__).parent.glob("test_magics*.py"))
    for n in traits:
        assert f"SqlMagic.{n}" in here or f"\"{n}\"" in here, n


# --- unload ----------------------------------------------------------------------------------
def test_unload_closes_connections(ip):
    ip.run_cell("%sql :memory:")
    con = magics_of(ip).session.get()
    from sqlnb import magics

    magics.unload_ipython_extension(ip)
    assert con.closed
    ip.run_line_magic("load_ext", "sqlnb")  # so the fixture can unload again


def test_connect_from_python_variable(ip, tmp_path):
    from pathlib import Path

    from IPython.core.error import UsageError

    ip.user_ns["p"] = Path(tmp_path / "fromvar.db")
    ip.run_cell("%sql --connect :p")
    assert magics_of(ip).session.current == "fromvar"
    con = sqlnb.connect(":memory:")
    con.execute("CREATE TABLE mine(x)")
    ip.user_ns["con"] = con
    ip.run_cell("%sql --connect :con --alias adopted")
    assert magics_of(ip).session.get() is con
    assert ip.run_cell("%sql --tables").result["name"].tolist() == ["mine"]
    ip.user_ns["bad"] = 3
    with pytest.raises(UsageError, match="got int"):
        ip.run_cell("%sql --connect :bad")
    with pytest.raises(UsageError, match="no Python variable named 'missing'"):
        ip.run_cell("%sql --connect :missing")
    with pytest.raises(UsageError, match="fixed"):
        ip.run_cell("%sql --connect :con --mode ro --alias again")
    ip.run_cell("%sql --close adopted")
    assert not con.closed  # the user's own Connection is let go, not closed
    con.close()


PARAM_CORPUS = [
    "SELECT :a, @b, $c, :a",
    "SELECT ':x', \":y\", [:z], `:w`, :v FROM (SELECT 1 AS \":y\", 2 AS [:z], 3 AS \":w\")",
    "SELECT json_extract('{\"k\": \":1\"}', '$.k') -- :c\n, /* :d [:2] */ :e",
    "SELECT 'it''s :not' || :yes",
    "SELECT ?, ?5, :n",
    "SELECT x'00ff', :blobby",
    "SELECT 1 /* unterminated :z",
]


@pytest.mark.parametrize("sql", PARAM_CORPUS)
def test_system_engine_tokenizer_agrees_with_sqlite(sql):
    """The system engine finds parameters with a tokenizer; it must agree with SQLite's parser."""
    from sqlnb import _sql

    con = sqlnb.connect(":memory:", engine="sqlite")
    try:
        (st, _, _), = list(con.statements(sql))
        names = st.param_names()
        found = _sql.param_names(sql)
        assert [n for n in found if n is not None] == list(dict.fromkeys(n for n in names if n is not None))
        assert (None in found) == (None in names)
        st.finalize()
    finally:
        con.close()


@pytest.mark.parametrize("engine_name", ["sqlite", "bdb", "system"])
def test_not_parameters_on_every_engine(ip, engine_name):
    from tests.conftest import need_engine

    need_engine(engine_name)
    ip.run_cell(f"%sql --connect :memory: --engine {engine_name}")
    ip.user_ns["e"] = "E"
    r = cell(ip, "-- :x\nSELECT ':1' AS a, '[:2]' AS b /* :c */, :e AS e;")
    assert r.iloc[0].tolist() == [":1", "[:2]", "E"]
    assert r.sqlnb.params == (":e",)


def test_interrupt_renders_one_line(ip):
    """Ctrl-C / the stop button in a %sql cell: still a KeyboardInterrupt, shown as one line."""
    import signal
    import threading

    ip.run_cell("%sql --connect :memory: --alias intr")
    main = threading.main_thread().ident
    timer = threading.Timer(0.3, lambda: signal.pthread_kill(main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            ip.run_cell("%sql WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                        "SELECT count(*) FROM c")
    finally:
        timer.cancel()
    lines = info.value._render_traceback_()
    assert len(lines) == 1 and "KeyboardInterrupt: statement 1 (WITH) stopped after" in lines[0]
    assert ip.run_cell("%sql SELECT 2 AS two").result["two"][0] == 2
