"""The ``system`` engine: the stdlib ``sqlite3`` behind the same small driver
protocol as the Cython core (``RawConnection``/``RawStatement``), so the rest
of sqlnb runs unchanged when no C compiler was available at install time.

Differences, all documented in docs/dbapi.md: statements are delimited with
``sqlite3.complete_statement`` (SQLite's own tokenizer, via the stdlib), a
statement's parameter names are not known before it runs (a mapping is passed
and the stdlib looks up only the names the statement uses), and there is no
authorizer-level policy beyond what the stdlib exposes.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import numbers
import operator
import re
import sqlite3 as _sq
import time

from sqlnb import errors as _errors

FLAVOUR = "system"
HAVE_URI = True
HAVE_LSM1 = False


def sqlite_version():
    return _sq.sqlite_version


def compile_options():
    con = _sq.connect(":memory:")
    try:
        return [r[0] for r in con.execute("PRAGMA compile_options")]
    finally:
        con.close()


_CLASS_BY_STDLIB = {
    _sq.IntegrityError: _errors.IntegrityError,
    _sq.ProgrammingError: _errors.ProgrammingError,
    _sq.OperationalError: _errors.OperationalError,
    _sq.InterfaceError: _errors.InterfaceError,
    _sq.DataError: _errors.DataError,
    _sq.NotSupportedError: _errors.NotSupportedError,
    _sq.InternalError: _errors.InternalError,
}


def translate(exc: _sq.Error, sql=None) -> _errors.Error:
    """The sqlnb exception for a stdlib one: by result code where the stdlib gives it."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return _errors.make_error(code, str(exc), sql=sql)
    for base, cls in _CLASS_BY_STDLIB.items():
        if isinstance(exc, base):
            return _errors.make_error(1, str(exc), sql=sql, cls=cls)
    return _errors.make_error(1, str(exc), sql=sql, cls=_errors.DatabaseError)


class RawConnection:
    def __init__(self, filename, flags=None, vfs=None, uri=False, readonly=False):
        self.filename = filename
        self.timeout = 0.0
        self.progress_callback = None
        self.policy = None
        self._pending = None  # an exception raised inside the user's authorizer
        self.rows_seen = 0
        self._deadline = 0.0
        self._pending = None      # an exception raised inside the progress handler
        self._report_every = 0.0
        self._next_report = 0.0
        try:
            if readonly and not uri and filename not in (":memory:", ""):
                import pathlib

                target = f"{pathlib.Path(filename).resolve().as_uri()}?mode=ro"
                self._con = _sq.connect(target, uri=True, isolation_level=None, check_same_thread=False)
            else:
                self._con = _sq.connect(filename, uri=uri, isolation_level=None, check_same_thread=False)
        except _sq.Error as exc:
            raise translate(exc) from None
        self._con.set_progress_handler(self._progress, 1000)

    def _progress(self):
        # The stdlib swallows an exception raised in here (the notebook's
        # interrupt arrives as KeyboardInterrupt in this handler): keep it and
        # re-raise it from the step that was stopped (see _stopped).
        try:
            if self._deadline and time.monotonic() > self._deadline:
                return 1
            if self._report_every and self.progress_callback is not None:
                now = time.monotonic()
                if now >= self._next_report:
                    self._next_report = now + self._report_every
                    return 1 if self.progress_callback() else 0
            return 0
        except BaseException as exc:  # noqa: BLE001 - re-raised by _stopped
            self._pending = exc
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
        if getattr(exc, "sqlite_errorcode", None) == 9:  # SQLITE_INTERRUPT
            if self._deadline and time.monotonic() > self._deadline:
                e = _errors.make_error(9, f"statement exceeded its time limit of {self.timeout:g} s (timeout)",
                                       cls=_errors.QueryTimeoutError, sql=sql)
                e.timeout = self.timeout
                return e
            if not asked:
                return KeyboardInterrupt()
        return translate(exc, sql)

    @property
    def closed(self):
        try:
            self._con.total_changes  # noqa: B018 - raises once closed
            return False
        except _sq.ProgrammingError:
            return True

    def close(self):
        self._con.close()

    def prepare(self, sql: bytes, offset: int = 0):
        text = sql[offset:].decode("utf-8", "surrogateescape")
        if not text.strip():
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
        if _only_comments(piece):
            return None, tail
        return RawStatement(self, piece), tail

    _interrupt_asked = False

    def interrupt(self):
        self._interrupt_asked = True
        self._con.interrupt()

    def changes(self):
        return self._last_changes

    _last_changes = 0

    def total_changes(self):
        return self._con.total_changes

    def last_insert_rowid(self):
        return self._lastrowid

    _lastrowid = 0

    @property
    def autocommit(self):
        return not self._con.in_transaction

    def busy_timeout(self, seconds):
        self._con.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def set_progress_report(self, every):
        self._report_every = float(every) if every and every > 0 else 0.0
        self._next_report = time.monotonic() + self._report_every

    def install_policy(self, policy):
        """Install ``policy`` (sqlnb.authorizer) through the stdlib's ``set_authorizer``.

        The rules are the Cython engines' (``Policy.decide``), run as a Python
        callback; the stdlib has no C-level alternative. One policy per connection.
        """
        if self.policy is not None:
            raise _errors.ProgrammingError(
                "this connection already has a mode and policy; they are chosen when it is opened "
                "and cannot be changed")
        if policy.allow_load_extension:
            if not hasattr(self._con, "enable_load_extension"):
                raise _errors.NotSupportedError(
                    "this Python's sqlite3 module was built without extension loading")
            self._con.enable_load_extension(True)
        self._con.set_authorizer(policy.python_callback(self))
        self.policy = policy

    def _failed(self, exc, sql):
        """The exception for a failed statement: the user authorizer's first, then the policy's account."""
        err = self._stopped(exc, sql)  # a pending interrupt / user-authorizer exception, or the time limit
        if isinstance(err, _errors.Error) and err.result_code in (1, 23) and self.policy is not None:  # AUTH, or ERROR from a trigger/vtab
            better = self.policy.explain_refusal(err)
            if better is not None:
                return better
        return err


