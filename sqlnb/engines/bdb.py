"""The ``bdb`` engine: BerkeleyDB's SQL front-end (a SQLite 3.7.6.2 core) behind the same driver.

The same Cython source compiled against ``libdb_sql`` (``sqlnb._fast_bdb``), loaded
with ``RTLD_DEEPBIND`` so it can never bind to another SQLite. What it needs beyond
the shared driver lives in :class:`BdbEngine`'s hooks:

* **open checks**: URI filenames (3.7.7) are refused, foreign files before
  anything touches disk (``engines.files``); a file another connection of this
  process holds with a transaction open is refused (the open would wait forever).
* **locks**: BerkeleyDB waits forever where SQLite would say "database is
  locked". :meth:`BdbEngine.before_statement` refuses a statement another
  connection *in this process* blocks, and bounds waits for other processes'
  locks (:meth:`BdbEngine._watch_locks`); :meth:`BdbEngine.call` tries a refused
  wait again until the connection's timeout. Before a connection's first
  statement, :meth:`BdbEngine._recover_abandoned` has BerkeleyDB recover an
  environment that processes died in (SIGKILL) instead of letting the open hang.
* **rows**: a stepped-but-unfinished statement holds table locks, so a cursor keeps
  a finished result instead (:class:`BufferedRows`).
* **fork guard**: a child forked while bdb connections were open can neither use
  the inherited connections nor open new ones (BerkeleyDB environments are not
  fork-safe), and never closes the parent's handles on exit.
* **errors**: :func:`sqlnb.engines.bdb_features.explain_error` names what the old core lacks.

Each Connection's bookkeeping is one :class:`_State`, owned by the engine object
(one per process) in a weak dictionary.
"""
from __future__ import annotations

import os
import threading
import time
import weakref
from dataclasses import dataclass

from sqlnb import errors as _errors
from sqlnb.engines import bdb_features as _features
from sqlnb.engines import files as _files
from sqlnb.engines.base import Engine, import_deepbind

# what sqlnb_bdb_clear_dead_env() found (sqlnb/_core/bdb_recover.h)
ENV_HEALTHY, ENV_CLEARED, ENV_SHARED_DEAD, ENV_OPEN_HERE, ENV_BUSY = range(5)

LOCK_WAIT = 0.05  # seconds one lock request may wait before BerkeleyDB refuses it (see _watch_locks)


def _key(path: str) -> str | None:
    if not path or path == ":memory:":
        return None  # a private in-memory database: nothing to share
    return os.path.realpath(path)


@dataclass
class _State:
    """One bdb Connection's bookkeeping."""

    key: str | None          # the database's real path (None: a private in-memory database)
    timeout: float           # how long a statement retries a refused lock wait (connect(timeout=))
    used: bool = False       # it has run (or is running) a statement: its environment may be open
    watch: object = None     # weakref.finalize that stops the lock watch, once it runs
    open_refused: bool = False  # its last call gave up on a lock: the next may see NOMEM once


class BufferedRows:
    """A finished SELECT's rows, standing in for the RawStatement a Cursor would keep open.

    On bdb a stepped-but-unfinished statement holds table locks that block
    every other connection (and in one thread deadlocks it), so a Cursor
    fetches the whole result at execute() and finalizes the statement at once.
    """

    def __init__(self, st, first_row):
        self.sql = st.sql
        self._names = st.column_names()
        self._decltypes = st.decltypes()
        rows = [first_row]
        try:
            while True:
                chunk = st.fetchmany(4096)
                rows.extend(chunk)
                if len(chunk) < 4096:
                    break
        finally:
            st.finalize()
        self._rows = rows
        self._pos = 1  # the first row was already handed to the cursor
        self._current = first_row
        self.done = len(rows) == 1
        self.finalized = False
        self.column_count = len(self._names)
        self.readonly = True

    def column_names(self):
        return list(self._names)

    def decltypes(self):
        return list(self._decltypes)

    def step(self):
        if self._pos < len(self._rows):
            self._current = self._rows[self._pos]
            self._pos += 1
            return True
        self.done = True
        return False

    def row(self):
        return self._current

    def fetchmany(self, size):
        out = self._rows[self._pos:self._pos + size]
        self._pos += len(out)
        if self._pos >= len(self._rows):
            self.done = True
        return out

    def remaining(self):
        """The rows not handed out yet (for the columnar fetchers)."""
        return self._rows[self._pos:]

    def finalize(self):
        self._rows = []
        self._pos = 0
        self.finalized = True


