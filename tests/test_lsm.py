"""lsm1 key/value tables through sqlnb.lsm (issue 7): semantics, helpers, bad input.

Every test runs on the real compiled SQLite + lsm1 (the ``sqlite`` engine) and
real files under tmp_path. The bound matrix of our xBestIndex is tested in
tests/test_lsm1_matrix.py; here the helpers' SQL and the guards around lsm1.
"""
from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sqlnb
from sqlnb import errors
from sqlnb import lsm as L

from tests.conftest import need_engine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _sqlite_engine():
    need_engine("sqlite")


@pytest.fixture
def db(tmp_path):
    c = sqlnb.connect(str(tmp_path / "host.db"), engine="sqlite")
    yield c
    if not c.closed:
        c.close()


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# --- creating, listing ----------------------------------------------------------------------
def test_table_creates_file_sidecar_and_lists(db, tmp_path):
    t = L.table(db, "ev", tmp_path / "ev.lsm", key="ts", key_type="uint", values="kind, n")
    assert (t.key, t.key_type, t.values) == ("ts", "UINT", ("kind", "n"))
    assert t.file == str(tmp_path / "ev.lsm") and os.path.isabs(t.file)
    assert L.read_sidecar(tmp_path / "ev.lsm") == {"key": "ts", "key_type": "UINT",
                                                   "values": ("kind", "n"), "table": "ev"}
    assert L.lsm_tables(db) == [{"name": "ev", "schema": "main", "file": str(tmp_path / "ev.lsm"),
                                 "key": "ts", "key_type": "UINT", "values": ("kind", "n")}]
    # opening it again returns the same table; a contradicting argument is refused
    again = L.table(db, "EV")
    assert again.info == t.info
    with pytest.raises(errors.ProgrammingError, match="key_type='UINT'"):
        L.table(db, "ev", key_type="TEXT")
    with pytest.raises(errors.ProgrammingError, match="pass file="):
        L.table(db, "nope")


