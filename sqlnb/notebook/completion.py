"""Completion of table, column and keyword names inside ``%%sql`` cells and after ``%sql``.

An IPython matcher (Matcher API v2, appended to ``shell.Completer.custom_matchers``)
that answers only when the cursor is in SQL: the body of a ``%%sql`` cell, or
the text after ``%sql`` on a line. It completes, for the current connection:

* ``schema.`` -> that database's tables (``main``, ``temp``, attached ones);
* ``table.`` or ``alias.`` (``FROM flights f``) -> that table's columns;
* a bare word -> tables and views of every database, the columns of the
  tables named in the cell (of all tables when none is named), SQL keywords.

The schema is read from ``sqlite_master`` and ``PRAGMA table_info`` and cached
until ``sqlite_master`` changes.
"""
from __future__ import annotations

import re

from sqlnb import _sql
from sqlnb import errors as _errors
from sqlnb.notebook import explore
from sqlnb.notebook import functions as _functions

KEYWORDS = (
    "ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN "
    "BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS "
    "CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE DEFERRED DELETE "
    "DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL "
    "FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP GROUPS HAVING IF IGNORE "
    "IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS ISNULL JOIN KEY LAST "
    "LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF OFFSET ON OR "
    "ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE RECURSIVE "
    "REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS "
    "SAVEPOINT SELECT SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE "
    "UPDATE USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT"
).split()

FUNCTIONS = (
    "abs avg changes char coalesce count cume_dist date datetime dense_rank first_value format "
    "group_concat hex ifnull iif instr json json_array json_each json_extract json_group_array "
    "json_group_object json_object json_tree julianday lag last_value lead length lower ltrim max "
    "min nth_value ntile nullif percent_rank printf quote random rank replace round row_number "
    "rtrim strftime string_agg substr sum time total trim typeof unicode upper"
).split()

_NOT_ALIAS = {k.lower() for k in KEYWORDS}
_REF_AFTER = frozenset(("FROM", "JOIN", "UPDATE", "INTO"))  # the words a table name follows
_MAGIC = re.compile(r"%sql\b")  # where the SQL starts on a %sql line (the magic's syntax, not SQL)


class SchemaCache:
    """Tables and columns of a connection, re-read when ``sqlite_master`` changes."""

    def __init__(self):
        self._key = None
        self._data = None

    def get(self, con):
        try:
            names = explore.table_names(con)
        except _errors.Error:
            return {}
        key = (id(con), tuple(names))
        if key != self._key:
            data = {}
            for schema, name, _, _ in names:
                try:
                    cols = [r[1] for r in explore.columns_of(con, schema, name)]
                except _errors.Error:
                    cols = []
                data[(schema, name)] = cols
            self._key, self._data = key, data
        return self._data


def sql_context(full_text: str, line: int, column: int) -> tuple[str, str] | None:
    """``(sql, text before the cursor)`` when the cursor is in SQL, else None."""
    lines = full_text.split("\n")
    if line >= len(lines):
        return None
    if lines[0].lstrip().startswith("%%sql") and line > 0:
        body = "\n".join(lines[1:])
        before = "\n".join(lines[1:line] + [lines[line][:column]])
        return body, before
    cur = lines[line]
    m = _MAGIC.search(cur)
    if m and not cur.lstrip().startswith("%%") and m.end() <= column:
        return cur[m.end():], cur[m.end():column]
    return None


def _end(tok) -> int:
    return tok.start + len(tok.text)


def _is_name(tok) -> bool:
    return tok.kind in ("word", "ident")


def word_before(before: str) -> tuple[str | None, str] | None:
    """``(qualifier, fragment)`` of the text before the cursor: the word being typed and the
    name before a ``.`` right in front of it (``f.dep_`` -> ``("f", "dep_")``; unquoted).

    None when the cursor is inside a string literal or a comment: nothing to complete there.
    """
    # what the next character typed would extend: a newline stays inside only a literal,
    # a quoted name or a comment
    last = None
    for last in _sql.tokens(before + "\n", space=True):
        pass
    if last is not None and last.kind in ("string", "blob", "comment"):
        return None
    if last is not None and last.kind == "ident":  # a quoted name still being typed
        name = last.text[1:].rstrip("\n")
        return (None, name) if name.isidentifier() else None
    toks = list(_sql.tokens(before))
    end = len(before)
    fragment = ""
    if toks and toks[-1].kind == "word" and _end(toks[-1]) == end:
        fragment, end = toks[-1].text, toks[-1].start
        toks.pop()
    if (len(toks) >= 2 and toks[-1].text == "." and _end(toks[-1]) == end
            and _is_name(toks[-2]) and _end(toks[-2]) == toks[-1].start):
        return toks[-2].name, fragment
    return None, fragment


def table_refs(sql: str) -> list[tuple[str, str | None]]:
    """``(table, alias)`` of every table named after FROM, JOIN, UPDATE or INTO (``s.t`` for a
    table qualified by its schema; alias None when it has none)."""
    toks = list(_sql.tokens(sql))
    out = []
    i = 0
    while i < len(toks):
        if toks[i].kind != "word" or toks[i].upper not in _REF_AFTER:
            i += 1
            continue
        i += 1
        while i < len(toks) and _is_name(toks[i]):  # FROM a [AS] x, b [AS] y ...
            name = toks[i].name
            i += 1
            if i + 1 < len(toks) and toks[i].text == "." and _is_name(toks[i + 1]):
                name, i = f"{name}.{toks[i + 1].name}", i + 2
            if i < len(toks) and toks[i].upper == "AS":
                i += 1
            alias = None
            if i < len(toks) and _is_name(toks[i]) and not (
                    toks[i].kind == "word" and toks[i].text.lower() in _NOT_ALIAS):
                alias, i = toks[i].name, i + 1
            out.append((name, alias))
            if i < len(toks) and toks[i].text == ",":
                i += 1
                continue
            break
    return out


