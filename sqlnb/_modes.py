"""Opening a raw connection for an engine and mode, and installing the mode's policy.

(The authorizer-enforced read-only modes are the subject of their own issue; this
module is where connect() asks for them.)
"""
from __future__ import annotations

from sqlnb import _engines

OPEN_READONLY, OPEN_READWRITE, OPEN_CREATE, OPEN_URI = 0x1, 0x2, 0x4, 0x40


def open_raw(engine: str, path: str, *, mode: str = "rw", uri: bool = False):
    """Open the engine-level connection. ``ro`` modes open with SQLITE_OPEN_READONLY (no file is created)."""
    readonly = mode != "rw"
    if engine == "system":
        from sqlnb import _system

        return _system.RawConnection(path, uri=uri, readonly=readonly)
    mod = _engines.load(engine)
    flags = OPEN_READONLY if readonly else (OPEN_READWRITE | OPEN_CREATE)
    if uri:
        flags |= OPEN_URI
    return mod.RawConnection(path, flags)


def install(raw, engine: str, *, mode: str = "rw", allow_load_extension: bool = False,
            deny_tables=(), mask_columns=(), allow_tables=None, authorizer=None) -> None:
    """Install the mode's policy on a freshly opened raw connection."""
    if mode != "rw" or deny_tables or mask_columns or allow_tables is not None or authorizer is not None:
        raise NotImplementedError("read-only modes and policies are not implemented yet")
