"""Small Playwright helpers for driving JupyterLab 4 the way a person does (menus, buttons, keys)."""
from __future__ import annotations

import re
import time

KERNEL_IDLE = '.jp-Notebook-ExecutionIndicator[data-status="idle"]'


def open_notebook(page, lab, name: str, timeout_ms: int = 90_000):
    """Open ``name`` (relative to the lab root) in a fresh workspace and wait until its kernel is idle."""
    workspace = getattr(page, "sqlnb_workspace", "sqlnb-test")
    page.goto(lab.url(f"lab/workspaces/{workspace}/tree/{name}", "reset"))
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout_ms)
    page.wait_for_selector(KERNEL_IDLE, timeout=timeout_ms)
    # the status bar names the kernel once a session is connected
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=timeout_ms)
    panels = page.locator(".jp-NotebookPanel")
    assert panels.count() == 1, f"{panels.count()} notebooks open; the workspace was not fresh"
    # make it the current notebook: menu commands act on the current one
    code_cells(page).first.locator(".jp-InputPrompt").first.click()


def cells(page):
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")


def code_cells(page):
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-CodeCell")


def prompt(cell) -> str:
    # textContent, not innerText: off-screen cells are skipped by content-visibility
    return (cell.locator(".jp-InputPrompt").first.text_content() or "").strip()


def menu(page, top: str, label: str):
    """Click a main-menu entry by its visible label (e.g. Run > Run All Cells)."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{re.escape(top)}$")).click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(label)}$")).click()


def run_all(page):
    menu(page, "Run", "Run All Cells")


def interrupt(page):
    """Press the notebook toolbar's stop button."""
    page.locator('.jp-NotebookPanel:visible jp-button[data-command="notebook:interrupt-kernel"]').click()


def wait_executed(page, index: int, timeout: float = 120.0):
    """Wait until code cell ``index`` has an execution count (not ``[ ]`` or ``[*]``)."""
    cell = code_cells(page).nth(index)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = prompt(cell)
        if re.fullmatch(r"\[\d+\]:", p):
            return p
        time.sleep(0.1)
    raise TimeoutError(f"code cell {index} still shows {prompt(cell)!r} after {timeout} s")


def wait_all_executed(page, timeout: float = 600.0):
    """Wait until every code cell has an execution count and the kernel is idle."""
    n = code_cells(page).count()
    for i in range(n):
        wait_executed(page, i, timeout)
    page.wait_for_selector(KERNEL_IDLE, timeout=timeout * 1000)
    return n


def outputs_text(cell) -> str:
    return cell.locator(".jp-OutputArea").first.text_content() or ""


def error_outputs(page):
    """Outputs that show an exception (a traceback or an error line)."""
    return page.locator('.jp-NotebookPanel:visible .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')


def add_cell_at_end(page, source: str):
    """Append a code cell holding ``source`` (one line per statement; typed like a person)."""
    last = cells(page).last
    last.locator(".jp-InputPrompt").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # insert below, command mode
    editor = cells(page).last.locator(".cm-content")
    editor.click()
    for i, line in enumerate(source.split("\n")):
        if i:
            page.keyboard.press("Enter")
            page.keyboard.press("Home")  # no auto-indent carried over
        page.keyboard.insert_text(line)
    return code_cells(page).count() - 1


def run_cell(page, index: int):
    """Select code cell ``index`` and run it with Shift+Enter."""
    cell = code_cells(page).nth(index)
    cell.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
