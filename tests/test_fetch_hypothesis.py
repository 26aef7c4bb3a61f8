"""Round trips against the stdlib sqlite3 as oracle: random schemas, storage-class mixes, NULL patterns.

The table is written with the stdlib (so the data do not depend on sqlnb); the stdlib's
fetchall is the oracle; query_df and query_arrow must follow the documented rules with
exactly those values. The bdb engine cannot read a SQLite file, so it writes the same
rows itself and its own cursor (already checked against the stdlib elsewhere) is the oracle.
"""
from __future__ import annotations

import math
import sqlite3

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlnb
from tests.fetch_oracle import check_frame, expected_kind

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SMALL_INT = st.integers(min_value=-1000, max_value=1000)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
BLOBS = st.binary(max_size=20)
CLASS = {"int": st.one_of(I64, SMALL_INT), "real": FLOATS, "text": TEXT, "blob": BLOBS}
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
        cols.append((draw(DECL), [None if r < null_rate else v for r, v in cells]))
    return cols


def _create(con, cols):
    decls = ", ".join(f"c{i} {d}" for i, (d, _) in enumerate(cols))
    con.execute(f"CREATE TABLE t ({decls})")
    rows = list(zip(*[vals for _, vals in cols])) if cols[0][1] else []
    if rows:
        con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(cols))})", rows)
    con.commit()


def _check_arrow(tbl, names, rows):
    assert tbl.column_names == names
    for j, name in enumerate(names):
        values = [r[j] for r in rows]
        got = tbl.column(j).to_pylist()
        kind = expected_kind(values)
        if kind == "float":
            values = [None if v is None else float(v) for v in values]
        for g, w in zip(got, values):
            if isinstance(w, float) and math.isnan(w):
                assert isinstance(g, float) and math.isnan(g)
            else:
                assert type(g) is type(w) and g == w, (name, g, w)
        if kind == "text":
            assert tbl.schema.field(j).type == pa.large_string()


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(cols=tables())
def test_round_trip_against_stdlib(engine, tmp_path_factory, cols):
    path = tmp_path_factory.mktemp("h") / "h.db"
    if engine == "bdb":
        con = sqlnb.connect(str(path), engine="bdb")
        _create(con, cols)
        rows = con.execute("SELECT * FROM t ORDER BY rowid").fetchall()
    else:
        ref = sqlite3.connect(path)
        _create(ref, cols)
        rows = ref.execute("SELECT * FROM t ORDER BY rowid").fetchall()
        ref.close()
        con = sqlnb.connect(str(path), engine=engine)
    names = [f"c{i}" for i in range(len(cols))]
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
