# cython: language_level=3, embedsignature=True
"""sqlnb's Cython core over the SQLite C API.

This one source is compiled once per flavour: ``sqlnb._fast`` against our own
amalgamation (with lsm1), ``sqlnb._fast_bdb`` against BerkeleyDB's libdb_sql.
The Python facade (``sqlnb.connection``) is the documented API; the classes
here (``RawConnection``, ``RawStatement``) are its engine.

Rules kept throughout:
* one raising helper, ``check_rc``, maps result codes through
  ``sqlnb.errors.CODE_TO_CLASS``;
* statements are split by SQLite's own tail pointer, never by a hand parser;
* stepping releases the GIL; a progress handler brings signals (Ctrl-C, the
  notebook's interrupt button) and time limits into the step loop.
"""
cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.exc cimport PyErr_CheckSignals
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock, PyThread_get_thread_ident,
                               WAIT_LOCK, NOWAIT_LOCK)
from libc.stdint cimport int64_t, uintptr_t
from libc.string cimport strlen
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from sqlnb._sqlite3 cimport *

import datetime as _dt
import os
import threading as _threading
import weakref
import operator

from sqlnb import errors as _errors
from sqlnb import _diagnose

# ---------------------------------------------------------------------------
# library facts
# ---------------------------------------------------------------------------
FLAVOUR = (<bytes>SQLNB_FLAVOUR_NAME).decode()
HEADER_VERSION = (<bytes>SQLITE_VERSION).decode()
HAVE_URI = bool(SQLNB_HAVE_URI)
HAVE_LSM1 = bool(SQLNB_HAVE_LSM1)
HAVE_ERROR_OFFSET = bool(SQLNB_HAVE_ERROR_OFFSET)


HAVE_LOCK_WATCH = bool(SQLNB_HAVE_LOCK_WATCH)
HAVE_DQS_CONFIG = bool(SQLNB_HAVE_DQS_CONFIG)   # per-connection double-quoted-string switch (3.29+)


def lock_watch(home, double timeout):
    """Bound this process's lock waits in the BerkeleyDB environment directory ``home``.

    BerkeleyDB SQL waits for another process's locks without limit and ignores
    ``sqlite3_busy_timeout``; after this, a wait longer than ``timeout`` seconds
    is refused (the statement fails with SQLITE_LOCKED). Reference counted:
    pair each call with :func:`lock_unwatch`. A no-op in the SQLite flavour.
    Raises OSError when the environment cannot be joined.
    """
    cdef bytes h = os.fsencode(home)
    cdef const char *ch = h
    cdef char err[512]
    cdef unsigned long us = <unsigned long>(max(timeout, 0.001) * 1e6)
    cdef int rc
    err[0] = 0
    with nogil:
        rc = sqlnb_bdb_lock_watch(ch, us, err, sizeof(err))
    if rc != 0:
        raise OSError((<bytes>err).decode("utf-8", "replace"))


def lock_unwatch(home):
    """Drop one :func:`lock_watch` reference on ``home``."""
    cdef bytes h = os.fsencode(home)
    cdef const char *ch = h
    with nogil:
        sqlnb_bdb_lock_unwatch(ch)


def clear_dead_env(home):
    """Let BerkeleyDB recover the environment in directory ``home`` if only dead processes used it.

    When its DB_REGISTER file lists processes that died with the environment
    open and no live one, removes the shared region files, so that BerkeleyDB
    SQL's next open runs full recovery instead of "failchk", which can spin
    forever on a mutex the dead process held (see sqlnb_bdb_recover.c).
    Returns 0 (nothing to do), 1 (regions removed), 2 (dead and live processes:
    nothing done), 3 (this process has the environment open: not inspected) or
    4 (the registry stayed locked: not inspected). A no-op (0) in the SQLite
    flavour. Raises OSError when the directory cannot be inspected.
    """
    cdef bytes h = os.fsencode(home)
    cdef const char *ch = h
    cdef char err[512]
    cdef int rc
    err[0] = 0
    with nogil:
        rc = sqlnb_bdb_clear_dead_env(ch, err, sizeof(err))
    if rc < 0:
        raise OSError((<bytes>err).decode("utf-8", "replace"))
    return rc


def sqlite_version():
    """The version of the SQLite core this module runs (``sqlite3_libversion``)."""
    return (<bytes>sqlite3_libversion()).decode()


def sqlite_version_number():
    return sqlite3_libversion_number()


def sqlite_source_id():
    return (<bytes>sqlite3_sourceid()).decode()


def threadsafe():
    return sqlite3_threadsafe()


def compile_options():
    """The options the SQLite core was compiled with (``sqlite3_compileoption_get``)."""
    cdef int i = 0
    cdef const char *opt
    out = []
    while True:
        opt = sqlite3_compileoption_get(i)
        if opt == NULL:
            break
        out.append((<bytes>opt).decode())
        i += 1
    return out


