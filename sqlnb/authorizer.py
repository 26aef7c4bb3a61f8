"""Read-only modes and table/column policies, enforced by SQLite's authorizer.

A :class:`Policy` describes what a connection may do: its mode (``rw``, ``ro``,
``ro-scratch``), denied tables, an allow-list of tables, masked columns and an
optional user authorizer. ``sqlnb.connect(..., mode=, deny_tables=, ...)`` builds
one and installs it when the connection opens; it is never loosened afterwards.

On the Cython engines (``sqlite``, ``bdb``) the policy is compiled to a C table
and checked by a ``noexcept`` C callback (``sqlnb/_auth.pxi``); on the ``system``
engine :meth:`Policy.decide` (the same rules, in Python) runs through the stdlib's
``set_authorizer``. See docs/read-only.md.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Callable

from sqlnb import errors as _errors

MODES = ("rw", "ro", "ro-scratch")

#: what an authorizer returns (sqlite3.h: SQLITE_OK, SQLITE_DENY, SQLITE_IGNORE)
OK, DENY, IGNORE = 0, 1, 2


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


A = AuthAction


def action_name(code: int) -> str:
    """``AuthAction.CREATE_TEMP_TABLE`` -> ``'CREATE TEMP TABLE'`` (unknown codes: ``'action 42'``)."""
    try:
        name = AuthAction(code).name
    except ValueError:
        return f"action {code}"
    return {"CREATE_VTABLE": "CREATE VIRTUAL TABLE", "DROP_VTABLE": "DROP VIRTUAL TABLE"}.get(
        name, name.replace("_", " "))


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


#: Read-only PRAGMAs allowed in the ``ro`` modes. True: the argument names an
#: object (``table_info(t)``) and any form reads. False: only the bare read form
#: (``PRAGMA user_version``); with an argument (``= 5`` or ``(5)``) it would assign.
READ_ONLY_PRAGMAS: dict[str, bool] = {
    # schema and integrity: the argument is a table, index or limit
    "table_info": True,
    "table_xinfo": True,
    "table_list": True,
    "index_info": True,
    "index_xinfo": True,
    "index_list": True,
    "foreign_key_list": True,
    "foreign_key_check": True,
    "integrity_check": True,
    "quick_check": True,
    # lists of what the library or connection offers
    "compile_options": False,
    "database_list": False,
    "collation_list": False,
    "function_list": False,
    "module_list": False,
    "pragma_list": False,
    # settings and counters, read form only
    "application_id": False,
    "auto_vacuum": False,
    "cache_size": False,
    "data_version": False,
    "encoding": False,
    "foreign_keys": False,
    "freelist_count": False,
    "journal_mode": False,
    "max_page_count": False,
    "page_count": False,
    "page_size": False,
    "query_only": False,
    "schema_version": False,
    "user_version": False,
}

#: Functions refused in the ``ro`` modes besides ``load_extension`` (refused in every
#: mode unless allowed): ``fts3_tokenizer`` registers a C pointer as a tokenizer.
DENIED_FUNCTIONS = ("fts3_tokenizer",)

#: Tables that the table policies never refuse: the schema itself.
FREE_TABLES = ("sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema")

_READING = (A.READ, A.SELECT, A.TRANSACTION, A.SAVEPOINT, A.RECURSIVE)
_WRITES = (A.INSERT, A.UPDATE, A.DELETE)
_TEMP_OK = (A.CREATE_TABLE, A.CREATE_TEMP_TABLE, A.CREATE_INDEX,
            A.CREATE_TEMP_INDEX, A.CREATE_VIEW, A.CREATE_TEMP_VIEW, A.CREATE_TRIGGER,
            A.CREATE_TEMP_TRIGGER, A.DROP_TABLE, A.DROP_TEMP_TABLE, A.DROP_INDEX, A.DROP_TEMP_INDEX,
            A.DROP_VIEW, A.DROP_TEMP_VIEW, A.DROP_TRIGGER, A.DROP_TEMP_TRIGGER, A.ALTER_TABLE,
            A.REINDEX)  # CREATE INDEX on a temp table also authorizes a REINDEX of it
NRULES = 64


def mode_rules(mode: str) -> tuple[list[int], int]:
    """The rule for each action code 0..63 under ``mode``, and the rule for any higher code."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "rw":
        rules = [Rule.ALLOW] * NRULES
        rules[A.FUNCTION] = Rule.FUNCTION
        return [int(r) for r in rules], int(Rule.ALLOW)
    rules = [Rule.REFUSE] * NRULES  # fail closed: codes we do not know are refused
    for a in _READING:
        rules[a] = Rule.ALLOW
    rules[A.PRAGMA] = Rule.PRAGMA
    rules[A.FUNCTION] = Rule.FUNCTION
    for a in _WRITES:
        rules[a] = Rule.WRITE
    if mode == "ro-scratch":
        for a in _TEMP_OK:
            rules[a] = Rule.TEMP_ONLY
    return [int(r) for r in rules], int(Rule.REFUSE)