def candidates(schema: dict, sql: str, before: str) -> tuple[str, list[tuple[str, str]]]:
    """``(fragment, [(completion, type)])`` for the text ``before`` the cursor."""
    word = word_before(before)
    if word is None:
        return "", []
    qualifier, fragment = word
    low = fragment.lower()
    schemas = {s for s, _ in schema}
    refs = table_refs(sql)
    out: list[tuple[str, str]] = []
    if qualifier is not None:
        if qualifier in schemas:
            out = [(t, "table") for s, t in schema if s == qualifier]
        else:
            table = _resolve(schema, refs, qualifier)
            if table is not None:
                out = [(c, "column") for c in schema[table]]
        return fragment, [(c, t) for c, t in out if c.lower().startswith(low)]
    seen = set()
    for (_, t) in schema:
        if t not in seen:
            seen.add(t)
            out.append((t, "table"))
    keys = [_resolve(schema, refs, name) for name, _ in refs]
    keys = [k for k in keys if k is not None] or list(schema)
    for key in keys:
        for c in schema[key]:
            if c not in seen:
                seen.add(c)
                out.append((c, "column"))
    upper = fragment[:1].isupper() or not fragment
    for k in KEYWORDS:
        out.append((k if upper else k.lower(), "keyword"))
    for f in FUNCTIONS + _functions.names():   # (and the notebook's registered Python functions)
        out.append((f, "function"))
    if not fragment:
        return fragment, [(c, t) for c, t in out if t != "keyword"]
    return fragment, [(c, t) for c, t in out if c.lower().startswith(low) and c != fragment]


def _resolve(schema: dict, refs: list, name: str):
    """The (schema, table) key a table name (``t``, ``s.t``) or an alias of ``refs`` refers to."""
    if "." in name:
        s, t = name.split(".", 1)
        for key in schema:
            if key[0] == s and key[1].lower() == t.lower():
                return key
    for key in schema:
        if key[1].lower() == name.lower():
            return key
    for table, alias in refs:
        if alias and alias.lower() == name.lower():
            return _resolve(schema, [], table)
    return None


_MAGIC_LINE = re.compile(r"\s*%%?sql(?=\s|$)")  # a %sql / %%sql line (the magic's syntax, not SQL)


def option_fragment(full_text: str, line: int, column: int, split) -> str | None:
    """The option being typed (``--con``) when the cursor is in the options of a ``%sql`` or
    ``%%sql`` line, else None. ``split`` is the magic's ``split_line``."""
    lines = full_text.split("\n")
    if line >= len(lines):
        return None
    cur = lines[line][:column]
    m = _MAGIC_LINE.match(cur)
    if m is None or (cur.lstrip().startswith("%%") and line != 0):
        return None
    args = cur[m.end():]
    fragment = args.split()[-1] if args and not args[-1].isspace() else ""
    if not fragment.startswith("-"):
        return None
    before = args[:len(args) - len(fragment)]
    _, rest = split(before)
    return None if rest.strip() else fragment


def make_matcher(get_connection, enabled=lambda: True, options=(), split=None, extra_tables=None):
    """An IPython Matcher API v2 function completing SQL for ``get_connection()``.

    ``options``/``split``: the magic's option strings and its ``split_line`` (``%sql --con``
    completes options); ``extra_tables()``: more names to complete as tables (saved queries).
    """
    from IPython.core.completer import SimpleCompletion, completion_matcher

    cache = SchemaCache()

    @completion_matcher(identifier="sqlnb", priority=100, api_version=2)
    def sqlnb_matcher(context):
        empty = {"completions": [], "suppress": False}
        if not enabled():
            return empty
        if split is not None:
            opt = option_fragment(context.full_text, context.cursor_line, context.cursor_position, split)
            if opt is not None:
                found = [o for o in options if o.startswith(opt) and o != opt]
                return {"completions": [SimpleCompletion(text=o, type="option") for o in found],
                        "matched_fragment": opt, "suppress": True}
        where = sql_context(context.full_text, context.cursor_line, context.cursor_position)
        if where is None:
            return empty
        try:
            con = get_connection()
        except _errors.Error:
            return empty
        sql, before = where
        schema = cache.get(con)
        if extra_tables is not None:
            schema = {**{("", name): [] for name in extra_tables()}, **schema}
        fragment, found = candidates(schema, sql, before)
        return {"completions": [SimpleCompletion(text=c, type=t) for c, t in found],
                "matched_fragment": fragment, "suppress": True}  # SQL: no Python names

    return sqlnb_matcher


def install(shell, magics, options=(), split=None, extra_tables=None):
    """Register the matcher on ``shell``'s completer (once)."""
    completer = getattr(shell, "Completer", None)
    if completer is None:
        return
    uninstall(shell)
    matcher = make_matcher(lambda: magics.session.get(), lambda: magics.autocomplete,
                           options=options, split=split, extra_tables=extra_tables)
    completer.custom_matchers.append(matcher)


def uninstall(shell):
    completer = getattr(shell, "Completer", None)
    if completer is None:
        return
    completer.custom_matchers[:] = [m for m in completer.custom_matchers
                                    if getattr(m, "matcher_identifier", None) != "sqlnb"]
