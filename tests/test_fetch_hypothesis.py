"""Round trips against the stdlib sqlite3 as oracle: random schemas, storage-class mixes, NULL patterns.

The table is written with the stdlib (so the data do not depend on sqlnb); the stdlib's
fetchall is the oracle; query_df and query_arrow must follow the documented rules with
exactly those values. The bdb engine cannot read a SQLite file, so it writes the same
rows itself; its 3.7.6 core stores some conversions unlike the stdlib's (a REAL in a TEXT
column is formatted differently), so there its own row cursor is the oracle.

The shapes reach past the fetcher's initial buffers (1,024 rows, 64 KiB of TEXT/BLOB data:
``_ROWS0``/``_DATA0`` in sqlnb/_core/fetch.pxi): up to thousands of rows, and single values over
64 KiB. TEXT that is not valid UTF-8 (stored bytes with encoded surrogates, overlong forms, stray
continuation bytes) is written with ``CAST(? AS TEXT)``; the oracle reads it as sqlnb documents
(docs/types.md: ``surrogateescape``, so lone surrogates in Python).
"""
from __future__ import annotations

import math
import sqlite3

import pyarrow as pa
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import sqlnb
from tests.fetch_oracle import check_frame, expected_kind

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SMALL_INT = st.integers(min_value=-1000, max_value=1000)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
BLOBS = st.binary(max_size=20)


class AsText(bytes):
    """Bytes stored as TEXT (``CAST(? AS TEXT)``): how text that is not valid UTF-8 gets into a file."""


# pieces of not-quite-UTF-8: encoded surrogates (CESU-8), an overlong NUL, a code point past
# U+10FFFF, stray bytes, next to valid ASCII and 2-byte characters
BAD_UTF8 = st.lists(st.sampled_from([b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xc0\x80", b"\xf4\x90\x80\x80",
                                     b"\xff", b"\x80", b"a", b"\xc3\xa9"]), min_size=1, max_size=6
                    ).map(lambda parts: AsText(b"".join(parts)))
# single values larger than the fetcher's initial 64 KiB data buffer
BIG_TEXT = st.builds(lambda ch, n: ch * n, st.characters(blacklist_categories=("Cs",)), st.integers(65_537, 70_000))
BIG_BLOB = st.builds(lambda b, n: (b * n)[:n], st.binary(min_size=1, max_size=3), st.integers(65_537, 70_000))
CLASS = {"int": st.one_of(I64, SMALL_INT), "real": FLOATS, "text": st.one_of(TEXT, TEXT, BAD_UTF8),
         "blob": BLOBS}
DECL = st.sampled_from(["", "INTEGER", "REAL", "TEXT", "BLOB", "NUMERIC", "VARCHAR(5)", "DATE"])


@st.composite
def tables(draw):
    ncol = draw(st.integers(1, 5))
    nrows = draw(st.integers(0, 40))
    cols = []
    for _ in range(ncol):
        classes = draw(st.lists(st.sampled_from(sorted(CLASS)), min_size=1, max_size=3, unique=True))
        null_rate = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]))
        value = st.one_of(*[CLASS[c] for c in classes])
        cells = draw(st.lists(st.tuples(st.floats(0, 1), value), min_size=nrows, max_size=nrows))
        cols.append([draw(DECL), [None if r < null_rate else v for r, v in cells]])
    if nrows:
        # one value past 64 KiB, sometimes
        big = draw(st.one_of(st.none(), BIG_TEXT, BIG_BLOB))
        if big is not None:
            cols[draw(st.integers(0, ncol - 1))][1][draw(st.integers(0, nrows - 1))] = big
        # and the rows repeated past the initial 1,024-row capacity, sometimes (up to 4,800 rows)
        repeat = draw(st.sampled_from([1, 1, 1, 30, 120]))
        for col in cols:
            col[1] = col[1] * repeat
    return [tuple(c) for c in cols]


def _create(con, cols):
    decls = ", ".join(f"c{i} {d}" for i, (d, _) in enumerate(cols))
    con.execute(f"CREATE TABLE t ({decls})")
    rows = list(zip(*[vals for _, vals in cols])) if cols[0][1] else []
    by_sql = {}
    for row in rows:  # invalid UTF-8 goes in as bytes cast to TEXT
        marks = ", ".join("CAST(? AS TEXT)" if isinstance(v, AsText) else "?" for v in row)
        by_sql.setdefault(marks, []).append(tuple(bytes(v) if isinstance(v, AsText) else v for v in row))
    for marks, group in by_sql.items():
        con.executemany(f"INSERT INTO t VALUES ({marks})", group)
    con.commit()