# The module must run the library its header describes: if another SQLite
# were interposed (symbols not hidden, or a global libsqlite3), stop here.
if sqlite_version() != HEADER_VERSION:
    raise ImportError(
        f"sqlnb {FLAVOUR} engine: linked SQLite library is {sqlite_version()} "
        f"but it was compiled against {HEADER_VERSION}; refusing to run a mis-bound library")

if sqlnb_register_builtin_extensions() != SQLITE_OK:
    raise ImportError("sqlnb: could not register the built-in lsm1 extension")


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
cdef object _error_for(int rc, sqlite3 *db, object sql):
    cdef int ext = rc
    cdef int offset = -1
    if db != NULL:
        msg = PyUnicode_DecodeUTF8(sqlite3_errmsg(db), strlen(sqlite3_errmsg(db)), "replace")
        ext = sqlite3_extended_errcode(db)
        if (ext & 0xFF) != (rc & 0xFF):
            ext = rc
        if SQLNB_HAVE_ERROR_OFFSET:
            offset = sqlite3_error_offset(db)
    else:
        msg = PyUnicode_DecodeUTF8(sqlite3_errstr(rc), strlen(sqlite3_errstr(rc)), "replace")
    return _errors.make_error(rc, msg, extended_code=ext, error_offset=offset, sql=sql)


cdef int check_rc(int rc, sqlite3 *db, object sql=None) except -1:
    """Raise the mapped exception for a failing result code (never overwrites a pending one)."""
    if rc == SQLITE_OK or rc == SQLITE_ROW or rc == SQLITE_DONE:
        return 0
    raise _error_for(rc, db, sql)


# ---------------------------------------------------------------------------
# the progress handler: signals, time limits, progress callbacks
# ---------------------------------------------------------------------------
cdef double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef struct progress_state:
    double deadline          # monotonic seconds; 0 = no limit
    double next_report       # when to call the Python callback next; 0 = never
    double report_every
    int abort_reason         # 0 none, 1 signal (KeyboardInterrupt pending), 2 timeout, 3 callback asked
    int check_signals
    int interrupts           # bumped by RawConnection.interrupt(): loops of many short statements poll it
    void *owner              # the RawConnection (borrowed: it owns this struct)


cdef int _progress_signal(progress_state *ps) noexcept with gil:
    try:
        PyErr_CheckSignals()
    except BaseException as exc:
        (<RawConnection>ps.owner)._pending = exc
        return 1
    return 0


cdef int _progress_report(progress_state *ps) noexcept with gil:
    return (<RawConnection>ps.owner)._call_progress()


# Only the main thread is told about signals (PyErr_CheckSignals does nothing elsewhere), so only
# there is the GIL worth taking in the progress check: threads stepping with the GIL released
# (a parallel fetch's workers) would otherwise queue for it thousands of times a second.
cdef extern from "pythread.h":
    unsigned long _thread_ident "PyThread_get_thread_ident" () nogil  # safe without the GIL

cdef unsigned long _main_thread_ident = <unsigned long>_threading.main_thread().ident


cdef int _progress_cb(void *arg) noexcept nogil:
    cdef progress_state *ps = <progress_state*>arg
    cdef double now
    if (ps.check_signals and _thread_ident() == _main_thread_ident
            and _progress_signal(ps)):
        ps.abort_reason = 1
        return 1
    if ps.deadline > 0 or ps.next_report > 0:
        now = _now()
        if ps.deadline > 0 and now >= ps.deadline:
            ps.abort_reason = 2
            return 1
        if ps.next_report > 0 and now >= ps.next_report:
            ps.next_report = now + ps.report_every
            if _progress_report(ps):
                ps.abort_reason = 3
                return 1
    return 0


# ---------------------------------------------------------------------------
# one caller at a time per connection
# ---------------------------------------------------------------------------
# Every entry point below (and RawStatement's deallocation) takes this recursive
# per-connection lock first, waiting for it with the GIL released, so one thread
# at a time uses a connection. Relying on SQLite's own mutex instead would
# deadlock: a thread stepping (GIL released, mutex held) needs the GIL back in
# the progress handler while another thread holding the GIL blocks on the mutex.
# Because of this lock our SQLite opens with SQLITE_OPEN_NOMUTEX (sqlnb._modes):
# SQLite's mutex would only add a lock/unlock to every sqlite3_column_* and bind
# call. Only interrupt() (documented safe from any thread) and the flags stay
# lock-free.
cdef int _lock(RawConnection c) except -1:
    cdef long me
    if c is None or c._lock == NULL:
        return 0
    me = PyThread_get_thread_ident()
    if c._lock_depth > 0 and c._lock_owner == me:
        c._lock_depth += 1
        return 0
    if not PyThread_acquire_lock(c._lock, NOWAIT_LOCK):
        with nogil:
            PyThread_acquire_lock(c._lock, WAIT_LOCK)
    c._lock_owner = me
    c._lock_depth = 1
    return 0


