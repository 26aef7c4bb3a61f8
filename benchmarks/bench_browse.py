"""The page browser: one page deep in a big table, keyset vs LIMIT/OFFSET (``%sql --browse``).

A table of N rows (``id``, an indexed ``k`` with duplicates and NULLs, a text column) is built
once in ``$SQLNB_CACHE/bench/browse-N.db``. For pages at 0 %, 50 % and 99 % of the table we time
the statement ``sqlnb.frames.pages`` builds for the next page after a known row (keyset: on
``rowid``, and sorted by ``k`` through its index) against the same page read with
``LIMIT/OFFSET``: medians of repeated runs, each reading the page's 21 rows. Keyset pages should
cost the same anywhere in the table; OFFSET grows with the depth. Writes
``build/bench/browse.md``. ``--quick``: 200,000 rows, fewer runs. Report only (no target).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import sqlnb  # noqa: E402
from sqlnb.frames import pages  # noqa: E402

OUT = Path(os.environ.get("SQLNB_CACHE", ROOT / "build")) / "bench"
SIZE = 20


def build(path: Path, n: int) -> None:
    if path.exists():
        return
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlnb.connect(str(tmp))
    con.execute("CREATE TABLE t (id INTEGER, k INTEGER, s TEXT)")
    con.execute(f"INSERT INTO t WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) "
                "SELECT i, CASE WHEN i % 97 = 0 THEN NULL ELSE (i * 7919) % 1000 END, printf('row %d', i) FROM c")
    con.execute("CREATE INDEX t_k ON t (k)")
    con.commit()
    con.close()
    tmp.rename(path)


def timed(con, page: pages.Page, runs: int) -> float:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        cur = con.cursor()
        cur.execute(page.sql, page.params or None)
        rows = cur.fetchmany(SIZE + 1)
        cur.close()
        out.append(time.perf_counter() - t0)
    assert len(rows) == SIZE + 1
    return statistics.median(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--rows", type=int, default=0)
    args = ap.parse_args(argv)
    n = args.rows or (200_000 if args.quick else 2_000_000)
    runs = args.runs or (5 if args.quick else 11)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"browse-{n}.db"
    build(path, n)
    con = sqlnb.connect(str(path), mode="ro")
    src = pages.table_source("main", "t", ["id", "k", "s"])
    lines = [f"## browse: one page of {SIZE} rows in a table of {n:,} rows (`sqlnb.frames.pages`)", "",
             "| order | page at | keyset | LIMIT/OFFSET | OFFSET / keyset |", "|---|---|---|---|---|"]
    for sort in (None, "k"):
        pager = pages.Pager(src, SIZE, sort)
        order = ("k, rowid" if sort else "rowid")
        for frac in (0.0, 0.5, 0.99):
            offset = int(n * frac)
            at = pager.at(offset // SIZE)
            if offset:  # the keys of the row just before the page: where 'next' starts from
                prev = pager.at(offset // SIZE - 1)
                cur = con.cursor()
                cur.execute(prev.sql)
                anchor = cur.fetchmany(SIZE)[-1][:prev.nkey]
                cur.close()
                keyset = pager.after(anchor)
            else:
                keyset = pager.first()
            tk, to = timed(con, keyset, runs), timed(con, at, runs)
            lines.append(f"| {order} | {frac:.0%} (row {offset + 1:,}) | {tk * 1e3:.2f} ms | {to * 1e3:.2f} ms | "
                         f"{to / tk:.1f}x |")
    con.close()
    lines += ["", f"Medians of {runs} runs; each reads the page's {SIZE} rows and one more (is there a next "
              "page). Keyset pages start after the previous page's last row (its sort value and rowid)."]
    text = "\n".join(lines) + "\n"
    (OUT / "browse.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
