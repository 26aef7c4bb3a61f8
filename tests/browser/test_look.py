"""notebooks/02-look-at-data.ipynb in a real JupyterLab through headless chromium: the profiles show
their per-column pictures, and every plot is an image a user sees (in the DOM: a loaded, visible
``<img>`` of real size in the cell's output; in a screenshot of it: a drawing, not a blank area)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from labdriver import code_cells, error_outputs, open_notebook, outputs_text, run_all, wait_all_executed

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
NOTEBOOK = "02-look-at-data.ipynb"


def plot_cells(page):
    n = code_cells(page).count()
    src = [code_cells(page).nth(i).locator(".jp-InputArea").first.text_content() or "" for i in range(n)]
    return [i for i, s in enumerate(src) if "sqlplot" in s or "plots.histogram" in s]


def colours_in(png: bytes) -> int:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.thumbnail((200, 200))
    return len(img.getcolors(maxcolors=1 << 16) or ())


@pytest.mark.timeout(900)
def test_look_notebook_shows_plots_as_images(lab, page):
    open_notebook(page, lab, NOTEBOOK)
    run_all(page)
    wait_all_executed(page, timeout=600)
    assert error_outputs(page).count() == 0, [outputs_text(code_cells(page).nth(i))
                                              for i in range(code_cells(page).count())]
    # the profiles: one HTML table each, one picture (an inline SVG) per column
    profiles = page.locator(".jp-NotebookPanel:visible .sqlnb-profile")
    assert profiles.count() == 2
    assert profiles.nth(0).locator("svg.sqlnb-picture").count() == 19  # every column of flights
    assert "a sample: the first 20,000 rows of flights" in (profiles.nth(0).text_content() or "")
    SHOTS.mkdir(parents=True, exist_ok=True)
    profiles.nth(1).scroll_into_view_if_needed()
    page.wait_for_timeout(400)
    profiles.nth(1).screenshot(path=str(SHOTS / "look-profile.png"))

    cells = plot_cells(page)
    assert len(cells) == 6
    for i in cells:
        cell = code_cells(page).nth(i)
        img = cell.locator(".jp-OutputArea .jp-RenderedImage img")
        assert img.count() == 1, f"code cell {i}: {img.count()} images"
        img.scroll_into_view_if_needed()
        page.wait_for_timeout(300)  # let the scrolled-to cell paint (content-visibility)
        loaded = img.evaluate("el => el.complete && el.naturalWidth > 0 && el.naturalHeight > 0")
        assert loaded, f"code cell {i}: the image did not load"
        assert img.is_visible()
        box = img.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 120, (i, box)
        assert img.get_attribute("src").startswith("data:image/png")
        png = img.screenshot(path=str(SHOTS / f"look-plot-{i}.png"))
        # a drawing: axes, labels and marks in several colours; a blank or broken image has one or two
        assert colours_in(png) > 20, f"code cell {i}: the image looks blank"
    page.screenshot(path=str(SHOTS / "look-notebook.png"), full_page=False)
