"""The documented facade: ``sqlnb.connect()``, ``Connection`` and ``Cursor`` (PEP 249).

Where PEP 249 leaves room, sqlnb behaves like the stdlib ``sqlite3`` so it
drops in: the same types come back, ``isolation_level=""`` opens a transaction
implicitly before INSERT/UPDATE/DELETE/REPLACE, ``with conn:`` commits or rolls
back, ``execute`` takes one statement and ``executescript`` many. The
differences are listed in docs/dbapi.md. What engines do differently is their
:class:`~sqlnb.engines.Engine`'s (``Connection.backend``): this module never
compares engine names. URL parsing and redaction live in ``sqlnb._url`` (importable
from here as before).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlnb import _files, engines, export, frames
from sqlnb import _bind, _sql
from sqlnb.stdlib import convert as _convert
from sqlnb import errors as _errors
from sqlnb._consts import ENGINES, MODES
from sqlnb._url import (
    _no_secrets_in_errors,
    _uri_mode,
    _uri_read_only,
    parse_url,
    redact,
    strictest_mode,
)
from sqlnb.engines import lsm_url as _lsm_url
from sqlnb.engines import open as _open
from sqlnb.frames import source as _frame_source
from sqlnb.stdlib.surface import StdlibSurface, check_isolation_level, text_row

__all__ = ["connect", "Connection", "Cursor", "parse_url", "redact", "strictest_mode", "ENGINES", "MODES"]


#: the statements before which the stdlib opens a transaction implicitly
DML = frozenset(("INSERT", "UPDATE", "DELETE", "REPLACE"))


def is_dml(sql: str) -> bool:
    return _sql.first_keyword(sql) in DML


def serialized(method):
    """Hold the connection's lock around a check-then-act sequence (implicit BEGIN,
    commit): with ``check_same_thread=False`` two threads must not interleave them."""
    def wrapper(self, *args, **kwargs):
        con = self if isinstance(self, Connection) else self.connection
        with con._lock:
            return method(self, *args, **kwargs)
    wrapper.__name__, wrapper.__doc__, wrapper.__wrapped__ = method.__name__, method.__doc__, method
    return wrapper


def _open_lsm(path, *, mode, timeout, statement_timeout, isolation_level, check_same_thread, url, **options):
    """``lsm:///file.lsm``: the file mounted as one lsm1 table on a private in-memory SQLite."""
    raw, extras, attach = _lsm_url.open_lsm(path, mode=mode, timeout=timeout, statement_timeout=statement_timeout,
                                            url=url, options=options)
    try:
        con = Connection(raw, engine="sqlite", mode=mode, database=url, path=extras["lsm"]["file"],
                         isolation_level=isolation_level, check_same_thread=check_same_thread, timeout=timeout)
    except BaseException:
        raw.close()
        _files.release(raw)
        raise
    con.extras.update(extras)
    attach(con)
    return con


#: URL schemes that are not an engine but an opener over one (``parse_url``'s first item)
_URL_OPENERS = {"lsm": _open_lsm}


