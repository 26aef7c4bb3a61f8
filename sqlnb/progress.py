"""Live progress for long statements, fetches and exports in Jupyter.

``track(raw)`` wraps anything that steps statements on one engine connection::

    with progress.track(con.raw, label="flights"):
        df = con.query_df("select ...")

Inside a Jupyter kernel, once the body has run for ``DELAY`` seconds (about
one), a one-line display appears under the cell and is updated in place
(elapsed time, rows so far, rows/s; a percentage when ``total`` is known).
When the body ends normally the display is emptied (the result's own footer
carries the timing); when it ends with an exception (the interrupt button,
a time limit, an error) it settles into one line saying what stopped it and
when. Statements faster than ``DELAY`` show nothing at all.

How it is fed: the engine's progress handler (``sqlnb/_fast.pyx``) calls
``raw.progress_callback()`` every ``raw.set_progress_report(seconds)`` while
SQLite steps (with the GIL held), and the fetch/export loops keep a running
row count in ``raw.rows_seen``. ``track`` installs its own callback for the
duration of the body and restores the previous one afterwards. Outside a
Jupyter kernel (a script, a terminal IPython) it does nothing and installs
nothing, so it costs one check per call.
"""
from __future__ import annotations

import html
import sys
import time

DELAY = 1.0   # seconds before a display appears
EVERY = 0.25  # seconds between updates of a shown display

__all__ = ["track", "Tracker", "in_kernel", "DELAY", "EVERY"]


_kernel_shell = None  # found once; a process that runs a kernel stays one


def in_kernel():
    """The IPython shell when running inside a Jupyter kernel, else None.

    Only a kernel shell (ipykernel's ``ZMQInteractiveShell``, which has a
    ``kernel``) can show an updatable display; a terminal IPython cannot.
    """
    global _kernel_shell
    if _kernel_shell is not None:
        return _kernel_shell
    ipy = sys.modules.get("IPython")
    if ipy is None or "ipykernel" not in sys.modules:  # no kernel without ipykernel imported
        return None
    try:
        shell = ipy.get_ipython()
    except Exception:  # noqa: BLE001 - a half-imported IPython is "not a kernel"
        return None
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    _kernel_shell = shell
    return shell


def _rate(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    return f"{n:.0f}"


class Tracker:
    """The live display of one ``track`` block (created by :func:`track`)."""

    __slots__ = ("raw", "label", "total", "delay", "every", "started", "handle", "updates",
                 "_last", "_chained")

    def __init__(self, raw, label: str = "", total: int | None = None,
                 delay: float = DELAY, every: float = EVERY):
        self.raw = raw
        self.label = label
        self.total = total
        self.delay = delay
        self.every = every
        self.started = time.monotonic()
        self.handle = None       # the IPython DisplayHandle once shown
        self.updates = 0         # how many times the display was drawn
        self._last = 0.0
        self._chained = None     # a progress_callback that was there before us

    # --- what is shown --------------------------------------------------------
    def rows(self):
        n = getattr(self.raw, "rows_seen", None)
        return n if isinstance(n, int) else None

    def line(self, state: str = "running") -> str:
        elapsed = time.monotonic() - self.started
        parts = [f"{elapsed:.1f} s"]
        rows = self.rows()
        if rows:
            parts.append(f"{rows:,} rows")
            if elapsed > 0:
                parts.append(f"{_rate(rows / elapsed)} rows/s")
            if self.total:
                parts.append(f"{min(100.0, 100.0 * rows / self.total):.0f}%")
        head = f"{state} {self.label}".strip()
        return f"{head} \u00b7 " + " \u00b7 ".join(parts)

    def _bundle(self, state: str, icon: str):
        text = self.line(state)
        color = "#777" if state == "running" else "#a33"
        body = (f'<div class="sqlnb-progress" data-state="{html.escape(state, quote=True)}" '
                f'style="font-family:var(--jp-code-font-family,monospace);font-size:12px;color:{color}">'
                f"{icon} {html.escape(text)}</div>")
        return {"text/plain": text, "text/html": body}

    # --- called by the engine's progress handler (GIL held, inside sqlite3_step) ---
    def tick(self):
        """Redraw if due. Never asks SQLite to stop (returns the chained callback's answer)."""
        now = time.monotonic()
        if now - self.started >= self.delay and now - self._last >= self.every * 0.8:
            self._last = now
            self._draw()
        if self._chained is not None:
            return self._chained()
        return None

    def _draw(self):
        if self.handle is False:
            return
        bundle = self._bundle("running", "\u25b6")
        try:
            if self.handle is None:
                from IPython.display import DisplayHandle

                # the handle exists before the display is sent, so a Ctrl-C landing just after
                # it is sent still finds it in finish() and settles the display
                self.handle = DisplayHandle()
                self.handle.display(bundle, raw=True)
            else:
                self.handle.update(bundle, raw=True)
            self.updates += 1
        except Exception:  # noqa: BLE001 - a display failure must never fail the query
            self.handle = False  # and is not retried

    def finish(self, exc: BaseException | None):
        """Empty the display after success; settle it into one line after a failure."""
        if not self.handle:
            return
        try:
            if exc is None:
                self.handle.update({"text/plain": "", "text/html": ""}, raw=True)
            else:
                why = type(exc).__name__
                bundle = self._bundle(f"stopped ({why})", "\u25a0")
                self.handle.update(bundle, raw=True)
        except Exception:  # noqa: BLE001
            pass


class track:
    """Show a live display (elapsed, rows, rows/s) while the body runs longer than ~1 s.

    ``with track(raw, label="..."):`` -- a context manager (a small class, not
    a generator, to keep the cost per statement low).

    :param raw: the engine connection (``Connection.raw``) whose statements the body runs.
    :param label: a few words shown in the display (e.g. the statement's first line).
    :param total: the expected row count, if known (adds a percentage).
    :param delay: seconds before showing anything (default ``DELAY``).
    :param every: seconds between updates (default ``EVERY``).

    ``as`` gives the :class:`Tracker` (None outside a kernel). Nested ``track``
    blocks on the same connection reuse the outer display.
    """

    __slots__ = ("raw", "label", "total", "delay", "every", "tracker", "_previous")

    def __init__(self, raw, *, label: str = "", total: int | None = None,
                 delay: float | None = None, every: float | None = None):
        self.raw = raw
        self.label = label
        self.total = total
        self.delay = delay
        self.every = every
        self.tracker = None

    def __enter__(self):
        raw = self.raw
        if raw is None or in_kernel() is None or not hasattr(raw, "set_progress_report"):
            return None
        current = getattr(raw, "progress_callback", None)
        owner = getattr(current, "__self__", None)
        if isinstance(owner, Tracker):
            return owner  # an outer block is already tracking this connection
        tracker = Tracker(raw, self.label, self.total,
                          DELAY if self.delay is None else self.delay,
                          EVERY if self.every is None else self.every)
        tracker._chained = current
        if type(getattr(raw, "rows_seen", None)) is int:
            raw.rows_seen = 0
        raw.progress_callback = tracker.tick
        raw.set_progress_report(tracker.every)
        self.tracker = tracker
        self._previous = current
        return tracker

    def __exit__(self, exc_type, exc, tb):
        tracker = self.tracker
        if tracker is None:
            return False
        self.tracker = None
        raw = self.raw
        raw.progress_callback = self._previous
        if self._previous is None:
            try:
                raw.set_progress_report(0)
            except Exception:  # noqa: BLE001 - a closed connection keeps no schedule
                pass
        tracker.finish(exc)
        return False
