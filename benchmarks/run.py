#!/usr/bin/env python3
"""Run every benchmarks/bench_*.py in sequence and collect their Markdown tables.

Each script writes its table to build/bench/<topic>.md; this runner joins them
into build/bench/report.md and into the results section of benchmarks/README.md
(between the ``<!-- results:start -->`` / ``<!-- results:end -->`` markers).

    python benchmarks/run.py [--quick] [--runs N] [--only fetch,export] [--no-readme]

Options other than --only/--no-readme are passed to every script.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = Path(os.environ.get("SQLNB_CACHE", ROOT / "build")) / "bench"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated topics (bench_<topic>.py)")
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite benchmarks/README.md")
    ap.add_argument("--collect-only", action="store_true",
                    help="run nothing: collect the tables already in build/bench")
    args, passthrough = ap.parse_known_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = set(args.only.split(","))
        scripts = [s for s in scripts if s.stem[len("bench_"):] in wanted]
    OUT.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    sections, failed = [], []
    for script in scripts:
        topic = script.stem[len("bench_"):]
        md = OUT / f"{topic}.md"
        if args.collect_only:
            for extra in [md] + sorted(OUT.glob(f"{topic}-*.md")):
                if extra.exists():
                    sections.append(extra.read_text().rstrip() + "\n")
            continue
        md.unlink(missing_ok=True)
        print(f"[bench] {script.name} {' '.join(passthrough)}", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        rc = subprocess.run([sys.executable, str(script), *passthrough], env=env).returncode
        took = time.monotonic() - t0
        if rc != 0 or not md.exists():
            failed.append(script.name)
            sections.append(f"## {topic}\n\n`{script.name}` failed (exit {rc}); no table.\n")
        else:
            sections.append(md.read_text().rstrip() + f"\n\n_({script.name}, {took:.0f} s)_\n")
            sections += [x.read_text().rstrip() + "\n" for x in sorted(OUT.glob(f"{topic}-*.md"))]
    head = (f"_Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, args: {' '.join(passthrough) or '(full)'}_\n")
    report = head + "\n" + "\n".join(sections)
    (OUT / "report.md").write_text(report)
    print(report)
    readme = HERE / "README.md"
    if not args.no_readme and readme.exists():
        text = readme.read_text()
        if START in text and END in text:
            pre, rest = text.split(START, 1)
            _, post = rest.split(END, 1)
            readme.write_text(f"{pre}{START}\n{report}\n{END}{post}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
