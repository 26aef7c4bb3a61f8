"""Results into files: :func:`write_result` (CSV, Parquet, JSON lines, JSON, Arrow IPC/Feather)
and :func:`write_query` (a query streamed into a file in constant memory).

A DataFrame or a ``pyarrow.Table`` is written by pandas' and pyarrow's own writers; a
stream (a ``pyarrow.RecordBatchReader``, anything with ``__arrow_c_stream__``, a query)
by :mod:`sqlnb.export.stream`, one batch at a time. Either way the file is written under a
temporary name next to the target and moved into place when complete
(:mod:`sqlnb.export.target`).
"""
from __future__ import annotations

import time
from pathlib import Path

from sqlnb import progress as _progress
from sqlnb.export import stream as _stream
from sqlnb.export.columns import _have_pyarrow
from sqlnb.export.target import (FORMATS, ExportError, ExportTargetError, check_target, format_for,
                                 temporary, written)

__all__ = ["FORMATS", "ExportError", "ExportTargetError", "check_target", "format_for", "write_query",
           "write_result"]

def _as_pandas(data):
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if _have_pyarrow():
        import pyarrow as pa

        if isinstance(data, (pa.Table, pa.RecordBatch)):
            return data.to_pandas()
    raise TypeError(f"write_result() takes a pandas DataFrame or a pyarrow Table, not {type(data).__name__}")


def _as_arrow(data):
    import pandas as pd
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise TypeError(f"write_result() takes a pandas DataFrame or a pyarrow Table, not {type(data).__name__}")


def _is_stream(data) -> bool:
    """A stream to write batch by batch: a RecordBatchReader or any other ``__arrow_c_stream__``
    object that is not a DataFrame or Table (those are written whole, by their own writers)."""
    import pandas as pd

    if isinstance(data, (pd.DataFrame, pd.Series)):
        return False
    if _have_pyarrow():
        import pyarrow as pa

        if isinstance(data, (pa.Table, pa.RecordBatch)):
            return False
        if isinstance(data, pa.RecordBatchReader):
            return True
    return hasattr(data, "__arrow_c_stream__")


def write_result(df_or_arrow, path, *, format: str | None = None, progress=None, **options):
    """Write a result to ``path`` as CSV, Parquet, JSON lines, JSON or Arrow IPC (Feather).

    :param df_or_arrow: a pandas DataFrame (or Series), a ``pyarrow.Table``/``RecordBatch``, or a
        stream: a ``pyarrow.RecordBatchReader`` (``con.query_batches(...)``) or any object
        with ``__arrow_c_stream__`` (a sqlnb ``Result``), written batch by batch.
    :param path: the file to write; its extension picks the format unless ``format`` is given
        (``.csv``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson``, ``.json``,
        ``.feather``/``.arrow``/``.ipc``; ``.gz`` etc. after csv/json compress).
    :param format: ``"csv"``, ``"parquet"``, ``"jsonl"``, ``"json"`` or ``"feather"`` (alias ``"arrow"``).
    :param progress: a stream only: called with the rows written so far after each batch.
    :param options: passed to the writer (``DataFrame.to_csv``, ``DataFrame.to_parquet``,
        ``DataFrame.to_json``, ``pyarrow.feather.write_feather``; a stream: see docs/export.md).
    :returns: a :class:`~sqlnb.export.target.Written`: the path written (a ``Path``), with
        ``rows``, ``format``, ``replaced`` (a file was there before) and ``elapsed``.

    The file is written next to its destination under a temporary name and moved
    into place when complete: a failed or interrupted write leaves no file at the
    target (an existing one untouched). The frame's index is not written (pass
    ``index=True`` for csv/parquet to keep it). Bad targets raise :class:`ExportError`
    (:func:`check_target`) before anything is read or written.
    """
    data = df_or_arrow
    path, fmt = check_target(path, format)
    t0 = time.perf_counter()
    replaced = path.exists()
    if _is_stream(data):
        import pyarrow as pa

        reader = data if isinstance(data, pa.RecordBatchReader) else pa.RecordBatchReader.from_stream(data)
        _stream.check_stream(reader.schema, path, fmt)
        with temporary(path) as tmp:
            rows = _stream.write_stream(reader, tmp, path, fmt, options, progress)
    else:
        rows = _rows_of(data)
        with temporary(path) as tmp:
            _write(data, tmp, fmt, path, options)
    return written(path, rows, fmt, replaced, time.perf_counter() - t0)


