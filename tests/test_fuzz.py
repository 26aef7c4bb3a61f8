"""Property-based tests (hypothesis): values, parameter binding and type round-trips on every
engine against the stdlib ``sqlite3`` as oracle, and the magic's line/cell parsing.

The oracle runs the same SQL with the same values; both must agree on the values
and their Python types (SQLite's own type rules decide, so an engine that bends
them shows up here). The DataFrame-level type rules are fuzzed with the fetcher.

``SQLNB_FUZZ_EXAMPLES`` sets the number of examples (``tools/memcheck.py`` lowers it
under valgrind).
"""
from __future__ import annotations

import math
import os
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlnb
from sqlnb import errors

EXAMPLES = int(os.environ.get("SQLNB_FUZZ_EXAMPLES", "150"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("CI", "") == "true",
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

ENGINES = ("sqlite", "bdb", "system")
_CONS: dict = {}


def con_for(engine: str):
    """One in-memory connection per engine for the whole module (hypothesis calls the body many times)."""
    if engine not in _CONS:
        info = {e.name: e for e in sqlnb.engines()}[engine]
        if not info.available:
            pytest.skip(f"engine {engine!r} unavailable: {info.why}")
        _CONS[engine] = sqlnb.connect(":memory:", engine=engine, isolation_level=None)
    return _CONS[engine]


_ORACLE = sqlite3.connect(":memory:", isolation_level=None)


def oracle(sql, params=()):
    return _ORACLE.execute(sql, params).fetchall()


def same(a, b) -> bool:
    """Equal values of the same Python type (floats compared bit-for-bit, NaN never occurs: SQLite stores NULL)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) if a == 0 else a == b
    return a == b


def same_rows(r1, r2) -> bool:
    return len(r1) == len(r2) and all(len(x) == len(y) and all(map(same, x, y)) for x, y in zip(r1, r2))


int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats = st.floats(allow_nan=True, allow_infinity=True)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)  # no lone surrogates
blobs = st.binary(max_size=80)
values = st.one_of(st.none(), st.booleans(), int64, floats, text, blobs,
                   st.sampled_from([0, -1, 2**63 - 1, -(2**63), 0.0, -0.0, 1e308, -1e-308, "", b"", "0", "1.5",
                                    " 12 ", "1e3", "0x10", "NaN", "inf", "١٢", "abc\x00def", b"\x00"]))


def expected(v):
    """What the stdlib gives back for ``select ?``: bool binds as int, NaN as NULL, bytearray as bytes."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


# --- values and binding -------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@fuzz
@given(row=st.lists(values, min_size=1, max_size=12))
def test_select_parameters_round_trip(engine, row):
    con = con_for(engine)
    sql = "select " + ", ".join("?" for _ in row)
    got = con.execute(sql, row).fetchall()
    want = oracle(sql, row)
    assert same_rows(got, want), (got, want)
    assert same_rows(got, [tuple(expected(v) for v in row)])
    types = "select " + ", ".join("typeof(?)" for _ in row)
    assert con.execute(types, row).fetchall() == oracle(types, row)


@pytest.mark.parametrize("engine", ENGINES)
@fuzz
@given(data=st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True), values,
                            min_size=1, max_size=8),
       prefixes=st.lists(st.sampled_from([":", "$", "@"]), min_size=8, max_size=8),
       extra=st.dictionaries(st.text(max_size=5), st.builds(object), max_size=3))
def test_named_parameters(engine, data, prefixes, extra):
    """Named parameters (:x, $x, @x) take their value by name; unused names (of any type) are ignored."""
    con = con_for(engine)
    names = sorted(data)
    sql = "select " + ", ".join(f"{p}{n}" for p, n in zip(prefixes, names))
    mapping = {**{k: v for k, v in extra.items() if k not in data}, **data}
    got = con.execute(sql, mapping).fetchall()
    assert same_rows(got, oracle(sql, data)), (got, oracle(sql, data))
    assert same_rows(got, [tuple(expected(data[n]) for n in names)])


