"""Refusal messages: what a policy's refusal says, and the exception that carries it.

SQLite answers a refused action with a bare ``not authorized``; the authorizer (the C
table or ``Policy.decide``) records the first refusal of the statement as
``(action, a1, a2, db, inner, why)``, and :func:`explain` turns that record into an
error naming the mode, the action and its object. :func:`verify_error` builds the
refusals of the program check. Classes come from the refusal's reason code (``Why``),
never from message text. The SQL text is read for messages only (``sqlnb._sql``).
"""
from __future__ import annotations

from itertools import islice

from sqlnb import _sql, errors as _errors
from sqlnb._consts import AuthAction as A, Why
from sqlnb.authorizer.rules import TABLE_IN_A1, TABLE_IN_A2, TEMP_OK, WRITES


def action_name(code: int) -> str:
    """``AuthAction.CREATE_TEMP_TABLE`` -> ``'CREATE TEMP TABLE'`` (unknown codes: ``'action 42'``)."""
    try:
        name = A(code).name
    except ValueError:
        return f"action {code}"
    return {"CREATE_VTABLE": "CREATE VIRTUAL TABLE", "DROP_VTABLE": "DROP VIRTUAL TABLE"}.get(
        name, name.replace("_", " "))


def fmt_name(pattern) -> str:
    """``(None, 'users', 'email')`` -> ``'users.email'``."""
    return ".".join(x for x in pattern if x is not None)


def _q(db, name) -> str:
    return f"{db}.{name}" if db else f"{name}"


_VIEWS_AND_REINDEX = (A.CREATE_VIEW, A.CREATE_TEMP_VIEW, A.DROP_VIEW, A.DROP_TEMP_VIEW, A.REINDEX)


def target(action, a1, a2, db) -> str:
    """The object of an action, as messages name it (``main.users.email``, ``'f.db'``, ``upper()``)."""
    if action in (A.READ, A.UPDATE):
        return _q(db, a1) + (f".{a2}" if a2 else "")
    if action == A.ALTER_TABLE:
        return _q(a1, a2)
    if action in TABLE_IN_A1 or action in TABLE_IN_A2 or action in _VIEWS_AND_REINDEX:
        return _q(db, a1)  # (an index or trigger: a1 is its name, a2 its table)
    if action == A.PRAGMA:
        return _q(db, a1) + (f" = {a2}" if a2 is not None else "")
    if action == A.ATTACH:
        return repr(a1 or "")
    if action == A.DETACH:
        return a1 or ""
    if action == A.FUNCTION:
        return f"{a2}()"
    return " ".join(x for x in (a1, a2) if x)


_SCHEMA_TABLES = ("sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema")
_DDL = {"CREATE", "DROP", "ALTER", "TEMP", "TEMPORARY", "TABLE", "INDEX", "VIEW", "TRIGGER", "UNIQUE",
        "VIRTUAL"}


def _ddl_words(sql: str, db: str | None = None) -> str:
    """``'CREATE TEMP TABLE on temp.t'`` for ``create temp table t(a)`` (for messages only)."""
    words, name, qual = [], None, None
    toks = list(islice(_sql.tokens(sql), 40))
    for i, tok in enumerate(toks):
        dot = i + 1 < len(toks) and toks[i + 1].text == "."
        if tok.kind == "word" and not dot and tok.upper in _DDL:
            words.append(tok.upper)
            continue
        if tok.kind == "word" and not dot and tok.upper in ("IF", "NOT", "EXISTS"):
            continue
        name = tok.name if tok.kind in ("word", "ident") else None
        if name is not None and dot and i + 2 < len(toks) and toks[i + 2].kind in ("word", "ident"):
            qual, name = name, toks[i + 2].name
        break
    if words and words[0] in ("CREATE", "DROP", "ALTER"):
        on = f" on {_q(qual or db, name)}" if name else ""
        return " ".join(words) + on
    return ""


