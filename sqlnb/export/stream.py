"""Streaming writers: a ``pyarrow.RecordBatchReader`` into CSV, Parquet, JSON lines, JSON or
Arrow IPC, one batch at a time (memory: about one batch, whatever the result's size).

Each writer takes the reader's ONE schema (``sqlnb.frames.query_batches`` decides it) and
writes what it can hold without loss:

* **Arrow IPC** (Feather v2, ``.arrow``/``.feather``/``.ipc``) holds every column as is,
  including the dense unions of columns that mix storage classes (lz4-compressed, like
  ``pyarrow.feather.write_feather``).
* **Parquet** has no union type: a column that mixes storage classes is refused before
  anything is written (:class:`~sqlnb.export.target.ExportError`; CAST it in the SQL).
* **CSV**, **JSON lines** and **JSON** are text: a BLOB (and TEXT that is not UTF-8, kept as
  bytes) is written as its hexadecimal digits, like SQLite's ``hex()``; in a mixed column each
  value is written as what it is (a number as a number, text as text). CSV is written by
  pyarrow's CSV writer (``.tsv``: tab-separated); ``.gz``, ``.bz2`` and ``.zst`` compress.
"""
from __future__ import annotations

import json
from pathlib import Path

from sqlnb.export.target import ExportError

_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}


def _codec(final: Path, fmt: str):
    """The stream compression the target's last suffix asks for (None: none), or ExportError."""
    ext = final.suffix.lower()
    if ext in _CODECS:
        if fmt in ("parquet", "feather"):
            raise ExportError(f"{fmt} files compress internally: name the target without {ext}")
        return _CODECS[ext]
    if ext in (".xz", ".zip", ".tar"):
        raise ExportError(f"a streamed export cannot compress to {ext}: use .gz, .bz2 or .zst")
    return None


def check_stream(schema, final: Path, fmt: str) -> None:
    """Refuse, before anything is written, what ``fmt`` cannot hold (one ExportError line)."""
    import pyarrow as pa

    _codec(final, fmt)
    if fmt == "parquet":
        mixed = [f.name for f in schema if pa.types.is_union(f.type)]
        if mixed:
            raise ExportError(f"column(s) {', '.join(map(repr, mixed))} mix storage classes (a union): Parquet "
                              f"has no such type; CAST them in the SQL, or export to Arrow IPC (.arrow)")


def write_stream(reader, tmp: Path, final: Path, fmt: str, options: dict, progress=None) -> int:
    """Write every batch of ``reader`` to ``tmp``; the rows written. ``progress(rows)`` is called
    after each batch (it may raise, e.g. KeyboardInterrupt: the caller removes ``tmp``)."""
    check_stream(reader.schema, final, fmt)
    writer = {"csv": _CsvWriter, "parquet": _ParquetWriter, "feather": _IpcWriter,
              "jsonl": _JsonWriter, "json": _JsonWriter}[fmt](reader.schema, tmp, final, fmt, options)
    rows = 0
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            writer.write(batch)
            rows += batch.num_rows
            if progress is not None:
                progress(rows)
    finally:
        writer.close()
    return rows


def _sink(tmp: Path, final: Path, fmt: str):
    import pyarrow as pa

    codec = _codec(final, fmt)
    return pa.CompressedOutputStream(str(tmp), codec) if codec else pa.OSFile(str(tmp), "wb")


# --- the formats --------------------------------------------------------------------------------
class _ParquetWriter:
    """Batches gathered into row groups of about ``ROW_GROUP_ROWS`` rows (or ``ROW_GROUP_BYTES``):
    a row group per small batch would make the file slow to read; the gathered batches are the
    one buffer this writer adds (at most 32 MB)."""

    ROW_GROUP_ROWS = 1 << 18
    ROW_GROUP_BYTES = 32 << 20

    def __init__(self, schema, tmp, final, fmt, options):
        import pyarrow.parquet as pq

        options = dict(options)
        options.pop("index", None)  # (a DataFrame writer's option; batches have no index)
        self.group_rows = options.pop("row_group_size", self.ROW_GROUP_ROWS)
        self.schema = schema
        self.w = pq.ParquetWriter(str(tmp), schema, **options)
        self.held = []
        self.rows = 0
        self.bytes = 0

    def write(self, batch):
        self.held.append(batch)
        self.rows += batch.num_rows
        self.bytes += batch.nbytes
        if self.rows >= self.group_rows or self.bytes >= self.ROW_GROUP_BYTES:
            self._flush()

    def _flush(self):
        import pyarrow as pa

        if self.held:
            self.w.write_table(pa.Table.from_batches(self.held, schema=self.schema), row_group_size=self.rows)
        self.held, self.rows, self.bytes = [], 0, 0

    def close(self):
        try:
            self._flush()
        finally:
            self.held = []
            self.w.close()


