"""Features newer than the BerkeleyDB SQL core (SQLite 3.7.6.2), named in its errors.

:func:`explain_error` turns the old core's bare ``near "(": syntax error`` into a
:class:`~sqlnb.errors.FeatureNotSupportedError` that names the missing feature, the
engine and its core version, and suggests the ``sqlite`` engine. It only speaks when
SQLite itself raised an error (result code SQLITE_ERROR), and it confirms the
feature from the SQL's tokens (``sqlnb._sql``: strings, quoted names and comments
are skipped), so valid SQL that merely mentions ``over`` is never touched.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlnb import _sql
from sqlnb import errors as _errors

ENGINE = "bdb"
CORE_VERSION = "3.7.6.2"  # replaced by the loaded library's own version (set_core_version)


def set_core_version(version: str) -> None:
    global CORE_VERSION
    CORE_VERSION = version


def tokenize(sql: str) -> list:
    """The tokens of ``sql`` without whitespace and comments (``sqlnb._sql.tokens``)."""
    return list(_sql.tokens(sql))


def _words(toks):
    return [t.upper if t.kind == "word" else None for t in toks]


_NEAR = re.compile(r'^near "(.*)": syntax error$', re.S)
_NO_FUNC = re.compile(r"^no such function: (\w+)$")
_NO_MODULE = re.compile(r"^no such module: (\w+)$")
_NO_COLUMN = re.compile(r"^no such column: (true|false)$", re.I)
_BAD_TOKEN = re.compile(r'^unrecognized token: "(.*)"$', re.S)

WINDOW_ONLY = {"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag",
               "lead", "first_value", "last_value", "nth_value"}
MATH = {"acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos",
        "cosh", "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow",
        "power", "radians", "sin", "sinh", "sqrt", "tan", "tanh", "trunc"}
# scalar/aggregate functions added after 3.7.6.2, with the release that added them
NEWER_FUNCTIONS = {
    "instr": "3.7.15", "char": "3.7.16", "unicode": "3.7.16", "likely": "3.8.1",
    "unlikely": "3.8.1", "likelihood": "3.8.2", "printf": "3.8.3", "iif": "3.32.0",
    "substring": "3.34.0", "format": "3.38.0", "unixepoch": "3.38.0", "unhex": "3.41.0",
    "octet_length": "3.43.0", "timediff": "3.43.0", "concat": "3.44.0", "concat_ws": "3.44.0",
    "string_agg": "3.44.0", "if": "3.48.0",
}
MODULES = {"fts5": ("FTS5 full-text search", "3.9.0"), "fts4": ("FTS4 full-text search", "(a build option)"),
           "fts3": ("FTS3 full-text search", "(a build option)"), "rtree": ("R*Tree", "(a build option)"),
           "rtree_i32": ("R*Tree", "(a build option)"), "geopoly": ("Geopoly", "3.26.0"),
           "dbstat": ("dbstat", "3.8.3"), "lsm1": ("lsm1 key-value", "(sqlnb's own build)"),
           "json_each": ("JSON table-valued", "3.38.0"), "json_tree": ("JSON table-valued", "3.38.0"),
           "generate_series": ("generate_series", "(an extension)")}


@dataclass(frozen=True)
class Missing:
    key: str        # short name, e.g. "window"
    what: str       # e.g. "window functions (OVER ...)"
    since: str      # the SQLite release that added it

    def message(self, version: str, original: str | None) -> str:
        since = f"added in SQLite {self.since}" if self.since[:1].isdigit() else f"in SQLite {self.since}"
        said = f" (SQLite said: {original})" if original else ""
        return (f"the {ENGINE} engine (SQLite {version} core) has no {self.what}, "
                f"{since}; use engine='sqlite'{said}")


def _seq(words, i, *want):
    """True if words[i:] starts with the keywords ``want`` (None in want matches any word)."""
    if i + len(want) > len(words):
        return False
    return all(w is None and words[i + k] is not None or words[i + k] == w
               for k, w in enumerate(want))


def _syntax_features(toks: list, near: str | None) -> list[Missing]:
    """Features newer than 3.7.6.2 that these tokens use (for a syntax error)."""
    words = _words(toks)
    n = len(toks)
    first = words[0] if words else None
    found: list[Missing] = []
    nu = near.upper() if near is not None else None

    def text(i):
        return toks[i].text if i < n else None

    for i, w in enumerate(words):
        if w is None:
            continue
        nxt = text(i + 1)
        if w == "OVER" and i > 0 and toks[i - 1].text == ")" and nxt is not None and (
                nxt == "(" or toks[i + 1].kind in ("word", "ident")):
            found.append(Missing("window", "window functions (... OVER (...))", "3.25.0"))
        elif w == "WINDOW" and i + 2 < n and toks[i + 1].kind in ("word", "ident") and words[i + 2] == "AS":
            found.append(Missing("window", "window functions (WINDOW clause)", "3.25.0"))
        elif w == "FILTER" and i > 0 and toks[i - 1].text == ")" and nxt == "(" and words[i + 2:i + 3] == ["WHERE"]:
            found.append(Missing("filter", "FILTER clauses on aggregates", "3.30.0"))
        elif w == "WITH" and (i == 0 or toks[i - 1].text in ("(", ";")) and i + 1 < n and (
                words[i + 1] == "RECURSIVE" or (toks[i + 1].kind in ("word", "ident") and (
                    words[i + 2:i + 3] == ["AS"] or text(i + 2) == "("))):
            found.append(Missing("cte", "common table expressions (WITH ...)", "3.8.3"))
        elif w in ("JSON_EACH", "JSON_TREE") and nxt == "(":
            found.append(Missing("json", f"JSON table-valued functions ({w.lower()})", "3.38.0"))
        elif w == "ON" and first in ("INSERT", "REPLACE") and _seq(words, i, "ON", "CONFLICT") and any(
                words[j] == "DO" and words[j + 1:j + 2] in (["NOTHING"], ["UPDATE"]) for j in range(i + 2, n)):
            found.append(Missing("upsert", "UPSERT (INSERT ... ON CONFLICT ... DO ...)", "3.24.0"))
        elif w == "RETURNING" and first in ("INSERT", "REPLACE", "UPDATE", "DELETE") and toks[i].depth == 0 \
                and nu == "RETURNING":
            found.append(Missing("returning", "RETURNING clauses", "3.35.0"))
        elif w == "STRICT" and first == "CREATE" and toks[i].depth == 0 and i > 0 and \
                (toks[i - 1].text == ")" or toks[i - 1].text == ",") and nu == "STRICT":
            found.append(Missing("strict", "STRICT tables", "3.37.0"))
        elif w == "WITHOUT" and _seq(words, i, "WITHOUT", "ROWID") and first == "CREATE":
            found.append(Missing("without_rowid", "WITHOUT ROWID tables", "3.8.2"))
        elif first == "CREATE" and toks[i].depth == 1 and (
                (w == "AS" and nxt == "(") or _seq(words, i, "GENERATED", "ALWAYS", "AS")) and \
                "TABLE" in words[:4] and nu in ("AS", "(", "GENERATED", "ALWAYS"):
            found.append(Missing("generated", "generated columns (... AS (expr))", "3.31.0"))
        elif w == "NULLS" and words[i + 1:i + 2] in (["FIRST"], ["LAST"]):
            found.append(Missing("nulls_order", "NULLS FIRST/LAST in ORDER BY", "3.30.0"))
        elif w == "IS" and (_seq(words, i, "IS", "DISTINCT", "FROM")
                            or _seq(words, i, "IS", "NOT", "DISTINCT", "FROM")):
            found.append(Missing("is_distinct", "IS [NOT] DISTINCT FROM", "3.39.0"))
        elif w == "DROP" and first == "ALTER" and i > 2:
            found.append(Missing("drop_column", "ALTER TABLE ... DROP COLUMN", "3.35.0"))
        elif w == "RENAME" and first == "ALTER" and words[i + 1:i + 2] != ["TO"]:
            found.append(Missing("rename_column", "ALTER TABLE ... RENAME COLUMN", "3.25.0"))
        elif w == "FROM" and first == "UPDATE" and toks[i].depth == 0 and nu == "FROM":
            found.append(Missing("update_from", "UPDATE ... FROM", "3.33.0"))
        elif w == "VALUES" and first in ("INSERT", "REPLACE") and nxt == "(" and near == ",":
            j, d0 = i + 1, toks[i + 1].depth
            while j < n and not (toks[j].text == ")" and toks[j].depth == d0 + 1):  # (a ')' has its inside's depth)
                j += 1
            if j + 2 < n and toks[j + 1].text == "," and toks[j + 2].text == "(":
                found.append(Missing("multirow_values", "multi-row VALUES lists (VALUES (...), (...))", "3.7.11"))
    if any(t.kind == "op" and t.text in ("->", "->>") for t in toks) and near in (">", ">>", "-", "->", "->>"):
        found.append(Missing("json", "JSON operators (-> and ->>)", "3.38.0"))
    return found


def _is_hex_literal(text: str) -> bool:
    toks = tokenize(text)
    return len(toks) == 1 and toks[0].kind == "number" and toks[0].text[:2] in ("0x", "0X")


def missing_feature(message: str, sql: str) -> Missing | None:
    """The newer-than-3.7.6.2 feature that explains SQLite's ``message`` for ``sql``, or None."""
    message = (message or "").strip()
    m = _NO_FUNC.match(message)
    if m:
        name = m.group(1).lower()
        if name.startswith("json"):
            return Missing("json", f"JSON functions ({name}() and the rest)", "3.38.0")
        if name in WINDOW_ONLY:
            return Missing("window", f"window functions ({name}() OVER (...))", "3.25.0")
        if name in MATH:
            return Missing("math", f"math functions ({name}() and the rest)", "3.35.0")
        if name in NEWER_FUNCTIONS:
            return Missing("function", f"function {name}()", NEWER_FUNCTIONS[name])
        return None
    m = _NO_MODULE.match(message)
    if m:
        name = m.group(1).lower()
        if name in MODULES:
            what, since = MODULES[name]
            return Missing(name, f"{name} virtual tables ({what})", since)
        return None
    m = _NO_COLUMN.match(message)
    if m:
        if any(t.kind == "word" and t.upper == m.group(1).upper() for t in tokenize(sql)):
            return Missing("true_false", "TRUE and FALSE literals", "3.23.0")
        return None
    m = _BAD_TOKEN.match(message)
    if m and _is_hex_literal(m.group(1)):
        return Missing("hex_literal", "hexadecimal integer literals (0x...)", "3.8.6")
    if message.startswith("RIGHT and FULL OUTER JOINs are not currently supported"):
        return Missing("right_join", "RIGHT and FULL OUTER JOIN", "3.39.0")
    m = _NEAR.match(message)
    if m or message in ("incomplete input",) or message.startswith("unrecognized token"):
        found = _syntax_features(tokenize(sql), m.group(1) if m else None)
        return found[0] if found else None
    return None