def test_lsm_tables_parses_hand_written_sql(db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db.execute("ATTACH ? AS other", (str(tmp_path / "other.db"),))
    db.executescript(
        'CREATE VIRTUAL TABLE "odd ""name""" USING lsm1( -- a comment, with a comma\n'
        "    'it''s.lsm', [my key], text, \"v, 1\" INT, `b`, c /* x,y */ );\n"
        'CREATE VIRTUAL TABLE temp.tt USING LSM1("t.lsm", k, BLOB, v);\n'
        f"CREATE VIRTUAL TABLE other.oo USING lsm1('{tmp_path}/o.lsm', k, UINT, v);\n"
        "CREATE VIRTUAL TABLE ft USING fts5(body);\n"
        "CREATE TABLE plain(x);\n")
    got = {(t["schema"], t["name"]): t for t in L.lsm_tables(db)}
    assert set(got) == {("main", 'odd "name"'), ("temp", "tt"), ("other", "oo")}
    odd = got[("main", 'odd "name"')]
    assert (odd["file"], odd["key"], odd["key_type"], odd["values"]) == ("it's.lsm", "my key", "TEXT", ("v, 1", "b", "c"))
    assert got[("temp", "tt")]["key_type"] == "BLOB" and got[("temp", "tt")]["file"] == "t.lsm"
    assert got[("other", "oo")]["file"] == f"{tmp_path}/o.lsm"
    # the parsed description is good enough to drive the helpers
    t = L.table(db, 'odd "name"')
    t.put("k", 1, b"\x00", None)
    assert t.value("k") == (1, b"\x00", None)
    assert os.path.exists(tmp_path / "it's.lsm")


def test_parse_rejects_other_modules_and_garbage():
    assert L.parse_lsm1_sql("CREATE VIRTUAL TABLE x USING fts5(a)") is None
    assert L.parse_lsm1_sql("CREATE TABLE x(a)") is None
    assert L.parse_lsm1_sql("CREATE VIRTUAL TABLE x USING lsm1('f', k, UINT") is None
    assert L.parse_lsm1_sql("CREATE VIRTUAL TABLE x USING lsm1('f', k)") is None
    assert L.parse_lsm1_sql(None) is None


def test_parse_takes_the_file_argument_as_written():
    """SQLite hands lsm1 each argument's text as written (sqlite3VtabArgExtend); so does the parser."""
    got = L.parse_lsm1_sql("CREATE VIRTUAL TABLE x USING lsm1(/data/my  events.lsm, k, uint, v, \"w\" TEXT)")
    assert got == {"file": "/data/my  events.lsm", "key": "k", "key_type": "UINT", "values": ("v", "w")}
    nested = L.parse_lsm1_sql("create virtual table x using lsm1('f(1,2).lsm', k, BLOB, v (a, b), w)")
    assert nested["file"] == "f(1,2).lsm" and nested["values"] == ("v", "w")
    sql = L.create_sql('t"1', "/p/it's.lsm", key="k ey", key_type="TEXT", values=("a", 'b"'), schema="temp")
    assert L.parse_lsm1_sql(sql) == {"file": "/p/it's.lsm", "key": "k ey", "key_type": "TEXT", "values": ("a", 'b"')}


def test_quoted_identifiers_and_values_are_bound(db, tmp_path):
    path = tmp_path / "q'uote.lsm"
    t = L.table(db, "we ird\"table", path, key="k ey", values=["va'l", 'v"2'])
    evil = "x'); DROP TABLE x; --"
    t.put(evil, evil, "ok")
    assert t.value(evil) == (evil, "ok")
    assert list(t.scan().columns) == ["k ey", "va'l", 'v"2']
    assert L.lsm_tables(db)[0]["values"] == ("va'l", 'v"2')
    with pytest.raises(ValueError, match="hidden column"):
        L.table(db, "h", tmp_path / "h.lsm", values=["lsm1_value"])
    with pytest.raises(ValueError, match="distinct"):
        L.table(db, "h", tmp_path / "h.lsm", key="a", values=["A"])


def test_relative_path_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    c = sqlnb.connect(str(tmp_path / "host.db"))
    L.table(c, "kv", "rel.lsm").put("x", 1)
    c.commit()
    c.close()
    monkeypatch.chdir(tmp_path / "b")  # lsm would resolve a relative path against this
    c = sqlnb.connect(str(tmp_path / "host.db"))
    assert L.table(c, "kv").value("x") == 1
    assert L.lsm_tables(c)[0]["file"] == str(tmp_path / "a" / "rel.lsm")
    c.close()
    assert not os.path.exists(tmp_path / "b" / "rel.lsm")


def test_needs_sqlite_engine(tmp_path):
    c = sqlnb.connect(str(tmp_path / "s.db"), engine="system")
    with pytest.raises(errors.FeatureNotSupportedError, match="'sqlite' engine"):
        L.table(c, "kv", tmp_path / "kv.lsm")
    assert L.lsm_tables(c) == []
    c.close()
    assert not os.path.exists(tmp_path / "kv.lsm")


# --- ordering ---------------------------------------------------------------------------------
def test_uint_order_is_numeric(db, tmp_path):
    t = L.table(db, "u", tmp_path / "u.lsm", key_type="UINT")
    keys = [0, 1, 9, 10, 100, 240, 241, 2287, 2288, 67823, 67824, 2**24, 2**32, 2**40, 2**56, 2**63 - 1]
    shuffled = keys[:]
    random.Random(7).shuffle(shuffled)
    t.load((k, str(k)) for k in shuffled)
    got = t.scan()
    assert got["key"].tolist() == keys
    assert got["value"].tolist() == [str(k) for k in keys]
    assert t.scan(reverse=True)["key"].tolist() == keys[::-1]


def test_text_order_is_byte_order(db, tmp_path):
    t = L.table(db, "s", tmp_path / "s.lsm")
    keys = ["b", "B", "a", "aa", "", "10", "9", "z", "é", "ä", "\u4e2d", "\U0001f600", "a\u00a0"]
    t.load((k, i) for i, k in enumerate(keys))
    assert t.scan()["key"].tolist() == sorted(keys, key=lambda s: s.encode("utf-8"))


def test_blob_order_is_byte_order(db, tmp_path):
    t = L.table(db, "b", tmp_path / "b.lsm", key_type="BLOB")
    keys = [b"\xff", b"\x00", b"\x00\x00", b"ab", b"a", b"\x7f\xff", b"\x80"]
    t.load((k, 1) for k in keys)
    assert t.scan()["key"].tolist() == sorted(keys)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 2**63 - 1), unique=True, max_size=40), st.integers(0, 2**63 - 1),
       st.integers(0, 2**63 - 1))