def _surrogateescape(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _stored(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _check_arrow(tbl, names, rows):
    assert tbl.column_names == names
    for j, name in enumerate(names):
        values = [r[j] for r in rows]
        got = tbl.column(j).to_pylist()
        kind = expected_kind(values)
        if kind == "float":
            values = [None if v is None else float(v) for v in values]
        not_utf8 = any(isinstance(v, str) and _stored(v).decode("utf-8", "replace") != v for v in values)
        if not_utf8 and {type(v) for v in values if v is not None} == {str}:
            values = [None if v is None else _stored(v) for v in values]  # large_binary: the stored bytes
        elif not_utf8:  # in a union column: text with U+FFFD replacements
            values = [_stored(v).decode("utf-8", "replace") if isinstance(v, str) else v for v in values]
        for g, w in zip(got, values):
            if isinstance(w, float) and math.isnan(w):
                assert isinstance(g, float) and math.isnan(g)
            else:
                assert type(g) is type(w) and g == w, (name, g, w)
        if kind == "text":
            assert tbl.schema.field(j).type == pa.large_string()


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# the shapes the strategy reaches only sometimes, always: 2,400 rows (past 1,024), values past
# 64 KiB, TEXT with encoded surrogates alone and inside a mixed (union) column
BIG_EXAMPLE = [
    ("TEXT", ["x" * 70_000, AsText(b"a\xed\xa0\x80"), "\u00e9" * 40_000] + ["ok"] * 2397),
    ("", list(range(2400))),
    ("BLOB", [b"\x00\x01" * 33_000] + [None] * 2398 + [b""]),
    ("", [AsText(b"\xff\xed\xbf\xbf"), 1, b"z", "s", 2.5, None] * 400),
]


@SETTINGS
@example(cols=BIG_EXAMPLE)
@given(cols=tables())
def test_round_trip_against_stdlib(engine, tmp_path_factory, cols):
    path = tmp_path_factory.mktemp("h") / "h.db"
    if engine == "bdb":
        # its own file format, and its 3.7.6 core converts some values unlike the stdlib's 3.40 (a REAL
        # stored in a TEXT column is formatted differently): its own row cursor is the oracle there
        con = sqlnb.connect(str(path), engine="bdb")
        _create(con, cols)
        rows = con.execute("SELECT * FROM t ORDER BY rowid").fetchall()
    else:
        ref = sqlite3.connect(path)
        _create(ref, cols)
        ref.text_factory = _surrogateescape  # docs/types.md: how TEXT that is not UTF-8 reads
        rows = ref.execute("SELECT * FROM t ORDER BY rowid").fetchall()
        ref.close()
        con = sqlnb.connect(str(path), engine=engine)
    names = [f"c{i}" for i in range(len(cols))]
    event(f"rows > 1024: {len(rows) > 1024}")
    event(f"a value > 64 KiB: {any(isinstance(v, (str, bytes)) and len(v) > 65_536 for r in rows for v in r)}")
    event(f"TEXT not UTF-8: {any(isinstance(v, str) and _stored(v).decode('utf-8', 'replace') != v for r in rows for v in r)}")
    try:
        df = con.query_df("SELECT * FROM t ORDER BY rowid")
        check_frame(df, names, rows, engine)
        _check_arrow(con.query_arrow("SELECT * FROM t ORDER BY rowid"), names, rows)
        if rows:
            half = len(rows) // 2
            df = con.query_df("SELECT * FROM t ORDER BY rowid", limit=half)
            check_frame(df, names, rows[:half], f"{engine} limit")
    finally:
        con.close()


@SETTINGS
@given(values=st.lists(st.one_of(st.none(), I64, FLOATS, TEXT, BLOBS), max_size=30))
def test_expressions_match_stdlib(tmp_path_factory, values):
    """Values that come from expressions (no table, no declared type) on our engine and the stdlib."""
    sql = " UNION ALL ".join(["SELECT ? AS v"] * len(values)) or "SELECT 1 AS v WHERE 0"
    ref = sqlite3.connect(":memory:")
    rows = ref.execute(sql, values).fetchall()
    con = sqlnb.connect(":memory:", engine="sqlite")
    check_frame(con.query_df(sql, values), ["v"], rows)
    con.close()
