"""The one lexer (``sqlnb/_sql.py``) against SQLite's own parser, on generated SQL.

SQLite is the oracle: our compiled core (``sqlnb._fast``, SQLite 3.50) prepares the
text, and the stdlib's ``sqlite3`` (an older SQLite, a separate build) gives a second
opinion through ``sqlite3_complete`` and its binding by name and by position.

- ``is_blank(s)`` iff SQLite prepares no statement from ``s`` (``RawConnection.prepare``
  returns ``None``); text SQLite refuses is never blank;
- ``param_names(s)`` equals ``sqlite3_bind_parameter_name`` for 1..count of the statement
  SQLite prepared (``RawStatement.param_names()``): ``?``, ``?NNN``, ``:a``, ``@a``,
  ``#a``, ``$a::b(c)``;
- ``first_keyword(s)`` is the token SQLite starts the statement with: ``EXPLAIN`` put
  where our lexer says the statement starts makes SQLite prepare an EXPLAIN, and a
  comment put right after our keyword changes nothing;
- token boundaries are SQLite's: a comment between every two adjacent tokens of a
  statement changes nothing SQLite reports;
- ``tokens(s, space=True)`` gives ``s`` back exactly, for any text;
- ``quote_identifier``/``quote_literal`` round-trip through SQLite.

The strategies extend the project's (``tests/test_fuzz.py``: its SQL words and cells)
with comments, string and blob literals, quoted identifiers, numbers and parameters.
Settings are deterministic (``derandomize``, no example database): the suite does not
depend on luck or on the machine.
"""
from __future__ import annotations

import os
import sqlite3
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlnb
from sqlnb import _fast, _sql, errors
from tests.test_fuzz import SQL_WORDS, cells

EXAMPLES = int(os.environ.get("SQLNB_LEXER_EXAMPLES", "300"))
LEXER = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                        HealthCheck.data_too_large])

# --- the oracles ---------------------------------------------------------------------------

RAW = _fast.RawConnection(":memory:")
STDLIB = sqlite3.connect(":memory:", isolation_level=None)
for _sqltext in ("CREATE TABLE t(a, b)",):
    _st, _ = RAW.prepare(_sqltext.encode())
    _st.step()
    _st.finalize()
    STDLIB.execute(_sqltext)


def sqlite_statements(text: str):
    """SQLite's split of ``text``: the ``(piece, statement)`` it prepared, one after the other,
    and how the rest ends: ``("blank", rest, None)`` or ``("error", rest, exc)``."""
    data = text.encode()
    offset, out = 0, []
    while True:
        rest = data[offset:].decode()
        try:
            stmt, tail = RAW.prepare(data, offset)
        except errors.Error as exc:
            return out, ("error", rest, exc)
        if stmt is None:
            return out, ("blank", rest, None)
        out.append((data[offset:tail].decode(), stmt))
        offset = tail


def first_token(piece: str) -> _sql.Token:
    """Our first token of a statement's text, past leading empty statements."""
    return next(t for t in _sql.tokens(piece) if t.text != ";")


def check_statement(piece: str, stmt) -> None:
    """One statement SQLite prepared: our lexer must say what SQLite says about it."""
    assert not _sql.is_blank(piece), piece
    assert _sql.param_names(piece) == stmt.param_names(), piece
    kw = _sql.first_keyword(piece)
    assert kw, f"SQLite prepared a statement our lexer finds no keyword in: {piece!r}"
    tok = first_token(piece)
    assert tok.kind == "word" and tok.text.upper() == kw
    start, end = tok.start, tok.start + len(tok.text)
    # SQLite starts the statement where we say: EXPLAIN put there makes it an EXPLAIN
    if kw == "EXPLAIN":
        assert stmt.isexplain in (1, 2)
    else:
        probe, _ = RAW.prepare((piece[:start] + "EXPLAIN " + piece[start:]).encode())
        try:
            assert probe is not None and probe.isexplain == 1, piece
        finally:
            if probe is not None:
                probe.finalize()
    # ... and SQLite's keyword token ends where ours does
    split, _ = RAW.prepare((piece[:end] + "/**/" + piece[end:]).encode())
    try:
        assert split is not None and split.param_names() == stmt.param_names(), piece
        assert split.column_count == stmt.column_count, piece
    finally:
        if split is not None:
            split.finalize()
    check_stdlib(piece, kw, start)


