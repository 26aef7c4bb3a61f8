"""File facts: which files this process holds, what a file is, who locks it, and errors about files.

**The registry.** A process-wide record of the files that sqlnb connections hold,
keyed by device and inode (a path of a file that does not exist yet is keyed by
its real path until it does): the database file of every connection
(:func:`sqlnb.connect` opens it inside :func:`opening`, ``Connection.close()``
calls :func:`release`) and every lsm file a connection mounts (:func:`hold`, by
``sqlnb.lsm`` and the ``lsm:///`` opener). It serves three rules:

* **No descriptor of our own on a held file.** POSIX locks belong to the
  process and the inode: closing *any* descriptor on a file drops every lock
  the process holds on it, so sniffing a file's first bytes with ``open()``
  while a connection of this process holds a lock on it lets another process
  write over an open transaction (a lost commit). Code that would read a
  database file itself asks :func:`held` first and reads nothing when it is
  held (the engines' open checks, :func:`file_kind`, the lsm header check).
* **One library per file.** Our SQLite (``sqlite``), the stdlib's
  (``system``), BerkeleyDB SQL (``bdb``) and lsm (``lsm``) each keep their own
  lock bookkeeping; two of them on one file in one process undo each other's
  locks (SQLite's "multiple copies of SQLite linked into the same
  application"). :func:`opening` refuses the second library with one line
  naming both.
* **Read-only opens leave no files.** A read-only open of a WAL database
  makes SQLite create ``-wal`` and ``-shm``; :func:`opening` notes the ones
  that did not exist, and the last close of the file in this process removes
  them again when no other process uses them (:func:`_remove_leftovers`).

**What a file is** (:func:`file_kind`, :func:`is_bdb_file`, :func:`env_dir`) from
its first bytes, read only when no connection of this process holds it.

**Who locks it** (:func:`proc_locks`, :func:`describe_locks`): Linux's
``/proc/locks``, which opens no descriptor on the file.

**Errors about files** (:func:`annotate`): SQLite's messages for file-level
failures ("unable to open database file", "file is not a database", "database
is locked") do not name the file. Every engine passes such errors through
:func:`annotate`, which selects them by result code (never by message text) and
appends the path and what can be learnt about it without touching it.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
import weakref
from urllib.parse import unquote

from sqlnb import errors as _errors

# the libraries that keep lock bookkeeping of their own: how a message names a holder of each
LIBRARIES = {"sqlite": "engine='sqlite' (sqlnb's own SQLite)", "system": "engine='system' (the stdlib sqlite3)",
             "bdb": "engine='bdb' (BerkeleyDB SQL)",
             "lsm": "an lsm1 mount (an lsm:/// URL or sqlnb.lsm.table(), lsm1 on sqlnb's own SQLite)"}

NUL_IN_SQL = "the SQL text contains a NUL character (SQLite would silently ignore everything after it)"

# --- file kinds -----------------------------------------------------------------------------
SQLITE_MAGIC = b"SQLite format 3\x00"
# BerkeleyDB's magic numbers (db.h), at byte 12 of a database's meta page (after the LSN and the
# page number) and of a log file (after its record header), in the byte order of the machine
# that wrote the file: DB_BTREEMAGIC, DB_HASHMAGIC, DB_HEAPMAGIC, DB_QAMMAGIC, DB_LOGMAGIC
BDB_MAGICS = (0x053162, 0x061561, 0x074582, 0x042253, 0x040988)
JOURNAL_SUFFIX = "-journal"  # SQLite's rollback journal; BerkeleyDB SQL's environment directory


def is_bdb_file(head: bytes) -> bool:
    """True if ``head`` (the first bytes of a file) is a BerkeleyDB meta page or log (either byte order)."""
    if len(head) < 16:
        return False
    word = head[12:16]
    return int.from_bytes(word, "little") in BDB_MAGICS or int.from_bytes(word, "big") in BDB_MAGICS


def env_dir(path: str) -> str:
    """The BerkeleyDB SQL environment directory of a database file (where SQLite keeps its journal)."""
    return path + JOURNAL_SUFFIX


def is_bdb_env(path: str) -> bool:
    """True if ``path`` has a BerkeleyDB SQL environment directory next to it."""
    d = env_dir(path)
    return os.path.isdir(d) and any(os.path.exists(os.path.join(d, f)) for f in ("__db.register", "__db.001"))


def read_head(path: str, size: int = 100) -> bytes:
    """The first ``size`` bytes of a regular file (never opens a FIFO or device, which could block).

    The caller checks :func:`held` first: closing this descriptor drops the process's locks.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        return b""
    with open(path, "rb") as f:
        return f.read(size)


