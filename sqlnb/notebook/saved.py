"""Saved queries: ``%%sql --save NAME`` keeps a query under a name; later SQL uses NAME as a table.

A statement that names saved queries is run with them as a ``WITH`` clause in front of it
(common table expressions), the ones they name first: ``SELECT * FROM late`` runs as
``WITH late AS (<the saved text>) SELECT * FROM late``. Why a CTE and not a ``TEMP VIEW``:
it writes nothing to any database (so it works in the ``ro`` mode, where even a temp view is
refused, and leaves no object behind on a connection), it follows the current connection
whichever it is, a saved query's ``:name`` parameters are bound like the rest of the cell, and
an error inside a saved query can be traced back to the text the user saved.

Rules (docs/magics.md, "Saved queries"):

* a name is a plain identifier; a saved query is one ``SELECT``/``VALUES``/``WITH`` query;
* a saved query may use other saved queries; a cycle is refused when saving;
* a real table or view wins: a name that is a table or view of the current connection cannot
  be saved, and a saved name that later becomes one (or is one on another connection) is not
  expanded there; a CTE of the statement's own ``WITH`` of the same name wins too;
* an error inside a saved query names the saved query and the line and column in its text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlnb import _sql
from sqlnb import errors as _errors
from sqlnb.notebook import explore

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a saved query's name (the magic's syntax, not SQL)
_QUERY_WORDS = frozenset(("SELECT", "VALUES", "WITH"))


class SavedQueryError(_errors.ProgrammingError):
    """A saved query that cannot be saved, deleted or expanded as written."""


def split_statements(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each statement of ``text``, as SQLite would split them: at a ``;``
    outside parentheses, strings and comments, except inside a trigger's ``BEGIN … END``."""
    out = []
    start = 0
    words: list[str] = []
    body = case = 0
    for tok in _sql.tokens(text):
        if tok.kind == "word":
            up = tok.upper
            if len(words) < 4:
                words.append(up)
            trigger = "TRIGGER" in words[:4] and words[0] == "CREATE"
            if trigger and up == "BEGIN" and not body:
                body = 1
            elif body and up == "CASE":
                case += 1
            elif body and up == "END":
                if case:
                    case -= 1
                else:
                    body = 0
        elif tok.text == ";" and tok.depth == 0 and not body:
            end = tok.start + 1
            if not _sql.is_blank(text[start:end]):
                out.append((start, end))
            start, words = end, []
    if not _sql.is_blank(text[start:]):
        out.append((start, len(text)))
    return out


@dataclass
class Expansion:
    """A statement with the saved queries it uses in front: ``text`` is what SQLite is given."""

    text: str
    names: list  # the saved queries expanded, in their order in the WITH clause
    at: int  # where the WITH clause was put into the statement (character offset)
    prefix_len: int  # characters the expansion added at ``at`` (after the user's WITH it replaced)
    skipped: int  # characters of the user's own ``WITH [RECURSIVE]`` the clause replaced
    bodies: list = field(default_factory=list)  # (name, start in text, end in text)

    def locate(self, pos: int):
        """Where character ``pos`` of :attr:`text` came from: ``("statement", pos)`` in the
        statement as written, or ``("saved", name, pos)`` in that saved query's text."""
        for name, start, end in self.bodies:
            if start <= pos < end:
                return "saved", name, pos - start
        if pos < self.at:
            return "statement", pos
        if pos < self.at + self.prefix_len:
            return "statement", self.at
        return "statement", pos - self.prefix_len + self.skipped