def check_stdlib(piece: str, kw: str, start: int) -> None:
    """The stdlib's SQLite binds exactly ``len(param_names)`` values by position, and by
    name exactly when every parameter has a name. The statement is compiled under
    EXPLAIN so nothing runs (an ATTACH in the fuzz must not create a file)."""
    explain = piece if kw == "EXPLAIN" else piece[:start] + "EXPLAIN " + piece[start:]
    names = _sql.param_names(piece)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: named placeholders by position
        try:
            STDLIB.execute(explain, [None] * len(names)).fetchall()
        except sqlite3.OperationalError:
            return  # the stdlib's older SQLite refuses this text (e.g. 1_000 needs 3.46): no opinion
        with pytest.raises(sqlite3.ProgrammingError):
            STDLIB.execute(explain, [None] * (len(names) + 1))
    if not names:
        return
    by_name = {n[1:]: None for n in names if n is not None}
    if None in names:
        with pytest.raises(sqlite3.ProgrammingError):  # "Binding i has no name"
            STDLIB.execute(explain, by_name)
    else:
        STDLIB.execute(explain, by_name).fetchall()


def check_text(text: str, *, must_prepare: bool = False) -> None:
    statements, (how, rest, exc) = sqlite_statements(text)
    try:
        for piece, stmt in statements:
            check_statement(piece, stmt)
    finally:
        for _, stmt in statements:
            stmt.finalize()
    if how == "blank":
        assert _sql.is_blank(rest), f"SQLite prepares no statement from {rest!r}"
        assert _sql.first_keyword(rest) == "" and _sql.param_names(rest) == []
    else:
        assert not must_prepare, f"SQLite refused generated SQL {rest!r}: {exc}"
        assert not _sql.is_blank(rest), f"SQLite refuses {rest!r} ({exc}) but the lexer calls it blank"
    assert _sql.is_blank(text) == (not statements and how == "blank")


# --- strategies ----------------------------------------------------------------------------

CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
TEXT = st.text(CHARS, max_size=12)
LINE = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00\n"), max_size=12)
# identifier characters: ASCII, '$', and anything from U+0080 (SQLite takes every such
# character, a no-break space included, as part of a name)
NAME = st.text(st.one_of(st.sampled_from("abcxyzXYZ_$09"), st.sampled_from("é\u00a0\u2028\ufeff字"),
                         st.characters(min_codepoint=0x80, exclude_categories=("Cs",))),
               min_size=1, max_size=6)
SPACE = st.sampled_from([" ", "\n", "\t", "\r\n", "\f", "  ", " \v", "\n\v\t"])
COMMENT = st.one_of(
    LINE.map(lambda s: "--" + s + "\n"),
    TEXT.map(lambda s: "/*" + s.replace("*/", "* /") + "*/"),
    st.just("/**/"),
)
# comments that can only end the text: unterminated, or a line comment without its newline
END_COMMENT = st.one_of(LINE.map(lambda s: "--" + s), st.text(CHARS, min_size=1, max_size=12).map(lambda s: "/*" + s))
SEP = st.lists(st.one_of(SPACE, COMMENT), min_size=1, max_size=3).map("".join)
JUNK = st.lists(st.one_of(SPACE, COMMENT, st.just(";")), max_size=4).map("".join)
TAIL = st.tuples(JUNK, st.one_of(st.just(""), END_COMMENT)).map("".join)

STRING = TEXT.map(lambda s: "'" + s.replace("'", "''") + "'")
BLOB = st.tuples(st.sampled_from("xX"), st.binary(max_size=6), st.booleans()).map(
    lambda t: t[0] + "'" + (t[1].hex().upper() if t[2] else t[1].hex()) + "'")
