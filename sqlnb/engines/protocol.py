"""The driver protocol: what ``sqlnb._fast.RawConnection``/``RawStatement`` (the compiled
core, both flavours) and the stdlib adapter (``sqlnb.engines.system``) both offer.

The facade, the fetcher and the exporter use only these members; anything else
is engine-specific and reached through an :class:`~sqlnb.engines.Engine` hook.
``tests/test_engine_protocol.py`` checks that every engine's classes have every member.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, runtime_checkable


@runtime_checkable
class RawStatement(Protocol):
    """One prepared statement."""

    conn: Any
    sql: str
    done: bool

    @property
    def finalized(self) -> bool: ...
    @property
    def readonly(self) -> Optional[bool]: ...          # None: not known before it runs (stdlib)
    @property
    def isexplain(self) -> int: ...
    @property
    def column_count(self) -> int: ...

    def finalize(self) -> None: ...
    def reset(self) -> None: ...
    def column_names(self) -> list: ...
    def decltypes(self) -> list: ...
    def param_names(self) -> list: ...               # None for a bare '?', '?N', ':x', '@x', '$x'
    def bind(self, params) -> None: ...
    def step(self) -> bool: ...
    def row(self) -> tuple: ...
    def fetchmany(self, size: int) -> list: ...
    def run(self) -> None: ...


@runtime_checkable
class RawConnection(Protocol):
    """One engine-level connection."""

    filename: Any
    flags: int
    timeout: float                                  # per-statement time limit (0: none)
    progress_callback: Optional[Callable[[], Any]]
    rows_seen: int

    @property
    def closed(self) -> bool: ...
    @property
    def autocommit(self) -> bool: ...
    @property
    def policy(self) -> Any: ...

    def close(self) -> None: ...
    def prepare(self, sql: bytes, offset: int = 0) -> tuple: ...   # (RawStatement | None, tail offset)
    def interrupt(self) -> None: ...
    def set_double_quoted_strings(self, on: bool) -> None: ...
    def changes(self) -> int: ...
    def total_changes(self) -> int: ...
    def last_insert_rowid(self) -> int: ...
    def busy_timeout(self, seconds: float) -> None: ...
    def set_progress_report(self, every: float) -> None: ...


def members(cls) -> set:
    """The member names a protocol class declares (attributes, properties and methods)."""
    names = set(getattr(cls, "__annotations__", {}))
    names |= {n for n in vars(cls) if not n.startswith("_")}
    return names - {"members"}


def rows(raw, sql: str, params=None, limit: int | None = None) -> list:
    """Every row (at most ``limit``) of one statement of sqlnb's own on a raw connection of any
    engine: prepare, bind, step, finalize. No retry, no policy explanation: the callers run
    schema reads, pragmas and transaction control where those are not wanted."""
    st, _ = raw.prepare(sql.encode("utf-8", "surrogateescape"), 0)
    if st is None:
        return []
    try:
        if params is not None:
            st.bind(params)
        out = []
        while (limit is None or len(out) < limit) and st.step():
            out.append(st.row())
        return out
    finally:
        st.finalize()
