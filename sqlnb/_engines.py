"""The storage engines sqlnb can open, and how each one's module is loaded.

============  ==========================================================
``sqlite``    our own SQLite (the pinned amalgamation, with lsm1), compiled
              into ``sqlnb._fast`` with every symbol hidden
``bdb``       BerkeleyDB's SQL front-end: the same Cython source compiled
              against ``libdb_sql`` (``sqlnb._fast_bdb``), loaded with
              ``RTLD_DEEPBIND`` so it can never bind to another SQLite
``system``    the stdlib ``sqlite3`` module, pure Python, always present
============  ==========================================================
"""
from __future__ import annotations

import importlib
import os
import sqlite3 as _stdlib
import sys
from dataclasses import dataclass

_MODULES = {"sqlite": "sqlnb._fast", "bdb": "sqlnb._fast_bdb"}
_loaded: dict[str, object] = {}
_failed: dict[str, str] = {}


def _import_deepbind(name: str):
    """Import an extension with RTLD_DEEPBIND: its own library's symbols win over any global ones."""
    old = sys.getdlopenflags()
    flags = os.RTLD_NOW | os.RTLD_LOCAL | getattr(os, "RTLD_DEEPBIND", 0)
    sys.setdlopenflags(flags)
    try:
        return importlib.import_module(name)
    finally:
        sys.setdlopenflags(old)


def load(engine: str):
    """Return the compiled module for ``engine`` ('sqlite' or 'bdb'), or raise EngineUnavailableError."""
    if engine in _loaded:
        return _loaded[engine]
    from sqlnb.errors import EngineUnavailableError

    if engine not in _MODULES:
        raise EngineUnavailableError(
            f"unknown engine {engine!r}; choose one of: {', '.join(list(_MODULES) + ['system'])}")
    if engine in _failed:
        raise EngineUnavailableError(f"engine {engine!r} is not available: {_failed[engine]}")
    try:
        mod = _import_deepbind(_MODULES[engine]) if engine == "bdb" else importlib.import_module(_MODULES[engine])
    except ImportError as exc:
        why = str(exc)
        if "No module named" in why:
            why = ("it was not built" + (
                " (the build found no dbsql.h or db.h: apt-get install libdb5.3-sql-dev libdb5.3-dev, then reinstall)"
                if engine == "bdb" else " (no C compiler or Cython at install time)"))
        _failed[engine] = why
        raise EngineUnavailableError(f"engine {engine!r} is not available: {why}") from exc
    if engine == "bdb":
        from sqlnb import _bdb

        _bdb.setup(mod)
    _loaded[engine] = mod
    return mod


@dataclass(frozen=True)
class EngineInfo:
    name: str
    available: bool
    version: str | None
    why: str | None
    description: str


_DESCRIPTIONS = {
    "sqlite": "sqlnb's own SQLite build (amalgamation + lsm1, Cython columnar fetcher)",
    "bdb": "BerkeleyDB SQL (libdb_sql), same Cython driver",
    "system": "the stdlib sqlite3 module (pure Python fallback)",
}


def engines() -> list[EngineInfo]:
    """Every engine sqlnb knows, with availability, SQLite core version and, if unavailable, why."""
    from sqlnb.errors import EngineUnavailableError

    out = []
    for name in ("sqlite", "bdb"):
        try:
            mod = load(name)
            out.append(EngineInfo(name, True, mod.sqlite_version(), None, _DESCRIPTIONS[name]))
        except EngineUnavailableError as exc:
            out.append(EngineInfo(name, False, None, _failed.get(name, str(exc)), _DESCRIPTIONS[name]))
    out.append(EngineInfo("system", True, _stdlib.sqlite_version, None, _DESCRIPTIONS["system"]))
    return out


def default_engine() -> str:
    """'sqlite' when our build is present, else 'system'."""
    from sqlnb.errors import EngineUnavailableError

    try:
        load("sqlite")
        return "sqlite"
    except EngineUnavailableError:
        return "system"


def explainer(engine: str):
    """A function ``(exc, sql) -> better exception or None`` for engines that explain their errors."""
    if engine == "bdb":
        from sqlnb import _bdb

        return _bdb.explain_error
    return None
