"""How a result shows in a notebook (the public name of :mod:`sqlnb.notebook.display`).

``sqlnb.display.SqlResult`` is the class of a ``%sql`` result. Importing this module
imports pandas, never IPython.
"""
from sqlnb.notebook.display import (
    OPTIONS,
    DisplayOptions,
    SqlResult,
    changed_text,
    footer_parts,
    footer_text,
    render_html,
    table_html,
    timing_text,
    wrap,
)

__all__ = ["OPTIONS", "DisplayOptions", "SqlResult", "changed_text", "footer_parts", "footer_text",
           "render_html", "table_html", "timing_text", "wrap"]
