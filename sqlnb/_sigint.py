"""Ctrl-C that Python would otherwise lose while sqlnb steps a statement.

Ctrl-C, and the notebook's stop button, reach Python as SIGINT. Python's handler raises
KeyboardInterrupt in whatever Python code the main thread runs next. During a long fetch that can
be a weakref callback or a ``__del__`` that the garbage collector runs between two rows; Python
then prints "Exception ignored in ..." and the interrupt is gone, and the statement would run on
(tests/test_kernel.py saw it: the kernel stayed busy until restarted).

So while sqlnb runs a statement in the main thread and SIGINT means KeyboardInterrupt (the handler
is Python's default), :func:`mark` puts :func:`_handler` in its place: it counts the signal, then
does what the default does. The step loops' progress check (``_core/progress.pxi``; the
``system`` engine's progress handler) compares :data:`count` with the mark taken when the
statement started, and stops the statement with KeyboardInterrupt when it moved,
whether or not the KeyboardInterrupt reached them. A handler the user or a host installed is left
alone.
"""
from __future__ import annotations

import signal
import threading

try:  # the C function: signal.getsignal wraps it in an enum conversion costing microseconds a call
    from _signal import getsignal as _getsignal
except ImportError:  # pragma: no cover - another Python
    _getsignal = signal.getsignal

#: SIGINTs that :func:`_handler` has seen (the main thread only changes it)
count = 0

_MAIN = threading.main_thread().ident


def _handler(signum, frame):
    """SIGINT while sqlnb runs a statement: counted, then Python's default (KeyboardInterrupt)."""
    global count
    count += 1
    signal.default_int_handler(signum, frame)


def arm() -> bool:
    """Put :func:`_handler` in place of Python's default SIGINT handler (a host such as IPython's
    kernel may have put the default back since); False outside the main thread (signals only reach
    the main thread) or when another handler is installed (then SIGINT is not sqlnb's to count)."""
    if threading.get_ident() != _MAIN:
        return False
    current = _getsignal(signal.SIGINT)
    if current is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)
        return True
    return current is _handler


def mark() -> int:
    """When a statement starts: :data:`count` now, counting armed (:func:`arm`); -1 when not counted.
    A statement that resumes (the next rows of the same run) keeps its mark, and nothing is called
    per row: a Ctrl-C lost between two of its steps still stops it at its next progress check."""
    return count if arm() else -1


def moved(since: int) -> bool:
    """A SIGINT came after :func:`mark` returned ``since`` (never for -1)."""
    return since >= 0 and count != since


__all__ = ["count", "arm", "mark", "moved"]
