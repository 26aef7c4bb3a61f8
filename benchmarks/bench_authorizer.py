"""What the read-only modes cost: prepare-heavy and scan-heavy statements with and
without the authorizer (docs/read-only.md quotes the result).

The authorizer runs while a statement is prepared (a handful of calls per statement),
never per row. The configurations:

* ``none``: a raw connection with no authorizer installed (what the policy adds to);
* ``rw``, ``ro``, ``ro + deny + mask``: the compiled C table (sqlnb.authorizer);
* ``ro + Python authorizer``: the C table plus a trivial user callback (one Python
  call per action).

    python benchmarks/bench_authorizer.py [--quick]

Times are CPU time of the process (``time.process_time``). Prints a Markdown table of medians and writes it to build/bench/authorizer.md.
"""
from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import datagen  # noqa: E402  (benchmarks/, the script's own folder)
from sqlnb.engines import open as _modes  # noqa: E402

POINT = b"SELECT origin, dest, dep_delay FROM flights WHERE id = ?"
JOIN = (b"SELECT f.origin, count(*), avg(f.dep_delay) FROM flights f JOIN airports a ON a.code = f.dest "
        b"WHERE f.id <= 200 GROUP BY f.origin")
SCAN = b"SELECT * FROM flights"


def build(path: Path, rows: int) -> Path:
    def fill(con):
        codes = ["JFK", "LGA", "EWR", "LAX", "SFO", "ORD", "ATL", "DFW", "DEN", "SEA"]
        con.execute("CREATE TABLE airports(code TEXT PRIMARY KEY, name TEXT)")
        con.executemany("INSERT INTO airports VALUES(?, ?)", [(c, f"airport {c}") for c in codes])
        con.execute("CREATE TABLE flights(id INTEGER PRIMARY KEY, origin TEXT, dest TEXT, dep_delay REAL, note TEXT)")
        con.executemany("INSERT INTO flights VALUES(?,?,?,?,?)",
                        ((i, codes[i % 3], codes[3 + i % 7], float((i * 37) % 181 - 30), f"flight {i}")
                         for i in range(1, rows + 1)))
        con.execute("CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT)")
        con.execute("CREATE TABLE secrets(k TEXT)")

    return datagen.build_once(path, fill)


def open_conf(engine: str, path: str, conf: str):
    raw = _modes.open_raw(engine, path, mode="rw")  # the same handle kind for every configuration
    if conf == "none":
        return raw
    kw = {}
    mode = "rw" if conf == "rw" else "ro"
    if conf == "ro + deny + mask":
        kw = {"deny_tables": ["secrets"], "mask_columns": ["users.email"]}
    if conf == "ro + Python authorizer":
        kw = {"authorizer": lambda action, a1, a2, db, inner: 0}
    _modes.install(raw, engine, mode=mode, **kw)
    return raw


def prepare_loop(raw, sql: bytes, n: int, params=None) -> None:
    for i in range(n):
        st, _ = raw.prepare(sql, 0)
        if params is not None:
            st.bind((i % 1000 + 1,))
        while st.step():
            pass
        st.finalize()


def prepare_only(raw, sql: bytes, n: int) -> None:
    for _ in range(n):
        st, _ = raw.prepare(sql, 0)
        st.finalize()


def scan(raw, sql: bytes) -> None:
    st, _ = raw.prepare(sql, 0)
    while st.fetchmany(4096):
        pass
    st.finalize()


def record_trace(path: str, sql: bytes) -> list:
    """The authorizer actions preparing ``sql`` sends, recorded with a Python authorizer."""
    seen = []
    raw = _modes.open_raw("sqlite", path, mode="rw")
    try:
        _modes.install(raw, "sqlite", mode="rw", authorizer=lambda *a: (seen.append(a), 0)[1])
        st, _ = raw.prepare(sql, 0)
        st.finalize()
    finally:
        raw.close()
    return seen


