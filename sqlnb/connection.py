"""The documented facade: ``sqlnb.connect()``, ``Connection`` and ``Cursor`` (PEP 249).

Where PEP 249 leaves room, sqlnb behaves like the stdlib ``sqlite3`` so it
drops in: the same types come back, ``isolation_level=""`` opens a transaction
implicitly before INSERT/UPDATE/DELETE/REPLACE, ``with conn:`` commits or rolls
back, ``execute`` takes one statement and ``executescript`` many. The
differences are listed in docs/dbapi.md.
"""
from __future__ import annotations

import os
import re
import sqlite3 as _stdlib
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlnb import _engines, _files, _system
from sqlnb import errors as _errors

ENGINES = ("sqlite", "bdb", "system")
MODES = ("rw", "ro", "ro-scratch")

# SQLite's open flags (stable values from sqlite3.h)
OPEN_READONLY, OPEN_READWRITE, OPEN_CREATE, OPEN_URI = 0x1, 0x2, 0x4, 0x40

_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*(?:[^*]|\*(?!/))*(?:\*/|\Z))*([A-Za-z]+)", re.S)
_DML = frozenset(("INSERT", "UPDATE", "DELETE", "REPLACE"))


def _serialized(method):
    """Hold the connection's lock around a check-then-act sequence (implicit BEGIN,
    commit): with ``check_same_thread=False`` two threads must not interleave them."""
    def wrapper(self, *args, **kwargs):
        con = self if isinstance(self, Connection) else self.connection
        with con._lock:
            return method(self, *args, **kwargs)
    wrapper.__name__, wrapper.__doc__, wrapper.__wrapped__ = method.__name__, method.__doc__, method
    return wrapper


def _first_keyword(sql: str) -> str:
    m = _LEADING.match(sql)
    return m.group(1).upper() if m else ""


def parse_url(target: str) -> tuple[str | None, str, dict]:
    """Split ``scheme:///path?opts`` into (engine or None, path, options).

    ``sqlite:///rel.db`` and ``sqlite:////abs.db`` follow SQLAlchemy's convention;
    ``:memory:`` and plain paths have no scheme. Unknown schemes are an error.
    """
    if "://" not in target:
        return None, target, {}
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    known = {"sqlite": "sqlite", "sqlnb": "sqlite", "bdb": "bdb", "berkeleydb": "bdb",
             "system": "system", "sqlite3": "system", "lsm": "lsm"}
    if scheme not in known:
        raise _errors.InterfaceError(
            f"unknown URL scheme {scheme!r} in {redact(target)!r}; use one of "
            f"sqlite://, bdb://, system://, lsm://")
    if "@" in parts.netloc:
        # SQLite files have no login: refuse rather than open a file named after the credentials
        raise _errors.InterfaceError(
            f"{redact(target)!r} has a user name or password: sqlnb URLs take none (SQLite files "
            f"have no login); use {scheme}:///relative/path or {scheme}:////absolute/path")
    path = unquote(parts.path)
    if parts.netloc:
        path = parts.netloc + path
    if path.startswith("/") and not path.startswith("//"):
        path = path[1:]  # sqlite:///rel.db -> rel.db
    elif path.startswith("//"):
        path = path[1:]  # sqlite:////abs.db -> /abs.db
    if path in ("", ":memory:"):
        path = ":memory:"
    opts = dict(p.split("=", 1) if "=" in p else (p, "1") for p in parts.query.split("&") if p)
    return known[scheme], path, opts


# Query names whose values are hidden: any name containing one of these, or ending in "key"
# (key, apikey, api_key, secret_key, access_key, ...). lsm:// URLs keep ``key=`` itself
# visible: there it names the key column, not a secret.
_SECRET_PARTS = ("passw", "pwd", "secret", "token", "credential", "auth")


def _is_secret(name: str, scheme: str) -> bool:
    n = unquote(name).lower()
    if scheme == "lsm" and n == "key":
        return False
    return n.endswith("key") or any(part in n for part in _SECRET_PARTS)


def _redact_query(query: str, scheme: str) -> str:
    return "&".join(
        (k + "=***") if _is_secret(k, scheme) else p
        for p in query.split("&") if p
        for k in [p.split("=", 1)[0]])


def redact(url: str) -> str:
    """The URL with any password (``user:secret@``) and secret-looking query values hidden.

    Secret names: anything containing ``passw``, ``pwd``, ``secret``, ``token``,
    ``credential`` or ``auth``, or ending in ``key`` (``key``, ``apikey``,
    ``secret_key``, ...), in any case; an lsm:// URL's ``key=`` (the key column) stays.
    ``file:`` URIs (``uri=True``) are redacted the same way.
    """
    if not isinstance(url, str):
        return url
    if "://" not in url:
        if url[:5].lower() == "file:" and "?" in url:
            base, _, rest = url.partition("?")
            query, hash_, frag = rest.partition("#")
            query = _redact_query(query, "file")
            return base + (f"?{query}" if query else "") + hash_ + frag
        return url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        netloc = f"{user}:***@{host}"
    query = _redact_query(parts.query, scheme)
    out = f"{parts.scheme}://{netloc}{parts.path}"
    return out + (f"?{query}" if query else "")


