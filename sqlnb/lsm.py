"""lsm1 key/value tables: create, open and explore them from Python, or open an ``.lsm`` file by URL.

SQLite's lsm1 extension (compiled into the ``sqlite`` engine, with sqlnb's own
``xBestIndex``) mounts an LSM database file as a virtual table::

    CREATE VIRTUAL TABLE events USING lsm1('/abs/events.lsm', ts, UINT, kind, payload)

This module adds what lsm1 leaves out (see docs/lsm1.md):

* :func:`table` creates or opens such a table on a connection and returns an
  :class:`LsmTable` with helpers (point get, range and prefix scans, counts,
  range deletes, bulk load in one transaction). Every helper runs bound SQL on
  the virtual table and returns DataFrames through ``Connection.query_df``.
* :func:`lsm_tables` lists the lsm1 tables of a connection (for the magics).
* :func:`connect_lsm` (``sqlnb.connect("lsm:///path/events.lsm")``) mounts one
  file on a private in-memory SQLite and returns an ordinary ``Connection``.
* :func:`check_lsm_file` (run before every mount) and :func:`verify` (opt-in, reads
  every data page) find damaged and truncated files.

Guards, because lsm1 itself has none (measured on the pinned sources):

* mounting a file that is not an LSM database makes lsm treat it as *empty*,
  and the last close then truncates it to 0 bytes. sqlnb checks the header
  (a checksummed checkpoint in one of the two 4 KiB meta pages) first;
* a damaged or truncated lsm file reads as fewer rows (0 when cut to 8 KiB) with
  no error: the same check raises CorruptError for a meta page that fails its
  checksum and for a file shorter than the pages its checkpoint references;
* lsm1 opens every file read-write: sqlnb's build makes it open read-only when the
  SQLite database holding the table (or ``main``) is read-only, and ``ro`` URLs
  mount on a read-only private database, so reading never writes the file;
* opening and closing a descriptor of a file drops this process's POSIX locks on
  it: sqlnb reads a header only when no connection of this process has the file
  mounted (:func:`mounted_here`) and no process holds lsm's locks on it;
* ``lsm_open`` creates a missing file, so ``ro`` connections refuse a missing path;
* a UINT key that is not an integer (or is negative) is silently stored as key 0,
  so the helpers check key types before SQLite sees them;
* a write that collides with another process's write transaction fails inside
  lsm1 with a bare "SQL logic error": the helpers look up the lock holder in
  ``/proc/locks`` and raise :class:`sqlnb.errors.BusyError` naming it.
"""
from __future__ import annotations

import json
import math
import operator
import os
import re
import stat
import struct
import threading
import time
import warnings
import weakref
from pathlib import Path

from sqlnb import errors as _errors

__all__ = ["KEY_TYPES", "LsmTable", "KeyTypeError", "table", "lsm_tables", "connect_lsm",
           "check_lsm_file", "mounted_here", "verify", "writer_pid", "sidecar_path", "read_sidecar", "write_sidecar"]

KEY_TYPES = ("UINT", "TEXT", "BLOB")
UINT_MAX = 2 ** 63 - 1  # lsm1 reads UINT keys with sqlite3_value_int64
SIDECAR_SUFFIX = ".sqlnb.json"
SIDECAR_FORMAT = "sqlnb-lsm1"
_HIDDEN = ("lsm1_command", "lsm1_key", "lsm1_value")
_META_PAGE = 4096
_META_RW = _META_PAGE - 30  # LSM_META_RW_PAGE_SIZE: the page minus the lock bytes
_WRITER_LOCK_BYTE = _META_PAGE - 4  # LSM_LOCK_WRITER lives at byte 4096 - 4 of the db file
_INCLUSIVE = ("both", "left", "right", "neither")


class KeyTypeError(_errors.MismatchError, TypeError):
    """A key whose Python type does not fit the table's key type (e.g. text for a UINT key)."""


# --- the file: header check, locks, sidecar ---------------------------------------------
# The checkpoint layout (big-endian u32 words; see lsm1's lsm_ckpt.c): a 9-word header
# (id MSW/LSW, word count including the 2 checksums, compression id, blocks, block size,
# levels, page size, pages written), 4 log words, 8 append-point words, then one record
# per level, the block redirects, the in-memory free list and the 2 checksums.
_HDR_NCKPT, _HDR_CMPID, _HDR_BLKSZ, _HDR_NLEVEL, _HDR_PGSZ = 2, 3, 5, 6, 7
_LEVELS_AT = 9 + 4 + 8
_COMPRESSION_NONE = (0, 1)  # LSM_COMPRESSION_EMPTY, LSM_COMPRESSION_NONE: page numbers count pages


def _checkpoint_words(page: bytes):
    """The checkpoint in ``page`` (one meta page) as u32 words when its two checksums match, else None."""
    if len(page) < 12:
        return None
    n = struct.unpack_from(">I", page, 8)[0]  # CKPT_HDR_NCKPT: words including the 2 checksums
    if n <= 2 or n > _META_RW // 4 or n * 4 > len(page):
        return None
    w = struct.unpack_from(f">{n}I", page, 0)
    c1, c2, mask = 1, 2, 0xFFFFFFFF
    if n % 2:
        c1 = (c1 + (w[n - 3] & 0x0000FFFF)) & mask
        c2 = (c2 + (w[n - 3] & 0xFFFF0000)) & mask
    for i in range(0, n - 3, 2):
        c1 = (c1 + c2 + w[i]) & mask
        c2 = (c2 + c1 + w[i + 1]) & mask
    return w if (c1 == w[n - 2] and c2 == w[n - 1]) else None


def _looks_like_checkpoint(page: bytes) -> bool:
    """A damaged checkpoint rather than foreign bytes: at least two of its word count, block size and
    page size are still plausible (one damaged byte spoils at most one of them)."""
    if len(page) < 32:
        return False
    n, blksz, pgsz = (struct.unpack_from(">I", page, 4 * i)[0] for i in (_HDR_NCKPT, _HDR_BLKSZ, _HDR_PGSZ))
    pow2 = lambda v: v > 0 and v & (v - 1) == 0  # noqa: E731
    votes = (_LEVELS_AT + 4 <= n <= _META_RW // 4, pow2(blksz) and 65536 <= blksz <= 1 << 30,
             pow2(pgsz) and 256 <= pgsz <= 65536)
    return sum(votes) >= 2


def _checkpoint_extent(w) -> int:
    """How many bytes the file must hold for the data the checkpoint ``w`` references.

    The end of the furthest page of every segment (first, last and root page) of every
    level. Block redirects (lsm moves blocks towards the start of the file before it
    truncates) can only lower a page's real position, so a redirected page counts at
    the lower of its two positions: the bound never exceeds what lsm needs.
    Raises ValueError when the level records do not fit the checkpoint's length.
    """
    n = len(w) - 2  # the checksums
    pgsz, blksz, cmp = w[_HDR_PGSZ], w[_HDR_BLKSZ], w[_HDR_CMPID]
    if not (pgsz and blksz and blksz % pgsz == 0):
        raise ValueError(f"page size {pgsz} and block size {blksz} do not fit")
    pages, i = [], _LEVELS_AT

    def take(k):
        nonlocal i
        if i + k > n:
            raise ValueError("the level records run past the checkpoint's end")
        out = w[i:i + k]
        i += k
        return out

    def seg():
        a = take(8)
        pages.extend((a[0] << 32 | a[1], a[2] << 32 | a[3], a[4] << 32 | a[5]))

    for _ in range(w[_HDR_NLEVEL]):
        _age, n_right = take(2)
        if n_right > 64:
            raise ValueError(f"a level with {n_right} right-hand segments")
        seg()
        for _ in range(n_right):
            seg()
        if n_right:
            n_input, _skip = take(2)
            if n_input > 65:
                raise ValueError(f"a merge with {n_input} inputs")
            take(3 * n_input + 3 + 2)
    (n_redirect,) = take(1)
    redirect = {}
    for _ in range(n_redirect):
        frm, to = take(2)
        redirect[frm] = to
    if cmp not in _COMPRESSION_NONE:  # compressed: page "numbers" are byte offsets
        return max(pages, default=0) + 1 if pages else 0
    per_block = blksz // pgsz
    need = 0
    for pg in pages:
        if pg == 0:  # no root page
            continue
        blk, within = divmod(pg - 1, per_block)
        if blk + 1 in redirect:
            pg = min(pg, (redirect[blk + 1] - 1) * per_block + within + 1)
        need = max(need, pg * pgsz)
    return need


