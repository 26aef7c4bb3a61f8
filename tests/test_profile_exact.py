"""The exact profile's C path (sqlnb/_core/profile_exact.h, sqlnb/look/exact.py), on sqlite and bdb.

tests/test_profile.py checks every statistic of both paths against pandas on small tables, where each
column fits the C path's exact table. Here the sizes are turned down (``exact.SETTINGS``) so that
what big columns do is reached on small data and checked against the same oracle:

* the arrays and hashes a column keeps past its table (``table_max`` down to 1), on every
  storage-class mix and on random columns (hypothesis);
* the most common values, ties in SQLite's order, found by the second read, or without it when
  every TEXT/BLOB value is distinct;
* hash collisions (hashes cut to 3 bits): caught by the second read, the column left to plain SQL,
  the numbers still exact;
* the memory budget: columns deferred to later reads, a column too big alone left to plain SQL, and
  the memory all given back (also after a time limit stopped the read);
* values that change between the two reads (a source with a side effect): left to plain SQL;
* bad arguments to the three SQL functions: one clear error, no crash.
"""
from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlnb
from sqlnb import errors
from sqlnb.look import exact as E
from sqlnb.look import profile as P
from sqlnb.look import sketch as S
from tests.conftest import interrupt_at_call, need_engine
from tests.test_profile import NULLS, _cls, _fill, check, fill_mixes


@pytest.fixture(params=("sqlite", "bdb"))
def ccon(request, tmp_path):
    need_engine(request.param)
    if request.param == "bdb":
        request.node.add_marker(pytest.mark.bdb)
    c = sqlnb.connect(str(tmp_path / "t.db"), engine=request.param)
    yield c
    c.close()


def sizes(monkeypatch, **kw):
    for key, value in kw.items():
        monkeypatch.setitem(E.SETTINGS, key, value)


def used_bytes(con) -> int:
    """What the C functions hold now (``sqlnb_profile_config`` answers it; the sizes set are the defaults)."""
    s = E.SETTINGS
    return con.execute("SELECT sqlnb_profile_config(?, ?, ?, 5, 64)",
                       (s["budget"], s["table_max"], s["arena_max"])).fetchone()[0]


def top_in_order(row, values, top=5, label=""):
    """The most common values exactly: count descending, then SQLite's order (an INTEGER before an equal REAL)."""
    counts = Counter((_cls(v), v) for v in values if v is not None)
    want = sorted(((v, n) for (_, v), n in counts.items()),
                  key=lambda g: (-g[1], S.order_key(g[0]), isinstance(g[0], float)))[:top]
    got = row["top"]
    assert [n for _, n in got] == [n for _, n in want], (label, got, want)
    assert all(type(a) is type(b) and a == b for (a, _), (b, _) in zip(got, want)), (label, got, want)


def every_column_exact(df, cols: dict, label: str = "", top: int = 5):
    """Each column of ``df`` (a profile of ``cols``) holds the oracle's numbers and common values."""
    for (_, row), (name, values) in zip(df.iterrows(), cols.items()):
        check(row, values, f"{label}{name}")
        top_in_order(row, values, top=top, label=f"{label}{name}")


