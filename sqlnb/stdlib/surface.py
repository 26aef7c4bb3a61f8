"""The stdlib ``sqlite3.Connection`` surface that :class:`sqlnb.Connection` adds to PEP 249:
user-defined functions, aggregates, window functions and collations (docs/functions.md).

A mixin: ``Connection`` inherits it. The work is the engine's (``Engine.register_function``,
``Engine.register_collation``): the compiled core registers C callbacks
(``sqlnb/_core/functions.pxi``), the ``system`` engine the stdlib's own, wrapped to keep the
same contract (``sqlnb.engines.system_functions``). Every engine: an exception raised in a
function becomes the statement's error, naming the function, with the exception as its
``__cause__``; values convert as the fetcher converts columns, results bind by the one
bind rule (``sqlnb._bind``). The bdb engine's core has no window functions:
``create_window_function`` raises FeatureNotSupportedError there.
"""
from __future__ import annotations

from sqlnb import errors as _errors
from sqlnb.stdlib.more import MoreMixin

#: SQLite's bounds for a function's number of arguments (-1: any number)
MIN_ARGS, MAX_ARGS = -1, 127


def _check_name(what: str, name) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{what}() argument 'name' must be str, not {type(name).__name__}")


def _check_narg(what: str, narg) -> int:
    if isinstance(narg, bool) or not isinstance(narg, int):
        raise TypeError(f"{what}(): the number of arguments must be an int, not {type(narg).__name__}")
    if not MIN_ARGS <= narg <= MAX_ARGS:
        # (the stdlib reports SQLite's refusal as OperationalError: the same class here)
        raise _errors.OperationalError(
            f"{what}(): the number of arguments must be -1 (any) or 0..{MAX_ARGS}, not {narg}")
    return narg


def _check_callable(what: str, func, label: str) -> None:
    if func is not None and not callable(func):
        raise TypeError(f"{what}(): {label} must be callable (or None to remove it), "
                        f"not {type(func).__name__}")


class FunctionsMixin:
    """``create_function``, ``create_aggregate``, ``create_window_function``, ``create_collation``."""

    def create_function(self, name, narg, func, *, deterministic=False):
        """Make ``func(*args)`` callable from SQL as ``name`` with ``narg`` arguments (-1: any).

        ``deterministic=True`` lets SQLite use it in indexes and constant-fold it (SQLite
        3.8.3+; FeatureNotSupportedError on an older core). ``func=None`` removes it.
        """
        self._check()
        _check_name("create_function", name)
        _check_narg("create_function", narg)
        _check_callable("create_function", func, "func")
        self.backend.register_function(self._raw, "function", name, narg, func, bool(deterministic))

    def create_aggregate(self, name, n_arg, aggregate_class):
        """An aggregate: one ``aggregate_class()`` per group, ``step(*args)`` per row,
        ``finalize()`` its value (a group with no row: NULL, as in the stdlib)."""
        self._check()
        _check_name("create_aggregate", name)
        _check_narg("create_aggregate", n_arg)
        _check_callable("create_aggregate", aggregate_class, "aggregate_class")
        self.backend.register_function(self._raw, "aggregate", name, n_arg, aggregate_class)

    def create_window_function(self, name, num_params, aggregate_class, /):
        """An aggregate window function: ``step``, ``inverse`` (a row leaves the frame),
        ``value`` (the current value) and ``finalize``. FeatureNotSupportedError on an engine
        without window functions (bdb)."""
        self._check()
        _check_name("create_window_function", name)
        _check_narg("create_window_function", num_params)
        _check_callable("create_window_function", aggregate_class, "aggregate_class")
        self.backend.register_function(self._raw, "window function", name, num_params, aggregate_class)

    def create_collation(self, name, callable, /):  # noqa: A002 - the stdlib's parameter name
        """``callable(a: str, b: str)`` returns <0, 0 or >0; ``None`` removes the collation.

        An exception in it (or a result that is not an int) stops the statement with an error
        naming the collation (the stdlib ignores it and sorts as if equal)."""
        self._check()
        _check_name("create_collation", name)
        if callable is not None and not builtin_callable(callable):
            raise TypeError("parameter must be callable")
        self.backend.register_collation(self._raw, name, callable)


builtin_callable = callable