# --- this process's mounts: never open (and so close) a descriptor of a file lsm holds -------
class _Mount:
    """One sqlnb mount of an lsm file in this process: pending until its connection is known."""

    __slots__ = ("con_ref", "pending")

    def __init__(self):
        self.con_ref = None
        self.pending = True

    def live(self) -> bool:
        if self.con_ref is None:
            return self.pending
        con = self.con_ref()
        return con is not None and not con.closed

    def attach(self, con):
        self.con_ref = weakref.ref(con)

    def drop(self):
        self.pending = False
        self.con_ref = None


_MOUNTS: dict = {}  # (st_dev, st_ino) -> [_Mount]
_MOUNTS_LOCK = threading.Lock()


def _file_id(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _register(path: str) -> _Mount:
    """Record that this process is about to mount ``path`` (an existing file); ``attach`` the connection next."""
    m = _Mount()
    fid = _file_id(path)
    if fid is not None:
        with _MOUNTS_LOCK:
            _MOUNTS[fid] = [x for x in _MOUNTS.get(fid, ()) if x.live()] + [m]
    return m


def mounted_here(path) -> bool:
    """True while an sqlnb connection of this process has ``path`` mounted (by device and inode).

    POSIX locks belong to the process: closing *any* descriptor of a file drops every lock
    the process holds on it, so sqlnb never opens such a file itself while lsm may hold it.
    Mounts made with plain SQL (``CREATE VIRTUAL TABLE ... USING lsm1``) are not recorded
    here; on Linux the lock check in :func:`check_lsm_file` still sees them.
    """
    fid = _file_id(os.fspath(path))
    if fid is None:
        return False
    with _MOUNTS_LOCK:
        live = [x for x in _MOUNTS.get(fid, ()) if x.live()]
        if live:
            _MOUNTS[fid] = live
        else:
            _MOUNTS.pop(fid, None)
        return bool(live)


def _proc_locks(path: str):
    """POSIX locks on ``path``'s inode from /proc/locks: ``[(pid, type, start, end)]``, or None off Linux.

    Reading /proc/locks opens nothing on the lsm file: opening and closing any
    descriptor of a file drops every POSIX lock this process holds on it, which
    would silently break lsm's own locking for a file mounted in this process.
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
        if len(parts) < 8 or parts[1] == "->" or parts[1] not in ("POSIX", "OFDLCK"):
            continue
        try:
            maj, mnr, ino = parts[5].split(":")
            if (int(maj, 16), int(mnr, 16), int(ino)) != want:
                continue
            end = (1 << 63) if parts[7] == "EOF" else int(parts[7])
            out.append((int(parts[4]), parts[3], int(parts[6]), end))
        except ValueError:
            continue
    return out


def writer_pid(path) -> int | None:
    """The id of another process holding the LSM writer lock on ``path`` (a write transaction), or None.

    Linux only (reads /proc/locks); elsewhere always None.
    """
    locks = _proc_locks(os.fspath(path))
    for pid, kind, start, end in locks or ():
        if pid != os.getpid() and kind == "WRITE" and start <= _WRITER_LOCK_BYTE <= end:
            return pid
    return None


def check_lsm_file(path, *, must_exist: bool = False) -> str:
    """Check that ``path`` can be mounted as an LSM database; return it absolute.

    Raises :class:`~sqlnb.errors.CantOpenError` for a directory, a missing file
    (when ``must_exist``) or a missing parent directory;
    :class:`~sqlnb.errors.NotADatabaseError` for a file whose header holds no
    valid LSM checkpoint (lsm would treat it as empty and truncate it on close);
    :class:`~sqlnb.errors.CorruptError` for a damaged lsm file: a meta page whose
    checkpoint fails its checksum (lsm would silently use the other, older one),
    a checkpoint whose records do not parse, or a file shorter than the data its
    checkpoint references (a truncated copy: lsm reads the missing pages as
    empty and returns fewer rows). A 0-byte file is an empty LSM database (lsm
    writes nothing until the first commit). Nothing is written.

    The header is read only when no connection of this process has the file
    mounted (:func:`mounted_here`) and no process holds lsm's locks on it (Linux,
    /proc/locks): a file in use is checked by the lsm that has it open, and opening
    and closing a descriptor here would drop this process's locks on it.
    """
    p = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if must_exist:
            raise _errors.CantOpenError(f"no such lsm file: {p!r} (not created: read-only mode or create=False)") from None
        parent = os.path.dirname(p)
        if not os.path.isdir(parent):
            raise _errors.CantOpenError(f"cannot create lsm file {p!r}: directory {parent!r} does not exist") from None
        return p
    except OSError as exc:
        raise _errors.CantOpenError(f"cannot open lsm file {p!r}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise _errors.CantOpenError(f"{p!r} is a directory, not an lsm file")
    if not stat.S_ISREG(st.st_mode):
        raise _errors.CantOpenError(f"{p!r} is not a regular file, so not an lsm file")
    if st.st_size == 0 or mounted_here(p):
        return p
    locks = _proc_locks(p)
    if any(_META_RW <= start and end < _META_PAGE for _, _, start, end in locks or ()):
        # lsm has it open right now (its lock bytes are held, by this process or another)
        return p
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            head = os.pread(fd, 2 * _META_PAGE, 0)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _errors.CantOpenError(f"cannot read lsm file {p!r}: {exc.strerror}") from None
    _check_header(p, head, st.st_size)
    return p


_CORRUPT, _NOTADB = 11, 26  # SQLITE_CORRUPT, SQLITE_NOTADB


def _file_error(code: int, path: str, message: str):
    """The sqlnb error for ``code`` (errors.CODE_TO_CLASS) about lsm file ``path``, its ``filename`` set."""
    exc = _errors.make_error(code, message)
    exc.filename = path
    return exc


def _check_header(p: str, head: bytes, size: int):
    """Judge the two meta pages (``head``: the file's first 8 KiB) and the file's size."""
    log = p + "-log"
    has_log = os.path.isfile(log) and os.path.getsize(log) > 0
    pages = [head[i * _META_PAGE:(i + 1) * _META_PAGE] for i in (0, 1)]
    words = [_checkpoint_words(pg) for pg in pages]
    # a meta page lsm never wrote is zeros (a short file reads as zeros past its end, as lsm reads it)
    damaged = [i for i in (0, 1) if words[i] is None and pages[i][:_META_RW].strip(b"\0")]
    if not any(words):
        if not damaged and has_log:
            return  # never checkpointed yet (crash before the first checkpoint): lsm recovers from the log
        if any(_looks_like_checkpoint(pages[i]) for i in damaged):
            raise _file_error(
                _CORRUPT, p,
                f"lsm file {p!r} is damaged: the LSM checkpoint in meta page "
                f"{' and '.join(str(i + 1) for i in damaged)} fails its checksum and there is no other; "
                "it was left untouched")
        raise _file_error(
            _NOTADB, p,
            f"{p!r} is not an lsm database (no valid LSM checkpoint in its first {2 * _META_PAGE} bytes); "
            "it was left untouched")
    if damaged and not has_log:
        i = damaged[0]
        raise _file_error(
            _CORRUPT, p,
            f"lsm file {p!r} is damaged: the LSM checkpoint in meta page {i + 1} (bytes "
            f"{i * _META_PAGE}-{(i + 1) * _META_PAGE - 1}) fails its checksum; lsm would silently fall back "
            "to the other, possibly older checkpoint. It was left untouched")
    # lsm loads the valid checkpoint with the larger id
    w = max((x for x in words if x), key=lambda x: (x[0] << 32) | x[1])
    try:
        need = _checkpoint_extent(w)
    except ValueError as exc:
        raise _file_error(_CORRUPT, p, f"lsm file {p!r} is damaged: its LSM checkpoint does not parse ({exc})") from None
    if size < need:
        raise _file_error(
            _CORRUPT, p,
            f"lsm file {p!r} is truncated: it has {size:,} bytes but its LSM checkpoint references data up to "
            f"byte {need:,}; it was left untouched")


def sidecar_path(path) -> str:
    """Where sqlnb keeps the schema of an lsm file it created: ``<file>.sqlnb.json``."""
    return os.path.abspath(os.fspath(path)) + SIDECAR_SUFFIX


def read_sidecar(path) -> dict | None:
    """The schema recorded beside ``path`` (``{key, key_type, values, table}``), or None if there is none."""
    sc = sidecar_path(path)
    try:
        with open(sc, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise _errors.InterfaceError(f"unreadable sqlnb sidecar {sc!r}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise _errors.InterfaceError(f"{sc!r} is not an sqlnb lsm1 sidecar (format {data.get('format')!r})"
                                     if isinstance(data, dict) else f"{sc!r} is not an sqlnb lsm1 sidecar")
    try:
        return {"key": _ident(data["key"], "key"), "key_type": _key_type(data["key_type"]),
                "values": _values(data["values"]), "table": data.get("table")}
    except (KeyError, TypeError, ValueError) as exc:
        raise _errors.InterfaceError(f"bad sqlnb sidecar {sc!r}: {exc}") from None


def write_sidecar(path, *, key: str, key_type: str, values, table: str | None = None) -> str:
    """Record the schema of lsm file ``path`` beside it (atomically); return the sidecar's path."""
    sc = sidecar_path(path)
    body = {"format": SIDECAR_FORMAT, "version": 1, "key": key, "key_type": key_type,
            "values": list(values), "table": table}
    tmp = f"{sc}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(body, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, sc)
    return sc


# --- verify(): an opt-in walk of every data page --------------------------------------------
_BTREE_PAGE, _SKIP_THIS_PAGE = 0x0001, 0x0004
_REC_INSERT, _REC_SEPARATOR, _REC_SYSTEM = 0x08, 0x10, 0x20


def _varint(buf, pos: int, end: int):
    """An SQLite4 varint (lsm's record header integers) at ``buf[pos:]``: (value, new position)."""
    if pos >= end:
        raise ValueError("a record header runs past its page")
    b0 = buf[pos]
    if b0 <= 240:
        return b0, pos + 1
    if b0 <= 248:
        if pos + 2 > end:
            raise ValueError("a record header runs past its page")
        return (b0 - 241) * 256 + buf[pos + 1] + 240, pos + 2
    size = b0 - 246 if b0 < 255 else 9
    if pos + size > end:
        raise ValueError("a record header runs past its page")
    tail = int.from_bytes(buf[pos + 1:pos + size], "big")
    return (2288 + tail if b0 == 249 else tail), pos + size


def verify(path) -> dict:
    """Read every data page of an lsm file and check its structure; return counts or raise CorruptError.

    An opt-in, full read of the file (the checks made before every mount read only its first
    8 KiB; see docs/lsm1.md, "Damaged files"). Besides those, for every segment of the newest
    checkpoint it follows the pages and block links from the first page to the last and checks
    each page's footer (record count, record offsets), each record's header (type, key and
    value lengths, records spanning pages) and that the keys of each segment are in strictly
    increasing order (lsm's default key order, which lsm1 uses). Data pages have no checksum:
    damage inside a key or a value that keeps the structure and the order intact is not found,
    nor a record count that the damage lowered.

    The file must not be in use (mounted by this process, or locked by another one): its
    pages may be changing, and reading it here could drop this process's locks.
    Returns ``{"segments", "pages", "records"}``. Compressed databases and checkpoints with
    block redirects are refused with FeatureNotSupportedError (sqlnb's lsm1 writes neither).
    """
    p = check_lsm_file(path, must_exist=True)
    if mounted_here(p) or any(_META_RW <= start and end < _META_PAGE for _, _, start, end in _proc_locks(p) or ()):
        raise _errors.OperationalError(f"lsm file {p!r} is in use; verify it when no connection has it open")
    size = os.path.getsize(p)
    if size == 0:
        return {"segments": 0, "pages": 0, "records": 0}
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        head = os.pread(fd, 2 * _META_PAGE, 0)
        words = [_checkpoint_words(head[i * _META_PAGE:(i + 1) * _META_PAGE]) for i in (0, 1)]
        if not any(words):
            return {"segments": 0, "pages": 0, "records": 0}  # never checkpointed: all data is in the -log
        w = max((x for x in words if x), key=lambda x: (x[0] << 32) | x[1])
        if w[_HDR_CMPID] not in _COMPRESSION_NONE:
            raise _errors.FeatureNotSupportedError(f"lsm file {p!r} is compressed; verify() reads uncompressed files only")
        segs, redirects = _segments(w)
        if redirects:
            raise _errors.FeatureNotSupportedError(
                f"lsm file {p!r} has block redirects in its checkpoint; verify() does not follow them")
        pgsz, blksz = w[_HDR_PGSZ], w[_HDR_BLKSZ]
        total = {"segments": len(segs), "pages": 0, "records": 0}
        for level, first, last in segs:
            try:
                pages, records = _walk_segment(fd, size, pgsz, blksz, first, last)
            except ValueError as exc:
                raise _file_error(_CORRUPT, p, f"lsm file {p!r} is damaged: level {level}, segment of pages "
                                                f"{first}..{last}: {exc}") from None
            total["pages"] += pages
            total["records"] += records
        return total
    finally:
        os.close(fd)


def _segments(w):
    """``([(level, first page, last page)], number of block redirects)`` of checkpoint ``w``."""
    out, i = [], _LEVELS_AT

    def seg(level):
        nonlocal i
        a = w[i:i + 8]
        i += 8
        out.append((level, a[0] << 32 | a[1], a[2] << 32 | a[3]))

    for level in range(w[_HDR_NLEVEL]):
        n_right = w[i + 1]
        i += 2
        seg(level)
        for _ in range(n_right):
            seg(level)
        if n_right:
            i += 2 + 3 * w[i] + 3 + 2
    return out, w[i]


def _walk_segment(fd, size: int, pgsz: int, blksz: int, first: int, last: int):
    """Walk one segment's pages (page numbers count from 1, block links as lsm_file.c has them)."""
    per_block = blksz // pgsz
    first_on_block1 = 1 + (2 * _META_PAGE + pgsz - 1) // pgsz
    max_pages = size // pgsz
    pg, pages, records = first, 0, 0
    carry = 0          # bytes of a record that continue on the next data page
    key_need = 0       # of those, bytes that still belong to its key
    key = b""          # the key being assembled
    prev = None        # (topic, key) of the previous record, for the order check
    pending = None     # the spanning record's topic until its key is complete
    while True:
        if pg < first_on_block1 or pg > max_pages:
            raise ValueError(f"page {pg} is outside the file ({max_pages} pages)")
        pages += 1
        if pages > max_pages:
            raise ValueError("the block links loop")
        raw = os.pread(fd, pgsz, (pg - 1) * pgsz)
        if len(raw) < pgsz:
            raise ValueError(f"page {pg} is cut short")
        is_first = pg % per_block == 1 or (pg < per_block and pg == first_on_block1)
        is_last = pg % per_block == 0
        data = raw[4:] if is_first else raw
        n_data = pgsz - 4 if (is_first or is_last) else pgsz
        n_rec = struct.unpack_from(">H", data, n_data - 2)[0]
        flags = struct.unpack_from(">H", data, n_data - 4)[0]
        eof = n_data - 12 - 2 * n_rec
        if eof <= 0:
            raise ValueError(f"page {pg}: {n_rec} records do not fit a page")
        if not flags & _BTREE_PAGE:
            pos = 0
            if carry:
                take = min(carry, eof)
                if key_need:
                    k = min(key_need, take)
                    key += data[:k]
                    key_need -= k
                    if not key_need and pending is not None:
                        prev = _order(prev, pending, key, pg)
                        pending = None
                carry -= take
                pos = take
                if carry and n_rec:
                    raise ValueError(f"page {pg}: a record starts inside the previous page's spanning record")
            offsets = struct.unpack_from(f">{n_rec}H", data, eof) if n_rec else ()
            offsets = offsets[::-1]  # cell 0's offset sits nearest the footer
            for c, off in enumerate(offsets):
                if off < pos or off >= eof:
                    raise ValueError(f"page {pg}: record {c} starts at byte {off}, outside {pos}..{eof - 1}")
                etype = data[off]
                if etype & 0x80 or not etype & (0x0F | _REC_SEPARATOR):
                    raise ValueError(f"page {pg}: record {c} has the invalid type byte {etype:#04x}")
                q = off + 1
                _, q = _varint(data, q, eof)          # the pointer into the next level
                n_key, q = _varint(data, q, eof)
                n_val = 0
                if etype & _REC_INSERT:
                    n_val, q = _varint(data, q, eof)
                body = n_key + n_val
                records += 1
                topic = etype & _REC_SYSTEM
                skip = bool(flags & _SKIP_THIS_PAGE)
                if q + body <= eof:
                    prev = prev if skip else _order(prev, topic, data[q:q + n_key], pg)
                    pos = q + body
                else:
                    if c != len(offsets) - 1:
                        raise ValueError(f"page {pg}: record {c} runs past the page but is not its last")
                    carry = body - (eof - q)
                    have = min(n_key, eof - q)
                    key, key_need = data[q:q + have], n_key - have
                    if key_need:
                        pending = None if skip else topic
                    elif not skip:
                        prev = _order(prev, topic, key, pg)
                    pos = eof
        if pg == last:
            break
        if is_last:
            nxt = struct.unpack_from(">I", raw, pgsz - 4)[0]
            if not 1 <= nxt <= max(1, size // blksz + 1):
                raise ValueError(f"page {pg}: the link to the next block ({nxt}) points outside the file")
            pg = 1 + (nxt - 1) * per_block if nxt > 1 else first_on_block1
        else:
            pg += 1
    if carry:
        raise ValueError(f"the last record runs {carry} bytes past the segment's last page {last}")
    return pages, records


def _order(prev, topic, key: bytes, pg: int):
    """Keys of a segment increase strictly (system keys after user keys); returns the new ``prev``.

    lsm's default order (bytes, then length), the one lsm1 uses; a file written with a custom
    lsm comparison function would be reported out of order.
    """
    cur = (topic, key)
    if prev is not None and cur <= prev:
        raise ValueError(f"page {pg}: keys out of order ({prev[1][:16]!r} then {key[:16]!r})")
    return cur


# --- identifiers and the CREATE statement ---------------------------------------------
def _ident(name, what: str) -> str:
    if not isinstance(name, str) or not name or "\0" in name or name != name.strip():
        raise ValueError(f"{what} must be a non-empty name without NUL or surrounding spaces, not {name!r}")
    if name.lower() in _HIDDEN:
        raise ValueError(f"{what} {name!r} collides with lsm1's hidden column of that name")
    return name


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _key_type(kt) -> str:
    if not isinstance(kt, str) or kt.upper() not in KEY_TYPES:
        raise ValueError(f"key_type must be one of {', '.join(KEY_TYPES)}, not {kt!r}")
    return kt.upper()


def _values(values) -> tuple:
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",")]
    values = tuple(_ident(v, "value column") for v in values)
    if not values:
        raise ValueError("an lsm1 table needs at least one value column")
    return values


