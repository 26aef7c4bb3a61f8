#!/usr/bin/env python3
"""Fetch benchmark: SQLite rows into a DataFrame, sqlnb against its peers and the C limit.

Each run is one fetch in a fresh process (so peak RSS is its own): it opens the
benchmark database (benchmarks/datagen.py), runs the query once and reports the
wall time and the process's peak RSS. ``--runs`` rounds run every method once
each, interleaved, so drift in the machine's speed hits all methods alike. The
table gives the median,
the ratio to the C columnar limit (benchmarks/c/limit.c, compiled here against
the same SQLite amalgamation object sqlnb links), and each peer's time over
sqlnb's. Nothing here asserts a time.

    python benchmarks/bench_fetch.py [--quick] [--runs N] [--only METHOD,...]

Writes the Markdown table to build/bench/fetch.md, or <--out>.md (and prints it); run.py collects
fetch.md and any fetch-*.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import datagen  # noqa: E402

OUT = Path(os.environ.get("SQLNB_CACHE", ROOT / "build")) / "bench"

QUERIES = {
    "mixed": "SELECT * FROM mixed",
    "numeric": "SELECT * FROM numeric",
    "window": " ".join(datagen.WINDOW_QUERY.split()),
}
# method -> (label, queries it runs)
METHODS = {
    "c_limit": ("C columnar limit (same amalgamation)", ("mixed", "numeric", "window")),
    "c_step": ("C step loop only (no copy)", ("mixed", "numeric", "window")),
    "sqlnb": ("sqlnb query_df", ("mixed", "numeric", "window")),
    "sqlnb_arrow": ("sqlnb query_arrow", ("mixed", "numeric", "window")),
    "sqlnb_par2": ("sqlnb query_df parallel=2", ("mixed", "numeric")),
    "read_sql": ("pandas.read_sql (stdlib sqlite3)", ("mixed", "numeric", "window")),
    "connectorx": ("connectorx", ("mixed", "numeric", "window")),
    "connectorx_p2": ("connectorx, 2 partitions", ("mixed", "numeric")),
    "adbc_df": ("ADBC sqlite fetch_df", ("mixed", "numeric", "window")),
    "adbc_arrow": ("ADBC sqlite fetch_arrow_table", ("mixed", "numeric", "window")),
    "apsw": ("apsw + DataFrame.from_records", ("mixed", "numeric", "window")),
}
PARTITION = {"mixed": "id", "numeric": "b"}


# ---------------------------------------------------------------------------
# the C limit
# ---------------------------------------------------------------------------
def build_limit() -> Path:
    """Compile benchmarks/c/limit.c against the cached SQLite object (tools/build_helpers.py)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import build_helpers
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    cc = new_compiler()
    customize_compiler(cc)
    src, objects = build_helpers.own_objects(cc)
    sqlite_obj = [o for o in objects if o.endswith("sqlite3.o")][0]
    exe = OUT / "limit"
    source = HERE / "c" / "limit.c"
    if not exe.exists() or exe.stat().st_mtime < max(source.stat().st_mtime, Path(sqlite_obj).stat().st_mtime):
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cc", "-O2", "-o", str(exe), str(source), sqlite_obj, f"-I{src}",
                        "-lpthread", "-lm", "-ldl"], check=True)
    return exe


