"""``detect_types`` with ``register_converter`` / ``register_adapter`` (issue #22), the stdlib
``sqlite3`` of Python 3.11 as the oracle in each test, on every engine. The ``system`` engine
cannot tell declared types (the stdlib does not expose them): PARSE_DECLTYPES is refused there
(FeatureNotSupportedError), PARSE_COLNAMES works (docs/dbapi.md)."""
from __future__ import annotations

import datetime as dt
import importlib
import sqlite3

import pytest

import sqlnb
from sqlnb import errors

BOTH = sqlnb.PARSE_DECLTYPES | sqlnb.PARSE_COLNAMES


def _stdlib_defaults():
    """The adapters and converters the stdlib registers when it is imported, before any library
    (pandas.io.sql, nbformat.sign) registers its own into the same process-wide maps."""
    sqlite3.adapters.clear()
    sqlite3.converters.clear()
    importlib.reload(sqlite3.dbapi2)  # (re-registers the stdlib's defaults; the classes are _sqlite3's)


@pytest.fixture(autouse=True)
def registries():
    """Each test starts from the stdlib's own maps (the oracle), and its registrations, on either
    side, end with the test; what other libraries registered comes back afterwards."""
    saved = (dict(sqlite3.adapters), dict(sqlite3.converters), dict(sqlnb.adapters), dict(sqlnb.converters))
    _stdlib_defaults()
    yield
    for live, old in zip((sqlite3.adapters, sqlite3.converters, sqlnb.adapters, sqlnb.converters), saved):
        live.clear()
        live.update(old)


def declared_types(engine) -> bool:
    return getattr(sqlnb.engines.engine(engine), "declared_types", True)


def pair(engine, tmp_path, detect, schema=()):
    """An sqlnb connection and a stdlib one, both with ``detect`` and the same ``schema``."""
    if detect & sqlnb.PARSE_DECLTYPES and not declared_types(engine):
        with pytest.raises(errors.FeatureNotSupportedError, match="declared type"):
            sqlnb.connect(str(tmp_path / "t.db"), engine=engine, detect_types=detect)
        return None, None   # (the refusal is what this engine does)
    con = sqlnb.connect(str(tmp_path / "t.db"), engine=engine, detect_types=detect)
    ref = sqlite3.connect(":memory:", detect_types=detect)
    for c in (con, ref):
        for sql in schema:
            c.execute(sql)
    return con, ref


def same_error(call_sqlnb, call_ref):
    """Both raise; the classes correspond (a stdlib sqlite3.X is sqlnb's X; others are identical)."""
    with pytest.raises(Exception) as got:
        call_sqlnb()
    with pytest.raises(Exception) as want:
        call_ref()
    g, w = got.value, want.value
    if type(w).__module__ == "sqlite3":
        assert isinstance(g, getattr(sqlnb, type(w).__name__)), (g, w)
    else:
        assert type(g) is type(w) and str(g) == str(w), (g, w)
    return g, w


ROWS = [(1, 1.5, "x", 2), (None, b"", "", 0.1 + 0.2), (1e20, 100.0, b"\x00\xff", 1 / 3),
        (-7, 1e-7, "äé", float("inf")), ("12", 2.0**60, b"blob", -0.0)]
SCHEMA = ("CREATE TABLE t(a point, b POINT(10), c Point NOT NULL, d integer, e)",)


def fill(*cons):
    for c in cons:
        c.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [r[:2] + (r[2] if r[2] is not None else "", r[3], r[0])
                                                              for r in ROWS])


def tag(b):
    assert type(b) is bytes
    return ("P", b)


def test_converter_by_declared_type(engine, tmp_path):
    con, ref = pair(engine, tmp_path, sqlnb.PARSE_DECLTYPES, SCHEMA)
    if con is None:
        return
    sqlnb.register_converter("Point", tag)
    sqlite3.register_converter("Point", tag)
    fill(con, ref)
    sql = "SELECT a, b, c, d, e FROM t ORDER BY rowid"
    want = ref.execute(sql).fetchall()
    assert want[0] == (("P", b"1"), ("P", b"1.5"), ("P", b"x"), 2, 1)   # the oracle did convert
    assert con.execute(sql).fetchall() == want
    assert list(con.execute(sql)) == want
    cur = con.execute(sql)
    assert [cur.fetchone(), *cur.fetchmany(2), *cur.fetchall()] == want
    # the name is the declared type's first word (split at a blank or "("), any case
    assert con.execute("SELECT b, c FROM t LIMIT 1").fetchone() == ref.execute("SELECT b, c FROM t LIMIT 1").fetchone()


