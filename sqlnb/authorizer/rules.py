"""The rules of a policy: what each mode allows, the name lists, and the decision in Python.

``sqlnb.authorizer.Policy`` keeps a connection's rules; this module holds what they
are made of: the rule of each action code per mode (:func:`mode_rules`), the user's
table and column names parsed into patterns (:func:`parse_tables`,
:func:`parse_columns`), what a policy learns from the schema when it is installed
(shadow tables of virtual tables, masks implied by generated columns and R*Tree ids),
and :func:`decide`, the decision for one authorizer action: the same rules that
``sqlnb/_core/auth.pxi`` compiles to C (the tests compare the two on a matrix of actions).
The public names are re-exported by ``sqlnb.authorizer``.
"""
from __future__ import annotations

import types
from collections.abc import Mapping

from sqlnb import _sql
from sqlnb._consts import MODES, AuthAction as A, Rule, Why

#: what an authorizer returns (sqlite3.h: SQLITE_OK, SQLITE_DENY, SQLITE_IGNORE)
OK, DENY, IGNORE = 0, 1, 2

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

READING = (A.READ, A.SELECT, A.TRANSACTION, A.SAVEPOINT, A.RECURSIVE)
WRITES = (A.INSERT, A.UPDATE, A.DELETE)
#: what ro-scratch allows on the temp database
TEMP_OK = (A.CREATE_TABLE, A.CREATE_TEMP_TABLE, A.CREATE_INDEX,
           A.CREATE_TEMP_INDEX, A.CREATE_VIEW, A.CREATE_TEMP_VIEW, A.CREATE_TRIGGER,
           A.CREATE_TEMP_TRIGGER, A.DROP_TABLE, A.DROP_TEMP_TABLE, A.DROP_INDEX, A.DROP_TEMP_INDEX,
           A.DROP_VIEW, A.DROP_TEMP_VIEW, A.DROP_TRIGGER, A.DROP_TEMP_TRIGGER, A.ALTER_TABLE,
           A.REINDEX)  # CREATE INDEX on a temp table also authorizes a REINDEX of it
NRULES = 64

#: the actions whose first argument (a1) names a table, and those whose second (a2) does
TABLE_IN_A1 = frozenset((A.READ, A.INSERT, A.UPDATE, A.DELETE, A.CREATE_TABLE, A.CREATE_TEMP_TABLE,
                         A.DROP_TABLE, A.DROP_TEMP_TABLE, A.ANALYZE, A.CREATE_VTABLE, A.DROP_VTABLE))
TABLE_IN_A2 = frozenset((A.CREATE_INDEX, A.CREATE_TEMP_INDEX, A.DROP_INDEX, A.DROP_TEMP_INDEX,
                         A.CREATE_TRIGGER, A.CREATE_TEMP_TRIGGER, A.DROP_TRIGGER, A.DROP_TEMP_TRIGGER,
                         A.ALTER_TABLE))


def mode_rules(mode: str) -> tuple[list[int], int]:
    """The rule for each action code 0..63 under ``mode``, and the rule for any higher code."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "rw":
        rules = [Rule.ALLOW] * NRULES
        rules[A.FUNCTION] = Rule.FUNCTION
        return [int(r) for r in rules], int(Rule.ALLOW)
    rules = [Rule.REFUSE] * NRULES  # fail closed: codes we do not know are refused
    for a in READING:
        rules[a] = Rule.ALLOW
    rules[A.PRAGMA] = Rule.PRAGMA
    rules[A.FUNCTION] = Rule.FUNCTION
    for a in WRITES:
        rules[a] = Rule.WRITE
    if mode == "ro-scratch":
        for a in TEMP_OK:
            rules[a] = Rule.TEMP_ONLY
    return [int(r) for r in rules], int(Rule.REFUSE)


# --- the user's table and column names ------------------------------------------------
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


def ieq(a, b) -> bool:
    """SQLite's name comparison (ASCII case-insensitive); None equals nothing."""
    return a is not None and b is not None and a.lower() == b.lower()