def file_kind(path: str) -> str | None:
    """'sqlite', 'bdb', 'empty' or None (unknown) from the first bytes of ``path``.

    None without reading when a connection of this process holds the file (see :func:`held`).
    """
    if held(path):
        return None
    try:
        if not os.path.isfile(path):
            return None
        head = read_head(path, 16)
    except OSError:
        return None
    if not head:
        return "empty"
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if is_bdb_file(head):
        return "bdb"
    return None


# --- the registry ---------------------------------------------------------------------------
_lock = threading.RLock()
_entries: dict[int, list] = {}        # id(raw) -> [_Entry] (its database, the lsm files it mounts)
_leftovers: dict[str, set] = {}       # real path -> -wal/-shm paths a read-only open created


class _Entry:
    """One file that one raw connection holds, until the connection is closed."""

    __slots__ = ("ref", "library", "real", "ino", "__weakref__")

    def __init__(self, raw, library, real):
        self.ref = weakref.ref(raw, lambda _r, k=id(raw): _drop(k))
        self.library = library
        self.real = real
        self.ino = _inode(real)

    def live(self) -> bool:
        raw = self.ref()
        if raw is None:
            return False
        try:
            return not raw.closed
        except Exception:  # noqa: BLE001 - a half-closed handle holds nothing
            return False

    def same_file(self, real, ino) -> bool:
        if self.ino is None:
            self.ino = _inode(self.real)
        if ino is not None and self.ino is not None:
            return ino == self.ino
        return real == self.real


_dead: list[int] = []                 # keys of connections the collector has freed, not yet removed


def _drop(key):
    """A connection was freed. Called by the collector at any allocation, which can be in the middle
    of a loop over ``_entries`` in this very thread (the lock is re-entrant): only note the key;
    :func:`_purge` removes it at the next registry call."""
    _dead.append(key)


def _purge():
    """Remove the entries of freed connections (called with the lock held, before any loop)."""
    while _dead:
        key = _dead.pop()
        held_by = _entries.get(key)
        if held_by is not None and all(e.ref() is None for e in held_by):  # (not a new one with its id)
            del _entries[key]


def _inode(path):
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _add(raw, entry) -> None:
    _purge()
    held_by = _entries.get(id(raw))
    if not held_by or held_by[0].ref() is not raw:  # (a new object that reuses a dead one's id)
        held_by = _entries[id(raw)] = []
    held_by.append(entry)


def file_path(database, *, uri: bool = False) -> str | None:
    """The real path of the file ``database`` names, or None for an in-memory or temporary database."""
    if not isinstance(database, (str, bytes, os.PathLike)):
        return None
    name = os.fsdecode(database)
    if uri and name.startswith("file:"):
        body, _, query = name[5:].partition("?")
        body = body.partition("#")[0]
        if "mode=memory" in query.split("&"):
            return None
        if body.startswith("//"):
            host, _, rest = body[2:].partition("/")
            if host not in ("", "localhost"):
                return None
            body = "/" + rest
        name = unquote(body)
    if name in ("", ":memory:") or "\0" in name:
        return None
    return os.path.realpath(name)