# --- parsing the user's table and column names ------------------------------------
def _split(name, what: str, parts: tuple[int, ...]) -> tuple:
    if isinstance(name, str):
        pieces = tuple(p.strip() for p in name.split("."))
    elif isinstance(name, (tuple, list)):
        pieces = tuple(name)
    else:
        raise TypeError(f"{what} entries must be str or tuple, not {type(name).__name__}: {name!r}")
    if len(pieces) not in parts or not all(isinstance(p, str) and p for p in pieces):
        forms = {1: "'table'", 2: "'db.table'" if what != "mask_columns" else "'table.column'",
                 3: "'db.table.column'"}
        want = " or ".join(forms[n] for n in parts)
        raise ValueError(f"bad {what} entry {name!r}: expected {want}")
    return pieces


def parse_tables(names, what: str = "deny_tables") -> tuple[tuple[str | None, str, None], ...]:
    """``['secrets', 'main.audit', ('aux', 't')]`` -> ``((None, 'secrets', None), ('main', 'audit', None), ...)``."""
    if names is None:
        return ()
    if isinstance(names, str):
        names = [names]
    out = []
    for n in names:
        p = _split(n, what, (1, 2))
        out.append((None, p[0], None) if len(p) == 1 else (p[0], p[1], None))
    return tuple(out)


def parse_columns(names) -> tuple[tuple[str | None, str, str], ...]:
    """``['users.email', 'main.users.phone', ('users', 'ssn')]`` or ``{'users': ['email']}`` -> patterns."""
    if names is None:
        return ()
    if isinstance(names, str):
        names = [names]
    if isinstance(names, Mapping):
        names = [(t, c) for t, cols in names.items()
                 for c in ([cols] if isinstance(cols, str) else cols)]
    out = []
    for n in names:
        if isinstance(n, tuple) and len(n) == 2 and isinstance(n[0], str) and "." in n[0]:
            n = (*n[0].split("."), n[1])
        p = _split(n, "mask_columns", (2, 3))
        out.append((None, p[0], p[1]) if len(p) == 2 else (p[0], p[1], p[2]))
    return tuple(out)


def _ieq(a, b) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def _matches(pattern, db, table, column=None) -> bool:
    pdb, ptable, pcol = pattern
    if table is None or not _ieq(ptable, table):
        return False
    if pdb is not None and db is not None and not _ieq(pdb, db):
        return False
    if pcol is not None and not _ieq(pcol, column):
        return False
    return True


_TABLE_IN_A1 = {A.READ, A.INSERT, A.UPDATE, A.DELETE, A.CREATE_TABLE, A.CREATE_TEMP_TABLE,
                A.DROP_TABLE, A.DROP_TEMP_TABLE, A.ANALYZE, A.CREATE_VTABLE, A.DROP_VTABLE}
_TABLE_IN_A2 = {A.CREATE_INDEX, A.CREATE_TEMP_INDEX, A.DROP_INDEX, A.DROP_TEMP_INDEX,
                A.CREATE_TRIGGER, A.CREATE_TEMP_TRIGGER, A.DROP_TRIGGER, A.DROP_TEMP_TRIGGER,
                A.ALTER_TABLE}


