"""The exact profile in C: the statements of ``sqlnb_profile_exact`` (read 1) and
``sqlnb_profile_pick`` (read 2), and their results (C in ``sqlnb/_core/profile_exact.h``).

Read 1 is ``SELECT sqlnb_profile_exact(c1), sqlnb_profile_exact(c2), ... FROM (source)``: every column
in one read, each answering every statistic exactly, except for a column too big for the memory
budget (it answers "deferred": :func:`run` reads it again with fewer columns, and a column deferred
alone is left to plain SQL) and, for a column with many distinct TEXT/BLOB values, which values its
most common groups are: the C code counted those groups by a 64-bit hash. Read 2
(``SELECT sqlnb_profile_pick(c, ?) ...``, the ``spec`` read 1 wrote bound as the parameter) finds
those values and checks that no two different values shared a hash; a column where two did, or
whose values changed between the reads, is left to plain SQL too. docs/look.md says the same for users.
"""
from __future__ import annotations

import struct

from sqlnb.look import sketch as _sketch

#: the sizes of a read (``sqlnb_profile_config``): bytes all columns' groups may hold together;
#: distinct values, and bytes of TEXT/BLOB, a column keeps in its exact table before it keeps arrays
#: (numbers) and hashes (TEXT/BLOB) instead; bits of the hashes kept (64; fewer only to test collisions)
SETTINGS = {"budget": 64 << 20, "table_max": 65536, "arena_max": 4 << 20, "hash_bits": 64}

_HEAD = struct.Struct("=II")
_Q = struct.Struct("=q")
_STATS = struct.Struct("=q5qq" "dd" "qq" "q" "6d" "q")
_SPEC = struct.Struct("=II" "qqqQQ" "qq")
_PAIR = struct.Struct("=Qq")
MAGIC, SPEC_MAGIC, PICK_MAGIC, VERSION = 0x31584E53, 0x31534E53, 0x31504B53, 1


def configure(run, top: int, settings: dict | None = None) -> None:
    """Set the sizes of the next read on the connection (one statement that reads nothing)."""
    s = dict(SETTINGS, **(settings or {}))
    run.rows("SELECT sqlnb_profile_config(?, ?, ?, ?, ?)",
             (int(s["budget"]), int(s["table_max"]), int(s["arena_max"]), int(top), int(s["hash_bits"])), scans=0)


#: columns per call of ``sqlnb_profile_exact`` (one call steps all its columns: SQLite dispatches one
#: aggregate step a row for them; SQLite's limit on a function's arguments is 127)
ARGS = 100


#: columns per statement of read 2 (one bound spec each)
PICKS = 500


def statement(src, names) -> str:
    """Read 1 over the columns ``names`` of ``src``: one call per :data:`ARGS` columns."""
    calls = ", ".join("sqlnb_profile_exact(" + ", ".join(src.column(n) for n in names[i:i + ARGS]) + ")"
                      for i in range(0, len(names), ARGS))
    return f"SELECT {calls} FROM ({src.select(list(names))}) AS s"


def pick_statement(src, names) -> str:
    """Read 2 over ``names``, one ``?`` (the column's spec) each."""
    calls = ", ".join(f"sqlnb_profile_pick({src.column(n)}, ?)" for n in names)
    return f"SELECT {calls} FROM ({src.select(list(names))}) AS s"


def _candidates(b: bytes, at: int, n: int):
    out = []
    for _ in range(n):
        count = _Q.unpack_from(b, at)[0]
        value, _, at = _sketch._value(b, at + 8)
        out.append((value, count))
    return out, at


_EMPTY = {"deferred": False, "rows": 0, "null": 0, "integer": 0, "real": 0, "text": 0, "blob": 0, "n_num": 0,
          "total": None, "m2": float("nan"), "min_length": None, "max_length": None, "distinct": 0,
          "q": (float("nan"),) * 6, "big": False, "min": None, "max": None, "top": [], "spec": None}