def test_converter_by_column_name(engine, tmp_path):
    schema = ("CREATE TABLE t(a point, d integer)", "INSERT INTO t VALUES ('1;2', 3)", "INSERT INTO t VALUES (NULL, 4)")
    con, ref = pair(engine, tmp_path, sqlnb.PARSE_COLNAMES, schema)
    sqlnb.register_converter("point", tag)
    sqlite3.register_converter("point", tag)
    sql = ('SELECT d AS "e [point]", d AS "x[POINT]", d AS "y [nope]", d AS "[point] z", d AS "w [a[point]", '
           'a, a AS "plain" FROM t ORDER BY d')
    cur, rcur = con.execute(sql), ref.execute(sql)
    assert [d[0] for d in cur.description] == [d[0] for d in rcur.description] == ["e", "x", "y", "", "w", "a", "plain"]
    want = rcur.fetchall()
    assert want[0][:3] == (("P", b"3"), ("P", b"3"), 3)
    assert cur.fetchall() == want
    # without PARSE_COLNAMES a name keeps its brackets and nothing converts
    plain, rplain = sqlnb.connect(":memory:", engine=engine), sqlite3.connect(":memory:")
    q = 'SELECT 5 AS "v [point]"'
    assert plain.execute(q).description[0][0] == rplain.execute(q).description[0][0] == "v [point]"
    assert plain.execute(q).fetchall() == rplain.execute(q).fetchall() == [(5,)]


def test_both_flags_column_name_wins(engine, tmp_path):
    con, ref = pair(engine, tmp_path, BOTH, SCHEMA)
    if con is None:
        return
    for reg in (sqlnb.register_converter, sqlite3.register_converter):
        reg("point", tag)
        reg("other", lambda b: ("O", b))
    fill(con, ref)
    sql = 'SELECT a AS "a [other]", a AS "b [nope]", d AS "d [point]", d FROM t ORDER BY rowid'
    want = ref.execute(sql).fetchall()
    assert want[0] == (("O", b"1"), ("P", b"1"), ("P", b"2"), 2)   # unknown [type]: the declared type's
    assert con.execute(sql).fetchall() == want


def test_null_and_empty_never_reach_the_converter(engine, tmp_path):
    schema = ("CREATE TABLE t(v conv)", *(f"INSERT INTO t VALUES ({v})" for v in ("NULL", "''", "X''", "0", "'0'")))
    con, ref = pair(engine, tmp_path, sqlnb.PARSE_COLNAMES, schema)
    seen = []
    for reg in (sqlnb.register_converter, sqlite3.register_converter):
        reg("conv", lambda b: seen.append(b) or len(b))
    sql = 'SELECT v AS "v [conv]" FROM t ORDER BY rowid'
    want = ref.execute(sql).fetchall()
    n = len(seen)
    assert con.execute(sql).fetchall() == want == [(None,), (None,), (None,), (1,), (1,)]
    assert seen[:n] == seen[n:] == [b"0", b"0"]


def test_converter_that_raises_propagates(engine, tmp_path):
    schema = ("CREATE TABLE t(v bad)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)")
    con, ref = pair(engine, tmp_path, sqlnb.PARSE_COLNAMES, schema)

    def bad(b):
        raise KeyError(f"no {b!r}")
    sqlnb.register_converter("bad", bad)
    sqlite3.register_converter("bad", bad)
    sql = 'SELECT v AS "v [bad]" FROM t'
    same_error(lambda: con.execute(sql).fetchall(), lambda: ref.execute(sql).fetchall())
    same_error(lambda: con.execute(sql).fetchone(), lambda: ref.execute(sql).fetchone())
    assert con.execute("SELECT count(*) FROM t").fetchone() == (2,)   # the connection stays usable


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


class SubPoint(Point):
    pass


def test_adapter_by_exact_type(engine, tmp_path):
    con, ref = pair(engine, tmp_path, 0, ("CREATE TABLE t(p)",))
    for reg in (sqlnb.register_adapter, sqlite3.register_adapter):
        reg(Point, lambda p: f"{p.x};{p.y}")
    for c in (con, ref):
        c.execute("INSERT INTO t VALUES (?)", (Point(1, 2),))
        c.execute("INSERT INTO t VALUES (:p)", {"p": Point(3, 4)})
        c.executemany("INSERT INTO t VALUES (?)", [(Point(5, 6),), (Point(7, 8),)])
    sql = "SELECT p, typeof(p) FROM t ORDER BY rowid"
    assert con.execute(sql).fetchall() == ref.execute(sql).fetchall() == [
        ("1;2", "text"), ("3;4", "text"), ("5;6", "text"), ("7;8", "text")]
    assert con.execute("SELECT ?", (Point(0, 1),)).fetchone() == ("0;1",)
    # a subclass is another type: no adapter, the bind error
    same_error(lambda: con.execute("SELECT ?", (SubPoint(1, 2),)), lambda: ref.execute("SELECT ?", (SubPoint(1, 2),)))