def test_uint_ranges_match_python(tmp_path_factory, keys, a, b):
    lo, hi = min(a, b), max(a, b)
    c = sqlnb.connect(":memory:")
    t = L.table(c, "u", tmp_path_factory.mktemp("h") / "u.lsm", key_type="UINT")
    t.load((k, k % 7) for k in keys)
    for inc, ok in (("both", lambda k: lo <= k <= hi), ("left", lambda k: lo <= k < hi),
                    ("right", lambda k: lo < k <= hi), ("neither", lambda k: lo < k < hi)):
        want = sorted(k for k in keys if ok(k))
        assert t.scan(lo, hi, inclusive=inc)["key"].tolist() == want
        assert t.count(lo, hi, inclusive=inc) == len(want)
    c.close()


# --- values, upsert, NULLs, types ---------------------------------------------------------------
def test_upsert_multiple_values_nulls_and_types(db, tmp_path):
    t = L.table(db, "kv", tmp_path / "kv.lsm", key_type="TEXT", values=("a", "b", "c"))
    t.put("k", 1, "one", b"\x01")
    t.put("k", 2, None, None)  # upsert: the whole row is replaced
    assert t.count() == 1
    assert t.value("k") == (2, None, None)
    t.put("n", b=3.5)  # by name; the others are NULL
    assert t.value("n") == (None, 3.5, None)
    cases = [0, 40, 41, -1, -2**63, 2**63 - 1, 0.1, -1e300, float("inf"), "", "text\u00e9", b"", b"\x00\xff"]
    t.load((f"v{i:02d}", v, None, v) for i, v in enumerate(cases))
    rows = db.execute('SELECT a, typeof(a), b, c FROM kv WHERE key >= ? AND key < ? ORDER BY key',
                      ("v", "w")).fetchall()
    assert [r[0] for r in rows] == cases
    assert [r[1] for r in rows] == (["integer"] * 6 + ["real"] * 3 + ["text"] * 2 + ["blob"] * 2)
    assert all(r[2] is None for r in rows) and [r[3] for r in rows] == cases
    with pytest.raises(errors.ParameterError, match="3 value column"):
        t.put("x", 1)
    with pytest.raises(ValueError, match="unknown value column"):
        t.put("x", zz=1)
    assert t.value("missing", "dflt") == "dflt"
    assert t.get("missing").empty and list(t.get("missing").columns) == ["key", "a", "b", "c"]


def test_get_scan_prefix_count_delete(db, tmp_path):
    t = L.table(db, "s", tmp_path / "s.lsm", values=("v",))
    words = ["ap", "apple", "apricot", "b", "banana", "a", "aq", "ap\U0010ffff", "ap\U0010ffffz", "\ud7ff!", "\ue000"]
    t.load((w, i) for i, w in enumerate(words))
    assert t.get("apple").to_dict("records") == [{"key": "apple", "v": 1}]
    assert t.get("apple", columns="v").columns.tolist() == ["v"]
    assert t.prefix("ap")["key"].tolist() == ["ap", "apple", "apricot", "ap\U0010ffff", "ap\U0010ffffz"]
    assert t.prefix("ap\U0010ffff")["key"].tolist() == ["ap\U0010ffff", "ap\U0010ffffz"]
    assert t.prefix("\ud7ff")["key"].tolist() == ["\ud7ff!"]
    assert t.prefix("ap", reverse=True, limit=2)["key"].tolist() == ["ap\U0010ffffz", "ap\U0010ffff"]
    assert t.prefix("")["key"].tolist() == t.scan()["key"].tolist()
    assert t.prefix("zz").empty
    assert t.scan("ap", "b", inclusive="left")["key"].tolist() == ["ap", "apple", "apricot", "ap\U0010ffff",
                                                                  "ap\U0010ffffz", "aq"]
    assert t.scan(hi="a")["key"].tolist() == ["a"]
    assert t.scan(lo="b", reverse=True)["key"].tolist() == ["\ue000", "\ud7ff!", "banana", "b"]
    assert t.scan(limit=0).empty
    assert t.first(2)["key"].tolist() == ["a", "ap"] and t.last()["key"].tolist() == ["\ue000"]
    assert t.count("ap", "aq", inclusive="neither") == 4 and len(t) == len(words)
    assert t.delete_range("ap", "aq", inclusive="left") == 5
    assert t.delete("b") == 1 and t.delete("b") == 0
    assert t.scan()["key"].tolist() == ["a", "aq", "banana", "\ud7ff!", "\ue000"]
    with pytest.raises(ValueError, match="inclusive"):
        t.scan("a", "b", inclusive="yes")
    with pytest.raises(ValueError, match="unknown column"):
        t.scan(columns=["nope"])
    assert t.delete_range() == 5 and len(t) == 0