def _holders(real):
    ino = _inode(real)
    out = []
    _purge()
    for key, held_by in list(_entries.items()):
        live = [e for e in held_by if e.live()]
        if not live:
            _entries.pop(key, None)
            continue
        out.extend(e for e in live if e.same_file(real, ino))
    return out


def held(path, *, uri: bool = False) -> bool:
    """True if a connection of this process holds ``path`` (its database file, or an lsm file it mounts)."""
    real = file_path(path, uri=uri)
    if real is None:
        return False
    with _lock:
        return bool(_holders(real))


class _Opening:
    def __init__(self, library, real, readonly):
        self.library = library
        self.real = real
        self.held = False
        self.created: set = set()
        if real is not None and readonly:
            self.created = {real + s for s in ("-wal", "-shm") if not os.path.lexists(real + s)}

    def opened(self, raw) -> None:
        """Record ``raw`` (just opened) as holding the file, until it is closed."""
        if self.real is None:
            return
        _add(raw, _Entry(raw, self.library, self.real))
        if self.created:
            _leftovers.setdefault(self.real, set()).update(self.created)


@contextlib.contextmanager
def opening(library: str, database, *, uri: bool = False, readonly: bool = False):
    """Hold the registry while ``database`` is checked and opened with ``library``.

    Raises ``CantOpenError`` if a connection of another library in this process
    holds the file. The yielded object's ``held`` says whether one of the same
    library does (then nothing may read the file with a descriptor of its own);
    call its ``opened(raw)`` once the engine has opened the file.
    """
    real = file_path(database, uri=uri)
    with _lock:
        op = _Opening(library, real, readonly)
        if real is not None:
            holders = _holders(real)
            others = sorted({e.library for e in holders if e.library != library})
            if others:
                raise _two_libraries(database, library, others[0])
            op.held = bool(holders)
        yield op


def _two_libraries(database, library: str, other: str):
    exc = _errors.make_error(
        14, f"unable to open database file {os.fsdecode(database)!r} with {LIBRARIES[library]}: "
            f"a connection of this process with {LIBRARIES[other]} has it open, and two SQLite "
            f"libraries on one file in one process undo each other's locks (lost commits); close "
            f"that connection first, or open this one with {LIBRARIES[other].partition(' (')[0]}",
        cls=_errors.CantOpenError)
    exc.filename = os.fsdecode(database)
    return exc


def hold(raw, path, library: str = "lsm"):
    """Record that ``raw`` holds ``path`` (a file its connection mounts) until it is closed; returns a
    handle for :func:`forget` (a mount that failed). Raises ``CantOpenError``, as :func:`opening`
    does, if a connection of another library in this process holds the file."""
    real = file_path(path)
    with _lock:
        others = sorted({e.library for e in _holders(real) if e.library != library}) if real else ()
        if others:
            raise _two_libraries(path, library, others[0])
        entry = _Entry(raw, library, real)
        _add(raw, entry)
    return entry


def forget(entry) -> None:
    """Undo one :func:`hold` (the mount failed; the connection goes on holding its other files)."""
    with _lock:
        raw = entry.ref()
        held_by = _entries.get(id(raw)) if raw is not None else None
        if held_by is not None and entry in held_by:
            held_by.remove(entry)
            if not held_by:
                del _entries[id(raw)]


def release(raw) -> None:
    """``raw`` was closed: forget it; the last close of a file removes what read-only opens left."""
    with _lock:
        held_by = _entries.pop(id(raw), None)
        if not held_by or held_by[0].ref() is not raw:
            return
        for e in held_by:
            if _holders(e.real):
                continue
            files = _leftovers.pop(e.real, None)
            if files:
                _remove_leftovers(e.real, files)