class Policy:
    """A connection's mode and policies (set on ``RawConnection.policy``).

    The same rules run as a compiled C table on the Cython engines and as
    :meth:`decide` on the ``system`` engine.
    """

    def __init__(self, mode: str = "rw", *, allow_load_extension: bool = False,
                 deny_tables=(), mask_columns=(), allow_tables=None,
                 authorizer: Callable[[int, str | None, str | None, str | None, str | None], int] | None = None,
                 engine: str | None = None):
        self.rules, self.unknown_rule = mode_rules(mode)
        self.mode = mode
        if allow_load_extension and mode != "rw":
            raise ValueError(f"allow_load_extension=True is only possible in mode 'rw', not {mode!r}: "
                             "an extension runs arbitrary code")
        self.allow_load_extension = bool(allow_load_extension)
        self.deny_tables = parse_tables(deny_tables, "deny_tables")
        self.allow_tables = None if allow_tables is None else parse_tables(allow_tables, "allow_tables")
        self.mask_columns = parse_columns(mask_columns)
        if authorizer is not None and not callable(authorizer):
            raise TypeError(f"authorizer must be callable, not {type(authorizer).__name__}")
        self.authorizer = authorizer
        self.engine = engine
        self.table = None  # the compiled AuthTable (Cython engines)
        self.shadow: tuple = ()  # (db, shadow table, None) of the virtual tables, found at install
        self._state = None  # the system engine's refusal record

    # --- compilation --------------------------------------------------------
    def bind_schema(self, tables) -> None:
        """Learn the virtual tables' shadow tables from ``PRAGMA table_list`` rows.

        ``tables``: ``(schema, name, type, ...)`` rows. Shadow tables are needed twice:
        an R*Tree prepares INSERT/DELETE statements on its own shadow tables when it
        connects (allowed in the ro modes only as such internal statements), and a
        table policy on a virtual table extends to its shadow tables (so
        ``allow_tables=['docs']`` lets FTS5 read ``docs_content`` and friends).
        """
        rows = [(r[0], r[1], r[2]) for r in tables]
        vtabs = [(db, n) for db, n, t in rows if t == "virtual"]
        shadow, owner = [], {}
        for db, name, kind in rows:
            if kind != "shadow":
                continue
            shadow.append((db, name, None))
            cands = [v for vdb, v in vtabs if vdb == db and name.lower().startswith(v.lower() + "_")]
            if cands:
                owner[(db, name)] = max(cands, key=len)
        self.shadow = tuple(shadow)

        def extend(patterns):
            out = list(patterns)
            for (db, name), vt in owner.items():
                for pdb, ptable, _ in patterns:
                    if _ieq(ptable, vt) and (pdb is None or _ieq(pdb, db)):
                        out.append((pdb, name, None))
            return tuple(dict.fromkeys(out))

        self.deny_tables = extend(self.deny_tables)
        if self.allow_tables is not None:
            self.allow_tables = extend(self.allow_tables)

    def c_spec(self) -> dict:
        """Everything ``_auth.pxi`` compiles into its C table."""
        return {
            "mode": self.mode,
            "scratch": self.mode == "ro-scratch",
            "shadow": self.shadow,
            "rules": self.rules,
            "unknown_rule": self.unknown_rule,
            "allow_load_extension": self.allow_load_extension,
            "readonly": self.mode != "rw",
            "pragmas": READ_ONLY_PRAGMAS,
            "denied_functions": DENIED_FUNCTIONS if self.mode != "rw" else (),
            "free_tables": FREE_TABLES,
            "deny": self.deny_tables,
            "allow": self.allow_tables,
            "mask": self.mask_columns,
            "authorizer": self.authorizer,
        }

    @property
    def has_table_policies(self) -> bool:
        return bool(self.deny_tables or self.mask_columns or self.allow_tables is not None)

    # --- the rules in Python (the system engine; tests compare it with the C table) ---
    def decide(self, action: int, a1: str | None, a2: str | None, db: str | None,
               inner: str | None = None, first: bool = True,
               schema_quirk: bool = False) -> tuple[int, int]:
        """The built-in decision for one action: ``(OK|DENY|IGNORE, Why)``.

        ``first``: the first action of the statement being prepared; ``inner``: the
        trigger or view it comes from. ``schema_quirk``: older cores (3.40) authorize
        connecting any virtual table as an UPDATE of ``sqlite_master``; let that
        internal UPDATE through (a user's UPDATE of sqlite_master still needs
        ``writable_schema``, a PRAGMA the ro modes refuse).
        """
        rule = self.rules[action] if 0 <= action < NRULES else self.unknown_rule
        if rule == Rule.REFUSE:
            return DENY, Why.MODE
        if rule == Rule.WRITE:
            if self.mode == "ro-scratch" and _ieq(db, "temp"):
                pass
            elif (action != A.UPDATE and not first and inner is None
                  and any(_matches(p, db, a1) for p in self.shadow)):
                pass
            elif (schema_quirk and action == A.UPDATE and not first and inner is None
                  and (a1 or "").lower() in ("sqlite_master", "sqlite_temp_master")):
                pass
            else:
                return DENY, Why.MODE
        elif rule == Rule.TEMP_ONLY:
            if not _ieq(a1 if action == A.ALTER_TABLE else db, "temp"):
                return DENY, Why.MODE
        elif rule == Rule.PRAGMA:
            any_arg = next((v for k, v in READ_ONLY_PRAGMAS.items() if _ieq(k, a1)), None)
            if any_arg is None or (not any_arg and a2 is not None):
                return DENY, Why.PRAGMA
        elif rule == Rule.FUNCTION:
            if _ieq(a2, "load_extension") and not self.allow_load_extension:
                return DENY, Why.LOADEXT
            if self.mode != "rw" and any(_ieq(a2, f) for f in DENIED_FUNCTIONS):
                return DENY, Why.FUNCTION
        if not self.has_table_policies:
            return OK, Why.NONE
        table = a1 if action in _TABLE_IN_A1 else a2 if action in _TABLE_IN_A2 else None
        if table is None:
            return OK, Why.NONE
        tdb = a1 if action == A.ALTER_TABLE else db
        if any(_matches(p, tdb, table) for p in self.deny_tables):
            return DENY, Why.DENIED
        if any(_ieq(table, t) for t in FREE_TABLES):
            return OK, Why.NONE
        if (self.allow_tables is not None and not _ieq(tdb, "temp")
                and not any(_matches(p, tdb, table) for p in self.allow_tables)):
            return DENY, Why.NOT_ALLOWED
        if action == A.READ and any(_matches(p, tdb, table, a2) for p in self.mask_columns):
            return IGNORE, Why.NONE
        return OK, Why.NONE

    def python_callback(self, owner):
        """A stdlib ``set_authorizer`` callback for ``owner`` (the system engine's RawConnection).

        A user authorizer's exception (or bad return) is stored on ``owner._pending``
        and the action denied; the engine raises it once the statement fails.
        """
        decide = self.decide
        user = self.authorizer
        state = {"first": None, "since": 0}
        self._state = state

        def callback(action, a1, a2, db, inner):
            try:
                first = state["since"] == 0
                state["since"] += 1
                rc, why = decide(action, a1, a2, db, inner, first, True)
                if rc == OK and user is not None:
                    try:
                        r = user(action, a1, a2, db, inner)
                        if type(r) is not int or r not in (OK, DENY, IGNORE):
                            raise TypeError(
                                f"the authorizer returned {r!r} for action {action} ({a1!r}, {a2!r}); "
                                "it must return sqlnb.authorizer.OK, DENY or IGNORE (the ints 0, 1, 2): denied")
                        rc = r
                    except BaseException as exc:  # fail closed, surface later
                        if owner._pending is None:
                            owner._pending = exc
                        rc = DENY
                    if rc == DENY:
                        why = Why.USER
                if rc == DENY and state["first"] is None:
                    state["first"] = (action, a1, a2, db, inner, int(why))
                return rc
            except BaseException:  # never let an error in our own code allow an action
                return DENY

        return callback

    def begin(self):
        """Forget the previous refusal (called before each statement on the system engine)."""
        if self.table is None and self._state is not None:
            self._state["first"] = None
            self._state["since"] = 0

    def take_refusal(self):
        """The first refusal of the last statement: ``(action, a1, a2, db, inner, why)`` or None."""
        if self.table is not None:
            return self.table.take_refusal()
        state = self._state
        if state is None:
            return None
        r, state["first"] = state["first"], None
        return r

    # --- what the user sees --------------------------------------------------------
    def summary(self) -> str:
        """``'ro'``, or e.g. ``'ro; deny: secrets; mask: users.email'``."""
        parts = [self.mode]
        if self.deny_tables:
            parts.append("deny: " + ", ".join(_fmt_name(p) for p in self.deny_tables))
        if self.allow_tables is not None:
            parts.append("allow: " + (", ".join(_fmt_name(p) for p in self.allow_tables) or "(none)"))
        if self.mask_columns:
            parts.append("mask: " + ", ".join(_fmt_name(p) for p in self.mask_columns))
        if self.allow_load_extension:
            parts.append("load_extension allowed")
        if self.authorizer is not None:
            parts.append("authorizer: " + getattr(self.authorizer, "__name__", type(self.authorizer).__name__))
        return "; ".join(parts)

    def __repr__(self):
        return f"<sqlnb.authorizer.Policy {self.summary()}>"

    def explain_refusal(self, exc):
        """Turn SQLite's bare ``not authorized`` into an error naming mode, action and object.

        Returns None when no refusal of this policy was recorded (then ``exc`` stands).
        """
        rec = self.take_refusal()
        if rec is None:
            return None
        action, a1, a2, db, inner, why = rec
        sql = getattr(exc, "sql", None)
        what = describe(action, a1, a2, db, sql)
        where = f" (inside {inner})" if inner else ""
        if why in (Why.MODE, Why.PRAGMA, Why.FUNCTION):
            cls = _errors.ReadOnlyError
            msg = f"mode {self.mode!r} refused {what}{where}"
            if why == Why.PRAGMA:
                msg += " (only the read-only PRAGMAs listed in docs/read-only.md, without assignment)"
            elif self.mode == "ro-scratch" and (action in _TEMP_OK or action in _WRITES):
                msg += " (ro-scratch allows writes and DDL only on the temp database)"
        elif why == Why.LOADEXT and self.mode != "rw":
            cls = _errors.ReadOnlyError
            msg = f"mode {self.mode!r} refused {what}: extensions are never loaded in the read-only modes"
        elif why == Why.LOADEXT:
            cls = _errors.PolicyError
            msg = (f"mode {self.mode!r} refused {what}: extension loading is off; "
                   "connect(..., allow_load_extension=True) enables it")
        elif why == Why.DENIED:
            cls = _errors.AccessDeniedError
            msg = f"policy refused {what}{where}: the table is in deny_tables"
        elif why == Why.NOT_ALLOWED:
            cls = _errors.AccessDeniedError
            msg = f"policy refused {what}{where}: the table is not in allow_tables"
        elif why == Why.USER:
            cls = _errors.AccessDeniedError
            msg = f"the user authorizer refused {what}{where}"
        else:
            cls = _errors.PolicyError
            msg = f"policy refused {what}{where}"
        better = _errors.make_error(exc.result_code or 23, msg, cls=cls,
                                    extended_code=getattr(exc, "extended_code", None),
                                    error_offset=getattr(exc, "error_offset", -1), sql=sql)
        better.mode = self.mode
        better.action = action_name(action)
        better.action_code = int(action)
        better.target = _target(action, a1, a2, db)
        better.reason = Why(why).name.lower() if why in Why._value2member_map_ else str(why)
        return better


