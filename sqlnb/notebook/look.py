"""Looking at data in a notebook: the profile's HTML (a small picture per column) and ``%sqlplot``.

The statistics and the plots' aggregates are :mod:`sqlnb.look`'s (computed inside SQLite);
this module runs them the way a ``%sql`` statement runs (the time limit, live progress in a
kernel, the stop button) and shows the result.
"""
from __future__ import annotations

import contextlib
import html
import math
import time
from dataclasses import dataclass

import pandas as pd

from sqlnb import progress as _progress
from sqlnb.look import plots as _plots
from sqlnb.look import profile as _profile
from sqlnb.notebook import display

#: one colour per storage class (the stacked bar of the picture)
CLASS_COLOURS = {"integer": "#4c72b0", "real": "#55a868", "text": "#dd8452", "blob": "#8172b3",
                 "null": "#cccccc"}

_STYLE = ("<style>.sqlnb-profile td,.sqlnb-profile th{padding:2px 6px;text-align:left;vertical-align:middle}"
          ".sqlnb-profile .sqlnb-null{color:#999;font-style:italic}"
          ".sqlnb-profile .sqlnb-footer{color:#666;font-size:smaller;margin-top:.3em}"
          ".sqlnb-profile .sqlnb-legend span{display:inline-block;width:.8em;height:.8em;margin:0 .2em 0 .6em}"
          "</style>")


@dataclass
class ProfileInfo:
    """How a profile was computed (its footer)."""

    source: str
    elapsed: float
    engine: str
    version: str
    policy: str
    sample: int | None
    scans: int
    approx: dict | None = None         # .attrs["approx"] of an approximate profile
    approx_unavailable: str = ""       # why approx=True computed the exact profile


class ProfileResult(pd.DataFrame):
    """A profile (one row per column) that shows itself as a table with a picture per column."""

    _metadata = ["sqlnb_profile"]

    @property
    def _constructor(self):
        return pd.DataFrame

    def _repr_html_(self):
        return profile_html(self, getattr(self, "sqlnb_profile", None))

    def __repr__(self):
        return pd.DataFrame.__repr__(self) + "\n" + footer(self, getattr(self, "sqlnb_profile", None))


@contextlib.contextmanager
def running(con, label: str, timeout=None):
    """Run look's statements as a ``%sql`` statement runs: ``timeout`` for this run only, live
    progress where a kernel can show it (the stop button interrupts as it does there)."""
    old = None
    if timeout is not None:
        old = con.statement_timeout
        con.statement_timeout = timeout
    try:
        raw = getattr(con, "raw", None)
        if raw is not None and _progress.in_kernel() is not None:
            with _progress.track(raw, label=label):
                yield
        else:
            yield
    finally:
        if timeout is not None and not con.closed:
            con.statement_timeout = old


def run_profile(con, table_or_sql: str, *, sample=None, timeout=None, approx=False) -> ProfileResult:
    """:func:`sqlnb.profile` under the time limit and progress display, as a displayable result."""
    t0 = time.perf_counter()
    with running(con, "profile", timeout):
        df = _profile.profile(con, table_or_sql, sample=sample, approx=approx)
    info = ProfileInfo(source=df.attrs.get("source", ""), elapsed=time.perf_counter() - t0, engine=con.engine,
                       version=con.sqlite_version, policy=con.policy_summary, sample=sample,
                       scans=df.attrs.get("scans", 0), approx=df.attrs.get("approx") or None,
                       approx_unavailable=df.attrs.get("approx_unavailable", ""))
    out = ProfileResult(df)
    out.attrs.update(df.attrs)
    object.__setattr__(out, "sqlnb_profile", info)
    return out


# --- the HTML -------------------------------------------------------------------------------
def _num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, float):
        return format(v, ".6g")
    return f"{v:,}" if isinstance(v, int) else html.escape(str(v))


def picture(row, width: int = 120) -> str:
    """An inline SVG: a bar of the storage classes' shares; under it, for numeric columns, the box
    from the quartiles between min and max, else the shares of the most common values."""
    rows = int(row["rows"]) or 1
    parts = [f'<svg class="sqlnb-picture" width="{width}" height="26" viewBox="0 0 {width} 26" '
             f'role="img" aria-label="distribution of {html.escape(str(row["column"]), quote=True)}">']
    x = 0.0
    for cls in _profile.CLASSES:
        w = width * int(row[cls]) / rows
        if w > 0:
            parts.append(f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="8" fill="{CLASS_COLOURS[cls]}">'
                         f"<title>{cls}: {int(row[cls]):,}</title></rect>")
        x += w
    lo, hi = row["min"], row["max"]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi))
    if numeric and not math.isnan(row["50%"]) and hi > lo:
        def px(v):
            return 2 + (width - 4) * (float(v) - float(lo)) / (float(hi) - float(lo))
        q1, q2, q3 = px(row["25%"]), px(row["50%"]), px(row["75%"])
        parts.append(f'<line x1="2" y1="18" x2="{width - 2}" y2="18" stroke="#888"/>'
                     f'<rect x="{q1:.2f}" y="12" width="{max(q3 - q1, 1):.2f}" height="12" fill="#c6d4ea" '
                     f'stroke="#4c72b0"/><line x1="{q2:.2f}" y1="12" x2="{q2:.2f}" y2="24" stroke="#223"/>')
    else:
        x = 0.0
        for k, (v, n) in enumerate(row["top"] or []):
            w = width * n / rows
            parts.append(f'<rect x="{x:.2f}" y="12" width="{max(w - 1, 0.5):.2f}" height="12" '
                         f'fill="{"#dd8452" if k % 2 == 0 else "#e8b48c"}"><title>'
                         f"{html.escape(str(v)[:60])}: {n:,}</title></rect>")
            x += w
    parts.append("</svg>")
    return "".join(parts)


