"""The one SQL lexer: tokens, the first keyword, blank text, parameter names, quoting.

Every place in sqlnb that looks at SQL text calls this module; none has a regular
expression of its own.  It follows SQLite's tokenizer (``tokenize.c``) as far as
sqlnb needs: whitespace and comments (``--`` to the end of the line, ``/* */``,
unterminated to the end of the text), string literals (``'it''s'``), blob literals
(``x'00ff'``), quoted identifiers (``"x"``, ```x```, ``[x]``), numbers (including
``0x`` hex), parameters (``?``, ``?NNN``, ``:name``, ``@name``, ``$name`` with
Tcl's ``::`` and ``(...)`` suffixes) and words.  ``tests/test_sql_lexer.py``
checks it against SQLite's own parser.

Decisions about what a statement *does* are never made here: SQLite prepares the
statement and the authorizer and the bytecode check judge it.  The lexer serves
messages, the stdlib engine's parameter names, and the few syntactic shapes sqlnb
recognises (a plain ``SELECT ... FROM t`` to split for a parallel fetch, the
arguments of ``CREATE VIRTUAL TABLE ... USING lsm1(...)``).
"""
from __future__ import annotations

import re
from typing import Iterator, NamedTuple

__all__ = ["Token", "tokens", "words", "first_keyword", "is_blank", "param_names",
           "quote_identifier", "quote_literal", "unquote"]

# SQLite's identifier characters: ASCII letters, digits, '_', '$' and every character >= 0x80
_ID_START = r"A-Za-z_\x80-\U0010FFFF"
_ID_CHAR = r"A-Za-z0-9_$\x80-\U0010FFFF"

_TOKEN = re.compile(rf"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*(?:\n|\Z)|/\*(?:[^*]|\*(?!/))*(?:\*/|\Z))
  | (?P<blob>[xX]'[^']*(?:'|\Z))
  | (?P<string>'(?:[^']|'')*(?:'|\Z))
  | (?P<ident>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\]]*(?:\]|\Z))
  | (?P<number>0[xX][0-9A-Fa-f]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<param>\?[0-9]*|[:@][{_ID_CHAR}]+|\$(?:[{_ID_CHAR}]|::)+(?:\([^)]*\))?)
  | (?P<word>[{_ID_START}][{_ID_CHAR}]*)
  | (?P<op>->>|->|\|\||<<|>>|<=|>=|==|!=|<>|.)
""", re.X | re.S)


class Token(NamedTuple):
    """One token: ``kind`` is space, comment, string, blob, ident (a quoted identifier),
    number, param, word or op; ``start`` is its offset in the text; ``depth`` the
    parenthesis depth before it."""

    kind: str
    text: str
    start: int
    depth: int

    @property
    def upper(self) -> str:
        """A word upper-cased (keywords compare this way); other tokens as they are."""
        return self.text.upper() if self.kind == "word" else self.text

    @property
    def name(self) -> str | None:
        """The identifier this token names (a word or a quoted identifier), unquoted; else None."""
        if self.kind == "word":
            return self.text
        if self.kind in ("ident", "string"):
            return unquote(self.text)
        return None


def tokens(sql: str, *, space: bool = False) -> Iterator[Token]:
    """The tokens of ``sql`` in order; whitespace and comments only when ``space``."""
    depth = 0
    for m in _TOKEN.finditer(sql or ""):
        kind, text = m.lastgroup, m.group()
        if kind in ("space", "comment"):
            if space:
                yield Token(kind, text, m.start(), depth)
            continue
        yield Token(kind, text, m.start(), depth)
        if text == "(":
            depth += 1
        elif text == ")" and depth:
            depth -= 1


def words(sql: str, limit: int | None = None) -> list[str]:
    """The upper-cased words at the start of ``sql`` (up to ``limit``), stopping at the first non-word."""
    out = []
    for tok in tokens(sql):
        if tok.kind != "word" or (limit is not None and len(out) >= limit):
            break
        out.append(tok.text.upper())
    return out


def first_keyword(sql: str) -> str:
    """The first keyword of ``sql``, upper-cased; ``""`` when the text has none."""
    for tok in tokens(sql):
        return tok.text.upper() if tok.kind == "word" else ""
    return ""


def is_blank(sql: str) -> bool:
    """True when ``sql`` holds only whitespace, comments and semicolons (no statement)."""
    return all(tok.text == ";" for tok in tokens(sql))


def param_names(sql: str) -> list:
    """The parameters of ``sql`` in SQLite's numbering: ``None`` for a bare ``?``,
    ``'?3'`` for a numbered one, ``':x'``/``'@x'``/``'$x'`` for a named one (once each).

    The compiled engines ask SQLite (``sqlite3_bind_parameter_name``); this serves the
    stdlib engine, whose driver does not expose it.
    """
    out: list = []
    for tok in tokens(sql):
        if tok.kind != "param":
            continue
        if tok.text == "?":
            out.append(None)
        elif tok.text[0] == "?" or tok.text not in out:
            out.append(tok.text)
    return out


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier: ``x"y`` -> ``"x""y"`` (any text is just a name,
    never a keyword)."""
    if not isinstance(name, str):
        raise TypeError(f"an identifier must be str, not {type(name).__name__}")
    if "\x00" in name:
        raise ValueError(f"identifier {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """``value`` as an SQL string literal: ``'it''s'``."""
    if not isinstance(value, str):
        raise TypeError(f"a string literal must be str, not {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"string literal {value!r} contains a NUL character")
    return "'" + value.replace("'", "''") + "'"


def unquote(text: str) -> str:
    """A quoted identifier or string literal without its quotes (``"a""b"`` -> ``a"b``,
    ``[x]`` -> ``x``); any other text as it is."""
    if len(text) >= 2 and text[0] in "\"`'" and text[-1] == text[0]:
        return text[1:-1].replace(text[0] * 2, text[0])
    if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        return text[1:-1]
    return text