def test_blob_prefix_and_uint_prefix_refused(db, tmp_path):
    b = L.table(db, "b", tmp_path / "b.lsm", key_type="BLOB")
    b.load([(b"\x01\xff", 1), (b"\x01\xff\xff", 2), (b"\x02", 3), (b"\x01", 4), (b"\xff\xff", 5)])
    assert b.prefix(b"\x01\xff")["key"].tolist() == [b"\x01\xff", b"\x01\xff\xff"]
    assert b.prefix(b"\xff")["key"].tolist() == [b"\xff\xff"]
    u = L.table(db, "u", tmp_path / "u.lsm", key_type="UINT")
    with pytest.raises(L.KeyTypeError, match="TEXT or BLOB"):
        u.prefix(1)


def test_scan_goes_through_the_lsm_index(db, tmp_path):
    L.table(db, "u", tmp_path / "u.lsm", key_type="UINT")
    plan = " ".join(r[3] for r in db.execute(
        'EXPLAIN QUERY PLAN SELECT "key", "value" FROM "main"."u" WHERE "key" >= ? AND "key" < ? ORDER BY "key"',
        (1, 2)).fetchall())
    assert "INDEX 1" in plan and "TEMP B-TREE" not in plan


# --- bulk load, transactions --------------------------------------------------------------------
def test_load_dataframe_and_pairs(db, tmp_path):
    t = L.table(db, "ev", tmp_path / "ev.lsm", key="ts", key_type="UINT", values=("kind", "x"))
    df = pd.DataFrame({"ts": pd.array([3, 1, 2], dtype="int64"), "kind": ["c", None, "b"],
                       "x": [0.5, float("nan"), 2.0]})
    assert t.load(df) == 3
    got = db.execute('SELECT ts, kind, x FROM ev ORDER BY ts').fetchall()
    assert got == [(1, None, None), (2, "b", 2.0), (3, "c", 0.5)]
    # a two-column frame fills a single-value table whatever its value column is called
    s = L.table(db, "s", tmp_path / "s.lsm")
    assert s.load(pd.DataFrame({"k": ["x", "y"], "whatever": [1, 2]})) == 2
    assert s.value("y") == 2
    with pytest.raises(ValueError, match="no DataFrame column"):
        t.load(pd.DataFrame({"ts": [1], "zz": [1]}))
    with pytest.raises(L.KeyTypeError, match="outside UINT"):
        t.load(pd.DataFrame({"ts": [1, -1], "kind": ["a", "b"]}))
    with pytest.raises(L.KeyTypeError, match="not an integer"):
        t.load(pd.DataFrame({"ts": ["1", "x"], "kind": ["a", "b"]}))
    assert t.count() == 3


def test_load_is_one_transaction(db, tmp_path):
    t = L.table(db, "u", tmp_path / "u.lsm", key_type="UINT")
    t.put(0, "keep")
    rows = [(i, i) for i in range(1, 1000)] + [("bad", 0)] + [(5000, 1)]
    with pytest.raises(L.KeyTypeError, match="row 999: key 'bad'"):
        t.load(rows)
    assert t.count() == 1 and t.value(0) == "keep"  # nothing from the failed load, key 0 intact
    assert not db.in_transaction
    with pytest.raises(errors.ParameterError, match="row 1"):
        t.load([(1, 1), (2,)])
    assert t.count() == 1
    assert t.load((i, i) for i in range(1, 1001)) == 1000 and t.count() == 1001


def test_transactions_commit_and_rollback(db, tmp_path):
    t = L.table(db, "kv", tmp_path / "kv.lsm")
    t.put("a", 1)
    db.execute("INSERT INTO kv VALUES ('b', 2)")  # implicit transaction, as in the stdlib
    assert db.in_transaction
    db.rollback()
    assert t.scan()["key"].tolist() == ["a"]
    with pytest.raises(ZeroDivisionError):
        with db:
            db.execute("INSERT INTO kv VALUES ('c', 3)")
            t.put("d", 4)  # joins the open transaction
            assert db.in_transaction
            1 / 0
    assert t.scan()["key"].tolist() == ["a"]
    with db:
        db.execute("INSERT INTO kv VALUES ('e', 5)")
        t.load([("f", 6)])
        assert db.in_transaction  # joined the open transaction, not committed by load
    assert t.scan()["key"].tolist() == ["a", "e", "f"]