@_no_secrets_in_errors
def connect(database=":memory:", *, engine: str | None = None, mode: str | None = None,
            timeout: float = 5.0, statement_timeout: float | None = None,
            isolation_level: str | None = "", check_same_thread: bool = True,
            uri: bool = False, allow_load_extension: bool = False,
            deny_tables=(), mask_columns=(), allow_tables=None, authorizer=None,
            strict_quotes: bool = False, detect_types: int = 0, **lsm_options) -> Connection:
    """Open a database and return a PEP 249 :class:`Connection`.

    :param database: a path, ``":memory:"``, a ``file:`` URI (with ``uri=True``)
        or a URL: ``sqlite:///path``, ``bdb:///path``, ``system:///path``,
        ``lsm:///path.lsm``.
    :param engine: ``"sqlite"`` (our build, the default when present), ``"bdb"``
        (BerkeleyDB SQL) or ``"system"`` (stdlib). Overrides the URL scheme.
    :param mode: ``"rw"``, ``"ro"`` or ``"ro-scratch"``: enforced by an
        authorizer in C that no SQL statement can lift (see docs/read-only.md).
        The connection gets the strictest of this, the URL's ``?mode=`` and a
        ``file:`` URI's ``mode=ro`` (``rw`` < ``ro-scratch`` < ``ro``; none: ``rw``).
    :param timeout: seconds to wait on a locked database (busy timeout).
    :param statement_timeout: per-statement time limit in seconds (None: none).
    :param isolation_level: as in the stdlib; ``None`` is autocommit.
    :param strict_quotes: ``False`` (default): a double-quoted string that names no column is read
        as a string literal, as the stdlib and older tools read it (a schema they wrote opens here
        too). ``True``: double quotes are for identifiers only, in statements and in the schema
        (SQLite's recommendation; the sqlite3 shell's default since 3.41). The bdb engine's older
        core, and the system engine before Python 3.12, cannot be strict: FeatureNotSupportedError.
        See docs/dbapi.md.
    :param detect_types: as in the stdlib: ``PARSE_DECLTYPES`` and/or ``PARSE_COLNAMES`` pass
        values to the converters of ``register_converter`` (sqlnb.stdlib.convert).
    """
    if not isinstance(detect_types, int):
        _convert.check_detect_types(detect_types, None)   # (its TypeError, before anything is opened)
    if isinstance(database, (Path, os.PathLike)):
        database = os.fspath(database)
    isolation_level = check_isolation_level(isolation_level)  # (before anything is opened)
    if not isinstance(database, str):
        raise TypeError(f"database must be a path (str or os.PathLike) or a URL, not {type(database).__name__}")
    url_engine, path, opts = parse_url(database)
    # the mode: the strictest asked for, never loosened by another source (docs/read-only.md)
    url_mode = opts.pop("mode", None)
    if url_mode is not None and url_mode not in MODES:
        raise ValueError(f"{redact(database)!r} asks for mode {url_mode!r}; "
                         f"?mode= must be one of {', '.join(MODES)}")
    is_uri = uri and url_engine is None and path[:5].lower() == "file:"
    mode = strictest_mode(mode, url_mode, _uri_mode(path) if is_uri else None)
    if is_uri and mode != "rw":
        path = _uri_read_only(path)  # read-only at the file level too, whatever the URI said
    opener = _URL_OPENERS.get(url_engine)
    if opener is not None:  # lsm:///: mounts a file on an in-memory SQLite
        con = opener(path, mode=mode, timeout=timeout, statement_timeout=statement_timeout,
                     isolation_level=isolation_level, check_same_thread=check_same_thread,
                     url=database, **{**opts, **lsm_options})
        if strict_quotes:
            con.raw.set_double_quoted_strings(False)
        con.detect_types = detect_types
        return con
    if lsm_options:
        raise TypeError(f"connect() got unexpected keyword arguments: {', '.join(lsm_options)}")
    backend = engines.engine(engine or url_engine) if (engine or url_engine) else engines.default()
    detect_types = _convert.check_detect_types(detect_types, backend)
    raw = _open.open_connection(backend, path, mode=mode, uri=uri, timeout=timeout,
                                statement_timeout=statement_timeout, strict_quotes=strict_quotes,
                                allow_load_extension=allow_load_extension, deny_tables=deny_tables,
                                mask_columns=mask_columns, allow_tables=allow_tables, authorizer=authorizer)
    con = Connection(raw, engine=backend.name, mode=mode, database=database, path=path,
                     isolation_level=isolation_level, check_same_thread=check_same_thread, timeout=timeout)
    con.detect_types = detect_types
    return con