class _IpcWriter:
    def __init__(self, schema, tmp, final, fmt, options):
        import pyarrow as pa

        compression = options.pop("compression", "lz4" if pa.Codec.is_available("lz4") else None)
        if compression == "uncompressed":
            compression = None
        self.sink = pa.OSFile(str(tmp), "wb")
        self.w = pa.ipc.new_file(self.sink, schema, options=pa.ipc.IpcWriteOptions(compression=compression))

    def write(self, batch):
        self.w.write_batch(batch)

    def close(self):
        try:
            self.w.close()
        finally:
            self.sink.close()


def _hex(b):
    return None if b is None else bytes(b).hex()


def _text_columns(batch, names):
    """``batch`` with every column a text writer cannot take as is turned into text (see module doc)."""
    import pyarrow as pa

    arrays = []
    fields = []
    for name, col in zip(names, batch.columns):
        t = col.type
        if pa.types.is_union(t):
            vals = [_as_text(v) for v in col.to_pylist()]
            col = pa.array(vals, type=pa.large_string())
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
            col = pa.array([_hex(v) for v in col.to_pylist()], type=pa.large_string())
        elif pa.types.is_null(t):
            col = pa.nulls(len(col), type=pa.large_string())
        arrays.append(col)
        fields.append(pa.field(name, col.type))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _as_text(v):
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, float):
        return repr(v)
    return str(v)


class _CsvWriter:
    def __init__(self, schema, tmp, final, fmt, options):
        import pyarrow as pa
        import pyarrow.csv as pcsv

        self.names = schema.names
        tsv = ".tsv" in [s.lower() for s in final.suffixes]
        opts = {"delimiter": "\t" if tsv else ","}
        opts.update(options.pop("write_options", {}) or {})
        if "sep" in options:
            opts["delimiter"] = options.pop("sep")
        if options.pop("header", True) is False:
            opts["include_header"] = False
        options.pop("index", None)
        if options:
            raise ExportError(f"streamed CSV takes sep=, header= and write_options=, not {', '.join(options)}")
        self.sink = _sink(tmp, final, fmt)
        self.schema = pa.schema([pa.field(f.name, pa.large_string() if _as_text_type(f.type) else f.type)
                                 for f in schema])
        self.w = pcsv.CSVWriter(self.sink, self.schema, write_options=pcsv.WriteOptions(**opts))

    def write(self, batch):
        self.w.write_batch(_text_columns(batch, self.names))

    def close(self):
        try:
            self.w.close()
        finally:
            self.sink.close()


def _as_text_type(t) -> bool:
    """A column type the text writers turn into text themselves (see :func:`_text_columns`)."""
    import pyarrow as pa

    return pa.types.is_union(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_null(t)


class _JsonWriter:
    """JSON lines (one object per row) or one JSON array of objects, written row by row."""

    def __init__(self, schema, tmp, final, fmt, options):
        options.pop("index", None)
        options.pop("date_format", None)
        if options:
            raise ExportError(f"streamed {fmt} takes no options, not {', '.join(options)}")
        self.names = schema.names
        self.lines = fmt == "jsonl"
        self.sink = _sink(tmp, final, fmt)
        self.first = True
        self.enc = json.JSONEncoder(ensure_ascii=False, default=_json_default)
        if not self.lines:
            self.sink.write(b"[")

    def write(self, batch):
        cols = [c.to_pylist() for c in batch.columns]
        names = self.names
        enc = self.enc.encode
        out = []
        for row in zip(*cols):
            out.append(enc(dict(zip(names, row))))
        if not out:
            return
        if self.lines:
            self.sink.write(("\n".join(out) + "\n").encode("utf-8", "surrogateescape"))
        else:
            sep = "\n" if self.first else ",\n"
            self.sink.write((sep + ",\n".join(out)).encode("utf-8", "surrogateescape"))
        self.first = False

    def close(self):
        try:
            if not self.lines:
                self.sink.write(b"]\n" if self.first else b"\n]\n")
        finally:
            self.sink.close()


def _json_default(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    raise TypeError(f"cannot write {type(v).__name__} as JSON")
