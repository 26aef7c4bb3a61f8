"""The workers of a parallel fetch: their connections and their threads.

* A worker connection is a fresh read-only connection to the main connection's file
  (:func:`open_reader`): it gets the main connection's result-changing settings and
  policy, and begins its read transaction at the main connection's moment.
* :class:`Stop` says why a fetch stops early (Ctrl-C, ``interrupt()``, the time limit, a
  worker's error); :class:`HoldCtrlC` turns Ctrl-C into such a request while workers
  exist; :class:`Crew` starts the threads and never lets one outlive the fetch.
"""
from __future__ import annotations

import signal
import threading

from sqlnb.engines.base import OPEN_NOMUTEX, OPEN_READONLY, OPEN_URI
from sqlnb.engines.open import install_like
from sqlnb import errors as _errors
from sqlnb.frames.scan import query_rows

# sqlite3_db_config switches that change what a statement means or returns (copied to every
# worker): TRIGGER, WRITABLE_SCHEMA, LEGACY_ALTER_TABLE, DQS_DML, DQS_DDL, VIEW, TRUSTED_SCHEMA,
# COMMENTS
_COPIED_CONFIG = (1003, 1011, 1012, 1013, 1014, 1015, 1017, 1022)
_LIMITS = range(12)  # SQLITE_LIMIT_LENGTH (0) .. SQLITE_LIMIT_WORKER_THREADS (11)
_BUSY_TIMEOUT = 5.0  # a worker's wait for a lock once it reads


# --- a worker's connection ------------------------------------------------------------------
def open_reader(raw, mod, snap, sql, opened):
    """Open a worker connection on ``raw``'s file, appended to ``opened`` at once (the caller
    closes it, whatever happens next); it reads at ``raw``'s moment (``snap``, see
    :func:`begin_read`) under ``raw``'s settings and policy. Returns its statement of ``sql``."""
    # read-only, URI filenames as the main connection, no SQLite mutex (each is used by one thread)
    flags = OPEN_READONLY | (raw.flags & OPEN_URI) | OPEN_NOMUTEX
    w = mod.RawConnection(raw.filename, flags)
    opened.append(w)
    share_settings(raw, mod, w)
    # rollback journal (no snapshot): waiting for a read lock while ours is held could
    # only wait for a writer that waits for us, so no busy timeout until it is taken
    w.busy_timeout(0.0 if snap is None else _BUSY_TIMEOUT)
    try:
        begin_read(w, mod, snap)
    except _errors.BusyError as exc:
        raise NoReadLock() from exc
    w.busy_timeout(_BUSY_TIMEOUT)
    install_policy(raw, w)
    st, _ = w.prepare(sql.encode("utf-8", "surrogateescape"), 0)
    return st


def share_settings(raw, mod, w):
    """Give worker ``w`` ``raw``'s result-changing settings (before it prepares anything)."""
    for op in _COPIED_CONFIG:
        v = mod.db_config_flag(raw, op)
        if v is not None:
            mod.db_config_flag(w, op, v)
    for cat in _LIMITS:
        w.limit(cat, raw.limit(cat))
    mod.copy_functions(raw, w)  # the user's functions and collations (sqlnb.stdlib.surface)


def install_policy(raw, w):
    """Install ``raw``'s mode and policies on worker ``w``: the same rules, built against the
    worker's view of the schema as at open (masked columns read as NULL there too, denied
    tables stay denied, each statement's program is checked)."""
    policy = getattr(raw, "policy", None)
    if policy is not None:
        install_like(w, policy)


# --- one moment for every worker -----------------------------------------------------------
class Moved(Exception):
    """Start again: a commit landed while the workers began to read (only possible in a WAL
    database whose WAL had no frame yet, where no snapshot can be taken), or a worker could
    not take its read lock (:class:`NoReadLock`). ``why``: the refusal once no attempt is
    left."""

    why = "the database kept changing while the workers began to read it"


class NoReadLock(Moved):
    why = ("a worker connection could not begin reading while this connection held its read "
           "lock (another connection is waiting to commit, or the database's locks exclude "
           "other connections, as the unix-dotfile VFS's do)")


def snapshot_of(raw, mod):
    """The WAL snapshot ``raw``'s read transaction reads, or None (rollback journal, or a WAL
    with no frame written since it was created)."""
    if not mod.HAVE_SNAPSHOT:
        return None
    try:
        return mod.snapshot_get(raw)
    except _errors.Error:
        return None