class _ForkedRaw:
    """Stands in, in a forked child, for a bdb connection that belongs to the parent."""

    def __init__(self, raw, error):
        self._closed = False
        self._error = error
        self.timeout = getattr(raw, "timeout", 0.0)
        self.policy = None

    @property
    def closed(self):
        return self._closed

    def close(self):
        self._closed = True  # never sqlite3_close: the handle is the parent's

    def __getattr__(self, name):
        raise self._error()


class BdbEngine(Engine):
    name = "bdb"
    description = "BerkeleyDB SQL (libdb_sql), same Cython driver"
    file_format = "bdb"
    module_name = "sqlnb._fast_bdb"
    capabilities = frozenset(("columnar_fetch", "columnar_export"))
    capabilities = capabilities | {"profile_sketch"}   # the sqlnb_profile aggregate (pure C, no newer API)
    missing = {
        "parallel_fetch": "BerkeleyDB locks the table for a reader",
        "multirow_values": "BerkeleyDB's 3.7.6 core predates multi-row VALUES (3.7.11)",
        "export_cache": "BerkeleyDB keeps its cache in its environment",
        "window": "window functions came with SQLite 3.25",
        "window_udf": "window functions (sqlite3_create_window_function) came with SQLite 3.25",
        "json": "JSON functions came with SQLite 3.38",
        "math": "math functions came with SQLite 3.35",
        "wal": "BerkeleyDB SQL ignores journal_mode=WAL",
        "snapshot": "BerkeleyDB SQL has no WAL snapshots",
        "lsm1": "lsm1 is part of sqlnb's own SQLite build only",
        "uri": "URI filenames came with SQLite 3.7.7",
        "strict_quotes": "its SQLite 3.7.6.2 core always accepts double-quoted strings",
        "busy_handler": "BerkeleyDB SQL answers its busy handler by waiting again, without limit",
    }

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._states: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # Connection -> _State
        self._forked_from: int | None = None   # parent pid, set in a child forked with bdb connections open
        self._leaked: list = []                # parents' handles an older core module cannot forget
        self._fork_hook = False

    # --- loading ---------------------------------------------------------------------------
    def _import(self):
        return import_deepbind(self.module_name)

    def _not_built(self) -> str:
        return ("it was not built (the build found no dbsql.h or db.h: apt-get install libdb5.3-sql-dev "
                "libdb5.3-dev, then reinstall from source: pip install --no-binary sqlnb sqlnb; "
                "the portable wheels leave it out)")

    def _loaded(self, module) -> None:
        """Process-wide safety settings, once: the library's own version check and the fork guard."""
        version = module.sqlite_version()
        if version != module.HEADER_VERSION or getattr(module, "FLAVOUR", "bdb") != "bdb":
            raise ImportError(f"sqlnb bdb engine: module reports SQLite {version} / flavour "
                              f"{getattr(module, 'FLAVOUR', '?')}, expected BerkeleyDB SQL "
                              f"{module.HEADER_VERSION}")
        _features.set_core_version(version)
        if not self._fork_hook and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_child)
        self._fork_hook = True

    # --- opening ------------------------------------------------------------------------------
    def check_process(self) -> None:
        self.load()  # the engine's own checks (library version, fork guard) first
        if self._forked_from is not None:
            raise self._fork_error()

    def check_file(self, path: str, *, mode: str = "rw", uri: bool = False, held: bool = False) -> None:
        if uri or str(path).startswith("file:"):
            raise _features.feature_error(_features.Missing("uri", "URI filenames (file:...?mode=...)", "3.7.7"))
        if not path or path == ":memory:" or not _files.check_bdb_file(path, mode=mode):
            return
        if held:  # (an open waits for another connection's write lock forever, like a statement)
            self._refuse_if_busy_here(_key(os.fspath(path)), None)
            return
        _files.check_bdb_head(path)

    def set_busy_timeout(self, raw, seconds) -> None:
        """Nothing: BerkeleyDB SQL answers its busy handler by waiting for the lock again, without
        limit; its waits are bounded by a lock timeout instead (see :meth:`_watch_locks`)."""

    # --- a connection's life ------------------------------------------------------------------------
    def on_open(self, con, timeout) -> None:
        """Track a bdb Connection: the lock check, the lock timeout and the fork guard."""
        with self._lock:
            self._states[con] = _State(_key(con.path), float(timeout or 0.0))

    def on_close(self, con) -> None:
        """Stop bounding lock waits on behalf of a closed Connection."""
        with self._lock:
            state = self._states.get(con)
            fin, state.watch = (state.watch, None) if state is not None else (None, None)
        if fin is not None:
            fin()

    def before_statement(self, con) -> None:
        """Refuse (BusyError) a statement BerkeleyDB would block on forever within this process."""
        if self._forked_from is not None:
            raise self._fork_error()
        state = self._states.get(con)
        if state is None or state.key is None:
            return
        if state.watch is None:
            self._watch_locks(con, state)
        self._refuse_if_busy_here(state.key, con)

    def call(self, con, fn, *args, statement=None):
        """``fn(*args)``, called again while it raises BusyError, until ``con``'s timeout has passed.

        For a prepare, a first step or a whole run of a statement: a lock refused after
        ``LOCK_WAIT`` (see :meth:`_watch_locks`) left nothing done, so it can be tried
        again, as SQLite's busy handler would; ``statement`` (when ``fn`` steps one) is
        prepared afresh, bindings kept, before each new try. Ctrl-C stops the loop.
        """
        started = time.monotonic()
        state = self._states.get(con) or _State(None, 5.0)
        deadline = None
        renew = False
        busy = None  # the last lock refusal of this call
        while True:
            refused_before = self._lock_timeouts(con)
            try:
                if renew:
                    statement.renew()
                    renew = False
                try:
                    result = fn(*args)
                except _errors.NoMemError as exc:
                    if busy is None and not state.open_refused and not (
                            self._lock_timeouts(con) > refused_before >= 0):
                        raise
                    raise self._open_refused(exc) from exc
                state.open_refused = False
                return result
            except (_errors.BusyError, _errors.LockedError) as exc:  # (BerkeleyDB SQL answers either)
                busy = exc
                now = time.monotonic()
                if deadline is None:
                    deadline = started + state.timeout
                if now >= deadline:
                    state.open_refused = True
                    raise
                time.sleep(0.02)
                # a statement whose lock wait was refused keeps failing: prepare it afresh
                renew = renew or statement is not None

    def explain(self, exc, sql):
        return _features.explain_error(exc, sql)

    def hold_rows(self, st, first_row):
        """Never keep a bdb statement (and its table locks) open across calls."""
        return BufferedRows(st, first_row)

    # --- locks ---------------------------------------------------------------------------------------
    def _lock_timeouts(self, con) -> int:
        """BerkeleyDB's count of refused lock waits in ``con``'s environment (-1: not watched)."""
        state = self._states.get(con)
        if state is None or state.watch is None:
            return -1
        return self.load().lock_timeouts(_files.env_dir(state.key))

    @staticmethod
    def _open_refused(exc):
        """The BusyError that SQLITE_NOMEM ``exc`` stands for, raised while opening the database.

        A statement that opens the database (the first one in a process) while another
        process holds a lock it needs has BerkeleyDB SQL retry its open 100 times, each
        wait refused after ``LOCK_WAIT``, report SQLITE_BUSY, and SQLITE_NOMEM at the next
        try (after that, it opens again). :meth:`call` knows it is that case when this
        call or the connection's last one gave up on a lock, or when BerkeleyDB's count
        of refused waits grew during the try, and tries again until the timeout.
        """
        return _errors.make_error(
            5, "database is locked: another process holds a lock that opening the database needs",
            extended_code=5, sql=exc.sql, cls=_errors.BusyError)  # 5: SQLITE_BUSY

    def _watch_locks(self, con, state: _State) -> None:
        """Bound ``con``'s waits for other processes' locks, once its environment directory exists.

        BerkeleyDB SQL ignores ``sqlite3_busy_timeout`` (its busy handler only makes it
        wait again) and waits inside its lock manager, where Ctrl-C cannot reach. The
        compiled module joins the environment, sets its lock timeout to ``LOCK_WAIT``
        and has a thread expire longer waits every 20 ms (``sqlnb/_core/bdb_locks.c``).
        A refused wait surfaces as BusyError; :meth:`call` tries again until the
        connection's ``timeout`` has passed, so a statement waits about as long as on
        the sqlite engine, and Ctrl-C works between tries. The lock timeout lives in the
        environment's shared region, so other processes using the same database get
        refused waits too, instead of waiting forever. BerkeleyDB creates the environment
        at the first statement that touches a table, so this runs before each statement
        until it has succeeded once.

        Before joining, :meth:`_recover_abandoned` makes sure the environment was not left
        behind by processes that died in it; joining such an environment can block
        forever on a mutex the dead process held.
        """
        mod = self.load()
        home = _files.env_dir(state.key)
        with self._lock:
            if state.watch is not None:
                return
            found = self._recover_abandoned(mod, con, state)
            state.used = True  # from here on, this connection's statements may open the environment
            if found not in (ENV_HEALTHY, ENV_OPEN_HERE) or not os.path.exists(os.path.join(home, "__db.001")):
                return  # no environment yet, or one BerkeleyDB SQL still has to recover: join it later
            mod.lock_watch(home, LOCK_WAIT)
            state.watch = weakref.finalize(con, mod.lock_unwatch, home)

    def _recover_abandoned(self, mod, con, state: _State) -> int:
        """Have BerkeleyDB SQL recover the environment if the processes registered in it all died.

        A process killed while it had the database open (SIGKILL, OOM killer, a crash)
        stays listed in the environment's DB_REGISTER file. The next BerkeleyDB SQL open
        notices and tries "failchk", which attaches to the shared regions the dead
        process left; if that process died holding the environment region's mutex, the
        open spins forever (libdb 5.3.28), and so does joining the environment for the
        lock timeout. When only dead processes are registered, ``mod.clear_dead_env``
        removes the region files (only those), and BerkeleyDB SQL's open then takes its
        full-recovery path: new regions, the log replayed, the dead writer's unfinished
        transaction rolled back, committed ones kept (see ``sqlnb/_core/bdb_recover.c``).
        With a live process registered too, nothing is touched.

        Called with the engine's lock held, before ``con`` runs its first statement. It
        is skipped while another connection of this process to the same database has run
        a statement (the environment is open here, and the C side must not open and close
        the registry file then: closing it would drop this process's own registration
        lock). The lock also keeps other threads from starting their first statement
        meanwhile. Returns one of the ``ENV_*`` codes.
        """
        home = _files.env_dir(state.key)
        if not os.path.isdir(home):
            return ENV_HEALTHY
        for other, s in list(self._states.items()):
            if other is not con and s.key == state.key and s.used and not other.closed:
                return ENV_OPEN_HERE
        try:
            return mod.clear_dead_env(home)
        except OSError:
            return ENV_HEALTHY  # could not inspect it: leave it to BerkeleyDB, as before

    def _refuse_if_busy_here(self, key, con) -> None:
        """BusyError if a connection of this process other than ``con`` has a transaction open on ``key``."""
        with self._lock:
            others = [c for c, s in self._states.items() if s.key == key and c is not con]
        for other in others:
            if other.closed:
                continue
            try:
                busy = not other._raw.autocommit  # (the handle itself: other may belong to another thread)
            except (_errors.Error, AttributeError):
                continue
            if busy:
                raise _errors.make_error(
                    5, f"database is locked: another connection in this process ({other!r}) has an open "
                       f"transaction on {key!r}. The bdb engine's locks would make this "
                       f"{'statement' if con is not None else 'open'} wait "
                       f"until that transaction ends, which in one thread is forever: commit() or "
                       f"rollback() the other connection first (or open it with isolation_level=None)",
                    cls=_errors.BusyError)

    # --- fork: BerkeleyDB environments are not fork-safe ---------------------------------------------
    def _fork_error(self):
        return _errors.EngineUnavailableError(
            f"the bdb engine cannot be used in this process: it was forked from process {self._forked_from} "
            f"while BerkeleyDB SQL connections were open there, and a BerkeleyDB environment is not "
            f"fork-safe (the child would corrupt the parent's lock table). Open bdb connections in the "
            f"child only when it was started with multiprocessing's 'spawn' or 'forkserver' method, "
            f"or close every bdb connection before forking")

    def open_connections(self) -> list:
        """The bdb Connections of this process that are not closed (what a fork would inherit)."""
        with self._lock:
            return [c for c in list(self._states) if not c.closed]

    def _after_fork_child(self) -> None:
        inherited = self.open_connections()
        if not inherited:
            return
        self._forked_from = os.getppid()
        for con in inherited:
            raw = con._raw
            forget = getattr(raw, "_forget", None)
            if forget is not None:
                forget()
            else:  # an older core module: keep it alive forever rather than close the parent's handle
                self._leaked.append(raw)
            con._retire(_ForkedRaw(raw, self._fork_error))
