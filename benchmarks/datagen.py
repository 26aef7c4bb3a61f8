"""Deterministic benchmark data, shared by every benchmark in this folder.

* ``mixed_frame(n)``: the 2,000,000-row mixed table of the fetcher issue: integer
  id, ISO-8601 timestamp text, user_id (50k distinct), category (20 distinct),
  amount real, note text of 10-60 random characters, flag integer NULL 10% of the time.
* ``numeric_frame(n)``: the 5,000,000-row numeric table (two integer, two real).
* ``build_db(path, ...)``: write them into a SQLite file with the stdlib (so the
  data do not depend on the code under test), cached by size and seed.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

MIXED_ROWS = 2_000_000
NUMERIC_ROWS = 5_000_000
ALPHABET = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ", dtype="S1")

WINDOW_QUERY = """
SELECT id, user_id, category, amount,
       sum(amount) OVER (PARTITION BY user_id ORDER BY ts ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS moving7,
       rank() OVER (PARTITION BY category ORDER BY amount DESC) AS rank_in_category,
       lag(amount) OVER (PARTITION BY user_id ORDER BY ts) AS prev_amount
FROM mixed
"""


def mixed_frame(n: int = MIXED_ROWS, seed: int = 42) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00")
    ts = start + np.sort(rng.integers(0, 365 * 86400, n)).astype("timedelta64[s]")
    lengths = rng.integers(10, 61, n)
    chars = ALPHABET[rng.integers(0, len(ALPHABET), int(lengths.sum()))]
    blob = chars.tobytes().decode("ascii")
    ends = np.cumsum(lengths)
    starts = ends - lengths
    notes = [blob[s:e] for s, e in zip(starts.tolist(), ends.tolist())]
    flag = rng.integers(0, 2, n).astype("float64")
    flag[rng.random(n) < 0.10] = np.nan
    return pd.DataFrame({
        "id": np.arange(1, n + 1, dtype="int64"),
        "ts": np.datetime_as_string(ts, unit="s"),
        "user_id": rng.integers(1, 50_001, n).astype("int64"),
        "category": np.array([f"cat{i:02d}" for i in range(20)], dtype=object)[rng.integers(0, 20, n)],
        "amount": np.round(rng.gamma(2.0, 30.0, n), 2),
        "note": notes,
        "flag": pd.array(flag, dtype="Int64"),
    })


def numeric_frame(n: int = NUMERIC_ROWS, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "a": rng.integers(-(2**40), 2**40, n).astype("int64"),
        "b": rng.integers(0, 1000, n).astype("int64"),
        "x": rng.standard_normal(n),
        "y": rng.random(n) * 1e6,
    })


def _fill(con: sqlite3.Connection, name: str, df: pd.DataFrame) -> None:
    cols = ", ".join(df.columns)
    marks = ", ".join("?" * len(df.columns))
    con.execute(f"CREATE TABLE {name} ({cols})" if name != "mixed" else
                "CREATE TABLE mixed (id INTEGER PRIMARY KEY, ts TEXT, user_id INTEGER, category TEXT, "
                "amount REAL, note TEXT, flag INTEGER)")
    cols_py = [df[c].astype(object).where(df[c].notna(), None).tolist() for c in df.columns]
    con.executemany(f"INSERT INTO {name} VALUES ({marks})", zip(*cols_py))


def build_once(path: str | os.PathLike, fill) -> Path:
    """Create the SQLite file ``path`` once: ``fill(con)`` writes it under a temporary name (stdlib
    ``sqlite3``, one transaction), renamed into place when done; an existing file is kept."""
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    with con:
        fill(con)
    con.close()
    os.replace(tmp, path)
    return path


def build_db(path: str | os.PathLike, *, mixed_rows: int = MIXED_ROWS, numeric_rows: int = NUMERIC_ROWS) -> Path:
    """Create (once) a SQLite file holding ``mixed`` and ``numeric``; returns its path."""
    def fill(con):
        _fill(con, "mixed", mixed_frame(mixed_rows))
        _fill(con, "numeric", numeric_frame(numeric_rows))

    return build_once(path, fill)


def default_db(quick: bool = False) -> Path:
    """The cached benchmark database under build/bench/ (``quick``: 1/10 of the rows)."""
    root = Path(os.environ.get("SQLNB_CACHE", Path(__file__).resolve().parent.parent / "build"))
    if quick:
        return build_db(root / "bench" / "data-quick.db", mixed_rows=MIXED_ROWS // 10, numeric_rows=NUMERIC_ROWS // 10)
    return build_db(root / "bench" / "data.db")
