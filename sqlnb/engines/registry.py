"""The registry: every engine sqlnb knows, by name, and the default one.

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

import os
import sys
import warnings
from dataclasses import dataclass

from sqlnb import errors as _errors
from sqlnb._consts import ENGINES
from sqlnb.engines.base import Engine
from sqlnb.engines.bdb import BdbEngine
from sqlnb.engines.sqlite import SqliteEngine
from sqlnb.engines.system import SystemEngine

_ALL: dict[str, Engine] = {e.name: e for e in (SqliteEngine(), BdbEngine(), SystemEngine())}
assert tuple(_ALL) == ENGINES


class EngineFallbackWarning(RuntimeWarning):
    """sqlnb's compiled engine could not be loaded: connections use the stdlib's sqlite3 instead."""


@dataclass(frozen=True)
class EngineInfo:
    name: str
    available: bool
    version: str | None
    why: str | None
    description: str


def engine(name: str) -> Engine:
    """The Engine object for ``name``, loaded or not (InterfaceError for an unknown name)."""
    if isinstance(name, Engine):
        return name
    try:
        return _ALL[name]
    except (KeyError, TypeError):
        raise _errors.InterfaceError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}") from None


def get(name: str) -> Engine:
    """The Engine ``name``, its module loaded: InterfaceError for an unknown name,
    EngineUnavailableError (naming why) when it cannot load."""
    e = engine(name)
    e.load()
    return e


def engines() -> list[EngineInfo]:
    """Every engine sqlnb knows, with availability, SQLite core version and, if unavailable, why."""
    out = []
    for e in _ALL.values():
        try:
            e.load()
            out.append(EngineInfo(e.name, True, e.version(), None, e.description))
        except _errors.EngineUnavailableError as exc:
            out.append(EngineInfo(e.name, False, None, e.why_unavailable or str(exc), e.description))
    return out


_fallback_warned = False


def default() -> Engine:
    """``sqlite`` when our build is present, else ``system``.

    Falling back says so, once per process, with an :class:`EngineFallbackWarning` that
    names the reason and the fix: the stdlib engine is much slower and lacks features
    (lsm1, math functions, a columnar fetch), and that should never go unnoticed.
    """
    global _fallback_warned
    ours = _ALL["sqlite"]
    try:
        ours.load()
        return ours
    except _errors.EngineUnavailableError:
        if not _fallback_warned:
            _fallback_warned = True
            warnings.warn(
                f"sqlnb's compiled engine 'sqlite' could not be loaded: {ours.why_unavailable or 'unknown reason'}. "
                "Falling back to the stdlib's sqlite3 (engine 'system': slower, no lsm1, no columnar fetch). "
                "Fix: rebuild the extension for this Python (`make build`, or `pip install -e .` / "
                "`python setup.py build_ext --inplace` with a C compiler and Cython; `sqlnb.engines()` "
                "shows what loads), or pass engine='system' to choose the stdlib engine explicitly.",
                EngineFallbackWarning, stacklevel=_outside_sqlnb())
        return _ALL["system"]


def _outside_sqlnb() -> int:
    """The ``stacklevel`` of the first caller outside the sqlnb package, as seen from the
    function that calls this one (a warning is attributed to the user's line, not ours)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame, level = frame.f_back, level + 1
    return level
