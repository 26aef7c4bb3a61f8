"""Say which file an error is about, and what is wrong with it.

SQLite's messages for file-level failures ("unable to open database file",
"file is not a database", "database is locked") do not name the file. Every
engine passes such errors through :func:`annotate`, which selects them by
result code (never by message text), appends the path and what can be learnt
about it without touching it: a directory, a missing file, a BerkeleyDB file
opened with the sqlite engine (or the reverse), and for a locked database the
kind of lock another process holds (read from ``/proc/locks`` on Linux: no file
descriptor is opened, so no POSIX lock of this process is disturbed).
"""
from __future__ import annotations

import os

BUSY, READONLY, IOERR, CORRUPT, CANTOPEN, NOTADB = 5, 8, 10, 11, 14, 26
_FILE_CODES = frozenset((BUSY, READONLY, IOERR, CORRUPT, CANTOPEN, NOTADB))

# extended codes of SQLITE_BUSY (sqlite3.h)
_BUSY_KINDS = {
    5 | (1 << 8): "SQLITE_BUSY_RECOVERY: another connection is recovering the write-ahead log",
    5 | (2 << 8): ("SQLITE_BUSY_SNAPSHOT: another connection wrote since this read transaction "
                   "began; end the transaction and retry"),
    5 | (3 << 8): "SQLITE_BUSY_TIMEOUT: a blocking lock wait timed out",
}

# the unix VFS's lock bytes (sqlite3.c: PENDING_BYTE, RESERVED_BYTE, SHARED_FIRST/SHARED_SIZE)
_PENDING = 0x40000000
_RESERVED = _PENDING + 1
_SHARED_FIRST = _PENDING + 2
# the WAL index (-shm) lock bytes: 120 + WAL_WRITE_LOCK(0) / CKPT(1) / RECOVER(2) / READ(3..7)
_SHM_BASE = 120

NUL_IN_SQL = "the SQL text contains a NUL character (SQLite would silently ignore everything after it)"

_SQLITE_MAGIC = b"SQLite format 3\x00"
_BDB_MAGICS = (0x053162, 0x061561, 0x042253, 0x031988)  # btree, hash, queue, log


def _is_path(filename) -> bool:
    if not isinstance(filename, (str, bytes, os.PathLike)):
        return False
    name = os.fsdecode(filename)
    return name not in ("", ":memory:") and not name.startswith("file:")


def file_kind(path: str) -> str | None:
    """'sqlite', 'bdb', 'empty' or None (unknown) from the first bytes of ``path``.

    None without reading when a connection of this process has the file open:
    closing our descriptor would drop the process's POSIX locks on it (``sqlnb._files``).
    """
    from sqlnb import _files

    if _files.held(path):
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if not head:
        return "empty"
    if head.startswith(_SQLITE_MAGIC):
        return "sqlite"
    if len(head) >= 16 and int.from_bytes(head[12:16], "little") in _BDB_MAGICS:
        return "bdb"
    return None


def _proc_locks(path: str):
    """``(pid, type, start, end)`` of the POSIX/OFD locks on ``path``'s inode (Linux only)."""
    try:
        st = os.stat(path)
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    out = []
    for line in lines:
        parts = line.split()
        if "->" in parts or len(parts) < 8:
            continue  # a waiter, not a holder
        try:
            maj, mnr, ino = parts[5].split(":")
            if (int(maj, 16), int(mnr, 16), int(ino)) != want:
                continue
            end = parts[7]
            out.append((int(parts[4]), parts[3], int(parts[6]), None if end == "EOF" else int(end)))
        except ValueError:
            continue
    return out


def _who(pid: int) -> str:
    if pid == os.getpid():
        return "another connection in this process"
    if pid <= 0:
        return "another process"
    return f"process {pid}"


def _overlaps(start: int, end, lo: int, hi: int) -> bool:
    return start <= hi and (end is None or end >= lo)


