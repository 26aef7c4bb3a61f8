"""The magic's per-call overhead: ``%sql SELECT 1`` and a 1,000-row SELECT, sqlnb vs JupySQL.

Each contender runs in its own process (its own IPython shell; both projects
name their configurable ``SqlMagic``), on the same SQLite file built by
``datagen.build_db`` (the ``mixed`` table, 1,000 rows). For each query we time

* ``raw``: the driver call that returns the same thing without the magic:
  ``sqlnb.Connection.query_df`` for sqlnb; for JupySQL, SQLAlchemy's
  ``connection.execute(text(q)).fetchall()`` (its ResultSet) and
  ``pandas.read_sql`` (its ``autopandas`` DataFrame);
* ``magic``: ``shell.run_line_magic("sql", q)``, as a notebook cell calls it.

Overhead = magic - raw. Medians of per-call times (each sample is the mean of
a batch of calls), peak RSS per process. Every result, raw or magic, stays
alive until the next call replaces it (as ``df = ...`` would in a notebook, and
as both magics keep their last result), so neither side gets hot memory the
other does not. Writes ``build/bench/magic.md``.
Targets (report only): sqlnb's overhead <= 100 µs, and at least 20x less
than JupySQL's. ``--quick``: fewer samples.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
QUERIES = {"SELECT 1": "SELECT 1", "1,000 rows": "SELECT * FROM mixed"}


def _time(fn, batch: int, samples: int) -> float:
    fn()
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        out.append((time.perf_counter() - t0) / batch)
    return statistics.median(out)


def _pair(raw, magic, batch: int, samples: int) -> tuple[float, float, float]:
    """Interleaved samples of ``raw`` and ``magic``: medians of each and of the per-sample difference.

    Interleaving keeps the difference honest on a shared, busy machine.
    """
    raw(), magic()
    a, b, d = [], [], []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(batch):
            raw()
        t1 = time.perf_counter()
        for _ in range(batch):
            magic()
        t2 = time.perf_counter()
        a.append((t1 - t0) / batch)
        b.append((t2 - t1) / batch)
        d.append(b[-1] - a[-1])
    return statistics.median(a), statistics.median(b), statistics.median(d)


def _shell(in_cell: bool):
    """A fresh shell; ``in_cell``: calls are timed as a notebook cell makes them.

    IPython runs a cell's code, and so every magic in it, inside its builtin
    trap. A bare ``run_line_magic`` outside any cell enters and leaves the trap
    on every call, rewriting ``builtins``, which also discards CPython's cached
    lookups of builtins: a cost a notebook does not pay, measured separately.
    """
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=cfg)
    if in_cell:
        shell.builtin_trap.__enter__()  # left entered: this process only times calls
    return shell


def worker_sqlnb(db: str, batch: int, samples: int, in_cell: bool) -> dict:
    import sqlnb

    ip = _shell(in_cell)
    ip.run_line_magic("load_ext", "sqlnb")
    ip.run_line_magic("sql", f"--connect {db} --alias bench")
    con = sqlnb.connect(db)
    keep = [None]  # each raw result is kept until the next call, as `df = ...` in a notebook keeps it
    res = {}
    for name, q in QUERIES.items():
        raw, magic, ov = _pair(lambda: keep.__setitem__(0, con.query_df(q)),
                               lambda: ip.run_line_magic("sql", q), batch, samples)
        res[name] = {"raw query_df": raw, "magic": magic, "overhead": ov}
    return res


def worker_jupysql(db: str, batch: int, samples: int, in_cell: bool) -> dict:
    import pandas as pd
    from sqlalchemy import create_engine, text

    ip = _shell(in_cell)
    ip.run_line_magic("load_ext", "sql")
    ip.run_line_magic("config", "SqlMagic.displaycon = False")
    ip.run_line_magic("config", "SqlMagic.feedback = 0")
    ip.run_line_magic("sql", f"sqlite:///{db}")
    eng = create_engine(f"sqlite:///{db}")
    conn = eng.connect()
    keep = [None]  # as for sqlnb: a raw result lives until the next call
    res = {}
    for name, q in QUERIES.items():
        ip.run_line_magic("config", "SqlMagic.autopandas = False")
        raw, magic, ov = _pair(lambda: keep.__setitem__(0, conn.execute(text(q)).fetchall()),
                               lambda: list(ip.run_line_magic("sql", q)), batch, samples)
        ip.run_line_magic("config", "SqlMagic.autopandas = True")
        raw2, magic2, ov2 = _pair(lambda: keep.__setitem__(0, pd.read_sql(text(q), conn)),
                                  lambda: ip.run_line_magic("sql", q), batch, samples)
        res[name] = {"raw fetchall": raw, "magic": magic, "raw read_sql": raw2, "magic autopandas": magic2,
                     "overhead": min(ov, ov2)}
    return res


def _worker(which: str, db: str, batch: int, samples: int, in_cell: bool):
    import io
    from contextlib import redirect_stdout

    with redirect_stdout(io.StringIO()):
        res = {"sqlnb": worker_sqlnb, "jupysql": worker_jupysql}[which](db, batch, samples, in_cell)
    res["_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


def run(which: str, db: Path, batch: int, samples: int, in_cell: bool) -> dict | str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    p = subprocess.run([sys.executable, __file__, "--worker", which, "--db", str(db),
                        "--batch", str(batch), "--samples", str(samples)] + (["--in-cell"] if in_cell else []),
                       capture_output=True, text=True, env=env, timeout=1800)
    if p.returncode != 0:
        return (p.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])


def _us(s: float) -> str:
    return f"{s * 1e6:,.1f} µs" if s < 0.01 else f"{s * 1e3:,.2f} ms"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker")
    ap.add_argument("--db")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--samples", type=int, default=31)
    ap.add_argument("--in-cell", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.db, args.batch, args.samples, args.in_cell)
        return 0
    sys.path.insert(0, str(HERE))
    import datagen

    cache = Path(os.environ.get("SQLNB_CACHE", ROOT / "build"))
    db = datagen.build_db(cache / "bench" / "magic-1000.db", mixed_rows=1000, numeric_rows=10)
    batch, samples = (50, 9) if args.quick else (args.batch, args.samples)
    contexts = {"in a cell": True, "bare run_line_magic": False}
    results = {(ctx, w): run(w, db, batch, samples, in_cell)
               for ctx, in_cell in contexts.items() for w in ("sqlnb", "jupysql")}
    lines = ["# %sql per-call overhead: sqlnb vs JupySQL", "",
             "Overhead = magic - raw driver call, as the median of interleaved paired samples "
             "(for JupySQL the smaller of ResultSet vs fetchall and autopandas vs read_sql).", "",
             f"Same SQLite file ({db.name}, table `mixed`, 1,000 rows); median of {samples} samples, "
             f"each the mean of {batch} calls; one process per tool and context.", "",
             "Contexts: *in a cell* times the calls inside IPython's builtin trap, as every magic in a "
             "notebook cell runs; *bare run_line_magic* calls it from outside any cell, where IPython "
             "enters and leaves the trap (rewriting `builtins`) on every call.", "",
             "| context | query | tool | raw driver call | magic | overhead | peak RSS |",
             "|---|---|---|---|---|---|---|"]
    overhead = {}
    for ctx in contexts:
        for name in QUERIES:
            for tool in ("sqlnb", "jupysql"):
                res = results[(ctx, tool)]
                if isinstance(res, str):
                    lines.append(f"| {ctx} | {name} | {tool} | failed: {res} | | | |")
                    continue
                r = res[name]
                ov = r["overhead"]
                overhead[(ctx, name, tool)] = ov
                raw_txt = " / ".join(f"{k[4:]} {_us(v)}" for k, v in r.items() if k.startswith("raw "))
                magic_txt = " / ".join(f"{k} {_us(v)}" for k, v in r.items() if k.startswith("magic"))
                lines.append(f"| {ctx} | {name} | {tool} | {raw_txt} | {magic_txt} | {_us(ov)} | "
                             f"{res['_rss_mb']:.0f} MB |")
    lines.append("")
    for ctx in contexts:
        for name in QUERIES:
            a, b = overhead.get((ctx, name, "sqlnb")), overhead.get((ctx, name, "jupysql"))
            if a is not None and b is not None:
                ratio = f"{b / a:.1f}×" if a > 0 else "n/a (sqlnb overhead within noise)"
                lines.append(f"* {ctx}, {name}: sqlnb overhead {_us(a)} (target ≤ 100 µs); JupySQL {_us(b)}; "
                             f"JupySQL / sqlnb = {ratio} (target ≥ 20×)")
    text = "\n".join(lines) + "\n"
    out = cache / "bench" / "magic.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
