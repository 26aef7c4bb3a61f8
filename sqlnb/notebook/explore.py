"""Exploring a connection: tables and views, one table's columns and indexes, query plans.

Plain functions over an ``sqlnb.Connection`` (every attached database
included). They read ``sqlite_master`` and the read-only ``PRAGMA`` forms,
so they work under the read-only modes and on the old bdb core.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd

from sqlnb import _sql, lsm
from sqlnb import errors as _errors
from sqlnb.notebook import cell as _cell
from sqlnb.notebook import display


def _rows(con, sql, params=None):
    cur = con.cursor()
    try:
        cur.execute(sql, params)
        names = [d[0] for d in cur.description] if cur.description else []
        return names, cur.fetchall()
    finally:
        cur.close()


def schemas(con) -> list[tuple[str, str]]:
    """``(schema, file)`` of main, temp (when used) and every attached database."""
    _, rows = _rows(con, "PRAGMA database_list")
    return [(r[1], r[2] or "") for r in rows]


def _master(schema: str) -> str:
    return "sqlite_temp_master" if schema == "temp" else f"{_sql.quote_identifier(schema)}.sqlite_master"


def table_names(con) -> list[tuple[str, str, str, str]]:
    """``(schema, name, type, sql)`` of every table and view (internal ``sqlite_`` ones left out).

    An error reading a schema (a database locked by another process, a file that is not a
    database) is raised as the engine's own error, as a ``SELECT`` gets it: an empty listing
    would say there are no tables.
    """
    out = []
    for schema, _ in schemas(con):
        _, rows = _rows(con, f"SELECT type, name, sql FROM {_master(schema)} "
                             "WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                             "ORDER BY name")
        out.extend((schema, r[1], r[0], r[2] or "") for r in rows)
    return out


def columns_of(con, schema: str, table: str) -> list[tuple]:
    """``PRAGMA table_info`` rows (cid, name, type, notnull, dflt_value, pk)."""
    _, rows = _rows(con, f"PRAGMA {_sql.quote_identifier(schema)}.table_info({_sql.quote_identifier(table)})")
    return rows


def virtual_module(sql: str) -> str | None:
    """The module of a ``CREATE VIRTUAL TABLE`` statement (``... USING fts5(...)`` -> ``fts5``;
    ``""`` when it names none); None for any other statement."""
    if _sql.words(sql, 2) != ["CREATE", "VIRTUAL"]:
        return None
    toks = _sql.tokens(sql)
    for tok in toks:
        if tok.depth == 0 and tok.upper == "USING":
            name = next(toks, None)
            return (name.name or "") if name is not None else ""
    return ""


def _lsm_details(con) -> dict:
    try:
        return {(d["schema"], d["name"]): d for d in lsm.lsm_tables(con)}
    except Exception:  # noqa: BLE001 - details are extra; the listing must still show
        return {}


def tables(con):
    """Every table and view of every attached database, as a displayable result.

    Columns: schema, name, type (table, view, virtual), module (of a virtual
    table), columns (count), and for lsm1 tables file, key, key_type, values.
    """
    lsm_found = _lsm_details(con)
    rows = []
    for schema, name, kind, sql in table_names(con):
        module = virtual_module(sql) if kind == "table" else None
        if module is None:
            module = ""
        else:
            kind = "virtual"
        try:
            ncols = len(columns_of(con, schema, name))
        except _errors.Error:
            ncols = None
        row = {"schema": schema, "name": name, "type": kind, "module": module, "columns": ncols}
        d = lsm_found.get((schema, name))
        if d is not None:
            row.update(module=module or "lsm1", file=d.get("file"), key=d.get("key"),
                       key_type=d.get("key_type"), values=", ".join(map(str, d.get("values") or ())))
        rows.append(row)
    cols = ["schema", "name", "type", "module", "columns"]
    if lsm_found:
        cols += ["file", "key", "key_type", "values"]
    df = pd.DataFrame(rows, columns=cols)
    return display.wrap(df, None)


def _split_name(con, name: str) -> tuple[str | None, str]:
    if "." in name:
        schema, table = name.split(".", 1)
        if schema in {s for s, _ in schemas(con)}:
            return schema, table
    return None, name


@dataclass
class Description:
    """One table's (or view's) columns, indexes and foreign keys."""

    schema: str
    name: str
    type: str
    sql: str
    columns: pd.DataFrame
    indexes: pd.DataFrame
    foreign_keys: pd.DataFrame = field(default_factory=pd.DataFrame)

    def _repr_html_(self):
        parts = [f"<div class='sqlnb-result'><b>{html.escape(self.type)} "
                 f"{html.escape(self.schema)}.{html.escape(self.name)}</b>",
                 display.table_html(self.columns)]
        if len(self.indexes):
            parts += ["<b>indexes</b>", display.table_html(self.indexes)]
        if len(self.foreign_keys):
            parts += ["<b>foreign keys</b>", display.table_html(self.foreign_keys)]
        parts.append("</div>")
        return "".join(parts)

    def __repr__(self):
        out = [f"{self.type} {self.schema}.{self.name}", self.columns.to_string(index=False)]
        if len(self.indexes):
            out += ["indexes:", self.indexes.to_string(index=False)]
        if len(self.foreign_keys):
            out += ["foreign keys:", self.foreign_keys.to_string(index=False)]
        return "\n".join(out)


def describe(con, name: str) -> Description:
    """Columns (name, type, notnull, default, pk), indexes and foreign keys of table or view ``name``.

    ``name`` may be qualified by a schema (``aux.t``); otherwise the first
    schema that has it wins (main, temp, then attached ones, as SQLite resolves).
    """
    schema, table = _split_name(con, name)
    candidates = [schema] if schema else [s for s, _ in schemas(con)]
    found = None
    for s in candidates:
        _, rows = _rows(con, f"SELECT type, sql FROM {_master(s)} WHERE name = ? COLLATE NOCASE", (table,))
        if rows:
            found = (s, rows[0][0], rows[0][1] or "")
            break
    if found is None:
        where = f" in schema {schema!r}" if schema else ""
        raise _errors.ProgrammingError(f"no table or view named {table!r}{where}")
    s, kind, sql = found
    if kind == "table" and virtual_module(sql) is not None:
        kind = "virtual table"
    cols = pd.DataFrame(columns_of(con, s, table),
                        columns=["cid", "name", "type", "notnull", "default", "pk"])
    idx_rows = []
    try:
        _, ilist = _rows(con, f"PRAGMA {_sql.quote_identifier(s)}.index_list({_sql.quote_identifier(table)})")
    except _errors.Error:
        ilist = []
    for r in ilist:
        iname, unique = r[1], r[2]
        origin = r[3] if len(r) > 3 else ""
        _, info = _rows(con, f"PRAGMA {_sql.quote_identifier(s)}.index_info({_sql.quote_identifier(iname)})")
        idx_rows.append({"name": iname, "unique": bool(unique), "origin": origin,
                         "columns": ", ".join(str(i[2]) for i in sorted(info))})
    indexes = pd.DataFrame(idx_rows, columns=["name", "unique", "origin", "columns"])
    try:
        names, fk = _rows(con, f"PRAGMA {_sql.quote_identifier(s)}.foreign_key_list({_sql.quote_identifier(table)})")
        fks = pd.DataFrame(fk, columns=names)
    except _errors.Error:
        fks = pd.DataFrame()
    return Description(s, table, kind, sql, cols, indexes, fks)


# --- EXPLAIN QUERY PLAN as a tree ----------------------------------------------------------
@dataclass
class QueryPlan:
    """The EXPLAIN QUERY PLAN of each statement, as rows and as an indented tree."""

    statements: list  # [(sql, column names, rows)]

    def trees(self) -> list[str]:
        return [plan_tree(rows, names) for _, names, rows in self.statements]

    def __repr__(self):
        out = []
        for (sql, _, _), tree in zip(self.statements, self.trees()):
            if len(self.statements) > 1:
                out.append(f"-- {' '.join(sql.split())[:80]}")
            out.append(tree)
        return "\n".join(out)

    def _repr_html_(self):
        return f"<pre class='sqlnb-plan'>{html.escape(repr(self))}</pre>"


def plan_tree(rows, names=("id", "parent", "notused", "detail")) -> str:
    """Render EXPLAIN QUERY PLAN rows as the SQLite shell does (``|--``/`` `--`` branches).

    Rows are ``(id, parent, notused, detail)`` (SQLite >= 3.24, a tree) or the
    older ``(selectid, order, from, detail)`` (bdb's 3.7 core), indented by
    ``selectid``.
    """
    lines = ["QUERY PLAN"]
    if list(names[:2]) == ["id", "parent"]:
        children: dict = {}
        for r in rows:
            children.setdefault(r[1], []).append(r)

        def walk(parent, prefix):
            kids = children.get(parent, [])
            for k, r in enumerate(kids):
                last = k == len(kids) - 1
                lines.append(f"{prefix}{'`--' if last else '|--'}{r[3]}")
                walk(r[0], prefix + ("   " if last else "|  "))

        walk(0, "")
        return "\n".join(lines)
    for k, r in enumerate(rows):
        last = k == len(rows) - 1
        lines.append(f"{'   ' * int(r[0] or 0)}{'`--' if last else '|--'}{r[-1]}")
    return "\n".join(lines)


def plan(con, sql: str, namespace) -> QueryPlan:
    """EXPLAIN QUERY PLAN of every statement of ``sql`` (parameters bound from ``namespace``)."""
    out = []
    texts = []
    for st, start, end in con.statements(sql):
        st.finalize()
        texts.append(sql[_cell.statement_start(sql, start, end):end].strip())
    for i, text in enumerate(texts, 1):
        cell = "EXPLAIN QUERY PLAN " + text
        for st, _, _ in con.statements(cell):
            try:
                st.bind(_cell.params_for(st, namespace, i))
                names = st.column_names()
                rows = st.fetchmany(1 << 30)
            finally:
                st.finalize()
            out.append((text, names, rows))
            break
    return QueryPlan(out)
