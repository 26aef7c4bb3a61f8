"""More of the stdlib ``sqlite3.Connection`` surface: ``set_progress_handler`` (layered under
sqlnb's own), ``set_trace_callback``, ``backup``, ``serialize``/``deserialize`` and ``iterdump``
(a mixin of :class:`sqlnb.stdlib.surface.StdlibSurface`; docs/dbapi.md).

The work is the engine's (``Engine.set_progress_handler``, ``set_trace_callback``, ``backup``,
``serialize``, ``deserialize``): the compiled core's ``_core/hooks.pxi`` and
``_core/backup.pxi``, or the stdlib's own calls on the ``system`` engine. ``iterdump`` is
the stdlib's algorithm over SQL, on every engine.
"""
from __future__ import annotations

import sqlite3 as _stdlib

from sqlnb import _sql
from sqlnb import errors as _errors
from sqlnb.stdlib.blob import Blob


def _refuse_read_only(con, what: str) -> None:
    if con.mode != "rw":
        raise _errors.make_error(8, f"{what}: refused under mode {con.mode!r} (it writes the database)",
                                 cls=_errors.ReadOnlyError)


class MoreMixin:
    """Progress and trace callbacks, backup, serialize/deserialize, iterdump."""

    def set_progress_handler(self, progress_handler, n):
        """Call ``progress_handler()`` about every ``n`` SQLite VM instructions while a statement
        runs; a true result stops it (``InterruptError``). ``None`` (or ``n`` <= 0) removes it.
        sqlnb's own handler (Ctrl-C, time limits, progress displays) keeps running under it."""
        self._check()
        if progress_handler is not None and not callable(progress_handler):
            raise TypeError("progress_handler must be callable or None")
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        self.backend.set_progress_handler(self._raw, progress_handler, max(-1, min(n, 2**31 - 1)))

    def set_trace_callback(self, trace_callback):
        """Call ``trace_callback(sql)`` with each statement's SQL as SQLite runs it (``None``: stop)."""
        self._check()
        if trace_callback is not None and not callable(trace_callback):
            raise TypeError("trace_callback must be callable or None")
        self.backend.set_trace_callback(self._raw, trace_callback)

    def serialize(self, *, name="main") -> bytes:
        """The database ``name`` as the bytes of its file (SQLite 3.23+; not on bdb)."""
        self._check()
        if not isinstance(name, str):
            raise TypeError(f"name must be str, not {type(name).__name__}")
        return self.backend.serialize(self._raw, name)

    def deserialize(self, data, /, *, name="main"):
        """Replace database ``name`` by the image ``data``, held in memory (refused in read-only modes)."""
        self._check()
        if not isinstance(name, str):
            raise TypeError(f"name must be str, not {type(name).__name__}")
        memoryview(data)  # a bytes-like object, or TypeError
        _refuse_read_only(self, "deserialize()")
        self.backend.deserialize(self._raw, data, name)

    def backup(self, target, *, pages=-1, progress=None, name="main", sleep=0.250):
        """Copy database ``name`` into ``target``'s main database, ``pages`` pages at a time
        (0 or negative: all at once), calling ``progress(status, remaining, total)`` after each
        step and sleeping ``sleep`` seconds when the source is busy. ``target``: an sqlnb
        connection of the same engine, or a stdlib ``sqlite3.Connection`` (through
        serialize/deserialize where the engines differ)."""
        self._check()
        if isinstance(pages, bool) or not isinstance(pages, int):
            raise TypeError(f"pages must be an int, not {type(pages).__name__}")
        if progress is not None and not callable(progress):
            raise TypeError("progress argument must be a callable")
        if not isinstance(name, str):
            raise TypeError(f"name must be str, not {type(name).__name__}")
        sleep = float(sleep)
        if isinstance(target, _stdlib.Connection):
            target.total_changes  # noqa: B018 - a closed stdlib connection raises its ProgrammingError
            if target.in_transaction:
                raise _errors.OperationalError("target is in transaction")
            return self.backend.backup(self._raw, target, pages=pages, progress=progress, name=name, sleep=sleep)
        if not isinstance(target, MoreMixin):
            raise TypeError(f"target must be an sqlnb or sqlite3 Connection, not {type(target).__name__}")
        if target is self:
            raise ValueError("target cannot be the same connection instance")
        target._check()
        _refuse_read_only(target, "backup() into this connection")
        if target.in_transaction:
            raise _errors.OperationalError("target is in transaction")
        if target.backend is not self.backend:
            raise _errors.FeatureNotSupportedError(
                f"backup() from a {self.engine!r} connection into a {target.engine!r} one: each engine "
                f"has its own SQLite library; back up to a connection of the same engine (or serialize())")
        return self.backend.backup(self._raw, target._raw, pages=pages, progress=progress, name=name, sleep=sleep)

    def set_authorizer(self, authorizer_callback):
        """``authorizer_callback(action, arg1, arg2, db, source)`` returning ``sqlnb.authorizer.OK``,
        ``DENY`` or ``IGNORE``, LAYERED under the connection's mode and policies: it is asked only
        about what they allow (it can refuse more, never allow what the mode refuses), after the
        ``authorizer=`` given to ``connect()``. ``None`` removes it."""
        self._check()
        if authorizer_callback is not None and not callable(authorizer_callback):
            raise TypeError("authorizer_callback must be callable or None")
        self.backend.set_authorizer(self._raw, authorizer_callback)

    def blobopen(self, table, column, row, /, *, readonly=False, name="main") -> Blob:
        """Open the BLOB in ``table.column`` of rowid ``row`` for incremental I/O (a :class:`Blob`).

        Refused in the read-only modes unless ``readonly=True``, and under table policies
        (deny/mask/allow lists: a blob handle reads past them)."""
        self._check()
        for what, v in (("table", table), ("column", column), ("name", name)):
            if not isinstance(v, str):
                raise TypeError(f"blobopen(): {what} must be str, not {type(v).__name__}")
        if isinstance(row, bool) or not isinstance(row, int):
            raise TypeError(f"blobopen(): row must be an int, not {type(row).__name__}")
        policy = getattr(self._raw, "policy", None)
        if policy is not None and policy.has_table_policies:
            raise _errors.make_error(23, "blobopen(): refused on a connection with table policies (a blob "
                                         "handle would read past them)", cls=_errors.PolicyError)
        if not readonly:
            _refuse_read_only(self, "blobopen() for writing (use readonly=True)")
        return Blob(self.backend.blobopen(self._raw, table, column, row, bool(readonly), name))

    def enable_load_extension(self, enabled, /):
        """Allow (or not) :meth:`load_extension` on this connection; off by default, and refused
        in the read-only modes (an extension is native code with the process's rights). The SQL
        function ``load_extension()`` stays as ``connect(allow_load_extension=...)`` set it."""
        self._check()
        if enabled and self.mode != "rw":
            raise _errors.make_error(23, f"enable_load_extension(): extension loading is refused under mode "
                                         f"{self.mode!r}", cls=_errors.PolicyError)
        self.__dict__["_load_extension"] = bool(enabled)

    def load_extension(self, path, /, *, entrypoint=None):
        """Load the SQLite extension at ``path`` (after ``enable_load_extension(True)``; never in the
        read-only modes). ``entrypoint``: its init function (default: SQLite's rule)."""
        self._check()
        if self.mode != "rw":
            raise _errors.make_error(23, f"load_extension(): extension loading is refused under mode "
                                         f"{self.mode!r}", cls=_errors.PolicyError)
        if not self.__dict__.get("_load_extension"):
            raise _errors.OperationalError("not authorized (call enable_load_extension(True) first)")
        if entrypoint is not None and not isinstance(entrypoint, str):
            raise TypeError(f"entrypoint must be str or None, not {type(entrypoint).__name__}")
        self.backend.load_extension(self._raw, path, entrypoint)

    def iterdump(self):
        """The database as SQL text, one statement at a time (the stdlib's ``iterdump``): re-run
        it into an empty database for the same schema and rows."""
        self._check()
        return _iterdump(self)


