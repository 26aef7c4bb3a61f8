"""Replacement scans in the magics: a name in the SQL that is no table but a frame in Python
(sqlnb/notebook/pyframes.py; docs/frames-in-sql.md)."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from IPython.utils.capture import capture_output

from sqlnb import errors
from sqlnb.notebook import pyframes
from tests.conftest import need_engine
from tests.magics_shell import close_shell, new_shell


@pytest.fixture(params=("sqlite", "bdb", "system"))
def ip(request, tmp_path):
    need_engine(request.param)
    shell = new_shell()
    shell.run_cell(f"%sql --engine {request.param} --connect {tmp_path / 'm.db'}")
    shell.run_cell("%sql CREATE TABLE flights (carrier TEXT, dep_delay REAL)")
    shell.run_cell("%sql INSERT INTO flights SELECT 'AA', 10 UNION ALL SELECT 'AA', 20 UNION ALL SELECT 'UA', 5 "
                   "UNION ALL SELECT 'DL', 1")
    yield shell
    close_shell(shell)


def test_table_names_are_read_from_table_positions_only():
    sql = ('SELECT a.x, my_df FROM flights a JOIN "my df" USING (k), other o, (SELECT 1 FROM inner_t) '
           "WHERE y IN (SELECT z FROM sub) ORDER BY my_df")
    assert pyframes.table_names(sql) == ["flights", "my df", "other", "inner_t", "sub"]
    assert pyframes.table_names("SELECT df FROM t WHERE df > 1") == ["t"]
    assert not pyframes.is_frame(pd.DataFrame) and pyframes.is_frame(pd.DataFrame({"a": [1]}))
    assert pyframes.is_frame(pa.table({"a": [1]})) and not pyframes.is_frame([1])


def test_a_dataframe_in_the_namespace_is_a_table_for_the_cell(ip):
    ip.user_ns["my_df"] = pd.DataFrame({"carrier": ["AA", "UA", "ZZ"], "name": ["American", "United", "Nobody"]})
    with capture_output() as out:
        res = ip.run_cell("%sql SELECT name, count(*) AS n FROM flights JOIN my_df USING (carrier) "
                          "GROUP BY name ORDER BY name").result
    assert res["name"].tolist() == ["American", "United"] and res["n"].tolist() == [2, 1]
    assert "from Python: my_df (pandas DataFrame, 3 rows)" in out.stdout
    con = ip._sqlnb_magics.session.get()
    if con.backend.frames_served == "in place":
        assert "read in place" in out.stdout
    else:
        assert "copied into TEMP tables" in out.stdout
    assert con.registered == {}                        # dropped after the cell
    with pytest.raises(errors.OperationalError, match="no such table"):
        con.execute("SELECT * FROM my_df")


def test_arrow_table_and_quoted_name_and_a_real_table_wins(ip):
    ip.user_ns["arrow tab"] = pa.table({"carrier": ["DL"], "hub": ["ATL"]})
    ip.user_ns["flights"] = pd.DataFrame({"carrier": ["XX"]})   # the real table of that name wins
    with capture_output() as out:
        res = ip.run_cell('%sql SELECT f.carrier, hub FROM flights f JOIN "arrow tab" USING (carrier)').result
    assert res.values.tolist() == [["DL", "ATL"]]
    assert "from Python: arrow tab (pyarrow Table, 1 rows)" in out.stdout
    assert "flights (" not in out.stdout


def test_no_frame_no_footer_and_unknown_names_still_fail(ip):
    ip.user_ns["n"] = 5
    with capture_output() as out:
        ip.run_cell("%sql SELECT count(*) FROM flights")
    assert "from Python" not in out.stdout
    with pytest.raises(errors.OperationalError, match="no such table: n"):
        ip.run_cell("%sql SELECT * FROM n")


def test_read_only_connection_reads_a_python_frame(tmp_path):
    need_engine("sqlite")
    shell = new_shell()
    try:
        db = tmp_path / "ro.db"
        shell.run_cell(f"%sql --connect {db}")
        shell.run_cell("%sql CREATE TABLE t (k INTEGER)")
        shell.run_cell("%sql INSERT INTO t SELECT 1 UNION ALL SELECT 2")
        shell.run_cell(f"%sql --mode ro --alias r --connect {db}")
        shell.user_ns["lookup"] = pd.DataFrame({"k": [2], "v": ["two"]})
        res = shell.run_cell("%sql SELECT v FROM t JOIN lookup USING (k)").result
        assert res["v"].tolist() == ["two"]
        with pytest.raises(errors.ReadOnlyError):
            shell.run_cell("%sql INSERT INTO t SELECT k FROM lookup")
    finally:
        close_shell(shell)
