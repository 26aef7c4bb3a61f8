"""Forgiving connection lines (#26 item 4): on a line that opens a connection, options may come
before or after the target, in any order; the SQL line keeps its rule (options first, the rest is
SQL, untouched); usage errors name what was wrong in the user's own terms."""
from __future__ import annotations

import itertools

import pytest
from IPython.core.error import UsageError

from sqlnb import errors
from tests.magics_shell import close_shell, new_shell


@pytest.fixture
def ip():
    shell = new_shell()
    yield shell
    close_shell(shell)


OPTIONS = ("--alias d", "--mode ro", "--engine system")


def _lines(target):
    """Every order of the three options, and every split of them around ``target``."""
    for perm in itertools.permutations(OPTIONS):
        for cut in range(len(perm) + 1):
            yield " ".join([*perm[:cut], target, *perm[cut:]]).strip()


def _made(tmp_path):
    import sqlnb

    path = tmp_path / "data.db"
    con = sqlnb.connect(str(path))
    con.execute("CREATE TABLE t(a)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize("form", ["url", "connect"])
def test_options_before_or_after_the_target_in_every_order(ip, tmp_path, form):
    path = _made(tmp_path)
    target = f"sqlite:///{path}" if form == "url" else f"--connect {path}"
    lines = list(_lines(target))
    assert len(lines) == 24
    s = ip._sqlnb_magics.session
    for line in lines:
        ip.run_cell(f"%sql {line}")
        con = s.get("d")
        assert s.current == "d", line
        assert con.engine == "system" and con.mode == "ro", line
        assert ip.run_cell("%sql SELECT a FROM t").result["a"].tolist() == [1], line
        with pytest.raises(errors.Error):  # read-only, as asked
            ip.run_cell("%sql INSERT INTO t VALUES (2)")
        ip.run_cell("%sql --close d")


def test_jupysql_spelling(ip, tmp_path):
    path = _made(tmp_path)
    ip.run_cell(f"%sql sqlite:///{path} --alias d --mode ro")
    assert ip._sqlnb_magics.session.get("d").mode == "ro"
    ip.run_cell(f"%sql --mode ro sqlite:///{path} --alias y")
    assert ip._sqlnb_magics.session.current == "y"


def test_cell_line_with_options_after_the_target_then_runs_the_body(ip, tmp_path):
    path = _made(tmp_path)
    r = ip.run_cell(f"%%sql sqlite:///{path} --alias d --limit 1\nSELECT a FROM t UNION ALL SELECT 2").result
    assert ip._sqlnb_magics.session.current == "d"
    assert r["a"].tolist() == [1]


def test_memory_and_quoted_targets(ip, tmp_path):
    ip.run_cell("%sql :memory: --alias m")
    assert ip._sqlnb_magics.session.current == "m"
    path = tmp_path / "with space.db"
    ip.run_cell(f"%sql 'sqlite:///{path}' --alias sp")
    assert ip._sqlnb_magics.session.get("sp").path == str(path)
    assert path.exists()


def test_sql_line_is_untouched(ip):
    ip.run_cell("%sql :memory:")
    # options after SQL belong to the SQL: this is a string and a comment, not --alias
    r = ip.run_cell("%sql SELECT '--alias x' AS a -- --mode ro").result
    assert r["a"].tolist() == ["--alias x"]
    assert list(ip._sqlnb_magics.session.connections) == ["memory"]


def usage(ip, line) -> str:
    with pytest.raises(UsageError) as info:
        ip.run_cell(line)
    return str(info.value)


def test_errors_in_the_users_terms(ip, tmp_path):
    path = _made(tmp_path)
    text = usage(ip, f"%sql sqlite:///{path} --alias d SELECT 1")
    assert f"sqlite:///{path}" in text and "SELECT 1" in text and "line of its own" in text
    text = usage(ip, "%sql --mode ro SELECT 1")
    assert "--mode ro" in text and "opens none" in text and "give the URL" not in text
    text = usage(ip, f"%sql --connect {path} sqlite:///{path}")
    assert "two connection targets" in text
    text = usage(ip, f"%sql sqlite:///{path} --mode rx")
    assert "rx" in text and "ro" in text  # the choices are named
    assert not ip._sqlnb_magics.session.connections  # nothing was opened by a refused line
    text = usage(ip, "%sql --no-such-flag SELECT 1")
    assert "--no-such-flag" in text and "%sql --help" in text
