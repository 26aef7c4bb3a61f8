"""Our SQLite, BerkeleyDB's, lsm1 and the stdlib sqlite3 in one process, each keeping its own library."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

import sqlnb

WINDOW_SQL = """
WITH sales(region, day, amount) AS (VALUES
  ('n', 1, 10), ('n', 2, 20), ('n', 3, 30), ('s', 1, 5), ('s', 2, 5), ('s', 3, 50))
SELECT region, day, amount,
       sum(amount) OVER (PARTITION BY region ORDER BY day) AS running,
       rank() OVER (ORDER BY amount DESC) AS rnk,
       lag(amount) OVER (PARTITION BY region ORDER BY day) AS prev,
       avg(amount) OVER (PARTITION BY region ORDER BY day ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS mavg
FROM sales ORDER BY region, day
"""
WINDOW_ROWS = [
    ("n", 1, 10, 10, 3, None, 10.0), ("n", 2, 20, 30, 2, 10, 15.0), ("n", 3, 30, 60, 1, 20, 25.0),
    ("s", 1, 5, 5, 5, None, 5.0), ("s", 2, 5, 10, 5, 5, 5.0), ("s", 3, 50, 60, 0, 5, 27.5),
]


def test_window_function_rows():
    got = sqlnb.connect(":memory:").execute(WINDOW_SQL).fetchall()
    want = sqlite3.connect(":memory:").execute(WINDOW_SQL).fetchall()
    assert got == want
    # and the rows themselves (rank ties: 50 is first)
    assert [r[:4] for r in got] == [r[:4] for r in WINDOW_ROWS]
    assert [r[4] for r in got] == [4, 3, 2, 5, 5, 1]
    assert [r[5] for r in got] == [r[5] for r in WINDOW_ROWS] and [r[6] for r in got] == [r[6] for r in WINDOW_ROWS]


def test_all_engines_in_one_process(tmp_path):
    ours = sqlnb.connect(str(tmp_path / "ours.db"))
    system = sqlnb.connect(str(tmp_path / "sys.db"), engine="system")
    stdlib = sqlite3.connect(str(tmp_path / "std.db"))
    engines = {e.name: e for e in sqlnb.engines()}
    assert engines["bdb"].available, engines["bdb"].why
    bdb = sqlnb.connect(str(tmp_path / "b.db"), engine="bdb")
    versions = {
        "ours": ours.execute("SELECT sqlite_version()").fetchone()[0],
        "system": system.execute("SELECT sqlite_version()").fetchone()[0],
        "stdlib": stdlib.execute("SELECT sqlite_version()").fetchone()[0],
        "bdb": bdb.execute("SELECT sqlite_version()").fetchone()[0],
    }
    assert versions["ours"] == sqlnb.sqlite_version("sqlite")
    assert versions["stdlib"] == versions["system"] == sqlite3.sqlite_version
    assert versions["bdb"] == "3.7.6.2"
    assert len({versions["ours"], versions["stdlib"], versions["bdb"]}) == 3
    ours.execute(f"CREATE VIRTUAL TABLE kv USING lsm1('{tmp_path / 'kv.lsm'}', k, UINT, v)")
    for c in (ours, system, bdb):
        c.execute("CREATE TABLE t (a)")
        c.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        c.commit()
    ours.executemany("INSERT INTO kv VALUES (?, ?)", [(1, "a"), (2, "b")])
    stdlib.execute("CREATE TABLE t (a)")
    assert [c.execute("SELECT sum(a) FROM t").fetchone()[0] for c in (ours, system, bdb)] == [3, 3, 3]
    assert ours.execute("SELECT v FROM kv WHERE k = 2").fetchall() == [("b",)]
    # the stdlib's library must not have gained our extensions or options
    with pytest.raises(sqlite3.OperationalError):
        stdlib.execute("CREATE VIRTUAL TABLE x USING lsm1('x.lsm', k, UINT, v)")


def test_import_order_does_not_matter():
    """Importing bdb first, then ours, then the stdlib: each library answers with its own version."""
    code = textwrap.dedent("""
        from sqlnb import engines
        b = engines.get('bdb').load(); o = engines.get('sqlite').load()
        import sqlite3
        print(b.sqlite_version(), o.sqlite_version(), sqlite3.sqlite_version)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "3.7.6.2" and out[1] == sqlnb.sqlite_version("sqlite") and out[2] == sqlite3.sqlite_version
