"""What the BerkeleyDB SQL engine (a SQLite 3.7.6.2 core) needs beyond the shared driver."""
from __future__ import annotations


def explain_error(exc, sql: str):
    """Return a clearer exception for ``exc`` raised by ``sql`` on the bdb engine, or None."""
    return None


def setup(module) -> None:
    """Called once when the bdb engine's module is first loaded (process-wide safety settings)."""
