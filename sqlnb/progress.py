"""Live progress for long statements, fetches and exports in Jupyter.

(Interim: no display yet; the notebook-experience issue fills this in.)
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def track(raw, *, label: str = "", total: int | None = None):
    """Show a live display (elapsed, rows, rows/s) while the body runs longer than ~1 s."""
    yield None
