"""What a fetched column must look like, written independently of sqlnb.frames.

Given the Python values the stdlib ``sqlite3`` returns for a column, ``check_column``
asserts the DataFrame column follows the documented type rules (docs/types.md)
and holds exactly those values.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def expected_kind(values) -> str:
    types = {type(v) for v in values if v is not None}
    if not types:
        return "null"
    if types == {int}:
        return "int"
    if types == {float}:
        return "float"
    if types == {int, float}:
        return "float" if all(float(v) == v for v in values if type(v) is int) else "object"
    if types == {str}:
        return "text" if all(_utf8(v) for v in values if v is not None) else "object"
    if types == {bytes}:
        return "blob"
    return "object"


def _utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _same_float(a, b) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def check_column(series: pd.Series, values: list, label: str = "") -> None:
    kind = expected_kind(values)
    n = len(values)
    assert len(series) == n, label
    has_null = any(v is None for v in values)
    if kind == "int":
        if has_null:
            assert str(series.dtype) == "Int64", (label, series.dtype)
            got = [None if x is pd.NA else int(x) for x in series.array]
        else:
            assert series.dtype == np.int64, (label, series.dtype)
            got = [int(x) for x in series.to_numpy()]
        assert got == values, label
    elif kind == "float":
        assert series.dtype == np.float64, (label, series.dtype)
        arr = series.to_numpy()
        for x, v in zip(arr, values):
            want = math.nan if v is None else float(v)
            assert _same_float(float(x), want), (label, x, v)
    elif kind == "text":
        assert isinstance(series.dtype, pd.StringDtype), (label, series.dtype)
        assert series.dtype.storage == "pyarrow", (label, series.dtype)
        got = [None if (x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))) else x
               for x in series.tolist()]
        assert got == values, label
    else:  # blob, object, null: object column of exactly the stdlib's values
        assert series.dtype == object, (label, series.dtype)
        for x, v in zip(series.tolist(), values):
            assert type(x) is type(v), (label, x, v)
            if isinstance(v, float):
                assert _same_float(x, v), (label, x, v)
            else:
                assert x == v, (label, x, v)


def check_frame(df: pd.DataFrame, names: list, rows: list, label: str = "") -> None:
    assert list(df.columns) == list(names), (label, list(df.columns), names)
    assert len(df) == len(rows), label
    if not rows:  # dtypes of empty results come from declared types (test_fetch.py checks those)
        return
    for i in range(len(names)):
        check_column(df.iloc[:, i], [r[i] for r in rows], f"{label} column {i} ({names[i]})")