def create_sql(name: str, file: str, *, key: str, key_type: str, values, schema: str | None = None) -> str:
    """The ``CREATE VIRTUAL TABLE ... USING lsm1(...)`` statement (identifiers quoted, file as a literal)."""
    cols = (key,) + tuple(values)
    lowered = [c.lower() for c in cols]
    if len(set(lowered)) != len(lowered):
        raise ValueError(f"column names must be distinct (case-insensitively): {cols}")
    target = (_quote(schema) + "." if schema else "") + _quote(name)
    args = ", ".join([_literal(file), _quote(key), key_type] + [_quote(v) for v in values])
    return f"CREATE VIRTUAL TABLE {target} USING lsm1({args})"


# --- parsing sqlite_master.sql ------------------------------------------------------------
_TOKEN = re.compile(r"""
      (?P<ws>\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))
    | (?P<q>'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
    | (?P<p>[(),])
    | (?P<w>[^\s'"`\[(),]+)
""", re.S | re.X)


def _tokens(sql: str):
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if m is None:  # an unterminated quote: treat the rest as one word
            yield "w", sql[pos:]
            return
        pos = m.end()
        if m.lastgroup != "ws":
            yield m.lastgroup, m.group()


def _unquote_ident(tok: str) -> str:
    if len(tok) >= 2 and tok[0] in "\"`'" and tok[-1] == tok[0]:
        return tok[1:-1].replace(tok[0] * 2, tok[0])
    if len(tok) >= 2 and tok[0] == "[" and tok[-1] == "]":
        return tok[1:-1]
    return tok


