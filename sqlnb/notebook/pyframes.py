"""Replacement scans in the magics: a name in the SQL that is no table but a frame in Python.

``%sql SELECT carrier, count(*) FROM flights JOIN my_df USING (carrier)``: ``my_df`` is no
table of the connection, but the notebook has a pandas DataFrame (or a pyarrow Table /
RecordBatch, or an object with the Arrow PyCapsule stream interface) called ``my_df``. For the
cell, :func:`serving` registers it (``Connection.register``: the frame's buffers read in place)
and drops it afterwards; :func:`footer` is the line saying which names came from Python.

Only names in a table position are looked at (after ``FROM`` / ``JOIN``, or after a comma in a
``FROM`` list), through sqlnb's one lexer; a table, view or registered frame of that name on the
connection wins over the Python variable, as a real table would in DuckDB.
"""
from __future__ import annotations

import contextlib

from sqlnb import _sql

_CLAUSES = frozenset(("SELECT", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "WINDOW",
                      "SET", "VALUES", "RETURNING", "UNION", "EXCEPT", "INTERSECT", "INTO", "BY"))


def table_names(sql: str) -> list[str]:
    """The names in table positions of ``sql`` (unquoted, in order, each once)."""
    out: list[str] = []
    state: dict[int, str] = {}      # depth -> "from" while inside a FROM list
    prev = None
    for tok in _sql.tokens(sql):
        up = tok.text.upper() if tok.kind == "word" else ""
        if tok.kind in ("word", "ident") and prev is not None and (
                prev.kind == "word" and prev.text.upper() in ("FROM", "JOIN")
                or prev.text == "," and state.get(tok.depth) == "from"):
            name = _sql.unquote(tok.text) if tok.kind == "ident" else tok.text
            if name not in out:
                out.append(name)
        if up in ("FROM", "JOIN"):
            state[tok.depth] = "from"
        elif up in _CLAUSES:
            state[tok.depth] = ""
        prev = tok
    return out


def is_frame(value) -> bool:
    """A pandas DataFrame, a pyarrow Table / RecordBatch, or an Arrow stream object."""
    mod = type(value).__module__.split(".")[0]
    if isinstance(value, type):
        return False
    if mod == "pandas":
        return type(value).__name__ == "DataFrame"
    if mod == "pyarrow":
        return type(value).__name__ in ("Table", "RecordBatch")
    return hasattr(value, "__arrow_c_stream__")


def _existing(con) -> set:
    """Lower-cased names of the tables and views of every schema of ``con``."""
    names: set = set()
    schemas = [r[1] for r in con.execute("PRAGMA database_list").fetchall()]
    for schema in schemas:
        master = "sqlite_temp_master" if schema.lower() == "temp" else "sqlite_master"
        for (n,) in con.execute(f"SELECT name FROM {_sql.quote_identifier(schema)}.{master} "
                                "WHERE type IN ('table', 'view')").fetchall():
            names.add(n.lower())
    return names


def candidates(con, sql: str, ns) -> dict:
    """``{name: frame}`` of the table names in ``sql`` that are no table of ``con`` but a frame in ``ns``."""
    wanted = {n: ns[n] for n in table_names(sql) if n in ns and is_frame(ns[n])}
    if not wanted:
        return {}
    have = _existing(con)
    return {n: v for n, v in wanted.items() if n.lower() not in have}


@contextlib.contextmanager
def serving(con, sql: str, ns):
    """Register the frames ``sql`` names (see :func:`candidates`) for the block; yields
    ``{name: frame}`` of those registered, unregistered again on the way out."""
    served = {}
    try:
        for name, frame in candidates(con, sql, ns).items():
            con.register(name, frame)
            served[name] = frame
        yield served
    finally:
        for name in served:
            if not con.closed:
                with contextlib.suppress(Exception):
                    con.unregister(name)


def _shape(frame) -> str:
    rows = getattr(frame, "num_rows", None)
    if rows is None:
        with contextlib.suppress(Exception):
            rows = len(frame)
    kind = f"{type(frame).__module__.split('.')[0]} {type(frame).__name__}"
    return f"{kind}, {rows:,} rows" if isinstance(rows, int) else kind


def footer(con, served: dict) -> str:
    """The line naming the frames a cell read from Python, and how the engine served them."""
    how = ("read in place" if con.backend.frames_served == "in place"
           else f"copied into TEMP tables (the {con.engine!r} engine has no frame virtual table)")
    names = ", ".join(f"{n} ({_shape(f)})" for n, f in served.items())
    return f"from Python: {names} · {how}"
