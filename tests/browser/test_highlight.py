"""SQL highlighting of ``%%sql`` and ``%sql`` cells in a real JupyterLab (the notebook extra's
jupyterlabs-sql-codemirror).

The extension keys on the cell's text (it starts with ``%sql`` or ``%%sql``), not on a kernel: the kernel
here loads only sqlnb. In the editor's DOM, the SQL keywords of a ``%%sql`` cell carry the same
styling (class and colour) as a Python keyword (``import``) of a Python cell, a string literal
that spells a keyword does not, and the same words in a Python cell are not keywords. The
screenshot of the ``%%sql`` cell holds text in the keyword colour; the Python cell with the same
words holds none.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from labdriver import add_cell_at_end, code_cells, error_outputs, open_notebook, outputs_text, run_cell, \
    wait_executed
from test_lab import shot, write_notebook

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"

SQL_CELL = "%%sql\nSELECT 1 AS one, 'FROM' AS word\nWHERE 1 = 1\nORDER BY one"
PY_CELL = "import os\nSELECT = FROM = WHERE = 'no SQL here'"
KEYWORDS = {"SELECT", "AS", "WHERE", "ORDER", "BY"}

# every leaf span of a cell's editor: text, class, colour
_SPANS = """cell => Array.from(cell.querySelectorAll('.cm-content .cm-line span'))
  .filter(s => s.children.length === 0)
  .map(s => ({text: s.textContent, cls: s.className, color: getComputedStyle(s).color}))"""


def spans(cell):
    return cell.element_handle().evaluate(_SPANS)


def keyword_style(page, cell_index: int):
    """(class, colour) of the Python keyword ``import`` in code cell ``cell_index``."""
    found = [s for s in spans(code_cells(page).nth(cell_index)) if s["text"] == "import"]
    assert found, "the Python cell has no highlighted 'import' (is the editor highlighting at all?)"
    return found[0]["cls"], found[0]["color"]


def _wait_for_spans(page, cell, words, timeout_ms=30_000):
    """Wait until the editor has painted a span for each of ``words`` (highlighting is applied)."""
    page.wait_for_function(
        "([cell, words]) => words.every(w => Array.from(cell.querySelectorAll('.cm-line span'))"
        ".some(s => s.textContent === w))", arg=[cell.element_handle(), sorted(words)], timeout=timeout_ms)


def keyword_styled(cell, kw_class, kw_color) -> set:
    """The words of ``cell`` that carry the keyword styling."""
    return {s["text"] for s in spans(cell) if s["cls"] == kw_class and s["color"] == kw_color}


def assert_python_words_are_not_keywords(cell, kw_color):
    py = spans(cell)
    assert not {s["text"] for s in py if s["color"] == kw_color} & {"SELECT", "FROM", "WHERE"}, py


def type_and_check(page, source, kw_class, kw_color) -> int:
    """Add a cell with ``source`` typed in; its SQL keywords get the keyword styling; its index."""
    i = add_cell_at_end(page, source)
    typed = code_cells(page).nth(i)
    _wait_for_spans(page, typed, {"SELECT", "FROM", "WHERE"})
    assert {"SELECT", "FROM", "WHERE", "AS"} <= keyword_styled(typed, kw_class, kw_color)
    return i


def open_cells(page, lab, name, sql_cells):
    """A notebook of a set-up cell, ``sql_cells``, then the Python cell, opened; (cells, keyword class,
    keyword colour), the styling read from the Python cell's ``import``."""
    write_notebook(lab.root / name, ["%load_ext sqlnb\n%sql :memory:", *sql_cells, PY_CELL])
    open_notebook(page, lab, name)
    cells = code_cells(page)
    py = len(sql_cells) + 1
    _wait_for_spans(page, cells.nth(py), {"import"})
    return (cells, *keyword_style(page, py))


def _rgb(css: str) -> tuple[int, int, int]:
    inner = css[css.index("(") + 1:css.index(")")]
    return tuple(int(float(x)) for x in inner.split(",")[:3])


