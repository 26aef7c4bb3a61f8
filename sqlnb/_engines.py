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
        if isinstance(exc, ModuleNotFoundError) and exc.name == _MODULES[engine]:
            # (also what a module built for another Python looks like: its file name has that ABI tag)
            why = ("it was not built" + (
                " (the build found no dbsql.h or db.h: apt-get install libdb5.3-sql-dev libdb5.3-dev, then reinstall)"
                if engine == "bdb" else
                f" for this Python {sys.version_info[0]}.{sys.version_info[1]} (no C compiler or Cython at "
                "install time?)"))
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


class EngineFallbackWarning(RuntimeWarning):
    """sqlnb's compiled engine could not be loaded: connections use the stdlib's sqlite3 instead."""


_fallback_warned = False


def default_engine() -> str:
    """'sqlite' when our build is present, else 'system'.

    Falling back says so, once per process, with an :class:`EngineFallbackWarning` that
    names the reason and the fix: the stdlib engine is much slower and lacks features
    (lsm1, math functions, a columnar fetch), and that should never go unnoticed.
    """
    global _fallback_warned
    from sqlnb.errors import EngineUnavailableError

    try:
        load("sqlite")
        return "sqlite"
    except EngineUnavailableError:
        if not _fallback_warned:
            _fallback_warned = True
            import warnings

            warnings.warn(
                f"sqlnb's compiled engine 'sqlite' could not be loaded: {_failed.get('sqlite', 'unknown reason')}. "
                "Falling back to the stdlib's sqlite3 (engine 'system': slower, no lsm1, no columnar fetch). "
                "Fix: rebuild the extension for this Python (`make build`, or `pip install -e .` / "
                "`python setup.py build_ext --inplace` with a C compiler and Cython; `sqlnb.engines()` "
                "shows what loads), or pass engine='system' to choose the stdlib engine explicitly.",
                EngineFallbackWarning, stacklevel=_outside_sqlnb())
        return "system"


def _outside_sqlnb() -> int:
    """The ``stacklevel`` of the first caller outside the sqlnb package, as seen from the
    function that calls this one (a warning is attributed to the user's line, not ours)."""
    import sys

    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame, level = frame.f_back, level + 1
    return level


def explainer(engine: str):
    """A function ``(exc, sql) -> better exception or None`` for engines that explain their errors."""
    if engine == "bdb":
        from sqlnb import _bdb

        return _bdb.explain_error
    return None