def _fmt_name(p) -> str:
    return ".".join(x for x in p if x is not None)


def _q(db, name) -> str:
    return f"{db}.{name}" if db else f"{name}"


def _target(action, a1, a2, db) -> str:
    if action in (A.READ, A.UPDATE):
        return _q(db, a1) + (f".{a2}" if a2 else "")
    if action == A.ALTER_TABLE:
        return _q(a1, a2)
    if action in _TABLE_IN_A1 or action in (A.CREATE_VIEW, A.CREATE_TEMP_VIEW, A.DROP_VIEW,
                                              A.DROP_TEMP_VIEW, A.REINDEX):
        return _q(db, a1)
    if action in _TABLE_IN_A2:
        return _q(db, a1)
    if action == A.PRAGMA:
        return _q(db, a1) + (f" = {a2}" if a2 is not None else "")
    if action == A.ATTACH:
        return repr(a1 or "")
    if action == A.DETACH:
        return a1 or ""
    if action == A.FUNCTION:
        return f"{a2}()"
    return " ".join(x for x in (a1, a2) if x)


_FIRST_WORD = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*([A-Za-z]+)", re.S)


def first_keyword(sql: str) -> str:
    """The statement's first keyword, upper-cased (for messages only; decisions never parse SQL)."""
    m = _FIRST_WORD.match(sql or "")
    return m.group(1).upper() if m else ""


