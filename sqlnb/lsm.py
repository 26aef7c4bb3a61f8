"""lsm1 key/value tables: create, open and explore them from Python.

SQLite's lsm1 extension (compiled into the ``sqlite`` engine, with sqlnb's own
``xBestIndex``) mounts an LSM database file as a virtual table::

    CREATE VIRTUAL TABLE events USING lsm1('/abs/events.lsm', ts, UINT, kind, payload)

This module adds what lsm1 leaves out (see docs/lsm1.md):

* :func:`table` creates or opens such a table on a connection and returns an
  :class:`LsmTable` with helpers (point get, range and prefix scans, counts,
  range deletes, bulk load in one transaction). Every helper runs bound SQL on
  the virtual table and returns DataFrames through ``Connection.query_df``.
* :func:`lsm_tables` lists the lsm1 tables of a connection (for the magics);
  :func:`table_of` is the table of a connection opened from an ``lsm:///`` URL
  (``sqlnb.connect("lsm:///path/events.lsm")``, opened by ``sqlnb.engines.lsm_url``).
* The file itself (``sqlnb._lsm_file``, re-exported here): :func:`check_lsm_file`
  (run before every mount) and :func:`verify` (opt-in, reads every data page) find
  damaged and truncated files; :func:`writer_pid`, :func:`mounted_here` and the
  sidecar functions.

Guards, because lsm1 itself has none (measured on the pinned sources):

* mounting a file that is not an LSM database makes lsm treat it as *empty*,
  and the last close then truncates it to 0 bytes. sqlnb checks the header
  (a checksummed checkpoint in one of the two 4 KiB meta pages) first;
* a damaged or truncated lsm file reads as fewer rows (0 when cut to 8 KiB) with
  no error: the same check raises CorruptError for a meta page that fails its
  checksum and for a file shorter than the pages its checkpoint references;
* lsm1 opens every file read-write: sqlnb's build makes it open read-only when the
  SQLite database holding the table (or ``main``) is read-only, and ``ro`` URLs
  mount on a read-only private database, so reading never writes the file;
* opening and closing a descriptor of a file drops this process's POSIX locks on
  it: sqlnb reads a header only when no connection of this process holds the file
  (:func:`mounted_here`) and no process holds lsm's locks on it;
* ``lsm_open`` creates a missing file, so ``ro`` connections refuse a missing path;
* a UINT key that is not an integer (or is negative) is silently stored as key 0,
  so the helpers check key types before SQLite sees them;
* a write that collides with another process's write transaction fails inside
  lsm1 with a bare "SQL logic error": the helpers look up the lock holder in
  ``/proc/locks`` and raise :class:`sqlnb.errors.BusyError` naming it.
"""
from __future__ import annotations

import math
import operator
import os
import time
import warnings

from sqlnb import _files, _lsm_file
from sqlnb import errors as _errors
from sqlnb._lsm_file import (HIDDEN, KEY_TYPES, SIDECAR_FORMAT, SIDECAR_SUFFIX, check_key_type,
                             check_lsm_file, check_name, check_values, create_sql, mounted_here,
                             parse_lsm1_sql, read_sidecar, sidecar_path, verify, write_sidecar, writer_pid)
from sqlnb._sql import quote_identifier as _quote

__all__ = ["KEY_TYPES", "LsmTable", "KeyTypeError", "table", "lsm_tables", "table_of", "check_lsm_file",
           "mounted_here", "verify", "writer_pid", "sidecar_path", "read_sidecar", "write_sidecar",
           "create_sql", "parse_lsm1_sql", "SIDECAR_SUFFIX", "SIDECAR_FORMAT"]

UINT_MAX = 2 ** 63 - 1  # lsm1 reads UINT keys with sqlite3_value_int64
_INCLUSIVE = ("both", "left", "right", "neither")


class KeyTypeError(_errors.MismatchError, TypeError):
    """A key whose Python type does not fit the table's key type (e.g. text for a UINT key)."""


