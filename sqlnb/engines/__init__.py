"""The storage engines sqlnb can open, each an :class:`Engine` object.

``get(name)`` gives an engine (loaded), ``default()`` the one ``connect()`` uses
without a choice, ``engines()`` the list with availability and versions. Code
outside this package asks an engine for a capability (``has``/``lacks``) or calls
one of its hooks; it never compares engine names. ``open`` holds opening a raw
connection and installing a mode's policy; ``protocol`` the driver protocol the
compiled core and the stdlib adapter both satisfy. See docs/architecture.md.

The package is also the public function ``sqlnb.engines()``: calling the module
returns :func:`engines` (``sqlnb.engines`` names both, as it did before it was a package).
"""
import sys
import types

from sqlnb._consts import ENGINES, MODES
from sqlnb.engines.base import CAPABILITIES, Engine
from sqlnb.engines.registry import EngineFallbackWarning, EngineInfo, default, engine, engines, get

__all__ = ["ENGINES", "MODES", "CAPABILITIES", "Engine", "EngineInfo", "EngineFallbackWarning",
           "get", "default", "engines", "engine"]


class _Callable(types.ModuleType):
    """``sqlnb.engines()``: the package called is :func:`engines`."""

    def __call__(self) -> list:
        return engines()


sys.modules[__name__].__class__ = _Callable