cdef void _unlock(RawConnection c) noexcept:
    if c is None or c._lock == NULL or c._lock_depth <= 0:
        return
    if c._lock_depth == 1 and c._doomed:
        c._finalize_doomed()
    c._lock_depth -= 1
    if c._lock_depth == 0:
        c._lock_owner = 0
        PyThread_release_lock(c._lock)


# ---------------------------------------------------------------------------
# connection
# ---------------------------------------------------------------------------
@cython.no_gc_clear   # __dealloc__ finalizes the statements left in _doomed
cdef class RawConnection:
    """An open ``sqlite3*`` handle. Not for direct use: see ``sqlnb.connect``."""
    cdef sqlite3 *db
    cdef readonly object filename
    cdef readonly int flags
    cdef object _statements           # WeakSet of live RawStatement
    cdef progress_state _pstate
    cdef public object progress_callback   # called (no args) every report_every s while stepping
    cdef public double timeout         # per-statement time limit in seconds (0 = none)
    cdef object _pending               # exception captured by a callback
    cdef public long long rows_seen    # rows fetched so far; a C field the GIL-free fetch loop updates
    cdef readonly object policy        # the authorizer policy (sqlnb.authorizer), set once by install_policy
    cdef bint _verifying               # the policy's own schema reads run (no program check)
    cdef object _auth                  # the compiled authorizer table (_auth.pxi) the C callback reads
    cdef void *_ast                    # its auth_state (NULL: none): _auth_step marks the stepping statement
    cdef PyThread_type_lock _lock      # see _lock(): one caller at a time
    cdef list _doomed                  # sqlite3_stmt* (as ints) of statements deallocated while
                                       # another caller held the lock; finalized at its last _unlock
    cdef long _lock_owner
    cdef int _lock_depth
    cdef object __weakref__

    def __cinit__(self):
        self.db = NULL
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()
        self._statements = weakref.WeakSet()
        self._doomed = []
        self.timeout = 0.0
        self.rows_seen = 0

    def __init__(self, filename, int flags=SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs=None):
        cdef bytes fn = filename.encode("utf-8") if isinstance(filename, str) else bytes(filename)
        cdef bytes vfsb = vfs.encode() if vfs is not None else None
        cdef const char *zvfs = NULL
        cdef const char *zfn
        cdef int rc
        cdef sqlite3 *db = NULL
        if self.db != NULL or self.filename is not None:
            raise _errors.ProgrammingError(
                "this connection is already open; a raw connection is opened once (its handle, "
                "mode and policy cannot be replaced)")
        if b"\0" in fn:
            raise ValueError("database path contains a NUL character")
        if vfsb is not None:
            zvfs = vfsb
        self.filename = filename
        self.flags = flags
        zfn = fn
        with nogil:
            rc = sqlite3_open_v2(zfn, &db, flags, zvfs)
        if rc != SQLITE_OK:
            exc = self._file_error(_error_for(rc, db, None))
            if db != NULL:
                sqlite3_close(db)
            raise exc
        self.db = db
        sqlite3_extended_result_codes(db, 1)
        # double-quoted string literals on, as in the stdlib and older tools (our build's default,
        # SQLITE_DQS=0, is strict): a schema written by them must read here too
        sqlnb_set_dqs(db, 1)
        self._pstate.owner = <void*>self
        self._pstate.check_signals = 1
        sqlite3_progress_handler(db, 1000, _progress_cb, <void*>&self._pstate)

    def __dealloc__(self):
        cdef sqlite3 *db = self.db
        if db != NULL:
            self._finalize_doomed()
        self.db = NULL
        if db != NULL:
            with nogil:
                sqlite3_progress_handler(db, 0, NULL, NULL)
                sqlite3_set_authorizer(db, NULL, NULL)
                sqlnb_close(db)
        if self._lock != NULL:
            PyThread_free_lock(self._lock)
            self._lock = NULL

    cdef int _check(self) except -1:
        if self.db == NULL:
            raise _errors.ConnectionClosedError("Cannot operate on a closed database.")
        return 0

    cdef void _finalize_doomed(self) noexcept:
        """Finalize the statements RawStatement.__dealloc__ left here (with the GIL and the lock held)."""
        cdef list doomed = self._doomed
        if not doomed:               # (None once the garbage collector has cleared this object)
            return
        self._doomed = []
        for p in doomed:
            sqlite3_finalize(<sqlite3_stmt*><uintptr_t>p)

    cdef int _call_progress(self) noexcept:
        if self.progress_callback is None:
            return 0
        try:
            return 1 if self.progress_callback() else 0
        except BaseException as exc:
            self._pending = exc
            return 1

    @property
    def closed(self):
        return self.db == NULL

    @property
    def statements_awaiting_finalize(self):
        """How many deallocated statements wait for the lock's holder to finalize them (tests)."""
        return len(self._doomed)

    def close(self):
        """Finalize every live statement, then close the handle. Idempotent."""
        cdef int rc
        _lock(self)
        try:
            if self.db == NULL:
                return
            for st in list(self._statements):
                (<RawStatement>st).finalize()
            self._finalize_doomed()
            sqlite3_progress_handler(self.db, 0, NULL, NULL)
            sqlite3_set_authorizer(self.db, NULL, NULL)
            rc = sqlnb_close(self.db)
            if rc != SQLITE_OK:
                check_rc(rc, self.db)
            self.db = NULL
        finally:
            _unlock(self)

    def _forget(self):
        """Drop the handle and its statements WITHOUT closing them (a forked child's
        copy of a connection that belongs to the parent: closing it would release
        the parent's locks). The connection then reads as closed."""
        for st in list(self._statements):
            (<RawStatement>st).st = NULL
        self._doomed = []
        self.db = NULL

    cdef sqlite3 *handle(self) except NULL:
        self._check()
        return self.db

    def prepare(self, bytes sql, Py_ssize_t offset=0):
        """Prepare the first statement of ``sql[offset:]`` (UTF-8 bytes).

        Returns ``(statement, tail_offset)``; ``statement`` is None when the rest
        is only whitespace and comments. SQLite's tail pointer decides where a
        statement ends.
        """
        cdef sqlite3_stmt *st = NULL
        cdef const char *base
        cdef const char *tail = NULL
        cdef Py_ssize_t n
        cdef int rc
        cdef void *prev
        _lock(self)
        try:
            self._check()
            n = PyBytes_GET_SIZE(sql)
            if offset < 0 or offset > n:
                raise ValueError("offset out of range")
            if n - offset > 2147483646:
                raise _errors.TooBigError("SQL text too long")
            if sql.find(b"\0", offset) != -1:
                # SQLite would stop at the NUL and silently ignore the rest
                raise _errors.ProgrammingError(_diagnose.NUL_IN_SQL)
            base = PyBytes_AS_STRING(sql)
            self._pending = None
            _auth_begin(self)
            prev = _auth_enter_prepare(self)
            try:
                rc = sqlite3_prepare_v2(self.db, base + offset, <int>(n - offset), &st, &tail)
            finally:
                _auth_leave_prepare(self, prev)
            if self._pending is not None:
                if st != NULL:
                    sqlite3_finalize(st)
                exc, self._pending = self._pending, None
                raise exc
            if rc != SQLITE_OK:
                exc = self._policy_error(rc, sql[offset:].decode("utf-8", "replace"))
                if (rc & 0xFF) == SQLITE_ERROR and not isinstance(exc, _errors.PolicyError):
                    if st != NULL:
                        sqlite3_finalize(st)
                        st = NULL
                    exc = _auth_defensive_refusal(self, sql, offset) or exc
                raise exc
            new_offset = (tail - base) if tail != NULL else n
            if st == NULL:
                return None, new_offset
            try:
                exc = _auth_after_prepare(self, sql, offset, new_offset)
                if exc is None:
                    exc = _auth_verify(self, st, sql, offset, new_offset)
            except BaseException:  # the check itself failed: the handle is ours to finalize
                sqlite3_finalize(st)
                raise
            if exc is not None:
                sqlite3_finalize(st)
                raise exc
            stmt = RawStatement.__new__(RawStatement)
            (<RawStatement>stmt).st = st
            (<RawStatement>stmt).conn = self
            (<RawStatement>stmt).sql = sql[offset:new_offset].decode("utf-8", "surrogateescape")
            self._statements.add(stmt)
            return stmt, new_offset
        finally:
            _unlock(self)

    cdef object _file_error(self, exc):
        # file-level errors (locked, not a database, cannot open...) name the file
        return _diagnose.annotate(exc, self.filename, readonly=bool(self.flags & SQLITE_OPEN_READONLY),
                                  engine=FLAVOUR)

    cdef object _policy_error(self, int rc, object sql):
        # Refusals of an authorizer policy come back as SQLITE_AUTH (or, from a
        # trigger body or a virtual table's constructor, as SQLITE_ERROR); the policy
        # object knows what it refused (if anything) and builds the clear error.
        exc = self._file_error(_error_for(rc, self.db, sql))
        if ((rc & 0xFF) == SQLITE_AUTH or (rc & 0xFF) == SQLITE_ERROR) and self.policy is not None:
            better = self.policy.explain_refusal(exc)
            if better is not None:
                return better
        return exc

    def interrupt(self):
        """Ask a running statement to stop (safe from any thread)."""
        self._pstate.interrupts += 1
        if self.db != NULL:
            sqlite3_interrupt(self.db)

    def set_double_quoted_strings(self, bint on):
        """Accept double-quoted string literals (on, the default) or not (strict), in DML and DDL.

        Strict needs a core with ``SQLITE_DBCONFIG_DQS_*`` (3.29+): on the bdb engine's older
        core, asking for strict raises FeatureNotSupportedError.
        """
        _lock(self)
        try:
            self._check()
            if sqlnb_set_dqs(self.db, on) != SQLITE_OK:
                raise _errors.FeatureNotSupportedError(
                    f"strict quotes need SQLite 3.29 or later (SQLITE_DBCONFIG_DQS_DML/DDL); the "
                    f"{FLAVOUR} engine's SQLite {HEADER_VERSION} always accepts double-quoted strings")
        finally:
            _unlock(self)

    def changes(self):
        self._check()
        return sqlite3_changes(self.db)

    def total_changes(self):
        self._check()
        return sqlite3_total_changes(self.db)

    def last_insert_rowid(self):
        self._check()
        return sqlite3_last_insert_rowid(self.db)

    @property
    def autocommit(self):
        """True when no transaction is open (``sqlite3_get_autocommit``)."""
        self._check()
        return bool(sqlite3_get_autocommit(self.db))

    def busy_timeout(self, double seconds):
        _lock(self)
        try:
            self._check()
            check_rc(sqlite3_busy_timeout(self.db, <int>(seconds * 1000)), self.db)
        finally:
            _unlock(self)

    def db_readonly(self, name="main"):
        _lock(self)        # walks the attached databases, which another thread's ATTACH may change
        try:
            self._check()
            return sqlite3_db_readonly(self.db, name.encode())
        finally:
            _unlock(self)

    def limit(self, int category, int value=-1):
        self._check()
        return sqlite3_limit(self.db, category, value)

    def errmsg(self):
        _lock(self)
        try:
            self._check()
            return sqlite3_errmsg(self.db).decode("utf-8", "replace")
        finally:
            _unlock(self)

    def set_progress_report(self, double every):
        """Call ``progress_callback`` about every ``every`` seconds while stepping (0: never)."""
        self._pstate.report_every = every
        self._pstate.next_report = (_now() + every) if every > 0 else 0

    # --- running a statement: shared by every step loop -------------------
    # A step loop calls ``_begin_run()`` before the FIRST step of a statement
    # (after prepare/bind/reset): it starts the statement's time limit and the
    # progress schedule. Later steps of the same statement (fetching more rows)
    # call ``_resume_run()``, which keeps both, so a statement that returns rows
    # steadily still meets its limit and keeps reporting progress.
    cdef void _begin_run(self) noexcept:
        self._pending = None
        _auth_begin(self)
        self._pstate.abort_reason = 0
        self._pstate.deadline = (_now() + self.timeout) if self.timeout > 0 else 0
        if self._pstate.report_every > 0:
            self._pstate.next_report = _now() + self._pstate.report_every

    cdef inline void _resume_run(self) noexcept:
        self._pending = None
        self._pstate.abort_reason = 0

    cdef object _run_error(self, int rc, object sql):
        """The exception for a failed step: pending KeyboardInterrupt/callback error first."""
        cdef int reason = self._pstate.abort_reason
        self._pstate.abort_reason = 0
        if self._pending is not None:
            exc, self._pending = self._pending, None
            if isinstance(exc, KeyboardInterrupt):
                # raised afresh from the step: no frames of the progress handler
                return exc.with_traceback(None)
            return exc
        if (rc & 0xFF) == SQLITE_INTERRUPT and reason == 2:
            exc = _errors.make_error(
                rc, f"statement exceeded its time limit of {self.timeout:g} s (timeout)",
                cls=_errors.QueryTimeoutError, sql=sql)
            exc.timeout = self.timeout
            return exc
        return self._policy_error(rc, sql)