# --- key checks -------------------------------------------------------------------------------
def _check_key(key_type: str, key, what: str = "key"):
    """The key as lsm1 should see it, or KeyTypeError (lsm1 would silently store a bad UINT as 0)."""
    if key_type == "UINT":
        if isinstance(key, bool):
            raise KeyTypeError(f"{what} {key!r} is a bool; this table's keys are UINT (integers 0..2**63-1)")
        try:
            v = operator.index(key)
        except TypeError:
            raise KeyTypeError(f"{what} {key!r} ({type(key).__name__}) is not an integer; this table's "
                               "keys are UINT (lsm1 would store it as key 0)") from None
        if not 0 <= v <= UINT_MAX:
            raise KeyTypeError(f"{what} {v} is outside UINT's range 0..2**63-1 "
                               "(lsm1 would store a negative key as 0)")
        return v
    if key_type == "TEXT":
        if not isinstance(key, str):
            raise KeyTypeError(f"{what} {key!r} ({type(key).__name__}) is not str; this table's keys are TEXT")
        return key
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise KeyTypeError(f"{what} {key!r} ({type(key).__name__}) is not bytes; this table's keys are BLOB")


def _text_successor(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (UTF-8 byte order), or None."""
    chars = list(prefix)
    while chars:
        c = ord(chars.pop())
        if c < 0x10FFFF:
            c += 1
            if 0xD800 <= c <= 0xDFFF:  # surrogates are not text: skip to the next scalar value
                c = 0xE000
            return "".join(chars) + chr(c)
    return None


def _blob_successor(prefix: bytes) -> bytes | None:
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return None


# --- the table object -------------------------------------------------------------------------
class LsmTable:
    """An lsm1 table on a connection, with helpers for ordered key/value data.

    Made by :func:`table`. Attributes: ``con``, ``name``, ``schema``, ``file``
    (absolute), ``key``, ``key_type``, ``values`` (tuple of value columns).
    """

    def __init__(self, con, name, *, schema, file, key, key_type, values, timeout=5.0):
        self.con = con
        self.name = name
        self.schema = schema
        self.file = file
        self.key = key
        self.key_type = key_type
        self.values = tuple(values)
        self.timeout = timeout
        self._target = f"{_quote(schema)}.{_quote(name)}"
        self._cols = ", ".join(_quote(c) for c in (key,) + self.values)
        self._k = _quote(key)

    def __repr__(self):
        return (f"<LsmTable {self.schema}.{self.name} {self.file!r} key={self.key} {self.key_type} "
                f"values={list(self.values)}>")

    @property
    def info(self) -> dict:
        return {"name": self.name, "schema": self.schema, "file": self.file, "key": self.key,
                "key_type": self.key_type, "values": self.values}

    # --- SQL pieces
    def _bounds(self, lo, hi, inclusive):
        if inclusive not in _INCLUSIVE:
            raise ValueError(f"inclusive must be one of {', '.join(_INCLUSIVE)}, not {inclusive!r}")
        where, params = [], []
        if lo is not None:
            where.append(f"{self._k} {'>=' if inclusive in ('both', 'left') else '>'} ?")
            params.append(_check_key(self.key_type, lo, "lower bound"))
        if hi is not None:
            where.append(f"{self._k} {'<=' if inclusive in ('both', 'right') else '<'} ?")
            params.append(_check_key(self.key_type, hi, "upper bound"))
        return where, params

    @staticmethod
    def _where(where):
        return (" WHERE " + " AND ".join(where)) if where else ""

    def _columns(self, columns):
        if columns is None:
            return self._cols
        names = [columns] if isinstance(columns, str) else list(columns)
        known = {c.lower(): c for c in (self.key,) + self.values + HIDDEN[1:]}
        bad = [c for c in names if not isinstance(c, str) or c.lower() not in known]
        if bad:
            raise ValueError(f"unknown column(s) {bad} of lsm1 table {self.name!r}; "
                             f"columns: {[self.key, *self.values]}")
        return ", ".join(_quote(known[c.lower()]) for c in names)

    # --- reads (DataFrames through the fetcher)
    def get(self, key, *, columns=None):
        """The row with key ``key`` as a one-row DataFrame (empty if there is none)."""
        k = _check_key(self.key_type, key)
        return self.con.query_df(
            f"SELECT {self._columns(columns)} FROM {self._target} WHERE {self._k} = ?", (k,))

    def value(self, key, default=None):
        """The value of ``key`` (a tuple when there are several value columns), or ``default``."""
        k = _check_key(self.key_type, key)
        cols = ", ".join(_quote(v) for v in self.values)
        row = self.con.execute(f"SELECT {cols} FROM {self._target} WHERE {self._k} = ?", (k,)).fetchone()
        if row is None:
            return default
        return row[0] if len(self.values) == 1 else tuple(row)

    def __contains__(self, key):
        k = _check_key(self.key_type, key)
        return self.con.execute(f"SELECT 1 FROM {self._target} WHERE {self._k} = ?", (k,)).fetchone() is not None

    def scan(self, lo=None, hi=None, *, inclusive: str = "both", reverse: bool = False,
             limit: int | None = None, columns=None):
        """Rows with ``lo <= key <= hi`` in key order as a DataFrame.

        :param lo: lower bound or None (unbounded); :param hi: upper bound or None.
        :param inclusive: ``"both"`` (default, as ``pandas.Series.between``),
            ``"left"`` (half-open ``[lo, hi)``), ``"right"`` or ``"neither"``.
        :param reverse: descending key order.
        :param limit: at most this many rows (taken in scan order).
        :param columns: a subset of the columns (default: key and every value column).
        """
        where, params = self._bounds(lo, hi, inclusive)
        sql = (f"SELECT {self._columns(columns)} FROM {self._target}{self._where(where)} "
               f"ORDER BY {self._k}{' DESC' if reverse else ''}")
        if limit is not None:
            limit = operator.index(limit)
            if limit < 0:
                raise ValueError(f"limit must be >= 0, not {limit}")
            sql += " LIMIT ?"
            params.append(limit)
        return self.con.query_df(sql, tuple(params))

    def prefix(self, prefix, *, reverse: bool = False, limit: int | None = None, columns=None):
        """Rows whose key starts with ``prefix`` (TEXT: str, BLOB: bytes), in key order, as a DataFrame."""
        if self.key_type == "UINT":
            raise KeyTypeError(f"prefix scans need a TEXT or BLOB key; {self.name!r} has UINT keys "
                               "(use scan(lo, hi))")
        p = _check_key(self.key_type, prefix, "prefix")
        hi = _text_successor(p) if self.key_type == "TEXT" else _blob_successor(p)
        lo = p if p else None
        return self.scan(lo, hi, inclusive="left" if hi is not None else "both", reverse=reverse,
                         limit=limit, columns=columns)

    def count(self, lo=None, hi=None, *, inclusive: str = "both") -> int:
        """The number of keys in the range (all keys without bounds)."""
        where, params = self._bounds(lo, hi, inclusive)
        return self.con.execute(f"SELECT count(*) FROM {self._target}{self._where(where)}",
                                tuple(params)).fetchone()[0]

    def __len__(self):
        return self.count()

    def first(self, n: int = 1):
        """The ``n`` smallest keys' rows."""
        return self.scan(limit=n)

    def last(self, n: int = 1):
        """The ``n`` largest keys' rows (in descending order)."""
        return self.scan(reverse=True, limit=n)

    # --- writes
    def _lock(self):
        """Take lsm's writer lock now (lsm1's xBegin) without writing: an INSERT of a command row,
        which lsm1 accepts and ignores. Like BEGIN IMMEDIATE, so a busy file is found before any
        data (possibly a one-shot iterator) is consumed."""
        self.con.execute(f"INSERT INTO {self._target} (lsm1_command) VALUES ('sqlnb: take the write lock')")

    def _write(self, run):
        """Run ``run()`` in a transaction of ours, or inside the caller's open one.

        The writer lock is taken first; while another process holds it, retry
        (in our own transaction only) until ``self.timeout``, then raise
        BusyError naming that process. ``run`` itself is called exactly once.
        """
        con = self.con
        ours = not con.in_transaction
        deadline = time.monotonic() + (self.timeout or 0)
        unexplained = 0
        while True:
            try:
                if ours:  # inside the try: an interrupt right after BEGIN still rolls it back
                    con.execute("BEGIN")
                self._lock()
                break
            except _errors.SQLError as exc:
                if ours and con.in_transaction:
                    con.execute("ROLLBACK")
                pid = writer_pid(self.file)
                if pid is None and ours and unexplained < 2:
                    unexplained += 1  # the other process may have released the lock just now
                    time.sleep(0.01)
                    continue
                if pid is None:
                    raise _errors.OperationalError(
                        f"lsm1 refused the write to {self.name!r} ({self.file}): {exc}; if another "
                        "connection of this process holds a write transaction on the same file, "
                        "commit or roll it back first") from exc
                if ours and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise _lsm_file.writer_busy(self.file, pid, self.timeout, "nothing was written") from exc
            except BaseException:
                if ours and not con.closed and con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        try:
            result = run()
            if ours:
                con.execute("COMMIT")
            return result
        except BaseException:
            if ours and not con.closed and con.in_transaction:
                con.execute("ROLLBACK")
            raise

    def _row(self, key, vals):
        if len(vals) != len(self.values):
            raise _errors.ParameterError(
                f"{self.name!r} has {len(self.values)} value column(s) {list(self.values)}, got {len(vals)} value(s)")
        return (_check_key(self.key_type, key), *vals)

    def _insert_sql(self):
        marks = ", ".join("?" * (1 + len(self.values)))
        return f"INSERT INTO {self._target} ({self._cols}) VALUES ({marks})"

    def put(self, key, *values, **named) -> None:
        """Insert or overwrite (upsert) one key: ``put(k, v)`` or ``put(k, a=1, b=2)`` (missing names: NULL)."""
        if named:
            if values:
                raise TypeError("pass the values either by position or by name, not both")
            lowered = {v.lower(): v for v in self.values}
            bad = [n for n in named if n.lower() not in lowered]
            if bad:
                raise ValueError(f"unknown value column(s) {bad}; columns: {list(self.values)}")
            by = {lowered[n.lower()]: v for n, v in named.items()}
            values = tuple(by.get(v) for v in self.values)
        row = self._row(key, values)
        sql = self._insert_sql()
        self._write(lambda: self.con.execute(sql, row))

    def delete(self, key) -> int:
        """Delete one key; return 1 if it existed, else 0."""
        k = _check_key(self.key_type, key)
        sql = f"DELETE FROM {self._target} WHERE {self._k} = ?"
        return self._write(lambda: self.con.execute(sql, (k,)).rowcount)

    def delete_range(self, lo=None, hi=None, *, inclusive: str = "both") -> int:
        """Delete every key in the range (both bounds None: everything); return how many were deleted."""
        where, params = self._bounds(lo, hi, inclusive)
        sql = f"DELETE FROM {self._target}{self._where(where)}"
        return self._write(lambda: self.con.execute(sql, tuple(params)).rowcount)

    def load(self, data, *, key: str | None = None, columns=None) -> int:
        """Bulk-load rows in ONE transaction (all or nothing); existing keys are overwritten.

        :param data: a pandas DataFrame (the key column is ``key`` or the
            table's key name, else the first column; value columns by name,
            missing ones are NULL), or an iterable of ``(key, value)`` pairs /
            ``(key, v1, v2, ...)`` tuples.
        :returns: the number of rows written.

        Every key is checked against the key type before it is written; a bad
        key rolls the whole load back. Inside an open transaction of the
        caller the rows join it (no commit).
        """
        rows = self._frame_rows(data, key, columns) if _is_frame(data) else self._iter_rows(data)
        sql = self._insert_sql()

        def run():
            # one prepared statement, bound and stepped per row (executemany without its
            # per-row implicit-transaction and change-count bookkeeping: we are in our transaction)
            st, _ = self.con._prepare(sql.encode("utf-8"), 0)
            count = 0
            try:
                bind, step = st.bind, st.run
                for row in rows:
                    bind(row)
                    step()
                    count += 1
            finally:
                st.finalize()
            return count
        return self._write(run)

    def _iter_rows(self, data):
        width = len(self.values) + 1
        kt = self.key_type
        exact = {"UINT": int, "TEXT": str, "BLOB": bytes}[kt]
        top = UINT_MAX
        for i, item in enumerate(data):
            if type(item) is not tuple or len(item) != width:
                if isinstance(item, (str, bytes)) or not hasattr(item, "__len__"):
                    raise _errors.ParameterError(f"row {i}: expected a (key, value...) tuple, got {item!r}")
                if len(item) != width:
                    raise _errors.ParameterError(
                        f"row {i}: {len(item)} item(s); {self.name!r} takes a key and {width - 1} value(s) "
                        f"{list(self.values)}")
                item = tuple(item)
            k = item[0]
            if type(k) is exact and (kt != "UINT" or 0 <= k <= top):
                yield item  # the common case, checked inline
            else:
                yield (_check_key(kt, k, f"row {i}: key"), *item[1:])

    def _frame_rows(self, df, key, columns):
        names = list(df.columns)
        lowered = {str(c).lower(): c for c in names}
        kcol = key if key is not None else lowered.get(self.key.lower(), lowered.get("key", names[0] if names else None))
        if kcol not in names:
            raise ValueError(f"key column {kcol!r} is not a column of the DataFrame ({names})")
        mapping = dict(columns or {})
        vcols = []
        for v in self.values:
            src = mapping.get(v, lowered.get(v.lower()))
            if src is None and len(self.values) == 1 and len(names) == 2:
                src = next(c for c in names if c != kcol)  # (key, anything) -> the single value column
            vcols.append(src)
        if all(c is None for c in vcols):
            raise ValueError(f"no DataFrame column matches the value column(s) {list(self.values)} "
                             f"(columns: {names}); rename them or pass columns={{value: column}}")
        keys = _column_list(df[kcol])
        if self.key_type == "UINT":
            _check_uint_column(df[kcol], kcol)
        else:
            for i, k in enumerate(keys):
                _check_key(self.key_type, k, f"row {i}: key")
        vals = [_column_list(df[c]) if c is not None else [None] * len(df) for c in vcols]
        return zip(keys, *vals)

    def drop(self) -> None:
        """Drop the virtual table (the lsm file and its data stay on disk)."""
        self.con.execute(f"DROP TABLE {self._target}")


def _is_frame(obj) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "columns") and hasattr(obj, "dtypes")