NUMBER = st.one_of(
    st.integers(0, 10**20).map(str),
    st.tuples(st.integers(0, 999), st.integers(0, 999)).map(lambda t: f"{t[0]}.{t[1]}"),
    st.integers(0, 999).map(lambda n: f".{n}"),
    st.tuples(st.integers(0, 99), st.sampled_from(["e", "E", "e+", "E-"]), st.integers(0, 99)).map(
        lambda t: f"{t[0]}{t[1]}{t[2]}"),
    st.integers(0, 2**62).map(lambda n: f"0x{n:X}"),
    st.tuples(st.integers(1, 99), st.integers(0, 999)).map(lambda t: f"{t[0]}_{t[1]:03d}"),  # 3.46+
)
QUOTED = st.one_of(
    TEXT.map(lambda s: '"' + s.replace('"', '""') + '"'),
    TEXT.map(lambda s: "`" + s.replace("`", "``") + "`"),
    TEXT.map(lambda s: "[" + s.replace("]", "") + "]"),
)
TCL = st.tuples(NAME, NAME, st.one_of(st.just(""), st.text(st.characters(
    exclude_categories=("Cs", "Zs", "Zl", "Zp"), exclude_characters="\x00)\t\n\v\f\r "), max_size=5).map(
    lambda s: "(" + s + ")"))).map(lambda t: f"{t[0]}::{t[1]}{t[2]}")
PARAM = st.one_of(
    st.just("?"),
    st.integers(1, 12).map(lambda n: f"?{n}"),
    st.integers(1, 12).map(lambda n: f"?0{n}"),
    st.tuples(st.sampled_from(":@$"), NAME).map("".join),
    st.tuples(st.sampled_from(":@$#"), st.sampled_from("abcdxyz"), NAME).map("".join),  # '#1' is not one
    st.tuples(st.sampled_from(":@$"), TCL).map("".join),
    st.tuples(st.sampled_from(":@$"), st.sampled_from(["a", "b", "c"])).map("".join),  # repeats
)


def keyword(word: str):
    """A keyword in a random case."""
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda up: "".join(c.upper() if u else c.lower() for c, u in zip(word, up)))


ATOM = st.one_of(STRING, BLOB, NUMBER, PARAM, keyword("NULL"))


def _binary(parts):
    left, sep1, op, sep2, right = parts
    return f"{left}{sep1} {op} {sep2}{right}"  # spaced: '-' then a '--' comment is not '---'



EXPR = st.recursive(ATOM, lambda inner: st.one_of(
    st.tuples(inner, SEP, st.sampled_from(["+", "-", "*", "/", "||", "=", "<>", "<=", "AND", "->", "->>"]),
              SEP, inner).map(_binary),
    st.tuples(SEP, inner, SEP).map(lambda t: "(" + t[0] + t[1] + t[2] + ")"),
), max_leaves=6)


@st.composite
def statement(draw):
    """One statement SQLite prepares, its words, literals and parameters split by
    whitespace or comments: returns (text, its first keyword)."""
    s = lambda: draw(SEP)  # noqa: E731
    k = lambda w: draw(keyword(w))  # noqa: E731
    e = lambda: draw(EXPR)  # noqa: E731
    shape = draw(st.sampled_from(["select", "values", "with", "insert", "update", "delete", "explain",
                                  "pragma", "create", "begin", "alias"]))
    if shape == "select":
        body = f"{k('SELECT')}{s()}{e()}{s()},{s()}{e()}{s()}{k('FROM')}{s()}t{s()}{k('WHERE')}{s()}t.b{s()}={s()}{e()}"
    elif shape == "values":
        body = f"{k('VALUES')}{s()}({s()}{e()}{s()},{s()}{e()})"
    elif shape == "with":
        body = (f"{k('WITH')}{s()}c(x){s()}{k('AS')}{s()}({k('SELECT')}{s()}{e()}){s()}"
                f"{k('SELECT')}{s()}x,{s()}{e()}{s()}{k('FROM')}{s()}c")
    elif shape == "insert":
        body = f"{k('INSERT')}{s()}{k('INTO')}{s()}t{s()}{k('VALUES')}({e()},{s()}{e()})"
    elif shape == "update":
        body = f"{k('UPDATE')}{s()}t{s()}{k('SET')}{s()}a{s()}={s()}{e()}{s()}{k('WHERE')}{s()}b={e()}"
    elif shape == "delete":
        body = f"{k('DELETE')}{s()}{k('FROM')}{s()}t{s()}{k('WHERE')}{s()}a{s()}{k('IN')}{s()}({e()},{e()})"
    elif shape == "explain":
        plan = draw(st.sampled_from(["", "QUERY PLAN "]))
        body = f"{k('EXPLAIN')}{s()}{plan}{k('SELECT')}{s()}{e()}"
    elif shape == "pragma":
        body = f"{k('PRAGMA')}{s()}" + draw(st.sampled_from(["user_version", "table_info(t)", "main.page_size"]))
    elif shape == "create":
        name = draw(QUOTED.filter(lambda q: not _sql.unquote(q).lower().startswith("sqlite_")))
        body = f"{k('CREATE')}{s()}{k('TABLE')}{s()}{k('IF')}{s()}{k('NOT')}{s()}{k('EXISTS')}{s()}{name}{s()}(x{s()},{s()}y)"
    elif shape == "begin":
        body = draw(st.sampled_from(["BEGIN", "begin immediate", "COMMIT", "savepoint sp", "ROLLBACK"]))
    else:
        body = f"{k('SELECT')}{s()}{e()}{s()}{k('AS')}{s()}{draw(QUOTED)}"
    return body