def write_query(con, sql, path, params=None, *, format: str | None = None, rows: int | None = None,
                types=None, parallel: int | None = None, progress=None, **options):
    """Run ``sql`` on ``con`` and stream its result into ``path`` in constant memory.

    The target is checked first (:func:`check_target`: nothing runs when it is bad); the
    rows come from ``con.query_batches(sql, params, rows=rows, types=types, parallel=parallel)`` and are
    written batch by batch under a temporary name, renamed into place at the end. An
    error, the time limit or an interrupt (KeyboardInterrupt, ``con.interrupt()``) removes
    the temporary file and finalizes the statement: nothing at the target, the connection
    usable. In a Jupyter kernel a live progress line shows the rows so far (:mod:`sqlnb.progress`).
    Returns a :class:`~sqlnb.export.target.Written` (see :func:`write_result`).
    """
    path, fmt = check_target(path, format)
    t0 = time.perf_counter()
    replaced = path.exists()
    kw = {"types": types}
    if parallel is not None:
        kw["parallel"] = parallel
    if rows is not None:
        kw["rows"] = rows
    source = None
    try:
        # in a notebook: the live progress line (rows so far, rows/s) while the rows stream
        with _progress.track(con.raw, label=f"export {path.name}"):
            source = _Held(con.query_batches(sql, params, **kw))
            _stream.check_stream(source.reader.schema, path, fmt)
            with temporary(path) as tmp:
                n = _stream.write_stream(source, tmp, path, fmt, options, progress)
    finally:
        if source is not None:
            source.close()  # the stream's statement is finalized now, not when a traceback lets go
    return written(path, n, fmt, replaced, time.perf_counter() - t0)


class _Held:
    """The one reference to a query's reader: ``close()`` frees it, which finalizes its statement
    (a frame kept by a traceback holds this object, not the reader)."""

    def __init__(self, reader):
        self.reader = reader

    @property
    def schema(self):
        return self.reader.schema

    def read_next_batch(self):
        return self.reader.read_next_batch()

    def close(self):
        self.reader = None


def _rows_of(data) -> int:
    n = getattr(data, "num_rows", None)
    if n is None:
        try:
            n = len(data)
        except TypeError:
            n = 0
    return int(n)


def _write(data, tmp: Path, fmt: str, final: Path, options: dict) -> None:
    if fmt in ("csv", "jsonl", "json") and "compression" not in options:
        ext = final.suffix.lower()
        if ext == ".zip":
            options["compression"] = {"method": "zip", "archive_name": final.stem}
    if fmt == "csv":
        df = _as_pandas(data)
        options.setdefault("index", False)
        if final.suffix.lower() == ".tsv" or (len(final.suffixes) > 1 and final.suffixes[-2].lower() == ".tsv"):
            options.setdefault("sep", "\t")
        df.to_csv(tmp, **options)
    elif fmt == "jsonl":
        df = _as_pandas(data)
        options.setdefault("date_format", "iso")
        df.to_json(tmp, orient="records", lines=True, **options)
    elif fmt == "json":
        df = _as_pandas(data)
        options.setdefault("date_format", "iso")
        options.setdefault("orient", "records")
        df.to_json(tmp, **options)
    elif fmt == "parquet":
        import pandas as pd

        if isinstance(data, (pd.DataFrame, pd.Series)):
            df = _as_pandas(data)
            options.setdefault("index", False)
            df.to_parquet(tmp, **options)
        else:
            import pyarrow.parquet as pq

            pq.write_table(_as_arrow(data), tmp, **options)
    elif fmt == "feather":
        import pyarrow.feather as feather

        feather.write_feather(_as_arrow(data), tmp, **options)
    else:  # pragma: no cover - format_for() validated it
        raise AssertionError(fmt)
