"""The ``Engine`` object: what one storage engine can do, and the hooks where engines differ.

An engine is a library of SQLite behind sqlnb's driver protocol
(:mod:`sqlnb.engines.protocol`). Code above the engine package never compares an
engine's name: it asks :meth:`Engine.has` for a capability (and
:meth:`Engine.lacks` for the words that explain a refusal), or calls a hook. The
base class holds the behaviour of SQLite's own engines; ``bdb`` and ``system``
override what they do differently.

Connection-side hooks (called by ``sqlnb.connection`` only):

=====================  ==================================================================
``check_process()``    before anything is opened (bdb: the fork guard)
``check_file()``       a foreign file refused before anything touches disk
``open_raw()``         the engine-level connection for a path and mode
``set_busy_timeout``   the connection's lock-wait bound, the engine's way
``on_open/on_close``   per-connection state (bdb: lock watch, fork guard registry)
``before_statement``   checks before each prepare (bdb: a lock this process would hold)
``call()``             a prepare or first step, retried where the engine refuses lock waits
``explain()``          a clearer exception for an error, or None
``hold_rows()``        what a cursor keeps between fetches (bdb: the buffered rows)
``run_many()``         ``executemany`` of a prepared statement
``register_function``  a user function, aggregate or window function (``register_collation``)
=====================  ==================================================================
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sqlite3 as _sqlite3
import sys
import time

from sqlnb import errors as _errors
from sqlnb.engines import files as _files

# SQLite's open flags (stable values from sqlite3.h)
OPEN_READONLY, OPEN_READWRITE, OPEN_CREATE, OPEN_URI = 0x1, 0x2, 0x4, 0x40
OPEN_NOMUTEX = 0x8000

#: every capability an engine may declare (see ``Engine.has``)
CAPABILITIES = frozenset((
    "columnar_fetch", "columnar_export", "parallel_fetch", "multirow_values", "export_cache",
    "window", "json", "fts5", "rtree", "math", "dbstat", "lsm1", "wal", "snapshot", "defensive",
    "bind_names", "uri", "strict_quotes", "busy_handler",
    "window_udf",   # create_window_function (user-defined aggregate window functions)
    "c_aggregates",  # sqlnb's own C aggregates in the core: sqlnb_profile (profile(approx=True)), the histogram's
))


def import_deepbind(name: str):
    """Import an extension with RTLD_DEEPBIND: its own library's symbols win over any global ones."""
    old = sys.getdlopenflags()
    sys.setdlopenflags(os.RTLD_NOW | os.RTLD_LOCAL | getattr(os, "RTLD_DEEPBIND", 0))
    try:
        return importlib.import_module(name)
    finally:
        sys.setdlopenflags(old)