_MODE_ORDER = {"rw": 0, "ro-scratch": 1, "ro": 2}


def strictest_mode(*asked) -> str:
    """The strictest of the modes asked for (``None``: not asked); ``rw`` when none was.

    ``rw`` < ``ro-scratch`` < ``ro``: a mode is never loosened by another source
    (see docs/read-only.md, "Which mode a connection gets").
    """
    modes = [m for m in asked if m is not None]
    for m in modes:
        if m not in _MODE_ORDER:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {m!r}")
    return max(modes, key=_MODE_ORDER.__getitem__) if modes else "rw"


def _uri_mode(uri: str) -> str | None:
    """The sqlnb mode a ``file:`` URI's own ``mode=`` asks for: ``ro`` for ``mode=ro``, else none.

    ``rw``, ``rwc`` and ``memory`` ask nothing stricter than ``rw``; an unknown value
    is left to SQLite, which refuses it ("no such access mode").
    """
    query = uri.partition("?")[2].partition("#")[0]
    values = [unquote(p.split("=", 1)[1]) for p in query.split("&") if p.startswith("mode=")]
    return "ro" if "ro" in values else None


def _uri_read_only(uri: str) -> str:
    """``uri`` with its ``mode=`` made ``ro`` (added if missing; ``memory`` is kept).

    A read-only connection opens read-only at the file level as well, on every engine,
    whatever the URI asked (the stdlib engine opens a URI with the URI's own mode).
    """
    base, sep, rest = uri.partition("?")
    query, hash_, frag = rest.partition("#")
    params, seen = [], False
    for p in (query.split("&") if query else []):
        if p.startswith("mode="):
            seen = True
            if unquote(p[5:]) != "memory":
                p = "mode=ro"
        params.append(p)
    if not seen:
        params.append("mode=ro")
    return f"{base}?{'&'.join(params)}{hash_}{frag}"


def _secrets_of(target: str) -> list:
    """The secret substrings of ``target`` (password, secret query values), longest first."""
    out = []
    if "://" in target:
        parts = urlsplit(target)
        if "@" in parts.netloc:
            creds = parts.netloc.rsplit("@", 1)[0]
            if ":" in creds:
                out.append(creds.split(":", 1)[1])
        scheme, query = parts.scheme.lower(), parts.query
    elif target[:5].lower() == "file:":
        scheme, query = "file", target.partition("?")[2].partition("#")[0]
    else:
        return out
    for p in query.split("&"):
        k, eq, v = p.partition("=")
        if eq and v and _is_secret(k, scheme):
            out.extend({v, unquote(v)})
    return sorted({s for s in out if s}, key=len, reverse=True)


def _scrubbed(exc: BaseException, target: str) -> BaseException:
    """``exc`` with every secret of ``target`` replaced by ``***`` in its message and attributes."""
    secrets = _secrets_of(target)
    if not secrets:
        return exc

    def clean(v):
        if isinstance(v, str):
            for s in secrets:
                v = v.replace(s, "***")
        return v

    seen, todo = set(), [exc]
    while todo:  # the exception and the ones it was raised from / during
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        try:
            e.args = tuple(clean(a) for a in e.args)
        except (AttributeError, TypeError):
            pass
        for attr in ("filename", "filename2", "sql", "target"):
            if isinstance(getattr(e, attr, None), str):
                try:
                    setattr(e, attr, clean(getattr(e, attr)))
                except (AttributeError, TypeError):
                    pass
        notes = getattr(e, "__notes__", None)
        if notes:
            e.__notes__ = [clean(n) for n in notes]
        todo += [e.__cause__, e.__context__]
    return exc


def _no_secrets_in_errors(fn):
    """Every exception ``connect()`` raises has the target's secrets replaced by ``***``
    (messages name the target; a password or key must never show in a notebook)."""
    import functools

    @functools.wraps(fn)
    def wrapper(database=":memory:", *args, **kwargs):
        try:
            return fn(database, *args, **kwargs)
        except BaseException as exc:
            if isinstance(database, str):
                _scrubbed(exc, database)
            raise
    return wrapper