def _column_list(s) -> list:
    """A pandas column as Python values SQLite can bind (NaN/NaT/NA -> None, timestamps -> ISO text)."""
    import pandas as pd

    kind = s.dtype.kind
    if kind == "M":
        return [None if pd.isna(v) else v.isoformat(sep=" ") for v in s]
    if kind == "m":
        return [None if pd.isna(v) else v.total_seconds() for v in s]
    if kind == "b":
        return [int(v) for v in s.tolist()]
    if kind in "iuf":
        out = s.tolist()
        if kind == "f" and s.isna().any():
            out = [None if (isinstance(v, float) and math.isnan(v)) else v for v in out]
        return out
    out = s.tolist()
    if s.isna().any():
        out = [None if (v is None or (not isinstance(v, (str, bytes)) and pd.isna(v))) else v for v in out]
    return out


def _check_uint_column(s, name):
    kind = s.dtype.kind
    if kind in "iu" and len(s):
        lo, hi = int(s.min()), int(s.max())
        if lo < 0 or hi > UINT_MAX:
            bad = lo if lo < 0 else hi
            raise KeyTypeError(f"key column {name!r} holds {bad}, outside UINT's range 0..2**63-1 "
                               "(lsm1 would store a negative key as 0)")
        return
    if kind in "iu":
        return
    for i, k in enumerate(s.tolist()):
        _check_key("UINT", k, f"row {i}: key")



