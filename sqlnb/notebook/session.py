"""The magic's open connections: aliases, the current one, list, close (no IPython here)."""
from __future__ import annotations

import re
from pathlib import Path

from sqlnb import errors as _errors
from sqlnb.connection import Connection, connect, parse_url
from sqlnb.notebook.saved import SavedQueries
from sqlnb.notebook import functions as _functions

_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*\Z")
_URL_SPACES = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://.*\Z", re.S)


def looks_like_target(token: str, spaces: bool = False) -> bool:
    """True for a lone ``scheme://...`` URL or ``:memory:`` (the ``%sql URL`` shorthand);
    ``spaces``: the token was quoted, so the URL may hold spaces."""
    if token == ":memory:":
        return True
    return "://" in token and (_URL_SPACES if spaces else _URL).match(token) is not None


class Session:
    """Connections opened through the magic, by alias, with one current."""

    def __init__(self):
        self.connections: dict[str, Connection] = {}
        self.current: str | None = None
        self._adopted: set[str] = set()  # aliases of Connections the user opened (not ours to close)
        self.saved = SavedQueries()  # %%sql --save NAME (for every connection of the session)
        _functions.track(self)  # the notebook's registered SQL functions reach every connection

    def _default_alias(self, target: str) -> str:
        _, path, _ = parse_url(target)
        stem = "memory" if path in (":memory:", "") else Path(path).stem
        stem = re.sub(r"\W", "_", stem) or "db"
        if not stem[0].isalpha() and stem[0] != "_":
            stem = "db_" + stem
        alias, n = stem, 2
        while alias in self.connections:
            alias, n = f"{stem}{n}", n + 1
        return alias

    def open(self, target: str, *, alias: str | None = None, engine: str | None = None,
             mode: str = "rw", timeout: float = 5.0, statement_timeout: float | None = None,
             strict_quotes: bool = False):
        """Open ``target`` (path or URL, passed unchanged to ``sqlnb.connect``) and make it current."""
        self._check_alias(alias)
        con = connect(target, engine=engine or None, mode=mode, timeout=timeout,
                            statement_timeout=statement_timeout or None, isolation_level=None,
                            strict_quotes=strict_quotes)
        alias = alias or self._default_alias(target)
        _functions.apply_all(con, f"connection {alias!r}")
        self.connections[alias] = con
        self.current = alias
        return alias, con

    def adopt(self, con, *, alias: str | None = None):
        """Register an already open ``sqlnb.Connection`` (closing it stays the caller's choice too)."""
        if con.closed:
            raise _errors.ConnectionClosedError("Cannot use a closed connection.")
        alias = self._check_alias(alias) or self._default_alias(con.database)
        _functions.apply_all(con, f"connection {alias!r}")
        self.connections[alias] = con
        self._adopted.add(alias)
        self.current = alias
        return alias, con

    def _check_alias(self, alias):
        if alias is not None:
            if not _ALIAS.match(alias):
                raise _errors.InterfaceError(
                    f"alias {alias!r} is not a valid name (letters, digits and _, not starting with a digit)")
            if alias in self.connections:
                raise _errors.InterfaceError(
                    f"alias {alias!r} is already open ({self.connections[alias].url}); "
                    f"close it first with --close {alias}")
        return alias

    def get(self, alias: str | None = None) -> Connection:
        """The connection named ``alias`` (default: the current one)."""
        if alias is None:
            if self.current is None:
                raise _errors.InterfaceError(
                    "no connection is open: open one with %sql sqlite:///path.db, "
                    "%sql :memory: or %sql --connect PATH")
            alias = self.current
        try:
            con = self.connections[alias]
        except KeyError:
            raise _errors.InterfaceError(
                f"no connection named {alias!r}; open: {', '.join(self.connections) or 'none'}") from None
        return con

    def use(self, alias: str):
        self.get(alias)
        self.current = alias

    def close(self, alias: str | None = None) -> str:
        """Close ``alias`` (an adopted Connection is only let go: its owner closes it)."""
        alias = alias or self.current
        con = self.get(alias)
        if alias in self._adopted:
            self._adopted.discard(alias)
        else:
            con.close()
        del self.connections[alias]
        if self.current == alias:
            self.current = next(reversed(self.connections), None) if self.connections else None
        return alias

    def close_all(self):
        for alias in list(self.connections):
            self.close(alias)

    def rows(self) -> list[dict]:
        """One row per connection: alias, current, engine, version, url (redacted), mode/policy."""
        out = []
        for alias, con in self.connections.items():
            try:
                version = con.sqlite_version
            except Exception:  # noqa: BLE001 - a listing must not fail
                version = ""
            out.append({"alias": alias, "current": alias == self.current, "engine": con.engine,
                        "version": version, "url": con.url,
                        "policy": con.policy_summary if not con.closed else "closed"})
        return out