@_no_secrets_in_errors
def connect(database=":memory:", *, engine: str | None = None, mode: str | None = None,
            timeout: float = 5.0, statement_timeout: float | None = None,
            isolation_level: str | None = "", check_same_thread: bool = True,
            uri: bool = False, allow_load_extension: bool = False,
            deny_tables=(), mask_columns=(), allow_tables=None, authorizer=None,
            strict_quotes: bool = False, **lsm_options) -> "Connection":
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
    """
    if isinstance(database, (Path, os.PathLike)):
        database = os.fspath(database)
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
    if url_engine == "lsm":
        from sqlnb import lsm as _lsm  # the lsm:// opener mounts a file on an in-memory SQLite

        con = _lsm.connect_lsm(path, mode=mode, timeout=timeout, statement_timeout=statement_timeout,
                               isolation_level=isolation_level, check_same_thread=check_same_thread,
                               url=database, **{**opts, **lsm_options})
        if strict_quotes:
            con.raw.set_double_quoted_strings(False)
        return con
    if lsm_options:
        raise TypeError(f"connect() got unexpected keyword arguments: {', '.join(lsm_options)}")
    name = engine or url_engine or _engines.default_engine()
    if name not in ENGINES:
        raise _errors.InterfaceError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
    from sqlnb import _bdb, _modes

    if name == "bdb":
        _engines.load("bdb")  # the engine's own checks (fork guard, library version) first
        _bdb.check_fork_safe()
    # foreign files and a file another library of this process holds: refused before anything touches disk
    raw = _modes.open_checked(name, path, mode=mode, uri=uri)
    try:
        if strict_quotes:
            raw.set_double_quoted_strings(False)
        if timeout is not None and name != "bdb":
            # (bdb: BerkeleyDB SQL answers its busy handler by waiting for the lock again, without
            # limit; its waits are bounded by a lock timeout instead, see _bdb._watch_locks)
            raw.busy_timeout(float(timeout))
        if statement_timeout:
            raw.timeout = float(statement_timeout)
        _modes.install(raw, name, mode=mode, allow_load_extension=allow_load_extension,
                       deny_tables=deny_tables, mask_columns=mask_columns,
                       allow_tables=allow_tables, authorizer=authorizer)
    except BaseException:
        raw.close()
        _files.release(raw)
        raise
    con = Connection(raw, engine=name, mode=mode, database=database, path=path,
                     isolation_level=isolation_level, check_same_thread=check_same_thread)
    if name == "bdb":
        _bdb.register(con, timeout)
    return con


class _BackendShim:
    """TEMP shim until sqlnb.engines lands: the Engine object, as far as the exporter asks it."""

    _CAPS = {"sqlite": ("multirow_values", "export_cache", "columnar_export"),
             "bdb": ("columnar_export",), "system": ()}

    def __init__(self, name):
        self.name = name

    def has(self, cap):
        return cap in self._CAPS[self.name]

    def load(self):
        return None if self.name == "system" else _engines.load(self.name)

    def insert_rows(self, raw, sql, rows):
        """executemany of ``rows`` under the adapter's lock, bounded by the time limit and interrupt()."""
        # SQLite forgets an interrupt that lands between two rows; note every interrupt() during
        # the insert (the instance attribute shadows the method until the insert ends)
        interrupted = []
        original = raw.interrupt

        def interrupt():
            interrupted.append(True)
            original()

        def timeout():
            exc = _errors.timeout_error(raw.timeout, sql)
            exc.timeout = raw.timeout
            return exc

        def guarded():
            for row in rows:
                if interrupted:
                    raise _errors.interrupted(sql)
                if raw._deadline and time.monotonic() > raw._deadline:
                    raise timeout()
                yield row

        raw.interrupt = interrupt
        # the connection's statement time limit bounds the whole insert (the stdlib engine's
        # progress handler aborts the running statement once this deadline has passed)
        raw._deadline = (time.monotonic() + raw.timeout) if raw.timeout else 0.0
        try:
            try:
                with raw._lock:   # the adapter's lock, as its own calls take it (_system._serialized)
                    raw._con.executemany(sql, guarded())
            except _stdlib.Error as exc:
                if raw._deadline and time.monotonic() > raw._deadline:
                    raise timeout() from None
                raise _system.translate(exc, sql) from None
            if interrupted:
                raise _errors.interrupted(sql)
        finally:
            del raw.interrupt
            raw._deadline = 0.0


