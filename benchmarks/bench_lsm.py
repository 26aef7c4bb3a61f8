"""lsm1 through sqlnb vs the ``lsm`` PyPI bindings vs an ordinary SQLite table (issue 7).

Each contender runs in its own subprocess (so its peak RSS is its own) on the
same deterministic data: N keys (UINT microsecond timestamps, 1 s apart) with a
short text value. Measured: the bulk load of all N keys in one transaction, and
range scans of 1%, 10% and 100% of the keys in the middle of the key space,
each ending as a pandas DataFrame with an int64 ``key`` and a text ``value``
column (so every contender does the same work).

Contenders:

* ``sqlnb lsm1 UINT``: ``sqlnb.lsm.table(...).load()`` / ``.scan(lo, hi)`` (bound SQL
  on the lsm1 virtual table, DataFrame through ``Connection.query_df``);
* ``lsm (PyPI)``: the ``lsm`` package's direct bindings to the same engine; keys
  are 8-byte big-endian (so byte order is numeric order), loaded with ``update``
  in one transaction, scanned with a slice; the frame is built from the pairs
  (keys decoded with int.from_bytes, values decoded to str). ``lsm raw`` is the
  same scan building a frame of the undecoded bytes (its floor);
* ``sqlite INTEGER PK`` / ``sqlite TEXT PK``: an ordinary table in a file of
  sqlnb's own SQLite (rowid table / WITHOUT ROWID with zero-padded text keys),
  ``executemany`` in one transaction, ``query_df`` with a BETWEEN range.

Usage: ``python benchmarks/bench_lsm.py [--quick] [--repeat N]``. Prints a
Markdown table (medians, ratios to the lsm bindings, peak RSS) and writes it to
``build/bench/lsm.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000_000_000  # µs
STEP = 1_000_000  # 1 s between events
FRACTIONS = (0.01, 0.10, 1.0)
CONTENDERS = ("sqlnb-lsm1", "lsm-pypi", "sqlite-int", "sqlite-text")
LABELS = {"sqlnb-lsm1": "sqlnb lsm1 UINT", "lsm-pypi": "lsm (PyPI) decoded", "lsm-raw": "lsm (PyPI) raw bytes",
          "sqlite-int": "sqlite INTEGER PK", "sqlite-text": "sqlite TEXT PK"}


def keys_values(n):
    for i in range(n):
        yield T0 + i * STEP, f"event-{i:07d}"


def bounds(n, frac):
    count = max(1, int(n * frac))
    first = (n - count) // 2
    return T0 + first * STEP, T0 + (first + count - 1) * STEP, count


def timed(fn, repeat):
    out, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out), result


def run_one(name, n, repeat, workdir):
    import pandas as pd

    res = {"name": name, "scans": {}}
    if name == "sqlnb-lsm1":
        import sqlnb
        from sqlnb import lsm as L

        con = sqlnb.connect(":memory:")
        t = L.table(con, "ev", Path(workdir) / "sqlnb.lsm", key_type="UINT")
        tl = time.perf_counter()
        assert t.load(keys_values(n)) == n
        res["load"] = time.perf_counter() - tl
        for frac in FRACTIONS:
            lo, hi, count = bounds(n, frac)
            sec, df = timed(lambda: t.scan(lo, hi), repeat)
            assert len(df) == count and df["key"].iloc[0] == lo, (len(df), count)
            res["scans"][frac] = sec
        con.close()
    elif name == "lsm-pypi":
        import lsm

        db = lsm.LSM(str(Path(workdir) / "pypi.lsm"), binary=True)
        db.open()
        tl = time.perf_counter()
        with db.transaction():
            for k, v in keys_values(n):
                db[k.to_bytes(8, "big")] = v.encode()
        res["load"] = time.perf_counter() - tl
        res["raw"] = {}
        for frac in FRACTIONS:
            lo, hi, count = bounds(n, frac)
            blo, bhi = lo.to_bytes(8, "big"), hi.to_bytes(8, "big")

            def decoded():
                ks, vs = [], []
                for k, v in db[blo:bhi]:
                    ks.append(int.from_bytes(k, "big"))
                    vs.append(v.decode())
                return pd.DataFrame({"key": pd.array(ks, dtype="int64"), "value": vs})

            def raw():
                return pd.DataFrame(list(db[blo:bhi]), columns=["key", "value"])

            sec, df = timed(decoded, repeat)
            assert len(df) == count and df["key"].iloc[0] == lo, (len(df), count)
            res["scans"][frac] = sec
            res["raw"][frac], df = timed(raw, repeat)
            assert len(df) == count
        db.close()
    else:
        import sqlnb

        text = name == "sqlite-text"
        con = sqlnb.connect(str(Path(workdir) / f"{name}.db"))
        con.execute("CREATE TABLE ev(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID" if text
                    else "CREATE TABLE ev(key INTEGER PRIMARY KEY, value TEXT)")
        con.commit()
        rows = ((f"{k:020d}", v) for k, v in keys_values(n)) if text else keys_values(n)
        tl = time.perf_counter()
        con.executemany("INSERT INTO ev VALUES (?, ?)", rows)
        con.commit()
        res["load"] = time.perf_counter() - tl
        for frac in FRACTIONS:
            lo, hi, count = bounds(n, frac)
            params = (f"{lo:020d}", f"{hi:020d}") if text else (lo, hi)
            sec, df = timed(lambda: con.query_df("SELECT key, value FROM ev WHERE key BETWEEN ? AND ? ORDER BY key",
                                                 params), repeat)
            assert len(df) == count, (len(df), count)
            res["scans"][frac] = sec
        con.close()
    res["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


def fmt_s(sec):
    return f"{sec * 1000:.1f} ms" if sec < 1 else f"{sec:.2f} s"


def table(results, n):
    base = results.get("lsm-pypi")
    rows = []
    for name in CONTENDERS:
        r = results.get(name)
        if r is None:
            continue
        cells = [LABELS[name], fmt_s(r["load"])]
        cells.append(f"{r['load'] / base['load']:.2f}×" if base else "n/a")
        for frac in FRACTIONS:
            s = r["scans"][frac]
            ratio = f" ({s / base['scans'][frac]:.2f}×)" if base else ""
            cells.append(fmt_s(s) + ratio)
        cells.append(f"{r['rss_mb']:.0f} MB")
        rows.append(cells)
        if name == "lsm-pypi":
            raw = [LABELS["lsm-raw"], "—", "—"] + [
                fmt_s(r["raw"][f]) + f" ({r['raw'][f] / base['scans'][f]:.2f}×)" for f in FRACTIONS] + ["—"]
            rows.append(raw)
    head = ["contender", f"load {n:,} keys", "load vs lsm"] + [f"scan {int(f * 100)}% ({max(1, int(n * f)):,} rows)"
                                                               for f in FRACTIONS] + ["peak RSS"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c) + " |" for c in rows]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50,000 keys instead of 1,000,000")
    ap.add_argument("--n", type=int, help="number of keys (overrides --quick)")
    ap.add_argument("--repeat", type=int, default=None, help="scan repetitions (median); default 5, quick 7")
    ap.add_argument("--only", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    n = args.n or (50_000 if args.quick else 1_000_000)
    repeat = args.repeat or (7 if args.quick else 5)
    if args.only:  # child: one contender, JSON on stdout
        print(json.dumps(run_one(args.only, n, repeat, args.workdir)))
        return 0
    results, notes = {}, []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    with tempfile.TemporaryDirectory(prefix="bench_lsm_") as tmp:
        for name in CONTENDERS:
            cmd = [sys.executable, __file__, "--only", name, "--n", str(n), "--repeat", str(repeat), "--workdir", tmp]
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if p.returncode != 0:
                why = (p.stderr.strip().splitlines() or ["?"])[-1]
                notes.append(f"* {LABELS[name]}: not measured ({why})")
                print(f"{name}: FAILED\n{p.stderr}", file=sys.stderr)
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            r["scans"] = {float(k): v for k, v in r["scans"].items()}
            if "raw" in r:
                r["raw"] = {float(k): v for k, v in r["raw"].items()}
            results[name] = r
    import sqlnb

    md = [f"# lsm1 benchmark ({n:,} keys, median of {repeat} scans)", "",
          f"{platform.platform()}, Python {platform.python_version()}, SQLite {sqlnb.sqlite_version('sqlite')}, "
          f"{os.cpu_count()} CPUs. Ratios are against the `lsm` PyPI bindings (decoded to the same DataFrame); "
          "lower is better.", "", table(results, n), ""]
    lsm_ok = "sqlnb-lsm1" in results and "lsm-pypi" in results
    if lsm_ok:
        worst = max(results["sqlnb-lsm1"]["scans"][f] / results["lsm-pypi"]["scans"][f] for f in FRACTIONS)
        md.append(f"Target (scans within 1.5× of the lsm bindings, result as a DataFrame): "
                  f"{'met' if worst <= 1.5 else 'NOT met'} (worst ratio {worst:.2f}×).")
    md += notes
    text = "\n".join(md) + "\n"
    print(text)
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "lsm.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