SCRIPT = st.tuples(JUNK, statement(), st.one_of(st.just(""), st.tuples(st.just(";"), JUNK, statement()).map(
    "".join)), TAIL).map("".join)

# raw text: the pieces glued with no separator (adjacent tokens must split as SQLite splits
# them), the project's fuzz words and cells, and any text at all
PIECE = st.one_of(STRING, BLOB, NUMBER, QUOTED, PARAM, COMMENT, END_COMMENT, SPACE, st.sampled_from(SQL_WORDS),
                  st.sampled_from(list("'\"`[]-/*;:@#$?x.eE_()\v\u00a0\x1c") + ["?0", "?40000", "$a(", "$::",
                                                                                  "0x", "1e", "1_", "--", "/*"]))
SOUP = st.lists(PIECE, max_size=10).map("".join)
ANY = st.one_of(SOUP, cells, TEXT, SCRIPT, JUNK.map(lambda j: j + "SELECT 1"), TAIL)


# --- the properties ------------------------------------------------------------------------

@LEXER
@given(text=SCRIPT)
def test_generated_statements_agree_with_sqlite(text):
    check_text(text, must_prepare=True)


@LEXER
@given(text=st.one_of(SOUP, cells, TEXT.filter(lambda s: "\x00" not in s), TAIL))
def test_any_text_agrees_with_sqlite(text):
    if "\x00" in text:  # sqlnb refuses a NUL (SQLite would silently stop there): never blank
        with pytest.raises(errors.ProgrammingError):
            RAW.prepare(text.encode())
        assert not _sql.is_blank(text)
        return
    check_text(text)


@LEXER
@given(text=st.one_of(JUNK, TAIL, st.lists(st.one_of(SPACE, COMMENT, END_COMMENT, st.just(";")), max_size=4).map(
    "".join)))
def test_blank_text_is_what_sqlite_skips(text):
    check_text(text)


@LEXER
@given(text=ANY)
def test_tokens_round_trip(text):
    toks = list(_sql.tokens(text, space=True))
    assert "".join(t.text for t in toks) == text
    pos = 0
    for t in toks:
        assert t.start == pos and t.text
        pos += len(t.text)
    assert list(_sql.tokens(text)) == [t for t in toks if t.kind not in ("space", "comment")]


def _closed(tok: _sql.Token) -> bool:
    """Whether a string, blob, quoted identifier or block comment has its closing mark."""
    text, q = tok.text, tok.text[0]
    if tok.kind == "blob":
        return len(text) >= 3 and text.endswith("'")
    if tok.kind in ("string", "ident") and q in "'\"`":
        return q + _sql.unquote(text).replace(q, q + q) + q == text
    if tok.kind == "ident":  # [name]
        return len(text) >= 2 and text.endswith("]")
    if tok.kind == "comment" and text.startswith("/*"):
        return len(text) >= 4 and text.endswith("*/")
    return True


def _complete(text: str) -> bool:
    """``sqlite3_complete`` as our tokens say it: the last token is ``;`` and nothing is left open."""
    toks = list(_sql.tokens(text, space=True))
    significant = [t for t in toks if t.kind not in ("space", "comment")]
    return all(map(_closed, toks)) and bool(significant) and significant[-1].text == ";"


@LEXER
@given(text=st.one_of(ANY, SCRIPT.map(lambda s: s + ";"), SOUP.map(lambda s: s + ";")))
def test_complete_statement_agrees_with_the_stdlib(text):
    """The stdlib's ``sqlite3.complete_statement`` (SQLite's ``sqlite3_complete``, a second
    tokenizer inside SQLite) agrees on strings, identifiers, comments and ``;``.
    Not compared: CREATE (its TRIGGER ... END state machine), and a vertical tab, which
    ``sqlite3_complete`` calls a token while ``sqlite3GetToken`` continues a space with it."""
    if "\x00" in text or "\v" in text or any(w.upper == "CREATE" for w in _sql.tokens(text)):
        return
    assert sqlite3.complete_statement(text) == _complete(text), text


