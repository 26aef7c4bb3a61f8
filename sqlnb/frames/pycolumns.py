"""Columns of Python values: the fetch path of the ``system`` engine and of a bdb cursor's rows.

The compiled engines fill column buffers in C (``sqlnb/_core/fetch.pxi``, ``RawColumn``).
Where the rows arrive as Python tuples instead (the stdlib adapter's statements, or the
rows a bdb cursor already holds, ``sqlnb.engines.bdb.BufferedRows``), :func:`read_columns`
reads them in chunks into :class:`PyColumn` objects, which offer ``RawColumn``'s
interface, so :mod:`sqlnb.frames.result` applies the very same type rules to both.

TEXT that is not valid UTF-8: the engine's ``decoding`` hook installs a
:class:`TextFactory` for the fetch (on the ``system`` engine it becomes the stdlib
connection's ``text_factory``); it decodes strictly, falls back to
``surrogateescape`` and notes that it had to, which marks the column's ``bad_utf8``.
"""
from __future__ import annotations

import time

import numpy as np

from sqlnb import errors as _errors
from sqlnb._consts import BLOB, INTEGER, NULL, REAL, TEXT

#: a column's ``seen``: one bit per storage class present (the bits ``RawColumn`` sets too)
BIT = {c: 1 << c for c in (INTEGER, REAL, TEXT, BLOB, NULL)}
NULL_BIT = BIT[NULL]

_CHUNK = 8192  # rows per fetchmany(): the time limit and the progress counter are checked between chunks


class PyColumn:
    """One column of Python values with ``RawColumn``'s interface."""

    _CODE = {int: INTEGER, float: REAL, str: TEXT, bytes: BLOB, type(None): NULL}

    def __init__(self, values: list, check_utf8: bool):
        self.values = values
        self.nrows = len(values)
        counts = dict.fromkeys((INTEGER, REAL, TEXT, BLOB, NULL), 0)
        for v in values:
            counts[self._CODE[type(v)]] += 1
        self.counts = counts
        self.seen = sum(BIT[c] for c, k in counts.items() if k)
        self.null_count = counts[NULL]
        self.bad_utf8 = bool(check_utf8 and counts[TEXT] and any(
            type(v) is str and not _encodable(v) for v in values))

    def ints_exact(self):
        return all(float(v) == v for v in self.values if type(v) is int)

    def int64(self):
        return np.array([0 if v is None else v for v in self.values], dtype=np.int64)

    def float64(self):
        return np.array([np.nan if v is None else float(v) for v in self.values], dtype=np.float64)

    def null_mask(self):
        return np.array([v is None for v in self.values], dtype=bool)

    def objects(self):
        out = np.empty(self.nrows, dtype=object)
        out[:] = self.values
        return out

    def arrow(self, kind):
        """The column as a pyarrow Array of ``kind`` (one of :func:`~sqlnb.frames.column_kind`'s
        single kinds: "int", "float", "text", "blob", "null")."""
        import pyarrow as pa

        if kind == "null":
            return pa.nulls(self.nrows)
        if kind == "float":
            return pa.array([None if v is None else float(v) for v in self.values], type=pa.float64())
        typ = {"int": pa.int64(), "text": pa.large_string(), "blob": pa.large_binary()}[kind]
        return pa.array(self.values, type=typ)


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class TextFactory:
    """Bytes of a TEXT value -> str: strict UTF-8, else ``surrogateescape`` (and ``bad`` is set)."""

    def __init__(self):
        self.bad = False

    def __call__(self, b: bytes) -> str:
        try:
            return str(b, "utf-8")
        except UnicodeDecodeError:
            self.bad = True
            return b.decode("utf-8", "surrogateescape")


def read_columns(st, first_rows, limit, raw, factory):
    """The rows of ``st`` (after ``first_rows``, rows already read) as columns, at most ``limit``
    rows: ``(columns, nrows, unread)``; ``unread`` is the row after the last one kept (read to
    learn whether rows were left; the caller's cursor hands it out next), or None.

    Bounded by the connection's time limit (``raw.timeout``), checked between chunks;
    ``raw.rows_seen`` counts the rows read so far (the progress display reads it).
    """
    rows = list(first_rows)
    more = False
    limit_s = getattr(raw, "timeout", 0) or 0
    deadline = time.monotonic() + limit_s if limit_s else None
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise _errors.timeout_error(limit_s, getattr(st, "sql", None))
        if limit is not None and len(rows) >= limit:
            extra = st.fetchmany(1)
            more = bool(extra)
            if more:
                rows.extend(extra)  # kept for the caller (cursor) as the next unread row
            break
        want = _CHUNK if limit is None else min(_CHUNK, limit - len(rows))
        got = st.fetchmany(want)
        rows.extend(got)
        raw.rows_seen = len(rows)
        if len(got) < want:
            break
    unread = rows.pop() if more else None
    cols = [PyColumn([r[i] for r in rows], factory.bad) for i in range(st.column_count)]
    return cols, len(rows), unread