def _lsm1_dequote(text: str) -> str:
    """lsm1's own dequoting of its filename argument (only '...' and "...")."""
    if len(text) >= 2 and text[0] in "'\"" and text[-1] == text[0]:
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


def parse_lsm1_sql(sql: str) -> dict | None:
    """``{file, key, key_type, values}`` from a ``CREATE VIRTUAL TABLE ... USING lsm1(...)``, else None.

    Arguments are split the way SQLite splits them (commas at parenthesis depth
    0, quotes and comments respected); each column argument's name is its first
    token, dequoted (``"my col" INT`` is the column ``my col``).
    """
    toks = list(_tokens(sql or ""))
    words = [t.upper() if k == "w" else None for k, t in toks]
    if words[:3] != ["CREATE", "VIRTUAL", "TABLE"] or "USING" not in words:
        return None
    i = words.index("USING")
    if i + 2 >= len(toks) or _unquote_ident(toks[i + 1][1]).lower() != "lsm1" or toks[i + 2][1] != "(":
        return None
    args, cur, depth = [], [], 0
    for kind, tok in toks[i + 3:]:
        if kind == "p" and tok == "(":
            depth += 1
        elif kind == "p" and tok == ")":
            if depth == 0:
                args.append(cur)
                break
            depth -= 1
        elif kind == "p" and tok == "," and depth == 0:
            args.append(cur)
            cur = []
            continue
        cur.append(tok)
    else:
        return None
    if len(args) < 4:
        return None
    # the filename argument is the raw text of its tokens (lsm1 dequotes only a whole quoted arg)
    file = _lsm1_dequote(" ".join(args[0]))
    key = _unquote_ident(args[1][0]) if args[1] else ""
    key_type = " ".join(args[2]).upper()
    values = tuple(_unquote_ident(a[0]) for a in args[3:] if a)
    return {"file": file, "key": key, "key_type": key_type, "values": values}