def test_persistence_after_close_and_reopen(tmp_path):
    c = sqlnb.connect(":memory:")
    t = L.table(c, "kv", tmp_path / "kv.lsm", key_type="UINT", values=("a", "b"))
    t.load((i, i * 2, str(i)) for i in range(500))
    c.close()
    assert sorted(os.listdir(tmp_path)) == ["kv.lsm", "kv.lsm.sqlnb.json"]  # log/shm gone after close
    c = sqlnb.connect(":memory:")
    t = L.table(c, "again", tmp_path / "kv.lsm")  # schema from the sidecar
    assert (t.key_type, t.values) == ("UINT", ("a", "b"))
    assert t.count() == 500 and t.value(499) == (998, "499")
    c.close()


def test_one_writer_and_readers(tmp_path):
    path = tmp_path / "kv.lsm"
    w = sqlnb.connect(":memory:")
    r1 = sqlnb.connect(":memory:")
    r2 = sqlnb.connect(":memory:")
    tw = L.table(w, "kv", path, key_type="UINT")
    tr1, tr2 = L.table(r1, "kv", path), L.table(r2, "kv", path)
    tw.put(1, "one")
    w.execute("BEGIN")
    tw.put(2, "two")  # uncommitted
    assert tr1.count() == 1 and tr2.scan()["key"].tolist() == [1]
    with pytest.raises(errors.OperationalError, match="another connection of this process"):
        tr1.put(3, "three")  # a second writer while the first holds the write lock
    w.commit()
    assert tr1.count() == 2 and tr2.value(2) == "two"
    tr1.put(3, "three")  # the writer lock is free again
    assert tw.count() == 3
    for c in (w, r1, r2):
        c.close()


# --- bad input --------------------------------------------------------------------------------
def test_wrong_key_types_refused_nothing_written(db, tmp_path):
    t = L.table(db, "u", tmp_path / "u.lsm", key_type="UINT")
    t.put(0, "zero")
    for bad in ("abc", "12", -1, 2**63, 1.5, True, None, b"\x01"):
        with pytest.raises(L.KeyTypeError):
            t.put(bad, "oops")
        if bad is not None:  # None is "unbounded" for scans
            with pytest.raises(L.KeyTypeError):
                t.scan(bad, 10)
    assert t.scan().to_dict("records") == [{"key": 0, "value": "zero"}]
    import numpy as np
    t.put(np.int64(5), "numpy ok")
    assert t.value(5) == "numpy ok"
    s = L.table(db, "s", tmp_path / "s.lsm")
    with pytest.raises(L.KeyTypeError, match="not str"):
        s.put(b"bytes", 1)
    b = L.table(db, "b", tmp_path / "b.lsm", key_type="BLOB")
    with pytest.raises(L.KeyTypeError, match="not bytes"):
        b.put("text", 1)
    db.close()
    before = sha(tmp_path / "u.lsm")
    c = sqlnb.connect(str(tmp_path / "host.db"))
    with pytest.raises(L.KeyTypeError):
        L.table(c, "u").put("abc", 1)
    c.close()
    assert sha(tmp_path / "u.lsm") == before


@pytest.mark.parametrize("content", [b"hello world\n" * 1000, b"\0" * 9000, b"SQLite format 3\0" + b"\1" * 9000,
                                     b"short"])
def test_not_an_lsm_file_is_left_untouched(db, tmp_path, content):
    p = tmp_path / "data.bin"
    p.write_bytes(content)
    before = sha(p)
    with pytest.raises(errors.NotADatabaseError, match="not an lsm database"):
        L.table(db, "kv", p)
    assert L.lsm_tables(db) == []
    db.close()
    assert sha(p) == before and sorted(os.listdir(tmp_path)) == ["data.bin", "host.db"]


def test_directory_and_missing_paths(db, tmp_path):
    with pytest.raises(errors.CantOpenError, match="is a directory"):
        L.table(db, "kv", tmp_path)
    with pytest.raises(errors.CantOpenError, match="does not exist"):
        L.table(db, "kv", tmp_path / "no" / "such" / "kv.lsm")
    with pytest.raises(errors.CantOpenError, match="no such lsm file"):
        L.table(db, "kv", tmp_path / "kv.lsm", create=False)
    assert os.listdir(tmp_path) == ["host.db"]