# ---------------------------------------------------------------------------
# one method in its own process
# ---------------------------------------------------------------------------
def _proc_status_mb(key: str) -> float:
    """VmHWM (peak) or VmRSS of this process, from /proc (getrusage's ru_maxrss survives exec:
    a worker would report its parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return _proc_status_mb("VmHWM")


def worker(method: str, query: str, db: str, runs: int) -> dict:
    import pandas as pd

    sql = QUERIES[query]
    if method == "sqlnb" or method == "sqlnb_arrow" or method == "sqlnb_par2":
        sys.path.insert(0, str(ROOT))
        import sqlnb

        con = sqlnb.connect(db, engine="sqlite", mode="rw")
        if method == "sqlnb":
            def fetch():
                return con.query_df(sql)
        elif method == "sqlnb_arrow":
            def fetch():
                return con.query_arrow(sql)
        else:
            def fetch():
                return con.query_df(sql, parallel=2)
    elif method == "read_sql":
        import sqlite3

        con = sqlite3.connect(db)

        def fetch():
            return pd.read_sql(sql, con)
    elif method in ("connectorx", "connectorx_p2"):
        import connectorx as cx

        kw = {"partition_on": PARTITION[query], "partition_num": 2} if method == "connectorx_p2" else {}

        def fetch():
            return cx.read_sql(f"sqlite://{db}", sql, **kw)
    elif method in ("adbc_df", "adbc_arrow"):
        import adbc_driver_sqlite.dbapi as adbc

        con = adbc.connect(db)

        def fetch():
            with con.cursor() as cur:
                cur.execute(sql)
                return cur.fetch_df() if method == "adbc_df" else cur.fetch_arrow_table()
    elif method == "apsw":
        import apsw

        con = apsw.Connection(db)

        def fetch():
            cur = con.cursor()
            cur.execute(sql)
            names = [d[0] for d in cur.getdescription()]
            rows = list(cur)
            return pd.DataFrame.from_records(rows, columns=names)
    else:
        raise SystemExit(f"unknown method {method}")
    try:
        import pyarrow  # noqa: F401 - imported before the baseline, like pandas
    except ImportError:
        pass
    base = _proc_status_mb("VmRSS")
    times, nbytes, nrows = [], 0, 0
    for _ in range(runs):
        t0 = time.perf_counter()
        res = fetch()
        times.append(time.perf_counter() - t0)
        nrows = res.num_rows if hasattr(res, "num_rows") else len(res)
        nbytes = res.nbytes if hasattr(res, "num_rows") else int(res.memory_usage(deep=True).sum())
        del res
    return {"times": times, "peak_rss_mb": _peak_rss_mb(), "base_rss_mb": base, "result_mb": nbytes / 2**20,
            "rows": nrows}


def run_method(method: str, query: str, db: Path, runs: int, limit_exe: Path) -> dict | None:
    if method in ("c_limit", "c_step"):
        # opened like sqlnb opens our SQLite (SQLITE_OPEN_NOMUTEX: no mutex on each column read)
        args = [str(limit_exe), str(db), QUERIES[query], "--repeat", str(runs), "--nomutex", "--values"]
        if method == "c_step":
            args.append("--step-only")
        out = subprocess.run(["/usr/bin/time", "-f", "%M"] + args, capture_output=True, text=True)
        if out.returncode != 0:
            return {"error": out.stderr.strip()[-300:]}
        data = json.loads(out.stdout)
        rss = float(out.stderr.strip().splitlines()[-1]) / 1024
        return {"times": data["seconds"], "peak_rss_mb": rss, "base_rss_mb": 0.0, "result_mb": float("nan"),
                "rows": data["rows"]}
    cmd = [sys.executable, __file__, "--worker", method, "--query", query, "--db", str(db), "--runs", str(runs)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _merge_runs(a: dict, b: dict) -> dict:
    """Two fresh-process runs of one method: all times; the memory figures of the hungrier run."""
    hungrier = a if a["peak_rss_mb"] - a["base_rss_mb"] >= b["peak_rss_mb"] - b["base_rss_mb"] else b
    return {**hungrier, "times": a["times"] + b["times"]}


def table(results: dict, runs: int, quick: bool, db: Path) -> str:
    import sqlite3

    rows_of = {}
    with sqlite3.connect(db) as c:
        for q in ("mixed", "numeric"):
            rows_of[q] = c.execute(f"SELECT count(*) FROM {q}").fetchone()[0]
    lines = [f"## Fetch ({'quick sizes' if quick else 'full sizes'}: mixed {rows_of['mixed']:,} rows, "
             f"numeric {rows_of['numeric']:,} rows; median of {runs} rounds, methods interleaved, "
             f"each run one fetch in a fresh process)", ""]
    for q in QUERIES:
        res = results.get(q, {})
        if not res:
            continue
        limit = res.get("c_limit", {})
        c_med = statistics.median(limit["times"]) if "times" in limit else float("nan")
        ours = res.get("sqlnb", {})
        s_med = statistics.median(ours["times"]) if "times" in ours else float("nan")
        lines += [f"### `{q}`" + (" (window query)" if q == "window" else ""), "",
                  "| method | median s | × C limit | × sqlnb | peak RSS MB | fetch RSS / result | result MB |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for m, r in res.items():
            label = METHODS[m][0]
            if "error" in r:
                lines.append(f"| {label} | failed: {r['error']} | | | | | |")
                continue
            med = statistics.median(r["times"])
            grow = ((r["peak_rss_mb"] - r["base_rss_mb"]) / r["result_mb"]
                    if r["result_mb"] == r["result_mb"] and r["result_mb"] > 0 else float("nan"))
            result_mb = f"{r['result_mb']:.0f}" if r["result_mb"] == r["result_mb"] else "–"
            lines.append(f"| {label} | {med:.3f} | {med / c_med:.2f} | {med / s_med:.2f} | "
                         f"{r['peak_rss_mb']:.0f} | {'–' if grow != grow else f'{grow:.2f}'} | {result_mb} |")
        lines.append("")
    lines.append("`× C limit`: median over the C columnar limit's median (1.00 = the physical limit); "
                 "`× sqlnb`: over sqlnb query_df's median (above 1 = slower than sqlnb). "
                 "Peak RSS is the whole process's (interpreter and imports included); "
                 "`fetch RSS / result` is (peak RSS − RSS before the first fetch) over the result's "
                 "own memory (`DataFrame.memory_usage(deep=True)` / `Table.nbytes`).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1/10 of the rows")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated methods (default: all)")
    ap.add_argument("--queries", default="", help="comma-separated queries (default: all)")
    ap.add_argument("--out", default="fetch", help="name of the table file in build/bench (default fetch)")
    ap.add_argument("--from-json", action="store_true", help="only re-render the table from build/bench/<out>.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--query", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.query, args.db, args.runs)))
        return 0
    db = datagen.default_db(quick=args.quick)
    if args.from_json:
        md = table(json.loads((OUT / f"{args.out}.json").read_text()), args.runs, args.quick, db)
        (OUT / f"{args.out}.md").write_text(md)
        print(md)
        return 0
    exe = build_limit()
    methods = [m for m in (args.only.split(",") if args.only else METHODS) if m]
    queries = [q for q in (args.queries.split(",") if args.queries else QUERIES) if q]
    for kind, names, known in (("method", methods, METHODS), ("query", queries, QUERIES)):
        unknown = [n for n in names if n not in known]
        if unknown:
            ap.error(f"unknown {kind} {', '.join(unknown)}; choose from {', '.join(known)}")
    results: dict = {}
    for q in queries:
        # rounds: every method once per round, each run in a fresh process, so that the machine's
        # drift in speed (±30 % within an hour here) spreads over all methods instead of
        # favouring whichever ran in a fast minute
        for r_ in range(args.runs):
            for m in methods:
                if q not in METHODS[m][1]:
                    continue
                prev = results.setdefault(q, {}).get(m)
                if prev is not None and "error" in prev:
                    continue
                r = run_method(m, q, db, 1, exe)
                results[q][m] = r if prev is None or "error" in r else _merge_runs(prev, r)
                shown = f"{r['times'][0]:.3f} s, peak RSS {r['peak_rss_mb']:.0f} MB" if "times" in r else r["error"]
                print(f"[bench_fetch] {q} round {r_ + 1}/{args.runs}: {m}: {shown}", file=sys.stderr, flush=True)
        for m, r in results.get(q, {}).items():
            if "times" in r:
                print(f"[bench_fetch] {q}: {m}: median {statistics.median(r['times']):.3f} s",
                      file=sys.stderr, flush=True)
    md = table(results, args.runs, args.quick, db)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.out}.md").write_text(md)
    (OUT / f"{args.out}.json").write_text(json.dumps(results, indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