def _schemas(con) -> list[str]:
    return [row[1] for row in con.execute("PRAGMA database_list").fetchall()]


def lsm_tables(conn) -> list[dict]:
    """Every lsm1 table of ``conn``: ``[{name, schema, file, key, key_type, values}]``.

    ``file`` is the path as recorded in the schema (sqlnb records absolute
    paths; lsm resolves a relative one against the process's working directory
    each time the table is connected). Tables of other virtual-table modules
    are skipped; an engine without lsm1 (bdb, system) simply has none.
    """
    out = []
    for schema in _schemas(conn):
        master = "sqlite_temp_master" if schema == "temp" else f"{_quote(schema)}.sqlite_master"
        rows = conn.execute(
            f"SELECT name, sql FROM {master} WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' "
            "ORDER BY name").fetchall()
        for name, sql in rows:
            info = parse_lsm1_sql(sql)
            if info is not None:
                out.append({"name": name, "schema": schema, **info})
    return out


# --- key checks -------------------------------------------------------------------------------
def _check_key(key_type: str, key, what: str = "key"):
    """The key as lsm1 should see it, or KeyTypeError (lsm1 would silently store a bad UINT as 0)."""
    if key_type == "UINT":
        if isinstance(key, bool):
            raise KeyTypeError(f"{what} {key!r} is a bool; this table's keys are UINT (integers 0..2**63-1)")
        try:
            v = operator.index(key)
        except TypeError:
            raise KeyTypeError(f"{what} {key!r} ({type(key).__name__}) is not an integer; this table's "
                               "keys are UINT (lsm1 would store it as key 0)") from None
        if not 0 <= v <= UINT_MAX:
            raise KeyTypeError(f"{what} {v} is outside UINT's range 0..2**63-1 "
                               "(lsm1 would store a negative key as 0)")
        return v
    if key_type == "TEXT":
        if not isinstance(key, str):
            raise KeyTypeError(f"{what} {key!r} ({type(key).__name__}) is not str; this table's keys are TEXT")
        return key
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise KeyTypeError(f"{what} {key!r} ({type(key).__name__}) is not bytes; this table's keys are BLOB")


