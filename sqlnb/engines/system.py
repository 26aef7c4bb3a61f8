"""The ``system`` engine: the stdlib ``sqlite3`` behind the same small driver
protocol as the Cython core (``RawConnection``/``RawStatement``), so the rest
of sqlnb runs unchanged when no C compiler was available at install time.

Differences, all documented in docs/dbapi.md: statements are delimited with
``sqlite3.complete_statement`` (SQLite's own tokenizer, via the stdlib), a
statement's parameter names come from ``sqlnb._sql`` (the stdlib does not expose
SQLite's; a mapping is passed and the stdlib looks up only the names the
statement uses), and the policies run as a Python authorizer callback.

Besides the driver protocol (``sqlnb.engines.protocol``), the adapter offers the two
things the stdlib does differently for frames and export: :meth:`RawConnection.decoding`
(a text factory for a block) and :meth:`RawConnection.insert_rows` (executemany under
the adapter's lock, bounded by the time limit and ``interrupt()``). Nobody outside this
module touches the stdlib connection.
"""
from __future__ import annotations

import contextlib
import functools
import pathlib
import sqlite3 as _sq
import sys
import threading
import time

from sqlnb import _files, _sigint, _sql
from sqlnb import authorizer as _authorizer
from sqlnb import errors as _errors
from sqlnb.engines import protocol as _protocol
from sqlnb.engines import system_functions as _udf
from sqlnb.engines.base import OPEN_CREATE, OPEN_READONLY, OPEN_READWRITE, OPEN_URI, Engine
from sqlnb.engines.sqlite import SqliteEngine
from sqlnb.engines.system_util import compile_options, sqlite_version  # noqa: F401 (the module's surface)
from sqlnb.engines.system_util import params as _params
from sqlnb.engines.system_util import readonly_uri as _readonly_uri
from sqlnb.engines.system_util import translate

FLAVOUR = "system"
HAVE_URI = True
HAVE_LSM1 = False


def _boundary_error(obj, exc: _sq.Error) -> _errors.Error:
    """The sqlnb exception for a stdlib one that reached the adapter's boundary (by type).

    A ``sqlite3.ProgrammingError`` on a closed connection (another thread's close()
    during a fetch) is a :class:`ConnectionClosedError`, as on the Cython engines.
    """
    conn = obj if isinstance(obj, RawConnection) else obj.conn
    if isinstance(exc, _sq.ProgrammingError) and conn.closed:
        return _errors.ConnectionClosedError("Cannot operate on a closed database.")
    return conn._translate(exc)


def _sqlnb_errors(method):
    """The adapter boundary: no stdlib ``sqlite3`` exception leaves ``method``."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except _sq.Error as exc:
            raise _boundary_error(self, exc) from None
    return wrapper


def _serialized(method):
    """Run ``method`` holding the connection's lock (see RawConnection._lock); stdlib
    exceptions leave it as sqlnb's (see ``_sqlnb_errors``)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        lock = self._lock if isinstance(self, RawConnection) else self.conn._lock
        try:
            with lock:
                return method(self, *args, **kwargs)
        except _sq.Error as exc:
            raise _boundary_error(self, exc) from None
    return wrapper