def timeit(fn, repeats: int) -> float:
    # CPU time of this process, not wall time: on a shared machine, time spent
    # descheduled would otherwise swamp differences of a few per cent
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (for development)")
    args = ap.parse_args(argv)
    rows, n_prep, repeats = (20_000, 2_000, 5) if args.quick else (200_000, 10_000, 11)
    rounds, chunk = (40, 200) if args.quick else (200, 500)
    cache = Path(os.environ.get("SQLNB_CACHE", ROOT / "build"))
    path = str(build(cache / "bench" / f"authorizer-{rows}.db", rows))

    confs = [("sqlite", c) for c in ("none", "rw", "ro", "ro + deny + mask", "ro + Python authorizer")]
    # all connections open at once, measured round-robin so that load from other
    # processes on a shared machine hits every configuration alike
    raws = {key: open_conf(key[0], path, key[1]) for key in confs}
    samples = {key: ([], [], []) for key in confs}
    try:
        for _ in range(repeats):
            for key, raw in raws.items():
                pt, jn, fl = samples[key]
                pt.append(timeit(lambda: prepare_loop(raw, POINT, n_prep, params=True), 1) / n_prep)
                jn.append(timeit(lambda: prepare_loop(raw, JOIN, n_prep // 10), 1) / (n_prep // 10))
                fl.append(timeit(lambda: scan(raw, SCAN), 1))
        # prepare only (where the authorizer runs), in many short interleaved rounds
        prep = {key: [] for key in confs}
        for _ in range(rounds):
            for key, raw in raws.items():
                prep[key].append(timeit(lambda: prepare_only(raw, POINT, chunk), 1) / chunk)
        calls = {key: (raw.policy.table.calls if getattr(raw, "policy", None) is not None
                       and getattr(raw.policy, "table", None) is not None else None)
                 for key, raw in raws.items()}
    finally:
        for raw in raws.values():
            raw.close()
    results = {key: tuple(statistics.median(x) for x in samples[key]) + (calls[key],) for key in confs}
    prep_med = {key: statistics.median(v) for key, v in prep.items()}

    lines = [f"Authorizer overhead ({rows:,} rows). Prepare only: medians of {rounds} interleaved rounds of "
             f"{chunk} prepares. The rest: medians of {repeats}, prepare loops of {n_prep:,} / {n_prep // 10:,}.",
             "",
             "| configuration | prepare only (CPU µs) | ratio | point lookup, prepare+step (µs) | ratio "
             "| join+group, prepare+run (µs) | ratio | full scan (ms) | ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base_key = ("sqlite", "none")
    for key, (point, join, full, _calls) in results.items():
        base = results[base_key]
        pm, pb = prep_med[key], prep_med[base_key]
        lines.append(f"| {key[1]} | {pm * 1e6:.2f} | {pm / pb:.3f} | {point * 1e6:.2f} | {point / base[0]:.3f} | "
                     f"{join * 1e6:.1f} | {join / base[1]:.3f} | {full * 1e3:.1f} | {full / base[2]:.3f} |")
    # the C callback's own cost, timed in C over the actions a prepare really sends
    lines += ["", "| configuration | authorizer calls per prepare (point / join) | C callback, ns per call |",
              "|---|---:|---:|"]
    for conf in ("rw", "ro", "ro + deny + mask"):
        raw = open_conf("sqlite", path, conf)
        try:
            trace = record_trace(path, POINT) + record_trace(path, JOIN)
            per_call = raw.policy.table.time_callback(trace, 20_000 if not args.quick else 2_000)
            npoint, njoin = len(record_trace(path, POINT)), len(record_trace(path, JOIN))
        finally:
            raw.close()
        lines.append(f"| {conf} | {npoint} / {njoin} | {per_call * 1e9:.1f} |")
    none_prep = prep_med[base_key]
    lines += ["", f"A prepare of the point lookup with no authorizer costs {none_prep * 1e6:.2f} µs of CPU here."]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += ["", f"Peak RSS: {rss:.0f} MB. SQLite {sqlite3.sqlite_version} (system), "
              f"{__import__('sqlnb').sqlite_version('sqlite')} (sqlite)."]
    text = "\n".join(lines)
    print(text)
    out = cache / "bench" / "authorizer.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