# --- who locks a file -----------------------------------------------------------------------
# the unix VFS's lock bytes (sqlite3.c: PENDING_BYTE, RESERVED_BYTE, SHARED_FIRST/SHARED_SIZE)
_PENDING = 0x40000000
_RESERVED = _PENDING + 1
_SHARED_FIRST = _PENDING + 2
_SHARED_SIZE = 510
# the WAL index (-shm) lock bytes: 120 + WAL_WRITE_LOCK(0) / CKPT(1) / RECOVER(2) / READ(3..7), and
# the "dead man switch" byte every connection using the WAL index holds read-locked
_SHM_BASE = 120
_SHM_DMS = 128
LOCK_EOF = 1 << 63  # the end of a lock that runs to the end of the file


def proc_locks(path: str):
    """``[(pid, type, start, end)]`` of the POSIX and OFD locks held on ``path``'s inode, or None
    where ``/proc/locks`` cannot be read (off Linux). ``type`` is READ or WRITE; ``end`` is
    inclusive, :data:`LOCK_EOF` for a lock to the end of the file.

    Reading ``/proc/locks`` opens nothing on the file: opening and closing any descriptor of a
    file drops every POSIX lock this process holds on it.
    """
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    out = []
    for line in text.splitlines():
        parts = line.split()
        # "1: POSIX  ADVISORY  WRITE 3054 fd:01:1234 1073741824 1073741824"; a waiter has "->" after "1:"
        if len(parts) < 8 or parts[1] not in ("POSIX", "OFDLCK"):
            continue
        try:
            maj, mnr, ino = parts[5].split(":")
            if (int(maj, 16), int(mnr, 16), int(ino)) != want:
                continue
            out.append((int(parts[4]), parts[3], int(parts[6]), LOCK_EOF if parts[7] == "EOF" else int(parts[7])))
        except ValueError:
            continue
    return out


def _who(pid: int) -> str:
    if pid == os.getpid():
        return "another connection in this process"
    if pid <= 0:
        return "another process"
    return f"process {pid}"


def _overlaps(start: int, end: int, lo: int, hi: int) -> bool:
    return start <= hi and end >= lo


def describe_locks(path: str) -> str | None:
    """A few words on who holds which SQLite lock on ``path`` (or its WAL index), or None.

    Only the strongest lock of each process is named; SHARED locks (which every
    reader, and every WAL-mode connection, holds) only when nothing stronger is held.
    """
    shared = (_SHARED_FIRST, _SHARED_FIRST + _SHARED_SIZE - 1)
    strongest: dict[int, tuple[int, str]] = {}
    for pid, kind, start, end in proc_locks(path) or ():
        if kind == "WRITE" and _overlaps(start, end, *shared):
            rank, name = 4, "an EXCLUSIVE lock (it is writing)"
        elif kind == "WRITE" and _overlaps(start, end, _PENDING, _PENDING):
            rank, name = 3, "a PENDING lock (it is about to write)"
        elif kind == "WRITE" and _overlaps(start, end, _RESERVED, _RESERVED):
            rank, name = 2, "a RESERVED lock (a write transaction is open)"
        elif _overlaps(start, end, *shared):
            rank, name = 1, "a SHARED lock (it is reading)"
        else:
            continue
        if rank > strongest.get(pid, (0, ""))[0]:
            strongest[pid] = (rank, name)
    for pid, kind, start, end in proc_locks(path + "-shm") or ():
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


def _remove_leftovers(real: str, files: set) -> None:
    """Remove the empty ``-wal`` and the ``-shm`` a read-only open created, if no other process uses them.

    Called with no connection of this process on the file (so a descriptor of
    our own drops no lock of ours). SQLite's own rule decides: while we hold
    the database's EXCLUSIVE lock bytes and the ``-shm``'s DMS byte, no other
    connection has the database open in WAL mode (each holds a SHARED lock on
    the database and a read lock on the DMS byte for as long as it is open),
    and none can start to. A ``-wal`` that holds any frame is never removed.
    """
    wal, shm = real + "-wal", real + "-shm"
    if not any(os.path.lexists(f) for f in files):
        return  # (a rollback-journal database: nothing was created, nothing is touched)
    try:
        fd = os.open(real, os.O_RDWR | os.O_CLOEXEC)  # (for the locks only: nothing is written)
    except OSError:
        return
    shm_fd = None
    try:
        try:
            # SQLite's EXCLUSIVE lock: PENDING keeps new readers out, the SHARED range fails if any reads
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _PENDING)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, _SHARED_SIZE, _SHARED_FIRST)
            if shm in files and os.path.exists(shm):
                shm_fd = os.open(shm, os.O_RDWR | os.O_CLOEXEC)
                fcntl.lockf(shm_fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS)
        except OSError:
            return
        if wal in files:
            with contextlib.suppress(OSError):
                if os.path.getsize(wal) == 0:
                    os.unlink(wal)
        if shm_fd is not None and not os.path.exists(wal):
            with contextlib.suppress(OSError):
                os.unlink(shm)
    finally:
        if shm_fd is not None:
            os.close(shm_fd)
        os.close(fd)