class RawConnection:
    def __init__(self, filename, flags=None, vfs=None, uri=False, readonly=False):
        # One caller at a time: the stdlib steps with the GIL released and our
        # progress handler needs the GIL back, while another thread fetching
        # (GIL held) would wait on SQLite's mutex: a deadlock. threading.RLock
        # waits with the GIL released.
        self._lock = threading.RLock()
        self.filename = filename
        self.readonly = readonly
        self.flags = (OPEN_READONLY if readonly else OPEN_READWRITE | OPEN_CREATE) | (OPEN_URI if uri else 0)
        self.timeout = 0.0
        self.progress_callback = None
        self.__policy = None
        self.rows_seen = 0
        self._deadline = 0.0
        self._sigint_mark = -1  # sqlnb._sigint.count when the running statement started
        # an exception raised inside the progress handler or the user's authorizer, re-raised
        # from the step it stopped (see _stopped)
        self._pending = None
        self._udf_cause = None  # (message, exception) of a user function that failed (system_functions)
        self._user_progress = None  # the stdlib's set_progress_handler, layered (system_functions)
        self._user_every = self._user_calls = 0
        self._user_authorizer = None  # the stdlib's set_authorizer, layered under the policy (system_functions)
        self._interrupts = 0  # interrupt() calls so far (insert_rows stops between rows on one)
        self._report_every = 0.0
        self._next_report = 0.0
        try:
            if readonly and not uri and filename not in (":memory:", ""):
                target = f"{pathlib.Path(filename).resolve().as_uri()}?mode=ro"
                self._con = _sq.connect(target, uri=True, isolation_level=None, check_same_thread=False)
            else:
                target = _readonly_uri(filename) if readonly and uri else filename
                self._con = _sq.connect(target, uri=uri, isolation_level=None, check_same_thread=False)
        except _sq.Error as exc:
            raise self._translate(exc) from None
        self._con.set_progress_handler(self._progress, 1000)

    def _translate(self, exc, sql=None):
        return _files.annotate(translate(exc, sql), self.filename, "sqlite", readonly=self.readonly)  # (an SQLite-format file)

    def _progress(self):
        # The stdlib swallows an exception raised in here (the notebook's
        # interrupt arrives as KeyboardInterrupt in this handler): keep it and
        # re-raise it from the step that was stopped (see _stopped).
        try:
            if _sigint.moved(self._sigint_mark):  # a Ctrl-C Python lost elsewhere (sqlnb/_sigint.py)
                raise KeyboardInterrupt()
            if self._deadline and time.monotonic() > self._deadline:
                return 1
            if self._report_every and self.progress_callback is not None:
                now = time.monotonic()
                if now >= self._next_report:
                    self._next_report = now + self._report_every
                    if self.progress_callback():
                        return 1
            return _udf.user_progress(self) if self._user_progress is not None else 0
        except BaseException as exc:  # noqa: BLE001 - re-raised by _stopped
            self._pending, self._sigint_mark = exc, (_sigint.count if self._sigint_mark >= 0 else -1)
            return 1

    def _stopped(self, exc, sql):
        """The exception for a failed stdlib call: a pending interrupt first, then the time limit.

        A signal usually lands on the handler's first line, before its ``try``,
        and the stdlib then drops the KeyboardInterrupt and reports only
        "interrupted": with no limit passed and no ``interrupt()`` call, that is
        the notebook's interrupt, raised again here.
        """
        pending, self._pending = self._pending, None
        asked, self._interrupt_asked = self._interrupt_asked, False
        if pending is not None:
            return pending
        if self._udf_cause is not None:  # a user function raised: the error naming it, caused by it
            return _udf.error(self, sql)
        if getattr(exc, "sqlite_errorcode", None) == 9:  # SQLITE_INTERRUPT
            if self._deadline and time.monotonic() > self._deadline:
                return _errors.timeout_error(self.timeout, sql)
            if not asked:
                return KeyboardInterrupt()
        return self._translate(exc, sql)

    @property
    def closed(self):
        try:
            self._con.total_changes  # noqa: B018 - raises once closed
            return False
        except _sq.ProgrammingError:
            return True

    @_serialized
    def close(self):
        self._con.close()

    def prepare(self, sql: bytes, offset: int = 0):
        text = sql[offset:].decode("utf-8", "surrogateescape")
        if "\0" in text:
            raise _errors.ProgrammingError(_files.NUL_IN_SQL)
        if _sql.is_blank(text):
            return None, len(sql)
        end = len(text)
        pos = text.find(";")
        while pos != -1:
            if _sq.complete_statement(text[: pos + 1]):
                end = pos + 1
                break
            pos = text.find(";", pos + 1)
        piece = text[:end]
        tail = offset + len(piece.encode("utf-8", "surrogateescape"))
        if _sql.is_blank(piece):
            return None, tail
        return RawStatement(self, piece), tail

    _interrupt_asked = False

    @_sqlnb_errors
    def interrupt(self):
        self._interrupt_asked = True
        self._interrupts += 1
        self._con.interrupt()

    def changes(self):
        return self._last_changes

    _last_changes = 0

    @_sqlnb_errors
    def total_changes(self):
        return self._con.total_changes

    def last_insert_rowid(self):
        return self._lastrowid

    _lastrowid = 0

    @property
    @_sqlnb_errors
    def autocommit(self):
        return not self._con.in_transaction

    def __setattr__(self, name, value):
        # the installed policy stays (Python-level freezing is best effort here: the stdlib
        # connection, self._con, is reachable and can drop the authorizer itself)
        if name == "_RawConnection__policy" and self.__dict__.get(name) is not None:
            raise AttributeError("this connection's policy is installed; it cannot be replaced or removed")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if name == "_RawConnection__policy":
            raise AttributeError("this connection's policy is installed; it cannot be removed")
        object.__delattr__(self, name)

    @_serialized
    def busy_timeout(self, seconds):
        self._con.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    @_serialized
    def set_double_quoted_strings(self, on):
        """Strict quotes through ``Connection.setconfig`` (Python 3.12+); otherwise the stdlib's
        connection keeps what its SQLite library was built with (usually: accepted)."""
        setconfig = getattr(self._con, "setconfig", None)
        if setconfig is None or not hasattr(_sq, "SQLITE_DBCONFIG_DQS_DML"):
            if on:
                return
            raise _errors.FeatureNotSupportedError(
                f"strict quotes on the system engine need Python 3.12 or later (sqlite3.Connection.setconfig); "
                f"Python {sys.version.split()[0]}'s sqlite3 cannot change how double-quoted strings are read")
        setconfig(_sq.SQLITE_DBCONFIG_DQS_DML, bool(on))
        setconfig(_sq.SQLITE_DBCONFIG_DQS_DDL, bool(on))

    def set_progress_report(self, every):
        self._report_every = float(every) if every and every > 0 else 0.0
        self._next_report = time.monotonic() + self._report_every

    @property
    def policy(self):
        """The connection's policy (sqlnb.authorizer), set once by :meth:`install_policy`."""
        return self.__policy

    @_sqlnb_errors
    def install_policy(self, policy):
        """Install ``policy`` (sqlnb.authorizer) through the stdlib's ``set_authorizer``.

        The rules are the Cython engines' (``Policy.decide``), run as a Python
        callback; the stdlib has no C-level alternative. One policy per connection,
        never replaced nor removed. The stdlib of this Python (3.11) cannot switch on
        SQLITE_DBCONFIG_DEFENSIVE; each statement's program is checked instead
        (:meth:`_verify`), as on the Cython engines.
        """
        if self.__policy is not None:
            raise _errors.ProgrammingError(
                "this connection already has a mode and policy; they are chosen when it is opened "
                "and cannot be changed")
        if policy.allow_load_extension:
            if not hasattr(self._con, "enable_load_extension"):
                raise _errors.NotSupportedError(
                    "this Python's sqlite3 module was built without extension loading")
            self._con.enable_load_extension(True)
        self._con.set_authorizer(_udf.layered_authorizer(self, policy, policy.python_callback(self)))
        self.__policy = policy

    @contextlib.contextmanager
    def decoding(self, factory):
        """Decode TEXT with ``factory`` (the stdlib's ``text_factory``) for the block (frames'
        column path: it reports text that is not UTF-8 itself)."""
        old = self._con.text_factory
        self._con.text_factory = factory
        try:
            yield
        finally:
            self._con.text_factory = old

    def insert_rows(self, sql: str, rows) -> int:
        """Run ``sql`` for each tuple of the iterator ``rows`` (the exporter's insert); the rows run.

        One stdlib ``executemany`` under the adapter's lock, bounded by the statement time
        limit (``errors.timeout_error``) and by ``interrupt()`` (``errors.interrupted``),
        which SQLite forgets when it lands between two rows: the rows are checked for
        both as they are taken. A stdlib error leaves as sqlnb's, with ``rows_taken``: how
        many rows the iterator had given (the failing one is the last). A
        ``UnicodeEncodeError`` (text with lone surrogates) leaves as it is.
        """
        asked = self._interrupts
        deadline = (time.monotonic() + self.timeout) if self.timeout else 0.0
        taken = 0

        def feed():
            nonlocal taken
            for row in rows:
                if self._interrupts != asked:
                    raise _errors.interrupted(sql)
                if deadline and time.monotonic() > deadline:
                    raise _errors.timeout_error(self.timeout, sql)
                taken += 1
                yield row

        with self._lock:
            self._deadline = deadline  # (the progress handler stops a long step at the deadline)
            self._sigint_mark = _sigint.mark()
            try:
                self._con.executemany(sql, feed())
            except _sq.Error as exc:
                if deadline and time.monotonic() > deadline:
                    err = _errors.timeout_error(self.timeout, sql)
                elif self.closed:
                    err = _errors.ConnectionClosedError("Cannot operate on a closed database.")
                else:
                    err = translate(exc, sql)
                err.rows_taken = taken
                raise err from None
            finally:
                self._deadline = 0.0
        if self._interrupts != asked:
            raise _errors.interrupted(sql)
        return taken

    @_serialized
    def limit(self, category, value=-1):
        """``sqlite3_limit``: the current value (``value`` < 0) or set it, the old value returned."""
        try:
            return self._con.getlimit(category) if value < 0 else self._con.setlimit(category, value)
        except _sq.ProgrammingError:  # a category SQLite does not know: as sqlite3_limit answers it
            return -1

    @_serialized
    def register_function(self, kind, name, narg, func, deterministic=False):
        """The stdlib's create_function/create_aggregate/create_window_function, wrapped
        (``system_functions``); ``func`` None stands in a function that is not there."""
        if func is None:
            def func(*args):
                raise _errors.OperationalError(f"no such function: {name}")
            kind, deterministic = "function", False
        if kind == "function":
            self._con.create_function(name, narg, _udf.scalar(self, name, func), deterministic=deterministic)
        elif kind == "aggregate":
            self._con.create_aggregate(name, narg, _udf.aggregate(self, kind, name, func))
        else:
            self._con.create_window_function(name, narg, _udf.aggregate(self, kind, name, func))

    @_serialized
    def register_collation(self, name, func):
        self._con.create_collation(name, None if func is None else _udf.collation(self, name, func))

    def _verify(self, sql, params):
        """The program check (``Policy.check_program`` over ``EXPLAIN``), before a statement runs."""
        policy = self.__policy
        if policy is None or not policy.needs_verify:
            return
        if _sql.first_keyword(sql) == "EXPLAIN":
            return
        policy.begin()
        state = policy._state
        state["quiet"] = True  # the user's authorizer rules on the statement itself, not on this
        try:
            rows = self._con.execute("EXPLAIN " + sql, params).fetchall()
        except _sq.Error as exc:
            raise _udf.keep_cause(self._failed(exc, sql))
        finally:
            state["quiet"] = False
        ops, frame = [], -1
        for r in rows:
            if r[0] == 0:  # each (trigger) sub-program's listing starts again at address 0
                frame += 1
            if r[1] in _authorizer.VERIFY_OPCODES:
                ops.append((r[1], r[2], r[3], r[4], r[6], frame))
        def schema(q):  # the policy's own schema reads: the user's authorizer does not rule on them
            state["quiet"] = True
            try:
                return self._con.execute(q).fetchall()
            finally:
                state["quiet"] = False

        err = policy.check_program(ops, schema, sql)
        if err is not None:
            raise err

    def _failed(self, exc, sql):
        """The exception for a failed statement: the user authorizer's first, then the policy's account."""
        err = self._stopped(exc, sql)  # a pending interrupt / user-authorizer exception, or the time limit
        if isinstance(err, _errors.Error) and err.result_code in (1, 23) and self.__policy is not None:  # AUTH, or ERROR from a trigger/vtab
            better = self.__policy.explain_refusal(err)
            if better is not None:
                return better
            if err.result_code == 23:
                # our callback denied without a record: an interrupt landed in it before its
                # ``try`` (the stdlib then drops the KeyboardInterrupt and answers DENY)
                return KeyboardInterrupt()
        return err