def dups_and_ties(rng: random.Random, n: int) -> dict:
    """Columns whose common values tie: TEXT with counts 1-4, BLOBs, numbers with ties, a mix."""
    texts = [f"t{rng.randrange(n // 3):05d}" for _ in range(n)]
    return {
        "text": texts,
        "unique": [f"u{i:06d}" for i in rng.sample(range(10 * n), n)],
        "blob": [bytes([rng.randrange(40)]) * rng.randrange(1, 3) for _ in range(n)],
        "ints": [rng.randrange(n // 4) for _ in range(n)],
        "reals": [rng.randrange(n // 4) / 4 for _ in range(n)],
        "mixed": [rng.choice([rng.randrange(30), rng.randrange(30) + 0.5, f"s{rng.randrange(30)}",
                              bytes([rng.randrange(30)]), None]) for _ in range(n)],
    }


@pytest.mark.parametrize("table_max", [1, 3, 64])
@pytest.mark.parametrize("nulls", sorted(NULLS))
def test_big_columns_on_every_storage_class_mix(ccon, monkeypatch, table_max, nulls):
    """Past the table (1 and 3 distinct values: every mix spills; 64: none does) the same numbers."""
    sizes(monkeypatch, table_max=table_max)
    columns = fill_mixes(ccon, nulls)
    df = sqlnb.profile(ccon, "t")
    assert df.attrs["sql_columns"] == []
    for (_, row), (name, values) in zip(df.iterrows(), columns.items()):
        label = f"{ccon.engine}/{name}/{nulls}/{table_max}"
        check(row, values, label, exact_sum=True)
        top_in_order(row, values, label=label)


@pytest.mark.parametrize("table_max", [1, 50, 65536])
def test_common_values_and_their_ties(ccon, monkeypatch, table_max):
    """3,000 rows with many ties at the fifth count: the top 5 (and 1, and 12) in SQLite's order. A
    big TEXT column with repeated values needs the second read; one whose values are all distinct
    does not (its smallest values were kept on the way)."""
    sizes(monkeypatch, table_max=table_max)
    cols = dups_and_ties(random.Random(table_max), 3000)
    _fill(ccon, "d", cols)
    for top in (5, 1, 12):
        df = sqlnb.profile(ccon, "d", top=top)
        assert df.attrs["sql_columns"] == []
        for (_, row), (name, values) in zip(df.iterrows(), cols.items()):
            top_in_order(row, values, top=top, label=f"{name}/{table_max}/{top}")
            if top == 5:
                check(row, values, f"{ccon.engine}/{name}/{table_max}")
    only_unique = sqlnb.profile(ccon, 'SELECT "unique" FROM d')
    assert only_unique.attrs["scans"] == 1
    only_text = sqlnb.profile(ccon, "SELECT text FROM d")
    assert only_text.attrs["scans"] == (2 if table_max < 1000 else 1)


@pytest.mark.parametrize("table_max", [1, 16, 65536])
def test_text_in_order_needs_no_second_read(ccon, monkeypatch, table_max):
    """TEXT (then BLOB) values arriving in order, repeated (a timestamp column): their groups are runs,
    counted on the way: exact, and no second read. One value out of order at the end sends the
    column back to its hashes (and a second read, its values repeating)."""
    sizes(monkeypatch, table_max=table_max)
    rng = random.Random(3)
    stamps = sorted(f"2024-01-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}" for _ in range(3000))
    tail = sorted(bytes([rng.randrange(5)]) for _ in range(200))
    cols = {"ts": stamps + tail, "n": [rng.choice([None, 1, 2.5]) for _ in range(3200)]}
    _fill(ccon, "o", cols)
    df = sqlnb.profile(ccon, "o")
    assert df.attrs["sql_columns"] == [] and df.attrs["scans"] == 1
    every_column_exact(df, cols)
    late = stamps + ["2023-12-31T00"]
    _fill(ccon, "late", {"ts": late})
    df = sqlnb.profile(ccon, "late")
    assert df.attrs["scans"] == (2 if table_max < 1000 else 1)
    check(df.iloc[0], late, "late")
    top_in_order(df.iloc[0], late, label="late")


def test_second_read_in_batches(ccon, monkeypatch):
    """Five big TEXT columns whose values repeat in no order, two a statement of the second read (one
    bound spec per column: bdb takes 999 a statement): 1 + 3 reads, every column exact."""
    sizes(monkeypatch, table_max=1)
    monkeypatch.setattr(E, "PICKS", 2)
    rng = random.Random(11)
    cols = {f"s{j}": [f"v{rng.randrange(300)}" for _ in range(1500)] for j in range(5)}
    _fill(ccon, "p", cols)
    df = sqlnb.profile(ccon, "p")
    assert df.attrs["sql_columns"] == [] and df.attrs["scans"] == 4
    every_column_exact(df, cols)


def test_hash_collisions_are_caught(ccon, monkeypatch):
    """TEXT hashes cut to 3 bits: 400 distinct values share 8 hashes. The second read sees two values
    under one hash and the column is profiled again with plain SQL: exact all the same. The numeric
    column beside it stays in C."""
    sizes(monkeypatch, table_max=1, hash_bits=3)
    rng = random.Random(7)
    cols = {"s": [f"v{rng.randrange(400)}" for _ in range(2000)], "x": [rng.randrange(100) for _ in range(2000)],
            "b": [bytes([rng.randrange(200)]) for _ in range(2000)]}
    _fill(ccon, "c", cols)
    df = sqlnb.profile(ccon, "c")
    assert df.attrs["sql_columns"] == ["s", "b"]
    every_column_exact(df, cols)
    # with all 64 bits the same columns need no plain SQL
    sizes(monkeypatch, hash_bits=64)
    assert sqlnb.profile(ccon, "c").attrs["sql_columns"] == []


def test_memory_budget_defers_columns(ccon, monkeypatch):
    """A 64 KiB budget and 6 columns of 3,000 distinct numbers (24 KB of array each): the columns that do
    not fit are read again in smaller groups; a 12,000-row column (96 KB) does not fit alone and is
    left to plain SQL. Every number exact; every byte given back."""
    sizes(monkeypatch, budget=64 << 10, table_max=16)
    n = 3000
    cols = {f"c{j}": [(i * 7919 + j) % n for i in range(n)] for j in range(6)}
    _fill(ccon, "m", cols)
    df = sqlnb.profile(ccon, "m")
    assert df.attrs["sql_columns"] == []
    assert df.attrs["scans"] > 1   # the deferred columns were read again
    for (_, row), (name, values) in zip(df.iterrows(), cols.items()):
        check(row, values, name)
    _fill(ccon, "huge", {"h": list(range(4 * n)), "small": [i % 10 for i in range(4 * n)]})
    df = sqlnb.profile(ccon, "huge")
    assert df.attrs["sql_columns"] == ["h"]
    check(df.iloc[0], list(range(4 * n)), "h")
    check(df.iloc[1], [i % 10 for i in range(4 * n)], "small")
    assert used_bytes(ccon) == 0


def test_values_that_change_between_reads(ccon, monkeypatch):
    """A source whose values differ at each read (a function with a side effect): the second read
    sees other values than the first counted and the column goes to plain SQL, no wrong answer."""
    sizes(monkeypatch, table_max=1)
    ticks = itertools.count()
    ccon.create_function("tick", 0, lambda: next(ticks))
    _fill(ccon, "r", {"a": list(range(1000))})
    df = sqlnb.profile(ccon, "SELECT 'v' || (tick() / 2) AS s FROM r")
    assert df.attrs["sql_columns"] == ["s"]
    assert df.loc[0, "rows"] == 1000 and df.loc[0, "text"] == 1000


def test_another_connection_commits_between_the_reads(ccon, monkeypatch, tmp_path):
    """A second connection to the file commits 500 rows just before the second read (the hook: the
    read's statement is being built). The second read sees values the first did not count, so that
    column is profiled again with plain SQL, at the new state; the columns the first read finished
    keep its state. Nothing is wrong: each column is exact for a committed state of the table."""
    sizes(monkeypatch, table_max=1)
    rng = random.Random(5)
    n = 2000
    _fill(ccon, "w", {"s": [f"v{rng.randrange(300)}" for _ in range(n)], "x": list(range(n))})
    path = str(tmp_path / "t.db")
    real = E.pick_statement

    def commit_first(src, names):
        other = sqlnb.connect(path, engine=ccon.engine)
        other.executemany("INSERT INTO w VALUES (?, ?)", [(f"new{i}", -i) for i in range(500)])
        other.commit()
        other.close()
        return real(src, names)

    monkeypatch.setattr(E, "pick_statement", commit_first)
    df = sqlnb.profile(ccon, "w").set_index("column")
    assert df.attrs["sql_columns"] == ["s"]
    assert df.loc["s", "rows"] == n + 500
    assert df.loc["s", "distinct"] == ccon.execute("SELECT count(DISTINCT s) FROM w").fetchone()[0]
    assert df.loc["x", "rows"] == n and df.loc["x", "min"] == 0
    monkeypatch.setattr(E, "pick_statement", real)
    again = sqlnb.profile(ccon, "w").set_index("column")
    assert again.attrs["sql_columns"] == [] and again.loc["x", "rows"] == n + 500 and again.loc["x", "min"] == -499


def test_a_stopped_read_gives_its_memory_back(ccon, monkeypatch):
    """A read of 10^9 rows stopped by a 0.3 s time limit (only the limit can end it) while its columns
    grow arrays: SQLite ends the aggregate, which frees them; the connection answers afterwards."""
    from sqlnb.notebook import look

    sizes(monkeypatch, table_max=1)
    ccon.execute("CREATE TABLE t (x INTEGER)")
    ccon.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    ccon.commit()
    with pytest.raises(errors.QueryTimeoutError):
        look.run_profile(ccon, "SELECT a.x AS x, b.x || 's' AS y FROM t a, t b, t c", timeout=0.3)
    assert used_bytes(ccon) == 0
    assert ccon.execute("SELECT count(*) FROM t").fetchone() == (1000,)


@pytest.mark.parametrize("stall_at", [5_000, 15_000])
def test_interrupt_in_either_read(ccon, tmp_path, monkeypatch, stall_at):
    """The source calls a Python function that stops at a known call until the test has called
    interrupt(): at call 5,000 the first read is running, at 15,000 the second (the first made
    10,000). The profile ends with InterruptError there, the memory is given back, and the connection
    answers afterwards."""
    sizes(monkeypatch, table_max=1)
    con = sqlnb.connect(str(tmp_path / "i.db"), engine=ccon.engine, check_same_thread=False)
    _fill(con, "t", {"x": list(range(100))})
    sql = "SELECT mark(a.x) || 's' AS y FROM t a, t b"
    out, calls = interrupt_at_call(con, stall_at, lambda: sqlnb.profile(con, sql))
    assert isinstance(out.get("exc"), errors.InterruptError), out
    assert used_bytes(con) == 0
    assert con.execute("SELECT count(*) FROM t").fetchone() == (100,)
    calls[0] = -10**9   # no more stalls: the same profile runs to its end with both reads
    df = sqlnb.profile(con, sql)
    assert df.attrs["scans"] == 2 and df.attrs["sql_columns"] == []
    assert df.loc[0, "distinct"] == 100 and df.loc[0, "top"][0] == ("0s", 100)
    con.close()


@pytest.mark.parametrize("sql, message", [
    ("SELECT sqlnb_profile_pick(1, X'00')", "sqlnb_profile_pick: the spec is not one sqlnb_profile_exact wrote"),
    ("SELECT sqlnb_profile_pick('a', X'534E5331010000000500000000000000')",
     "sqlnb_profile_pick: the spec is not one sqlnb_profile_exact wrote"),
    ("SELECT sqlnb_profile_pick('a', 'text')", "sqlnb_profile_pick: the spec is not one sqlnb_profile_exact wrote"),
    ("SELECT sqlnb_profile_config(0, 1, 1, 1, 64)", "sqlnb_profile_config: an argument is not an integer in its range"),
    ("SELECT sqlnb_profile_config('a', 1, 1, 1, 64)", "sqlnb_profile_config: an argument is not an integer in its range"),
    ("SELECT sqlnb_profile_exact()", "sqlnb_profile_exact needs at least one value"),
])
def test_bad_arguments_are_one_clear_error(ccon, sql, message):
    ccon.backend.install_c_aggregates(ccon)
    with pytest.raises(errors.Error) as info:
        ccon.execute(sql).fetchall()
    assert message in str(info.value)
    assert ccon.execute("SELECT 1").fetchone() == (1,)


def test_a_spec_cut_short_is_refused(ccon, monkeypatch):
    """The real spec of a column, cut at every length: an error every time, never a crash."""
    sizes(monkeypatch, table_max=1)
    _fill(ccon, "s", {"s": [f"v{i % 40}" for i in range(200)]})
    ccon.backend.install_c_aggregates(ccon)
    src = P.resolve(ccon, "s", None)
    run = P._Runner(ccon)
    E.configure(run, 5)
    spec = E.unpack(run.rows(E.statement(src, ["s"]))[0][0], 1)[0]["spec"]
    assert spec is not None
    for cut in sorted({0, 4, 8, 16, 47, 48, len(spec) // 2, len(spec) - 16, len(spec) - 1}):
        with pytest.raises(errors.Error, match="the spec is not one sqlnb_profile_exact wrote"):
            ccon.execute('SELECT sqlnb_profile_pick(s, ?) FROM s', (spec[:cut],)).fetchall()
    got = E.unpack_pick(ccon.execute('SELECT sqlnb_profile_pick(s, ?) FROM s', (spec,)).fetchone()[0])
    assert not got["collision"] and not got["changed"]


values = st.one_of(
    st.none(), st.integers(-5, 5), st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0.5, -0.0, 0.0, 1.0, 2.0, 1e300, -2.5]), st.text("ab\u00e9\x00", max_size=3),
    st.binary(max_size=2),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.lists(values, min_size=1, max_size=60), min_size=1, max_size=4),
       table_max=st.sampled_from([1, 2, 8, 1000]))
def test_random_columns_against_the_oracle(ccon, data, table_max):
    E.SETTINGS["table_max"] = table_max
    try:
        n = max(map(len, data))
        cols = {f"c{j}": col + [None] * (n - len(col)) for j, col in enumerate(data)}
        ccon.execute("DROP TABLE IF EXISTS h")
        _fill(ccon, "h", cols)
        df = sqlnb.profile(ccon, "h")
        assert df.attrs["sql_columns"] == []
        for (_, row), (name, vals) in zip(df.iterrows(), cols.items()):
            check(row, vals, f"{name}/{table_max}", exact_sum=True)   # the C path always sums with compensation
            top_in_order(row, vals, label=f"{name}/{table_max}")
    finally:
        E.SETTINGS["table_max"] = 65536