def begin_read(w, mod, snap):
    """Begin worker ``w``'s read transaction at the main connection's moment, while the main
    connection holds its own read transaction: at ``snap`` (WAL), or now (rollback journal:
    the main connection's SHARED lock keeps every commit out until this read has begun).

    Rollback journal and a writer that starts to commit meanwhile: it takes PENDING, which
    refuses every new SHARED lock, and waits for ours. SQLite's unix VFS keeps one POSIX
    lock per file and process, and a connection of a process that already holds SHARED
    shares it without asking the file, so the worker still begins. Where locks are per
    connection (unix-dotfile, other systems' VFSes) it cannot: the caller gives ``w`` no
    busy timeout here, and the BusyError makes the fetch let go and start again."""
    query_rows(w, "PRAGMA main.schema_version")  # once outside a transaction: the pager learns WAL
    query_rows(w, "BEGIN")
    if snap is not None:
        mod.snapshot_open(w, snap)
    else:
        query_rows(w, "PRAGMA main.schema_version")  # the read transaction starts (SHARED lock)
        if snapshot_of(w, mod) is not None:  # a WAL that had no frame for main has one now
            raise Moved()


# --- stopping: Ctrl-C, interrupt(), the time limit, a worker's error ------------------------
class Stop:
    """Why a parallel fetch stops early. Set by the main thread (its SIGINT handler, its
    wait loop) and by a failing worker; read by the workers before each range. Plain
    attributes only: the SIGINT handler may run between any two bytecodes of the main
    thread, so nothing here takes a lock."""

    def __init__(self, raw, mod):
        self.raw, self.mod = raw, mod
        self.interrupts0 = mod.interrupt_count(raw)
        self.requested = False
        self.signal = None  # (signum, frame) of a Ctrl-C held back until every worker is joined
        self.timed_out = False
        self.conns = []  # the worker connections of the current attempt: interrupted, then closed

    def interrupted(self):
        """``Connection.interrupt()`` was called since the fetch began."""
        return self.mod.interrupt_count(self.raw) != self.interrupts0

    def request(self):
        self.requested = True
        for w in tuple(self.conns):
            w.interrupt()  # lock-free; does nothing on a closed connection

    def asked(self):
        return self.requested or self.signal is not None or self.interrupted()


class HoldCtrlC:
    """While the workers exist, Ctrl-C (SIGINT in the main thread) asks them to stop instead
    of raising KeyboardInterrupt at whatever bytecode it lands on (inside Thread.start(), in
    the middle of the cleanup); the KeyboardInterrupt comes when the block ends, after every
    worker was joined and every worker connection closed. Elsewhere than in the main thread
    no signal can land, and nothing is changed."""

    def __init__(self, stop):
        self.stop = stop
        self.old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                old = signal.getsignal(signal.SIGINT)
                if callable(old):
                    self.old = old
                    signal.signal(signal.SIGINT, self._held)
            except (ValueError, OSError):  # not the main interpreter, or no signals here
                self.old = None
        return self

    def _held(self, signum, frame):
        if self.stop.signal is None:
            self.stop.signal = (signum, frame)
        self.stop.request()

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
            if self.stop.signal is not None:
                self.old(*self.stop.signal)  # the held Ctrl-C: KeyboardInterrupt, now
        return False


class Crew:
    """The threads of one parallel fetch, started and waited for so that none can still run
    once the fetch has returned or raised, whatever interrupts the starting or the waiting:
    ``close()`` runs in a ``finally`` and waits for every thread that got going; a thread
    that only gets going after it (its start() was interrupted after the OS thread began)
    finds the crew closed and touches nothing."""

    def __init__(self, target, n):
        self._target = target
        self._gate = threading.Lock()
        self._closed = False
        self.threads = [threading.Thread(target=self._run, args=(i,), name=f"sqlnb-parallel-fetch-{i}",
                                         daemon=True) for i in range(n)]

    def _run(self, i):
        with self._gate:
            if self._closed:
                return
        self._target(i)

    def start(self):
        for t in self.threads:
            t.start()

    def wait(self, poll):
        for t in self.threads:
            while t.is_alive():
                t.join(0.05)
                poll()

    def running(self):
        return any(t.is_alive() for t in self.threads)

    def close(self, stop):
        """Stop every worker and wait for those running; an exception meanwhile (a
        KeyboardInterrupt where no handler holds it back) is kept and raised once they are."""
        pending = None
        while True:
            try:
                with self._gate:
                    self._closed = True
                stop.request()
                for t in self.threads:
                    while t.is_alive():
                        t.join(0.05)
                break
            except BaseException as exc:  # noqa: BLE001 - raised below, after the join
                pending = pending or exc
        if pending is not None:
            raise pending