def _text_successor(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (UTF-8 byte order), or None."""
    chars = list(prefix)
    while chars:
        c = ord(chars.pop())
        if c < 0x10FFFF:
            c += 1
            if 0xD800 <= c <= 0xDFFF:  # surrogates are not text: skip to the next scalar value
                c = 0xE000
            return "".join(chars) + chr(c)
    return None


def _blob_successor(prefix: bytes) -> bytes | None:
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return None


# --- the table object -------------------------------------------------------------------------
class LsmTable:
    """An lsm1 table on a connection, with helpers for ordered key/value data.

    Made by :func:`table`. Attributes: ``con``, ``name``, ``schema``, ``file``
    (absolute), ``key``, ``key_type``, ``values`` (tuple of value columns).
    """

    def __init__(self, con, name, *, schema, file, key, key_type, values, timeout=5.0):
        self.con = con
        self.name = name
        self.schema = schema
        self.file = file
        self.key = key
        self.key_type = key_type
        self.values = tuple(values)
        self.timeout = timeout
        self._target = f"{_quote(schema)}.{_quote(name)}"
        self._cols = ", ".join(_quote(c) for c in (key,) + self.values)
        self._k = _quote(key)

    def __repr__(self):
        return (f"<LsmTable {self.schema}.{self.name} {self.file!r} key={self.key} {self.key_type} "
                f"values={list(self.values)}>")

    @property
    def info(self) -> dict:
        return {"name": self.name, "schema": self.schema, "file": self.file, "key": self.key,
                "key_type": self.key_type, "values": self.values}

    # --- SQL pieces
    def _bounds(self, lo, hi, inclusive):
        if inclusive not in _INCLUSIVE:
            raise ValueError(f"inclusive must be one of {', '.join(_INCLUSIVE)}, not {inclusive!r}")
        where, params = [], []
        if lo is not None:
            where.append(f"{self._k} {'>=' if inclusive in ('both', 'left') else '>'} ?")
            params.append(_check_key(self.key_type, lo, "lower bound"))
        if hi is not None:
            where.append(f"{self._k} {'<=' if inclusive in ('both', 'right') else '<'} ?")
            params.append(_check_key(self.key_type, hi, "upper bound"))
        return where, params

    @staticmethod
    def _where(where):
        return (" WHERE " + " AND ".join(where)) if where else ""

    def _columns(self, columns):
        if columns is None:
            return self._cols
        names = [columns] if isinstance(columns, str) else list(columns)
        known = {c.lower(): c for c in (self.key,) + self.values + _HIDDEN[1:]}
        bad = [c for c in names if not isinstance(c, str) or c.lower() not in known]
        if bad:
            raise ValueError(f"unknown column(s) {bad} of lsm1 table {self.name!r}; "
                             f"columns: {[self.key, *self.values]}")
        return ", ".join(_quote(known[c.lower()]) for c in names)

    # --- reads (DataFrames through the fetcher)
    def get(self, key, *, columns=None):
        """The row with key ``key`` as a one-row DataFrame (empty if there is none)."""
        k = _check_key(self.key_type, key)
        return self.con.query_df(
            f"SELECT {self._columns(columns)} FROM {self._target} WHERE {self._k} = ?", (k,))

    def value(self, key, default=None):
        """The value of ``key`` (a tuple when there are several value columns), or ``default``."""
        k = _check_key(self.key_type, key)
        cols = ", ".join(_quote(v) for v in self.values)
        row = self.con.execute(f"SELECT {cols} FROM {self._target} WHERE {self._k} = ?", (k,)).fetchone()
        if row is None:
            return default
        return row[0] if len(self.values) == 1 else tuple(row)

    def __contains__(self, key):
        k = _check_key(self.key_type, key)
        return self.con.execute(f"SELECT 1 FROM {self._target} WHERE {self._k} = ?", (k,)).fetchone() is not None

    def scan(self, lo=None, hi=None, *, inclusive: str = "both", reverse: bool = False,
             limit: int | None = None, columns=None):
        """Rows with ``lo <= key <= hi`` in key order as a DataFrame.

        :param lo: lower bound or None (unbounded); :param hi: upper bound or None.
        :param inclusive: ``"both"`` (default, as ``pandas.Series.between``),
            ``"left"`` (half-open ``[lo, hi)``), ``"right"`` or ``"neither"``.
        :param reverse: descending key order.
        :param limit: at most this many rows (taken in scan order).
        :param columns: a subset of the columns (default: key and every value column).
        """
        where, params = self._bounds(lo, hi, inclusive)
        sql = (f"SELECT {self._columns(columns)} FROM {self._target}{self._where(where)} "
               f"ORDER BY {self._k}{' DESC' if reverse else ''}")
        if limit is not None:
            limit = operator.index(limit)
            if limit < 0:
                raise ValueError(f"limit must be >= 0, not {limit}")
            sql += " LIMIT ?"
            params.append(limit)
        return self.con.query_df(sql, tuple(params))

    def prefix(self, prefix, *, reverse: bool = False, limit: int | None = None, columns=None):
        """Rows whose key starts with ``prefix`` (TEXT: str, BLOB: bytes), in key order, as a DataFrame."""
        if self.key_type == "UINT":
            raise KeyTypeError(f"prefix scans need a TEXT or BLOB key; {self.name!r} has UINT keys "
                               "(use scan(lo, hi))")
        p = _check_key(self.key_type, prefix, "prefix")
        hi = _text_successor(p) if self.key_type == "TEXT" else _blob_successor(p)
        lo = p if p else None
        return self.scan(lo, hi, inclusive="left" if hi is not None else "both", reverse=reverse,
                         limit=limit, columns=columns)

    def count(self, lo=None, hi=None, *, inclusive: str = "both") -> int:
        """The number of keys in the range (all keys without bounds)."""
        where, params = self._bounds(lo, hi, inclusive)
        return self.con.execute(f"SELECT count(*) FROM {self._target}{self._where(where)}",
                                tuple(params)).fetchone()[0]

    def __len__(self):
        return self.count()

    def first(self, n: int = 1):
        """The ``n`` smallest keys' rows."""
        return self.scan(limit=n)

    def last(self, n: int = 1):
        """The ``n`` largest keys' rows (in descending order)."""
        return self.scan(reverse=True, limit=n)

    # --- writes
    def _lock(self):
        """Take lsm's writer lock now (lsm1's xBegin) without writing: an INSERT of a command row,
        which lsm1 accepts and ignores. Like BEGIN IMMEDIATE, so a busy file is found before any
        data (possibly a one-shot iterator) is consumed."""
        self.con.execute(f"INSERT INTO {self._target} (lsm1_command) VALUES ('sqlnb: take the write lock')")

    def _write(self, run):
        """Run ``run()`` in a transaction of ours, or inside the caller's open one.

        The writer lock is taken first; while another process holds it, retry
        (in our own transaction only) until ``self.timeout``, then raise
        BusyError naming that process. ``run`` itself is called exactly once.
        """
        con = self.con
        ours = not con.in_transaction
        deadline = time.monotonic() + (self.timeout or 0)
        unexplained = 0
        while True:
            try:
                if ours:  # inside the try: an interrupt right after BEGIN still rolls it back
                    con.execute("BEGIN")
                self._lock()
                break
            except _errors.SQLError as exc:
                if ours and con.in_transaction:
                    con.execute("ROLLBACK")
                pid = writer_pid(self.file)
                if pid is None and ours and unexplained < 2:
                    unexplained += 1  # the other process may have released the lock just now
                    time.sleep(0.01)
                    continue
                if pid is None:
                    raise _errors.OperationalError(
                        f"lsm1 refused the write to {self.name!r} ({self.file}): {exc}; if another "
                        "connection of this process holds a write transaction on the same file, "
                        "commit or roll it back first") from exc
                if ours and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                err = _errors.BusyError(
                    f"lsm file {self.file!r} is locked: process {pid} holds a write transaction "
                    f"(waited {self.timeout or 0:g} s); nothing was written")
                err.result_code = err.extended_code = 5
                raise err from exc
            except BaseException:
                if ours and not con.closed and con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        try:
            result = run()
            if ours:
                con.execute("COMMIT")
            return result
        except BaseException:
            if ours and not con.closed and con.in_transaction:
                con.execute("ROLLBACK")
            raise

    def _row(self, key, vals):
        if len(vals) != len(self.values):
            raise _errors.ParameterError(
                f"{self.name!r} has {len(self.values)} value column(s) {list(self.values)}, got {len(vals)} value(s)")
        return (_check_key(self.key_type, key), *vals)

    def _insert_sql(self):
        marks = ", ".join("?" * (1 + len(self.values)))
        return f"INSERT INTO {self._target} ({self._cols}) VALUES ({marks})"

    def put(self, key, *values, **named) -> None:
        """Insert or overwrite (upsert) one key: ``put(k, v)`` or ``put(k, a=1, b=2)`` (missing names: NULL)."""
        if named:
            if values:
                raise TypeError("pass the values either by position or by name, not both")
            lowered = {v.lower(): v for v in self.values}
            bad = [n for n in named if n.lower() not in lowered]
            if bad:
                raise ValueError(f"unknown value column(s) {bad}; columns: {list(self.values)}")
            by = {lowered[n.lower()]: v for n, v in named.items()}
            values = tuple(by.get(v) for v in self.values)
        row = self._row(key, values)
        sql = self._insert_sql()
        self._write(lambda: self.con.execute(sql, row))

    def delete(self, key) -> int:
        """Delete one key; return 1 if it existed, else 0."""
        k = _check_key(self.key_type, key)
        sql = f"DELETE FROM {self._target} WHERE {self._k} = ?"
        return self._write(lambda: self.con.execute(sql, (k,)).rowcount)

    def delete_range(self, lo=None, hi=None, *, inclusive: str = "both") -> int:
        """Delete every key in the range (both bounds None: everything); return how many were deleted."""
        where, params = self._bounds(lo, hi, inclusive)
        sql = f"DELETE FROM {self._target}{self._where(where)}"
        return self._write(lambda: self.con.execute(sql, tuple(params)).rowcount)

    def load(self, data, *, key: str | None = None, columns=None) -> int:
        """Bulk-load rows in ONE transaction (all or nothing); existing keys are overwritten.

        :param data: a pandas DataFrame (the key column is ``key`` or the
            table's key name, else the first column; value columns by name,
            missing ones are NULL), or an iterable of ``(key, value)`` pairs /
            ``(key, v1, v2, ...)`` tuples.
        :returns: the number of rows written.

        Every key is checked against the key type before it is written; a bad
        key rolls the whole load back. Inside an open transaction of the
        caller the rows join it (no commit).
        """
        rows = self._frame_rows(data, key, columns) if _is_frame(data) else self._iter_rows(data)
        sql = self._insert_sql()

        def run():
            # one prepared statement, bound and stepped per row (executemany without its
            # per-row implicit-transaction and change-count bookkeeping: we are in our transaction)
            st, _ = self.con._prepare(sql.encode("utf-8"), 0)
            count = 0
            try:
                bind, step = st.bind, st.run
                for row in rows:
                    bind(row)
                    step()
                    count += 1
            finally:
                st.finalize()
            return count
        return self._write(run)

    def _iter_rows(self, data):
        width = len(self.values) + 1
        kt = self.key_type
        exact = {"UINT": int, "TEXT": str, "BLOB": bytes}[kt]
        top = UINT_MAX
        for i, item in enumerate(data):
            if type(item) is not tuple or len(item) != width:
                if isinstance(item, (str, bytes)) or not hasattr(item, "__len__"):
                    raise _errors.ParameterError(f"row {i}: expected a (key, value...) tuple, got {item!r}")
                if len(item) != width:
                    raise _errors.ParameterError(
                        f"row {i}: {len(item)} item(s); {self.name!r} takes a key and {width - 1} value(s) "
                        f"{list(self.values)}")
                item = tuple(item)
            k = item[0]
            if type(k) is exact and (kt != "UINT" or 0 <= k <= top):
                yield item  # the common case, checked inline
            else:
                yield (_check_key(kt, k, f"row {i}: key"), *item[1:])

    def _frame_rows(self, df, key, columns):
        names = list(df.columns)
        lowered = {str(c).lower(): c for c in names}
        kcol = key if key is not None else lowered.get(self.key.lower(), lowered.get("key", names[0] if names else None))
        if kcol not in names:
            raise ValueError(f"key column {kcol!r} is not a column of the DataFrame ({names})")
        mapping = dict(columns or {})
        vcols = []
        for v in self.values:
            src = mapping.get(v, lowered.get(v.lower()))
            if src is None and len(self.values) == 1 and len(names) == 2:
                src = next(c for c in names if c != kcol)  # (key, anything) -> the single value column
            vcols.append(src)
        if all(c is None for c in vcols):
            raise ValueError(f"no DataFrame column matches the value column(s) {list(self.values)} "
                             f"(columns: {names}); rename them or pass columns={{value: column}}")
        keys = _column_list(df[kcol])
        if self.key_type == "UINT":
            _check_uint_column(df[kcol], kcol)
        else:
            for i, k in enumerate(keys):
                _check_key(self.key_type, k, f"row {i}: key")
        vals = [_column_list(df[c]) if c is not None else [None] * len(df) for c in vcols]
        return zip(keys, *vals)

    def drop(self) -> None:
        """Drop the virtual table (the lsm file and its data stay on disk)."""
        self.con.execute(f"DROP TABLE {self._target}")


def _is_frame(obj) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "columns") and hasattr(obj, "dtypes")