def _rows(con, sql):
    return con.cursor().execute(sql).fetchall()


def _iterdump(con):
    """The stdlib's ``sqlite3.dump._iterdump``, its SQL built through ``sqlnb._sql``."""
    yield "BEGIN TRANSACTION;"
    schema = _rows(con, "SELECT name, type, sql FROM sqlite_master "
                        "WHERE sql NOT NULL AND type == 'table' ORDER BY name")
    writable_schema = False
    sequence = []   # the AUTOINCREMENT counters: restored last (as the stdlib does since gh-79009)
    for table_name, _type, sql in schema:
        if table_name == "sqlite_sequence":
            sequence = ['DELETE FROM "sqlite_sequence"'] + [
                f'INSERT INTO "sqlite_sequence" VALUES({_sql.quote_literal(str(name))},{seq})'
                for name, seq in _rows(con, 'SELECT * FROM "sqlite_sequence"')]
            continue
        elif table_name == "sqlite_stat1":
            yield 'ANALYZE "sqlite_master";'
        elif table_name.startswith("sqlite_"):
            continue
        elif _sql.words(sql, 3) == ["CREATE", "VIRTUAL", "TABLE"]:
            if not writable_schema:
                writable_schema = True
                yield "PRAGMA writable_schema=ON;"
            yield ("INSERT INTO sqlite_master(type,name,tbl_name,rootpage,sql)"
                   f"VALUES('table',{_sql.quote_literal(table_name)},{_sql.quote_literal(table_name)},0,"
                   f"{_sql.quote_literal(sql)});")
            continue
        else:
            yield f"{sql};"
        ident = _sql.quote_identifier(table_name)
        columns = [str(r[1]) for r in _rows(con, f"PRAGMA table_info({ident})")]
        values = " || ',' || ".join(f"quote({_sql.quote_identifier(c)})" for c in columns)
        insert = f"{_sql.quote_literal(f'INSERT INTO {ident} VALUES(')} || {values} || ')'"
        for (row,) in con.cursor().execute(f"SELECT {insert} FROM {ident}"):
            yield f"{row};"
    for _name, _type, sql in _rows(con, "SELECT name, type, sql FROM sqlite_master "
                                        "WHERE sql NOT NULL AND type IN ('index', 'trigger', 'view')"):
        yield f"{sql};"
    if writable_schema:
        yield "PRAGMA writable_schema=OFF;"
    for statement in sequence:
        yield f"{statement};"
    yield "COMMIT;"
