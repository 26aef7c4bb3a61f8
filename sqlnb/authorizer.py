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
import types
from collections.abc import Mapping
from typing import Callable

from sqlnb import errors as _errors
from sqlnb._consts import MODES, AuthAction, Rule, Why  # noqa: F401  (MODES: sqlnb.authorizer.MODES)


#: what an authorizer returns (sqlite3.h: SQLITE_OK, SQLITE_DENY, SQLITE_IGNORE)
OK, DENY, IGNORE = 0, 1, 2


A = AuthAction


def action_name(code: int) -> str:
    """``AuthAction.CREATE_TEMP_TABLE`` -> ``'CREATE TEMP TABLE'`` (unknown codes: ``'action 42'``)."""
    try:
        name = AuthAction(code).name
    except ValueError:
        return f"action {code}"
    return {"CREATE_VTABLE": "CREATE VIRTUAL TABLE", "DROP_VTABLE": "DROP VIRTUAL TABLE"}.get(
        name, name.replace("_", " "))


#: Read-only PRAGMAs allowed in the ``ro`` modes. True: the argument names an
#: object (``table_info(t)``) and any form reads. False: only the bare read form
#: (``PRAGMA user_version``); with an argument (``= 5`` or ``(5)``) it would assign.
_READ_ONLY_PRAGMAS: dict[str, bool] = {
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
#: (read-only: a policy copies it when it is built, so changing it affects no open connection)
READ_ONLY_PRAGMAS = types.MappingProxyType(_READ_ONLY_PRAGMAS)

#: Functions refused in the ``ro`` modes besides ``load_extension`` (refused in every
#: mode unless allowed): ``fts3_tokenizer`` registers a C pointer as a tokenizer.
DENIED_FUNCTIONS = ("fts3_tokenizer",)

#: Tables that the table policies never refuse: the schema itself.
FREE_TABLES = ("sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema")

#: Tables refused whenever a table policy (deny, allow, mask) is set: they show the pages
#: (``sqlite_dbpage``: their bytes; ``dbstat``: their sizes) of every table, hidden ones too,
#: or what ANALYZE learned of them (``sqlite_stat1``: row counts; ``sqlite_stat3/4``: sampled
#: index keys, i.e. values of denied tables and masked columns).
HIDDEN_TABLES = ("dbstat", "sqlite_dbpage", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3", "sqlite_stat4")

#: PRAGMAs refused in ``rw`` when a table policy is set: they would let SQL rewrite the
#: schema (rename a denied table or a masked column for good). True: any form; False: assignment.
SCHEMA_PRAGMAS = types.MappingProxyType({"writable_schema": True, "schema_version": False})

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
    """A connection's mode and policies (``RawConnection.policy``, read-only there).

    The same rules run as a compiled C table on the Cython engines and as
    :meth:`decide` on the ``system`` engine. A policy is frozen when it is installed:
    its attributes cannot be set afterwards, its name lists are tuples, and the
    module-level lists it uses (``READ_ONLY_PRAGMAS``, ``FREE_TABLES``) were copied
    when it was built.
    """

    # no instance __dict__: an installed policy's rules cannot be swapped behind __setattr__
    # (Python-level freezing is best effort: object.__setattr__ still reaches a slot; on the
    # Cython engines the rules the authorizer applies live in C, compiled at install)
    __slots__ = ("rules", "unknown_rule", "mode", "allow_load_extension", "deny_tables",
                 "allow_tables", "mask_columns", "authorizer", "engine", "pragmas", "free_tables",
                 "hidden_tables", "schema_pragmas", "mask_extra", "table", "shadow", "_state",
                 "_btrees", "_p2isreg", "_frozen", "__weakref__")

    def __init__(self, mode: str = "rw", *, allow_load_extension: bool = False,
                 deny_tables=(), mask_columns=(), allow_tables=None,
                 authorizer: Callable[[int, str | None, str | None, str | None, str | None], int] | None = None,
                 engine: str | None = None):
        object.__setattr__(self, "_frozen", False)
        rules, self.unknown_rule = mode_rules(mode)
        self.rules = tuple(rules)
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
        # copies of the module's lists, taken now: changing those later loosens nothing
        self.pragmas = tuple(READ_ONLY_PRAGMAS.items())
        self.free_tables = tuple(FREE_TABLES)
        self.hidden_tables = tuple((None, t, None) for t in HIDDEN_TABLES) if self.has_table_policies else ()
        self.schema_pragmas = tuple(SCHEMA_PRAGMAS.items()) if self.has_table_policies else ()
        self.mask_extra: tuple = ()  # masks implied by the schema (generated columns, FTS, R*Tree rowid)
        self.table = None  # the compiled AuthTable (Cython engines)
        self.shadow: tuple = ()  # (db, shadow table, None) of the virtual tables, found at install
        self._state = None  # the system engine's refusal record
        self._btrees = None  # (schema cookie, forbidden roots, masked roots) for the bytecode check
        self._p2isreg = 0x10  # OpenWrite's OPFLAG_P2ISREG (0x02 on cores older than 3.8): set at install

    def __setattr__(self, name, value):
        if self._frozen:
            raise AttributeError(f"a policy is frozen once installed: {name!r} cannot be set "
                                 "(a connection's mode and policy are chosen when it is opened)")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        raise AttributeError(f"a policy is frozen: {name!r} cannot be deleted")

    def like(self) -> "Policy":
        """A new, uninstalled policy with this one's rules (for another connection to the same
        database, such as a parallel-fetch worker): its own refusal record and schema view."""
        new = Policy(self.mode, allow_load_extension=self.allow_load_extension,
                     authorizer=self.authorizer, engine=self.engine)
        for name in ("deny_tables", "allow_tables", "mask_columns", "pragmas", "free_tables",
                     "hidden_tables", "schema_pragmas"):
            object.__setattr__(new, name, getattr(self, name))
        return new

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    @property
    def needs_verify(self) -> bool:
        """Whether each prepared statement's program is checked (ro modes and table policies)."""
        return self.mode != "rw" or self.has_table_policies

    # --- compilation --------------------------------------------------------
    def bind_schema(self, tables, columns=None) -> None:
        """Learn the virtual tables' shadow tables from ``PRAGMA table_list`` rows.

        ``tables``: ``(schema, name, type, ...)`` rows. Shadow tables are needed twice:
        an R*Tree prepares INSERT/DELETE statements on its own shadow tables when it
        connects (allowed in the ro modes only as such internal statements), and a
        table policy on a virtual table extends to its shadow tables (so
        ``allow_tables=['docs']`` lets FTS5 read ``docs_content`` and friends).

        ``columns``: ``{(schema, table): (sql, table_xinfo rows)}`` of the tables that
        have a masked column. A mask then also covers what reveals the column: the
        table's generated columns and an R*Tree's ``rowid`` when its id is masked.
        Refused (ValueError): masking an ordinary table's INTEGER PRIMARY KEY (every
        join by rowid would compare it) and a column of a full-text table (its index
        answers ``MATCH``, ``docs('word')``, ``highlight()`` and ``snippet()`` about it).
        """
        rows = [(r[0], r[1], r[2]) for r in tables]
        wr = {(r[0], r[1].lower()): r[4] for r in tables if len(r) > 4}  # table_list's ``wr`` (3.37+)
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
        extra = []
        for (db, table), (sql, xinfo) in (columns or {}).items():
            pats = [p for p in self.mask_columns if _matches((p[0], p[1], None), db, table)]
            if not pats:
                continue
            masked = [r for r in xinfo if any(_ieq(p[2], r[1]) for p in pats)]
            virtual = bool(re.match(r"\s*CREATE\s+VIRTUAL\s", sql or "", re.I))
            if virtual:
                module = (re.search(r"\bUSING\s+(\w+)", sql or "", re.I) or [None, ""])[1].lower()
                if module.startswith("fts") and masked:
                    raise ValueError(
                        f"mask_columns: {table}.{masked[0][1]} is a column of a full-text ({module}) table, "
                        "whose index answers MATCH, highlight() and snippet() about it whatever a mask "
                        "says: deny the table instead")
                if module.startswith(("rtree", "geopoly")) and any(r[0] == 0 for r in masked):
                    extra.append((db, table, "ROWID"))  # its id is its rowid
                continue
            pks = [r for r in xinfo if r[5]]
            without_rowid = (bool(wr.get((db, table.lower()))) if (db, table.lower()) in wr else
                             bool(re.search(r"\)\s*WITHOUT\s+ROWID\b", sql or "", re.I)))
            if (len(pks) == 1 and not without_rowid and (pks[0][2] or "").upper() == "INTEGER"
                    and any(r[0] == pks[0][0] for r in masked)):
                raise ValueError(
                    f"mask_columns: {table}.{pks[0][1]} is the table's INTEGER PRIMARY KEY (its rowid); "
                    "it cannot be masked (every join by rowid compares it): deny the table instead")
            extra += [(db, table, r[1]) for r in xinfo if len(r) > 6 and r[6] in (2, 3)]
        self.mask_extra = tuple(dict.fromkeys(extra))

    @property
    def all_masks(self) -> tuple:
        return self.mask_columns + self.mask_extra

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
            "pragmas": self.pragmas,
            "denied_functions": DENIED_FUNCTIONS if self.mode != "rw" else (),
            "free_tables": self.free_tables,
            "deny": self.deny_tables,
            "hidden": self.hidden_tables,
            "schema_pragmas": self.schema_pragmas,
            "allow": self.allow_tables,
            "mask": self.all_masks,
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
            any_arg = next((v for k, v in self.pragmas if _ieq(k, a1)), None)
            if any_arg is None or (not any_arg and a2 is not None):
                return DENY, Why.PRAGMA
        elif rule == Rule.FUNCTION:
            if _ieq(a2, "load_extension") and not self.allow_load_extension:
                return DENY, Why.LOADEXT
            if self.mode != "rw" and any(_ieq(a2, f) for f in DENIED_FUNCTIONS):
                return DENY, Why.FUNCTION
        if not self.has_table_policies:
            return OK, Why.NONE
        if action == A.PRAGMA:
            any_form = next((v for k, v in self.schema_pragmas if _ieq(k, a1)), None)
            if any_form is not None and (any_form or a2 is not None):
                return DENY, Why.SCHEMA
        if action == A.ATTACH and a1 != "":  # a file, or a computed name (NULL): only '' (a temp db)
            return DENY, Why.ATTACH
        table = a1 if action in _TABLE_IN_A1 else a2 if action in _TABLE_IN_A2 else None
        if table is None:
            return OK, Why.NONE
        tdb = a1 if action == A.ALTER_TABLE else db
        if any(_matches(p, tdb, table) for p in self.deny_tables):
            return DENY, Why.DENIED
        if any(_matches(p, tdb, table) for p in self.hidden_tables):
            return DENY, Why.HIDDEN
        if action == A.ALTER_TABLE and any(_matches((p[0], p[1], None), tdb, table) for p in self.all_masks):
            return DENY, Why.SCHEMA  # renaming the table or the column would lift the mask
        if any(_ieq(table, t) for t in self.free_tables):
            return OK, Why.NONE
        if (self.allow_tables is not None and not _ieq(tdb, "temp")
                and not any(_matches(p, tdb, table) for p in self.allow_tables)):
            return DENY, Why.NOT_ALLOWED
        if action == A.READ and any(_matches(p, tdb, table, a2) for p in self.all_masks):
            return IGNORE, Why.NONE
        return OK, Why.NONE

    # --- the second, independent check: each statement's program -----------------------
    def table_refusal(self, db, table) -> str | None:
        """Why a table's b-trees may not be opened (None: they may)."""
        if any(_matches(p, db, table) for p in self.deny_tables):
            return "deny_tables"
        if any(_ieq(table, t) for t in self.free_tables):
            return None
        if self.allow_tables is not None and not any(_matches(p, db, table) for p in self.allow_tables):
            return "not allow_tables"
        return None

    def snapshot_btrees(self, query) -> tuple:
        """``(cookie, forbidden, masked)`` of the main database: the root pages of the tables
        and indexes a policy hides (``{root: (table, reason)}``) and, for tables with a masked
        column, the record positions that hold it (``{root: (table, column, positions)}``).
        ``query(sql)`` returns rows. Read from the schema as SQLite parsed it; refreshed
        whenever a statement's program names another schema cookie."""
        cookie = query("PRAGMA main.schema_version")[0][0]
        rows = query("SELECT type, name, tbl_name, rootpage, sql FROM main.sqlite_master "
                     "WHERE type IN ('table', 'index')")
        forbidden, masked = {}, {}
        tables = {r[1].lower(): r for r in rows if r[0] == "table"}
        # WITHOUT ROWID tables as SQLite parsed them (table_list's ``wr``: 3.37+; older cores have
        # no table_list, and the 3.7 core no WITHOUT ROWID: the text is read there)
        listed = query("PRAGMA main.table_list")
        wr = ({r[1].lower() for r in listed if len(r) > 4 and r[4]} if listed else
              {k for k, r in tables.items() if re.search(r"\)\s*WITHOUT\s+ROWID\b", r[4] or "", re.I)})
        for typ, name, tbl, root, sql in rows:
            if not isinstance(root, int) or root <= 0:
                continue
            why = self.table_refusal("main", tbl)
            if why is None and typ == "table":
                why = self.table_refusal("main", name)
            if any(_matches(p, "main", tbl) for p in self.hidden_tables):
                why = "hidden"  # sqlite_stat1..4: what ANALYZE sampled (row counts, index keys)
            elif why == "not allow_tables" and _ieq(tbl, "sqlite_sequence"):
                why = "bookkeeping"  # AUTOINCREMENT's counters: free to the statement maintaining them
            if why is not None:
                forbidden[root] = (tbl, why)
        masks = self.all_masks
        for key, (typ, name, tbl, root, sql) in tables.items():
            pats = [p for p in masks if _matches((p[0], p[1], None), "main", name)]
            if not pats or not isinstance(root, int) or root <= 0:
                continue
            q = '"' + name.replace('"', '""') + '"'
            cols = query(f"PRAGMA main.table_xinfo({q})") or [  # (older cores: table_info)
                (*r, 0) for r in query(f"PRAGMA main.table_info({q})")]
            mcids = {r[0] for r in cols if any(_ieq(p[2], r[1]) for p in pats)}
            if not mcids:
                continue
            label = ", ".join(r[1] for r in cols if r[0] in mcids)
            without_rowid = key in wr
            idx = [r for r in rows if r[0] == "index" and _ieq(r[2], name) and isinstance(r[3], int)]
            if without_rowid:
                pk = [r for r in query(f"PRAGMA main.index_list({q})") if r[3] == "pk"]
                pos = set()
                qpk = '"' + pk[0][1].replace('"', '""') + '"' if pk else ""
                for r in query(f"PRAGMA main.index_xinfo({qpk})") if pk else ():
                    if r[1] in mcids:
                        pos.add(r[0])
                masked[root] = (name, label, frozenset(pos), True)
            else:
                pos, n = set(), 0
                for r in cols:
                    if len(r) > 6 and r[6] == 2:  # VIRTUAL generated: no storage (masked by name)
                        continue
                    if r[0] in mcids:
                        pos.add(n)
                    n += 1
                masked[root] = (name, label, frozenset(pos), False)
            for _, iname, _, iroot, _ in idx:
                qi = '"' + iname.replace('"', '""') + '"'
                irows = query(f"PRAGMA main.index_xinfo({qi})") or query(f"PRAGMA main.index_info({qi})")
                ipos = frozenset(r[0] for r in irows if r[1] in mcids or r[1] == -2)
                if ipos:
                    masked[iroot] = (name, label, ipos, True)
        return cookie, forbidden, masked

    def check_program(self, ops, query, sql):
        """Check a statement's program (``(opcode, p1, p2, p3, p5)`` rows of its EXPLAIN,
        only the opcodes in ``VERIFY_OPCODES``) against the policy, independently of the
        authorizer. Returns None, or the exception refusing the statement.

        Refused: under ``ro`` any write to a database but ``temp`` (``ro-scratch``) and any
        virtual-table write; under table policies any cursor on a denied (or not allowed)
        table's or its indexes' b-trees, and any read of a masked column from a table's or
        an index's record (a masked column the authorizer saw reads as NULL without one:
        what remains comes from USING/NATURAL joins and other references SQLite does not
        authorize). In ``rw``, the record reads of an UPDATE/DELETE's own write cursors are
        allowed (they copy the row or maintain its indexes).
        """
        ro = self.mode != "rw"
        scratch = self.mode == "ro-scratch"
        cookie = None
        cursors, writers = {}, set()  # keyed by (frame, cursor): each sub-program numbers its own
        attached = None
        p2isreg = self._p2isreg
        for row in ops:
            op, p1, p2, p3, p5 = row[:5]
            frame = row[5] if len(row) > 5 else 0
            if op in ("Transaction", "VerifyCookie"):
                if p1 == 0:
                    cookie = p3 if op == "Transaction" else p2
                continue
            if ro:
                db = _WRITE_DB.get(op)
                if db is not None:
                    db = (p1, p2, p3)[db - 1]
                    if not (scratch and db == 1):
                        return self._verify_error(sql, f"its program writes to the database ({op})", ro=True)
                if op in ("VUpdate", "VCreate", "VDestroy", "Vacuum", "IncrVacuum"):
                    return self._verify_error(sql, f"its program writes to the database ({op})", ro=True)
            if op in ("OpenRead", "OpenWrite", "ReopenIdx"):
                # (OpenWrite's P2 may be a register: OPFLAG_P2ISREG, 0x10 since 3.8, 0x02 on 3.7,
                # where 3.8+ uses 0x02 for OPFLAG_SEEKEQ; a write the authorizer already checked by
                # name: a b-tree this statement creates)
                if p3 == 0 and not (op == "OpenWrite" and p5 & p2isreg):
                    cursors.setdefault((frame, p1), set()).add(p2)
                elif p3 >= 2 and attached is None:
                    attached = op  # an attached database: its root pages are not main's
                if op == "OpenWrite":
                    writers.add((frame, p1))
            elif op == "OpenDup":
                cursors.setdefault((frame, p1), set()).update(cursors.get((frame, p2), ()))
        if not self.has_table_policies:
            return None
        if attached is not None:
            return self._verify_error(
                sql, f"its program opens a b-tree of an attached database ({attached}); under table "
                "policies only main and temp are read (the policy names main's tables)",
                cls=_errors.AccessDeniedError)
        roots = set().union(*cursors.values()) if cursors else set()
        if not roots:
            return None
        snap = self._btrees
        if snap is None or (cookie is not None and cookie != snap[0]):
            snap = self.snapshot_btrees(query)
            object.__setattr__(self, "_btrees", snap)
        _, forbidden, masked = snap
        written = set().union(*(cursors.get(w, ()) for w in writers)) if writers else set()
        for r in roots:
            if r in forbidden:
                tbl, why = forbidden[r]
                if why == "bookkeeping" and r in written:
                    continue  # AUTOINCREMENT maintaining sqlite_sequence (the authorizer is not asked)
                cls = _errors.AccessDeniedError
                reason = {"deny_tables": "which is in deny_tables",
                          "hidden": "which holds statistics of the tables a policy hides"}.get(
                              why, "which is not in allow_tables")
                return self._verify_error(
                    sql, f"its program reads main.{tbl}, {reason}"
                    + " (through a form the authorizer does not see, e.g. USING or NATURAL joins)", cls=cls)
        if not any(r in masked for r in roots):
            return None
        for row in ops:
            op, p1, p2 = row[:3]
            frame = row[5] if len(row) > 5 else 0
            if op == "RowCell":
                p1 = p2  # the source cursor (P1 is the destination)
            elif op != "Column" and op != "RowData" and op not in _SEEKS:
                continue
            if op != "RowCell" and op not in _SEEKS and not ro and (frame, p1) in writers:
                continue  # an UPDATE/DELETE copying its row or maintaining its indexes
            for r in cursors.get((frame, p1), ()):
                m = masked.get(r)
                if m is None:
                    continue
                if op in ("RowData", "RowCell"):  # a whole record: the masked column with it
                    return self._verify_error(
                        sql, f"it copies whole records holding the masked column main.{m[0]}.{m[1]} "
                        "(INSERT … SELECT * copies records without reading columns; name the "
                        "columns to copy)", cls=_errors.PolicyError)
                if op != "Column":  # a seek in an index b-tree that holds the masked column compares it
                    if m[3]:
                        return self._verify_error(
                            sql, f"it searches an index that holds the masked column main.{m[0]}.{m[1]} "
                            "(a comparison with the hidden values; name other columns)", cls=_errors.PolicyError)
                    continue
                if p2 in m[2]:
                    return self._verify_error(
                        sql, f"it compares or returns the masked column main.{m[0]}.{m[1]} "
                        "(USING and NATURAL joins read it without asking; join with ON and name "
                        "other columns)", cls=_errors.PolicyError)
        return None

    def _verify_error(self, sql, why, ro=False, cls=None):
        kw = first_keyword(sql) or "statement"
        if ro:
            msg = f"mode {self.mode!r} refused {kw}: {why}"
            cls = _errors.ReadOnlyError
        else:
            msg = f"policy refused {kw}: {why}"
        exc = _errors.make_error(23, msg, cls=cls, sql=sql)
        exc.mode = self.mode
        exc.action = kw
        exc.action_code = -1
        exc.target = ""
        exc.reason = "verify"
        return exc

    def python_callback(self, owner):
        """A stdlib ``set_authorizer`` callback for ``owner`` (the system engine's RawConnection).

        A user authorizer's exception (or bad return) is stored on ``owner._pending``
        and the action denied; the engine raises it once the statement fails. So is
        an interrupt (KeyboardInterrupt) that lands in the callback: the statement is
        refused and the interrupt raised as such.
        """
        if self._frozen:
            raise AttributeError("this policy is installed already; it makes no second callback")
        decide = self.decide
        user = self.authorizer
        state = {"first": None, "since": 0, "quiet": False}
        object.__setattr__(self, "_state", state)

        def callback(action, a1, a2, db, inner):
            try:
                first = state["since"] == 0
                state["since"] += 1
                rc, why = decide(action, a1, a2, db, inner, first, True)
                if rc == OK and user is not None and not state["quiet"]:
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
            except BaseException as exc:  # never let an error in our own code allow an action
                if not isinstance(exc, Exception):
                    if owner._pending is None:
                        owner._pending = exc  # KeyboardInterrupt & co.: raised as themselves
                elif state["first"] is None:
                    state["first"] = (action, a1, a2, db, inner, int(Why.NONE))
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
        elif why == Why.SCHEMA:
            cls = _errors.PolicyError
            msg = (f"policy refused {what}{where}: with deny_tables, allow_tables or mask_columns "
                   "the schema cannot be rewritten (it would rename what the policy hides)"
                   if action != A.ALTER_TABLE else
                   f"policy refused {what}{where}: the table has a masked column (a rename or a new "
                   "column computed from it would lift the mask)")
        elif why == Why.ATTACH:
            cls = _errors.PolicyError
            msg = (f"policy refused {what}{where}: with deny_tables, allow_tables or mask_columns no "
                   "database file is attached, nor a computed name (the same file under another name would escape them)")
        elif why == Why.HIDDEN:
            cls = _errors.AccessDeniedError
            msg = f"policy refused {what}{where}: it shows the pages, sizes or statistics of the tables a policy hides"
        elif why == Why.REPREPARE:
            cls = _errors.PolicyError
            msg = ("policy refused the statement: the schema changed under this statement "
                   "(SQLite would run a new program the policy's check has not seen); prepare it again")
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


#: write opcodes -> which operand (1..3) names the database they write
_WRITE_DB = {"OpenWrite": 3, "Destroy": 3, "Clear": 2, "CreateBtree": 1, "CreateTable": 1,
             "CreateIndex": 1, "SetCookie": 1}

#: The opcodes :meth:`Policy.check_program` looks at (the rest of a program is skipped).
VERIFY_OPCODES = frozenset((
    "RowData", "RowCell", "Transaction", "VerifyCookie", "OpenRead", "OpenWrite", "ReopenIdx", "OpenDup", "Column",
    "Destroy", "Clear", "CreateBtree", "CreateTable", "CreateIndex", "SetCookie",
    "VUpdate", "VCreate", "VDestroy", "Vacuum", "IncrVacuum",
    "SeekGE", "SeekGT", "SeekLE", "SeekLT", "IdxGE", "IdxGT", "IdxLE", "IdxLT", "Found", "NotFound",
    "NoConflict", "SeekScan", "IsUnique"))
#: the opcodes that compare a key with an index b-tree's records
_SEEKS = frozenset(("SeekGE", "SeekGT", "SeekLE", "SeekLT", "IdxGE", "IdxGT", "IdxLE", "IdxLT",
                    "Found", "NotFound", "NoConflict", "SeekScan", "IsUnique"))  # (IsUnique: 3.7)


def make_policy(engine: str, mode: str = "rw", **kwargs) -> Policy:
    return Policy(mode, engine=engine, **kwargs)


__all__ = ["Policy", "AuthAction", "Rule", "Why", "OK", "DENY", "IGNORE", "MODES",
           "READ_ONLY_PRAGMAS", "DENIED_FUNCTIONS", "FREE_TABLES", "HIDDEN_TABLES", "SCHEMA_PRAGMAS",
           "VERIFY_OPCODES", "action_name", "describe",
           "mode_rules", "parse_tables", "parse_columns"]