_SCHEMA_TABLES = ("sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema")
_DDL = {"CREATE", "DROP", "ALTER", "TEMP", "TEMPORARY", "TABLE", "INDEX", "VIEW", "TRIGGER", "UNIQUE",
        "VIRTUAL"}


_TOKEN = re.compile(r'([A-Za-z_][\w$]*|"[^"]*"|`[^`]*`|\[[^\]]*\])(\s*\.)?|(\S)')


def _ddl_words(sql: str, db: str | None = None) -> str:
    """``'CREATE TEMP TABLE on temp.t'`` for ``create temp table t(a)`` (for messages only)."""
    words, name, qual = [], None, None
    toks = list(_TOKEN.finditer(_strip_comments(sql)[:300]))
    i = 0
    while i < len(toks):
        word, dot = toks[i].group(1), toks[i].group(2)
        if word is None:
            break
        if not dot and word.upper() in _DDL:
            words.append(word.upper())
            i += 1
            continue
        if word.upper() in ("IF", "NOT", "EXISTS") and not dot:
            i += 1
            continue
        if dot and i + 1 < len(toks) and toks[i + 1].group(1):
            qual, name = word.strip('"`[]'), toks[i + 1].group(1).strip('"`[]')
        else:
            name = word.strip('"`[]')
        break
    if words and words[0] in ("CREATE", "DROP", "ALTER"):
        target = f" on {_q(qual or db, name)}" if name else ""
        return " ".join(words) + target
    return ""