def png_pixels(data: bytes):
    """The (width, height, rows of RGB tuples) of an 8-bit RGB/RGBA PNG (chromium's screenshots)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def count_colour(png: bytes, rgb, tolerance: int = 12) -> int:
    _, _, rows = png_pixels(png)
    return sum(1 for row in rows for px in row if all(abs(px[i] - rgb[i]) <= tolerance for i in range(3)))


@pytest.mark.timeout(300)
def test_sql_keywords_in_a_sql_cell_carry_the_keyword_styling(lab, page):
    cells, kw_class, kw_color = open_cells(page, lab, "highlight-check.ipynb", [SQL_CELL])

    # the cell as saved in the notebook (never typed into) is highlighted as SQL
    _wait_for_spans(page, cells.nth(1), KEYWORDS)
    got = spans(cells.nth(1))
    styled = {s["text"] for s in got if s["cls"] == kw_class and s["color"] == kw_color}
    assert KEYWORDS <= styled, f"SQL keywords not keyword-styled: {KEYWORDS - styled}; spans: {got}"
    # a string that spells a keyword is a string, not a keyword
    word = [s for s in got if s["text"] == "'FROM'"]
    assert word and word[0]["color"] != kw_color, word
    # the same words in a Python cell are names, not keywords
    assert_python_words_are_not_keywords(cells.nth(2), kw_color)

    # a %%sql cell typed in by hand is highlighted too, and it is sqlnb's magic that runs it
    i = type_and_check(page, "%%sql\nSELECT 6 * 7 AS answer FROM (SELECT 1) WHERE 1", kw_class, kw_color)
    run_cell(page, 0)
    wait_executed(page, 0)
    run_cell(page, i)
    wait_executed(page, i)
    assert "42" in outputs_text(code_cells(page).nth(i)) and "sqlite" in outputs_text(code_cells(page).nth(i))
    assert error_outputs(page).count() == 0

    # the screenshot: keyword-coloured text in the %%sql cell, none in the Python cell
    rgb = _rgb(kw_color)
    SHOTS.mkdir(parents=True, exist_ok=True)
    sql_png = cells.nth(1).locator(".cm-content").screenshot(path=str(SHOTS / "highlight-sql-cell.png"))
    py_png = cells.nth(2).locator(".cm-line").nth(1).screenshot(path=str(SHOTS / "highlight-python-line.png"))
    shot(page, "highlight-notebook")
    assert count_colour(sql_png, rgb) > 40, f"no text in the keyword colour {rgb} in the %%sql cell's screenshot"
    assert count_colour(py_png, rgb) == 0, "keyword-coloured text in the Python line with the same words"


LINE_CELL = "%sql SELECT 2 AS two FROM (SELECT 1) WHERE 1 = 1 ORDER BY two"
INDENTED_CELL = "\n\n%%sql\nSELECT 3 AS three WHERE 1 = 1"


@pytest.mark.timeout(300)
def test_sql_after_a_line_sql_magic_is_highlighted_as_sql(lab, page):
    """A cell that starts with the line magic (``%sql SELECT ...``), or with ``%%sql`` after blank
    lines, is highlighted as SQL too, and runs through sqlnb."""
    cells, kw_class, kw_color = open_cells(page, lab, "highlight-line.ipynb", [LINE_CELL, INDENTED_CELL])
    for index, words in ((1, {"SELECT", "AS", "FROM", "WHERE", "ORDER", "BY"}), (2, {"SELECT", "AS", "WHERE"})):
        _wait_for_spans(page, cells.nth(index), words)
        styled = keyword_styled(cells.nth(index), kw_class, kw_color)
        assert words <= styled, f"cell {index}: SQL keywords not keyword-styled: {words - styled}"
    assert_python_words_are_not_keywords(cells.nth(3), kw_color)

    # typed by hand, a line magic cell is highlighted as soon as it reads %sql
    i = type_and_check(page, "%sql SELECT 6 * 7 AS answer FROM (SELECT 1) WHERE 1", kw_class, kw_color)
    for index in (0, 1, 2, i):
        run_cell(page, index)
        wait_executed(page, index)
    assert "two" in outputs_text(code_cells(page).nth(1))
    assert "three" in outputs_text(code_cells(page).nth(2))
    assert "42" in outputs_text(code_cells(page).nth(i))
    assert error_outputs(page).count() == 0, [error_outputs(page).nth(k).text_content()
                                              for k in range(error_outputs(page).count())]

    rgb = _rgb(kw_color)
    SHOTS.mkdir(parents=True, exist_ok=True)
    line_png = cells.nth(1).locator(".cm-content").screenshot(path=str(SHOTS / "highlight-line-magic.png"))
    assert count_colour(line_png, rgb) > 40, f"no text in the keyword colour {rgb} in the %sql line's screenshot"