@LEXER
@given(text=SCRIPT)
def test_a_comment_between_any_two_tokens_changes_nothing(text):
    """Our token boundaries are SQLite's: glue a comment between every two adjacent
    tokens and SQLite prepares the same statements, with the same parameters."""
    toks = list(_sql.tokens(text, space=True))
    glued = []
    for prev, tok in zip([None] + toks, toks):
        if prev is not None and prev.kind not in ("space", "comment") and tok.kind not in ("space", "comment"):
            glued.append("/**/")
        glued.append(tok.text)
    before, (how1, _, _) = sqlite_statements(text)
    after, (how2, _, _) = sqlite_statements("".join(glued))
    try:
        assert how1 == how2 == "blank"
        assert [s.param_names() for _, s in before] == [s.param_names() for _, s in after]
        assert [s.column_count for _, s in before] == [s.column_count for _, s in after]
        assert [_sql.first_keyword(p) for p, _ in before] == [_sql.first_keyword(p) for p, _ in after]
    finally:
        for _, s in before + after:
            s.finalize()


# parameters SQLite numbers in ways a naive scan does not: each case also runs through the
# property above, so a regression names its example
@pytest.mark.parametrize("sql", [
    "SELECT ?3", "SELECT ?, ?1", "SELECT :a, ?1", "SELECT ?1, :a", "SELECT ?2, ?, :a, ?", "SELECT ?1, ?01",
    "SELECT :a, :a, @a, $a, #a", "SELECT $a::b(c), :a::b, @x(1)", "SELECT $::a", "SELECT :é, @\u00a0",
    "SELECT ?12, ?3", "/* ? :a */ SELECT '?' AS \":b\", 1 AS [@c], 2 AS `$d` -- :e",
    ";; SELECT :x", "SELECT 1; SELECT :y", "SELECT 1_000, 0x1F, .5e3, x'00ff'",
])
def test_known_parameter_shapes(sql):
    check_text(sql, must_prepare=True)


@pytest.mark.parametrize("sql, blank", [
    ("", True), (" ", True), (";", True), (" ; ;\n", True), ("-- x", True), ("/* x", True), ("/**/", True),
    ("/*", False), ("/*/", True), (" \v", True), ("\v", False), ("\u00a0", False), ("--\n;", True),
    ("'", False), ("x'0'", False), ("[", False),
])
def test_known_blank_shapes(sql, blank):
    assert _sql.is_blank(sql) is blank
    check_text(sql)


# --- quoting round-trips through SQLite ----------------------------------------------------

# fresh databases: the created table must be the only one
QUOTE_CONS = (sqlnb.connect(":memory:", engine="sqlite", isolation_level=None),
              sqlite3.connect(":memory:", isolation_level=None))


@LEXER
@given(value=TEXT)
def test_quote_literal_round_trips(value):
    lit = _sql.quote_literal(value)
    assert [t.kind for t in _sql.tokens(lit)] == ["string"] and _sql.unquote(lit) == value
    for con in QUOTE_CONS:
        assert con.execute(f"SELECT {lit}, {lit} = ?", (value,)).fetchall() == [(value, 1)]


@LEXER
@given(name=TEXT.filter(lambda n: not n.lower().startswith("sqlite_")))
def test_quote_identifier_round_trips(name):
    q = _sql.quote_identifier(name)
    assert [t.kind for t in _sql.tokens(q)] == ["ident"] and _sql.unquote(q) == name
    for con in QUOTE_CONS:
        con.execute(f"CREATE TABLE {q} ({q})")
        try:
            assert con.execute("SELECT name FROM sqlite_master").fetchall() == [(name,)]
            cur = con.execute(f"SELECT {q} AS {q} FROM {q}")
            assert cur.description[0][0] == name
        finally:
            con.execute(f"DROP TABLE {q}")


@pytest.mark.parametrize("bad", ["a\x00b", 3, None, b"x"])
def test_quoting_refuses_what_cannot_be_quoted(bad):
    for quote in (_sql.quote_identifier, _sql.quote_literal):
        with pytest.raises(ValueError if isinstance(bad, str) else TypeError):
            quote(bad)