class SavedQueries:
    """The saved queries of a session, by name (names compare without case, as SQL's do)."""

    def __init__(self):
        self._queries: dict[str, tuple[str, str]] = {}  # lower name -> (name as saved, sql)

    def names(self) -> list[str]:
        return [name for name, _ in self._queries.values()]

    def sql(self, name: str) -> str:
        return self._queries[name.lower()][1]

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name.lower() in self._queries

    def __bool__(self) -> bool:
        return bool(self._queries)

    # --- what a text refers to -------------------------------------------------------------
    def refs(self, sql: str) -> list[str]:
        """The saved queries ``sql`` names as a table (not after a ``.``, not as a function)."""
        found: list[str] = []
        toks = list(_sql.tokens(sql))
        for i, tok in enumerate(toks):
            name = tok.name if tok.kind in ("word", "ident") else None
            if name is None or name.lower() not in self._queries:
                continue
            if i and toks[i - 1].text == ".":
                continue  # a column (x.late) or a schema's table (main.late): not ours
            if i + 1 < len(toks) and toks[i + 1].text in (".", "("):
                continue  # late.col (a qualifier) or late(...) (a function call)
            saved = self._queries[name.lower()][0]
            if saved not in found:
                found.append(saved)
        return found

    def order(self, names, real=frozenset()) -> list[str]:
        """``names`` and every saved query they use, each after the ones it uses (``real``:
        lower-case names of tables and views, which win over saved queries)."""
        out: list[str] = []
        for name in names:
            self._visit(name, [], out, real)
        return out

    def _visit(self, name: str, path: list, out: list, real) -> None:
        if name in out:
            return
        lower = [p.lower() for p in path]
        if name.lower() in lower:
            cycle = " → ".join([*path[lower.index(name.lower()):], name])
            raise SavedQueryError(f"saved queries refer to each other in a cycle: {cycle}")
        for dep in self.refs(self.sql(name)):
            if dep.lower() not in real:
                self._visit(dep, [*path, name], out, real)
        out.append(name)

    # --- saving --------------------------------------------------------------------------------
    def save(self, name: str, sql: str, con) -> list[str]:
        """Keep ``sql`` as ``name``, checked on ``con`` first; return the saved queries it uses."""
        if not _NAME.match(name):
            raise SavedQueryError(f"--save {name}: a saved query's name is a plain SQL name "
                                  f"(letters, digits and _, not starting with a digit)")
        pieces = split_statements(sql)
        if len(pieces) != 1:
            raise SavedQueryError(f"--save {name}: a saved query is one query; this cell has "
                                  f"{len(pieces)} statements")
        start, end = pieces[0]
        text = sql[start:end].strip()
        while text.endswith(";"):
            text = text[:-1].rstrip()
        if _sql.first_keyword(text) not in _QUERY_WORDS:
            raise SavedQueryError(f"--save {name}: a saved query is a SELECT, VALUES or WITH query "
                                  f"(this one starts with {_sql.first_keyword(text) or 'nothing'})")
        real = {n.lower() for _, n, _, _ in explore.table_names(con)}
        if name.lower() in real:
            raise SavedQueryError(f"--save {name}: a table or view {name!r} exists on this connection, "
                                  f"and a real table wins over a saved query: choose another name")
        old = self._queries.get(name.lower())
        self._queries[name.lower()] = (name, text)
        try:
            deps = [n for n in self.order([name], real) if n != name]
            self.check(name, con)
        except BaseException:
            if old is None:
                del self._queries[name.lower()]
            else:
                self._queries[name.lower()] = old
            raise
        return deps

    def check(self, name: str, con) -> None:
        """Prepare (not run) ``SELECT * FROM name`` on ``con``: errors name the saved text."""
        probe = f"SELECT * FROM {_sql.quote_identifier(name)}"
        x = self.expand(probe, con)
        try:
            for st, _, _ in con.statements(x.text):
                st.finalize()
        except _errors.Error as exc:
            explain(exc, x, probe, self)
            where = getattr(exc, "sqlnb_context", "") or f" in saved query {name}"
            exc.sqlnb_message = (f"{type(exc).__name__}{where}: {' '.join(str(exc).split())} "
                                 f"(--save {name}: not saved)")
            raise

    def delete(self, name: str) -> None:
        if name not in self:
            raise SavedQueryError(f"--delete {name}: no saved query named {name!r}; saved: "
                                  f"{', '.join(self.names()) or 'none'}")
        users = [n for n in self.names() if n.lower() != name.lower() and
                 name.lower() in (r.lower() for r in self.refs(self.sql(n)))]
        if users:
            raise SavedQueryError(f"--delete {name}: saved queries {', '.join(users)} use it: delete "
                                  f"them first")
        del self._queries[name.lower()]

    def rows(self) -> list[dict]:
        return [{"name": n, "uses": ", ".join(self.refs(sql)), "sql": sql} for n, sql in self._queries.values()]

    # --- expanding -----------------------------------------------------------------------------
    def expand(self, stmt: str, con) -> Expansion | None:
        """``stmt`` with the saved queries it uses in a WITH clause, or None when it uses none."""
        if not self._queries:
            return None
        names = self.refs(stmt)
        if not names:
            return None
        names = [n for n in names if n.lower() not in _own_ctes(stmt)]
        real = {n.lower() for _, n, _, _ in explore.table_names(con)} if names else set()
        names = [n for n in names if n.lower() not in real]
        if not names:
            return None
        ordered = self.order(names, real)
        at, skipped, recursive = _insertion_point(stmt, names[0])
        head = "WITH RECURSIVE " if recursive else "WITH "
        parts, bodies = [head], []
        pos = at + len(head)
        for i, name in enumerate(ordered):
            lead = f"{_sql.quote_identifier(name)} AS (\n"
            parts.append(lead)
            pos += len(lead)
            body = self.sql(name)
            bodies.append((name, pos, pos + len(body)))
            parts.append(body)
            tail = "\n)" + (", " if i + 1 < len(ordered) or skipped else " ")
            parts.append(tail)
            pos += len(body) + len(tail)
        prefix = "".join(parts)
        text = stmt[:at] + prefix + stmt[at + skipped:]
        return Expansion(text=text, names=ordered, at=at, prefix_len=len(prefix), skipped=skipped,
                         bodies=bodies)