def matches(pattern, db, table, column=None) -> bool:
    """Whether a ``(db, table, column)`` pattern (None: any db / no column) names this object."""
    pdb, ptable, pcol = pattern
    if table is None or not ieq(ptable, table):
        return False
    if pdb is not None and db is not None and not ieq(pdb, db):
        return False
    if pcol is not None and not ieq(pcol, column):
        return False
    return True


# --- the decision ----------------------------------------------------------------------
def decide(p, action: int, a1: str | None, a2: str | None, db: str | None,
           inner: str | None = None, first: bool = True, schema_quirk: bool = False) -> tuple[int, int]:
    """Policy ``p``'s built-in decision for one action: ``(OK|DENY|IGNORE, Why)``
    (``Policy.decide`` documents the arguments)."""
    rule = p.rules[action] if 0 <= action < NRULES else p.unknown_rule
    if rule == Rule.REFUSE:
        return DENY, Why.MODE
    if rule == Rule.WRITE:
        if p.mode == "ro-scratch" and ieq(db, "temp"):
            pass
        elif (action != A.UPDATE and not first and inner is None
              and any(matches(s, db, a1) for s in p.shadow)):
            pass
        elif (schema_quirk and action == A.UPDATE and not first and inner is None
              and (a1 or "").lower() in ("sqlite_master", "sqlite_temp_master")):
            pass
        else:
            return DENY, Why.MODE
    elif rule == Rule.TEMP_ONLY:
        if not ieq(a1 if action == A.ALTER_TABLE else db, "temp"):
            return DENY, Why.MODE
    elif rule == Rule.PRAGMA:
        any_arg = next((v for k, v in p.pragmas if ieq(k, a1)), None)
        if any_arg is None or (not any_arg and a2 is not None):
            return DENY, Why.PRAGMA
    elif rule == Rule.FUNCTION:
        if ieq(a2, "load_extension") and not p.allow_load_extension:
            return DENY, Why.LOADEXT
        if p.mode != "rw" and any(ieq(a2, f) for f in DENIED_FUNCTIONS):
            return DENY, Why.FUNCTION
    if not p.has_table_policies:
        return OK, Why.NONE
    if action == A.PRAGMA:
        any_form = next((v for k, v in p.schema_pragmas if ieq(k, a1)), None)
        if any_form is not None and (any_form or a2 is not None):
            return DENY, Why.SCHEMA
    if action == A.ATTACH and a1 != "":  # a file, or a computed name (NULL): only '' (a temp db)
        return DENY, Why.ATTACH
    table = a1 if action in TABLE_IN_A1 else a2 if action in TABLE_IN_A2 else None
    if table is None:
        return OK, Why.NONE
    tdb = a1 if action == A.ALTER_TABLE else db
    if any(matches(d, tdb, table) for d in p.deny_tables):
        return DENY, Why.DENIED
    if any(matches(h, tdb, table) for h in p.hidden_tables):
        return DENY, Why.HIDDEN
    if action == A.ALTER_TABLE and any(matches((m[0], m[1], None), tdb, table) for m in p.all_masks):
        return DENY, Why.SCHEMA  # renaming the table or the column would lift the mask
    if any(ieq(table, t) for t in p.free_tables):
        return OK, Why.NONE
    if (p.allow_tables is not None and not ieq(tdb, "temp")
            and not any(matches(w, tdb, table) for w in p.allow_tables)):
        return DENY, Why.NOT_ALLOWED
    if action == A.READ and any(matches(m, tdb, table, a2) for m in p.all_masks):
        return IGNORE, Why.NONE
    return OK, Why.NONE


def table_refusal(p, db, table) -> str | None:
    """Why policy ``p`` forbids opening a table's b-trees (None: it does not)."""
    if any(matches(d, db, table) for d in p.deny_tables):
        return "deny_tables"
    if any(ieq(table, t) for t in p.free_tables):
        return None
    if p.allow_tables is not None and not any(matches(w, db, table) for w in p.allow_tables):
        return "not allow_tables"
    return None