# --- errors about files ---------------------------------------------------------------------
BUSY, READONLY, IOERR, CORRUPT, CANTOPEN, NOTADB = 5, 8, 10, 11, 14, 26
_FILE_CODES = frozenset((BUSY, READONLY, IOERR, CORRUPT, CANTOPEN, NOTADB))

# extended codes of SQLITE_BUSY (sqlite3.h)
_BUSY_KINDS = {
    5 | (1 << 8): "SQLITE_BUSY_RECOVERY: another connection is recovering the write-ahead log",
    5 | (2 << 8): ("SQLITE_BUSY_SNAPSHOT: another connection wrote since this read transaction "
                   "began; end the transaction and retry"),
    5 | (3 << 8): "SQLITE_BUSY_TIMEOUT: a blocking lock wait timed out",
}


# what "file is not a database" means for (the file's kind, the file format the engine reads)
_NOT_THIS_FORMAT = {
    ("bdb", "sqlite"): " is a BerkeleyDB database: open it with engine='bdb'",
    ("sqlite", "bdb"): " is a SQLite database: open it with engine='sqlite' (not 'bdb')",
    ("empty", "bdb"): " is an empty file, which the bdb engine cannot open",
}
# the file formats whose locks are byte-range locks on the file itself (BerkeleyDB SQL keeps its
# locks in its environment): /proc/locks can name their holders
_LOCKS_ON_THE_FILE = frozenset(("sqlite",))


def _is_path(filename) -> bool:
    if not isinstance(filename, (str, bytes, os.PathLike)):
        return False
    name = os.fsdecode(filename)
    return name not in ("", ":memory:") and not name.startswith("file:")


def annotate(exc, filename, file_format: str, *, readonly: bool = False):
    """Add the path (and what is known about it) to a file-level error; returns ``exc``.

    ``file_format`` is the kind of file the engine reads (``Engine.file_format``:
    ``"sqlite"`` or ``"bdb"``): a file of the other kind is named as such. For a
    locked SQLite file the holders of its locks are named (BerkeleyDB SQL keeps its
    locks in its environment, not as byte-range locks on the file).
    """
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
        detail = shown + _NOT_THIS_FORMAT.get((file_kind(path), file_format), "")
    elif code == BUSY:
        detail = shown
        ext = getattr(exc, "extended_code", None)
        if ext in _BUSY_KINDS:
            detail += f" ({_BUSY_KINDS[ext]})"
        holders = describe_locks(path) if file_format in _LOCKS_ON_THE_FILE else None
        if holders:
            detail += f": {holders}"
        detail += "; gave up after the busy timeout (connect(timeout=...))"
    elif os.path.isdir(path):
        detail = f"{shown} is a directory, not a database file"
    else:
        detail = shown
        journal = env_dir(path)
        if ("bdb", file_format) in _NOT_THIS_FORMAT and (file_kind(path) == "bdb" or os.path.isdir(journal)):
            detail += (f" is a BerkeleyDB database (its environment directory {journal!r} sits next to it): "
                       f"open it with engine='bdb'")
    exc.args = (f"{msg}: {detail}",)
    return exc
