"""Foreign files: refused before BerkeleyDB or SQLite touches the disk.

A real SQLite file opened with ``bdb`` would get a ``<name>-journal/`` directory
that makes SQLite fail on the file afterwards; a BerkeleyDB database opened with
``sqlite``/``system`` is "not a database" there. Each engine's ``check_file``
calls one of the two checks below. A file a connection of this process holds is
never read here (``held``): closing a descriptor of our own would drop the
process's POSIX locks on it (see ``sqlnb._files``).
"""
from __future__ import annotations

import os

from sqlnb import errors as _errors
from sqlnb._files import SQLITE_MAGIC, env_dir, is_bdb_env, is_bdb_file, read_head  # noqa: F401  (the file facts: one copy)

def _cant_open(message: str, path) -> _errors.Error:
    exc = _errors.make_error(14, message, cls=_errors.CantOpenError)
    exc.filename = path
    return exc


def check_sqlite_file(path: str, *, uri: bool = False, held: bool = False) -> None:
    """Refuse a BerkeleyDB file (or an SQLite file with a BerkeleyDB environment) for an SQLite library."""
    if not path or path == ":memory:" or uri or str(path).startswith("file:"):
        return
    p = os.fspath(path)
    if not os.path.exists(p) or os.path.isdir(p) or held:
        return
    try:
        head = read_head(p)
    except OSError:
        return
    if is_bdb_file(head):
        raise _errors.make_error(
            26, f"file is not a database: {p!r} is a BerkeleyDB SQL database; open it with "
                f"engine='bdb' (or a bdb:/// URL)", cls=_errors.NotADatabaseError)
    if head.startswith(SQLITE_MAGIC) and is_bdb_env(p):
        raise _errors.make_error(
            10, f"{p!r} is an SQLite database, but a BerkeleyDB environment directory "
                f"{env_dir(p)!r} sits next to it (left by opening it with the bdb engine); SQLite "
                f"reads that as a hot journal and fails with 'disk I/O error'. Remove that directory "
                f"(it holds no data of this file) and open again", cls=_errors.IOError_)


def check_bdb_file(path: str, *, mode: str = "rw") -> bool:
    """Refuse a file BerkeleyDB SQL would get wrong (an SQLite file, not a database, a missing
    file in a read-only mode). Returns False when the file was not read because it does not
    exist yet (a new database). The caller handles URIs, ``:memory:`` and held files."""
    p = os.fspath(path)
    if not os.path.exists(p):
        if mode != "rw":
            raise _cant_open(f"unable to open database file: {p!r} does not exist "
                             f"(mode={mode!r} is read-only and never creates one)", path)
        if not os.path.isdir(os.path.dirname(os.path.abspath(p))):
            raise _cant_open(f"unable to open database file {p!r}: its directory does not exist", path)
        return False
    if not os.path.isfile(p):
        what = "is a directory" if os.path.isdir(p) else "is not a regular file"
        raise _cant_open(f"unable to open database file: {p!r} {what}", path)
    return True


def check_bdb_head(path: str) -> None:
    """Read an existing regular file's first bytes and refuse anything but a BerkeleyDB database."""
    p = os.fspath(path)
    try:
        head = read_head(p)
    except OSError as exc:
        raise _errors.make_error(14, f"unable to open database file {p!r}: {exc.strerror}",
                                 cls=_errors.CantOpenError) from None
    if head.startswith(SQLITE_MAGIC):
        raise _errors.make_error(
            26, f"{p!r} is an SQLite database file, not a BerkeleyDB SQL database: open it with "
                f"engine='sqlite' (the bdb engine refuses it so that it never leaves a "
                f"{os.path.basename(env_dir(p))}/ directory next to it, which would make SQLite "
                f"fail on the file)", cls=_errors.NotADatabaseError)
    if not is_bdb_file(head):
        what = "an empty file" if not head else "not a database"
        raise _errors.make_error(
            26, f"file is not a database: {p!r} is {what}, not a BerkeleyDB SQL database "
                f"(nothing was changed on disk)", cls=_errors.NotADatabaseError)
