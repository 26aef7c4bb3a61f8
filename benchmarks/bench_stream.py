#!/usr/bin/env python3
"""Benchmark: a result bigger than memory streamed into Parquet and CSV (issue 25).

The table ``events`` (the mixed table's columns: id, ts text, user_id, category, amount,
note text, flag with 10% NULL) of 20,000,000 rows is generated ONCE by the stdlib's
``sqlite3`` (so the data do not depend on the code under test) and cached under
``$SQLNB_CACHE/bench/stream-<rows>.db``; the 5M and 10M cases read its first rows
(``WHERE id <= N``). ``--quick``: 1/10 of every size.

Methods, each run in a fresh process (time from connect to the closed file; peak RSS of
that process, and its growth over the interpreter's baseline after the imports):

* ``sqlnb-stream``       ``sqlnb.export.write_query`` (query_batches + the streaming writers)
* ``sqlnb-inmemory``     ``con.query_df`` then ``DataFrame.to_parquet`` / ``to_csv``
* ``pandas-chunks``      ``pandas.read_sql(chunksize=100_000)`` over the stdlib, each chunk
                         appended (ParquetWriter / ``to_csv(mode="a")``)
* ``duckdb-sqlite``      DuckDB's ``sqlite`` extension (``COPY (FROM sqlite_scan(...)) TO``), if it
                         can be loaded: offline it cannot be downloaded, and the row says so

Reports: the flatness of the streaming path's peak RSS at 5M/10M/20M rows (target: within 10%,
under 300 MB over the baseline) and its throughput against the in-memory path on the
2,000,000-row case (target: at least 0.9x). Writes build/bench/stream.md. Ratios only: nothing
is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

FULL_ROWS = 20_000_000
SIZES = (5_000_000, 10_000_000, 20_000_000)
THROUGHPUT_ROWS = 2_000_000
COLUMNS = "id, ts, user_id, category, amount, note, flag"


def cache_dir() -> Path:
    d = Path(os.environ.get("SQLNB_CACHE", ROOT / "build")) / "bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


def out_dir() -> Path:
    d = ROOT / "build" / "bench" / "stream"
    d.mkdir(parents=True, exist_ok=True)
    return d


def build_events(rows: int) -> Path:
    """The cached database (generated in SQL by the stdlib, deterministic, under a temporary name;
    ``rows``: a multiple of 1,000,000)."""
    path = cache_dir() / f"stream-{rows}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, ts TEXT, user_id INTEGER, category TEXT, "
                "amount REAL, note TEXT, flag INTEGER)")
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 " * 2
    con.execute("CREATE TEMP TABLE k (x INTEGER PRIMARY KEY)")  # 0..999, cross-joined: the row numbers
    con.executemany("INSERT INTO k VALUES (?)", [(x,) for x in range(1000)])
    with con:
        con.execute(f"""
            WITH c(x) AS (SELECT a.x * 1000000 + b.x * 1000 + d.x + 1 FROM k a, k b, k d
                          WHERE a.x < {rows // 1_000_000} ORDER BY a.x, b.x, d.x)
            INSERT INTO events
            SELECT x,
                   datetime(1704067200 + x * 1.5, 'unixepoch'),
                   (x * 2654435761) % 50000 + 1,
                   printf('cat%02d', (x * 7) % 20),
                   round(((x * 48271) % 100000) / 100.0, 2),
                   substr('{alphabet}', 1 + (x * 31) % 60, 10 + (x * 17) % 51),
                   CASE WHEN x % 10 = 0 THEN NULL ELSE (x / 3) % 2 END
            FROM c""")
    con.close()
    os.replace(tmp, path)
    return path


# --- one measurement, in a child process --------------------------------------------------
def child(method: str, db: str, rows: int, fmt: str, out: str) -> dict:
    import resource

    import pandas as pd  # noqa: F401 (the baseline includes what every method imports)
    import pyarrow as pa  # noqa: F401
    import pyarrow.parquet as pq

    import sqlnb
    from sqlnb import export

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sql = f"SELECT {COLUMNS} FROM events WHERE id <= {rows}"
    t0 = time.perf_counter()
    written = rows
    if method == "sqlnb-stream":
        con = sqlnb.connect(db, mode="ro")
        written = export.write_query(con, sql, out).rows
        con.close()
    elif method == "sqlnb-inmemory":
        con = sqlnb.connect(db, mode="ro")
        df = con.query_df(sql)
        written = len(df)
        if fmt == "parquet":
            df.to_parquet(out, index=False)
        else:
            df.to_csv(out, index=False)
        con.close()
    elif method == "pandas-chunks":
        import pandas as pd

        con = sqlite3.connect(db)
        writer = None
        written = 0
        for k, chunk in enumerate(pd.read_sql(sql, con, chunksize=100_000)):
            written += len(chunk)
            if fmt == "parquet":
                t = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(out, t.schema)
                writer.write_table(t.cast(writer.schema))
            else:
                chunk.to_csv(out, index=False, mode="w" if k == 0 else "a", header=k == 0)
        if writer is not None:
            writer.close()
        con.close()
    elif method == "duckdb-sqlite":
        import duckdb

        d = duckdb.connect()
        try:
            d.execute("LOAD sqlite")
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            try:
                d.execute("INSTALL sqlite")
                d.execute("LOAD sqlite")
            except Exception as exc2:  # noqa: BLE001
                first = (str(exc2) or str(exc)).splitlines()[0]
                why = "not installed, and its download failed (offline)" if "download" in first.lower() else first[:100]
                return {"error": f"DuckDB's sqlite extension: {why}"}
        opts = "(FORMAT parquet)" if fmt == "parquet" else "(FORMAT csv, HEADER)"
        d.execute(f"COPY (SELECT {COLUMNS} FROM sqlite_scan('{db}', 'events') WHERE id <= {rows}) TO '{out}' {opts}")
        d.close()
    else:
        raise SystemExit(f"unknown method {method}")
    took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": took, "peak_mb": peak, "base_mb": base, "rows": written}


def run_child(method, db, rows, fmt) -> dict:
    out = out_dir() / f"{method}-{rows}.{fmt}"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", method, str(db), str(rows), fmt, str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    out.unlink(missing_ok=True)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1][:160]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def median_of(method, db, rows, fmt, runs) -> dict:
    got = [run_child(method, db, rows, fmt) for _ in range(runs)]
    if any("error" in g for g in got):
        return next(g for g in got if "error" in g)
    return {"seconds": statistics.median(g["seconds"] for g in got),
            "peak_mb": max(g["peak_mb"] for g in got), "base_mb": min(g["base_mb"] for g in got),
            "rows": got[0]["rows"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1/10 of every size")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--child", nargs=5, metavar=("METHOD", "DB", "ROWS", "FMT", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--big-inmemory", action="store_true",
                    help="also run the in-memory and pandas paths at every size (needs many GB)")
    args = ap.parse_args(argv)
    if args.child:
        m, db, rows, fmt, out = args.child
        print(json.dumps(child(m, db, int(rows), fmt, out)))
        return 0
    div = 10 if args.quick else 1
    sizes = [s // div for s in SIZES]
    t0 = time.monotonic()
    db = build_events(FULL_ROWS // div)
    built = time.monotonic() - t0
    lines = [f"## stream: a query streamed into a file (issue 25){' (--quick: 1/10)' if args.quick else ''}", "",
             f"`events`: {FULL_ROWS // div:,} rows, cached in `{db.name}` (built in {built:.0f} s when absent); "
             f"median of {args.runs} run(s), each a fresh process; RSS growth = peak RSS less the "
             "interpreter's after its imports.", "",
             "| method | format | rows | seconds | rows/s | peak RSS MB | growth MB |", "|---|---|---:|---:|---:|---:|---:|"]
    results = {}

    def row(method, fmt, n):
        r = median_of(method, db, n, fmt, args.runs)
        results[(method, fmt, n)] = r
        if "error" in r:
            lines.append(f"| {method} | {fmt} | {n:,} | n/a | | | {r['error']} |")
        else:
            lines.append(f"| {method} | {fmt} | {n:,} | {r['seconds']:.2f} | {n / r['seconds']:,.0f} | "
                         f"{r['peak_mb']:.0f} | {r['peak_mb'] - r['base_mb']:.0f} |")
        print(lines[-1], file=sys.stderr, flush=True)

    tp = THROUGHPUT_ROWS // div
    for fmt in ("parquet", "csv"):
        for method in ("sqlnb-stream", "sqlnb-inmemory", "pandas-chunks", "duckdb-sqlite"):
            row(method, fmt, tp)
        for n in sizes:
            row("sqlnb-stream", fmt, n)
            if args.big_inmemory:
                for method in ("sqlnb-inmemory", "pandas-chunks"):
                    row(method, fmt, n)
        row("duckdb-sqlite", fmt, sizes[-1])
    lines.append("")
    for fmt in ("parquet", "csv"):
        grow = [results[("sqlnb-stream", fmt, n)] for n in sizes]
        if all("error" not in g for g in grow):
            g = [x["peak_mb"] - x["base_mb"] for x in grow]
            spread = (max(x["peak_mb"] for x in grow) / min(x["peak_mb"] for x in grow) - 1) * 100
            peaks = ", ".join(f"{x['peak_mb']:.0f}" for x in grow)
            counts = ", ".join(f"{n:,}" for n in sizes)
            lines.append(f"* {fmt}: streaming peak RSS at {counts} rows: "
                         f"{peaks} MB (spread {spread:.1f}%, target <= 10%; "
                         f"growth over the baseline {max(g):.0f} MB at most, target < 300 MB)")
        s, m = results[("sqlnb-stream", fmt, tp)], results[("sqlnb-inmemory", fmt, tp)]
        if "error" not in s and "error" not in m:
            lines.append(f"* {fmt}: throughput at {tp:,} rows, streaming / in-memory: "
                         f"{m['seconds'] / s['seconds']:.2f}x (target >= 0.9x)")
    (ROOT / "build" / "bench").mkdir(parents=True, exist_ok=True)
    (ROOT / "build" / "bench" / "stream.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
