"""How a result shows in a notebook: HTML-escaped, truncated for display only, with a footer.

A statement's result is a :class:`SqlResult`: a pandas DataFrame (the whole
result, never truncated) that renders itself with a footer giving rows ×
columns, elapsed time, engine and version, and the connection's mode and
policies. Operations on it (``head``, ``merge``, ...) return plain DataFrames.
"""
from __future__ import annotations

import html
import math
import weakref
from dataclasses import dataclass

import pandas as pd


@dataclass
class DisplayOptions:
    """Display limits (the magic keeps these in step with its ``%config`` traits)."""

    max_rows: int = 20  # rows shown: the first and last max_rows // 2
    max_cols: int = 30  # columns shown: the first and last max_cols // 2
    max_chars: int = 200  # characters shown of one value
    show_timing: bool = True  # per-statement timing line under a multi-statement cell


OPTIONS = DisplayOptions()

_STYLE = (
    "<style>.sqlnb-result table{border-collapse:collapse}"
    ".sqlnb-result .sqlnb-null{color:#999;font-style:italic}"
    ".sqlnb-result .sqlnb-footer{color:#666;font-size:smaller;margin-top:.3em}"
    ".sqlnb-result .sqlnb-more{color:#999;text-align:center}</style>"
)


class SqlResult(pd.DataFrame):
    """A statement's full result as a DataFrame, displayed with sqlnb's footer.

    ``.sqlnb`` holds the statement's :class:`sqlnb.notebook.cell.StatementInfo`;
    ``.results`` lists every statement's result of the same cell, in order.
    """

    # only the statement's info travels with the frame (copies, pickles); the earlier results
    # of the cell are weak references outside pandas' metadata, so this result neither keeps
    # them alive nor carries them into a pickle
    _metadata = ["sqlnb"]

    @property
    def _constructor(self):
        return pd.DataFrame

    @property
    def results(self) -> list:
        """The cell's results in order, this one last: the earlier ones while something holds
        them (``_sqlnb_results`` does until the next cell runs, or your own variables)."""
        earlier = (r() for r in self.__dict__.get("_sqlnb_earlier", ()))
        return [*(r for r in earlier if r is not None), self]

    def _repr_html_(self):
        return render_html(self, getattr(self, "sqlnb", None), results=self.results)

    def __repr__(self):
        info = getattr(self, "sqlnb", None)
        if info is not None and not info.has_columns:
            body = changed_text(info)
        else:
            body = table_text(self)
        return body + "\n" + footer_text(self, info, results=self.results)


def wrap(df: pd.DataFrame, info, earlier=()) -> SqlResult:
    """``df`` as a :class:`SqlResult` sharing its data (no copy); ``earlier``: the cell's previous results."""
    if type(df) is SqlResult:  # built as one already (run_cell(frame_class=SqlResult))
        out = df
    else:
        out = _as_result(df)
    # plain attributes (listed in _metadata); pandas' __setattr__ would first look for a column
    object.__setattr__(out, "sqlnb", info)
    object.__setattr__(out, "_sqlnb_earlier", tuple(weakref.ref(e) for e in earlier))
    return out


def _as_result(df):
    try:  # pandas' constructor for subclasses from a block manager: no re-inference, no copy
        out = SqlResult._from_mgr(df._mgr, axes=df._mgr.axes)
    except (AttributeError, TypeError):
        out = SqlResult(df, copy=False)
    return out


