"""Every bind type, and the errors for values and parameter lists that do not fit."""
from __future__ import annotations

import decimal
import sqlite3

import numpy as np
import pytest

import sqlnb
from sqlnb import errors

VALUES = [
    None, True, False, 0, 1, -1, 2**63 - 1, -(2**63), 0.0, -0.0, 1.5, float("inf"), float("-inf"),
    1e-310, "", "text", "δέλτα ☃ 𝄞", "nul\x00inside", b"", b"\x00\xffbytes", bytearray(b"ba"),
    memoryview(b"mv"),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_bind_roundtrip_matches_stdlib(engine, value):
    con = sqlnb.connect(":memory:", engine=engine)
    ref = sqlite3.connect(":memory:")
    got = con.execute("SELECT ?, typeof(?)", (value, value)).fetchone()
    want = ref.execute("SELECT ?, typeof(?)", (value, value)).fetchone()
    assert got == want
    assert type(got[0]) is type(want[0])
    if isinstance(value, float) and value == 0:
        assert np.signbit(got[0]) == np.signbit(value)


def test_nan_binds_as_null(engine):
    # SQLite stores a NaN as NULL (as the stdlib does)
    con = sqlnb.connect(":memory:", engine=engine)
    assert con.execute("SELECT ? IS NULL", (float("nan"),)).fetchone() == (1,)


@pytest.mark.parametrize("value,typ", [(np.int64(5), "integer"), (np.int32(-3), "integer"),
                                       (np.float64(2.5), "real"), (np.bool_(True), "integer")])
def test_numpy_scalars(engine, value, typ):
    con = sqlnb.connect(":memory:", engine=engine)
    v, t = con.execute("SELECT ?, typeof(?)", (value, value)).fetchone()
    assert t == typ and v == value


@pytest.mark.parametrize("big", [2**63, -(2**63) - 1, 10**30])
def test_int_beyond_int64_is_overflow(engine, big):
    con = sqlnb.connect(":memory:", engine=engine)
    with pytest.raises(OverflowError):
        con.execute("SELECT ?", (big,))


class _Index:
    """An integer-like object (``__index__``) whose value does not fit 64 bits."""

    def __index__(self):
        return 2**64


@pytest.mark.parametrize("big", [np.uint64(2**64 - 1), np.uint64(2**63), _Index()], ids=repr)
def test_integer_likes_beyond_int64_are_overflow_everywhere(engine, big):
    """The one bind rule checks the converted value too: a numpy uint64 above 2**63-1 or an
    ``__index__`` object is refused by name, never wrapped around, as a parameter and in an
    exported object column."""
    import pandas as pd

    con = sqlnb.connect(":memory:", engine=engine)
    with pytest.raises(OverflowError, match="parameter 1: .* does not fit SQLite's 64-bit INTEGER"):
        con.execute("SELECT ?", (big,))
    with pytest.raises(OverflowError, match="column 'a', row 1"):
        con.to_table(pd.DataFrame({"a": pd.Series([1, big], dtype=object)}), "t")
    assert con.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


@pytest.mark.parametrize("bad", [object(), [1, 2], {"a": 1}, decimal.Decimal("1.5"), 1j])
def test_unsupported_type_is_clear_type_error(engine, bad):
    con = sqlnb.connect(":memory:", engine=engine)
    with pytest.raises(TypeError) as ei:
        con.execute("SELECT :value", {"value": bad})
    assert isinstance(ei.value, errors.ProgrammingError)
    assert "value" in str(ei.value) and type(bad).__name__ in str(ei.value)


def test_named_styles(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    row = con.execute("SELECT :a, :b, :a", {"a": 1, "b": "two"}).fetchone()
    assert row == (1, "two", 1)
    if engine != "system":  # the stdlib itself only resolves :name for mappings
        assert con.execute("SELECT $x || @y", {"x": "a", "y": "b"}).fetchone() == ("ab",)
        assert con.execute("SELECT ?2, ?1", ("first", "second")).fetchone() == ("second", "first")


def test_missing_named_parameter_is_named(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    with pytest.raises(errors.ProgrammingError, match="b"):
        con.execute("SELECT :a, :b", {"a": 1})


def test_wrong_number_of_qmark_values(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    with pytest.raises(errors.ProgrammingError, match="2.*1|bindings"):
        con.execute("SELECT ?, ?", (1,))
    with pytest.raises(errors.ProgrammingError):
        con.execute("SELECT ?", (1, 2))


def test_params_inside_literals_are_not_params(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    sql = "SELECT '{\"a\": \":1\"}', '[:2]', ? -- not :3 here\n"
    assert con.execute(sql, (7,)).fetchone() == ('{"a": ":1"}', "[:2]", 7)


def test_hostile_value_stays_data(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    con.execute("CREATE TABLE x (v)")
    evil = "'); DROP TABLE x; --"
    con.execute("INSERT INTO x VALUES (?)", (evil,))
    assert con.execute("SELECT v FROM x").fetchall() == [(evil,)]


def test_huge_text_and_blob(engine):
    con = sqlnb.connect(":memory:", engine=engine)
    text = "é" * 3_000_000
    blob = bytes(range(256)) * 40_000
    assert con.execute("SELECT ?, length(?)", (text, text)).fetchone() == (text, 3_000_000)
    assert con.execute("SELECT ?", (blob,)).fetchone() == (blob,)
