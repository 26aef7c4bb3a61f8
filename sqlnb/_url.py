"""Connection targets: URL parsing, the mode a target asks for, and keeping its secrets out of sight.

``sqlite:///rel.db``, ``bdb:////abs.db``, ``system:///x.db``, ``lsm:///kv.lsm`` (SQLAlchemy's
convention for relative and absolute paths), plain paths and ``file:`` URIs. Public
names (``parse_url``, ``redact``, ``strictest_mode``) are re-exported by ``sqlnb.connection``.
"""
from __future__ import annotations

import functools
from urllib.parse import unquote, urlsplit

from sqlnb import errors as _errors
from sqlnb._consts import MODES

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
    @functools.wraps(fn)
    def wrapper(database=":memory:", *args, **kwargs):
        try:
            return fn(database, *args, **kwargs)
        except BaseException as exc:
            if isinstance(database, str):
                _scrubbed(exc, database)
            raise
    return wrapper
