"""Where a result file goes: its format, the checks made before any SQL runs, and the
temporary name it is written under (:func:`check_target`, :func:`temporary`, :class:`Written`).

A file is written next to its destination under a hidden temporary name
(``.NAME.XXXX.part.EXT``) and renamed into place once complete; on an error or an
interrupt the temporary file is removed, so a file at the target path is always
complete. The file gets the permissions a new file would get from ``open()``
(``0666`` less the process's umask), not ``mkstemp``'s private ``0600``.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FORMATS = {
    "csv": (".csv", ".tsv"),
    "parquet": (".parquet", ".pq"),
    "jsonl": (".jsonl", ".ndjson"),
    "json": (".json",),
    "feather": (".feather", ".arrow", ".ipc", ".arrows"),
}
ALIASES = {"arrow": "feather", "ipc": "feather", "json-lines": "jsonl", "jsonlines": "jsonl",
           "ndjson": "jsonl", "pq": "parquet", "tsv": "csv"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zip", ".tar")


class ExportError(ValueError):
    """An export target or format that cannot be written (one line says what and why)."""


class ExportTargetError(ExportError, FileNotFoundError):
    """The export target's directory does not exist (or the path names a directory)."""


def format_for(path, format: str | None = None) -> str:
    """The format name for ``path`` (from its extension) or the explicit ``format``."""
    known = ", ".join(sorted(FORMATS))
    if format is not None:
        f = str(format).lower().lstrip(".")
        f = ALIASES.get(f, f)
        if f not in FORMATS:
            raise ExportError(f"unknown export format {format!r}; choose one of: {known}")
        return f
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    ext = suffixes[-1] if suffixes else ""
    for f, exts in FORMATS.items():
        if ext in exts:
            return f
    raise ExportError(f"cannot tell the export format from {str(path)!r}; use an extension "
                      f"({', '.join(e for exts in FORMATS.values() for e in exts)}) or format= one of: {known}")


def check_target(path, format: str | None = None) -> tuple[Path, str]:
    """Check an export target BEFORE any SQL runs: ``(path, format)``, or one :class:`ExportError` line.

    Refused: an unknown ``format`` or an extension that names none; a directory that
    does not exist (:class:`ExportTargetError`, also a ``FileNotFoundError``); a path that
    is a directory; a directory this process may not write. Nothing is created.
    """
    try:
        path = Path(os.fspath(path)).expanduser()
    except TypeError:
        raise ExportError(f"an export target must be a path, not {type(path).__name__}") from None
    if not path.name:
        raise ExportError(f"the export target {str(path)!r} names no file")
    fmt = format_for(path, format)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ExportTargetError(f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist")
    if path.is_dir():
        raise ExportTargetError(f"cannot write {str(path)!r}: it is a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {str(path)!r}: directory {str(parent)!r} is not writable")
    return path, fmt


class Written(type(Path())):
    """What :func:`~sqlnb.export.write_result` wrote: the path (this object *is* it, a ``Path``)
    plus ``rows`` (rows written), ``format``, ``replaced`` (a file was at the path before) and
    ``elapsed`` (seconds)."""

    rows: int = 0
    format: str = ""
    replaced: bool = False
    elapsed: float = 0.0

    @property
    def path(self) -> Path:
        return Path(self)

    def __repr__(self):
        return (f"Written({str(self)!r}, rows={self.rows}, format={self.format!r}, "
                f"replaced={self.replaced})")


def written(path: Path, rows: int, fmt: str, replaced: bool, elapsed: float) -> Written:
    w = Written(path)
    w.rows, w.format, w.replaced, w.elapsed = rows, fmt, replaced, elapsed
    return w


def umask() -> int:
    """The process's umask, read without changing it (Linux: /proc), else by setting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # (a moment where another thread creating files sees 022)
    os.umask(old)
    return old


@contextlib.contextmanager
def temporary(path: Path):
    """A temporary file next to ``path``, with a new file's permissions: yields its Path; moved to
    ``path`` when the body ends normally, removed when it raises (an error, an interrupt)."""
    parent = path.parent if str(path.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=parent)
    tmp = Path(name)
    try:
        try:
            os.fchmod(fd, 0o666 & ~umask())
        finally:
            os.close(fd)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
