"""Old home of the engine registry, kept for the names that were importable here.

``EngineFallbackWarning`` stays importable from here (warning filters name it);
``load``/``engines``/``default_engine`` serve callers not yet moved to
:mod:`sqlnb.engines` (``get(name).load()``, ``engines()``, ``default().name``).
"""
from __future__ import annotations

from sqlnb.engines import EngineFallbackWarning, EngineInfo, default, engines, get

__all__ = ["EngineFallbackWarning", "EngineInfo", "engines", "load", "default_engine"]


def load(engine: str):
    """The module of ``engine`` (EngineUnavailableError when it cannot load)."""
    return get(engine).load()


def default_engine() -> str:
    return default().name
