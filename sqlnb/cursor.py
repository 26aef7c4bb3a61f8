"""The PEP 249 :class:`Cursor` (re-exported by ``sqlnb.connection``).

Where PEP 249 leaves room, a cursor behaves like the stdlib ``sqlite3``'s: the same
types come back, ``execute`` takes one statement and ``executescript`` many. What an
engine does differently (which rows a cursor holds between fetches, how
``executemany`` runs) is the engine's hook (``sqlnb.engines``).
"""
from __future__ import annotations

from sqlnb import _sql, frames
from sqlnb import errors as _errors

#: the statements before which the stdlib opens a transaction implicitly
DML = frozenset(("INSERT", "UPDATE", "DELETE", "REPLACE"))


def is_dml(sql: str) -> bool:
    return _sql.first_keyword(sql) in DML


def serialized(method):
    """Hold the connection's lock around a check-then-act sequence (implicit BEGIN,
    commit): with ``check_same_thread=False`` two threads must not interleave them."""
    def wrapper(self, *args, **kwargs):
        con = self.connection if isinstance(self, Cursor) else self
        with con._lock:
            return method(self, *args, **kwargs)
    wrapper.__name__, wrapper.__doc__, wrapper.__wrapped__ = method.__name__, method.__doc__, method
    return wrapper


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
        con = self.connection
        st = self._prepare_one(sql)
        if st is None:
            return self
        fresh = con._raw.autocommit
        try:
            st.bind(parameters)  # before the implicit BEGIN, as in the stdlib: a bad value opens nothing
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
        rf = self.row_factory
        return rf(self, row) if rf is not None else row

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
            out.extend(self._wrap(r) for r in rows) if self.row_factory else out.extend(rows)
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
            if self.row_factory:
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