def _fmt_elapsed(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def changed_text(info) -> str:
    if info.rowcount >= 0:
        return f"{info.keyword}: {info.rowcount:,} row{'s' if info.rowcount != 1 else ''} changed"
    return f"{info.keyword or 'statement'}: done"


def footer_parts(df, info) -> list[str]:
    parts = []
    if info is None or info.has_columns:
        nrows, ncols = df.shape
        shown = f"{nrows:,} row{'s' if nrows != 1 else ''} × {ncols} column{'s' if ncols != 1 else ''}"
        if info is not None and info.truncated:
            shown += f" (fetch capped by --limit {info.limit})"
        parts.append(shown)
    if info is not None:
        parts.append(_fmt_elapsed(info.elapsed))
        parts.append(f"{info.engine} {info.version}".strip())
        if info.policy:
            parts.append(info.policy)
    return parts


def timing_text(results) -> str:
    """``1 CREATE 0.2 ms · 2 INSERT 3 rows 0.1 ms · 3 SELECT 12×2 1.1 ms``."""
    out = []
    for r in results:
        i = r.sqlnb
        what = f"{i.index} {i.keyword}"
        if i.has_columns:
            what += f" {r.shape[0]:,}×{r.shape[1]}"
        elif i.rowcount >= 0:
            what += f" {i.rowcount:,} row{'s' if i.rowcount != 1 else ''}"
        out.append(f"{what} {_fmt_elapsed(i.elapsed)}")
    return " · ".join(out)


def footer_text(df, info, results=None) -> str:
    text = " · ".join(footer_parts(df, info))
    if results and len(results) > 1 and OPTIONS.show_timing:
        text += "\nstatements: " + timing_text(results)
    return text


def is_null(v) -> bool:
    """None, NaN, ``pd.NA`` and ``NaT``: every spelling pandas has for SQL's NULL."""
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def value_text(v, max_chars: int) -> str | None:
    """One value as shown (None for NULL): floats in full (the shortest text that reads back
    as the same float), blobs as their size and first bytes, long text cut with '…'."""
    if is_null(v):
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        s = f"<{len(b)} bytes> {b[:16].hex(' ')}{' …' if len(b) > 16 else ''}"
    elif isinstance(v, float):
        s = repr(float(v))
    else:
        s = str(v)
    if max_chars and len(s) > max_chars:
        s = s[:max_chars] + "…"
    return s


def _cell_html(v, max_chars: int) -> str:
    s = value_text(v, max_chars)
    if s is None:
        return '<span class="sqlnb-null">NULL</span>'
    return html.escape(s)


def _pick(n: int, limit: int) -> tuple[list[int], bool]:
    if limit <= 0 or n <= limit:
        return list(range(n)), False
    head = (limit + 1) // 2
    tail = limit // 2
    return list(range(head)) + list(range(n - tail, n)), True


def _shown(df: pd.DataFrame, opts: DisplayOptions):
    """What a display shows of ``df``: ``(rows, cols, row_split, col_split)``; a split is the
    position where the hidden rows/columns are marked (None when nothing is hidden), which
    is the end when only a head is shown (a limit of 1)."""
    nrows, ncols = df.shape
    rows, rows_cut = _pick(nrows, opts.max_rows)
    cols, cols_cut = _pick(ncols, opts.max_cols)
    col_split = (opts.max_cols + 1) // 2 if cols_cut else None
    row_split = (opts.max_rows + 1) // 2 if rows_cut else None
    return rows, cols, row_split, col_split


def table_html(df: pd.DataFrame, opts: DisplayOptions | None = None) -> str:
    """The first and last rows/columns of ``df`` as an escaped HTML table (display only);
    a row and a column of '…' mark what is hidden, with the count of hidden rows."""
    opts = opts or OPTIONS
    nrows, ncols = df.shape
    rows, cols, row_split, col_split = _shown(df, opts)
    hidden_cols = ncols - len(cols)
    names = [str(c) for c in df.columns]
    out = ['<table class="dataframe sqlnb"><thead><tr><th></th>']
    for k, j in enumerate(cols + [None]):
        if k == col_split:
            out.append(f'<th class="sqlnb-more" title="{hidden_cols:,} more columns">…</th>')
        if j is not None:
            out.append(f"<th>{html.escape(names[j])}</th>")
    out.append("</tr></thead><tbody>")
    columns = [df.iloc[rows, j].tolist() for j in cols] if rows else [[] for _ in cols]
    index = df.index[rows].tolist() if rows else []
    for r in range(len(rows) + 1):
        if r == row_split:
            out.append(f'<tr><td class="sqlnb-more" colspan="{len(cols) + 1 + (col_split is not None)}">'
                       f"… {nrows - len(rows):,} more rows …</td></tr>")
        if r == len(rows):
            break
        out.append(f"<tr><th>{html.escape(str(index[r]))}</th>")
        for k in range(len(cols) + 1):
            if k == col_split:
                out.append('<td class="sqlnb-more">…</td>')
            if k < len(cols):
                out.append(f"<td>{_cell_html(columns[k][r], opts.max_chars)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def table_text(df: pd.DataFrame, opts: DisplayOptions | None = None) -> str:
    """The text form of :func:`table_html`: the same rows and columns, the same limits, NULL
    for every missing value whatever the column's type, '…' where rows or columns are hidden."""
    opts = opts or OPTIONS
    nrows, ncols = df.shape
    rows, cols, row_split, col_split = _shown(df, opts)
    names = [str(c) for c in df.columns]
    header = [""] + [names[j] for j in cols]
    index = [str(i) for i in df.index[rows].tolist()] if rows else []
    body = []
    for k, j in enumerate(cols):
        values = df.iloc[rows, j].tolist() if rows else []
        body.append([("NULL" if (t := value_text(v, opts.max_chars)) is None else t) for v in values])
    grid = [header] + [[index[r]] + [body[k][r] for k in range(len(cols))] for r in range(len(rows))]
    if col_split is not None:
        for line in grid:
            line.insert(col_split + 1, "…")
    if row_split is not None:
        grid.insert(row_split + 1, ["…"] * len(grid[0]))
    widths = [max(len(line[c]) for line in grid) for c in range(len(grid[0]))]
    numeric = [False] + [df.dtypes.iloc[j].kind in "iufb" for j in cols]
    if col_split is not None:
        numeric.insert(col_split + 1, False)
    out = []
    for line in grid:
        out.append("  ".join(v.rjust(w) if num else v.ljust(w)
                             for v, w, num in zip(line, widths, numeric)).rstrip())
    if row_split is not None:
        out.append(f"[{nrows - len(rows):,} more rows]")
    return "\n".join(out)


def render_html(df: pd.DataFrame, info=None, results=None) -> str:
    """A result as HTML: the (truncated) table, or what a non-query did, and the footer."""
    body = table_html(df) if (info is None or info.has_columns) else f"<div>{html.escape(changed_text(info))}</div>"
    foot = html.escape(footer_text(df, info, results)).replace("\n", "<br>")
    return f'<div class="sqlnb-result">{_STYLE}{body}<div class="sqlnb-footer">{foot}</div></div>'