class Engine:
    """One engine: its name, capabilities, module and hooks (the ``sqlite`` engine's behaviour)."""

    name = ""
    description = ""
    file_format = "sqlite"         #: which file kind it reads: "sqlite" or "bdb"
    module_name = ""               #: the compiled module (Cython engines)
    capabilities: frozenset = frozenset()
    #: why a capability is missing, in a few human words (default: "not built in")
    missing: dict = {}
    open_flags = 0                 #: extra SQLite open flags (sqlite: NOMUTEX)

    def __init__(self):
        self._module = None
        self._why = None           # why load() failed, once it has

    # --- the module ---------------------------------------------------------------
    def _import(self):
        return importlib.import_module(self.module_name)

    def _not_built(self) -> str:
        """Why the module is missing when it was never built (a ModuleNotFoundError for it)."""
        return (f"it was not built for this Python {sys.version_info[0]}.{sys.version_info[1]} "
                "(no C compiler or Cython at install time?)")

    def _loaded(self, module) -> None:
        """Checks and process-wide set-up once the module is imported (raise ImportError to refuse)."""

    def load(self):
        """The engine's module (compiled core, or the stdlib adapter); EngineUnavailableError if it cannot load."""
        if self._module is not None:
            return self._module
        if self._why is not None:
            raise _errors.EngineUnavailableError(f"engine {self.name!r} is not available: {self._why}")
        try:
            module = self._import()
            self._loaded(module)
        except ImportError as exc:
            why = str(exc)
            if isinstance(exc, ModuleNotFoundError) and exc.name == self.module_name:
                # (also what a module built for another Python looks like: its file name has that ABI tag)
                why = self._not_built()
            self._why = why
            raise _errors.EngineUnavailableError(f"engine {self.name!r} is not available: {why}") from exc
        self._module = module
        return module

    @property
    def why_unavailable(self) -> str | None:
        """Why :meth:`load` failed (None: it did not, or was not tried)."""
        return self._why

    @property
    def available(self) -> bool:
        try:
            self.load()
            return True
        except _errors.EngineUnavailableError:
            return False

    def version(self) -> str:
        """The SQLite core version of the engine's library (not of a file)."""
        return self.load().sqlite_version()

    def version_tuple(self) -> tuple:
        return tuple(int(x) for x in self.version().split(".")[:2])

    def compile_options(self) -> list:
        return self.load().compile_options()

    # --- capabilities ----------------------------------------------------------------
    def has(self, cap: str) -> bool:
        if cap not in CAPABILITIES:
            raise ValueError(f"unknown capability {cap!r}; known: {', '.join(sorted(CAPABILITIES))}")
        if cap == "lsm1":
            return cap in self.capabilities and bool(getattr(self.load(), "HAVE_LSM1", False))
        return cap in self.capabilities

    def lacks(self, cap: str) -> str:
        """Why the engine does not have ``cap`` (human words); ``""`` when it has it."""
        if self.has(cap):
            return ""
        return self.missing.get(cap, f"the {self.name!r} engine has no {cap.replace('_', ' ')}")

    def __repr__(self):
        return f"<sqlnb engine {self.name!r}>"

    # --- opening -------------------------------------------------------------------------
    def check_process(self) -> None:
        """Refuse to open anything in this process (default: nothing to refuse)."""
        self.load()

    def check_file(self, path: str, *, mode: str = "rw", uri: bool = False, held: bool = False) -> None:
        """Refuse a foreign file before anything touches disk (see ``engines.files``)."""
        _files.check_sqlite_file(path, uri=uri, held=held)

    def flags(self, *, readonly: bool, uri: bool) -> int:
        flags = OPEN_READONLY if readonly else (OPEN_READWRITE | OPEN_CREATE)
        return flags | (OPEN_URI if uri else 0) | self.open_flags

    def open_raw(self, path: str, *, mode: str = "rw", uri: bool = False):
        """The engine-level connection. ``ro`` modes open with SQLITE_OPEN_READONLY (no file is created)."""
        return self.load().RawConnection(path, self.flags(readonly=mode != "rw", uri=uri))

    def open_like(self, raw, *, mode: str = "ro"):
        """Another connection to ``raw``'s database, as ``raw`` named it (a parallel-fetch worker)."""
        return self.open_raw(raw.filename, mode=mode, uri=bool(getattr(raw, "flags", 0) & OPEN_URI))

    def install_policy(self, raw, policy) -> None:
        """Install a bound ``policy`` on ``raw`` (compiled to the C authorizer table)."""
        policy.table = self.load().install_policy(raw, policy)  # sets raw.policy (read-only there)

    def set_busy_timeout(self, raw, seconds) -> None:
        """Bound how long a statement waits for another connection's lock."""
        if seconds is not None:
            raw.busy_timeout(float(seconds))

    # --- a connection's life -------------------------------------------------------------------
    def on_open(self, con, timeout) -> None:
        """A Connection was made over a freshly opened raw connection."""

    def on_close(self, con) -> None:
        """The Connection was closed."""

    def before_statement(self, con) -> None:
        """Checks before each prepare of the facade."""

    def call(self, con, fn, *args, statement=None):
        """``fn(*args)``: a prepare, or a first step/run/fetch of ``statement`` (SQLite waits in
        its busy handler; nothing to retry)."""
        return fn(*args)

    def explain(self, exc, sql):
        """A clearer exception for ``exc`` raised by ``sql``, or None."""
        return None

    def hold_rows(self, st, first_row):
        """What a cursor keeps between fetches of a statement that returned ``first_row``."""
        return st

    def run_many(self, con, st, seq_of_parameters, begin, count) -> int:
        """Run ``st`` once per parameter set; the rows changed when ``count`` (else -1).

        ``begin(st)`` opens the implicit transaction (the facade's rule) before each run.
        """
        if st.column_count:
            raise _errors.ProgrammingError("executemany() can only execute DML statements.")
        changed = 0 if count else -1
        for params in seq_of_parameters:
            begin(st)
            st.bind(params)
            st.run()
            if count:
                changed += con._raw.changes()
        return changed

    # --- frames and export ------------------------------------------------------------------------
    def decoding(self, raw, factory):
        """A context manager under which the stdlib adapter decodes TEXT with ``factory`` (others: nothing)."""
        return contextlib.nullcontext()

    def insert_rows(self, raw, sql: str, rows) -> int:
        """executemany of an iterator of tuples (only engines without "columnar_export")."""
        raise _errors.NotSupportedError(f"the {self.name!r} engine exports through its columnar path")


    # --- frames as tables (the sqlnb_frame virtual table; docs/frames-in-sql.md) ---------------
    #: how a registered frame is served: "in place" (the compiled cores' virtual table) or "copy"
    frames_served = "in place"
    #: whether statements can tell their columns' declared types (detect_types=PARSE_DECLTYPES needs it)
    declared_types = True

    def register_frame(self, con, name: str, plan, *, replace: bool = False):
        """Serve ``plan`` (a ``sqlnb.frames.source.FramePlan``) as the table ``temp.<name>``,
        reading the frame's buffers in place; returns the core's FrameSource."""
        return self.load().frame_register(con.raw, name, plan.frame, plan.describe, plan.names, plan.decl,
                                          plan.convert, replace)

    def unregister_frame(self, con, name: str) -> None:
        """Drop the table ``register_frame`` made (ProgrammingError when ``name`` is none)."""
        self.load().frame_unregister(con.raw, name)

    def registered_frames(self, con) -> dict:
        """``{name: source}`` of the frames registered on ``con`` (``source.frame``, ``.rows_read``)."""
        return self.load().frame_sources(con.raw)

    # --- sqlnb's own C aggregates (_core/profile.pxi, _core/look.pxi; sqlnb.look) ---------------------
    def install_c_aggregates(self, con) -> None:
        """Register sqlnb's C aggregates on ``con``, once per connection (SQLite refuses to replace a
        function while another statement is active): ``sqlnb_profile`` (``profile(approx=True)``),
        ``sqlnb_profile_exact``, ``sqlnb_profile_pick`` and ``sqlnb_profile_config`` (``profile()``),
        ``sqlnb_histogram`` and ``sqlnb_numeric_range`` (histograms). Only where the engine has
        "c_aggregates"."""
        if not self.has("c_aggregates"):
            raise _errors.FeatureNotSupportedError(
                f"the {self.name!r} engine has no C aggregates of sqlnb's ({self.lacks('c_aggregates')})")
        if con.extras.get("c_aggregates") is not con.raw:
            module = self.load()
            module.profile_register(con.raw)
            module.profile_exact_register(con.raw)
            module.register_look_aggregates(con.raw)
            con.extras["c_aggregates"] = con.raw

    # --- user-defined functions and collations (sqlnb.stdlib.surface) ---------------------------------
    def register_function(self, raw, kind: str, name, narg: int, func, deterministic: bool = False) -> None:
        """Register (``func`` None: remove) a user function on ``raw``: ``kind`` is ``"function"``,
        ``"aggregate"`` or ``"window function"`` (an engine without "window" refuses the last)."""
        if kind == "window function" and not self.has("window_udf"):
            raise _errors.FeatureNotSupportedError(
                f"create_window_function: the {self.name!r} engine cannot ({self.lacks('window_udf')})")
        self.load().register_function(raw, kind, name, narg, func, deterministic)

    def register_collation(self, raw, name, func) -> None:
        """Register (``func`` None: remove) collation ``name`` on ``raw``."""
        self.load().register_collation(raw, name, func)

    # --- the rest of the stdlib surface (sqlnb.stdlib.more) ---------------------------------------
    def set_progress_handler(self, raw, handler, n: int) -> None:
        """The user's progress handler, layered under sqlnb's own (None: remove it)."""
        self.load().set_progress_handler(raw, handler, n)

    def set_trace_callback(self, raw, callback) -> None:
        self.load().set_trace_callback(raw, callback)

    def set_authorizer(self, raw, callback) -> None:
        """The user's authorizer, layered under the connection's mode and policies."""
        self.load().set_user_authorizer(raw, callback)

    def blobopen(self, raw, table: str, column: str, row: int, readonly: bool, name: str):
        """An open BLOB handle (``RawBlob``: length, read, write, close, closed)."""
        return self.load().RawBlob(raw, table, column, row, readonly, name)

    def serialize(self, raw, name: str) -> bytes:
        return self.load().serialize(raw, name)

    def load_extension(self, raw, path, entrypoint) -> None:
        """Load an SQLite extension (the facade decided it may)."""
        self.load().load_extension(raw, path, entrypoint)

    def deserialize(self, raw, data, name: str) -> None:
        self.load().deserialize(raw, data, name)

    def backup(self, raw, target, *, pages: int, progress, name: str, sleep: float) -> None:
        """Copy ``raw``'s database ``name`` into ``target``: a raw connection of this engine (the
        core's online backup), or a stdlib ``sqlite3.Connection`` (another library: through
        serialize/deserialize, one step)."""
        if isinstance(target, _sqlite3.Connection):
            data = self.serialize(raw, name)
            target.deserialize(data)
            if progress is not None:
                progress(101, 0, len(data) // max(1, int(target.execute("PRAGMA page_size").fetchone()[0])))
            return
        bk = self.load().RawBackup(target, "main", raw, name)
        _run_backup(bk, pages=pages, progress=progress, sleep=sleep)


def _run_backup(backup, *, pages, progress, sleep):
    """The stdlib's backup loop over a core ``RawBackup``."""
    pages = -1 if pages <= 0 else pages
    try:
        while True:
            state = backup.step(pages)
            if progress is not None:
                progress({"done": 101, "more": 0, "busy": 5}[state], backup.remaining, backup.pagecount)
            if state == "done":
                break
            if state == "busy" and sleep > 0:
                time.sleep(sleep)
    finally:
        backup.finish()
