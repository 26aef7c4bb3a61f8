"""Types of ``sqlnb._fast_bdb``: the surface of ``sqlnb._fast`` (see ``_fast.pyi``),
compiled against BerkeleyDB SQL, plus the BerkeleyDB-only functions (``_core/bdb_env.pxi``)."""
from __future__ import annotations

from os import PathLike

from sqlnb._fast import *  # noqa: F403

def lock_watch(home: str | bytes | PathLike[str], timeout: float) -> None: ...
def lock_unwatch(home: str | bytes | PathLike[str]) -> None: ...
def clear_dead_env(home: str | bytes | PathLike[str]) -> int: ...