class Connection(StdlibSurface):
    """A PEP 249 connection over one of sqlnb's engines."""

    # PEP 249 exposes the exception classes on the connection too
    Warning = _errors.Warning
    Error = _errors.Error
    InterfaceError = _errors.InterfaceError
    DatabaseError = _errors.DatabaseError
    DataError = _errors.DataError
    OperationalError = _errors.OperationalError
    IntegrityError = _errors.IntegrityError
    InternalError = _errors.InternalError
    ProgrammingError = _errors.ProgrammingError
    NotSupportedError = _errors.NotSupportedError

    def __init__(self, raw, *, engine, mode="rw", database=":memory:", path=None,
                 isolation_level="", check_same_thread=True, timeout=5.0):
        self._raw = raw
        self.engine = engine          #: the engine's name (public, a string)
        self.backend = engines.engine(engine)   #: the Engine object (capabilities and hooks)
        self.mode = mode
        self.database = database
        self.path = path if path is not None else database
        self.isolation_level = isolation_level
        self.check_same_thread = check_same_thread
        self._thread = threading.get_ident()
        self._lock = threading.RLock()
        self.row_factory = None
        self.extras: dict = {}
        self.backend.on_open(self, timeout)

    # --- plumbing ------------------------------------------------------------
    @property
    def raw(self):
        """The engine-level connection (``sqlnb._fast.RawConnection`` or the stdlib adapter)."""
        self._check()
        return self._raw

    def _check(self):
        if self._raw is None or self._raw.closed:
            raise _errors.ConnectionClosedError("Cannot operate on a closed database.")
        if self.check_same_thread and threading.get_ident() != self._thread:
            raise _errors.ProgrammingError(
                "SQLite objects created in a thread can only be used in that same thread. "
                f"The object was created in thread id {self._thread} and this is thread id "
                f"{threading.get_ident()}. Pass check_same_thread=False to share it "
                "(calls are then serialized by the connection's lock).")

    @property
    def closed(self) -> bool:
        return self._raw is None or self._raw.closed

    @property
    def url(self) -> str:
        """The connection's target with any secret parts removed."""
        return redact(self.database)

    @property
    def sqlite_version(self) -> str:
        """The SQLite core version of the connection's engine."""
        return self.backend.version()

    @property
    def policy_summary(self) -> str:
        """The mode and any policies, in a few words (shown in the magic's footer and list)."""
        policy = getattr(self._raw, "policy", None) if self._raw is not None else None
        return policy.summary() if policy is not None else self.mode

    @property
    def in_transaction(self) -> bool:
        self._check()
        return not self._raw.autocommit

    @property
    def total_changes(self) -> int:
        self._check()
        return self._raw.total_changes()

    @property
    def statement_timeout(self) -> float | None:
        return self._raw.timeout or None

    @statement_timeout.setter
    def statement_timeout(self, seconds):
        self._check()
        self._raw.timeout = float(seconds or 0)

    # --- PEP 249 -----------------------------------------------------------------
    def cursor(self, factory=None) -> Cursor:
        self._check()
        return (factory or Cursor)(self)

    def execute(self, sql, parameters=None) -> Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters) -> Cursor:
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, sql_script) -> Cursor:
        return self.cursor().executescript(sql_script)

    @serialized
    def commit(self):
        self._check()
        if not self._raw.autocommit:
            self._run_simple("COMMIT")

    @serialized
    def rollback(self):
        self._check()
        if not self._raw.autocommit:
            self._run_simple("ROLLBACK")

    def close(self):
        """Close the connection; an open transaction is rolled back (as in the stdlib).

        Closing an already closed connection raises :class:`ConnectionClosedError`
        (PEP 249: any operation on a closed connection is an error; the stdlib ignores it).
        """
        if self._raw is None or self._raw.closed:
            raise _errors.ConnectionClosedError("Cannot close a closed database.")
        self._raw.close()
        _files.release(self._raw)  # (after the close: the last one removes what a read-only open left)
        self.backend.on_close(self)

    def _retire(self, stand_in):
        """Replace the engine-level connection by ``stand_in`` (the bdb engine's fork guard: in a
        forked child, the parent's handle is never used nor closed)."""
        self._raw = stand_in

    def interrupt(self):
        """Stop the statement running on this connection (callable from another thread)."""
        if self._raw is not None and not self._raw.closed:
            self._raw.interrupt()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.closed:
            return False
        if exc_type is None:
            self.commit()
        else:
            self.rollback()
        return False

    def __repr__(self):
        state = "closed" if self.closed else self.mode
        return f"<sqlnb.Connection {self.engine} {self.url!r} {state}>"

    # --- results as frames, tables from frames (sqlnb.frames, sqlnb.export) ------
    def query_df(self, sql, params=None, **options):
        """Run ``sql`` and return its result as a pandas DataFrame (the columnar fetcher).

        See :func:`sqlnb.frames.query_df` for the options and the type rules.
        ``chunksize=N`` returns an iterator of DataFrames of at most N rows instead
        (like ``pandas.read_sql(chunksize=)``; see :func:`sqlnb.frames.iter_frames`).
        """
        if options.get("chunksize") is not None:
            return frames.iter_frames(self, sql, params, **options)
        options.pop("chunksize", None)
        return frames.query_df(self, sql, params, **options)

    def query_batches(self, sql, params=None, *, rows=frames.batches.DEFAULT_ROWS, parallel=None, **options):
        """Run ``sql`` and stream its result as a ``pyarrow.RecordBatchReader`` of ``rows``-row
        batches, in constant memory (see :func:`sqlnb.frames.query_batches`: one schema, its rule)."""
        return frames.query_batches(self, sql, params, rows=rows, parallel=parallel, **options)

    def query_arrow(self, sql, params=None, **options):
        """Run ``sql`` and return its result as a ``pyarrow.Table``."""
        return frames.query_arrow(self, sql, params, **options)

    @serialized
    def to_table(self, df, name, **options):
        """Write a DataFrame into table ``name`` atomically (see :func:`sqlnb.export.to_table`)."""
        return export.to_table(self, df, name, **options)

    # --- frames as tables: the sqlnb_frame virtual table (docs/frames-in-sql.md) ------
    @serialized
    def register(self, name: str, frame, *, replace: bool = False, datetimes: str = "text"):
        """Serve ``frame`` (a pandas DataFrame, a pyarrow Table or RecordBatch, or an object with
        the Arrow PyCapsule interface) as the read-only table ``temp.<name>``.

        SQLite reads the frame's own buffers at each query (no copy; the ``system`` engine copies
        it into a TEMP table instead). The table keeps a reference to the frame: a frame changed
        in place is read as it is now; a new object bound to the same variable is not (register
        it again). ``datetimes``: ``"text"`` (ISO-8601, the default) or ``"epoch"`` (REAL seconds).
        Allowed in every mode (the frame is read, nothing is written). Returns the connection.
        """
        self._check()
        if not isinstance(name, str) or not name.strip() or "\0" in name:
            raise ValueError(f"a frame is registered under a table name (a non-empty str), not {name!r}")
        plan = _frame_source.plan(frame, datetimes=datetimes)
        self.backend.register_frame(self, name, plan, replace=replace)
        return self

    @serialized
    def unregister(self, name: str):
        """Drop the table :meth:`register` made (the frame itself is untouched). Returns the connection."""
        self._check()
        self.backend.unregister_frame(self, name)
        return self

    @property
    def registered(self) -> dict:
        """``{name: source}`` of the frames registered on this connection (``source.frame``)."""
        self._check()
        return self.backend.registered_frames(self)

    # --- helpers for the layers above -----------------------------------------------
    def _prepare(self, data: bytes, offset: int = 0):
        """Prepare the statement of ``data`` starting at byte ``offset``: ``(stmt|None, tail)``.

        Every prepare of the facade goes through here, so an engine can explain
        its own errors (the bdb engine names what its older core lacks).
        """
        self.backend.before_statement(self)  # (bdb: refuse what its locks would block on forever)
        try:
            return self._waiting(self._raw.prepare, data, offset)
        except _errors.Error as exc:
            better = self._explain(exc, data[offset:].decode("utf-8", "surrogateescape"))
            if better is not None:
                raise better from exc
            raise

    def _explain(self, exc, sql):
        """A clearer exception for ``exc`` from the engine's explainer, or None (prepare and step errors)."""
        return self.backend.explain(exc, sql) if isinstance(exc, _errors.Error) else None

    def _run_simple(self, sql: str):
        st, _ = self._raw.prepare(sql.encode(), 0)
        try:
            self._run_statement(st)
        finally:
            st.finalize()

    def _run_statement(self, st):
        """Run a bound statement to its end."""
        return self._waiting(st.run, statement=st)

    def _waiting(self, fn, *args, statement=None):
        """``fn(*args)``: a prepare, or a first step/run/fetch of ``statement``.

        The engine's ``call`` hook: on bdb, a wait for another process's lock is
        refused after a moment and tried again, ``statement`` prepared afresh, until
        the connection's timeout; SQLite's own engines wait in their busy handler.
        """
        return self.backend.call(self, fn, *args, statement=statement)

    def _maybe_begin(self, st):
        """Open the implicit transaction the stdlib would open before DML.

        An interrupt (Ctrl-C) that lands once the BEGIN took effect rolls it back
        before going on: no transaction the caller never saw opening stays open.
        """
        if self.isolation_level is None:
            return
        if self._raw.autocommit and st.readonly is not True and is_dml(st.sql):
            try:
                self._run_simple(f"BEGIN {self.isolation_level}".strip())
            except BaseException:
                self._roll_back_quietly()
                raise

    def _roll_back_quietly(self):
        """Roll back an open transaction, if any, keeping the exception being handled."""
        try:
            if self._raw is not None and not self._raw.closed and not self._raw.autocommit:
                self._run_simple("ROLLBACK")
        except BaseException:  # noqa: BLE001 - the original exception wins
            pass

    def statements(self, sql: str):
        """Yield ``(RawStatement, start, end)`` for each statement of ``sql``.

        Offsets are character offsets into ``sql``; statements are delimited by
        SQLite's own tail pointer (so semicolons inside strings and comments,
        and comments anywhere, are handled by SQLite itself).
        """
        self._check()
        data = sql.encode("utf-8", "surrogateescape")
        offset = 0
        while offset < len(data):
            st, tail = self._prepare(data, offset)
            if st is None:  # only comments/whitespace/semicolons up to tail
                if tail <= offset:
                    break
                offset = tail
                continue
            start = len(data[:offset].decode("utf-8", "surrogateescape"))
            end = start + len(data[offset:tail].decode("utf-8", "surrogateescape"))
            yield st, start, end
            offset = tail


