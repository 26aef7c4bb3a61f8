"""What a profile or a plot reads: a table, a view or a query, as SQL to put in ``FROM (...)``.

Pure functions over a Connection-like object (``execute()`` returning a PEP 249
cursor). Names are found in ``sqlite_master`` of every attached schema and
always quoted with :func:`sqlnb._sql.quote_identifier`; a query is used as it
is, as a subquery.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlnb import _sql
from sqlnb import errors as _errors

#: first keywords that make ``table_or_sql`` a query rather than a name
QUERY_WORDS = frozenset(("SELECT", "WITH", "VALUES"))
NUMERIC = ("integer", "real")


@dataclass(frozen=True)
class Source:
    """A table or query to read: ``sql`` goes in ``FROM (sql) AS s``."""

    sql: str  # a SELECT over the whole source (with LIMIT n when sampled)
    label: str  # what the user named: the table, or "query"
    columns: tuple  # column names, in order
    types: tuple  # declared types ('' when none is known)
    sample: int | None = None  # the first ``sample`` rows only
    table: str | None = None  # the quoted ``schema.table`` when the source is a table or view

    def select(self, names=None) -> str:
        """SQL for ``FROM (...) AS s`` reading only columns ``names`` (all when None): a table's
        columns are named, so SQLite does not expand ``*`` over a wide table per statement."""
        if self.table is None or names is None:
            return self.sql
        cols = ", ".join(_sql.quote_identifier(n) for n in names)
        limit = f" LIMIT {int(self.sample)}" if self.sample is not None else ""
        return f"SELECT {cols} FROM {self.table}{limit}"

    def column(self, name: str) -> str:
        """``s."name"`` for column ``name``; ProgrammingError naming it when the source has no such column."""
        if name not in self.columns:
            raise _errors.ProgrammingError(
                f"no column named {name!r} in {self.label} (columns: {', '.join(self.columns) or 'none'})")
        return "s." + _sql.quote_identifier(name)


def _rows(con, sql, params=None, types=None):
    cur = con.execute(sql, params) if params is not None else con.execute(sql)
    try:
        if types is not None:  # the declared types SQLite reports for a query's columns (None: unknown)
            types.extend(d[1] for d in cur.description or ())
        return cur.fetchall(), [d[0] for d in cur.description or ()]
    finally:
        cur.close()


def _schemas(con) -> list[str]:
    rows, _ = _rows(con, "PRAGMA database_list")
    return [r[1] for r in rows]


def _master(schema: str) -> str:
    return "sqlite_temp_master" if schema == "temp" else f"{_sql.quote_identifier(schema)}.sqlite_master"


def find_table(con, name: str) -> tuple[str, str]:
    """``(schema, table)`` of table or view ``name`` (``aux.t`` qualifies it by a schema), as SQLite
    resolves an unqualified name: main, temp, then attached; ProgrammingError if none has it."""
    schemas = _schemas(con)
    tries = [(s, name) for s in schemas]
    if "." in name:
        schema, rest = name.split(".", 1)
        if schema in schemas:
            tries.insert(0, (schema, rest))
    for schema, table in tries:
        try:
            rows, _ = _rows(con, f"SELECT name FROM {_master(schema)} WHERE type IN ('table', 'view') "
                                 "AND name = ? COLLATE NOCASE", (table,))
        except _errors.Error:
            continue
        if rows:
            return schema, rows[0][0]
    raise _errors.ProgrammingError(f"no table or view named {name!r}")


def resolve(con, table_or_sql: str, sample: int | None = None) -> Source:
    """The :class:`Source` of a table or view name, or of a query (``SELECT``/``WITH``/``VALUES``)."""
    if not isinstance(table_or_sql, str) or not table_or_sql.strip():
        raise _errors.ProgrammingError(
            f"expected a table or view name or a SELECT query, got {table_or_sql!r}")
    if sample is not None:
        if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
            raise _errors.ProgrammingError(f"sample must be a positive number of rows, got {sample!r}")
    text = table_or_sql.strip()
    if _sql.first_keyword(text) in QUERY_WORDS:
        body = text.rstrip().rstrip(";")
        label = "the query"
        types = None
        qualified = None
    else:
        schema, table = find_table(con, text)
        qualified = f"{_sql.quote_identifier(schema)}.{_sql.quote_identifier(table)}"
        body = f"SELECT * FROM {qualified}"
        label = table
        info, _ = _rows(con, f"PRAGMA {_sql.quote_identifier(schema)}.table_info({_sql.quote_identifier(table)})")
        types = {r[1]: r[2] or "" for r in info}
    declared: list = []
    _, names = _rows(con, f"SELECT * FROM ({body}) LIMIT 0", types=declared)
    if types is None:
        types = {n: t or "" for n, t in zip(names, declared) if isinstance(t, str)}
    seen = set()
    for n in names:
        if n in seen:
            raise _errors.ProgrammingError(
                f"column name {n!r} appears twice in {label}: give each column its own name (AS ...)")
        seen.add(n)
    if sample is not None:
        body = f"SELECT * FROM ({body}) LIMIT {int(sample)}"
    return Source(sql=body, label=label, columns=tuple(names),
                  types=tuple((types or {}).get(n, "") for n in names), sample=sample, table=qualified)


def count_rows(con, src: Source) -> int:
    rows, _ = _rows(con, f"SELECT count(*) FROM ({src.sql})")
    return int(rows[0][0])