# --- what the schema adds to the rules ------------------------------------------------
def shadow_tables(tables) -> tuple[tuple, dict]:
    """From ``PRAGMA table_list`` rows ``(schema, name, type, ...)``: the shadow tables as
    patterns, and ``{(schema, shadow table): its virtual table}``."""
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
    return tuple(shadow), owner


def with_shadow_tables(patterns, owner) -> tuple:
    """``patterns`` plus, for each virtual table they name, its shadow tables."""
    out = list(patterns)
    for (db, name), vt in owner.items():
        for pdb, ptable, _ in patterns:
            if ieq(ptable, vt) and (pdb is None or ieq(pdb, db)):
                out.append((pdb, name, None))
    return tuple(dict.fromkeys(out))


def implied_masks(mask_columns, tables, columns) -> tuple:
    """The masks the schema implies (``Policy.bind_schema`` documents them and what is refused).

    ``tables``: ``PRAGMA table_list`` rows; ``columns``: ``{(schema, table): (sql, table_xinfo rows)}``.
    """
    wr = {(r[0], r[1].lower()): r[4] for r in tables if len(r) > 4}  # table_list's ``wr`` (3.37+)
    extra = []
    for (db, table), (sql, xinfo) in (columns or {}).items():
        pats = [m for m in mask_columns if matches((m[0], m[1], None), db, table)]
        if not pats:
            continue
        masked = [r for r in xinfo if any(ieq(m[2], r[1]) for m in pats)]
        if _sql.words(sql, 2) == ["CREATE", "VIRTUAL"]:
            module = vtab_module(sql)
            if module.startswith("fts") and masked:
                raise ValueError(
                    f"mask_columns: {table}.{masked[0][1]} is a column of a full-text ({module}) table, "
                    "whose index answers MATCH, highlight() and snippet() about it whatever a mask "
                    "says: deny the table instead")
            if module.startswith(("rtree", "geopoly")) and any(r[0] == 0 for r in masked):
                extra.append((db, table, "ROWID"))  # its id is its rowid
            continue
        pks = [r for r in xinfo if r[5]]
        key = (db, table.lower())
        without_rowid = bool(wr[key]) if key in wr else declares_without_rowid(sql)
        if (len(pks) == 1 and not without_rowid and (pks[0][2] or "").upper() == "INTEGER"
                and any(r[0] == pks[0][0] for r in masked)):
            raise ValueError(
                f"mask_columns: {table}.{pks[0][1]} is the table's INTEGER PRIMARY KEY (its rowid); "
                "it cannot be masked (every join by rowid compares it): deny the table instead")
        extra += [(db, table, r[1]) for r in xinfo if len(r) > 6 and r[6] in (2, 3)]
    return tuple(dict.fromkeys(extra))


# --- the schema's text, read only where the core has no answer (sqlnb._sql's tokens) ----
def vtab_module(sql: str | None) -> str:
    """``'fts5'`` for ``CREATE VIRTUAL TABLE d USING FTS5(...)`` (lower-cased; ``''``: none)."""
    toks = list(_sql.tokens(sql))
    for i, tok in enumerate(toks[:-1]):
        if tok.depth == 0 and tok.upper == "USING":
            return (toks[i + 1].name or "").lower()
    return ""


def declares_without_rowid(sql: str | None) -> bool:
    """Whether a ``CREATE TABLE`` text ends its column list with ``WITHOUT ROWID`` (for cores
    without ``PRAGMA table_list``: the 3.7 core has no WITHOUT ROWID tables at all)."""
    toks = list(_sql.tokens(sql))
    return any(toks[i - 1].text == ")" and toks[i].depth == 0 and toks[i].upper == "WITHOUT"
               and toks[i + 1].upper == "ROWID" for i in range(1, len(toks) - 1))