class Connection:
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
                 isolation_level="", check_same_thread=True):
        self._raw = raw
        self.engine = engine
        self.mode = mode
        self.database = database
        self.path = path if path is not None else database
        self.isolation_level = isolation_level
        self.check_same_thread = check_same_thread
        self._thread = threading.get_ident()
        self._lock = threading.RLock()
        self.row_factory = None
        self.extras: dict = {}

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
                "(calls are then serialized by SQLite's own mutex).")

    @property
    def backend(self):
        """TEMP shim: the engine object (capabilities and hooks) of this connection."""
        return _BackendShim(self.engine)

    @property
    def closed(self) -> bool:
        return self._raw is None or self._raw.closed

    @property
    def url(self) -> str:
        """The connection's target with any secret parts removed."""
        return redact(self.database)

    @property
    def sqlite_version(self) -> str:
        if self.engine == "system":
            import sqlite3

            return sqlite3.sqlite_version
        return _engines.load(self.engine).sqlite_version()

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
    def cursor(self, factory=None) -> "Cursor":
        self._check()
        return (factory or Cursor)(self)

    def execute(self, sql, parameters=None) -> "Cursor":
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters) -> "Cursor":
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, sql_script) -> "Cursor":
        return self.cursor().executescript(sql_script)

    @_serialized
    def commit(self):
        self._check()
        if not self._raw.autocommit:
            self._run_simple("COMMIT")

    @_serialized
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
        if self.engine == "bdb":
            from sqlnb import _bdb

            _bdb.unregister(self)

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
        """
        from sqlnb import frames

        return frames.query_df(self, sql, params, **options)

    def query_arrow(self, sql, params=None, **options):
        """Run ``sql`` and return its result as a ``pyarrow.Table``."""
        from sqlnb import frames

        return frames.query_arrow(self, sql, params, **options)

    @_serialized
    def to_table(self, df, name, **options):
        """Write a DataFrame into table ``name`` atomically (see :func:`sqlnb.export.to_table`)."""
        from sqlnb import export

        return export.to_table(self, df, name, **options)

    # --- helpers for the layers above -----------------------------------------------
    def _prepare(self, data: bytes, offset: int = 0):
        """Prepare the statement of ``data`` starting at byte ``offset``: ``(stmt|None, tail)``.

        Every prepare of the facade goes through here, so an engine can explain
        its own errors (the bdb engine names what its older core lacks).
        """
        if self.engine == "bdb":
            from sqlnb import _bdb

            _bdb.before_statement(self)  # refuse what BerkeleyDB's locks would block on forever
        try:
            return self._waiting(self._raw.prepare, data, offset)
        except _errors.Error as exc:
            better = self._explain(exc, data[offset:].decode("utf-8", "surrogateescape"))
            if better is not None:
                raise better from exc
            raise

    def _explain(self, exc, sql):
        """A clearer exception for ``exc`` from the engine's explainer, or None (prepare and step errors)."""
        explain = _engines.explainer(self.engine)
        return explain(exc, sql) if explain is not None and isinstance(exc, _errors.Error) else None

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

        On the bdb engine, a wait for another process's lock is refused after a
        moment (see ``_bdb._watch_locks``); this tries again, ``statement``
        prepared afresh, until the connection's timeout (``_bdb.retry_busy``).
        SQLite's own engines wait in their busy handler instead.
        """
        if self.engine != "bdb":
            return fn(*args)
        from sqlnb import _bdb

        return _bdb.retry_busy(self, fn, *args, statement=statement)

    def _maybe_begin(self, st):
        """Open the implicit transaction the stdlib would open before DML.

        An interrupt (Ctrl-C) that lands once the BEGIN took effect rolls it back
        before going on: no transaction the caller never saw opening stays open.
        """
        if self.isolation_level is None:
            return
        if self._raw.autocommit and st.readonly is not True and _first_keyword(st.sql) in _DML:
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


class Cursor:
    """A PEP 249 cursor."""

    arraysize = 1

    def __init__(self, connection: Connection):
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

    @_serialized
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
        is_dml = _first_keyword(st.sql) in _DML
        if names:
            types = st.decltypes() or [None] * len(names)
            self.description = tuple((n, t, None, None, None, None, None) for n, t in zip(names, types))
        if has_row:
            self._st = st
            self._pending_row = st.row()
            if con.engine == "bdb":  # never keep a bdb statement (and its table locks) open across calls
                from sqlnb import _bdb

                self._st = _bdb.BufferedRows(st, self._pending_row)
        else:
            st.finalize()
        if is_dml:
            self.rowcount = con._raw.changes()
        self.lastrowid = con._raw.last_insert_rowid()
        return self

    @_serialized
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
            is_dml = _first_keyword(st.sql) in _DML
            if con.engine == "system":
                con._maybe_begin(st)
                n = st.executemany(seq_of_parameters)
                self.rowcount = n if is_dml else -1
                return self
            if st.column_count:
                raise _errors.ProgrammingError("executemany() can only execute DML statements.")
            self.rowcount = 0 if is_dml else -1
            for params in seq_of_parameters:
                con._maybe_begin(st)
                st.bind(params)
                st.run()
                if is_dml:
                    self.rowcount += con._raw.changes()
        finally:
            st.finalize()
        return self

    @_serialized
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
        from sqlnb import frames

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