def test_sidecar_contradiction_refused(tmp_path):
    c = sqlnb.connect(":memory:")
    L.table(c, "kv", tmp_path / "kv.lsm", key_type="UINT").put(7, "x")
    c.close()
    before = sha(tmp_path / "kv.lsm")
    c = sqlnb.connect(":memory:")
    with pytest.raises(errors.ProgrammingError, match="created by sqlnb with key_type='UINT'"):
        L.table(c, "kv", tmp_path / "kv.lsm", key_type="TEXT")
    c.close()
    assert sha(tmp_path / "kv.lsm") == before
    (tmp_path / "kv.lsm.sqlnb.json").write_text("{not json")
    c = sqlnb.connect(":memory:")
    with pytest.raises(errors.InterfaceError, match="unreadable sqlnb sidecar"):
        L.table(c, "kv", tmp_path / "kv.lsm")
    c.close()


WRITER = textwrap.dedent("""
    import sys, sqlnb
    c = sqlnb.connect(":memory:", isolation_level=None)
    c.execute("CREATE VIRTUAL TABLE kv USING lsm1(" + repr(sys.argv[1]) + ", key, TEXT, value)")
    c.execute("BEGIN")
    c.execute("INSERT INTO kv VALUES ('from-subprocess', 1)")
    print("ready", flush=True)
    sys.stdin.readline()
    c.execute(sys.argv[2])
    c.close()
    print("done", flush=True)
""")


def start_writer(path, end="COMMIT"):
    env = {**os.environ, "PYTHONPATH": ROOT}
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(path), end], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline()
    assert line.strip() == "ready", p.stderr.read()
    return p


def finish(p):
    out, err = p.communicate("\n", timeout=20)
    assert p.returncode == 0 and "done" in out, err


@pytest.mark.timeout(60)
def test_file_locked_by_another_process(tmp_path):
    path = tmp_path / "kv.lsm"
    c = sqlnb.connect(":memory:")
    t = L.table(c, "kv", path, timeout=0.3)
    t.put("mine", 0)
    p = start_writer(path)
    try:
        assert L.writer_pid(path) == p.pid
        before = sha(path)
        with pytest.raises(errors.BusyError, match=f"process {p.pid} holds a write transaction"):
            t.put("blocked", 1)
        with pytest.raises(errors.BusyError):
            t.load([("a", 1), ("b", 2)])
        with pytest.raises(errors.BusyError):
            t.delete_range()
        assert not c.in_transaction
        assert t.scan()["key"].tolist() == ["mine"]  # readers still read the committed data
        assert sha(path) == before
    finally:
        finish(p)
    assert L.writer_pid(path) is None
    assert t.scan()["key"].tolist() == ["from-subprocess", "mine"]
    t.put("after", 2)  # the lock is free again
    assert t.count() == 3
    c.close()


@pytest.mark.timeout(60)
def test_write_waits_for_a_short_lock(tmp_path):
    import threading

    path = tmp_path / "kv.lsm"
    c = sqlnb.connect(":memory:")
    t = L.table(c, "kv", path, timeout=15)
    p = start_writer(path, end="ROLLBACK")

    def release():
        p.stdin.write("\n")
        p.stdin.flush()

    threading.Timer(0.5, release).start()
    # retried until the other process rolled back; the one-shot generator is consumed once, whole
    assert t.load((f"k{i}", i) for i in range(100)) == 100
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert t.count() == 100 and t.value("k99") == 99
    c.close()


def test_foreign_file_without_sidecar_warns(tmp_path):
    path = tmp_path / "foreign.lsm"
    c = sqlnb.connect(":memory:")
    c.execute(f"CREATE VIRTUAL TABLE f USING lsm1('{path}', k, UINT, a, b)")
    c.execute("INSERT INTO f VALUES (1, 'x', 2)")
    c.commit()
    c.close()
    c = sqlnb.connect(":memory:")
    with pytest.warns(UserWarning, match="no sqlnb sidecar"):
        L.table(c, "guess", path)
    t = L.table(c, "right", path, key_type="UINT", values=["a", "b"])  # no warning needed
    assert t.value(1) == ("x", 2)
    c.close()
    assert not os.path.exists(str(path) + L.SIDECAR_SUFFIX)