def _column_list(s) -> list:
    """A pandas column as Python values SQLite can bind (NaN/NaT/NA -> None, timestamps -> ISO text)."""
    import pandas as pd

    kind = s.dtype.kind
    if kind == "M":
        return [None if pd.isna(v) else v.isoformat(sep=" ") for v in s]
    if kind == "m":
        return [None if pd.isna(v) else v.total_seconds() for v in s]
    if kind == "b":
        return [int(v) for v in s.tolist()]
    if kind in "iuf":
        out = s.tolist()
        if kind == "f" and s.isna().any():
            out = [None if (isinstance(v, float) and math.isnan(v)) else v for v in out]
        return out
    out = s.tolist()
    if s.isna().any():
        out = [None if (v is None or (not isinstance(v, (str, bytes)) and pd.isna(v))) else v for v in out]
    return out


def _check_uint_column(s, name):
    kind = s.dtype.kind
    if kind in "iu" and len(s):
        lo, hi = int(s.min()), int(s.max())
        if lo < 0 or hi > UINT_MAX:
            bad = lo if lo < 0 else hi
            raise KeyTypeError(f"key column {name!r} holds {bad}, outside UINT's range 0..2**63-1 "
                               "(lsm1 would store a negative key as 0)")
        return
    if kind in "iu":
        return
    for i, k in enumerate(s.tolist()):
        _check_key("UINT", k, f"row {i}: key")


# --- creating / opening a table on a connection -------------------------------------------------
def _check_engine(con):
    if getattr(con, "engine", None) != "sqlite":
        raise _errors.FeatureNotSupportedError(
            f"lsm1 tables need the 'sqlite' engine (sqlnb's own build with lsm1); this connection's "
            f"engine is {getattr(con, 'engine', None)!r}")


def table(con, name: str, file=None, *, key: str | None = None, key_type: str | None = None,
          values=None, create: bool = True, schema: str = "main", timeout: float = 5.0) -> LsmTable:
    """Create or open the lsm1 table ``name`` on a ``sqlite``-engine connection.

    :param name: the virtual table's name.
    :param file: the LSM database file (made absolute; lsm would otherwise
        resolve it against whatever the working directory is at each connect).
        Needed when the table does not exist yet.
    :param key: the key column's name (default ``"key"``).
    :param key_type: ``"UINT"``, ``"TEXT"`` (default) or ``"BLOB"``.
    :param values: value column names (sequence or comma list; default ``("value",)``).
    :param create: create a missing lsm file (and its sqlnb sidecar); with
        ``False`` a missing file is an error.
    :param schema: ``"main"``, ``"temp"`` or an attached database's name.
    :param timeout: how long the write helpers wait for another process's write
        transaction on the file to end.

    An existing table is returned as is (any of ``file``/``key``/``key_type``/
    ``values`` given must match it). For a new table with an existing lsm file
    that has a sqlnb sidecar, the sidecar's schema is the default and an explicit
    different key type is refused.
    """
    _check_engine(con)
    name = _ident(name, "table name")
    given = {"key": key, "key_type": _key_type(key_type) if key_type is not None else None,
             "values": _values(values) if values is not None else None}
    existing = [t for t in lsm_tables(con) if t["name"].lower() == name.lower() and t["schema"] == schema]
    if existing:
        t = existing[0]
        want_file = os.path.abspath(os.fspath(file)) if file is not None else None
        have = {"file": os.path.abspath(t["file"]), "key": t["key"], "key_type": t["key_type"], "values": t["values"]}
        for field, want in (("file", want_file), *given.items()):
            if want is not None and (want.lower() if field == "key" else want) != (
                    have[field].lower() if field == "key" else have[field]):
                raise _errors.ProgrammingError(
                    f"lsm1 table {name!r} already exists with {field}={have[field]!r}, not {want!r}")
        return LsmTable(con, t["name"], schema=schema, file=have["file"], key=t["key"],
                        key_type=t["key_type"], values=t["values"], timeout=timeout)
    if any(r[0].lower() == name.lower() for r in con.execute(
            f"SELECT name FROM {_master(schema)} WHERE type IN ('table', 'view')").fetchall()):
        raise _errors.ProgrammingError(f"{name!r} already exists in {schema!r} and is not an lsm1 table")
    if file is None:
        raise _errors.ProgrammingError(f"no lsm1 table {name!r} in {schema!r}: pass file= to create it")
    path = check_lsm_file(file, must_exist=not create)
    existed = os.path.exists(path)
    side = read_sidecar(path) if existed else None
    if side is not None:
        for field in ("key_type", "values"):
            if given[field] is not None and given[field] != side[field]:
                raise _errors.ProgrammingError(
                    f"{path!r} was created by sqlnb with {field}={side[field]!r} (see {sidecar_path(path)}); "
                    f"asked for {given[field]!r}. Reading it with another schema gives garbage.")
    base = side or {"key": "key", "key_type": "TEXT", "values": ("value",)}
    if (existed and side is None and os.path.getsize(path) > 0
            and (given["key_type"] is None or given["values"] is None)):
        warnings.warn(
            f"{path} has no sqlnb sidecar, so its schema is unknown; assuming key_type="
            f"{given['key_type'] or 'TEXT'} and values={list(given['values'] or ('value',))}. "
            "Pass key_type= and values= (or open it with sqlnb.connect('lsm:///...') to see the raw keys).",
            UserWarning, stacklevel=2)
    key_, kt, vals = (_ident(given["key"] or base["key"], "key"), given["key_type"] or base["key_type"],
                      given["values"] or tuple(base["values"]))
    if not existed and getattr(con, "mode", "rw") != "rw":
        raise _errors.ReadOnlyError(f"no such lsm file {path!r}; a {con.mode!r} connection does not create one")
    sql = create_sql(name, path, key=key_, key_type=kt, values=vals, schema=schema)
    mount = _register(path) if existed else None
    try:
        con.execute(sql)
    except BaseException as exc:
        if mount is not None:
            mount.drop()
        if not isinstance(exc, _errors.Error):
            raise
        if not existed and os.path.exists(path) and os.path.getsize(path) == 0:
            _remove_new(path)
        raise type(exc)(f"cannot mount {path!r} as lsm1 table {name!r}: {exc}") from exc
    (mount or _register(path)).attach(con)
    if not existed:
        write_sidecar(path, key=key_, key_type=kt, values=vals, table=name)
    return LsmTable(con, name, schema=schema, file=path, key=key_, key_type=kt, values=vals, timeout=timeout)


def _master(schema: str) -> str:
    return "sqlite_temp_master" if schema == "temp" else f"{_quote(schema)}.sqlite_master"


def _remove_new(path: str):
    """Remove an lsm file (and its -log/-shm) that a failed mount just created, unless it is mounted here."""
    if mounted_here(path):
        return
    for p in (path, path + "-log", path + "-shm"):
        try:
            os.remove(p)
        except OSError:
            pass


# --- lsm:/// URLs ---------------------------------------------------------------------------
_URL_OPTIONS = ("table", "key", "key_type", "values", "create", "verify")
_TRUE = ("1", "true", "yes", "on")


def _count_value_fields(blob: bytes) -> int:
    """How many value fields an lsm1 value record holds (its TYPE/CONTENT pairs)."""
    n, pos = 0, 0
    while pos < len(blob):
        b0 = blob[pos]
        if b0 <= 240:
            v, size = b0, 1
        elif b0 <= 248:
            if pos + 1 >= len(blob):
                break
            v, size = (b0 - 241) * 256 + blob[pos + 1] + 240, 2
        else:
            size = b0 - 246
            if pos + size > len(blob):
                break
            tail = int.from_bytes(blob[pos + 1:pos + size], "big")
            v = 2288 + tail if b0 == 249 else tail
        pos += size
        if v % 6:
            pos += v // 6
        n += 1
    return n if pos == len(blob) else 1