_EMPTY = re.compile(r"(?:\s+|;|--[^\n]*(?:\n|$)|/\*(?:[^*]|\*(?!/))*(?:\*/|\Z))*", re.S)


def _only_comments(piece: str) -> bool:
    """True when a piece holds only whitespace, comments and semicolons (no statement)."""
    return _EMPTY.fullmatch(piece) is not None


def _adapt(v, label):
    """The value the compiled engines would bind, for the stdlib (same types, same errors)."""
    if v is None or isinstance(v, (int, float, str, bytes, bytearray, memoryview)):
        return v
    if isinstance(v, (_dt.date, _dt.time)):
        return v.isoformat(" ") if isinstance(v, _dt.datetime) else v.isoformat()
    kind = getattr(getattr(v, "dtype", None), "kind", "") if type(v).__module__ == "numpy" else ""
    if kind in ("i", "u", "b"):
        return int(v)
    if kind == "f":
        return float(v)
    if isinstance(v, numbers.Integral) or getattr(type(v), "__index__", None) is not None:
        return operator.index(v)
    if isinstance(v, numbers.Real) and not isinstance(v, decimal.Decimal):
        return float(v)
    raise _errors.BindError(
        f"parameter {label}: type '{type(v).__name__}' is not supported "
        f"(bind None, bool, int, float, str, bytes, bytearray, memoryview, date, time or datetime)")


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

    def finalize(self):
        if self._cur is not None:
            self._cur.close()
        self._cur = None
        self.done = True

    def reset(self):
        self.finalize()
        self.done = False

    readonly = None  # unknown before running
    isexplain = 0

    def param_names(self):
        return None  # the stdlib resolves names itself; pass a mapping

    def executemany(self, seq_of_parameters) -> int:
        """Run for every parameter set (the stdlib refuses statements that return rows)."""
        try:
            return self.conn._con.executemany(self.sql, seq_of_parameters).rowcount
        except _sq.Error as exc:
            raise self.conn._failed(exc, self.sql) from None

    def bind(self, params):
        self.reset()
        if params is None:
            self._params = ()
        elif isinstance(params, (list, tuple)):
            self._params = tuple(_adapt(v, str(i + 1)) for i, v in enumerate(params))
        elif hasattr(params, "keys"):
            self._params = {k: _adapt(params[k], k) for k in params.keys()}
        else:
            self._params = params

    def _run(self):
        if self._cur is None and not self.done:
            c = self.conn
            c._deadline = (time.monotonic() + c.timeout) if c.timeout else 0.0
            c._pending = None
            if c.policy is not None:
                c.policy.begin()
            try:
                self._cur = c._con.execute(self.sql, self._params)
            except _sq.Error as exc:
                raise c._failed(exc, self.sql) from None
            finally:
                c._deadline = 0.0
            c._last_changes = max(self._cur.rowcount, 0)
            c._lastrowid = self._cur.lastrowid or 0

    @property
    def column_count(self):
        self._run()
        return len(self._cur.description) if self._cur is not None and self._cur.description else 0

    def column_names(self):
        self._run()
        if self._cur is None or not self._cur.description:
            return []
        return [d[0] for d in self._cur.description]

    def decltypes(self):
        return [None] * self.column_count

    def step(self):
        self._run()
        if self._cur is None:
            return False
        try:
            self._row = self._cur.fetchone()
        except _sq.Error as exc:
            raise self.conn._failed(exc, self.sql) from None
        if self._row is None:
            self.done = True
            return False
        return True

    def row(self):
        return tuple(self._row)

    def fetchmany(self, size):
        self._run()
        if self._cur is None:
            return []
        try:
            rows = self._cur.fetchmany(size)
        except _sq.Error as exc:
            raise self.conn._failed(exc, self.sql) from None
        if len(rows) < size:
            self.done = True
        return [tuple(r) for r in rows]

    def run(self):
        self._run()
        while self.step():
            pass
