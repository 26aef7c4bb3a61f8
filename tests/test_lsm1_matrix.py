"""lsm1 is built in, and our xBestIndex gives the right rows for every bound combination."""
from __future__ import annotations

import itertools
import sqlite3

import pytest

import sqlnb

OPS = ["<", "<=", ">", ">=", "="]
TEXT_KEYS = ["a", "b", "c", "d", "e", "f"]
UINT_KEYS = [1, 2, 3, 10, 20, 100]


def _oracle_rows(rows, where, order):
    ref = sqlite3.connect(":memory:")
    ref.execute("CREATE TABLE kv (key PRIMARY KEY, value)")
    ref.executemany("INSERT INTO kv VALUES (?, ?)", rows)
    return ref.execute(f"SELECT key, value FROM kv WHERE {where} {order}").fetchall()


@pytest.fixture(scope="module", params=["TEXT", "UINT"])
def kv(request, tmp_path_factory):
    ktype = request.param
    path = tmp_path_factory.mktemp("lsm") / f"kv-{ktype}.lsm"
    con = sqlnb.connect(":memory:")
    con.execute(f"CREATE VIRTUAL TABLE kv USING lsm1('{path}', key, {ktype}, value)")
    keys = TEXT_KEYS if ktype == "TEXT" else UINT_KEYS
    rows = [(k, i) for i, k in enumerate(keys)]
    con.executemany("INSERT INTO kv(key, value) VALUES (?, ?)", rows)
    con.commit()
    yield con, keys, rows
    con.close()


def _cases(keys):
    lo, hi = keys[1], keys[4]
    singles = [(f"key {op} ?", (v,)) for op in OPS for v in (lo, hi, keys[0], keys[-1])]
    pairs = []
    for op1, op2 in itertools.product(OPS, OPS):
        pairs.append((f"key {op1} ? AND key {op2} ?", (lo, hi)))
        pairs.append((f"key {op1} ? AND key {op2} ?", (hi, lo)))
    return singles + pairs


@pytest.mark.parametrize("order", ["", "ORDER BY key", "ORDER BY key DESC"])
def test_bound_matrix(kv, order):
    con, keys, rows = kv
    for where, params in _cases(keys):
        got = con.execute(f"SELECT key, value FROM kv WHERE {where} {order}", params).fetchall()
        want = _oracle_rows(rows, where.replace("?", "{!r}").format(*params), order)
        if not order:
            got, want = sorted(got), sorted(want)
        assert got == want, (where, params, order)


def test_reported_upstream_cases(tmp_path):
    """The two shapes the notes record: a crash upstream, and wrong rows upstream."""
    con = sqlnb.connect(":memory:")
    con.execute(f"CREATE VIRTUAL TABLE t USING lsm1('{tmp_path / 't.lsm'}', key, TEXT, value)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [("a", 1), ("b", 2), ("c", 3), ("d", 4)])
    assert con.execute("SELECT key, value FROM t WHERE key < 'c' AND key >= 'a' ORDER BY key DESC").fetchall() == [
        ("b", 2), ("a", 1)]
    assert con.execute("SELECT key, value FROM t WHERE key > 'a' AND key <= 'c'").fetchall() == [("b", 2), ("c", 3)]


def test_lsm1_persists_and_upserts(tmp_path):
    path = tmp_path / "p.lsm"
    con = sqlnb.connect(":memory:")
    con.execute(f"CREATE VIRTUAL TABLE p USING lsm1('{path}', k, UINT, a, b)")
    con.execute("INSERT INTO p VALUES (5, 'x', 1.5)")
    con.execute("INSERT INTO p VALUES (5, 'y', NULL)")  # same key: replaces
    con.commit()
    con.close()
    con = sqlnb.connect(":memory:")
    con.execute(f"CREATE VIRTUAL TABLE p USING lsm1('{path}', k, UINT, a, b)")
    assert con.execute("SELECT k, a, b FROM p").fetchall() == [(5, "y", None)]


def test_window_function_over_lsm1(tmp_path):
    con = sqlnb.connect(":memory:")
    con.execute(f"CREATE VIRTUAL TABLE ev USING lsm1('{tmp_path / 'ev.lsm'}', t, UINT, amount)")
    con.executemany("INSERT INTO ev VALUES (?, ?)", [(i, i * 10) for i in range(1, 6)])
    got = con.execute("SELECT t, sum(amount) OVER (ORDER BY t ROWS 1 PRECEDING) FROM ev WHERE t >= 2").fetchall()
    assert got == [(2, 20), (3, 50), (4, 70), (5, 90)]
