"""Opening a raw connection for an engine and mode, and installing the mode's policy.

The modes themselves (``rw``, ``ro``, ``ro-scratch``) and the table/column policies
are described in ``sqlnb.authorizer`` and docs/read-only.md. Every function takes an
:class:`~sqlnb.engines.Engine` (or its name); what differs between engines (open flags,
foreign-file checks, how a policy is installed, the busy timeout) is the engine's own.
"""
from __future__ import annotations

from pathlib import Path

from sqlnb import _files, _sql
from sqlnb import errors as _errors
from sqlnb.authorizer import Policy
from sqlnb.engines.protocol import rows as _rows
from sqlnb.engines.registry import engine as _engine


def open_checked(engine, path: str, *, mode: str = "rw", uri: bool = False):
    """Check ``path`` for ``engine`` and open it: the raw connection, registered in ``sqlnb._files``.

    Under the process-wide file registry: a file a connection of another library
    in this process holds is refused (``CantOpenError``); a file one of the same
    library holds is not read by sqlnb itself (closing a descriptor of our own
    would drop the process's POSIX locks on it); foreign files (a BerkeleyDB file
    for SQLite, an SQLite file for bdb) are refused before anything touches disk.
    """
    e = _engine(engine)
    with _files.opening(e.name, path, uri=uri, readonly=mode != "rw") as claim:
        e.check_file(path, mode=mode, uri=uri, held=claim.held)
        if not uri and path not in (":memory:", "") and not Path(path).expanduser().resolve().parent.is_dir():
            # every engine would fail (bdb only at the first write): say so now, naming the path
            exc = _errors.make_error(14, f"unable to open database file {path!r}: its directory does not exist",
                                     extended_code=14)
            exc.filename = path
            raise exc
        raw = e.open_raw(path, mode=mode, uri=uri)
        claim.opened(raw)
    return raw


def open_raw(engine, path: str, *, mode: str = "rw", uri: bool = False):
    """Open the engine-level connection (no checks, not registered). ``ro`` modes open with
    SQLITE_OPEN_READONLY (no file is created)."""
    return _engine(engine).open_raw(path, mode=mode, uri=uri)


def open_connection(engine, path: str, *, mode: str = "rw", uri: bool = False, timeout=5.0,
                    statement_timeout=None, strict_quotes: bool = False, **policy):
    """Everything ``connect()`` does below the facade: the engine's checks, the checked open,
    strict quotes, the busy timeout, the statement time limit and the mode's policy.
    Returns the raw connection (closed and released again if any step fails)."""
    e = _engine(engine)
    e.check_process()
    # foreign files and a file another library of this process holds: refused before anything touches disk
    raw = open_checked(e, path, mode=mode, uri=uri)
    try:
        if strict_quotes:
            raw.set_double_quoted_strings(False)
        if timeout is not None:
            e.set_busy_timeout(raw, timeout)
        if statement_timeout:
            raw.timeout = float(statement_timeout)
        install(raw, e, mode=mode, **policy)
    except BaseException:
        raw.close()
        _files.release(raw)
        raise
    return raw


def install(raw, engine, *, mode: str = "rw", allow_load_extension: bool = False,
            deny_tables=(), mask_columns=(), allow_tables=None, authorizer=None):
    """Install the mode's policy on a freshly opened raw connection; returns the Policy.

    Every mode gets an authorizer (``rw`` too: it refuses ``load_extension()``
    unless allowed). The policy is set on ``raw.policy``; a connection that already
    has one refuses a second (modes are never loosened on an open connection).
    The open flags are not consulted: installing ``ro`` on a read-write handle makes
    it read-only by the authorizer alone (what the tests check).
    """
    e = _engine(engine)
    policy = Policy(mode, allow_load_extension=allow_load_extension, deny_tables=deny_tables,
                    mask_columns=mask_columns, allow_tables=allow_tables, authorizer=authorizer,
                    engine=e.name, core_version=e.version_tuple())
    return install_policy(raw, e, policy)


def install_like(raw, policy):
    """Install on ``raw`` a policy with ``policy``'s rules (a parallel-fetch worker's), built
    and checked against ``raw``'s own view of the schema exactly as at open."""
    return install_policy(raw, policy.engine, policy.like())


def install_policy(raw, engine, policy):
    """Bind ``policy`` to ``raw``'s schema, install it and freeze it; returns it."""
    e = _engine(engine)
    if getattr(raw, "policy", None) is not None:
        raise _errors.ProgrammingError("this connection already has a mode and policy; they are chosen "
                                       "when it is opened and cannot be changed")
    if policy.mode != "rw" or policy.has_table_policies:
        policy.bind_schema(_table_list(raw), _mask_columns_info(raw, policy))
    if policy.has_table_policies:  # the program check's view of the schema, read before the authorizer
        policy._btrees = policy.snapshot_btrees(lambda sql: _rows(raw, sql))
    e.install_policy(raw, policy)
    policy._freeze()
    return policy


def _mask_columns_info(raw, policy) -> dict:
    """``{(schema, table): (sql, table_xinfo rows)}`` of the main tables a mask names."""
    if not policy.mask_columns:
        return {}
    out = {}
    names = {p[1].lower() for p in policy.mask_columns}
    for name, sql in _rows(raw, "SELECT name, sql FROM main.sqlite_master WHERE type = 'table'"):
        if name.lower() not in names:
            continue
        q = _sql.quote_identifier(name)
        cols = _rows(raw, f"PRAGMA main.table_xinfo({q})") or [
            (*r, 0) for r in _rows(raw, f"PRAGMA main.table_info({q})")]
        out[("main", name)] = (sql, cols)
    return out


def _table_list(raw) -> list:
    """``PRAGMA table_list`` rows (schema, name, type, ...), read before the authorizer is on.

    Cores older than 3.37 (bdb) do not know the pragma and answer nothing.
    """
    return _rows(raw, "PRAGMA table_list")