# --- creating / opening a table on a connection -------------------------------------------------
def _check_engine(con):
    backend = getattr(con, "backend", None)  # (the Engine; a connection-like object without one has no lsm1)
    if backend is None or not backend.has("lsm1"):
        raise _errors.FeatureNotSupportedError(
            f"lsm1 tables need the 'sqlite' engine (sqlnb's own build with lsm1); this connection's "
            f"engine is {getattr(con, 'engine', None)!r}")


def table(con, name: str, file=None, *, key: str | None = None, key_type: str | None = None,
          values=None, create: bool = True, schema: str = "main", timeout: float = 5.0) -> LsmTable:
    """Create or open the lsm1 table ``name`` on a ``sqlite``-engine connection.

    :param name: the virtual table's name.
    :param file: the LSM database file (made absolute; lsm would otherwise
        resolve it against whatever the working directory is at each connect).
        Needed when the table does not exist yet.
    :param key: the key column's name (default ``"key"``).
    :param key_type: ``"UINT"``, ``"TEXT"`` (default) or ``"BLOB"``.
    :param values: value column names (sequence or comma list; default ``("value",)``).
    :param create: create a missing lsm file (and its sqlnb sidecar); with
        ``False`` a missing file is an error.
    :param schema: ``"main"``, ``"temp"`` or an attached database's name.
    :param timeout: how long the write helpers wait for another process's write
        transaction on the file to end.

    An existing table is returned as is (any of ``file``/``key``/``key_type``/
    ``values`` given must match it). For a new table with an existing lsm file
    that has a sqlnb sidecar, the sidecar's schema is the default and an explicit
    different key type is refused.
    """
    _check_engine(con)
    name = check_name(name, "table name")
    given = {"key": key, "key_type": check_key_type(key_type) if key_type is not None else None,
             "values": check_values(values) if values is not None else None}
    existing = [t for t in lsm_tables(con) if t["name"].lower() == name.lower() and t["schema"] == schema]
    if existing:
        t = existing[0]
        want_file = os.path.abspath(os.fspath(file)) if file is not None else None
        have = {"file": os.path.abspath(t["file"]), "key": t["key"], "key_type": t["key_type"], "values": t["values"]}
        for field, want in (("file", want_file), *given.items()):
            if want is not None and (want.lower() if field == "key" else want) != (
                    have[field].lower() if field == "key" else have[field]):
                raise _errors.ProgrammingError(
                    f"lsm1 table {name!r} already exists with {field}={have[field]!r}, not {want!r}")
        return LsmTable(con, t["name"], schema=schema, file=have["file"], key=t["key"],
                        key_type=t["key_type"], values=t["values"], timeout=timeout)
    if any(r[0].lower() == name.lower() for r in con.execute(
            f"SELECT name FROM {_master(schema)} WHERE type IN ('table', 'view')").fetchall()):
        raise _errors.ProgrammingError(f"{name!r} already exists in {schema!r} and is not an lsm1 table")
    if file is None:
        raise _errors.ProgrammingError(f"no lsm1 table {name!r} in {schema!r}: pass file= to create it")
    path = check_lsm_file(file, must_exist=not create)
    found = _lsm_file.resolve_schema(path, foreign=_lsm_file.DEFAULT_SCHEMA, **given)
    if found.source == "guess":
        warnings.warn(
            f"{path} has no sqlnb sidecar, so its schema is unknown; assuming key_type="
            f"{found.key_type} and values={list(found.values)}. Pass key_type= and values= "
            "(or open it with sqlnb.connect('lsm:///...') to see the raw keys).", UserWarning, stacklevel=2)
    key_, kt, vals = found.key, found.key_type, found.values
    if not found.existed and getattr(con, "mode", "rw") != "rw":
        raise _errors.ReadOnlyError(f"no such lsm file {path!r}; a {con.mode!r} connection does not create one")
    sql = create_sql(name, path, key=key_, key_type=kt, values=vals, schema=schema)
    raw = con.raw
    held = _files.hold(raw, path) if found.existed else None  # (nothing of sqlnb's reads it from now on)
    try:
        con.execute(sql)
    except BaseException as exc:
        if held is not None:
            _files.forget(held)
        if not isinstance(exc, _errors.Error):
            raise
        if not found.existed and os.path.exists(path) and os.path.getsize(path) == 0:
            _lsm_file.remove_new(path)
        raise type(exc)(f"cannot mount {path!r} as lsm1 table {name!r}: {exc}") from exc
    if held is None:
        _files.hold(raw, path)
    if not found.existed:
        write_sidecar(path, key=key_, key_type=kt, values=vals, table=name)
    return LsmTable(con, name, schema=schema, file=path, key=key_, key_type=kt, values=vals, timeout=timeout)