def explain_error(exc, sql: str):
    """Return a clearer exception for ``exc`` raised by ``sql`` on the bdb engine, or None.

    Only SQLITE_ERROR (code 1) is considered, and only when the SQL really
    uses a feature the 3.7.6.2 core lacks.
    """
    if not isinstance(exc, _errors.Error) or isinstance(exc, _errors.FeatureNotSupportedError):
        return None
    if (exc.result_code or 0) & 0xFF == 6:  # a lock wait outlived the timeout (see _watch_locks)
        err = _errors.make_error(
            5, "database is locked: a BerkeleyDB lock held by another connection (in this or another "
               "process) outlasted this connection's timeout, so the statement did not run. Retry once "
               "the other side commits or rolls back, or open with a longer timeout= "
               f"(BerkeleyDB: {exc})", cls=_errors.BusyError, sql=sql)
        return err
    if (exc.result_code or 0) & 0xFF != 1:
        return None
    feature = missing_feature(str(exc), sql or "")
    if feature is None:
        return None
    return feature_error(feature, original=str(exc), exc=exc, sql=sql)


def feature_error(feature: Missing, *, original=None, exc=None, sql=None):
    err = _errors.make_error(
        exc.result_code if exc is not None and exc.result_code else 1,
        feature.message(CORE_VERSION, original),
        extended_code=getattr(exc, "extended_code", None), sql=sql,
        cls=_errors.FeatureNotSupportedError)
    err.feature = feature.key
    err.engine = ENGINE
    err.core_version = CORE_VERSION
    err.since = feature.since
    return err


