"""``sqlnb.Row``: the stdlib ``sqlite3.Row`` for sqlnb cursors (``con.row_factory = sqlnb.Row``).

A row reads by position (``row[0]``, ``row[-1]``, slices give a tuple) and by column name,
case-insensitively (``row["Name"]``); ``keys()`` lists the names; ``len()`` and iteration
give the values. Two rows are equal when their cursors' descriptions and their values are
(a Row never equals a plain tuple), and equal rows hash alike. Rows are immutable.
sqlnb's ``description`` carries each column's declared type (docs/dbapi.md), so two rows
of columns with the same names but other declared types are not equal (the stdlib's
descriptions carry none).
"""
from __future__ import annotations

__all__ = ["Row"]


class Row:
    """One result row, readable by index and by column name (see the module)."""

    __slots__ = ("_values", "_description", "_index")

    def __init__(self, cursor, values, /):
        description = getattr(cursor, "description", False)
        if description is False or not hasattr(cursor, "fetchone"):
            raise TypeError(f"Row() argument 1 must be a Cursor, not {type(cursor).__name__}")
        if not isinstance(values, tuple):
            raise TypeError(f"Row() argument 2 must be tuple, not {type(values).__name__}")
        self._values = values
        self._description = description
        self._index = None

    def _names(self) -> list:
        return [d[0] for d in self._description] if self._description else []

    def keys(self) -> list:
        """The column names, in order."""
        return self._names()

    def __getitem__(self, key):
        if isinstance(key, str):
            index = self._index
            if index is None:
                index = {}
                for i, name in enumerate(self._names()):
                    index.setdefault(name.casefold(), i)   # (the first of equal names wins, as in the stdlib)
                self._index = index
            try:
                return self._values[index[key.casefold()]]
            except KeyError:
                raise IndexError("No item with that key") from None
        if isinstance(key, slice):
            return self._values[key]
        if isinstance(key, int):
            return self._values[key]
        raise IndexError("Index must be int or string")

    def __len__(self):
        return len(self._values)

    def __iter__(self):
        return iter(self._values)

    def __eq__(self, other):
        if not isinstance(other, Row):
            return NotImplemented
        return self._description == other._description and self._values == other._values

    def __hash__(self):
        return hash(self._description) ^ hash(self._values)

    def __repr__(self):
        return f"<sqlnb.Row {dict(zip(self._names(), self._values))!r}>"
