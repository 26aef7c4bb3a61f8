#!/usr/bin/env python3
"""Benchmark: a DataFrame into a new SQLite table (issue 8).

The 2,000,000-row mixed frame (``datagen.mixed_frame``; ``--quick``: 1/10)
written into a fresh database file, in one run, by:

* ``sqlnb``          ``Connection.to_table`` on our SQLite (the Cython loop)
* ``sqlnb-system``   ``Connection.to_table`` on the stdlib engine (executemany)
* ``c-loop``         benchmarks/c/insert_loop.c: a C prepared-INSERT loop over the
                     same columns, linked against the same amalgamation object, with
                     as many rows per step as to_table uses (sqlnb.export.ROWS_PER_STEP)
* ``c-loop-1row``    the same loop with one row per step (the classic prepared insert)
* ``pandas.to_sql``  ``DataFrame.to_sql`` over the stdlib ``sqlite3``
* ``sqlite-utils``   ``Table.insert_all`` (the frame turned into records first, as its users do)
* ``sqlnb-bdb``      ``to_table`` on BerkeleyDB SQL (only with ``--methods``; slow by nature)

Each run is a fresh process that loads the frame (not timed), then times
opening the database, creating and filling the table, committing and closing.
Prints the median of ``--runs`` runs, rows/s, the ratios to sqlnb and to the C
loop, and the peak RSS of the process; writes the table to build/bench/export.md.
Targets (reported, not asserted): sqlnb >= 3x faster than pandas.to_sql and
within 1.5x of the C loop.
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
sys.path.insert(0, str(ROOT))

DEFAULT_METHODS = ["sqlnb", "c-loop", "c-loop-1row", "pandas.to_sql", "sqlite-utils", "sqlnb-system"]
ALL_METHODS = DEFAULT_METHODS + ["sqlnb-bdb"]


def out_root() -> Path:
    """Outputs and the prepared data go under this checkout's build/ (objects come from SQLNB_CACHE)."""
    return ROOT / "build"


def work_dir() -> Path:
    d = out_root() / "bench" / "export"
    d.mkdir(parents=True, exist_ok=True)
    return d


# --- data ----------------------------------------------------------------------
def prepare_data(n: int) -> tuple[Path, Path]:
    """The frame as Parquet (for the Python methods) and as raw column files (for the C loop)."""
    import numpy as np

    from datagen import mixed_frame

    parquet = work_dir() / f"mixed-{n}.parquet"
    cols = work_dir() / f"mixed-{n}.cols"
    if parquet.exists() and (cols / "done").exists():
        return parquet, cols
    df = mixed_frame(n)
    df.to_parquet(parquet, index=False)
    cols.mkdir(exist_ok=True)
    for c in ("id", "user_id"):
        df[c].to_numpy(dtype=np.int64).tofile(cols / f"{c}.i64")
    df["amount"].to_numpy(dtype=np.float64).tofile(cols / "amount.f64")
    df["flag"].to_numpy(dtype=np.int64, na_value=0).tofile(cols / "flag.i64")
    df["flag"].isna().to_numpy().astype(np.uint8).tofile(cols / "flag.null")
    for c in ("ts", "category", "note"):
        data = [s.encode("utf-8") for s in df[c].tolist()]
        off = np.zeros(len(data) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in data], out=off[1:])
        off.tofile(cols / f"{c}.off")
        (cols / f"{c}.dat").write_bytes(b"".join(data))
    (cols / "done").write_text(str(n))
    return parquet, cols


