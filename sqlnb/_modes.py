"""Opening a raw connection for an engine and mode, and installing the mode's policy.

The modes themselves (``rw``, ``ro``, ``ro-scratch``) and the table/column policies
are described in ``sqlnb.authorizer`` and docs/read-only.md.
"""
from __future__ import annotations

from sqlnb import _engines

OPEN_READONLY, OPEN_READWRITE, OPEN_CREATE, OPEN_URI = 0x1, 0x2, 0x4, 0x40
OPEN_NOMUTEX = 0x8000


def open_checked(engine: str, path: str, *, mode: str = "rw", uri: bool = False):
    """Check ``path`` for ``engine`` and open it: the raw connection, registered in ``sqlnb._files``.

    Under the process-wide file registry: a file a connection of another library
    in this process holds is refused (``CantOpenError``); a file one of the same
    library holds is not read by sqlnb itself (closing a descriptor of our own
    would drop the process's POSIX locks on it); foreign files (a BerkeleyDB file
    for SQLite, an SQLite file for bdb) are refused before anything touches disk.
    """
    from pathlib import Path

    from sqlnb import _bdb, _files
    from sqlnb import errors as _errors

    with _files.opening(engine, path, uri=uri, readonly=mode != "rw") as claim:
        _bdb.check_open(engine, path, mode=mode, uri=uri, held=claim.held)
        if not uri and path not in (":memory:", "") and not Path(path).expanduser().resolve().parent.is_dir():
            # every engine would fail (bdb only at the first write): say so now, naming the path
            exc = _errors.make_error(14, f"unable to open database file {path!r}: its directory does not exist",
                                     extended_code=14)
            exc.filename = path
            raise exc
        raw = open_raw(engine, path, mode=mode, uri=uri)
        claim.opened(raw)
    return raw


def open_raw(engine: str, path: str, *, mode: str = "rw", uri: bool = False):
    """Open the engine-level connection. ``ro`` modes open with SQLITE_OPEN_READONLY (no file is created).

    Our SQLite opens with SQLITE_OPEN_NOMUTEX: the per-connection lock in _fast.pyx
    already lets one caller in at a time, so SQLite's own mutex (taken and let go on
    every sqlite3_column_*/bind call) is pure cost. BerkeleyDB's older core keeps it.
    """
    readonly = mode != "rw"
    if engine == "system":
        from sqlnb import _system

        return _system.RawConnection(path, uri=uri, readonly=readonly)
    mod = _engines.load(engine)
    flags = OPEN_READONLY if readonly else (OPEN_READWRITE | OPEN_CREATE)
    if uri:
        flags |= OPEN_URI
    if engine == "sqlite":
        flags |= OPEN_NOMUTEX
    return mod.RawConnection(path, flags)


def install(raw, engine: str, *, mode: str = "rw", allow_load_extension: bool = False,
            deny_tables=(), mask_columns=(), allow_tables=None, authorizer=None):
    """Install the mode's policy on a freshly opened raw connection; returns the Policy.

    Every mode gets an authorizer (``rw`` too: it refuses ``load_extension()``
    unless allowed). The policy is set on ``raw.policy``; a connection that already
    has one refuses a second (modes are never loosened on an open connection).
    The open flags are not consulted: installing ``ro`` on a read-write handle makes
    it read-only by the authorizer alone (what the tests check).
    """
    from sqlnb.authorizer import Policy

    policy = Policy(mode, allow_load_extension=allow_load_extension, deny_tables=deny_tables,
                    mask_columns=mask_columns, allow_tables=allow_tables, authorizer=authorizer,
                    engine=engine)
    return install_policy(raw, engine, policy)


def install_like(raw, policy):
    """Install on ``raw`` a policy with ``policy``'s rules (a parallel-fetch worker's), built
    and checked against ``raw``'s own view of the schema exactly as at open."""
    return install_policy(raw, policy.engine, policy.like())


def install_policy(raw, engine: str, policy):
    """Bind ``policy`` to ``raw``'s schema, install it and freeze it; returns it."""
    mode = policy.mode
    if getattr(raw, "policy", None) is not None:
        raise _already()
    if mode != "rw" or policy.has_table_policies:
        policy.bind_schema(_table_list(raw), _mask_columns_info(raw, policy))
    version = _core_version(engine)
    policy._p2isreg = 0x10 if version >= (3, 8) else 0x02  # OpenWrite's OPFLAG_P2ISREG
    if policy.has_table_policies:  # the program check's view of the schema, read before the authorizer
        policy._btrees = policy.snapshot_btrees(lambda sql: _rows(raw, sql))
    if engine == "system":
        raw.install_policy(policy)
    else:
        mod = _engines.load(engine)
        policy.table = mod.install_policy(raw, policy)  # sets raw.policy (read-only there)
    policy._freeze()
    return policy


def _core_version(engine: str) -> tuple:
    """The engine's SQLite core version as ``(major, minor)`` (read from the library, not the file)."""
    if engine == "system":
        import sqlite3

        text = sqlite3.sqlite_version
    else:
        text = _engines.load(engine).sqlite_version()
    return tuple(int(x) for x in text.split(".")[:2])


def _already():
    from sqlnb import errors

    return errors.ProgrammingError("this connection already has a mode and policy; they are chosen "
                                   "when it is opened and cannot be changed")


def _rows(raw, sql: str) -> list:
    st, _ = raw.prepare(sql.encode("utf-8"), 0)
    if st is None:
        return []
    try:
        return st.fetchmany(1 << 30)
    finally:
        st.finalize()


def _mask_columns_info(raw, policy) -> dict:
    """``{(schema, table): (sql, table_xinfo rows)}`` of the main tables a mask names."""
    if not policy.mask_columns:
        return {}
    out = {}
    names = {p[1].lower() for p in policy.mask_columns}
    for name, sql in _rows(raw, "SELECT name, sql FROM main.sqlite_master WHERE type = 'table'"):
        if name.lower() not in names:
            continue
        q = '"' + name.replace('"', '""') + '"'
        cols = _rows(raw, f"PRAGMA main.table_xinfo({q})") or [
            (*r, 0) for r in _rows(raw, f"PRAGMA main.table_info({q})")]
        out[("main", name)] = (sql, cols)
    return out


def _table_list(raw) -> list:
    """``PRAGMA table_list`` rows (schema, name, type, ...), read before the authorizer is on.

    Cores older than 3.37 (bdb) do not know the pragma and answer nothing.
    """
    return _rows(raw, "PRAGMA table_list")
