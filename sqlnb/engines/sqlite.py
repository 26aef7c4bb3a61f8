"""The ``sqlite`` engine: sqlnb's own SQLite (the pinned amalgamation, with lsm1),
compiled into ``sqlnb._fast`` with every symbol hidden."""
from __future__ import annotations

from sqlnb.engines.base import OPEN_NOMUTEX, Engine


class SqliteEngine(Engine):
    name = "sqlite"
    description = "sqlnb's own SQLite build (amalgamation + lsm1, Cython columnar fetcher)"
    file_format = "sqlite"
    module_name = "sqlnb._fast"
    capabilities = frozenset((
        "columnar_fetch", "columnar_export", "parallel_fetch", "multirow_values", "export_cache",
        "window", "json", "fts5", "rtree", "math", "dbstat", "lsm1", "wal", "snapshot", "defensive",
        "bind_names", "uri", "strict_quotes", "busy_handler",
        "window_udf",
        "profile_sketch",
    ))
    # Our SQLite opens with SQLITE_OPEN_NOMUTEX: the per-connection lock in _fast.pyx
    # already lets one caller in at a time, so SQLite's own mutex (taken and let go on
    # every sqlite3_column_*/bind call) is pure cost.
    open_flags = OPEN_NOMUTEX