# --- limits ---------------------------------------------------------------------------------------
#: SQLite's run-time limit categories (sqlite3.h), as the stdlib names them
SQLITE_LIMIT_LENGTH = 0
SQLITE_LIMIT_SQL_LENGTH = 1
SQLITE_LIMIT_COLUMN = 2
SQLITE_LIMIT_EXPR_DEPTH = 3
SQLITE_LIMIT_COMPOUND_SELECT = 4
SQLITE_LIMIT_VDBE_OP = 5
SQLITE_LIMIT_FUNCTION_ARG = 6
SQLITE_LIMIT_ATTACHED = 7
SQLITE_LIMIT_LIKE_PATTERN_LENGTH = 8
SQLITE_LIMIT_VARIABLE_NUMBER = 9
SQLITE_LIMIT_TRIGGER_DEPTH = 10
SQLITE_LIMIT_WORKER_THREADS = 11
LIMITS = tuple(name for name in list(globals()) if name.startswith("SQLITE_LIMIT_"))


class StdlibSurface(FunctionsMixin, MoreMixin):
    """The stdlib ``sqlite3.Connection`` methods beyond PEP 249 (``Connection`` inherits this)."""

    #: the stdlib's ``detect_types`` (``connect(detect_types=)``; sqlnb.stdlib.convert): 0, none
    detect_types = 0

    def _limit(self, what: str, category, value: int) -> int:
        self._check()
        if isinstance(category, bool) or not isinstance(category, int):
            raise TypeError(f"{what}(): category must be an int (a SQLITE_LIMIT_* constant), "
                            f"not {type(category).__name__}")
        old = self._raw.limit(category, value)
        if old < 0:   # (SQLite answers -1 for a category it does not know; bdb's 3.7 core has fewer)
            raise _errors.ProgrammingError(f"{what}(): 'category' is out of bounds ({category})")
        return old

    def getlimit(self, category, /) -> int:
        """The connection's current value of a run-time limit (``SQLITE_LIMIT_*``)."""
        return self._limit("getlimit", category, -1)

    def setlimit(self, category, limit, /) -> int:
        """Set a run-time limit (a negative ``limit`` leaves it); returns the previous value.
        SQLite lowers a value above the limit it was compiled with to that."""
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"setlimit(): limit must be an int, not {type(limit).__name__}")
        return self._limit("setlimit", category, max(-1, min(limit, 2**31 - 1)))

    # --- isolation_level: the stdlib's checks -----------------------------------------------
    @property
    def isolation_level(self):
        """``None`` (autocommit), ``""``, ``"DEFERRED"``, ``"IMMEDIATE"`` or ``"EXCLUSIVE"``: the
        BEGIN opened before INSERT/UPDATE/DELETE/REPLACE (the stdlib's rule)."""
        return self.__dict__.get("_isolation_level", "")

    @isolation_level.setter
    def isolation_level(self, value):
        value = check_isolation_level(value)
        if value is None and "_isolation_level" in self.__dict__ and not self.closed and self.in_transaction:
            self.commit()   # autocommit from now on: the open transaction commits (as in the stdlib)
        self.__dict__["_isolation_level"] = value

    # --- text_factory: how TEXT reaches Python -----------------------------------------------
    @property
    def text_factory(self):
        """``str`` (the default), ``bytes``, or a callable given each TEXT value's UTF-8 bytes
        (rows of ``execute``/``fetch*``; the DataFrame fetchers keep their own rules)."""
        return self.__dict__.get("_text_factory") or str

    @text_factory.setter
    def text_factory(self, factory):
        if not callable(factory):
            raise TypeError(f"text_factory must be callable, not {type(factory).__name__}")
        self.__dict__["_text_factory"] = None if factory is str else factory

    def _text_rows(self):
        """The text factory rows go through (None: str, nothing to do); Cursor._wrap asks."""
        return self.__dict__.get("_text_factory")


ISOLATION_LEVELS = ("", "DEFERRED", "IMMEDIATE", "EXCLUSIVE")


def check_isolation_level(value):
    """``value`` as the stdlib keeps it (upper case), or its TypeError / ValueError."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("isolation_level must be str or None")
    if value.upper() not in ISOLATION_LEVELS:
        raise ValueError("isolation_level string must be '', 'DEFERRED', 'IMMEDIATE', or 'EXCLUSIVE'")
    return value.upper()


def text_row(row: tuple, factory) -> tuple:
    """``row`` with each str (TEXT, decoded with surrogateescape) given to ``factory`` as its bytes."""
    return tuple(factory(v.encode("utf-8", "surrogateescape")) if isinstance(v, str) else v for v in row)
