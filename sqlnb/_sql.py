"""The one SQL lexer: tokens, the first keyword, blank text, parameter names, quoting.

Every place in sqlnb that looks at SQL text calls this module; none has a regular
expression of its own.  It follows SQLite's tokenizer (``sqlite3GetToken`` in
``tokenize.c``, SQLite 3.50) as far as sqlnb needs:

- whitespace is ASCII only (tab, newline, form feed, carriage return, space; a vertical
  tab continues a run but cannot start one); every character from U+0080 up is an
  identifier character, so a no-break space is part of a word, not a space;
- comments: ``--`` to the end of the line, ``/* */`` (unterminated: to the end of the
  text; ``/*`` as the very last two characters is a slash and a star, not a comment);
- string literals (``'it''s'``), blob literals (``x'00ff'``), quoted identifiers
  (``"x"``, ```x```, ``[x]``);
- numbers, including ``0x`` hex and the ``1_000`` digit separators of SQLite 3.46+;
- parameters: ``?``, ``?NNN``, and ``:name``, ``@name``, ``#name``, ``$name``, each
  with Tcl's ``::`` and a trailing ``(...)`` (no space inside);
- words (keywords and bare identifiers).

Text SQLite would refuse (an unterminated string, ``x'0'``) still comes back as
tokens (the round trip of ``tokens(space=True)`` is exact for any text); SQLite
reports the error when the statement is prepared.  ``tests/test_sql_lexer.py``
checks this module against SQLite's own parser (our compiled core, and the stdlib's
``sqlite3`` as a second opinion).

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
# SQLite's whitespace (sqlite3Isspace): ASCII only; a vertical tab continues a run but
# does not start one (tokenize.c classes it as illegal)
_SPACE = r"\t\n\v\f\r "

#: the highest ?NNN SQLite accepts (SQLITE_MAX_VARIABLE_NUMBER, 32766 since 3.32)
MAX_VARIABLE_NUMBER = 32766

_TOKEN = re.compile(rf"""
    (?P<space>[\t\n\f\r ][{_SPACE}]*)
  | (?P<comment>--[^\n]*(?:\n|\Z)|/\*(?=.)(?:[^*]|\*(?!/))*(?:\*/|\Z))
  | (?P<blob>[xX]'[^']*(?:'|\Z))
  | (?P<string>'(?:[^']|'')*(?:'|\Z))
  | (?P<ident>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\]]*(?:\]|\Z))
  | (?P<number>0[xX][0-9A-Fa-f][0-9A-Fa-f_]*
              |(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9][0-9_]*)?)
  | (?P<param>\?[0-9]*
              |[:@#$](?:::)*[{_ID_CHAR}](?:[{_ID_CHAR}]|::)*(?:\([^{_SPACE})]*\)?)?)
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


def _statement_tokens(sql: str) -> Iterator[Token]:
    """The tokens of ``sql`` after its leading empty statements (SQLite skips a leading ``;``)."""
    it = tokens(sql)
    for tok in it:
        if tok.text != ";":
            yield tok
            yield from it
            return


def words(sql: str, limit: int | None = None) -> list[str]:
    """The upper-cased words at the start of ``sql`` (up to ``limit``), stopping at the first
    non-word; leading semicolons are skipped as SQLite skips them."""
    out = []
    for tok in _statement_tokens(sql):
        if tok.kind != "word" or (limit is not None and len(out) >= limit):
            break
        out.append(tok.text.upper())
    return out


def first_keyword(sql: str) -> str:
    """The first keyword of ``sql``, upper-cased, after whitespace, comments and leading
    semicolons (empty statements, which SQLite skips); ``""`` when the text has none."""
    for tok in _statement_tokens(sql):
        return tok.text.upper() if tok.kind == "word" else ""
    return ""


def is_blank(sql: str) -> bool:
    """True when ``sql`` holds only whitespace, comments and semicolons: SQLite prepares
    no statement from it."""
    return all(tok.text == ";" for tok in tokens(sql))


def param_names(sql: str) -> list:
    """The parameters of ``sql`` as SQLite numbers them (``sqlite3_bind_parameter_name``
    for 1..``sqlite3_bind_parameter_count``): item ``i - 1`` is parameter ``i``'s name.

    A bare ``?`` takes the next number and has no name (``None``); ``?NNN`` is number
    NNN, named as first written (the numbers it skips are ``None``: ``SELECT ?3`` has
    ``[None, None, '?3']``); ``:x``/``@x``/``#x``/``$x`` takes the next number the first
    time and the same number again after.  The compiled engines ask SQLite; this serves
    the stdlib engine, whose driver does not expose it.  Pass one statement's text.
    """
    out: list = []
    for tok in tokens(sql):
        if tok.kind != "param":
            continue
        text = tok.text
        if text == "?":
            out.append(None)
        elif text[0] == "?":
            number = int(text[1:])
            if not 1 <= number <= MAX_VARIABLE_NUMBER:
                continue  # SQLite refuses the statement ("variable number must be between ?1 and ?N")
            if number > len(out):
                out.extend([None] * (number - len(out)))
            if out[number - 1] is None:
                out[number - 1] = text
        elif text not in out:
            out.append(text)
    return out


def _quoted(text: str, quote: str, what: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be str, not {type(text).__name__}")
    if "\x00" in text:
        raise ValueError(f"{what} {text!r} contains a NUL character")
    return quote + text.replace(quote, quote * 2) + quote


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier: ``x"y`` -> ``"x""y"`` (any text is just a name,
    never a keyword)."""
    return _quoted(name, '"', "an identifier")


def quote_literal(value: str) -> str:
    """``value`` as an SQL string literal: ``'it''s'``."""
    return _quoted(value, "'", "a string literal")


def unquote(text: str) -> str:
    """A quoted identifier or string literal without its quotes (``"a""b"`` -> ``a"b``,
    ``[x]`` -> ``x``); any other text as it is."""
    if len(text) >= 2 and text[0] in "\"`'" and text[-1] == text[0]:
        return text[1:-1].replace(text[0] * 2, text[0])
    if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        return text[1:-1]
    return text