class RawStatement:
    def __init__(self, conn: RawConnection, sql: str):
        self.conn = conn
        self.sql = sql
        self._params = ()
        self._cur = None
        self._row = None
        self.done = False

    @property
    def finalized(self):
        return self._cur is None and self.done

    @_serialized
    def finalize(self):
        cur, self._cur = self._cur, None
        self.done = True
        if cur is not None:
            try:
                cur.close()
            except _sq.ProgrammingError:
                if not self.conn.closed:
                    raise
                # the connection was closed (maybe by another thread): its statements went with it

    @_serialized
    def reset(self):
        self.finalize()
        self.done = False

    readonly = None  # unknown before running
    isexplain = 0

    def param_names(self):
        """The statement's parameters as SQLite numbers them (``sqlnb._sql``: the stdlib does not tell)."""
        return _sql.param_names(self.sql)

    @_serialized
    def executemany(self, seq_of_parameters) -> int:
        """Run for every parameter set (the stdlib refuses statements that return rows)."""
        c = self.conn
        seq = [_params(p) for p in seq_of_parameters]
        c._pending = None
        c._udf_cause = None
        if seq:
            c._verify(self.sql, seq[0])
        if c.policy is not None:
            c.policy.begin()  # this statement's first action is the first again
        try:
            return c._con.executemany(self.sql, seq).rowcount
        except _sq.Error as exc:
            raise _udf.keep_cause(c._failed(exc, self.sql))

    @_serialized
    def bind(self, params):
        self.reset()
        # a mapping is adapted lazily: only the names the statement uses (a namespace
        # may hold anything else); a sequence is adapted up front
        self._params = _params(params)

    @_serialized
    def _run(self):
        if self._cur is None and not self.done:
            c = self.conn
            c._deadline = (time.monotonic() + c.timeout) if c.timeout else 0.0
            c._sigint_mark = _sigint.mark()
            c._pending = None
            c._udf_cause = None
            try:
                c._verify(self.sql, self._params)
                if c.policy is not None:
                    c.policy.begin()
                self._cur = c._con.execute(self.sql, self._params)
            except _sq.Error as exc:
                raise _udf.keep_cause(c._failed(exc, self.sql))
            finally:
                c._deadline = 0.0
            c._last_changes = max(self._cur.rowcount, 0)
            c._lastrowid = self._cur.lastrowid or 0

    @property
    @_serialized
    def column_count(self):
        self._run()
        return len(self._cur.description) if self._cur is not None and self._cur.description else 0

    @_serialized
    def column_names(self):
        self._run()
        if self._cur is None or not self._cur.description:
            return []
        return [d[0] for d in self._cur.description]

    def decltypes(self):
        return [None] * self.column_count

    @_serialized
    def step(self):
        self._run()
        if self._cur is None:
            return False
        try:
            self._row = self._cur.fetchone()
        except _sq.Error as exc:
            raise _udf.keep_cause(self.conn._failed(exc, self.sql))
        if self._row is None:
            self.done = True
            return False
        return True

    def row(self):
        return tuple(self._row)

    @_serialized
    def fetchmany(self, size):
        self._run()
        if self._cur is None:
            return []
        try:
            rows = self._cur.fetchmany(size)
        except _sq.Error as exc:
            raise _udf.keep_cause(self.conn._failed(exc, self.sql))
        if len(rows) < size:
            self.done = True
        return [tuple(r) for r in rows]

    @_serialized
    def run(self):
        self._run()
        while self.step():
            pass