def connect_lsm(path, *, mode: str = "rw", timeout: float | None = 5.0, statement_timeout: float | None = None,
                isolation_level: str | None = "", check_same_thread: bool = True, url: str | None = None,
                **options):
    """Open an LSM file as a connection: a private in-memory SQLite with the file mounted as one lsm1 table.

    ``sqlnb.connect("lsm:///events.lsm?key_type=UINT&values=kind,payload")`` lands here.

    :param path: the ``.lsm`` file (relative paths are made absolute now).
    :param mode: ``"rw"``, ``"ro"`` or ``"ro-scratch"`` (passed to the mode
        policies; ``ro`` modes never create the file and mount it read-only, in
        the ``temp`` schema of a read-only private database).
    :param timeout: seconds to wait, in ``rw`` mode, for another process's write
        transaction on the file to end before giving up with BusyError.
    :param options: ``table=`` (default: the file's stem), ``key=``,
        ``key_type=`` (UINT/TEXT/BLOB), ``values=`` (comma list or sequence),
        ``create=`` (default True in ``rw``: a missing file is created, with a sidecar),
        ``verify=`` (default False: run :func:`verify`, a full read of the file, before mounting).

    The schema comes from the options, else from the sidecar sqlnb wrote when it
    created the file (``<file>.sqlnb.json``). With neither, a new file gets
    ``key TEXT, value``; an existing file is mounted with ``key BLOB`` (raw key
    bytes) and value columns ``value1..valueN`` (N read from the first record), with a warning.
    """
    from sqlnb import _modes
    from sqlnb.connection import MODES, Connection

    unknown = sorted(set(options) - set(_URL_OPTIONS) - {"mode"})
    if unknown:
        raise _errors.InterfaceError(
            f"unknown lsm option(s) {', '.join(unknown)}; lsm URLs take {', '.join(_URL_OPTIONS)}, mode")
    if "mode" in options:
        mode = options.pop("mode")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    path = os.fspath(path)
    if path in ("", ":memory:"):
        raise _errors.InterfaceError("an lsm URL needs a file path: lsm:///relative.lsm or lsm:////abs/path.lsm")
    create = options.get("create", mode == "rw")
    create = create.lower() in _TRUE if isinstance(create, str) else bool(create)
    if mode != "rw":
        create = False
    abspath = check_lsm_file(path, must_exist=not create)
    check = options.get("verify", False)
    if (check.lower() in _TRUE if isinstance(check, str) else bool(check)) and os.path.exists(abspath):
        verify(abspath)  # the full read: every data page (CorruptError before anything is mounted)
    existed = os.path.exists(abspath)
    name = _ident(options.get("table") or Path(abspath).stem or "lsm", "table")
    given = {"key": options.get("key"),
             "key_type": _key_type(options["key_type"]) if options.get("key_type") else None,
             "values": _values(options["values"]) if options.get("values") else None}
    side = read_sidecar(abspath) if existed else None
    guessed = False
    if side is not None:
        for field in ("key_type", "values"):
            if given[field] is not None and given[field] != side[field]:
                raise _errors.ProgrammingError(
                    f"{abspath!r} was created by sqlnb with {field}={side[field]!r} (see {sidecar_path(abspath)}); "
                    f"asked for {given[field]!r}")
        base = side
    elif not existed or os.path.getsize(abspath) == 0:
        base = {"key": "key", "key_type": "TEXT", "values": ("value",)}
    else:
        base = None
    if base is None and (given["key_type"] is None or given["values"] is None):
        guessed = True
        base = {"key": "key", "key_type": "BLOB", "values": ("value",)}
    key = _ident(given["key"] or base["key"], "key")
    kt = given["key_type"] or base["key_type"]
    vals = given["values"] or tuple(base["values"])

    if mode == "rw" and existed:
        deadline = time.monotonic() + (timeout or 0)
        while (pid := writer_pid(abspath)) is not None:
            if time.monotonic() >= deadline:
                err = _errors.BusyError(
                    f"lsm file {abspath!r} is locked: process {pid} holds a write transaction "
                    f"(waited {timeout or 0:g} s); open it with mode='ro' to read the committed data")
                err.result_code = err.extended_code = 5
                raise err
            time.sleep(0.05)

    # A read-only mode mounts the file read-only: the private database is opened read-only and the
    # table lives in its temp schema; lsm1Connect (patched at build time, tools/lsm1_readonly.c)
    # then opens lsm with LSM_CONFIG_READONLY, so lsm never writes the file, its log or its size.
    schema = "main" if mode == "rw" else "temp"
    target = f"{_quote(schema)}.{_quote(name)}"
    raw = _modes.open_raw("sqlite", ":memory:", mode="rw" if mode == "rw" else "ro")
    mount = _register(abspath) if existed else None
    try:
        if timeout is not None:
            raw.busy_timeout(float(timeout))
        tmp = Connection(raw, engine="sqlite", mode="rw", database=":memory:", isolation_level=None,
                         check_same_thread=False)
        try:
            tmp.execute(create_sql(name, abspath, key=key, key_type=kt, values=vals, schema=schema))
        except _errors.Error as exc:
            if not existed:
                _remove_new(abspath)
            raise type(exc)(f"cannot mount lsm file {abspath!r}: {exc}") from exc
        if mount is None:
            mount = _register(abspath)
        if guessed and given["values"] is None:
            row = tmp.execute(f"SELECT lsm1_value FROM {target} LIMIT 1").fetchone()
            n = _count_value_fields(row[0]) if row and row[0] is not None else 1
            if n > 1:
                vals = tuple(f"value{i}" for i in range(1, n + 1))
                tmp.execute(f"DROP TABLE {target}")
                tmp.execute(create_sql(name, abspath, key=key, key_type=kt, values=vals, schema=schema))
        if guessed:
            warnings.warn(
                f"{abspath} has no sqlnb sidecar ({os.path.basename(sidecar_path(abspath))}) and no key_type/values "
                f"options, so table {name!r} shows key {key!r} as {kt} and value column(s) {', '.join(vals)}; "
                "the raw record is in the hidden column lsm1_value. Pass them, e.g. "
                f"lsm:///{path}?key_type=UINT&values=a,b", UserWarning, stacklevel=3)
        if statement_timeout:
            raw.timeout = float(statement_timeout)
        _modes.install(raw, "sqlite", mode=mode)
        if not existed and create:
            write_sidecar(abspath, key=key, key_type=kt, values=vals, table=name)
        con = Connection(raw, engine="sqlite", mode=mode, database=url or f"lsm:///{abspath}", path=abspath,
                         isolation_level=isolation_level, check_same_thread=check_same_thread)
    except BaseException:
        raw.close()
        if mount is not None:
            mount.drop()
        raise
    mount.attach(con)
    con.extras["lsm"] = {"name": name, "schema": schema, "file": abspath, "key": key, "key_type": kt,
                         "values": vals, "schema_from": "sidecar" if side else ("guess" if guessed else
                                                                               ("options" if existed else "new"))}
    return con


def table_of(con) -> LsmTable:
    """The :class:`LsmTable` of a connection made by :func:`connect_lsm` (its single lsm1 table)."""
    info = con.extras.get("lsm") if hasattr(con, "extras") else None
    if info is None:
        tabs = lsm_tables(con)
        if len(tabs) != 1:
            raise _errors.ProgrammingError(f"this connection has {len(tabs)} lsm1 tables; use sqlnb.lsm.table(con, name)")
        info = {**tabs[0], "file": os.path.abspath(tabs[0]["file"])}
    return LsmTable(con, info["name"], schema=info.get("schema", "main"), file=info["file"], key=info["key"],
                    key_type=info["key_type"], values=info["values"])