def test_adapter_replaces_a_native_binding(engine, tmp_path):
    con, ref = pair(engine, tmp_path, 0)
    args = (dt.datetime(2024, 5, 6, 7, 8, 9), 4, True, 2.5, "s")
    sql = "SELECT ?, ?, ?, ?, ?"
    ref.execute("CREATE TABLE t(a, b)")
    con.execute("CREATE TABLE t(a, b)")
    sqlite3.register_adapter(dt.datetime, lambda d: d.strftime("%d/%m/%Y"))
    sqlite3.register_adapter(int, lambda i: i * 10)
    want = ref.execute(sql, args).fetchone()
    assert want == ("06/05/2024", 40, 1, 2.5, "s")   # exact types only: bool is not int
    ref.executemany("INSERT INTO t VALUES (?, ?)", [(1, dt.datetime(2020, 1, 2))])
    want_rows = ref.execute("SELECT * FROM t").fetchall()
    # the stdlib's registrations off again (the system engine runs on the stdlib), sqlnb's on
    del sqlite3.adapters[(int, sqlite3.PrepareProtocol)]
    del sqlite3.adapters[(dt.datetime, sqlite3.PrepareProtocol)]
    sqlnb.register_adapter(dt.datetime, lambda d: d.strftime("%d/%m/%Y"))
    sqlnb.register_adapter(int, lambda i: i * 10)
    assert con.execute(sql, args).fetchone() == want
    con.executemany("INSERT INTO t VALUES (?, ?)", [(1, dt.datetime(2020, 1, 2))])
    assert con.execute("SELECT * FROM t").fetchall() == want_rows == [(10, "02/01/2020")]


def test_adapter_that_raises_propagates(engine, tmp_path):
    con, ref = pair(engine, tmp_path, 0, ("CREATE TABLE t(p)",))

    def bad(p):
        raise ValueError("cannot adapt")
    sqlnb.register_adapter(Point, bad)
    sqlite3.register_adapter(Point, bad)
    same_error(lambda: con.execute("SELECT ?", (Point(1, 2),)), lambda: ref.execute("SELECT ?", (Point(1, 2),)))
    same_error(lambda: con.executemany("INSERT INTO t VALUES (?)", [(Point(1, 2),)]),
               lambda: ref.executemany("INSERT INTO t VALUES (?)", [(Point(1, 2),)]))
    assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)


class Conform:
    protocols = []

    def __conform__(self, protocol):
        Conform.protocols.append(protocol)
        return "conformed"


class ConformRaises:
    def __init__(self, exc):
        self.exc = exc

    def __conform__(self, protocol):
        raise self.exc


class ConformNone:
    def __conform__(self, protocol):
        return None


def test_conform_protocol(engine, tmp_path):
    con, ref = pair(engine, tmp_path, 0)
    Conform.protocols.clear()
    assert con.execute("SELECT ?", (Conform(),)).fetchone() == ref.execute("SELECT ?", (Conform(),)).fetchone() == (
        "conformed",)
    assert Conform.protocols == [sqlnb.PrepareProtocol, sqlite3.PrepareProtocol]
    # an exception propagates, except TypeError ("cannot conform"): the bind error, as for None
    same_error(lambda: con.execute("SELECT ?", (ConformRaises(ValueError("v")),)),
               lambda: ref.execute("SELECT ?", (ConformRaises(ValueError("v")),)))
    for value in (ConformRaises(TypeError("t")), ConformNone()):
        g, _ = same_error(lambda: con.execute("SELECT ?", (value,)), lambda: ref.execute("SELECT ?", (value,)))
        assert isinstance(g, errors.BindError)


def test_default_date_and_timestamp_converters(engine, tmp_path):
    schema = ("CREATE TABLE d(a date, b timestamp)",)
    con, ref = pair(engine, tmp_path, BOTH if declared_types(engine) else sqlnb.PARSE_COLNAMES, schema)
    values = [(dt.date(2020, 1, 2), dt.datetime(2020, 1, 2, 3, 4, 5, 600)), (dt.date(1999, 12, 31), dt.datetime(2000, 1, 1))]
    for c in (con, ref):
        c.executemany("INSERT INTO d VALUES (?, ?)", values)
    sql = 'SELECT a AS "a [date]", b AS "b [timestamp]" FROM d ORDER BY a DESC'
    assert con.execute(sql).fetchall() == ref.execute(sql).fetchall() == values
    for c in (con, ref):
        c.execute("INSERT INTO d VALUES ('2020-01-02', '2020-01-02 03:04:05+01:00')")  # a UTC offset: 3.11 cannot
    same_error(lambda: con.execute(sql).fetchall(), lambda: ref.execute(sql).fetchall())