def unpack(blob, ncols: int) -> list:
    """The ``ncols`` columns of one ``sqlnb_profile_exact`` call: per column ``{"deferred": True}`` or
    its statistics, with ``top`` (the groups whose values are known: (value, count)) and ``spec``
    (bytes for read 2, or None)."""
    b = bytes(blob)
    magic, version = _HEAD.unpack_from(b, 0)
    if magic != MAGIC or version != VERSION:
        raise ValueError("not a sqlnb_profile_exact result (version 1)")
    got = _Q.unpack_from(b, 8)[0]
    if got == 0:   # no rows
        return [dict(_EMPTY, q=_EMPTY["q"], top=[]) for _ in range(ncols)]
    if got != ncols:
        raise ValueError(f"sqlnb_profile_exact returned {got} columns, expected {ncols}")
    out, at = [], 16
    for _ in range(ncols):
        if _Q.unpack_from(b, at)[0]:
            out.append({"deferred": True})
            at += 8
            continue
        (rows, n_null, n_int, n_real, n_text, n_blob, n_num, total, m2, min_len, max_len, distinct,
         q0, q1, q2, q3, q4, q5, big) = _STATS.unpack_from(b, at + 8)
        at += 8 + _STATS.size
        vmin, _, at = _sketch._value(b, at)
        vmax, _, at = _sketch._value(b, at)
        ncand = _Q.unpack_from(b, at)[0]
        top, at = _candidates(b, at + 8, ncand)
        nspec = _Q.unpack_from(b, at)[0]
        spec = b[at + 8:at + 8 + nspec] if nspec else None
        at += 8 + nspec
        out.append({
            "deferred": False, "rows": rows, "null": n_null, "integer": n_int, "real": n_real, "text": n_text,
            "blob": n_blob, "n_num": n_num, "total": total if n_num else None, "m2": m2,
            "min_length": None if min_len < 0 else min_len, "max_length": None if max_len < 0 else max_len,
            "distinct": distinct, "q": (q0, q1, q2, q3, q4, q5), "big": bool(big), "min": vmin, "max": vmax,
            "top": top, "spec": spec,
        })
    return out


def unpack_pick(blob) -> dict:
    """One column's read-2 result: ``collision``, ``changed`` (the values differ from read 1's),
    ``top`` (the TEXT/BLOB groups chosen: (value, count))."""
    b = bytes(blob)
    magic, version = _HEAD.unpack_from(b, 0)
    if magic != PICK_MAGIC or version != VERSION:
        raise ValueError("not a sqlnb_profile_pick result (version 1)")
    collision, changed, nabove = struct.unpack_from("=qqq", b, 8)
    above, at = _candidates(b, 32, nabove)
    nties = _Q.unpack_from(b, at)[0]
    ties, at = _candidates(b, at + 8, nties)
    return {"collision": bool(collision), "changed": bool(changed), "top": above + ties}


def merge_top(groups, top: int):
    """The ``top`` most common of (value, count) groups: count descending, then SQLite's order (an
    INTEGER before an equal REAL)."""
    return sorted(groups, key=lambda g: (-g[1], _sketch.order_key(g[0]), isinstance(g[0], float)))[:top]


def run(run, src, names, top: int, settings: dict | None = None):
    """Every column of ``names`` by read 1 (then read 2 where needed): ``{name: stats}`` of the columns
    done, and the names left to plain SQL (deferred alone, a hash collision, or values that changed
    between the reads)."""
    done, left = {}, []
    groups = [list(names)] if names else []
    while groups:
        batch = groups.pop(0)
        configure(run, top, settings)
        row = run.rows(statement(src, batch))[0]
        stats = [st for i, blob in enumerate(row) for st in unpack(blob, len(batch[i * ARGS:(i + 1) * ARGS]))]
        deferred = []
        for name, st in zip(batch, stats):
            if st["deferred"]:
                deferred.append(name)
            else:
                done[name] = st
        if len(batch) == 1:
            left += deferred   # too big alone
        elif len(deferred) < len(batch):
            groups += [deferred] if deferred else []   # some fitted: the rest again, together
        else:   # none fitted (the last one standing was too big alone): halves, until a column is alone
            half = (len(deferred) + 1) // 2
            groups += [deferred[:half], deferred[half:]]
    picks = [n for n in names if n in done and done[n]["spec"] is not None]
    for i in range(0, len(picks), PICKS):   # (a parameter each: bdb's core takes 999 a statement)
        batch = picks[i:i + PICKS]
        row = run.rows(pick_statement(src, batch), [done[n]["spec"] for n in batch])[0]
        for name, blob in zip(batch, row):
            got = unpack_pick(blob)
            if got["collision"] or got["changed"]:
                del done[name]
                left.append(name)
            else:
                done[name]["top"] = merge_top(done[name]["top"] + got["top"], top)
    for st in done.values():
        st["top"] = merge_top(st["top"], top)
    return done, [n for n in names if n in left]


__all__ = ["ARGS", "PICKS", "SETTINGS", "configure", "statement", "pick_statement", "unpack", "unpack_pick", "merge_top", "run"]
