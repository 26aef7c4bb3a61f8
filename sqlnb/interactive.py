"""An interactive, paged view of a result (the ``interactive`` extra: itables).

    import sqlnb.interactive
    sqlnb.interactive.show(df)               # sort, search, page through the rows

Call :func:`show` on any DataFrame, a ``%sql`` result included; in a cell,
``%sql --interactive SELECT ...`` (or ``%%sql --interactive``) shows the result
this way instead of the static HTML table (``-o NAME`` still stores it). The view
is rendered by DataTables through
`itables <https://mwouts.github.io/itables/>`_ in offline mode: the library's
JavaScript is embedded once per kernel session (the first ``show`` displays
it), nothing is fetched from the internet.

The rows are sent to the browser with the output, so a very large result is
downsampled by itables to about ``max_bytes`` (it keeps the first and last
rows and says so in the table's caption); page through a bigger result with
``%sql --browse`` (each page one SQL query, only the page sent: docs/browse.md),
or raise ``max_bytes`` (0 = send everything).
"""
from __future__ import annotations

from sqlnb.progress import in_kernel

MAX_BYTES = "2MB"   # default upper bound on the data embedded in one view
PAGE_LENGTH = 20    # rows per page

_ready = False      # the offline DataTables bundle was displayed in this kernel

__all__ = ["available", "show", "init", "to_html", "MAX_BYTES", "PAGE_LENGTH"]


def available() -> bool:
    """True when the ``interactive`` extra (itables) is installed."""
    try:
        import itables  # noqa: F401
    except ImportError:
        return False
    return True


def _itables():
    try:
        import itables
    except ImportError:
        raise ModuleNotFoundError(
            "the interactive table view needs the 'itables' package: "
            "pip install 'sqlnb[interactive]'") from None
    return itables


def _options(caption, max_bytes, page_length, options):
    opts = {"maxBytes": MAX_BYTES if max_bytes is None else max_bytes,
            "pageLength": PAGE_LENGTH if page_length is None else int(page_length),
            "classes": "display compact nowrap cell-border",
            "showIndex": False}
    if caption:
        opts["caption"] = caption
    opts.update(options)
    return opts


def to_html(df, *, caption: str | None = None, max_bytes=None, page_length=None, **options) -> str:
    """The HTML of the interactive view (needs the bundle :func:`show` displays first)."""
    itables = _itables()
    return itables.to_html_datatable(df, connected=False, **_options(caption, max_bytes, page_length, options))


def show(df, *, caption: str | None = None, max_bytes=None, page_length=None, **options) -> None:
    """Display ``df`` as an interactive table: pages, sorting, search.

    :param df: a pandas DataFrame (or anything itables accepts).
    :param caption: a line under the table (e.g. a result's footer).
    :param max_bytes: downsample beyond this much data (``"2MB"``, ``10**7``; 0 = never).
    :param page_length: rows per page.
    :param options: further itables/DataTables options (``scrollY``, ``lengthMenu``, ...).

    Outside Jupyter, itables prints a Markdown preview instead.
    """
    itables = _itables()
    if in_kernel() is None:
        itables.show(df, **_options(caption, max_bytes, page_length, options))
        return
    from IPython.display import HTML, display

    if not _ready:
        init()
    display(HTML(to_html(df, caption=caption, max_bytes=max_bytes, page_length=page_length, **options)))


def init() -> None:
    """Display the DataTables bundle (offline) in this cell; :func:`show` does it once per kernel.

    Call it again if the cell that showed it was cleared and the page reloaded.
    """
    global _ready
    _itables().init_notebook_mode(all_interactive=False, connected=False)
    _ready = True