def test_text_and_row_factories_with_converters(engine, tmp_path):
    schema = ("CREATE TABLE t(v, w)", "INSERT INTO t VALUES ('ab', 'cd')")
    con, ref = pair(engine, tmp_path, sqlnb.PARSE_COLNAMES, schema)
    for reg in (sqlnb.register_converter, sqlite3.register_converter):
        reg("up", lambda b: b.decode().upper())
    con.text_factory = ref.text_factory = lambda b: b[::-1]   # not applied to a converted column
    sql = 'SELECT v AS "v [up]", w FROM t'
    assert con.execute(sql).fetchall() == ref.execute(sql).fetchall() == [("AB", b"dc")]
    con.row_factory, ref.row_factory = sqlnb.Row, sqlite3.Row
    g, w = con.execute(sql).fetchone(), ref.execute(sql).fetchone()
    assert g.keys() == w.keys() == ["v", "w"] and g["V"] == w["V"] == "AB"


def test_registration_and_argument_errors(engine, tmp_path):
    same_error(lambda: sqlnb.register_converter(1, str), lambda: sqlite3.register_converter(1, str))
    same_error(lambda: sqlnb.connect(":memory:", engine=engine, detect_types="x"),
               lambda: sqlite3.connect(":memory:", detect_types="x"))
    # an adapter that is not callable fails when used, as in the stdlib
    con, ref = pair(engine, tmp_path, 0)
    sqlnb.register_adapter(Point, 1)
    sqlite3.register_adapter(Point, 1)
    same_error(lambda: con.execute("SELECT ?", (Point(1, 2),)), lambda: ref.execute("SELECT ?", (Point(1, 2),)))
    assert sqlnb.PARSE_DECLTYPES == sqlite3.PARSE_DECLTYPES and sqlnb.PARSE_COLNAMES == sqlite3.PARSE_COLNAMES


def test_sqlnb_maps_are_its_own():
    assert {"DATE", "TIMESTAMP"} <= set(sqlnb.converters)
    assert set(sqlite3.converters) == {"DATE", "TIMESTAMP"}
    sqlnb.register_converter("mine", str)
    sqlnb.register_adapter(Point, str)
    assert "MINE" in sqlnb.converters and "MINE" not in sqlite3.converters
    assert (Point, sqlnb.PrepareProtocol) in sqlnb.adapters
    assert not any(k[0] is Point for k in sqlite3.adapters)


def test_columnar_fetchers_do_not_convert(engine, tmp_path):
    pytest.importorskip("pandas")
    con, _ = pair(engine, tmp_path, sqlnb.PARSE_COLNAMES, ("CREATE TABLE t(v)", "INSERT INTO t VALUES (7)"))
    sqlnb.register_converter("point", tag)
    sql = 'SELECT v AS "v [point]" FROM t'
    assert con.execute(sql).fetchone() == (("P", b"7"),)
    df = con.query_df(sql)
    assert df.iloc[0, 0] == 7


def test_system_engine_refuses_declared_types(tmp_path):
    with pytest.raises(errors.FeatureNotSupportedError, match="PARSE_COLNAMES"):
        sqlnb.connect(str(tmp_path / "s.db"), engine="system", detect_types=sqlnb.PARSE_DECLTYPES)
    assert not (tmp_path / "s.db").exists()   # refused before anything was opened
    sqlnb.connect(":memory:", engine="system", detect_types=sqlnb.PARSE_COLNAMES).close()


def test_converter_gets_sqlites_text_of_numbers(engine, tmp_path):
    con, ref = pair(engine, tmp_path, sqlnb.PARSE_COLNAMES)
    for reg in (sqlnb.register_converter, sqlite3.register_converter):
        reg("raw", bytes)
    values = [0.1 + 0.2, 1 / 3, 100.0, -0.0, 1e20, 1e-7, 2.5e-300, float("inf"), float("-inf"), 2**63 - 1, -5, 123456.789]
    for v in values:
        sql = 'SELECT ? AS "v [raw]"'
        assert con.execute(sql, (v,)).fetchone() == ref.execute(sql, (v,)).fetchone(), v