def _own_ctes(stmt: str) -> set:
    """Lower-case names of the CTEs the statement's own leading WITH defines."""
    toks = list(_sql.tokens(stmt))
    out = set()
    if not toks or toks[0].upper != "WITH":
        return out
    for i, tok in enumerate(toks[1:], 1):
        if tok.depth != 0:
            continue
        if tok.kind == "word" and tok.upper in ("SELECT", "VALUES", "INSERT", "UPDATE", "DELETE", "REPLACE"):
            break
        prev = toks[i - 1].upper
        if tok.kind in ("word", "ident") and prev in ("WITH", "RECURSIVE", ","):
            out.add((tok.name or "").lower())
    return out


def _insertion_point(stmt: str, name: str) -> tuple[int, int, bool]:
    """``(at, skipped, recursive)``: where the WITH clause goes, how much of the user's own
    ``WITH [RECURSIVE] `` it replaces, and whether that was RECURSIVE."""
    toks = list(_sql.tokens(stmt))
    i = 0
    if toks and toks[0].upper == "EXPLAIN":
        i = 1
        if len(toks) > 2 and toks[1].upper == "QUERY" and toks[2].upper == "PLAN":
            i = 3
    if i < len(toks) and toks[i].upper == "CREATE":
        for j in range(i, len(toks) - 1):
            if toks[j].depth == 0 and toks[j].upper == "AS" and toks[j + 1].upper in _QUERY_WORDS:
                i = j + 1
                break
        else:
            raise SavedQueryError(f"saved query {name}: in a CREATE statement it can be used only in "
                                  f"CREATE TABLE … AS SELECT or CREATE VIEW … AS SELECT")
    if i >= len(toks):
        return len(stmt), 0, False
    at = toks[i].start
    if toks[i].upper != "WITH":
        return at, 0, False
    recursive = i + 1 < len(toks) and toks[i + 1].upper == "RECURSIVE"
    nxt = toks[i + 2] if recursive else toks[i + 1] if i + 1 < len(toks) else None
    return at, (nxt.start - at) if nxt is not None else len(stmt) - at, recursive


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def explain(exc, x: Expansion, stmt: str, saved: SavedQueries) -> None:
    """Put an error SQLite raised on an expanded statement in the terms the user wrote: an
    offset in the statement is moved back to it; one in a saved query names that query."""
    offset = getattr(exc, "error_offset", -1)
    if not isinstance(offset, int) or offset < 0 or getattr(exc, "sql", None) != x.text:
        exc.sqlnb_context = f" (with saved {'queries' if len(x.names) > 1 else 'query'} {', '.join(x.names)})"
        exc.error_offset, exc.sql = -1, stmt
        return
    pos = len(x.text.encode("utf-8", "surrogateescape")[:offset].decode("utf-8", "replace"))
    where = x.locate(pos)
    if where[0] == "statement":
        exc.sql = stmt
        exc.error_offset = len(stmt[:where[1]].encode("utf-8", "surrogateescape"))
        return
    _, name, at = where
    body = saved.sql(name)
    line, col = _line_col(body, at)
    near = body[at:at + 24].split("\n")[0].strip()
    exc.sqlnb_context = (f" in saved query {name} at line {line}, column {col}"
                         + (f" near {near!r}" if near else ""))
    exc.error_offset, exc.sql = -1, stmt
