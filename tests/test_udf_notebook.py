"""Functions registered once in the notebook reach every connection of the magic (open and opened
later) and Tab completion (issue #22, docs/functions.md)."""
from __future__ import annotations

import warnings

import pytest
from IPython.core.completer import provisionalcompleter

from sqlnb.notebook import functions as nbf
from tests.magics_shell import close_shell, new_shell


@pytest.fixture
def ip():
    shell = new_shell()
    yield shell
    close_shell(shell)
    for reg in nbf.registered():
        nbf.unregister(reg.name)


def session_of(ip):
    return ip._sqlnb_magics.session


def test_decorator_reaches_open_and_later_connections(ip, tmp_path):
    ip.run_cell("%sql --alias first :memory:")
    ip.run_cell("from sqlnb.notebook import function, aggregate, window_function\n"
                "@function\n"
                "def double_it(x):\n"
                "    return 2 * x\n"
                "@aggregate\n"
                "class Longest:\n"
                "    def __init__(self): self.best = ''\n"
                "    def step(self, s): self.best = max(self.best, s, key=len)\n"
                "    def finalize(self): return self.best\n")
    assert ip.user_ns["double_it"](4) == 8       # the decorator returns the function itself
    ip.run_cell(f"%sql --alias second sqlite:///{tmp_path / 'b.db'}")
    ip.run_cell("%sql --alias third system:///:memory:")
    for alias in ("first", "second", "third"):
        con = session_of(ip).get(alias)
        assert con.execute("SELECT double_it(21), Longest(x) FROM (SELECT 'ab' AS x UNION ALL SELECT 'abcd')"
                           ).fetchone() == (42, "abcd")
    ip.run_cell("r = %sql SELECT double_it(5) AS y")
    assert session_of(ip).get().execute("SELECT double_it(5)").fetchone() == (10,)


def test_percent_sql_function(ip, capsys):
    ip.run_cell("%sql :memory:")
    ip.run_cell("import re\n"
                "def rx(pattern, s):\n"
                "    return re.search(pattern, s) is not None\n")
    ip.run_cell("%sql --function rx")
    assert "registered function rx (2 arguments)" in capsys.readouterr().out
    con = session_of(ip).get()
    assert con.execute("SELECT rx('^a.c$', 'abc'), rx('^a.c$', 'abd')").fetchone() == (1, 0)
    with pytest.raises(Exception, match="no Python object named 'nope'"):
        ip.run_cell("%sql --function nope")


def test_window_function_on_an_engine_without_them_warns(ip, tmp_path):
    ip.run_cell("%sql --alias s :memory:")
    ip.run_cell(f"%sql --alias b bdb:///{tmp_path / 'x.db'}")

    class Sum:
        def __init__(self):
            self.t = 0

        def step(self, x):
            self.t += x

        def inverse(self, x):
            self.t -= x

        def value(self):
            return self.t

        def finalize(self):
            return self.t

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        nbf.window_function(Sum, name="wsum")
    assert any("'b'" in str(w.message) and "wsum" in str(w.message) for w in seen)
    s = session_of(ip).get("s")
    assert s.execute("SELECT wsum(x) OVER (ORDER BY x ROWS 1 PRECEDING) FROM (SELECT 1 AS x UNION ALL SELECT 2)"
                     ).fetchall() == [(1,), (3,)]


def test_registered_functions_are_completed(ip):
    ip.run_cell("%sql :memory:")
    nbf.function(lambda s: s, name="my_slugify")
    with provisionalcompleter():
        got = [(c.text, c.type) for c in ip.Completer.completions("%%sql\nSELECT my_slu", len("%%sql\nSELECT my_slu"))]
    assert ("my_slugify", "function") in got


def test_arity_from_the_signature():
    assert nbf.arity(lambda a, b, c=1: 0, "function") == 2
    assert nbf.arity(lambda *a: 0, "function") == -1

    class Agg:
        def step(self, x, y):
            pass

        def finalize(self):
            return 0

    assert nbf.kind_of(Agg) == "aggregate" and nbf.arity(Agg, "aggregate") == 2
    with pytest.raises(TypeError):
        nbf.kind_of(5)
