#!/usr/bin/env python3
"""``make memcheck``: sqlnb's memory-safety checks.

1. **valgrind**: the core test files run under valgrind memcheck
   (``PYTHONMALLOC=malloc`` so every Python object is a real malloc block, our
   suppression file ``tools/valgrind-python.supp`` for CPython's own
   false positives, children traced so the crash/hang tests' child processes
   are checked too). Fails on any invalid read/write/free or overlap anywhere,
   and on any error (uninitialised values included) with a frame in sqlnb's
   extensions, our SQLite build or libdb_sql.
2. **RSS**: in a fresh process per engine, resident memory must stay flat over
   10,000 queries (binding, fetching, errors, DataFrames) and over 1,000
   open/close cycles (psutil), after a warm-up.

Writes ``build/memcheck/report.md`` and exits non-zero on any failure.
``--quick`` runs fewer tests and iterations (a smoke check, not the gate).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "memcheck"
SUPP = ROOT / "tools" / "valgrind-python.supp"

# the core files: the DB-API, the engines, bad input, concurrency, fuzzing (others are added when present)
CORE = ["tests/test_bad_input.py", "tests/test_concurrency.py", "tests/test_fuzz.py"]
CORE_GLOBS = ["tests/test_dbapi*.py", "tests/test_connection*.py", "tests/test_engines*.py",
              "tests/test_fetch*.py", "tests/test_frames*.py", "tests/test_readonly*.py",
              "tests/test_modes*.py", "tests/test_auth*.py", "tests/test_errors*.py", "tests/test_bdb*.py",
              "tests/test_bind*.py", "tests/test_statements*.py"]
CORE_GLOBS += ["tests/test_frame_vtab.py"]   # the frame virtual table (frame_vtab.h, vtab.pxi)
CORE_GLOBS += ["tests/test_profile_approx.py"]   # the sqlnb_profile aggregate (profile_agg.h, profile.pxi)
CORE_GLOBS += ["tests/test_profile_exact.py"]   # the exact profile in C (profile_exact.h, profile.pxi)
# single tests of files otherwise left out (matplotlib drawing is too slow under valgrind)
CORE_NODES = ["tests/test_plots.py::test_histogram_of_a_numeric_column_is_two_reads_without_a_sort"]  # look.pxi
CORE_GLOBS += ["tests/test_frame_vtab_order.py"]   # its ordered scans (frame_order.h)
# too slow under valgrind (they allocate hundreds of MB or step 10^7 rows natively in seconds);
# their code paths are covered by the smaller cases of the same files
DESELECT = ["large_blob", "ten_million", "shared_connection_four_threads", "wal_reader_sees_consistent",
            "magic_cell", "magic_line", "locked_database",
            "test_big_"]   # 200,000-row profiles: test_small_sketches_every_path runs the same C paths small
QUICK = ["tests/test_concurrency.py::test_raw_objects_four_threads_then_close",
         "tests/test_concurrency.py::test_raw_statement_after_raw_close",
         "tests/test_bad_input.py::test_unsupported_parameter_types",
         "tests/test_bad_input.py::test_file_that_is_not_a_database"]

OUR_OBJECTS = ("_fast.cpython", "_fast_bdb.cpython")  # the Cython engines, with our SQLite inside
ALWAYS_FATAL = ("InvalidRead", "InvalidWrite", "InvalidFree", "MismatchedFree", "Overlap", "InvalidJump",
                "InvalidMemPool", "FishyValue")


def log(msg: str) -> None:
    print(f"[memcheck] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# valgrind
# --------------------------------------------------------------------------------------------
def test_targets(quick: bool) -> list[str]:
    if quick:
        return QUICK
    files = [f for f in CORE if (ROOT / f).exists()]
    for pattern in CORE_GLOBS:
        files += sorted(os.path.relpath(p, ROOT) for p in glob.glob(str(ROOT / pattern)))
    files += [n for n in CORE_NODES if (ROOT / n.split("::")[0]).exists()]
    return list(dict.fromkeys(files))


def parse_xml(path: Path) -> list[dict]:
    """Errors of one valgrind XML file: kind, message, frames (obj, fn, file:line)."""
    try:
        tree = ET.parse(path)
    except ET.ParseError:
        # a child killed mid-write leaves unterminated XML: read the complete <error> elements
        text = path.read_text(errors="replace")
        cut = text.rfind("</error>")
        if cut == -1:
            return []
        head = text[:cut + len("</error>")]
        start = head.find("<error>")
        tree = ET.ElementTree(ET.fromstring("<root>" + head[start:] + "</root>"))
    out = []
    for err in tree.getroot().iter("error"):
        kind = err.findtext("kind") or "?"
        if kind.startswith("Leak_"):
            continue  # leaks are the RSS stage's business (CPython keeps memory until exit by design)
        what = err.findtext("what") or err.findtext("xwhat/text") or ""
        frames = []
        stack = err.find("stack")
        for fr in (stack.findall("frame") if stack is not None else []):
            frames.append({"obj": fr.findtext("obj") or "", "fn": fr.findtext("fn") or "?",
                           "where": f"{fr.findtext('file') or ''}:{fr.findtext('line') or ''}"})
        out.append({"kind": kind, "what": what, "frames": frames, "file": path.name})
    return out


def ours(error: dict) -> bool:
    """The error happened in our code: the innermost frame is in one of our extensions."""
    return bool(error["frames"]) and any(o in error["frames"][0]["obj"] for o in OUR_OBJECTS)


def run_valgrind(quick: bool, timeout: float) -> tuple[bool, list[str]]:
    if not shutil_which("valgrind"):
        return False, ["valgrind is not installed (apt-get install valgrind)"]
    vg_dir = OUT / "valgrind"
    vg_dir.mkdir(parents=True, exist_ok=True)
    for old in vg_dir.glob("*.xml"):
        old.unlink()
    targets = test_targets(quick)
    cmd = ["valgrind", "--tool=memcheck", f"--suppressions={SUPP}", "--trace-children=yes",
           # helper processes of the tests that only run the stdlib (lock holders, writers) are not traced
           "--trace-children-skip-by-arg=*holding*,*writer done*",
           "--num-callers=40", "--leak-check=no", "--xml=yes", f"--xml-file={vg_dir}/vg.%p.xml",
           "--log-file=" + str(vg_dir / "vg.%p.log"),
           sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
           "-o", "addopts=", "--durations=10", "-m", "not notebook and not browser", *targets]
    if not quick:
        cmd += ["-k", " and ".join(f"not {d}" for d in DESELECT)]
    env = {**os.environ, "PYTHONMALLOC": "malloc", "PYTHONPATH": str(ROOT), "SQLNB_FUZZ_EXAMPLES": "8",
           "PYTHONFAULTHANDLER": "1"}
    log(f"valgrind: {len(targets)} test files ({'quick' if quick else 'core'}), this takes minutes")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - t0
    (OUT / "valgrind-pytest.txt").write_text(proc.stdout + proc.stderr)
    lines = [f"valgrind run: {took:.0f} s, pytest exit code {proc.returncode} "
             f"(tail: {proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else '-'})"]
    errors = [e for x in sorted(vg_dir.glob("*.xml")) for e in parse_xml(x)]
    fatal = [e for e in errors if e["kind"] in ALWAYS_FATAL or ours(e)]
    others = [e for e in errors if e not in fatal]
    for e in others[:10]:  # reported, not fatal: outside our code (CPython, libdb_sql, libc)
        top = "; ".join(f"{f['fn']} ({os.path.basename(f['obj'])})" for f in e["frames"][:3])
        lines.append(f"  (not ours) {e['kind']}: {top}")
    lines.append(f"valgrind processes checked: {len(list(vg_dir.glob('*.xml')))}, errors reported after "
                 f"suppressions: {len(errors)}, in our code or invalid accesses: {len(fatal)}")
    for e in fatal[:20]:
        top = "; ".join(f"{f['fn']} ({os.path.basename(f['obj'])} {f['where']})" for f in e["frames"][:6])
        lines.append(f"  {e['kind']}: {e['what']} at {top}  [{e['file']}]")
    ok = proc.returncode == 0 and not fatal
    if proc.returncode != 0:
        lines.append("the test suite failed under valgrind: see build/memcheck/valgrind-pytest.txt")
    return ok, lines


def shutil_which(name):
    from shutil import which

    return which(name)


# --------------------------------------------------------------------------------------------
# RSS
# --------------------------------------------------------------------------------------------
RSS_CHILD = r"""
import gc, json, os, sys, tempfile
import psutil
import sqlnb
from sqlnb import errors

