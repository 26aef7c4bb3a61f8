"""What a parallel fetch may split: a plain scan of one rowid table, on a connection whose
state fresh read connections can share; anything else is refused (:class:`ParallelRefused`).

:func:`check` returns the :class:`Scan` to read (the statement of one rowid range, the
statement of the table's rowid bounds, the result's names and declared types) or raises
the refusal naming the reason. The query text is looked at through the one lexer
(``sqlnb._sql``); what it means is SQLite's to say: its query plan must be one scan of
the table in rowid order and its bytecode must not combine rows.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlnb import _sql
from sqlnb._bind import is_mapping  # noqa: F401  (frames' modules take it from here)
from sqlnb.engines.protocol import rows as query_rows  # noqa: F401  (frames' modules take it from here)
from sqlnb import errors as _errors

# words that make a query more than "SELECT cols FROM table [WHERE ...]"
_NOT_PLAIN = frozenset("""DISTINCT GROUP ORDER LIMIT OFFSET HAVING WINDOW UNION INTERSECT EXCEPT JOIN NATURAL
    CROSS LEFT RIGHT FULL INNER OUTER USING INDEXED VALUES WITH RETURNING""".split())
# bytecode that works across rows (aggregates, sorting, DISTINCT, windows, LIMIT)
_CROSS_ROW_OPS = frozenset("""AggStep AggStep1 AggFinal AggValue AggInverse Count SorterOpen OpenEphemeral
    OpenAutoindex OpenDup DecrJumpZero IfPos""".split())

_REVERSE_SCANORDER = 1019  # sqlite3_db_config: PRAGMA reverse_unordered_selects


class ParallelRefused(_errors.ProgrammingError):
    """``parallel=`` was asked for a query or connection it cannot split safely (the message says why)."""


def refuse(why):
    raise ParallelRefused(f"parallel fetch refused: {why}. Run it without parallel=.")


@dataclass
class Scan:
    """A query a parallel fetch can split, and what the workers run."""

    sql: str  # the user's query
    part_sql: str  # the query for one inclusive rowid range (two more parameters)
    bounds_sql: str  # the table's lowest and highest rowid
    names: list  # the result's column names
    decltypes: list  # and declared types


def check(con, mod, sql, params, cap) -> Scan:
    """The :class:`Scan` of ``sql`` on ``con`` (``mod``: its engine's compiled module), or
    the refusal: an engine without parallel fetch, ``limit``/``max_rows``, an in-memory
    database, an open transaction, state the workers could not share, a query that is
    not a plain scan of one rowid table in rowid order."""
    raw = con._raw
    if not con.backend.has("parallel_fetch"):
        refuse(f"the {con.engine!r} engine cannot step several connections at once "
               f"({con.backend.lacks('parallel_fetch')})")
    if cap is not None:
        refuse("limit/max_rows cannot be combined with parallel")
    fname = str(raw.filename)
    if fname in ("", ":memory:") or "mode=memory" in fname or (fname.startswith("file:") and ":memory:" in fname):
        refuse("an in-memory database cannot be opened by other connections")
    if not raw.autocommit:
        refuse("a transaction is open on this connection (other connections would not see its changes)")
    refuse_unshared_state(raw, mod)
    head, table, ref, where = plain_scan_parts(sql)
    plan = query_rows(raw, "EXPLAIN QUERY PLAN " + sql)
    if len(plan) != 1 or not _reads_in_rowid_order(str(plan[0][-1])):
        refuse("SQLite's plan for it is not one full scan of a table in rowid order "
               f"(plan: {'; '.join(str(r[-1]) for r in plan)})")
    ops = {r[1] for r in query_rows(raw, "EXPLAIN " + sql)} & _CROSS_ROW_OPS
    if ops:
        refuse(f"the query combines rows (aggregate, DISTINCT, ORDER BY, window or LIMIT: {', '.join(sorted(ops))})")
    bounds_sql = _rowid_bounds_sql(table)
    try:
        query_rows(raw, bounds_sql)
    except _errors.Error as exc:
        refuse(f"table {table} has no rowid to split by ({exc})")
    st0 = None
    try:
        st0, _ = con._prepare(sql.encode("utf-8", "surrogateescape"), 0)
        names, decl = st0.column_names(), st0.decltypes()
    finally:
        if st0 is not None:
            st0.finalize()
    cond = (f"{ref}._rowid_ BETWEEN :__sqlnb_lo AND :__sqlnb_hi" if is_mapping(params)
            else f"{ref}._rowid_ BETWEEN ? AND ?")
    part_sql = f"{head} WHERE ({where}\n) AND {cond}" if where is not None else f"{head} WHERE {cond}"
    plan = query_rows(raw, "EXPLAIN QUERY PLAN " + part_sql)
    if len(plan) != 1 or "USING INTEGER PRIMARY KEY" not in str(plan[0][-1]):
        refuse(f"a rowid range of {table} is not read in rowid order (plan: {plan[0][-1] if plan else '?'})")
    return Scan(sql, part_sql, bounds_sql, names, decl)


def _reads_in_rowid_order(detail: str) -> bool:
    """SQLite's plan line for one full scan of a table (``SCAN t``) or a search of it by
    rowid (``SEARCH t USING INTEGER PRIMARY KEY (rowid>?)``)."""
    if detail.startswith("SCAN "):
        name = detail[5:]
        return bool(name) and name.split() == [name]
    if detail.startswith("SEARCH "):
        name, _, rest = detail[7:].partition(" ")
        return (bool(name) and name.split() == [name] and rest.startswith("USING INTEGER PRIMARY KEY (")
                and rest.endswith(")") and "\n" not in rest)
    return False


def plain_scan_parts(sql):
    """Split ``SELECT cols FROM table [[AS] alias] [WHERE expr]`` -> (head, table, ref, where)
    or refuse: ``head`` is the text before WHERE, ``ref`` the name the columns are qualified
    by (the alias, else the table), ``where`` the condition's text (None without one)."""
    toks = list(_sql.tokens(sql))
    while toks and toks[-1].text == ";":
        toks.pop()
    if not toks or toks[0].upper != "SELECT":
        refuse("only a single plain 'SELECT columns FROM table [WHERE ...]' can be split")
    i_from, i_where = None, None
    for i, tok in enumerate(toks):
        if tok.depth:
            continue
        if tok.kind == "word":
            up = tok.upper
            if up in _NOT_PLAIN:
                refuse(f"the query uses {up} (only plain table scans can be split by rowid)")
            if up == "FROM" and i_from is None:
                i_from = i
            elif up == "WHERE" and i_from is not None and i_where is None:
                i_where = i
        elif tok.text == ";":
            refuse("only one statement can be fetched in parallel")
        elif tok.text == "," and i_from is not None and i_where is None:
            refuse("the query reads more than one table")
    if i_from is None or i_from + 1 >= len(toks):
        refuse("the query reads no table")
    src = [(t.kind, t.text) for t in toks[i_from + 1:i_where if i_where is not None else len(toks)]]
    if len(src) >= 3 and src[1][1] == ".":  # schema.table
        src = [(src[0][0], src[0][1] + "." + src[2][1])] + src[3:]
    if not src or src[0][0] not in ("word", "ident"):
        refuse("the FROM clause is not a single table")
    table = src[0][1]
    rest = src[1:]
    if rest and rest[0][0] == "word" and rest[0][1].upper() == "AS":
        rest = rest[1:]
    if len(rest) > 1 or (rest and rest[0][0] not in ("word", "ident")):
        refuse("the FROM clause is not a single table")
    ref = rest[0][1] if rest else table
    end = toks[-1].start + len(toks[-1].text)
    if i_where is None:
        return sql[:end], table, ref, None
    return sql[:toks[i_where].start], table, ref, sql[toks[i_where].start + len("WHERE"):end]


def _rowid_bounds_sql(table):
    # two subqueries: SQLite answers a lone min() or max() of the rowid from the b-tree's ends,
    # but min() and max() in one SELECT would scan the whole table
    return f"SELECT (SELECT min(_rowid_) FROM {table}), (SELECT max(_rowid_) FROM {table})"


def refuse_unshared_state(raw, mod):
    """Refuse what the workers (fresh connections to the same file) could not share.

    Copied instead (``sqlnb.frames.workers.share_settings``): the sqlite3_db_config
    switches that change what a statement means, the limits and the policy. Refused:
    attached databases and TEMP objects (the workers would not see them, or would read
    main's table of the same name), ``case_sensitive_like`` (it replaces LIKE on this
    connection only), ``reverse_unordered_selects`` (the rows' order) and a connection
    that may load extensions (they can add or replace functions and collations; sqlnb
    itself adds none).
    """
    attached = mod.database_names(raw)[2:]  # 0 is main, 1 temp
    if attached:
        refuse(f"this connection has attached databases ({', '.join(attached)}) "
               "that the extra read connections would not have")
    if query_rows(raw, "SELECT 1 FROM temp.sqlite_master LIMIT 1"):
        refuse("this connection has TEMP tables, views, indexes or triggers that the extra "
               "read connections would not see")
    if query_rows(raw, "SELECT 'a' LIKE 'A'")[0][0] != 1:
        refuse("PRAGMA case_sensitive_like is on for this connection only (the extra read "
               "connections would compare with LIKE differently)")
    if mod.db_config_flag(raw, _REVERSE_SCANORDER):
        refuse("PRAGMA reverse_unordered_selects is on (the rows would come in another order)")
    policy = getattr(raw, "policy", None)
    if policy is not None and policy.allow_load_extension:
        refuse("this connection may load extensions (allow_load_extension=True), which can add "
               "or replace functions and collations that the extra read connections would not have")
