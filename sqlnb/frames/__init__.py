"""Results as pandas DataFrames and Arrow tables, straight from SQLite's column buffers.

``query_df(con, sql)`` runs every statement of ``sql`` in order and returns the
last one's rows. On the compiled engines the rows never become Python tuples:
the Cython fetcher (``sqlnb/_core/fetch.pxi``) steps with the GIL released and fills
one buffer per column, and the DataFrame's arrays *are* those buffers. TEXT
columns become pandas' Arrow-backed string dtype with no per-row ``str``.

The type of each column is decided from the values actually seen (SQLite
columns have no fixed type); the rules are in docs/types.md and in
:func:`column_kind`. The ``system`` engine (stdlib) fetches through the stdlib
cursor and applies the very same rules, so every engine returns equal frames.

The package, by concern (docs/types.md describes what each does):

==============  ==========================================================
``result``      the type rules, :class:`Result` -> pandas / Arrow
``pycolumns``   columns of Python values (the ``system`` engine, a bdb cursor's rows)
``fetch``       :func:`run`, :func:`query_df`, :func:`query_arrow`, a cursor's rows
``scan``        which query a parallel fetch may split (:class:`ParallelRefused`)
``workers``     the parallel fetch's worker connections and threads
``parallel``    the parallel fetch: plan, claim, worker, join
``batches``     the stream: :func:`query_batches` (Arrow batches), :func:`iter_frames` (chunks)
``source``      a DataFrame / Arrow table described for the ``sqlnb_frame`` virtual table
``pages``       the page browser's SQL: keyset pages, OFFSET pages, the filter
==============  ==========================================================
"""
from __future__ import annotations

from sqlnb._consts import BLOB, INTEGER, NULL, REAL, TEXT
from sqlnb.frames.batches import StreamSchemaError, iter_frames, query_batches
from sqlnb.frames.fetch import (cursor_df, cursor_result, query_arrow, query_df, run,
                                statement_result)
from sqlnb.frames.result import DTYPE_BACKENDS, Result, TruncatedWarning, column_kind
from sqlnb.frames.scan import ParallelRefused

__all__ = ["BLOB", "DTYPE_BACKENDS", "INTEGER", "NULL", "REAL", "TEXT", "ParallelRefused", "Result",
           "StreamSchemaError", "TruncatedWarning", "column_kind", "cursor_df", "cursor_result", "iter_frames",
           "query_arrow", "query_batches", "query_df", "run", "statement_result"]
