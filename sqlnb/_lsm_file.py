"""The LSM file format: what sqlnb checks and records about an ``.lsm`` file before lsm1 mounts it.

* the header check (:func:`check_lsm_file`, before every mount): a checksummed
  checkpoint in one of the two 4 KiB meta pages, and a file as long as the data
  that checkpoint references (lsm alone treats a foreign file as empty and
  truncates it at close, and reads a damaged or cut file as fewer rows);
* :func:`verify`, the opt-in full read of every data page;
* lsm's writer lock as ``/proc/locks`` shows it (:func:`writer_pid`) and the one
  BusyError for a held writer lock (:func:`writer_busy`);
* the sidecar (``<file>.sqlnb.json``) that records the schema of a file sqlnb
  created, and the one schema resolver (:func:`resolve_schema`: options, sidecar,
  defaults) that ``sqlnb.lsm.table()`` and the ``lsm:///`` opener share;
* the ``CREATE VIRTUAL TABLE ... USING lsm1(...)`` statement: :func:`create_sql`
  writes it and :func:`parse_lsm1_sql` reads it back, both on ``sqlnb._sql``.

A file that a connection of this process holds is never read here: opening and
closing a descriptor of it would drop the process's POSIX locks (``sqlnb._files``).
docs/lsm1.md describes the format's guarantees and limits.
"""
from __future__ import annotations

import json
import os
import stat
import struct
import time
from typing import NamedTuple

from sqlnb import _files, _lsm_pages, _sql
from sqlnb import errors as _errors

KEY_TYPES = ("UINT", "TEXT", "BLOB")
SIDECAR_SUFFIX = ".sqlnb.json"
SIDECAR_FORMAT = "sqlnb-lsm1"
HIDDEN = ("lsm1_command", "lsm1_key", "lsm1_value")
_META_PAGE = _lsm_pages.META_PAGE
_META_RW = _META_PAGE - 30  # LSM_META_RW_PAGE_SIZE: the page minus the lock bytes
_WRITER_LOCK_BYTE = _META_PAGE - 4  # LSM_LOCK_WRITER lives at byte 4096 - 4 of the db file
_CORRUPT, _NOTADB = 11, 26  # SQLITE_CORRUPT, SQLITE_NOTADB

# --- the checkpoint ---------------------------------------------------------------------
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


# --- who holds the file -----------------------------------------------------------------
def mounted_here(path) -> bool:
    """True while a connection of this process holds ``path`` (by device and inode; ``sqlnb._files``).

    POSIX locks belong to the process: closing *any* descriptor of a file drops every lock
    the process holds on it, so sqlnb never opens such a file itself while lsm may hold it.
    Mounts made with plain SQL (``CREATE VIRTUAL TABLE ... USING lsm1``) are not recorded
    here; on Linux the lock check in :func:`check_lsm_file` still sees them.
    """
    return _files.held(os.fspath(path))


def _in_use(path: str) -> bool:
    """lsm has ``path`` open right now: mounted here, or its lock bytes held (this process or another)."""
    return mounted_here(path) or any(_META_RW <= start and end < _META_PAGE
                                     for _, _, start, end in _files.proc_locks(path) or ())


def writer_pid(path) -> int | None:
    """The id of another process holding the LSM writer lock on ``path`` (a write transaction), or None.

    Linux only (reads /proc/locks); elsewhere always None.
    """
    for pid, kind, start, end in _files.proc_locks(os.fspath(path)) or ():
        if pid != os.getpid() and kind == "WRITE" and start <= _WRITER_LOCK_BYTE <= end:
            return pid
    return None


def writer_busy(path: str, pid: int, waited: float | None, advice: str) -> _errors.BusyError:
    """The BusyError for a write transaction process ``pid`` holds on lsm file ``path``."""
    return _errors.make_error(
        5, f"lsm file {path!r} is locked: process {pid} holds a write transaction "
           f"(waited {waited or 0:g} s); {advice}", cls=_errors.BusyError)


def wait_for_writer(path: str, timeout: float | None) -> None:
    """Wait up to ``timeout`` seconds while another process holds the writer lock; then BusyError."""
    deadline = time.monotonic() + (timeout or 0)
    while (pid := writer_pid(path)) is not None:
        if time.monotonic() >= deadline:
            raise writer_busy(path, pid, timeout, "open it with mode='ro' to read the committed data")
        time.sleep(0.05)


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
    if st.st_size == 0 or _in_use(p):
        return p  # (a file in use: the lsm that has it open is trusted with it)
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
        return {"key": check_name(data["key"], "key"), "key_type": check_key_type(data["key_type"]),
                "values": check_values(data["values"]), "table": data.get("table")}
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
    if _in_use(p):
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
                pages, records = _lsm_pages.walk_segment(fd, size, pgsz, blksz, first, last)
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


# --- names and the CREATE statement --------------------------------------------------------
def check_name(name, what: str) -> str:
    """``name`` checked as an lsm1 column or table name (quoted in the SQL, so any text but these)."""
    if not isinstance(name, str) or not name or "\0" in name or name != name.strip():
        raise ValueError(f"{what} must be a non-empty name without NUL or surrounding spaces, not {name!r}")
    if name.lower() in HIDDEN:
        raise ValueError(f"{what} {name!r} collides with lsm1's hidden column of that name")
    return name