def _strip_comments(sql: str) -> str:
    m = _FIRST_WORD.match(sql or "")
    return sql[m.start(1):] if m else sql


def describe(action, a1, a2, db, sql=None) -> str:
    """``INSERT on main.flights``, ``PRAGMA main.user_version = 5``, ``VACUUM INTO 'copy.db'``..."""
    name = action_name(action)
    target = _target(action, a1, a2, db)
    if action == A.ATTACH and sql:
        if first_keyword(sql) == "VACUUM":  # VACUUM reaches the authorizer as an ATTACH
            return "VACUUM" + (f" INTO {target}" if a1 else "")
    if action in _WRITES and (a1 or "").lower() in _SCHEMA_TABLES and sql:
        ddl = _ddl_words(sql, db)
        if ddl:  # CREATE/DROP start by writing the schema table: name the statement
            return ddl
        if first_keyword(sql) == "ANALYZE":
            return f"ANALYZE (it writes {target})"
    if action == A.PRAGMA:
        return f"PRAGMA {target}"
    if action == A.FUNCTION:
        return target
    if action in _TABLE_IN_A2 and action != A.ALTER_TABLE and a2:
        return f"{name} on {target} (table {a2})"
    if action == A.ATTACH:
        return f"ATTACH of {target}"
    if action in (A.TRANSACTION, A.SAVEPOINT):
        return f"{name} {target}".strip()
    return f"{name} on {target}" if target else name


def make_policy(engine: str, mode: str = "rw", **kwargs) -> Policy:
    return Policy(mode, engine=engine, **kwargs)


__all__ = ["Policy", "AuthAction", "Rule", "Why", "OK", "DENY", "IGNORE", "MODES",
           "READ_ONLY_PRAGMAS", "DENIED_FUNCTIONS", "FREE_TABLES", "action_name", "describe",
           "mode_rules", "parse_tables", "parse_columns"]