# ---------------------------------------------------------------------------
# statement
# ---------------------------------------------------------------------------
cdef inline object _text(const char *p, int n):
    return PyUnicode_DecodeUTF8(p, n, "surrogateescape")


cdef object _column_value(sqlite3_stmt *st, int i):
    cdef int t = sqlite3_column_type(st, i)
    cdef const char *p
    if t == SQLITE_INTEGER:
        return sqlite3_column_int64(st, i)
    elif t == SQLITE_FLOAT:
        return sqlite3_column_double(st, i)
    elif t == SQLITE_TEXT:
        p = <const char*>sqlite3_column_text(st, i)
        return _text(p, sqlite3_column_bytes(st, i))
    elif t == SQLITE_BLOB:
        p = <const char*>sqlite3_column_blob(st, i)
        return PyBytes_FromStringAndSize(p, sqlite3_column_bytes(st, i))
    return None


ctypedef const char *(*_column_text_fn)(sqlite3_stmt *, int) noexcept nogil


@cython.no_gc_clear   # __dealloc__ needs self.conn (its lock) even when collected in a cycle
cdef class RawStatement:
    """A prepared ``sqlite3_stmt*``. Created by ``RawConnection.prepare``."""
    cdef sqlite3_stmt *st
    cdef readonly RawConnection conn
    cdef readonly str sql
    cdef readonly bint done
    cdef bint started                  # a step ran since prepare/bind/reset (see _begin_run)
    cdef object __weakref__

    def __dealloc__(self):
        # Another thread may be using the connection right now, and our SQLite runs
        # without its own mutex (SQLITE_OPEN_NOMUTEX). So finalize only when the
        # connection's lock is free; otherwise (another thread holds it, or this one
        # deeper in the stack, e.g. garbage collected inside a callback) leave the
        # handle to the holder, whose last _unlock finalizes it. Never waits.
        cdef sqlite3_stmt *st = self.st
        cdef RawConnection conn = self.conn
        self.st = NULL
        if st == NULL:
            return
        if conn is None or conn._lock == NULL or conn.db == NULL:
            sqlite3_finalize(st)     # closed by sqlite3_close_v2: a zombie waiting for this
        elif PyThread_acquire_lock(conn._lock, NOWAIT_LOCK):
            sqlite3_finalize(st)
            PyThread_release_lock(conn._lock)
        else:
            conn._doomed.append(<uintptr_t>st)

    cdef int _check(self) except -1:
        if self.st == NULL or self.conn is None or self.conn.db == NULL:
            raise _errors.ConnectionClosedError(
                "Cannot operate on a finalized statement or a closed database.")
        return 0

    def finalize(self):
        _lock(self.conn)
        try:
            if self.st != NULL:
                sqlite3_finalize(self.st)
                self.st = NULL
        finally:
            _unlock(self.conn)

    @property
    def finalized(self):
        return self.st == NULL

    def renew(self):
        """Prepare this statement's SQL again, in place, keeping its bindings.

        For the bdb engine: after BerkeleyDB refused one of its lock waits, the
        statement keeps failing even once the lock is free; a fresh one does not.
        """
        cdef RawStatement fresh
        cdef sqlite3_stmt *old
        self._check()
        fresh, _ = self.conn.prepare(self.sql.encode("utf-8", "surrogateescape"), 0)
        if fresh is None:
            raise _errors.InterfaceError("the statement's SQL no longer prepares to a statement")
        _lock(self.conn)
        try:
            old = self.st
            sqlite3_reset(old)
            sqlite3_transfer_bindings(old, fresh.st)
            self.st = fresh.st
            fresh.st = old  # finalized with ``fresh`` below
            self.done = False
            self.started = False
        finally:
            _unlock(self.conn)
        fresh.finalize()

    def reset(self):
        """Reset to run again (bindings kept). Reports nothing: errors came at step."""
        _lock(self.conn)
        try:
            if self.st != NULL:
                sqlite3_reset(self.st)
                self.done = False
                self.started = False
        finally:
            _unlock(self.conn)

    # --- introspection -----------------------------------------------------
    @property
    def readonly(self):
        self._check()
        return bool(sqlite3_stmt_readonly(self.st))

    @property
    def isexplain(self):
        self._check()
        return sqlite3_stmt_isexplain(self.st)

    @property
    def column_count(self):
        self._check()
        return sqlite3_column_count(self.st)

    cdef list _column_texts(self, _column_text_fn get, object missing):
        """One text per result column from ``get`` (name or declared type); ``missing`` for NULL."""
        cdef int i, n
        cdef const char *p
        _lock(self.conn)
        try:
            self._check()
            n = sqlite3_column_count(self.st)
            out = []
            for i in range(n):
                p = get(self.st, i)
                out.append(p.decode("utf-8", "replace") if p != NULL else missing)
            return out
        finally:
            _unlock(self.conn)

    def column_names(self):
        return self._column_texts(sqlite3_column_name, "")

    def decltypes(self):
        return self._column_texts(sqlite3_column_decltype, None)

    @property
    def param_count(self):
        self._check()
        return sqlite3_bind_parameter_count(self.st)

    def param_names(self):
        """Names of the parameters SQLite's parser found (``None`` for a bare ``?``)."""
        self._check()
        cdef int i, n = sqlite3_bind_parameter_count(self.st)
        cdef const char *p
        out = []
        for i in range(1, n + 1):
            p = sqlite3_bind_parameter_name(self.st, i)
            out.append(p.decode("utf-8") if p != NULL else None)
        return out

    # --- binding -----------------------------------------------------------
    cdef int _bind_one(self, int i, object v, object label) except -1:
        cdef int rc
        cdef Py_ssize_t n
        cdef bytes b
        cdef Py_buffer view
        if v is None:
            rc = sqlite3_bind_null(self.st, i)
        elif type(v) is int or type(v) is bool or isinstance(v, int):
            try:
                rc = sqlite3_bind_int64(self.st, i, <int64_t>v)
            except OverflowError:
                raise OverflowError(
                    f"parameter {label}: Python int {v} does not fit SQLite's 64-bit INTEGER") from None
        elif isinstance(v, float):
            rc = sqlite3_bind_double(self.st, i, <double>v)
        elif isinstance(v, str):
            b = (<str>v).encode("utf-8", "surrogateescape")
            n = PyBytes_GET_SIZE(b)
            if n > 2147483647:
                raise _errors.TooBigError(f"parameter {label}: string too big")
            rc = sqlite3_bind_text(self.st, i, PyBytes_AS_STRING(b), <int>n, SQLITE_TRANSIENT)
        elif isinstance(v, (bytes, bytearray, memoryview)):
            PyObject_GetBuffer(v, &view, PyBUF_SIMPLE)
            try:
                if view.len > 2147483647:
                    raise _errors.TooBigError(f"parameter {label}: blob too big")
                rc = sqlite3_bind_blob(self.st, i, view.buf, <int>view.len, SQLITE_TRANSIENT)
            finally:
                PyBuffer_Release(&view)
        elif _is_integer_scalar(v):
            return self._bind_one(i, int(v), label)
        elif _is_float_scalar(v):
            return self._bind_one(i, float(v), label)
        elif getattr(type(v), "__index__", None) is not None:
            try:
                v = operator.index(v)
            except TypeError:  # e.g. a numpy array of more than one value (its type has __index__)
                raise _errors.BindError(
                    f"parameter {label}: a value of type '{type(v).__name__}' is not a single value "
                    f"(bind None, bool, int, float, str, bytes, bytearray, memoryview, date, time or datetime)") from None
            return self._bind_one(i, v, label)
        elif isinstance(v, (_dt.date, _dt.time)):
            # ISO-8601 text, as the stdlib's default adapters write it
            return self._bind_one(i, v.isoformat(" ") if isinstance(v, _dt.datetime) else v.isoformat(), label)
        else:
            raise _errors.BindError(
                f"parameter {label}: type '{type(v).__name__}' is not supported "
                f"(bind None, bool, int, float, str, bytes, bytearray, memoryview, date, time or datetime)")
        if rc != SQLITE_OK:
            check_rc(rc, self.conn.db, self.sql)
        return 0

    def bind(self, params):
        """Bind a sequence (``?``, ``?NNN``) or a mapping (``:name``, ``$name``, ``@name``)."""
        cdef int i, n
        cdef const char *p
        _lock(self.conn)
        try:
            self._check()
            n = sqlite3_bind_parameter_count(self.st)
            sqlite3_reset(self.st)
            sqlite3_clear_bindings(self.st)
            self.done = False
            self.started = False
            if params is None:
                params = ()
            if n == 0:
                if isinstance(params, (list, tuple)) and len(params) != 0:
                    raise _errors.ParameterError(
                        f"Incorrect number of bindings supplied. The current statement uses 0, "
                        f"and there are {len(params)} supplied.")
                return
            if _is_mapping(params):
                for i in range(1, n + 1):
                    p = sqlite3_bind_parameter_name(self.st, i)
                    if p == NULL:
                        raise _errors.ParameterError(
                            f"Binding {i} has no name, but you supplied a dictionary "
                            f"(which has only names).")
                    name = p.decode("utf-8")
                    try:
                        v = params[name[1:]]
                    except KeyError:
                        raise _errors.ParameterError(
                            f"You did not supply a value for binding parameter {name}.") from None
                    self._bind_one(i, v, name)
            else:
                if isinstance(params, (str, bytes)):
                    raise _errors.ParameterError("parameters must be a sequence or a mapping, not a string")
                try:
                    seq = params if isinstance(params, (list, tuple)) else tuple(params)
                except TypeError:
                    raise _errors.ParameterError(
                        f"parameters are of unsupported type '{type(params).__name__}'") from None
                if len(seq) != n:
                    raise _errors.ParameterError(
                        f"Incorrect number of bindings supplied. The current statement uses {n}, "
                        f"and there are {len(seq)} supplied.")
                for i in range(1, n + 1):
                    p = sqlite3_bind_parameter_name(self.st, i)
                    self._bind_one(i, seq[i - 1], p.decode("utf-8") if p != NULL else f"{i}")
        finally:
            _unlock(self.conn)

    # --- stepping ----------------------------------------------------------
    cdef int _step(self) except -1:
        """Step once with the GIL released. 1 = a row, 0 = done."""
        cdef int rc
        cdef RawConnection conn = self.conn
        if self.done:
            return 0
        cdef bint first = not self.started
        if self.started:
            conn._resume_run()
        else:
            conn._begin_run()
            self.started = True
        with nogil:
            rc = _auth_step(conn._ast, self.st)
        if rc != SQLITE_ROW and rc != SQLITE_DONE and first and _auth_took_reprepare(conn):
            # the schema changed since the prepare and SQLite's own recompilation (unchecked) was
            # refused: prepare the statement again ourselves, checked, and run that (no row has
            # come from this run: a re-prepare happens before the program's first step)
            self.started = False
            self.done = True
            self._reprepare()
            self.done = False
            self.started = True
            with nogil:
                rc = _auth_step(conn._ast, self.st)
        if rc == SQLITE_ROW:
            return 1
        self.started = False
        if rc == SQLITE_DONE:
            self.done = True
            return 0
        # the old (3.7) core reports the real error only after reset
        exc = conn._run_error(rc, self.sql)
        sqlite3_reset(self.st)
        self.done = True
        if isinstance(exc, _errors.Error) and (rc & 0xFF) == SQLITE_ERROR:
            exc2 = conn._file_error(_error_for(sqlite3_errcode(conn.db), conn.db, self.sql))
            if str(exc2) and str(exc2) != "not an error":
                exc = exc2
        raise exc

    cdef int _reprepare(self) except -1:
        """Replace the handle with a fresh prepare of the same text, checked like any prepare
        (authorizer and program check), keeping the bound values."""
        cdef RawConnection conn = self.conn
        cdef sqlite3_stmt *new = NULL
        cdef bytes sql = self.sql.encode("utf-8", "surrogateescape")
        cdef void *prev
        cdef int rc
        sqlite3_reset(self.st)
        conn._pending = None
        _auth_begin(conn)
        prev = _auth_enter_prepare(conn)
        try:
            rc = sqlite3_prepare_v2(conn.db, sql, <int>len(sql), &new, NULL)
        finally:
            _auth_leave_prepare(conn, prev)
        if conn._pending is not None or rc != SQLITE_OK or new == NULL:
            if new != NULL:
                sqlite3_finalize(new)
            if conn._pending is not None:
                exc, conn._pending = conn._pending, None
                raise exc
            raise conn._policy_error(rc if rc != SQLITE_OK else SQLITE_SCHEMA, self.sql)
        try:
            exc = _auth_after_prepare(conn, sql, 0, len(sql))
            if exc is None:
                exc = _auth_verify(conn, new, sql, 0, len(sql))
        except BaseException:
            sqlite3_finalize(new)
            raise
        if exc is not None:
            sqlite3_finalize(new)
            raise exc
        sqlite3_transfer_bindings(self.st, new)
        sqlite3_finalize(self.st)
        self.st = new
        return 0

    def step(self):
        """Advance one row; True while there is a row."""
        _lock(self.conn)
        try:
            self._check()
            return self._step() == 1
        finally:
            _unlock(self.conn)

    def row(self):
        """The current row as a tuple (after ``step()`` returned True)."""
        cdef int i, n
        _lock(self.conn)
        try:
            self._check()
            n = sqlite3_data_count(self.st)
            out = [None] * n
            for i in range(n):
                out[i] = _column_value(self.st, i)
            return tuple(out)
        finally:
            _unlock(self.conn)

    def fetchmany(self, Py_ssize_t size):
        """Step up to ``size`` rows and return them as a list of tuples."""
        cdef int i, n
        cdef Py_ssize_t got = 0
        _lock(self.conn)
        try:
            self._check()
            rows = []
            while got < size and self._step() == 1:
                n = sqlite3_data_count(self.st)
                r = [None] * n
                for i in range(n):
                    r[i] = _column_value(self.st, i)
                rows.append(tuple(r))
                got += 1
            if got:
                self.conn.rows_seen += got  # for progress displays (sqlnb.progress)
            return rows
        finally:
            _unlock(self.conn)

    def run(self):
        """Step until done, discarding rows (for statements run for effect)."""
        _lock(self.conn)
        try:
            self._check()
            while self._step() == 1:
                pass
        finally:
            _unlock(self.conn)


cdef bint _is_mapping(object o):
    import collections.abc
    return isinstance(o, (dict, collections.abc.Mapping)) or (
        hasattr(o, "__getitem__") and hasattr(o, "keys") and not isinstance(o, (list, tuple)))


cdef bint _is_integer_scalar(object o):
    mod = type(o).__module__
    return mod == "numpy" and hasattr(o, "dtype") and o.dtype.kind in "iub" and getattr(o, "ndim", 0) == 0


cdef bint _is_float_scalar(object o):
    mod = type(o).__module__
    return mod == "numpy" and hasattr(o, "dtype") and o.dtype.kind == "f" and getattr(o, "ndim", 0) == 0


def complete_statement(str sql):
    """True if ``sql`` ends a complete statement (SQLite's own tokenizer)."""
    return bool(sqlite3_complete(sql.encode("utf-8", "surrogateescape")))


include "_fetch.pxi"
include "_auth.pxi"
include "_export.pxi"
