"""sqlnb's exceptions: the PEP 249 hierarchy, one class per SQLite result code.

``CODE_TO_CLASS`` is the one table that maps a primary result code to the
class raised; errors are never classified by their message text.  Where
PEP 249 leaves room the classes sit where the stdlib ``sqlite3`` puts the
same code, so ``except sqlite3.OperationalError``-style code ports over.
"""
from __future__ import annotations


class Warning(Exception):  # noqa: A001 - the PEP 249 name
    """PEP 249 Warning."""


class Error(Exception):
    """Base of every sqlnb error.

    Attributes: ``result_code`` (primary SQLite code or None),
    ``extended_code``, ``error_offset`` (byte offset into ``sql`` where
    SQLite located the error, or -1) and ``sql`` (the statement text).
    """

    result_code: int | None = None
    extended_code: int | None = None
    error_offset: int = -1
    sql: str | None = None

    @property
    def sqlite_errorcode(self):  # the stdlib's name for the same thing
        return self.extended_code


class InterfaceError(Error):
    """Misuse of the interface (closed connection, bad arguments)."""


class DatabaseError(Error):
    """An error reported by the database."""


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


# --- one class per SQLite primary result code --------------------------------
class SQLError(OperationalError):
    """SQLITE_ERROR: SQL error or missing database (syntax, no such table...)."""


class PermissionError_(OperationalError):
    """SQLITE_PERM."""


class AbortError(OperationalError):
    """SQLITE_ABORT."""


class BusyError(OperationalError):
    """SQLITE_BUSY: the database file is locked by another connection."""


class LockedError(OperationalError):
    """SQLITE_LOCKED: a table is locked within this connection's cache."""


class NoMemError(DatabaseError, MemoryError):
    """SQLITE_NOMEM."""


class ReadOnlyError(OperationalError):
    """SQLITE_READONLY, and refusals of sqlnb's read-only modes."""


class InterruptError(OperationalError):
    """SQLITE_INTERRUPT: the statement was interrupted."""


class IOError_(OperationalError):
    """SQLITE_IOERR."""


class CorruptError(DatabaseError):
    """SQLITE_CORRUPT: the database disk image is malformed."""


class NotFoundError(InternalError):
    """SQLITE_NOTFOUND."""


class FullError(OperationalError):
    """SQLITE_FULL."""


class CantOpenError(OperationalError):
    """SQLITE_CANTOPEN: unable to open the database file."""


class ProtocolError(OperationalError):
    """SQLITE_PROTOCOL."""


class EmptyError(OperationalError):
    """SQLITE_EMPTY."""


class SchemaChangeError(OperationalError):
    """SQLITE_SCHEMA."""


class TooBigError(DataError):
    """SQLITE_TOOBIG: string or blob too big."""


class ConstraintError(IntegrityError):
    """SQLITE_CONSTRAINT."""


class MismatchError(IntegrityError):
    """SQLITE_MISMATCH: datatype mismatch."""


class MisuseError(InterfaceError):
    """SQLITE_MISUSE."""


class NoLFSError(OperationalError):
    """SQLITE_NOLFS."""


class AuthError(DatabaseError):
    """SQLITE_AUTH: refused by the authorizer."""


class FormatError(DatabaseError):
    """SQLITE_FORMAT."""


class RangeError(InterfaceError):
    """SQLITE_RANGE: bind parameter index out of range."""


class NotADatabaseError(DatabaseError):
    """SQLITE_NOTADB: the file is not a database."""


# --- sqlnb's own --------------------------------------------------------------
class ConnectionClosedError(ProgrammingError):
    """The connection (or cursor) was used after close()."""


class BindError(ProgrammingError, TypeError):
    """A parameter value of a type sqlnb cannot bind."""


class ParameterError(ProgrammingError):
    """A statement's parameters and the values supplied do not match."""


class QueryTimeoutError(OperationalError):
    """A statement ran past its time limit."""


class EngineUnavailableError(InterfaceError):
    """The requested engine was not built or cannot be loaded."""


class FeatureNotSupportedError(NotSupportedError):
    """The engine's SQLite core lacks a feature the SQL uses."""


class PolicyError(AuthError):
    """A connection's policy refused a statement (SQLITE_AUTH, explained).

    Refusals of the ``ro`` modes raise :class:`ReadOnlyError` instead (the one class
    for "this database is not written to here", whichever wall caught the write).
    Policy refusals carry ``mode``, ``action`` (e.g. ``'READ'``), ``target``
    (e.g. ``'main.secrets.name'``) and ``reason``.
    """


class AccessDeniedError(PolicyError):
    """A table policy (``deny_tables``, ``allow_tables``) or the user's authorizer refused access."""


CODE_TO_CLASS = {
    1: SQLError,
    2: InternalError,
    3: PermissionError_,
    4: AbortError,
    5: BusyError,
    6: LockedError,
    7: NoMemError,
    8: ReadOnlyError,
    9: InterruptError,
    10: IOError_,
    11: CorruptError,
    12: NotFoundError,
    13: FullError,
    14: CantOpenError,
    15: ProtocolError,
    16: EmptyError,
    17: SchemaChangeError,
    18: TooBigError,
    19: ConstraintError,
    20: MismatchError,
    21: MisuseError,
    22: NoLFSError,
    23: AuthError,
    24: FormatError,
    25: RangeError,
    26: NotADatabaseError,
}


def class_for(result_code: int) -> type[Error]:
    """The exception class for a (primary or extended) SQLite result code."""
    return CODE_TO_CLASS.get(result_code & 0xFF, DatabaseError)


def make_error(result_code, message, *, extended_code=None, error_offset=-1, sql=None, cls=None):
    """Build (not raise) the exception for a result code, with its fields filled."""
    exc = (cls or class_for(result_code))(message)
    exc.result_code = result_code & 0xFF
    exc.extended_code = extended_code if extended_code is not None else result_code
    exc.error_offset = error_offset
    exc.sql = sql
    return exc


# --- the errors that several places raise: one constructor each ----------------------------

def timeout_error(seconds: float, sql=None) -> QueryTimeoutError:
    """A statement stopped by its connection's time limit of ``seconds`` (every engine, every path)."""
    exc = make_error(9, f"statement exceeded its time limit of {seconds:g} s (timeout)",
                     cls=QueryTimeoutError, sql=sql)  # 9: SQLITE_INTERRUPT
    exc.timeout = seconds
    return exc


def interrupted(sql=None) -> InterruptError:
    """A statement stopped by ``interrupt()`` or Ctrl-C (SQLITE_INTERRUPT)."""
    return make_error(9, "interrupted", sql=sql)


# Shown to users under the names SQLite's result codes have (SQLITE_PERM, SQLITE_IOERR): the
# trailing underscore only keeps the builtins PermissionError and IOError unshadowed here. The
# qualified name keeps the underscore, so pickle still finds the class (sqlnb.errors.IOError_).
for _cls, _shown in ((PermissionError_, "PermissionError"), (IOError_, "IOError")):
    _cls.__name__ = _shown
del _cls, _shown
