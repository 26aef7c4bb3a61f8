"""BerkeleyDB SQL beside our SQLite: insert and fetch rates on the same data.

    python benchmarks/bench_bdb.py [--quick] [--rows N] [--repeats R]

Each engine runs in its own child process (so its peak RSS is its own) on the
deterministic ``mixed`` table of ``datagen.mixed_frame`` (id, ISO timestamp,
user_id, category, amount, 10-60 character note, nullable flag):

* insert: ``executemany`` of every row in one transaction into a fresh file;
* fetch: ``execute("SELECT * FROM mixed").fetchall()`` and ``query_df`` of the same;
* aggregate: a GROUP BY over the table; lookups: primary-key point queries.

The stdlib ``sqlite3`` (the ``system`` engine) is shown for reference. Medians of
``--repeats`` runs; the table goes to stdout and to ``build/bench/bdb.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENGINES = ("sqlite", "bdb", "system")
AGG = ("SELECT category, count(*), round(avg(amount), 2), sum(flag) "
       "FROM mixed GROUP BY category ORDER BY category")
LOOKUPS = 2000


def _rows(n: int):
    sys.path.insert(0, str(HERE))
    from datagen import mixed_frame

    df = mixed_frame(n)
    cols = [df[c].astype(object).where(df[c].notna(), None).tolist() for c in df.columns]
    return list(zip(*cols))


def child(engine: str, n: int, repeats: int) -> dict:
    """Measure one engine (runs in a child process)."""
    sys.path.insert(0, str(ROOT))
    import sqlnb

    rows = _rows(n)
    out: dict = {"engine": engine, "rows": n}
    if engine != "system":
        out["version"] = sqlnb.sqlite_version(engine)
    else:
        import sqlite3

        out["version"] = sqlite3.sqlite_version
    ins, fetch, fetch_df, agg, look = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix=f"sqlnb-bench-{engine}-") as d:
        for r in range(repeats):
            path = os.path.join(d, f"m{r}.db")
            con = sqlnb.connect(path, engine=engine)
            con.execute("CREATE TABLE mixed (id INTEGER PRIMARY KEY, ts TEXT, user_id INTEGER, "
                        "category TEXT, amount REAL, note TEXT, flag INTEGER)")
            con.commit()
            t0 = time.perf_counter()
            con.executemany("INSERT INTO mixed VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            con.commit()
            ins.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            got = con.execute("SELECT * FROM mixed").fetchall()
            fetch.append(time.perf_counter() - t0)
            assert len(got) == n
            del got

            try:
                t0 = time.perf_counter()
                df = con.query_df("SELECT * FROM mixed")
                fetch_df.append(time.perf_counter() - t0)
                assert len(df) == n
                del df
            except ImportError:
                pass

            t0 = time.perf_counter()
            con.execute(AGG).fetchall()
            agg.append(time.perf_counter() - t0)

            ids = [(1 + (i * 7919) % n,) for i in range(LOOKUPS)]
            cur = con.cursor()
            t0 = time.perf_counter()
            for p in ids:
                cur.execute("SELECT note FROM mixed WHERE id = ?", p).fetchone()
            look.append(time.perf_counter() - t0)
            con.close()
    med = statistics.median
    out.update({
        "insert rows/s": n / med(ins),
        "fetchall rows/s": n / med(fetch),
        "query_df rows/s": (n / med(fetch_df)) if fetch_df else None,
        "group by ms": med(agg) * 1000,
        "pk lookups/s": LOOKUPS / med(look),
        "peak RSS MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })
    return out


def table(results: list[dict]) -> str:
    by = {r["engine"]: r for r in results}
    metrics = ["insert rows/s", "fetchall rows/s", "query_df rows/s", "group by ms", "pk lookups/s", "peak RSS MB"]
    present = [e for e in ENGINES if e in by]
    head = "| metric | " + " | ".join(f"{e} ({by[e]['version']})" for e in present)
    ratio = "bdb" in by and "sqlite" in by
    lines = [head + (" | bdb / sqlite |" if ratio else " |"),
             "|---" * (len(present) + 1 + ratio) + "|"]

    def fmt(v, m):
        if v is None:
            return "n/a"
        return f"{v:,.1f}" if m.endswith("ms") or m.endswith("MB") else f"{v:,.0f}"

    for m in metrics:
        cells = [fmt(by[e].get(m), m) for e in present]
        line = f"| {m} | " + " | ".join(cells)
        if ratio:
            a, b = by["bdb"].get(m), by["sqlite"].get(m)
            line += f" | {a / b:.2f}" if a and b else " | n/a"
        lines.append(line + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (20,000 rows, 1 run)")
    ap.add_argument("--rows", type=int, default=None, help="rows of the mixed table (default 500,000)")
    ap.add_argument("--repeats", type=int, default=None, help="runs per engine (median; default 3)")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    n = a.rows or (20_000 if a.quick else 500_000)
    repeats = a.repeats or (1 if a.quick else 3)
    if a.child:
        print(json.dumps(child(a.child, n, repeats)))
        return 0
    results = []
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for engine in a.engines.split(","):
        r = subprocess.run([sys.executable, __file__, "--child", engine, "--rows", str(n),
                            "--repeats", str(repeats)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(f"[bench_bdb] engine {engine} failed:\n{r.stderr.strip()}", file=sys.stderr)
            continue
        results.append(json.loads(r.stdout.strip().splitlines()[-1]))
    title = (f"## BerkeleyDB SQL beside SQLite ({n:,} rows of the mixed table, median of {repeats} "
             f"run{'s' if repeats > 1 else ''}, {LOOKUPS:,} lookups)")
    md = title + "\n\n" + table(results) + "\n"
    print(md)
    out = Path(os.environ.get("SQLNB_CACHE", ROOT / "build")) / "bench" / "bdb.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print(f"[bench_bdb] wrote {out}", file=sys.stderr)
    return 0 if len(results) == len(a.engines.split(",")) else 1


if __name__ == "__main__":
    sys.exit(main())