def describe_locks(path: str) -> str | None:
    """A few words on who holds which SQLite lock on ``path`` (or its WAL index), or None.

    Only the strongest lock of each process is named; SHARED locks (which every
    reader, and every WAL-mode connection, holds) only when nothing stronger is held.
    """
    strongest: dict[int, tuple[int, str]] = {}
    for pid, kind, start, end in _proc_locks(path):
        if kind == "WRITE" and _overlaps(start, end, _SHARED_FIRST, _SHARED_FIRST + 509):
            rank, name = 4, "an EXCLUSIVE lock (it is writing)"
        elif kind == "WRITE" and _overlaps(start, end, _PENDING, _PENDING):
            rank, name = 3, "a PENDING lock (it is about to write)"
        elif kind == "WRITE" and _overlaps(start, end, _RESERVED, _RESERVED):
            rank, name = 2, "a RESERVED lock (a write transaction is open)"
        elif _overlaps(start, end, _SHARED_FIRST, _SHARED_FIRST + 509):
            rank, name = 1, "a SHARED lock (it is reading)"
        else:
            continue
        if rank > strongest.get(pid, (0, ""))[0]:
            strongest[pid] = (rank, name)
    for pid, kind, start, end in _proc_locks(path + "-shm"):
        if kind != "WRITE":
            continue
        if _overlaps(start, end, _SHM_BASE, _SHM_BASE):
            rank, name = 5, "the WAL write lock (a write transaction is open)"
        elif _overlaps(start, end, _SHM_BASE + 2, _SHM_BASE + 2):
            rank, name = 5, "the WAL recovery lock (it is recovering the WAL)"
        elif _overlaps(start, end, _SHM_BASE + 1, _SHM_BASE + 1):
            rank, name = 5, "the WAL checkpoint lock (it is checkpointing)"
        else:
            continue
        if rank > strongest.get(pid, (0, ""))[0]:
            strongest[pid] = (rank, name)
    if any(rank > 1 for rank, _ in strongest.values()):
        strongest = {pid: v for pid, v in strongest.items() if v[0] > 1}
    else:
        strongest = {pid: v for pid, v in strongest.items() if pid != os.getpid()}
    if not strongest:
        return None
    ordered = sorted(strongest.items(), key=lambda kv: -kv[1][0])
    return "; ".join(f"{_who(pid)} holds {name}" for pid, (_, name) in ordered)


def annotate(exc, filename, *, readonly: bool = False, engine: str | None = None):
    """Add the path (and what is known about it) to a file-level error; returns ``exc``."""
    code = getattr(exc, "result_code", None)
    if code not in _FILE_CODES or getattr(exc, "filename", None) is not None or not _is_path(filename):
        return exc
    path = os.fsdecode(filename)
    if code == READONLY and not (readonly and not os.path.exists(path)):
        return exc  # only a read-only open of a missing file is about the file
    exc.filename = path
    msg = str(exc)
    shown = repr(path)
    if code in (CANTOPEN, READONLY):
        parent = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            detail = f"{shown} is a directory, not a database file"
        elif not os.path.exists(path):
            if readonly:
                detail = f"{shown} does not exist (read-only modes never create a file)"
            elif not os.path.isdir(parent):
                detail = f"the directory of {shown} does not exist"
            else:
                detail = f"{shown} could not be created"
        elif not os.access(path, os.R_OK):
            detail = f"{shown} is not readable (permission denied)"
        else:
            detail = shown
    elif code == NOTADB:
        kind = file_kind(path)
        detail = shown
        if kind == "bdb" and engine != "bdb":
            detail += " is a BerkeleyDB database: open it with engine='bdb'"
        elif kind == "sqlite" and engine == "bdb":
            detail += " is a SQLite database: open it with engine='sqlite' (not 'bdb')"
        elif kind == "empty" and engine == "bdb":
            detail += " is an empty file, which the bdb engine cannot open"
    elif code == BUSY:
        detail = shown
        ext = getattr(exc, "extended_code", None)
        if ext in _BUSY_KINDS:
            detail += f" ({_BUSY_KINDS[ext]})"
        holders = describe_locks(path) if engine != "bdb" else None
        if holders:
            detail += f": {holders}"
        detail += "; gave up after the busy timeout (connect(timeout=...))"
    elif os.path.isdir(path):
        detail = f"{shown} is a directory, not a database file"
    else:
        detail = shown
        journal = path + "-journal"
        if engine != "bdb" and (file_kind(path) == "bdb" or os.path.isdir(journal)):
            detail += (f" is a BerkeleyDB database (its environment directory {journal!r} sits next to it): "
                       f"open it with engine='bdb'")
    exc.args = (f"{msg}: {detail}",)
    return exc