engine, n_queries, n_cycles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
proc = psutil.Process()
rss = lambda: proc.memory_info().rss
tmp = tempfile.mkdtemp(prefix="sqlnb-rss-")
path = os.path.join(tmp, "rss.db")
con = sqlnb.connect(path, engine=engine)
con.execute("create table t(i integer, s text, b blob, x real)")
con.executemany("insert into t values (?, ?, ?, ?)",
                [(i, "s" * (i % 50), bytes(i % 40), i / 7) for i in range(2000)])
con.commit()

def one_query(k):
    m = k % 10
    if m == 0:
        try:
            con.execute("select * from no_such_table")
        except errors.Error:
            pass
    elif m == 1:
        try:
            con.execute("select ?", (object(),))
        except errors.Error:
            pass
    elif m == 2:
        con.query_df("select i, s, x from t where i < ?", (k % 500,))
    elif m == 3:
        cur = con.execute("select * from t")
        cur.fetchmany(7)
        cur.close()
    elif m == 4:
        con.execute("select :a, :b, :c", {"a": k, "b": str(k) * 3, "c": bytes(10)}).fetchall()
    elif m == 5:
        con.execute("update t set x = x + 1 where i = ?", (k % 2000,))
        con.commit()
    else:
        con.execute("select * from t where i between ? and ?", (k % 1900, k % 1900 + 100)).fetchall()

