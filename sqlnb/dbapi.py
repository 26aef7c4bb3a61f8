"""PEP 249 type objects and constructors.

SQLite has no column types of its own. ``description[i][1]`` (the type code)
is the column's declared type when the column comes straight from a table
(e.g. ``'varchar(20)'``) and None for expressions; the stdlib always gives
None. The type objects compare equal to a declared type by SQLite's own
affinity rules. Dates and times bind as ISO-8601 text, as the
stdlib's default adapters write them.
"""
from __future__ import annotations

import datetime
import time

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = bytes


def DateFromTicks(ticks):  # noqa: N802 - PEP 249 names
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks):  # noqa: N802
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks):  # noqa: N802
    return Timestamp(*time.localtime(ticks)[:6])


def affinity(decltype: str | None) -> str:
    """SQLite's column affinity for a declared type (the rules of section 3.1 of datatype3.html)."""
    t = (decltype or "").upper()
    if "INT" in t:
        return "INTEGER"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "TEXT"
    if t == "" or "BLOB" in t:
        return "BLOB"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "REAL"
    return "NUMERIC"


class DBAPITypeObject:
    """Compares equal to a ``description`` type code (the column's declared type).

    A declared type matches when SQLite's affinity rules give one of
    ``affinities``, or when it names one of ``words`` (DATE, TIMESTAMP...).
    """

    def __init__(self, name: str, affinities=(), words=()):
        self.name = name
        self.affinities = frozenset(affinities)
        self.words = tuple(words)

    def __eq__(self, other):
        if isinstance(other, str):
            t = other.upper()
            if self.words:
                return any(w in t for w in self.words)
            return affinity(other) in self.affinities
        return self is other

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"sqlnb.{self.name}"


STRING = DBAPITypeObject("STRING", affinities=("TEXT",))
BINARY = DBAPITypeObject("BINARY", affinities=("BLOB",))
NUMBER = DBAPITypeObject("NUMBER", affinities=("INTEGER", "REAL", "NUMERIC"))
DATETIME = DBAPITypeObject("DATETIME", words=("DATE", "TIME"))
ROWID = DBAPITypeObject("ROWID", words=("ROWID",))
