"""Opening an .lsm file straight from a URL (issue 11): ``sqlnb.connect("lsm:///path/events.lsm")``.

Real files, real subprocesses for the cross-process cases; nothing mocked.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings

import pandas as pd
import pytest

import sqlnb
from sqlnb import errors
from sqlnb import lsm as L

from tests.conftest import need_engine
from tests.test_lsm import finish, start_writer


@pytest.fixture(autouse=True)
def _sqlite_engine():
    need_engine("sqlite")


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def url(path, query="") -> str:
    return f"lsm:///{path}" + (f"?{query}" if query else "")  # an absolute path gives lsm:////abs/...




def test_open_write_reopen_read_back(tmp_path):
    path = tmp_path / "events.lsm"
    u = url(path, "key=ts&key_type=UINT&values=kind,amount")
    con = sqlnb.connect(u)
    assert isinstance(con, sqlnb.Connection) and con.engine == "sqlite" and con.mode == "rw"
    assert con.url == u and con.path == str(path)
    assert con.extras["lsm"]["name"] == "events" and con.extras["lsm"]["schema_from"] == "new"
    assert L.lsm_tables(con) == [{"name": "events", "schema": "main", "file": str(path), "key": "ts",
                                  "key_type": "UINT", "values": ("kind", "amount")}]
    con.executemany("INSERT INTO events VALUES (?, ?, ?)", [(3, "c", 3.5), (1, "a", 1), (2, "b", None)])
    con.commit()
    df = con.query_df("SELECT ts, kind, amount FROM events WHERE ts >= ? ORDER BY ts", (2,))
    assert df["ts"].tolist() == [2, 3] and df["kind"].tolist() == ["b", "c"]
    con.close()
    assert json.loads((tmp_path / "events.lsm.sqlnb.json").read_text())["values"] == ["kind", "amount"]
    # reopened without options: the sidecar gives the schema
    con = sqlnb.connect(url(path))
    assert con.extras["lsm"]["schema_from"] == "sidecar"
    assert con.execute("SELECT * FROM events ORDER BY ts").fetchall() == [(1, "a", 1), (2, "b", None),
                                                                          (3, "c", 3.5)]
    t = L.table_of(con)
    assert t.scan(2, 3)["kind"].tolist() == ["b", "c"]
    t.load(pd.DataFrame({"ts": [10, 11], "kind": ["x", "y"], "amount": [1, 2]}))
    con.close()
    # and the same file mounted on an ordinary connection with the Python API sees it all
    other = sqlnb.connect(":memory:")
    assert L.table(other, "ev", path).count() == 5
    other.close()


def test_table_option_relative_path_and_repr(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    con = sqlnb.connect("lsm:///data/kv.lsm?table=store")
    assert con.path == str(tmp_path / "data" / "kv.lsm")
    assert con.extras["lsm"]["name"] == "store" and con.extras["lsm"]["key_type"] == "TEXT"
    con.execute("INSERT INTO store VALUES ('k', 'v')")
    con.commit()
    assert "lsm:///data/kv.lsm" in repr(con)
    con.close()
    monkeypatch.chdir(tmp_path / "data")
    con = sqlnb.connect(url(tmp_path / "data" / "kv.lsm"), table="again")
    assert con.execute("SELECT value FROM again WHERE key = 'k'").fetchone() == ("v",)
    con.close()


def test_options_by_keyword_and_errors(tmp_path):
    con = sqlnb.connect(url(tmp_path / "k.lsm"), key_type="BLOB", values=("a", "b"))
    assert con.extras["lsm"]["values"] == ("a", "b")
    con.close()
    with pytest.raises(errors.InterfaceError, match="unknown lsm option"):
        sqlnb.connect(url(tmp_path / "k.lsm", "keytype=UINT"))
    with pytest.raises(errors.ProgrammingError, match="created by sqlnb with key_type='BLOB'"):
        sqlnb.connect(url(tmp_path / "k.lsm", "key_type=UINT"))
    with pytest.raises(ValueError, match="key_type must be one of"):
        sqlnb.connect(url(tmp_path / "new.lsm", "key_type=INT"))
    with pytest.raises(errors.InterfaceError, match="needs a file path"):
        sqlnb.connect("lsm:///:memory:")
    assert not os.path.exists(tmp_path / "new.lsm")


def test_existing_file_without_sidecar_is_exposed_raw_with_a_hint(tmp_path):
    path = tmp_path / "legacy.lsm"
    c = sqlnb.connect(":memory:")
    c.execute(f"CREATE VIRTUAL TABLE f USING lsm1('{path}', id, UINT, a, b, c)")
    c.executemany("INSERT INTO f VALUES (?, ?, ?, ?)", [(300, "x", 2.5, None), (7, -4, b"\x01", "z")])
    c.commit()
    c.close()
    before = sha(path)
    with pytest.warns(UserWarning, match="no sqlnb sidecar.*key_type=UINT&values=a,b"):
        con = sqlnb.connect(url(path))
    assert con.extras["lsm"]["schema_from"] == "guess"
    rows = con.execute("SELECT key, value1, value2, value3, typeof(lsm1_value) FROM legacy").fetchall()
    # BLOB keys are the raw UINT varints (7 -> 0x07, 300 -> 0xf1 0x3c), in the file's order
    assert rows == [(b"\x07", -4, b"\x01", "z", "blob"), (b"\xf1\x3c", "x", 2.5, None, "blob")]
    con.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        con = sqlnb.connect(url(path, "key=id&key_type=UINT&values=a,b,c"))
    assert con.execute("SELECT id, a FROM legacy ORDER BY id").fetchall() == [(7, -4), (300, "x")]
    assert con.extras["lsm"]["schema_from"] == "options"
    con.close()
    assert sha(path) == before  # reading wrote nothing
    assert not os.path.exists(str(path) + ".sqlnb.json")  # sqlnb only writes a sidecar for files it creates


def test_bad_paths(tmp_path):
    notlsm = tmp_path / "notes.txt"
    notlsm.write_text("not an lsm file\n" * 600)
    before = sha(notlsm)
    with pytest.raises(errors.NotADatabaseError, match="not an lsm database"):
        sqlnb.connect(url(notlsm))
    assert sha(notlsm) == before
    with pytest.raises(errors.CantOpenError, match="is a directory"):
        sqlnb.connect(url(tmp_path))
    with pytest.raises(errors.CantOpenError, match="does not exist"):
        sqlnb.connect(url(tmp_path / "nodir" / "x.lsm"))
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_missing_path_in_ro_mode_creates_nothing(tmp_path):
    for kw in ({"mode": "ro"}, {"mode": "ro-scratch"}):
        with pytest.raises(errors.CantOpenError, match="no such lsm file"):
            sqlnb.connect(url(tmp_path / "missing.lsm"), **kw)
    with pytest.raises(errors.CantOpenError, match="no such lsm file"):
        sqlnb.connect(url(tmp_path / "missing.lsm", "mode=ro"))
    with pytest.raises(errors.CantOpenError, match="no such lsm file"):
        sqlnb.connect(url(tmp_path / "missing.lsm"), create=False)
    assert os.listdir(tmp_path) == []


def test_ro_mode_refuses_writes_to_the_lsm_table(tmp_path):
    path = tmp_path / "kv.lsm"
    con = sqlnb.connect(url(path))
    con.execute("INSERT INTO kv VALUES ('a', 1)")
    con.commit()
    con.close()
    before = sha(path)
    ro = sqlnb.connect(url(path, "mode=ro"))
    assert ro.mode == "ro"
    assert ro.execute("SELECT * FROM kv").fetchall() == [("a", 1)]
    with pytest.raises((errors.ReadOnlyError, errors.AuthError)):
        ro.execute("INSERT INTO kv VALUES ('b', 2)")
    with pytest.raises((errors.ReadOnlyError, errors.AuthError)):
        ro.execute("DELETE FROM kv")
    with pytest.raises((errors.ReadOnlyError, errors.AuthError)):
        L.table_of(ro).put("c", 3)
    ro.close()
    assert sha(path) == before


@pytest.mark.timeout(60)
def test_ro_reads_committed_data_while_another_process_writes(tmp_path):
    path = tmp_path / "kv.lsm"
    con = sqlnb.connect(url(path))
    con.execute("INSERT INTO kv VALUES ('mine', 0)")
    con.commit()
    con.close()
    p = start_writer(path)
    try:
        ro = sqlnb.connect(url(path), mode="ro", timeout=0.2)
        assert ro.execute("SELECT key FROM kv").fetchall() == [("mine",)]
        ro.close()
    finally:
        finish(p)


@pytest.mark.timeout(60)
def test_file_locked_by_a_writer_in_another_process(tmp_path):
    path = tmp_path / "kv.lsm"
    sqlnb.connect(url(path)).close()  # create it (empty)
    p = start_writer(path)
    try:
        before = sha(path)
        with pytest.raises(errors.BusyError, match=f"process {p.pid} holds a write transaction"):
            sqlnb.connect(url(path), timeout=0.2)
        assert sha(path) == before
    finally:
        finish(p)
    con = sqlnb.connect(url(path), timeout=0.2)  # free again
    assert con.execute("SELECT key FROM kv").fetchall() == [("from-subprocess",)]
    con.close()


@pytest.mark.timeout(60)
def test_close_releases_the_file(tmp_path):
    path = tmp_path / "kv.lsm"
    con = sqlnb.connect(url(path))
    con.execute("INSERT INTO kv VALUES ('ours', 1)")  # an open write transaction holds lsm's writer lock
    assert con.in_transaction and L.writer_pid(path) is None  # (our own lock is not "another process")
    con.close()  # rolls back and releases the file
    p = start_writer(path)  # would fail to get the writer lock if we still held it
    finish(p)
    con = sqlnb.connect(url(path))
    assert con.execute("SELECT key FROM kv").fetchall() == [("from-subprocess",)]
    con.close()
    assert sorted(os.listdir(tmp_path)) == ["kv.lsm", "kv.lsm.sqlnb.json"]


def test_statement_timeout_and_isolation_are_passed_on(tmp_path):
    con = sqlnb.connect(url(tmp_path / "kv.lsm"), statement_timeout=2.5, isolation_level=None)
    assert con.statement_timeout == 2.5
    con.execute("INSERT INTO kv VALUES ('a', 1)")
    assert not con.in_transaction  # autocommit
    con.close()


@pytest.mark.notebook
@pytest.mark.timeout(600)
def test_lsm1_notebook_executes_headless(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    nb = nbformat.read(os.path.join(root, "notebooks", "05-lsm1.ipynb"), as_version=4)
    assert any("lsm:///" in c.source and "sqlnb.connect(url)" in c.source for c in nb.cells if c.cell_type == "code")
    env_before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, env_before) if p)
    try:
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = env_before
    errors_ = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors_
    assert os.listdir(tmp_path) == []  # the notebook wrote only under its own temp dir, and removed it
