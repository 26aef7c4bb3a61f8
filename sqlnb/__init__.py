"""sqlnb: Jupyter-oriented SQLite exploration.

``%load_ext sqlnb`` registers the ``%sql``/``%%sql`` magics. From Python:

>>> import sqlnb
>>> con = sqlnb.connect(":memory:")
>>> con.execute("select sqlite_version() >= '3.50'").fetchone()
(1,)
"""
from sqlnb import engines  # the package, callable: sqlnb.engines() lists every engine
from sqlnb import errors
from sqlnb.connection import Connection, Cursor, connect, parse_url, redact
from sqlnb.dbapi import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
)
from sqlnb.look.profile import profile  # column profiles computed inside SQLite
from sqlnb.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)
from sqlnb.row import Row
from sqlnb.stdlib.surface import (  # the stdlib's run-time limit categories (getlimit/setlimit)
    SQLITE_LIMIT_ATTACHED,
    SQLITE_LIMIT_COLUMN,
    SQLITE_LIMIT_COMPOUND_SELECT,
    SQLITE_LIMIT_EXPR_DEPTH,
    SQLITE_LIMIT_FUNCTION_ARG,
    SQLITE_LIMIT_LENGTH,
    SQLITE_LIMIT_LIKE_PATTERN_LENGTH,
    SQLITE_LIMIT_SQL_LENGTH,
    SQLITE_LIMIT_TRIGGER_DEPTH,
    SQLITE_LIMIT_VARIABLE_NUMBER,
    SQLITE_LIMIT_VDBE_OP,
    SQLITE_LIMIT_WORKER_THREADS,
)

__version__ = "0.1.0"

# PEP 249 module globals
apilevel = "2.0"
threadsafety = 1  # connections are not shared across threads unless check_same_thread=False
paramstyle = "qmark"  # named (:name, $name, @name) and numeric (?NNN) work too


def _engine(name):
    return engines.get(name) if name else engines.default()


def sqlite_version(engine: str | None = None) -> str:
    """The SQLite core version of ``engine`` (default: our own build, else the stdlib's)."""
    return _engine(engine).version()


def compile_options(engine: str | None = None) -> list[str]:
    """The compile-time options of ``engine``'s SQLite core."""
    return _engine(engine).compile_options()


def load_ipython_extension(ipython):
    """``%load_ext sqlnb``: register the magics."""
    from sqlnb.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython):
    from sqlnb.magics import unload_ipython_extension as _unload

    _unload(ipython)


__all__ = [
    "connect", "Connection", "Cursor", "engines", "sqlite_version", "compile_options",
    "parse_url", "redact", "errors", "apilevel", "threadsafety", "paramstyle",
    "Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
    "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError",
    "Date", "Time", "Timestamp", "DateFromTicks", "TimeFromTicks", "TimestampFromTicks", "Binary",
    "STRING", "BINARY", "NUMBER", "DATETIME", "ROWID",
    "profile",
]
__all__ += [  # the stdlib sqlite3 surface (docs/dbapi.md)
    "Row",
    "SQLITE_LIMIT_LENGTH",
    "SQLITE_LIMIT_SQL_LENGTH",
    "SQLITE_LIMIT_COLUMN",
    "SQLITE_LIMIT_EXPR_DEPTH",
    "SQLITE_LIMIT_COMPOUND_SELECT",
    "SQLITE_LIMIT_VDBE_OP",
    "SQLITE_LIMIT_FUNCTION_ARG",
    "SQLITE_LIMIT_ATTACHED",
    "SQLITE_LIMIT_LIKE_PATTERN_LENGTH",
    "SQLITE_LIMIT_VARIABLE_NUMBER",
    "SQLITE_LIMIT_TRIGGER_DEPTH",
    "SQLITE_LIMIT_WORKER_THREADS",
]
from sqlnb.stdlib.convert import (  # noqa: E402 - detect_types, adapters and converters (docs/dbapi.md)
    PARSE_COLNAMES,
    PARSE_DECLTYPES,
    PrepareProtocol,
    adapters,
    converters,
    register_adapter,
    register_converter,
)

__all__ += ["PARSE_DECLTYPES", "PARSE_COLNAMES", "PrepareProtocol", "adapters", "converters",
            "register_adapter", "register_converter"]