samples = []
def measure(label, fn, n):
    warm = max(n // 10, 1)
    for k in range(warm):
        fn(k)
    gc.collect()
    start = rss()
    points = []
    for k in range(warm, n):
        fn(k)
        if (k - warm) % max((n - warm) // 10, 1) == 0:
            gc.collect()
            points.append(rss())
    gc.collect()
    end = rss()
    samples.append({"what": label, "n": n, "start": start, "end": end, "growth": end - start,
                    "points": points})

measure(f"{n_queries} queries", one_query, n_queries)

def cycle(k):
    c = sqlnb.connect(path, engine=engine)
    c.execute("select count(*) from t").fetchone()
    cur = c.execute("select * from t")   # left open on purpose: close() must finalize it
    cur.fetchmany(3)
    c.close()

measure(f"{n_cycles} open/close cycles", cycle, n_cycles)
con.close()
print(json.dumps(samples))
"""

RSS_LIMIT = 2 * 1024 * 1024  # bytes of growth tolerated after warm-up (allocator noise, caches)


def run_rss(quick: bool) -> tuple[bool, list[str]]:
    sys.path.insert(0, str(ROOT))
    import sqlnb

    n_queries, n_cycles = (2000, 200) if quick else (10000, 1000)
    lines = ["| engine | what | RSS after warm-up | RSS at end | growth | limit |", "|---|---|---|---|---|---|"]
    ok = True
    for info in sqlnb.engines():
        if not info.available:
            lines.append(f"| {info.name} | unavailable: {info.why} | | | | |")
            ok = False
            continue
        log(f"RSS: {info.name}: {n_queries} queries, {n_cycles} open/close cycles")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(RSS_CHILD), info.name, str(n_queries),
                               str(n_cycles)], capture_output=True, text=True, env=env, timeout=1800)
        if proc.returncode != 0:
            lines.append(f"| {info.name} | child failed ({proc.returncode}) | {proc.stderr.strip()[-200:]} | | | |")
            ok = False
            continue
        for s in json.loads(proc.stdout.strip().splitlines()[-1]):
            good = s["growth"] <= RSS_LIMIT
            ok &= good
            lines.append(f"| {info.name} | {s['what']} | {s['start'] / 2**20:.1f} MiB | {s['end'] / 2**20:.1f} MiB "
                         f"| {s['growth'] / 2**20:+.2f} MiB {'ok' if good else 'GROWS'} | "
                         f"{RSS_LIMIT / 2**20:.0f} MiB |")
    return ok, lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few tests and fewer iterations (smoke check)")
    ap.add_argument("--skip-valgrind", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--timeout", type=float, default=1500, help="seconds for the valgrind run")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    report = ["# sqlnb memcheck", "", f"python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M:%S')}", ""]
    ok = True
    if not args.skip_valgrind:
        good, lines = run_valgrind(args.quick, args.timeout)
        ok &= good
        report += ["## valgrind", "", *lines, "", f"**{'PASS' if good else 'FAIL'}**", ""]
        print("\n".join(lines), flush=True)
    if not args.skip_rss:
        good, lines = run_rss(args.quick)
        ok &= good
        report += ["## RSS", "", *lines, "", f"**{'PASS' if good else 'FAIL'}**", ""]
        print("\n".join(lines), flush=True)
    (OUT / "report.md").write_text("\n".join(report))
    log(f"{'PASS' if ok else 'FAIL'} (report: {os.path.relpath(OUT / 'report.md', ROOT)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