@pytest.mark.parametrize("engine", ENGINES)
@fuzz
@given(rows=st.lists(st.tuples(values, values, values), min_size=0, max_size=30),
       decl=st.tuples(*[st.sampled_from(["", "INTEGER", "REAL", "TEXT", "BLOB", "NUMERIC", "INT", "VARCHAR(10)",
                                         "DOUBLE", "BOOLEAN", "DATE"])] * 3))
def test_table_round_trip_with_affinity(engine, rows, decl):
    """executemany + select * through declared column types: SQLite's affinity rules, as the oracle applies them."""
    con = con_for(engine)
    ddl = f"create table t(a {decl[0]}, b {decl[1]}, c {decl[2]})"
    con.execute("drop table if exists t")
    con.execute(ddl)
    _ORACLE.execute("drop table if exists t")
    _ORACLE.execute(ddl)
    con.executemany("insert into t values (?, ?, ?)", rows)
    _ORACLE.executemany("insert into t values (?, ?, ?)", rows)
    q = "select a, b, c, typeof(a), typeof(b), typeof(c) from t order by rowid"
    got, want = con.execute(q).fetchall(), oracle(q)
    if not any(isinstance(v, float) for r in rows for v in r):
        assert same_rows(got, want), (ddl, got, want)
    else:
        # REAL -> TEXT conversion differs between SQLite versions (3.47 made it round-trip
        # exactly; bdb's 3.7 core and the stdlib's 3.40 do not): compare the storage
        # classes, and every value not stored as text
        assert [r[3:] for r in got] == [r[3:] for r in want], (ddl, got, want)
        for g, w in zip(got, want):
            for i in range(3):
                if g[3 + i] != "text":
                    assert same(g[i], w[i]), (ddl, g, w)


@pytest.mark.parametrize("engine", ENGINES)
@fuzz
@given(rows=st.lists(st.tuples(int64, text, blobs, floats), min_size=0, max_size=60),
       sizes=st.lists(st.integers(min_value=0, max_value=25), min_size=1, max_size=6))
def test_fetch_methods_agree(engine, rows, sizes):
    """fetchone / fetchmany(n) / iteration / fetchall return the same rows in the same order."""
    con = con_for(engine)
    con.execute("drop table if exists f")
    con.execute("create table f(i, s, b, x)")
    con.executemany("insert into f values (?, ?, ?, ?)", rows)
    q = "select * from f order by rowid"
    everything = con.execute(q).fetchall()
    assert same_rows(everything, [tuple(expected(v) for v in r) for r in rows])
    cur = con.execute(q)
    mixed = []
    for n in sizes:
        mixed.extend(cur.fetchmany(n))
        one = cur.fetchone()
        if one is not None:
            mixed.append(one)
    mixed.extend(cur)
    assert same_rows(mixed, everything)
    assert cur.fetchone() is None and cur.fetchall() == []


BAD_VALUES = st.one_of(st.builds(object), st.lists(st.integers(), max_size=2), st.sets(st.integers(), max_size=2),
                       st.dictionaries(st.text(max_size=2), st.integers(), max_size=2), st.complex_numbers(),
                       st.decimals(allow_nan=False), st.integers(min_value=2**63),
                       st.integers(max_value=-(2**63) - 1), st.text(st.characters(whitelist_categories=("Cs",)),
                                                                    min_size=1, max_size=3))


@pytest.mark.parametrize("engine", ENGINES)
@fuzz
@given(good=st.lists(values, max_size=4), bad=BAD_VALUES, pos=st.integers(min_value=0, max_value=4))
def test_unbindable_values_fail_cleanly(engine, good, bad, pos):
    """A value sqlnb cannot bind: TypeError/OverflowError/UnicodeEncodeError naming what failed; the
    connection stays usable."""
    con = con_for(engine)
    row = list(good)
    pos = min(pos, len(row))
    row.insert(pos, bad)
    sql = "select " + ", ".join("?" for _ in row)
    with pytest.raises((errors.BindError, OverflowError, UnicodeEncodeError)) as info:
        con.execute(sql, row).fetchall()
    exc = info.value
    if isinstance(exc, (errors.BindError, OverflowError)):
        assert f"parameter {pos + 1}" in str(exc), str(exc)
    assert con.execute("select 1").fetchone() == (1,)


