"""Column profiles and histograms computed inside SQLite, against full scans and the pandas route.

On the benchmark database of ``datagen`` (the ``mixed`` table: 2,000,000 rows, 7 columns; the
``numeric`` table: 5,000,000 rows; ``--quick``: 1/10 of both), each contender runs in a process
of its own (peak RSS is the process's, minus what it held before the timed work, pandas already
imported in every contender):

* ``scan``: one plain full scan reading every column (``SELECT count(c1), count(c2), ... FROM t``);
* ``sqlnb.profile``: :func:`sqlnb.profile` of the table (every column);
* ``sqlnb.profile(approx=True)``: the one-scan approximate profile (the ``sqlnb_profile`` C aggregate);
* ``pandas``: ``query_df("SELECT * FROM mixed")`` + ``describe(include="all")`` + ``value_counts()``
  of every column (the route of fetching the table and profiling it in Python);
* ``jupysql``: ``%sqlcmd profile --table mixed`` (JupySQL's profile) where it runs;
* ``histogram``: ``sqlnb.look.plots.histogram_data`` of ``numeric.x`` (50 bins) against one full
  scan of the ``numeric`` table (every column: the issue's unit of a scan) and, stricter, against
  one scan of that column alone (``SELECT count(x)``).

Times are wall and CPU (the process's own, ``time.process_time``: the machine is shared, CPU time
is the steadier figure). Targets (report only, ratios of one run): profile within 4 scans' time, faster than the pandas route,
peak memory under 10% of the pandas route's; histogram within 2 scans' time, peak memory flat.
Writes ``build/bench/profile.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _rss_mb() -> float:
    """This process's peak RSS (VmHWM: ru_maxrss would carry the parent's peak across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    """Start the peak over from the current RSS (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _columns(con, table):
    return [r[1] for r in con.execute(f"PRAGMA table_info({table})").fetchall()]


def _full_scan(con, table) -> None:
    """One plain full scan of ``table`` reading every column (the issue's unit of a scan)."""
    con.execute("SELECT " + ", ".join(f"count({c})" for c in _columns(con, table)) + f" FROM {table}").fetchall()


def work(which: str, db: str) -> dict:
    import sqlnb

    con = sqlnb.connect(db, mode="ro")
    import pandas  # noqa: F401  (both routes return DataFrames: the import is not the work measured)

    _reset_peak()
    before = _rss_mb()
    t0 = time.perf_counter()
    c0 = time.process_time()
    extra = {}
    if which == "scan":
        _full_scan(con, "mixed")
    elif which == "profile":
        df = sqlnb.profile(con, "mixed")
        extra = {"scans": df.attrs["scans"], "rows_fetched": df.attrs["rows_fetched"]}
    elif which == "profile_approx":
        df = sqlnb.profile(con, "mixed", approx=True)
        extra = {"scans": df.attrs["scans"], "rows_fetched": df.attrs["rows_fetched"]}
    elif which == "pandas":
        df = con.query_df("SELECT * FROM mixed")
        df.describe(include="all")
        for c in df.columns:
            df[c].value_counts().head(5)
    elif which == "jupysql":
        import io
        from contextlib import redirect_stdout

        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        cfg = Config()
        cfg.HistoryManager.enabled = False
        ip = InteractiveShell.instance(config=cfg)
        with redirect_stdout(io.StringIO()):
            ip.run_line_magic("load_ext", "sql")
            ip.run_line_magic("sql", f"sqlite:///{db}")
            _reset_peak()
            before = _rss_mb()
            t0 = time.perf_counter()
            c0 = time.process_time()
            ip.run_line_magic("sqlcmd", "profile --table mixed")
    elif which == "scan_numeric":
        _full_scan(con, "numeric")
    elif which == "scan_x":
        con.execute("SELECT count(x) FROM numeric").fetchall()
    elif which == "histogram":
        from sqlnb.look import plots

        d = plots.histogram_data(con, "numeric", "x", bins=50)
        extra = {"rows_fetched": d.rows_fetched}
    took = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {"seconds": took, "cpu": cpu, "peak_mb": _rss_mb(), "extra_mb": max(_rss_mb() - before, 0.0), **extra}


def run(which: str, db: Path) -> dict | str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    p = subprocess.run([sys.executable, __file__, "--worker", which, "--db", str(db)], capture_output=True,
                       text=True, env=env, timeout=3600)
    if p.returncode != 0:
        return (p.stderr.strip().splitlines() or ["failed"])[-1][:200]
    return json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--worker")
    ap.add_argument("--db")
    ap.add_argument("--only", help="comma-separated contenders (the scans always run)")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(work(args.worker, args.db)))
        return 0
    sys.path.insert(0, str(HERE))
    import datagen

    db = datagen.default_db(quick=args.quick)
    scans = ("scan", "scan_numeric", "scan_x")
    which = ("scan", "profile", "profile_approx", "pandas", "jupysql", "scan_numeric", "scan_x", "histogram")
    if args.only:
        which = tuple(w for w in which if w in args.only.split(",") or w in scans)
    res = {}
    for w in which:
        best = None
        for _ in range(max(args.runs, 1)):
            r = run(w, db)
            if isinstance(r, str) or best is None or (isinstance(best, dict) and r["seconds"] < best["seconds"]):
                best = r if best is None or not isinstance(r, str) else best
        res[w] = best
    rows = (datagen.MIXED_ROWS, datagen.NUMERIC_ROWS) if not args.quick else (datagen.MIXED_ROWS // 10,
                                                                              datagen.NUMERIC_ROWS // 10)
    lines = ["# Profiles and histograms inside SQLite", "",
             f"`{db.name}`: `mixed` {rows[0]:,} rows × 7 columns, `numeric` {rows[1]:,} rows; one process per "
             f"contender; best of {args.runs}.", "",
             f"load average before: {os.getloadavg()[0]:.1f}.", "",
             "| contender | time | CPU | × scans (wall) | × scans (CPU) | peak RSS | RSS added | notes |",
             "|---|---|---|---|---|---|---|---|"]

    def row(name, key, base):
        r = res.get(key)
        if r is None:
            return None
        if isinstance(r, str):
            lines.append(f"| {name} | failed: {r} | | | | | | |")
            return None
        b = res[base]
        ratio = f"{r['seconds'] / b['seconds']:.1f}" if isinstance(b, dict) and b["seconds"] > 0 else "n/a"
        cratio = f"{r['cpu'] / b['cpu']:.1f}" if isinstance(b, dict) and b.get("cpu") else "n/a"
        notes = ", ".join(f"{k} {v:,}" for k, v in r.items() if k in ("scans", "rows_fetched"))
        lines.append(f"| {name} | {r['seconds']:.2f} s | {r['cpu']:.2f} s | {ratio} | {cratio} | {r['peak_mb']:.0f} MB "
                     f"| {r['extra_mb']:.0f} MB | {notes} |")
        return r

    row("one full scan of mixed (every column)", "scan", "scan")
    prof = row("sqlnb.profile(mixed)", "profile", "scan")
    approx = row("sqlnb.profile(mixed, approx=True)", "profile_approx", "scan")
    pdr = row("query_df + describe + value_counts", "pandas", "scan")
    row("JupySQL %sqlcmd profile", "jupysql", "scan")
    row("one full scan of numeric (every column)", "scan_numeric", "scan_numeric")
    row("one scan of numeric.x alone", "scan_x", "scan_x")
    hist = row("histogram of numeric.x (50 bins)", "histogram", "scan_numeric")
    lines.append("")
    if prof and isinstance(res["scan"], dict):
        lines.append(f"* profile / scan = {prof['seconds'] / res['scan']['seconds']:.1f} (target ≤ 4)")
    if prof and pdr:
        lines.append(f"* profile / pandas route = {prof['seconds'] / pdr['seconds']:.2f} (target < 1); "
                     f"RSS added {prof['extra_mb']:.0f} MB vs {pdr['extra_mb']:.0f} MB = "
                     f"{100 * prof['extra_mb'] / max(pdr['extra_mb'], 1):.0f}% (target < 10%)")
    if approx and isinstance(res["scan"], dict):
        sc = res["scan"]
        lines.append(f"* approx profile / scan = {approx['seconds'] / sc['seconds']:.1f} wall, "
                     f"{approx['cpu'] / sc['cpu']:.1f} CPU (target ≤ 4)")
    if approx and pdr:
        lines.append(f"* approx profile / pandas route = {approx['seconds'] / pdr['seconds']:.2f} wall, "
                     f"{approx['cpu'] / pdr['cpu']:.2f} CPU (target < 1); RSS added {approx['extra_mb']:.0f} MB vs "
                     f"{pdr['extra_mb']:.0f} MB = {100 * approx['extra_mb'] / max(pdr['extra_mb'], 1):.0f}% (target < 10%)")
    if hist and isinstance(res.get("scan_numeric"), dict) and isinstance(res.get("scan_x"), dict):
        sn, sx = res["scan_numeric"], res["scan_x"]
        lines.append(f"* histogram / full scan of numeric = {hist['seconds'] / sn['seconds']:.1f} wall, "
                     f"{hist['cpu'] / sn['cpu']:.1f} CPU (target ≤ 2); RSS added {hist['extra_mb']:.0f} MB "
                     "(target: flat)")
        lines.append(f"* histogram / scan of numeric.x alone = {hist['seconds'] / sx['seconds']:.1f} wall, "
                     f"{hist['cpu'] / sx['cpu']:.1f} CPU (two reads of the column: 2 + what the aggregates "
                     "add per row)")
    text = "\n".join(lines) + "\n"
    name = "profile.md" if not args.only else f"profile-{args.only.replace(',', '-')}.md"
    out = Path(os.environ.get("SQLNB_CACHE", ROOT / "build")) / "bench" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