# --- the cursor -------------------------------------------------------------------------
class Cursor:
    """A PEP 249 cursor."""

    arraysize = 1

    def __init__(self, connection):
        self.connection = connection
        self._st = None
        self._pending_row = None
        self._closed = False
        self.description = None
        self.rowcount = -1
        self.lastrowid = None
        self.row_factory = connection.row_factory
        self.arraysize = 1
        self._casts = None   # [(column, converter)] under detect_types (sqlnb.stdlib.convert)

    def _check(self):
        if self._closed:
            raise _errors.ProgrammingError("Cannot operate on a closed cursor.")
        self.connection._check()

    def close(self):
        self._finish()
        self._closed = True

    def _finish(self):
        if self._st is not None:
            self._st.finalize()
            self._st = None
        self._pending_row = None

    def setinputsizes(self, sizes):
        pass

    def setoutputsize(self, size, column=None):
        pass

    def _prepare_one(self, sql):
        if not isinstance(sql, str):
            raise TypeError(f"SQL must be str, not {type(sql).__name__}")
        con = self.connection
        data = sql.encode("utf-8", "surrogateescape")
        st, tail = con._prepare(data, 0)
        if st is not None and tail < len(data):
            extra, _ = con._raw.prepare(data, tail)
            if extra is not None:
                extra.finalize()
                st.finalize()
                raise _errors.ProgrammingError("You can only execute one statement at a time.")
        return st

    @serialized
    def execute(self, sql, parameters=None):
        self._check()
        self._finish()
        self.description = None
        self.rowcount = -1
        self._casts = None
        con = self.connection
        st = self._prepare_one(sql)
        if st is None:
            return self
        fresh = con._raw.autocommit
        try:
            st.bind(_bind.with_adapters(parameters))  # before the implicit BEGIN, as in the stdlib: a bad value opens nothing
            con._maybe_begin(st)
            has_row = con._waiting(st.step, statement=st)
            names = st.column_names()
        except BaseException as exc:
            st.finalize()
            if fresh and not isinstance(exc, _errors.Error):
                con._roll_back_quietly()  # interrupted: the transaction this call opened goes too
            better = con._explain(exc, sql)
            if better is not None:
                raise better from exc
            raise
        dml = is_dml(st.sql)
        if names:
            types = st.decltypes() or [None] * len(names)
            names, self._casts = _convert.row_casts(con.detect_types, names, types)
            self.description = tuple((n, t, None, None, None, None, None) for n, t in zip(names, types))
        if has_row:
            self._pending_row = st.row()
            self._st = con.backend.hold_rows(st, self._pending_row)
        else:
            st.finalize()
        if dml:
            self.rowcount = con._raw.changes()
        self.lastrowid = con._raw.last_insert_rowid()
        return self

    @serialized
    def executemany(self, sql, seq_of_parameters):
        self._check()
        self._finish()
        self.description = None
        con = self.connection
        st = self._prepare_one(sql)
        if st is None:
            self.rowcount = -1
            return self
        try:
            if _bind.ADAPTERS:   # (registered adapters come before the bind rule)
                seq_of_parameters = map(_bind.with_adapters, seq_of_parameters)
            self.rowcount = con.backend.run_many(con, st, seq_of_parameters, con._maybe_begin, is_dml(st.sql))
        finally:
            st.finalize()
        return self

    @serialized
    def executescript(self, sql_script):
        """Run every statement of a script (COMMITting a pending transaction first, as the stdlib does)."""
        self._check()
        self._finish()
        if not isinstance(sql_script, str):
            raise ValueError("script argument must be unicode.")
        con = self.connection
        con.commit()
        for st, _, _ in con.statements(sql_script):
            try:
                con._run_statement(st)
            except _errors.Error as exc:
                better = con._explain(exc, st.sql)
                if better is not None:
                    raise better from exc
                raise
            finally:
                st.finalize()
        return self

    # --- fetching ----------------------------------------------------------------
    # --- the cursor's rows, taken and given back by sqlnb.frames' fetch -------------------
    def _take_rows(self):
        """The open statement (or None) and the row already read (or None); the row is the caller's now."""
        st, row, self._pending_row = self._st, self._pending_row, None
        return st, row

    def _keep_unread(self, row):
        """A fetch stopped at its limit: ``row`` is handed out next."""
        self._pending_row = row

    def _next_raw(self):
        if self._pending_row is not None:
            row, self._pending_row = self._pending_row, None
            return row
        if self._st is None:
            return None
        if self._st.step():
            return self._st.row()
        self._finish()
        return None

    def _wrap(self, row):
        tf, raw = self.connection._text_rows(), row
        if tf is not None:
            row = text_row(row, tf)
        if self._casts is not None:
            row = _convert.convert_row(raw, row, self._casts)
        rf = self.row_factory
        return rf(self, row) if rf is not None else row

    def _wraps(self):
        return self.row_factory is not None or self.connection._text_rows() is not None or self._casts is not None

    def _check_result(self):
        self._check()
        if self.description is None:
            raise _errors.ProgrammingError(
                "no result set: the last execute() did not run a statement that returns rows "
                "(or nothing was executed yet)")

    def fetchone(self):
        self._check_result()
        row = self._next_raw()
        return None if row is None else self._wrap(row)

    def fetchmany(self, size=None):
        self._check_result()
        size = self.arraysize if size is None else size
        out = []
        if size <= 0:
            return out
        if self._pending_row is not None:
            out.append(self._wrap(self._pending_row))
            self._pending_row = None
        if self._st is not None and len(out) < size:
            rows = self._st.fetchmany(size - len(out))
            out.extend(self._wrap(r) for r in rows) if self._wraps() else out.extend(rows)
            if len(out) < size:
                self._finish()
        return out

    def fetchall(self):
        self._check_result()
        out = []
        if self._pending_row is not None:
            out.append(self._wrap(self._pending_row))
            self._pending_row = None
        while self._st is not None:
            rows = self._st.fetchmany(4096)
            if self._wraps():
                out.extend(self._wrap(r) for r in rows)
            else:
                out.extend(rows)
            if len(rows) < 4096:
                self._finish()
        return out

    def fetch_df(self, **options):
        """The remaining rows of the current result as a DataFrame (the columnar fetcher)."""
        self._check()
        return frames.cursor_df(self, **options)

    def __iter__(self):
        return self

    def __next__(self):
        if self.description is None:
            self._check()
            raise StopIteration
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row