@pytest.mark.parametrize("engine", ENGINES)
@fuzz
@given(s=st.text(st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF), min_size=1, max_size=5)
       .map(lambda t: "x" + t))
def test_surrogateescape_text_round_trips(engine, s):
    """Text holding undecodable bytes (as sqlite/bdb return it) binds back to the same bytes."""
    if engine == "system":
        with pytest.raises(UnicodeEncodeError):
            con_for(engine).execute("select ?", (s,)).fetchall()
        return
    con = con_for(engine)
    raw = s.encode("utf-8", "surrogateescape")
    assert con.execute("select hex(?)", (s,)).fetchone() == (raw.hex().upper(),)
    (back,) = con.execute("select cast(? as text)", (raw,)).fetchone()
    assert back.encode("utf-8", "surrogateescape") == raw  # lossless (valid UTF-8 runs decode normally)


# --- the magic's line and cell parsing -----------------------------------------------------------
def _magics():
    try:
        from sqlnb import magics  # noqa: F401
        from IPython.core.error import UsageError  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the magics module is part of the package
        pytest.fail(f"sqlnb.magics is not importable: {exc}")
    from IPython.core.error import UsageError

    from sqlnb import magics

    return magics, UsageError


OPTION_WORDS = ["-e", "--engine", "--mode", "-o", "--out", "--connect", "--alias", "--use", "--close",
                "--connections", "--limit", "--timeout", "--tables", "--columns", "--describe", "--plan",
                "--export", "--persist", "--table", "--append", "--replace", "--", "-", "--help", "-x",
                "--limit=3", "--mode=ro", "--engine=bdb", "--bogus", "<<", "df", ":memory:",
                "sqlite:///:memory:", "system:///:memory:", "bdb:///x.db", "lsm:///x.lsm", "ro", "rw", "sqlite",
                "'", '"', "\\", "'a b'", '"c d"', "=", "1", "-1", "1e9", "nan", "x.db"]
SQL_WORDS = ["select", "1", "*", "from", "t", "where", ":a", "$b", "@c", "?", "?2", ":1", "'", "--", "/*", "*/",
             ";", "create", "table", "insert", "into", "values", "(", ")", ",", "pragma", "explain", "with",
             "begin", "commit", "rollback", "drop", "attach", "'x'", "\n", "\t", "\x00", "é", "sqlite_master"]

tokens = st.one_of(st.sampled_from(OPTION_WORDS), st.sampled_from(SQL_WORDS), st.text(max_size=6))
lines = st.lists(tokens, max_size=10).map(" ".join)
cells = st.lists(st.one_of(st.sampled_from(SQL_WORDS), st.text(max_size=8)), max_size=25).map(" ".join)


@fuzz
@given(line=st.one_of(lines, st.text(max_size=40)))
def test_split_line_never_raises(line):
    magics, _ = _magics()
    opts, rest = magics.split_line(line)
    assert line.startswith(opts) and line.endswith(rest)
    if not line.lstrip().startswith("-"):
        assert (opts, rest) == ("", line)


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    _magics()
    from tests.magics_shell import close_shell, new_shell

    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("magic-fuzz"))  # any file a random line names lands here
    sh = new_shell()
    sh.user_ns.update(a=1, b="two", c=None, df=None)
    yield sh
    close_shell(sh)
    os.chdir(cwd)


def _run_magic(shell, line, cell):
    magics, UsageError = _magics()
    allowed = (UsageError, errors.Error, OverflowError)
    try:
        if cell is None:
            shell.run_line_magic("sql", line)
        else:
            shell.run_cell_magic("sql", line, cell)
    except allowed:
        pass
    # anything else (TypeError, AttributeError, IndexError, SystemExit...) fails the test


@fuzz
@given(line=lines)
def test_magic_line_only_raises_usage_or_sql_errors(shell, line):
    _run_magic(shell, line, None)


@fuzz
@given(line=st.one_of(st.just(""), lines), cell=st.one_of(cells, st.text(max_size=60)))
def test_magic_cell_only_raises_usage_or_sql_errors(shell, line, cell):
    _run_magic(shell, line, cell)
