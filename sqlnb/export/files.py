"""Results into files: :func:`write_result` (CSV, Parquet, JSON lines, JSON, Arrow IPC/Feather).

pandas' and pyarrow's own writers do the writing; this module picks the format from
the path, and writes under a temporary name that is moved into place when complete.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlnb.export.columns import _have_pyarrow

FORMATS = {
    "csv": (".csv", ".tsv"),
    "parquet": (".parquet", ".pq"),
    "jsonl": (".jsonl", ".ndjson"),
    "json": (".json",),
    "feather": (".feather", ".arrow", ".ipc", ".arrows"),
}
_ALIASES = {"arrow": "feather", "ipc": "feather", "json-lines": "jsonl", "jsonlines": "jsonl",
            "ndjson": "jsonl", "pq": "parquet", "tsv": "csv"}
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zip", ".tar")


def format_for(path, format: str | None = None) -> str:
    """The format name for ``path`` (from its extension) or the explicit ``format``."""
    known = ", ".join(sorted(FORMATS))
    if format is not None:
        f = str(format).lower().lstrip(".")
        f = _ALIASES.get(f, f)
        if f not in FORMATS:
            raise ValueError(f"unknown export format {format!r}; choose one of: {known}")
        return f
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    ext = suffixes[-1] if suffixes else ""
    for f, exts in FORMATS.items():
        if ext in exts:
            return f
    raise ValueError(f"cannot tell the export format from {str(path)!r}; use an extension "
                     f"({', '.join(e for exts in FORMATS.values() for e in exts)}) or format= one of: {known}")


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


def write_result(df_or_arrow, path, *, format: str | None = None, **options) -> Path:
    """Write a result to ``path`` as CSV, Parquet, JSON lines, JSON or Arrow IPC (Feather).

    :param df_or_arrow: a pandas DataFrame (or Series) or a ``pyarrow.Table``/``RecordBatch``.
    :param path: the file to write; its extension picks the format unless ``format`` is given
        (``.csv``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson``, ``.json``,
        ``.feather``/``.arrow``/``.ipc``; ``.gz`` etc. after csv/json compress).
    :param format: ``"csv"``, ``"parquet"``, ``"jsonl"``, ``"json"`` or ``"feather"`` (alias ``"arrow"``).
    :param options: passed to the writer (``DataFrame.to_csv``, ``DataFrame.to_parquet``,
        ``DataFrame.to_json``, ``pyarrow.feather.write_feather``).
    :returns: the path written.

    The file is written next to its destination under a temporary name and moved
    into place when complete: a failed write leaves any existing file untouched.
    The frame's index is not written (pass ``index=True`` for csv/parquet to keep it).
    """
    path = Path(os.fspath(path))
    fmt = format_for(path, format)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write(df_or_arrow, tmp, fmt, path, options)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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
