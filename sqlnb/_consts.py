"""Constants that Python and the compiled core share: one table, read by both.

``tools/gen_consts.py`` writes ``sqlnb/_core/consts.pxi`` from this module at
build time, so the C authorizer's rule and reason codes, the action codes and the
storage classes cannot drift from the Python names (``sqlnb.authorizer``,
``sqlnb.frames``, ``sqlnb.dbapi``).  Values are sqlite3.h's where sqlite3.h has them.
"""
from __future__ import annotations

import enum

#: the engines sqlnb can open (``sqlnb.engines`` describes each) and the modes of a connection
ENGINES = ("sqlite", "bdb", "system")
MODES = ("rw", "ro", "ro-scratch")

#: SQLite's storage classes (sqlite3.h: SQLITE_INTEGER ... SQLITE_NULL)
INTEGER, REAL, TEXT, BLOB, NULL = 1, 2, 3, 4, 5


class AuthAction(enum.IntEnum):
    """SQLite's authorizer action codes (sqlite3.h, without the ``SQLITE_`` prefix)."""

    CREATE_INDEX = 1
    CREATE_TABLE = 2
    CREATE_TEMP_INDEX = 3
    CREATE_TEMP_TABLE = 4
    CREATE_TEMP_TRIGGER = 5
    CREATE_TEMP_VIEW = 6
    CREATE_TRIGGER = 7
    CREATE_VIEW = 8
    DELETE = 9
    DROP_INDEX = 10
    DROP_TABLE = 11
    DROP_TEMP_INDEX = 12
    DROP_TEMP_TABLE = 13
    DROP_TEMP_TRIGGER = 14
    DROP_TEMP_VIEW = 15
    DROP_TRIGGER = 16
    DROP_VIEW = 17
    INSERT = 18
    PRAGMA = 19
    READ = 20
    SELECT = 21
    TRANSACTION = 22
    UPDATE = 23
    ATTACH = 24
    DETACH = 25
    ALTER_TABLE = 26
    REINDEX = 27
    ANALYZE = 28
    CREATE_VTABLE = 29
    DROP_VTABLE = 30
    FUNCTION = 31
    SAVEPOINT = 32
    RECURSIVE = 33


class Rule(enum.IntEnum):
    """How a mode treats an action code (the values of the C table)."""

    ALLOW = 0
    REFUSE = 1
    TEMP_ONLY = 2  # only on the temp database (ro-scratch)
    PRAGMA = 3  # only the read-only PRAGMA allow-list
    FUNCTION = 4  # every function but load_extension (and, in ro modes, DENIED_FUNCTIONS)
    WRITE = 5  # INSERT/UPDATE/DELETE in the ro modes: temp (ro-scratch) or a virtual table's own statements


class Why(enum.IntEnum):
    """Why the built-in policy refused an action (recorded by the C callback)."""

    NONE = 0
    MODE = 1
    PRAGMA = 2
    LOADEXT = 3
    DENIED = 4
    NOT_ALLOWED = 5
    USER = 6
    FUNCTION = 7
    SCHEMA = 8  # rw with table policies: writable_schema / schema_version assignment
    ATTACH = 9  # rw with table policies: ATTACH of a file (the same file under another name)
    HIDDEN = 10  # dbstat / sqlite_dbpage under table policies
    VERIFY = 11  # the bytecode check (not the authorizer) refused the statement
    REPREPARE = 12  # SQLite recompiled a statement while stepping it (schema changed): not checked
