"""The approximate profile's one statement and its results: ``sqlnb_profile`` (the C aggregate of
``sqlnb/_core/profile_agg.h``) once per column, all columns in ONE read of the source.

``statement()`` builds ``SELECT sqlnb_profile(s."a", K, p, k, exact, copy), ... FROM (source) AS s``
with sizes from :func:`settings` (the defaults, scaled down when many columns share the statement so
that the sketches of all columns stay within :data:`BUDGET` bytes); :func:`unpack` reads the BLOB
each call returns (native byte order, the layout written by ``sqlnb_profile_final``).
:mod:`sqlnb.look.profile` turns those into the profile's rows (``profile(con, t, approx=True)``).
"""
from __future__ import annotations

import math
import struct

#: the sketches' sizes for a statement of few columns: reservoir sample of K numeric values,
#: 2^p HyperLogLog registers, k Misra-Gries counters, distinct values counted exactly up to
#: ``exact``, bytes of a TEXT/BLOB kept by a counter
DEFAULTS = {"K": 65536, "p": 14, "k": 256, "exact": 10000, "copy": 1024}
#: the floor the sizes are never scaled below
FLOORS = {"K": 1024, "p": 12, "k": 32, "exact": 256, "copy": 64}
#: bytes all columns' sketches may take together at most (what the sizes are scaled to)
BUDGET = 64 << 20

_HEAD = struct.Struct("=II" "q" "5q" "q" "dd" "qq" "qdq" "q" "6d" "qqq")
_I64 = struct.Struct("=q")
_F64 = struct.Struct("=d")
_LEN = struct.Struct("=qq")
CLASS_NAMES = ("null", "integer", "real", "text", "blob")


def column_bytes(s: dict) -> int:
    """The most one column's sketches take with sizes ``s`` (reservoir, registers, exact set at its
    largest, counters with their value copies and index)."""
    return 8 * s["K"] + (1 << s["p"]) + 32 * s["exact"] + s["k"] * (s["copy"] + 64) + 16 * s["k"]


def settings(ncols: int, top: int = 5) -> dict:
    """The sketches' sizes for ``ncols`` columns in one statement: the defaults, each scaled by the
    same factor (K to a power of two) until every column's worst case fits :data:`BUDGET`,
    never below :data:`FLOORS`; ``k`` at least 4 x ``top``."""
    ncols = max(int(ncols), 1)
    f = min(1.0, BUDGET / (ncols * column_bytes(DEFAULTS)))
    s = dict(DEFAULTS)
    if f < 1.0:
        k = 1 << max(int(math.log2(DEFAULTS["K"] * f)), 0)
        s["K"] = max(FLOORS["K"], min(DEFAULTS["K"], k))
        s["p"] = DEFAULTS["p"] if f >= 0.25 else FLOORS["p"]
        for key in ("k", "exact", "copy"):
            s[key] = max(FLOORS[key], int(DEFAULTS[key] * f))
    s["k"] = min(65536, max(s["k"], 4 * int(top)))
    return s


def statement(src, agg: str, names, s: dict) -> str:
    """The one statement: ``agg`` (the aggregate's SQL name) over every column of ``names``. The
    sizes are arguments only when they are not the aggregate's defaults: SQLite evaluates an
    aggregate's arguments, constants too, at every row (5 more opcodes a column a row)."""
    args = ""
    if any(int(s[key]) != DEFAULTS[key] for key in DEFAULTS):
        args = f", {int(s['K'])}, {int(s['p'])}, {int(s['k'])}, {int(s['exact'])}, {int(s['copy'])}"
    calls = ", ".join(f"{agg}({src.column(n)}{args})" for n in names)
    return f"SELECT {calls} FROM ({src.select(list(names))}) AS s"


def _value(b: bytes, at: int):
    """(value, truncated, next offset) of one packed value."""
    cls = b[at]
    at += 1
    if cls == 0:
        return None, False, at
    if cls == 1:
        return _I64.unpack_from(b, at)[0], False, at + 8
    if cls == 2:
        return _F64.unpack_from(b, at)[0], False, at + 8
    full, kept = _LEN.unpack_from(b, at)
    at += 16
    raw = bytes(b[at:at + kept])
    at += kept
    if cls == 3:
        return raw.decode("utf-8", "surrogateescape"), kept < full, at
    return raw, kept < full, at


def unpack(blob: bytes) -> dict:
    """One column's statistics from the BLOB ``sqlnb_profile`` returned."""
    if not isinstance(blob, (bytes, bytearray, memoryview)) or len(blob) < _HEAD.size:
        raise ValueError("not a sqlnb_profile result")
    b = bytes(blob)
    (magic, version, rows, n_null, n_int, n_real, n_text, n_blob, n_num, total, m2, min_len, max_len,
     d_exact, d_est, p, sample, q0, q1, q2, q3, q4, q5, k, decrements, nctr) = _HEAD.unpack_from(b, 0)
    if magic != 0x31504E53 or version != 1:
        raise ValueError("not a sqlnb_profile result (version 1)")
    at = _HEAD.size
    vmin, _, at = _value(b, at)
    vmax, _, at = _value(b, at)
    counters = []
    for _ in range(nctr):
        count = _I64.unpack_from(b, at)[0]
        value, cut, at = _value(b, at + 8)
        counters.append((value, count, cut))
    return {
        "rows": rows, "null": n_null, "integer": n_int, "real": n_real, "text": n_text, "blob": n_blob,
        "n_num": n_num, "total": total if n_num else None, "m2": m2,
        "min_length": None if min_len < 0 else min_len, "max_length": None if max_len < 0 else max_len,
        "distinct_exact": None if d_exact < 0 else d_exact, "distinct_estimate": d_est, "p": p,
        "sample": sample, "q": (q0, q1, q2, q3, q4, q5), "k": k, "decrements": decrements,
        "counters": counters, "min": vmin, "max": vmax,
    }


def order_key(value):
    """SQLite's order of non-NULL values: numbers (numerically) < TEXT (UTF-8 bytes) < BLOB (bytes)."""
    if isinstance(value, (int, float)):
        return (1, value, b"")
    if isinstance(value, str):
        return (2, 0, value.encode("utf-8", "surrogateescape"))
    return (3, 0, bytes(value))


def hll_error(p: int) -> float:
    """HyperLogLog's relative standard error with 2^p registers (1.04 / sqrt(2^p))."""
    return 1.04 / math.sqrt(1 << int(p))


def rank_error(K: int, q: float = 0.5, sigmas: float = 3.0) -> float:
    """The bound on |rank/n - q| of a quantile read from a uniform sample of K values, ``sigmas``
    standard deviations of the sample's rank (sqrt(q(1-q)/K); q = 0.5 is the widest)."""
    return sigmas * math.sqrt(q * (1 - q) / K)


__all__ = ["DEFAULTS", "FLOORS", "BUDGET", "settings", "statement", "unpack", "order_key", "hll_error",
           "rank_error", "column_bytes", "CLASS_NAMES"]