def build_c_loop() -> Path:
    """Compile benchmarks/c/insert_loop.c against our cached SQLite object (tools/build_helpers)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    import build_helpers

    cc = new_compiler()
    customize_compiler(cc)
    src_dir, objects = build_helpers.own_objects(cc)
    sqlite_obj = next(o for o in objects if o.endswith("sqlite3.o"))
    exe = work_dir() / "insert_loop"
    source = HERE / "c" / "insert_loop.c"
    if exe.exists() and exe.stat().st_mtime > max(source.stat().st_mtime, Path(sqlite_obj).stat().st_mtime):
        return exe
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", str(exe), str(source), sqlite_obj,
                    f"-I{src_dir}", "-lpthread", "-lm", "-ldl"], check=True)
    return exe


# --- one timed run (in a fresh process) --------------------------------------------
def child(method: str, parquet: str, db: str) -> dict:
    import resource

    import pandas as pd

    df = pd.read_parquet(parquet)
    for p in (Path(db), Path(db + "-journal")):
        p.unlink(missing_ok=True)
    # imports are not timed
    import sqlite3

    import sqlnb
    import sqlnb.export  # noqa: F401
    if method == "sqlite-utils":
        import sqlite_utils
    t0 = time.perf_counter()
    if method.startswith("sqlnb"):
        engine = {"sqlnb": "sqlite", "sqlnb-system": "system", "sqlnb-bdb": "bdb"}[method]
        con = sqlnb.connect(db, engine=engine)
        con.to_table(df, "mixed")
        con.close()
    elif method == "pandas.to_sql":
        con = sqlite3.connect(db)
        df.to_sql("mixed", con, index=False)
        con.commit()
        con.close()
    elif method == "sqlite-utils":
        records = df.astype(object).where(df.notna(), None).to_dict("records")
        database = sqlite_utils.Database(db)
        # one transaction around the whole insert (plain insert_all commits every batch)
        with database.atomic():
            database["mixed"].insert_all(records, batch_size=10_000)
        database.close()
    else:
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"seconds": seconds, "rss_mb": rss}


def one_run(method: str, n: int, parquet: Path, cols: Path, exe: Path | None) -> dict:
    db = work_dir() / f"out-{method}.db"
    if method == "sqlnb-bdb":
        import shutil

        shutil.rmtree(str(db) + "-journal", ignore_errors=True)
    for p in (db, Path(str(db) + "-journal")):
        if p.is_file():
            p.unlink()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    if method.startswith("c-loop"):
        from sqlnb.export import ROWS_PER_STEP

        cmd = [str(exe), str(db), str(cols), str(n), "1" if method == "c-loop-1row" else str(ROWS_PER_STEP)]
    else:
        cmd = [sys.executable, __file__, "--child", method, str(parquet), str(db)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    import sqlite3

    check = sqlite3.connect(db) if method != "sqlnb-bdb" else None
    if check is not None:
        got = check.execute("SELECT count(*) FROM mixed").fetchone()[0]
        check.close()
        if got != n:
            raise SystemExit(f"{method}: wrote {got} rows, expected {n}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1/10 of the rows")
    ap.add_argument("--runs", type=int, default=None, help="runs per method (default 3, quick 5)")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help=f"comma-separated subset of: {', '.join(ALL_METHODS)}")
    ap.add_argument("--child", nargs=3, metavar=("METHOD", "PARQUET", "DB"), help=argparse.SUPPRESS)
    ap.add_argument("--prepare", type=int, metavar="N", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.prepare:
        prepare_data(args.prepare)
        return 0
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0

    from datagen import MIXED_ROWS

    n = MIXED_ROWS // 10 if args.quick else MIXED_ROWS
    runs = args.runs or (5 if args.quick else 3)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad:
        ap.error(f"unknown methods {bad}; choose from {ALL_METHODS}")
    # generate the data in a separate process: Linux keeps a process's peak RSS across
    # fork+exec, so a parent that had built the frame would inflate every child's figure
    subprocess.run([sys.executable, __file__, "--prepare", str(n)], check=True)
    parquet, cols = prepare_data(n)
    exe = build_c_loop() if any(m.startswith("c-loop") for m in methods) else None
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for r in range(runs):  # interleave methods so machine noise spreads evenly
        for m in methods:
            res = one_run(m, n, parquet, cols, exe)
            results[m].append(res)
            print(f"run {r + 1}/{runs} {m:14s} {res['seconds']:.3f} s  rss {res['rss_mb']:.0f} MB",
                  file=sys.stderr, flush=True)

    med = {m: statistics.median(x["seconds"] for x in results[m]) for m in methods}
    rss = {m: max(x["rss_mb"] for x in results[m]) for m in methods}
    import platform

    import sqlnb.export

    lines = [
        f"## DataFrame export: mixed frame, {n:,} rows x 7 columns -> new table (median of {runs} runs)",
        "",
        f"SQLite {sqlnb.sqlite_version('sqlite')} (ours), stdlib {sqlnb.sqlite_version('system')}; "
        f"Python {platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{os.cpu_count()} CPUs (shared).",
        "",
        "| method | median s | rows/s | x sqlnb | x C loop | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    base = med.get("sqlnb")
    floor = med.get("c-loop")
    for m in methods:
        lines.append(f"| {m} | {med[m]:.3f} | {n / med[m]:,.0f} | "
                     f"{(med[m] / base) if base else float('nan'):.2f} | "
                     f"{(med[m] / floor) if floor else float('nan'):.2f} | {rss[m]:.0f} |")
    lines.append("")
    if base and "pandas.to_sql" in med:
        lines.append(f"* sqlnb vs pandas.to_sql: {med['pandas.to_sql'] / base:.2f}x faster (target >= 3x)")
    if base and floor:
        lines.append(f"* sqlnb / C loop: {base / floor:.2f} (target <= 1.5); the C loop steps "
                     f"{sqlnb.export.ROWS_PER_STEP} rows at a time as to_table does")
    if base and "c-loop-1row" in med:
        lines.append(f"* sqlnb / C loop with one row per step: {base / med['c-loop-1row']:.2f}")
    if base and "sqlite-utils" in med:
        lines.append(f"* sqlnb vs sqlite-utils insert_all: {med['sqlite-utils'] / base:.2f}x faster")
    lines.append("* times include open, BEGIN, CREATE TABLE, all INSERTs, COMMIT and close on a fresh file; "
                 "loading the frame is not timed; the C loop binds from raw column arrays already in memory; "
                 "peak RSS is the whole process (frame included).")
    text = "\n".join(lines) + "\n"
    print(text)
    out = out_root() / "bench" / "export.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"(written to {out})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