def _master(schema: str) -> str:
    return "sqlite_temp_master" if schema == "temp" else f"{_quote(schema)}.sqlite_master"


def _schemas(con) -> list[str]:
    return [row[1] for row in con.execute("PRAGMA database_list").fetchall()]


def lsm_tables(conn) -> list[dict]:
    """Every lsm1 table of ``conn``: ``[{name, schema, file, key, key_type, values}]``.

    ``file`` is the path as recorded in the schema (sqlnb records absolute
    paths; lsm resolves a relative one against the process's working directory
    each time the table is connected). Tables of other virtual-table modules
    are skipped; an engine without lsm1 (bdb, system) simply has none.
    """
    out = []
    for schema in _schemas(conn):
        rows = conn.execute(
            f"SELECT name, sql FROM {_master(schema)} WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' "
            "ORDER BY name").fetchall()
        for name, sql in rows:
            info = parse_lsm1_sql(sql)
            if info is not None:
                out.append({"name": name, "schema": schema, **info})
    return out


def table_of(con) -> LsmTable:
    """The :class:`LsmTable` of a connection opened from an ``lsm:///`` URL (its single lsm1 table)."""
    info = con.extras.get("lsm") if hasattr(con, "extras") else None
    if info is None:
        tabs = lsm_tables(con)
        if len(tabs) != 1:
            raise _errors.ProgrammingError(f"this connection has {len(tabs)} lsm1 tables; use sqlnb.lsm.table(con, name)")
        info = {**tabs[0], "file": os.path.abspath(tabs[0]["file"])}
    return LsmTable(con, info["name"], schema=info.get("schema", "main"), file=info["file"], key=info["key"],
                    key_type=info["key_type"], values=info["values"])