def register_function(raw, kind, name, narg, func, deterministic=False):
    raw.register_function(kind, name, narg, func, deterministic)


def register_collation(raw, name, func):
    raw.register_collation(name, func)


class SystemEngine(Engine):
    """The stdlib ``sqlite3`` behind the adapter above: always present, pure Python."""

    name = "system"
    description = "the stdlib sqlite3 module (pure Python fallback)"
    file_format = "sqlite"
    module_name = __name__
    capabilities = frozenset(("window", "json", "fts5", "rtree", "wal", "uri", "busy_handler"))
    declared_types = False   # statements cannot tell columns' declared types (detect_types refuses PARSE_DECLTYPES)
    missing = {
        "parallel_fetch": "the stdlib holds the GIL",
        "columnar_fetch": "the stdlib engine has no columnar fetcher (rows are converted in Python)",
        "columnar_export": "the stdlib engine inserts rows through executemany",
        "multirow_values": "the stdlib engine inserts one row per step",
        "export_cache": "the stdlib engine keeps its own cache size",
        "lsm1": "the stdlib's SQLite has no lsm1 (engine='sqlite' has it)",
        "bind_names": "the stdlib does not expose SQLite's parameter names (sqlnb's lexer finds them)",
        # CPython gh-153800 (open): value()/inverse() on an empty frame dereference NULL
        "window_udf": "the stdlib's window functions crash the process on an empty frame (CPython "
                      "gh-153800); use engine='sqlite'",
        "c_aggregates": "the stdlib's sqlite3 cannot register sqlnb's C aggregates; use engine='sqlite'",
    }

    def _import(self):
        return sys.modules[__name__]

    def version(self) -> str:
        return sqlite_version()

    def has(self, cap: str) -> bool:
        if cap == "strict_quotes":
            return hasattr(_sq, "SQLITE_DBCONFIG_DQS_DML")
        return super().has(cap)

    def open_raw(self, path: str, *, mode: str = "rw", uri: bool = False):
        return RawConnection(path, uri=uri, readonly=mode != "rw")

    def install_policy(self, raw, policy) -> None:
        raw.install_policy(policy)

    # the stdlib surface: the stdlib's own calls (sqlnb.engines.system_functions)
    def set_progress_handler(self, raw, handler, n: int) -> None:
        _udf.set_progress_handler(raw, handler, n)

    def set_trace_callback(self, raw, callback) -> None:
        with raw._lock:
            raw._con.set_trace_callback(callback)

    def load_extension(self, raw, path, entrypoint) -> None:
        _udf.load_extension(raw, path, entrypoint)

    def set_authorizer(self, raw, callback) -> None:
        with raw._lock:
            raw._user_authorizer = callback

    def blobopen(self, raw, table, column, row, readonly, name):
        return _udf.Blob(raw, _udf.stdlib_call(raw, "blobopen", table, column, row, readonly=readonly, name=name))

    def serialize(self, raw, name: str) -> bytes:
        return _udf.stdlib_call(raw, "serialize", name=name)

    def deserialize(self, raw, data, name: str) -> None:
        _udf.stdlib_call(raw, "deserialize", data, name=name)

    def backup(self, raw, target, *, pages: int, progress, name: str, sleep: float) -> None:
        target_con = target if isinstance(target, _sq.Connection) else target._con
        _udf.stdlib_call(raw, "backup", target_con, pages=pages, progress=progress, name=name, sleep=sleep)

    def run_many(self, con, st, seq_of_parameters, begin, count) -> int:
        """One stdlib executemany (it refuses statements that return rows itself)."""
        begin(st)
        n = st.executemany(seq_of_parameters)
        return n if count else -1

    def decoding(self, raw, factory):
        return raw.decoding(factory)

    def insert_rows(self, raw, sql: str, rows) -> int:
        return raw.insert_rows(sql, rows)

    # --- frames as tables: the stdlib's SQLite has no sqlnb_frame module: a TEMP copy -----------
    frames_served = "copy"

    def register_frame(self, con, name: str, plan, *, replace: bool = False):
        """Copy the frame into ``temp.<name>`` (said once per connection). Its values are read
        through our core's frame table, so they are the very values the other engines serve."""
        reg = con.extras.setdefault("frames", {})
        key = name.lower()
        if key in reg and not replace:
            raise _errors.ProgrammingError(
                f"a frame is already registered as {name!r}; unregister it first or pass replace=True")
        reader = _frame_reader()
        mem = reader.RawConnection(":memory:")
        try:
            reader.frame_register(mem, "f", plan.frame, plan.describe, plan.names, plan.decl, plan.convert, False)
            rows = _protocol.rows(mem, "SELECT * FROM f")
        finally:
            mem.close()
        if key in reg:
            self.unregister_frame(con, reg[key][0])
        quoted = f"temp.{_sql.quote_identifier(name)}"
        raw = con.raw
        _protocol.rows(raw, f"CREATE TEMP TABLE {quoted} ({plan.decl})")
        if rows:
            marks = ", ".join("?" * len(plan.names))
            raw.insert_rows(f"INSERT INTO {quoted} VALUES ({marks})", iter(rows))
        reg[key] = (name, plan.frame)
        if not con.extras.get("frames_copy_said"):
            con.extras["frames_copy_said"] = True
            print(f"sqlnb: the {self.name!r} engine copies a registered frame into a TEMP table "
                  f"({name!r}: {len(rows):,} rows); later changes to the frame are not seen "
                  "(engine='sqlite' reads frames in place)", file=sys.stderr)
        return _CopiedFrame(plan.frame, len(rows))

    def unregister_frame(self, con, name: str) -> None:
        reg = con.extras.get("frames", {})
        if name.lower() not in reg:
            raise _errors.ProgrammingError(f"no frame is registered as {name!r} on this connection")
        stored, _frame = reg.pop(name.lower())
        _protocol.rows(con.raw, f"DROP TABLE IF EXISTS temp.{_sql.quote_identifier(stored)}")

    def registered_frames(self, con) -> dict:
        return {n: _CopiedFrame(f, -1) for n, f in con.extras.get("frames", {}).values()}


class _CopiedFrame:
    """What ``registered`` shows for a frame the system engine copied."""

    rows_read = 0

    def __init__(self, frame, rows: int):
        self.frame = frame
        self.rows_copied = rows


def _frame_reader():
    """The compiled core whose frame table reads a frame for the copy."""
    try:
        return SqliteEngine().load()
    except _errors.EngineUnavailableError as exc:
        raise _errors.NotSupportedError(
            f"the 'system' engine copies a registered frame through sqlnb's compiled core, which is "
            f"not available here: {exc}") from None