def check_key_type(kt) -> str:
    """``kt`` as one of :data:`KEY_TYPES` (any case in)."""
    if not isinstance(kt, str) or kt.upper() not in KEY_TYPES:
        raise ValueError(f"key_type must be one of {', '.join(KEY_TYPES)}, not {kt!r}")
    return kt.upper()


def check_values(values) -> tuple:
    """Value column names from a sequence or a comma list."""
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",")]
    values = tuple(check_name(v, "value column") for v in values)
    if not values:
        raise ValueError("an lsm1 table needs at least one value column")
    return values


def create_sql(name: str, file: str, *, key: str, key_type: str, values, schema: str | None = None) -> str:
    """The ``CREATE VIRTUAL TABLE ... USING lsm1(...)`` statement (identifiers quoted, file as a literal)."""
    cols = (key,) + tuple(values)
    lowered = [c.lower() for c in cols]
    if len(set(lowered)) != len(lowered):
        raise ValueError(f"column names must be distinct (case-insensitively): {cols}")
    q = _sql.quote_identifier
    target = (q(schema) + "." if schema else "") + q(name)
    args = ", ".join([_sql.quote_literal(file), q(key), key_type] + [q(v) for v in values])
    return f"CREATE VIRTUAL TABLE {target} USING lsm1({args})"


def _lsm1_dequote(text: str) -> str:
    """lsm1's own dequoting of its filename argument (only '...' and "...")."""
    if len(text) >= 2 and text[0] in "'\"" and text[-1] == text[0]:
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


def parse_lsm1_sql(sql: str) -> dict | None:
    """``{file, key, key_type, values}`` from a ``CREATE VIRTUAL TABLE ... USING lsm1(...)``, else None.

    Arguments are split the way SQLite splits them (commas at parenthesis depth
    0, quotes and comments respected); each column argument's name is its first
    token, dequoted (``"my col" INT`` is the column ``my col``); the filename is
    the argument's text as written, dequoted the way lsm1 does it.
    """
    if not isinstance(sql, str):
        return None
    toks = list(_sql.tokens(sql))
    if [t.upper for t in toks[:3]] != ["CREATE", "VIRTUAL", "TABLE"]:
        return None
    at = next((i for i, t in enumerate(toks) if t.kind == "word" and t.upper == "USING"), None)
    if at is None or at + 2 >= len(toks) or _sql.unquote(toks[at + 1].text).lower() != "lsm1" \
            or toks[at + 2].text != "(":
        return None
    depth = toks[at + 2].depth + 1  # the arguments' depth: commas here split them, ")" here ends them
    args, cur = [], []
    for t in toks[at + 3:]:
        if t.kind == "op" and t.depth == depth and t.text in (",", ")"):
            args.append(cur)
            cur = []
            if t.text == ")":
                break
        else:
            cur.append(t)
    else:
        return None
    if len(args) < 4:
        return None
    file = _lsm1_dequote(sql[args[0][0].start:args[0][-1].start + len(args[0][-1].text)]) if args[0] else ""
    key = _sql.unquote(args[1][0].text) if args[1] else ""
    kt = " ".join(t.text for t in args[2]).upper()
    values = tuple(_sql.unquote(a[0].text) for a in args[3:] if a)
    return {"file": file, "key": key, "key_type": kt, "values": values}


# --- the schema of a file: options, sidecar, defaults ----------------------------------------
DEFAULT_SCHEMA = {"key": "key", "key_type": "TEXT", "values": ("value",)}


class Schema(NamedTuple):
    """What an lsm file is mounted with, and where that came from."""

    key: str
    key_type: str
    values: tuple
    source: str      #: "options", "sidecar", "new" (a new or empty file) or "guess"
    existed: bool    #: the file existed before the mount


def resolve_schema(path: str, *, key=None, key_type=None, values=None, foreign: dict) -> Schema:
    """The schema to mount lsm file ``path`` with (``key_type``/``values`` already checked).

    In order: the options given; the sidecar sqlnb wrote when it created the file
    (an option that contradicts it is a ProgrammingError: reading a file with
    another schema gives garbage); for a new or empty file :data:`DEFAULT_SCHEMA`;
    for an existing file of other software without ``key_type`` and ``values``,
    ``foreign`` (source ``"guess"``: the caller warns).
    """
    existed = os.path.exists(path)
    side = read_sidecar(path) if existed else None
    given = {"key_type": key_type, "values": values}
    if side is not None:
        for field, want in given.items():
            if want is not None and want != side[field]:
                raise _errors.ProgrammingError(
                    f"{path!r} was created by sqlnb with {field}={side[field]!r} (see {sidecar_path(path)}); "
                    f"asked for {want!r}. Reading it with another schema gives garbage.")
        base, source = side, "sidecar"
    elif not existed or os.path.getsize(path) == 0:
        base, source = DEFAULT_SCHEMA, ("options" if existed else "new")
    elif key_type is None or values is None:
        base, source = foreign, "guess"
    else:
        base, source = DEFAULT_SCHEMA, "options"
    return Schema(check_name(key or base["key"], "key"), key_type or base["key_type"],
                  tuple(values or base["values"]), source, existed)

def remove_new(path: str) -> None:
    """Remove an lsm file (and its -log/-shm) that a failed mount just created, unless it is held here."""
    if mounted_here(path):
        return
    for p in (path, path + "-log", path + "-shm"):
        try:
            os.remove(p)
        except OSError:
            pass