def describe(action, a1, a2, db, sql=None) -> str:
    """``INSERT on main.flights``, ``PRAGMA main.user_version = 5``, ``VACUUM INTO 'copy.db'``..."""
    name = action_name(action)
    what = target(action, a1, a2, db)
    if action == A.ATTACH and sql:
        if _sql.first_keyword(sql) == "VACUUM":  # VACUUM reaches the authorizer as an ATTACH
            return "VACUUM" + (f" INTO {what}" if a1 else "")
    if action in WRITES and (a1 or "").lower() in _SCHEMA_TABLES and sql:
        ddl = _ddl_words(sql, db)
        if ddl:  # CREATE/DROP start by writing the schema table: name the statement
            return ddl
        if _sql.first_keyword(sql) == "ANALYZE":
            return f"ANALYZE (it writes {what})"
    if action == A.PRAGMA:
        return f"PRAGMA {what}"
    if action == A.FUNCTION:
        return what
    if action in TABLE_IN_A2 and action != A.ALTER_TABLE and a2:
        return f"{name} on {what} (table {a2})"
    if action == A.ATTACH:
        return f"ATTACH of {what}"
    if action in (A.TRANSACTION, A.SAVEPOINT):
        return f"{name} {what}".strip()
    return f"{name} on {what}" if what else name


def _mode_says(mode: str, action, what: str, where: str, why) -> str:
    msg = f"mode {mode!r} refused {what}{where}"
    if why == Why.PRAGMA:
        msg += " (only the read-only PRAGMAs listed in docs/read-only.md, without assignment)"
    elif mode == "ro-scratch" and (action in TEMP_OK or action in WRITES):
        msg += " (ro-scratch allows writes and DDL only on the temp database)"
    return msg


_WHY_SAYS = {  # reason -> (class, what follows "policy refused <what><where>")
    Why.DENIED: (_errors.AccessDeniedError, ": the table is in deny_tables"),
    Why.NOT_ALLOWED: (_errors.AccessDeniedError, ": the table is not in allow_tables"),
    Why.ATTACH: (_errors.PolicyError, ": with deny_tables, allow_tables or mask_columns no database file "
                 "is attached, nor a computed name (the same file under another name would escape them)"),
    Why.HIDDEN: (_errors.AccessDeniedError,
                 ": it shows the pages, sizes or statistics of the tables a policy hides"),
}


def explain(mode: str, rec, exc):
    """The error for refusal record ``rec`` = ``(action, a1, a2, db, inner, why)`` of a policy
    in ``mode``, replacing SQLite's bare ``not authorized`` (``exc``)."""
    action, a1, a2, db, inner, why = rec
    sql = getattr(exc, "sql", None)
    what = describe(action, a1, a2, db, sql)
    where = f" (inside {inner})" if inner else ""
    if why in (Why.MODE, Why.PRAGMA, Why.FUNCTION):
        cls, msg = _errors.ReadOnlyError, _mode_says(mode, action, what, where, why)
    elif why == Why.LOADEXT and mode != "rw":
        cls = _errors.ReadOnlyError
        msg = f"mode {mode!r} refused {what}: extensions are never loaded in the read-only modes"
    elif why == Why.LOADEXT:
        cls = _errors.PolicyError
        msg = (f"mode {mode!r} refused {what}: extension loading is off; "
               "connect(..., allow_load_extension=True) enables it")
    elif why in _WHY_SAYS:
        cls, tail = _WHY_SAYS[why]
        msg = f"policy refused {what}{where}{tail}"
    elif why == Why.SCHEMA:
        cls = _errors.PolicyError
        msg = (f"policy refused {what}{where}: with deny_tables, allow_tables or mask_columns "
               "the schema cannot be rewritten (it would rename what the policy hides)"
               if action != A.ALTER_TABLE else
               f"policy refused {what}{where}: the table has a masked column (a rename or a new "
               "column computed from it would lift the mask)")
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
    better.mode = mode
    better.action = action_name(action)
    better.action_code = int(action)
    better.target = target(action, a1, a2, db)
    better.reason = Why(why).name.lower() if why in Why._value2member_map_ else str(why)
    return better


def verify_error(mode: str, sql: str, why: str, *, ro: bool = False, cls=None):
    """The program check's refusal of ``sql`` (``why``: what its program does); ``ro``: a
    refusal of the read-only mode itself (ReadOnlyError), else of a table policy (``cls``)."""
    kw = _sql.first_keyword(sql) or "statement"
    if ro:
        msg = f"mode {mode!r} refused {kw}: {why}"
        cls = _errors.ReadOnlyError
    else:
        msg = f"policy refused {kw}: {why}"
    exc = _errors.make_error(23, msg, cls=cls, sql=sql)
    exc.mode = mode
    exc.action = kw
    exc.action_code = -1
    exc.target = ""
    exc.reason = "verify"
    return exc