def _classes_text(row) -> str:
    return " ".join(f"{cls} {int(row[cls]):,}" for cls in _profile.CLASSES if int(row[cls]))


def _top_text(top, max_chars) -> str:
    return "; ".join(f"{display._cell_html(v, 24)} ({n:,})" for v, n in top)[:max_chars * 4]


def footer(df, info) -> str:
    parts = [f"{len(df):,} column{'s' if len(df) != 1 else ''}"]
    if len(df):
        parts.append(f"{int(df['rows'].iloc[0]):,} rows")
    if info is not None:
        if info.sample is not None:
            parts.append(f"a sample: the first {info.sample:,} rows of {info.source}")
        parts += [f"{info.scans} read{'s' if info.scans != 1 else ''} of the source",
                  display._fmt_elapsed(info.elapsed), f"{info.engine} {info.version}".strip()]
        if info.policy:
            parts.append(info.policy)
        if info.approx:
            parts.append(approx_note(info.approx))
        elif info.approx_unavailable:
            parts.append(f"exact (approx unavailable: {info.approx_unavailable})")
    return " · ".join(parts)


def approx_note(a: dict) -> str:
    """What an approximate profile estimated, for the footer (the columns where a sketch was used)."""
    d, q, t = a["distinct"], a["quartiles"], a["top"]

    def cols(names):
        return f" ({', '.join(map(str, names[:4]))}{', …' if len(names) > 4 else ''})" if names else " (none here)"

    return (f"≈ distinct: HyperLogLog, about ±{100 * d['stderr']:.1f}%, exact up to {d['exact_up_to']:,}{cols(d['columns'])}; "
            f"quartiles: from a sample of {q['sample']:,} values{cols(q['columns'])}; "
            f"top: Misra-Gries, {t['counters']:,} counters, counts are lower bounds{cols(t['columns'])}")


def profile_html(df, info=None) -> str:
    """The profile as an HTML table: per column its picture, storage classes and statistics."""
    legend = "".join(f'<span style="background:{c}"></span>{k}' for k, c in CLASS_COLOURS.items())
    head = ["column", "type", "picture", "storage classes", "distinct", "min", "max", "mean", "std",
            "25%", "50%", "75%", "length", "most common"]
    out = [f'<div class="sqlnb-profile">{_STYLE}<table class="dataframe sqlnb"><thead><tr>',
           "".join(f"<th>{h}</th>" for h in head), "</tr></thead><tbody>"]
    for _, row in df.iterrows():
        lengths = ""
        if not pd.isna(row["min_length"]):
            lengths = f"{int(row['min_length']):,}–{int(row['max_length']):,}"
        cells = [html.escape(str(row["column"])), html.escape(str(row["type"] or "")), picture(row),
                 _classes_text(row), _num(int(row["distinct"])),
                 display._cell_html(row["min"], 40), display._cell_html(row["max"], 40),
                 _num(row["mean"]), _num(row["std"]), _num(row["25%"]), _num(row["50%"]), _num(row["75%"]),
                 lengths, _top_text(row["top"] or [], display.OPTIONS.max_chars)]
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    out.append(f'<div class="sqlnb-footer">{html.escape(footer(df, info))}'
               f'<span class="sqlnb-legend">{legend}</span></div></div>')
    return "".join(out)


# --- %sqlplot --------------------------------------------------------------------------------
KINDS = ("histogram", "boxplot", "bar", "pie", "line", "scatter")


def run_plot(con, kind: str, *, table: str, column: str, y=None, by=None, every="day", bins=20, top=10,
             agg="count", sample=None, points=None, timeout=None, ax=None):
    """``%sqlplot KIND --table T --column C``: the aggregate computed in SQLite, drawn; the Axes.

    ``by``: the boxplot's group column; ``every``: the line's bucket (day, week, month);
    ``y``: the scatter's vertical axis, or the column the line aggregates with ``agg``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown plot {kind!r}: choose one of {', '.join(KINDS)}")
    with running(con, f"sqlplot {kind}", timeout):
        if kind == "histogram":
            return _plots.histogram(con, table, column, bins=bins, sample=sample, ax=ax)
        if kind == "boxplot":
            return _plots.boxplot(con, table, column, by=by, sample=sample, ax=ax)
        if kind in ("bar", "pie"):
            fn = _plots.bar if kind == "bar" else _plots.pie
            return fn(con, table, column, top=top, sample=sample, ax=ax)
        if kind == "line":
            return _plots.line(con, table, column, y=y, by=every, agg=agg, sample=sample, ax=ax)
        if y is None:
            raise ValueError("scatter needs --y COLUMN (the vertical axis)")
        return _plots.scatter(con, table, column, y, points=points or _plots.SCATTER_POINTS, ax=ax)


__all__ = ["ProfileResult", "run_profile", "profile_html", "picture", "run_plot", "KINDS", "approx_note"]
