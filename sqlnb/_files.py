"""Which database files this process has open, and with which SQLite library.

A process-wide registry of the files that sqlnb connections hold, keyed by
device and inode (a path of a file that does not exist yet is keyed by its
real path until it does). :func:`sqlnb.connect` opens every connection inside
:func:`opening`, and ``Connection.close()`` calls :func:`release`. It serves
three rules:

* **No descriptor of our own on a held file.** POSIX locks belong to the
  process and the inode: closing *any* descriptor on a file drops every lock
  the process holds on it, so sniffing a file's first bytes with ``open()``
  while a connection of this process holds a lock on it lets another process
  write over an open transaction (a lost commit). Code that would read a
  database file itself asks :func:`held` first and reads nothing when it is
  held (``_bdb.check_open``, ``_diagnose.file_kind``).
* **One library per file.** Our SQLite (``sqlite``), the stdlib's
  (``system``) and BerkeleyDB SQL (``bdb``) each keep their own lock
  bookkeeping; two of them on one file in one process undo each other's locks
  (SQLite's "multiple copies of SQLite linked into the same application").
  :func:`opening` refuses the second library with one line naming both.
* **Read-only opens leave no files.** A read-only open of a WAL database
  makes SQLite create ``-wal`` and ``-shm``; :func:`opening` notes the ones
  that did not exist, and the last close of the file in this process removes
  them again when no other process uses them (:func:`_remove_leftovers`).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
from urllib.parse import unquote

from sqlnb import errors as _errors

LIBRARIES = {"sqlite": "sqlnb's own SQLite", "system": "the stdlib sqlite3",
             "bdb": "BerkeleyDB SQL", "lsm": "lsm1 on sqlnb's own SQLite"}  # (lsm: for sqlnb.lsm's opener)

_lock = threading.RLock()
_entries: dict[int, "_Entry"] = {}   # id(raw) -> entry
_leftovers: dict[str, set] = {}       # real path -> -wal/-shm paths a read-only open created


class _Entry:
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


def _drop(key):
    with _lock:
        _entries.pop(key, None)


def _inode(path):
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


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
    for key, e in list(_entries.items()):
        if not e.live():
            _entries.pop(key, None)
            continue
        if e.same_file(real, ino):
            out.append(e)
    return out


def held(path, *, uri: bool = False) -> bool:
    """True if a connection of this process has ``path`` (a database file) open."""
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
        _entries[id(raw)] = _Entry(raw, self.library, self.real)
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
                exc = _errors.make_error(
                    14, f"unable to open database file {os.fsdecode(database)!r} with engine={library!r} "
                        f"({LIBRARIES[library]}): a connection of this process with engine={others[0]!r} "
                        f"({LIBRARIES[others[0]]}) has it open, and two SQLite libraries on one file in "
                        f"one process undo each other's locks (lost commits); close that connection "
                        f"first, or open this one with engine={others[0]!r}",
                    cls=_errors.CantOpenError)
                exc.filename = os.fsdecode(database)
                raise exc
            op.held = bool(holders)
        yield op


def release(raw) -> None:
    """``raw`` was closed: forget it; the last close of a file removes what read-only opens left."""
    with _lock:
        e = _entries.pop(id(raw), None)
        if e is None or e.ref() is not raw:
            return
        if _holders(e.real):
            return
        files = _leftovers.pop(e.real, None)
        if files:
            _remove_leftovers(e.real, files)


# the unix VFS's lock bytes (sqlite3.c): an EXCLUSIVE lock is a write lock on PENDING..SHARED range
_PENDING = 0x40000000
_SHARED_FIRST = _PENDING + 2
_SHARED_SIZE = 510
_SHM_DMS = 128  # the -shm "dead man switch" byte every connection using the WAL index holds read-locked


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
