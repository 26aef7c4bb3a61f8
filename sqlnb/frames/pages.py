"""Pages of a table or a query, each one SQL statement: keyset where a key exists, OFFSET otherwise.

The pure part of the page browser (:mod:`sqlnb.notebook.browse`): it builds SQL
text and parameters and reads nothing but what it is given, so it is tested
without a widget. A :class:`Source` says what is browsed: a table with a unique
key (``rowid``, or the primary key of a ``WITHOUT ROWID`` table), or anything
else (a view, a virtual table, a query), which has no key. A :class:`Pager`
adds the sort column, its direction and a filter, and builds:

- :meth:`Pager.first`, :meth:`Pager.after`, :meth:`Pager.before`: keyset pages.
  The order is the sort column, then the key (the tiebreaker: the order is
  total, so no row is skipped or repeated between pages, duplicate sort values
  and NULLs included). The next page is the rows *after* the last row shown,
  ``WHERE (sort, key) > (:v, :k)`` written out term by term with SQLite's NULL
  order (NULL is the smallest value: first ascending, last descending); the
  previous page is the same question in the reverse order, rows reversed.
  With an index on the sort column (or no sort: the key itself), SQLite reads
  just the page from the index, however far in the table it is.
- :meth:`Pager.at`: ``LIMIT/OFFSET``, for a source without a key and for a
  jump to page N (SQLite steps over the rows before it; the footer says so).

Every page asks for one row more than it shows: that row only tells whether
there is a next page.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlnb import _sql

__all__ = ["Source", "Pager", "Page", "table_source", "query_source", "check_filter", "FilterError",
           "KEY_PREFIX"]

#: the key columns of a keyset page are selected first, under these names (and not shown)
KEY_PREFIX = "__sqlnb_key"

_ROWID_NAMES = ("rowid", "_rowid_", "oid")


class FilterError(ValueError):
    """A filter that is not one SQL expression (a ``;``, an unbalanced parenthesis, nothing)."""


@dataclass(frozen=True)
class Source:
    """What is browsed: ``relation`` is SQL text usable after ``FROM``; ``columns`` its column
    names; ``key`` the SQL expressions of a unique, never-NULL key (empty: no key, OFFSET paging);
    ``what`` names it in messages; ``why_offset`` says why it has no key."""

    relation: str
    columns: tuple
    key: tuple = ()
    what: str = ""
    why_offset: str = ""
    star: bool = False  # select ``*`` (a query's columns may repeat a name)


def table_source(schema: str | None, table: str, columns, *, without_rowid_pk=(), kind: str = "table") -> Source:
    """A table's :class:`Source`; ``columns`` its column names (``PRAGMA table_info``).

    An ordinary table is keyed on ``rowid`` (or ``_rowid_``/``oid`` when a column takes
    the name); a ``WITHOUT ROWID`` table on its primary key (``without_rowid_pk``, in key
    order); a view or virtual table (``kind``) has no key.
    """
    rel = (_sql.quote_identifier(schema) + "." if schema else "") + _sql.quote_identifier(table)
    what = f"{schema}.{table}" if schema and schema != "main" else table
    columns = tuple(columns)
    if kind != "table":
        return Source(rel, columns, (), what, f"a {kind} has no rowid")
    if without_rowid_pk:
        return Source(rel, columns, tuple(_sql.quote_identifier(c) for c in without_rowid_pk), what)
    taken = {c.lower() for c in columns}
    for name in _ROWID_NAMES:
        if name not in taken:
            return Source(rel, columns, (name,), what)
    return Source(rel, columns, (), what, "its columns hide rowid, _rowid_ and oid")


def query_source(sql: str, columns) -> Source:
    """A query's :class:`Source`: ``sql`` is one SELECT (``columns`` its result's names); no key."""
    body = sql.strip()
    while body.endswith(";"):
        body = body[:-1].rstrip()
    return Source(f"(\n{body}\n)", tuple(columns), (), "query", "a query has no rowid", star=True)


def check_filter(text: str) -> str:
    """``text`` as one SQL expression to put in ``WHERE ( ... )``, or :class:`FilterError`.

    Only its shape is checked here (balanced parentheses, no ``;``, not blank); SQLite
    prepares the page and says what else is wrong, and the connection's mode decides what
    may run.
    """
    toks = list(_sql.tokens(text or ""))
    if not toks:
        raise FilterError("the filter is empty")
    depth = 0
    for tok in toks:
        if tok.text == ";":
            raise FilterError("the filter is one SQL expression (no ';')")
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
            if depth < 0:
                raise FilterError("the filter has a ')' without its '('")
    if depth:
        raise FilterError("the filter has a '(' without its ')'")
    last = list(_sql.tokens(text, space=True))[-1]
    if last.kind == "comment" and last.text.startswith("/*") and not last.text.endswith("*/"):
        raise FilterError("the filter has a '/*' comment without its '*/'")
    if last.kind == "comment" and not last.text.endswith("\n"):
        return text + "\n"  # a trailing -- comment must not swallow the ')' after it
    return text


@dataclass(frozen=True)
class Page:
    """One page's statement: ``sql`` and ``params``; ``reverse`` when its rows come back in
    the reverse order (a previous page); ``nkey`` key columns lead each row."""

    sql: str
    params: dict
    reverse: bool = False
    nkey: int = 0
    offset: int | None = None  # the OFFSET it uses (None: a keyset page)


@dataclass(frozen=True)
class Pager:
    """The pages of ``source`` sorted by ``sort`` (a column name, or None: the key's order),
    ``desc``ending, keeping the rows where ``where`` (an SQL expression) is true."""

    source: Source
    size: int = 20
    sort: str | None = None
    desc: bool = False
    where: str | None = None
    _terms: tuple = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self):
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"page size must be a positive integer, not {self.size!r}")
        if self.sort is not None and self.sort not in self.source.columns:
            raise ValueError(f"no column {self.sort!r} to sort by in {self.source.what or 'the source'}")
        if self.where is not None:
            object.__setattr__(self, "where", check_filter(self.where))
        terms = []  # (SQL expression, descending, may be NULL)
        if self.sort is not None:
            terms.append((_sql.quote_identifier(self.sort), self.desc, True))
        # the key breaks ties, in the same direction (one index, read forwards or backwards)
        terms.extend((k, self.desc, False) for k in self.source.key)
        object.__setattr__(self, "_terms", tuple(terms))

    @property
    def keyset(self) -> bool:
        """True when pages are keyset pages (the source has a key)."""
        return bool(self.source.key)

    @property
    def nkey(self) -> int:
        """How many key values lead each row of a keyset page (sort column, then the key)."""
        return len(self._terms) if self.keyset else 0

    # --- the statement's parts -----------------------------------------------------------
    def _select(self) -> str:
        cols = "*" if self.source.star else ", ".join(_sql.quote_identifier(c) for c in self.source.columns) or "*"
        if not self.keyset:
            return cols
        keys = ", ".join(f"{expr} AS {KEY_PREFIX}{i}" for i, (expr, _, _) in enumerate(self._terms))
        return f"{keys}, {cols}"

    def _order(self, flip: bool) -> str:
        terms = self._terms
        if not self.keyset and self.sort is not None:
            # no key: the other columns break ties, so OFFSET pages of one order do not overlap
            terms = tuple((_sql.quote_identifier(c), self.desc if c == self.sort else False, True)
                          for c in [self.sort] + [c for c in self.source.columns if c != self.sort])
        return ", ".join(f"{expr} {'DESC' if desc != flip else 'ASC'}" for expr, desc, _ in terms)

    def _statement(self, conditions, flip, limit, offset=None) -> str:
        where = [f"({self.where})"] if self.where is not None else []
        where += conditions
        sql = f"SELECT {self._select()}\nFROM {self.source.relation}"
        if where:
            sql += "\nWHERE " + "\n  AND ".join(where)
        order = self._order(flip)
        if order:
            sql += f"\nORDER BY {order}"
        sql += f"\nLIMIT {int(limit)}"
        if offset:
            sql += f" OFFSET {int(offset)}"
        return sql

    def _after(self, values, flip: bool, params: dict) -> str:
        """``(terms) > values`` in the (possibly flipped) order, NULLs where SQLite sorts them."""
        ors = []
        for i, (expr, desc, nullable) in enumerate(self._terms):
            ands = []
            for j in range(i):
                ands.append(self._equal(j, values[j], params))
            later = self._later(i, values[i], desc != flip, params)
            if later is None:
                continue
            ands.append(later)
            ors.append("(" + " AND ".join(ands) + ")")
        return "(" + (" OR ".join(ors) or "0") + ")"

    def _equal(self, i, value, params) -> str:
        expr = self._terms[i][0]
        if value is None:
            return f"{expr} IS NULL"
        params[f"k{i}"] = value
        return f"{expr} = :k{i}"

    def _later(self, i, value, descending: bool, params) -> str | None:
        """Rows whose term ``i`` comes strictly after ``value`` (None: no row can)."""
        expr, _, nullable = self._terms[i]
        if value is None:  # NULL is the smallest value
            return None if descending else f"{expr} IS NOT NULL"
        params[f"k{i}"] = value
        if descending:
            return f"({expr} < :k{i} OR {expr} IS NULL)" if nullable else f"{expr} < :k{i}"
        return f"{expr} > :k{i}"

    # --- the pages -----------------------------------------------------------------------
    def first(self) -> Page:
        """The first page (keyset, or OFFSET 0 without a key)."""
        if not self.keyset:
            return self.at(0)
        return Page(self._statement([], False, self.size + 1), {}, False, self.nkey)

    def last(self) -> Page:
        """The last page: the first page of the reverse order (keyset only)."""
        if not self.keyset:
            raise ValueError("the last page of a source without a key needs its row count: use at()")
        return Page(self._statement([], True, self.size + 1), {}, True, self.nkey)

    def after(self, values) -> Page:
        """The page after the row whose key values (sort value, then key) are ``values``."""
        self._need_keyset()
        params: dict = {}
        cond = self._after(tuple(values), False, params)
        return Page(self._statement([cond], False, self.size + 1), params, False, self.nkey)

    def before(self, values) -> Page:
        """The page before the row whose key values are ``values`` (its rows come back reversed)."""
        self._need_keyset()
        params: dict = {}
        cond = self._after(tuple(values), True, params)
        return Page(self._statement([cond], True, self.size + 1), params, True, self.nkey)

    def at(self, index: int) -> Page:
        """Page ``index`` (0-based) by ``LIMIT/OFFSET``: SQLite steps over the rows before it."""
        if index < 0:
            raise ValueError(f"page numbers start at 1 (got {index + 1})")
        return Page(self._statement([], False, self.size + 1, index * self.size), {}, False, self.nkey,
                    index * self.size)

    def count(self) -> str:
        """``SELECT count(*)`` of the rows the filter keeps."""
        sql = f"SELECT count(*) FROM {self.source.relation}"
        if self.where is not None:
            sql += f"\nWHERE ({self.where})"
        return sql

    def _need_keyset(self):
        if not self.keyset:
            raise ValueError(f"{self.source.what or 'this source'} has no key ({self.source.why_offset}): "
                             "pages go by OFFSET")

    def describe(self) -> str:
        """How pages are read, in a few words (the footer's part)."""
        if not self.keyset:
            return f"LIMIT/OFFSET paging ({self.source.why_offset}): a far page steps over the rows before it"
        names = ([self.sort] if self.sort is not None else []) + [_sql.unquote(k) for k in self.source.key]
        return "keyset paging on " + ", ".join(names)


def split_row(page: Page, row) -> tuple[tuple, tuple]:
    """``(key values, shown values)`` of one row of ``page``."""
    return tuple(row[:page.nkey]), tuple(row[page.nkey:])
