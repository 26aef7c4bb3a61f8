"""Every engine's raw classes satisfy the driver protocol (``sqlnb.engines.protocol``), and
the engine objects answer for themselves (capabilities, versions, hooks)."""
from __future__ import annotations

import sqlite3

import pytest

import sqlnb
from sqlnb import engines, errors
from sqlnb.engines import protocol
from tests.conftest import need_engine


def _connection_and_statement(name):
    raw = engines.get(name).open_raw(":memory:")
    st, _ = raw.prepare(b"SELECT 1")
    return raw, st


@pytest.mark.parametrize("name", ["sqlite", "bdb", "system"])
def test_raw_classes_have_every_protocol_member(name):
    need_engine(name)
    raw, st = _connection_and_statement(name)
    try:
        for obj, proto in ((raw, protocol.RawConnection), (st, protocol.RawStatement)):
            missing = sorted(m for m in protocol.members(proto) if not hasattr(obj, m))
            assert not missing, f"{name}: {type(obj).__name__} lacks {missing}"
            assert isinstance(obj, proto)
    finally:
        st.finalize()
        raw.close()


def test_protocol_lists_what_the_facade_uses():
    assert {"prepare", "autocommit", "changes", "last_insert_rowid", "interrupt", "timeout",
            "busy_timeout", "policy"} <= protocol.members(protocol.RawConnection)
    assert {"bind", "step", "row", "fetchmany", "run", "column_names", "decltypes", "param_names",
            "finalize", "readonly", "sql"} <= protocol.members(protocol.RawStatement)


def test_registry():
    assert [e.name for e in sqlnb.engines()] == list(engines.ENGINES)
    assert engines.get("system").version() == sqlite3.sqlite_version
    with pytest.raises(errors.InterfaceError, match="choose one of: sqlite, bdb, system"):
        engines.get("nope")
    for name in engines.ENGINES:
        e = engines.engine(name)
        assert e.name == name and e.file_format in ("sqlite", "bdb") and e.description
    with pytest.raises(ValueError):
        engines.engine("sqlite").has("flying")


def test_capabilities_explain_what_is_missing():
    sys_e, bdb_e = engines.engine("system"), engines.engine("bdb")
    assert not sys_e.has("parallel_fetch") and sys_e.lacks("parallel_fetch") == "the stdlib holds the GIL"
    assert not bdb_e.has("parallel_fetch") and "BerkeleyDB" in bdb_e.lacks("parallel_fetch")
    assert not bdb_e.has("multirow_values") and not sys_e.has("columnar_export")
    assert bdb_e.file_format == "bdb" and sys_e.file_format == "sqlite"
    need_engine("sqlite")
    ours = engines.get("sqlite")
    assert ours.has("parallel_fetch") and ours.lacks("parallel_fetch") == ""
    assert ours.has("multirow_values") and ours.has("columnar_export") and ours.has("export_cache")


def test_connection_backend_is_the_engine(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    try:
        assert con.backend is engines.engine(engine) and con.engine == engine
        assert con.sqlite_version == con.backend.version() == sqlnb.sqlite_version(engine)
    finally:
        con.close()


def test_system_insert_rows_and_decoding(tmp_path):
    e = engines.get("system")
    con = sqlnb.connect(str(tmp_path / "s.db"), engine="system")
    con.execute("CREATE TABLE t (a, b)")
    raw = con.raw
    assert e.insert_rows(raw, "INSERT INTO t VALUES (?, ?)", iter([(1, "x"), (2, "y")])) == 2
    with e.decoding(raw, bytes):
        assert con.execute("SELECT b FROM t ORDER BY a").fetchall() == [(b"x",), (b"y",)]
    assert con.execute("SELECT b FROM t ORDER BY a").fetchall() == [("x",), ("y",)]
    with pytest.raises(errors.IntegrityError) as ei:
        con.execute("CREATE UNIQUE INDEX u ON t (a)")
        e.insert_rows(raw, "INSERT INTO t VALUES (?, ?)", iter([(3, "z"), (1, "dup"), (4, "w")]))
    assert ei.value.rows_taken == 2  # the failing row is the last one taken

    def rows():  # an interrupt() that lands between two rows is not forgotten
        yield (5, "a")
        raw.interrupt()
        yield (6, "b")

    with pytest.raises(errors.InterruptError):
        e.insert_rows(raw, "INSERT INTO t VALUES (?, ?)", rows())
    con.rollback()
    con.close()


def test_compiled_engines_have_no_insert_rows():
    need_engine("sqlite")
    with pytest.raises(errors.NotSupportedError):
        engines.get("sqlite").insert_rows(None, "INSERT INTO t VALUES (?)", iter([]))
