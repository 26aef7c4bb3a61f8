"""The smoke check of an installed sqlnb wheel (tools/dist.py runs it inside a fresh virtual
environment, with no compiler on the PATH and no network; docs/build.md).

Usage: ``python smoke_wheel.py TOUR.ipynb DEMO.db EXPECTED_VERSION``. Prints one ``SMOKE <step> ok``
line per step and ``SMOKE-RESULT {json}`` at the end; any failure exits non-zero with the step's name.
Standard library plus what the wheel and its ``notebook`` extra installed; it never imports a
file of the source checkout (it is run from a directory outside it).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

RESULT: dict = {"python": sys.version.split()[0], "seconds": {}}


def step(name: str):
    def wrap(fn):
        t0 = time.perf_counter()
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - the step's name and the error, then fail
            print(f"SMOKE {name} FAILED: {type(exc).__name__}: {exc}", flush=True)
            raise
        RESULT["seconds"][name] = round(time.perf_counter() - t0, 2)
        print(f"SMOKE {name} ok ({RESULT['seconds'][name]} s)", flush=True)
        return fn
    return wrap


def main(tour: Path, db: Path, version: str) -> None:
    @step("environment")
    def _():
        found = {c: shutil.which(c) for c in ("cc", "gcc", "clang", "c++", "g++", "x86_64-linux-gnu-gcc")}
        assert not any(found.values()), f"a compiler is on the PATH: {found}"
        RESULT["compiler"] = None
        try:
            socket.getaddrinfo("pypi.org", 443)
            RESULT["network"] = "resolves names"
        except OSError:
            RESULT["network"] = "none"
        if os.environ.get("SQLNB_SMOKE_NO_NETWORK") == "1":
            assert RESULT["network"] == "none", "the network is reachable (pypi.org resolves)"

    @step("import")
    def _():
        import sqlnb

        where = Path(sqlnb.__file__).resolve()
        assert str(where).startswith(str(Path(sys.prefix).resolve())), f"sqlnb imported from {where}"
        assert sqlnb.__version__ == version, (sqlnb.__version__, version)
        from importlib.metadata import version as dist_version

        assert dist_version("sqlnb") == version
        RESULT["version"] = sqlnb.__version__

    @step("engines")
    def _():
        import sqlnb

        infos = {e.name: e for e in sqlnb.engines()}
        assert infos["sqlite"].available, f"sqlite unavailable: {infos['sqlite'].why}"
        assert infos["sqlite"].version == sqlnb.sqlite_version("sqlite")
        assert infos["system"].available
        bdb = infos["bdb"]
        # a portable wheel leaves the BerkeleyDB flavour out: engines() must say how to get it
        assert bdb.available or "libdb5.3-sql-dev" in (bdb.why or ""), bdb
        if not bdb.available:  # and so does the error of asking for it
            try:
                sqlnb.connect(":memory:", engine="bdb")
                raise AssertionError("connect(engine='bdb') worked although engines() says unavailable")
            except sqlnb.errors.EngineUnavailableError as exc:
                assert "--no-binary sqlnb" in str(exc) and "libdb5.3-sql-dev" in str(exc), exc
        RESULT["engines"] = {n: (i.version if i.available else "unavailable") for n, i in infos.items()}
        con = sqlnb.connect(":memory:")
        assert con.engine == "sqlite", con.engine
        assert con.execute("SELECT count(*) FROM pragma_module_list WHERE name = 'lsm1'").fetchone() == (1,)
        con.close()

    @step("query_df")
    def _():
        import sqlnb

        con = sqlnb.connect(":memory:")
        con.execute("CREATE TABLE t(i INTEGER, x REAL, s TEXT)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, i / 4, f"r{i}") for i in range(1000)])
        df = con.query_df("SELECT i, x, s, sqrt(i) AS r FROM t WHERE i % 10 = 0 ORDER BY i")
        assert df.shape == (100, 4), df.shape
        assert str(df["i"].dtype) == "int64" and str(df["x"].dtype) == "float64", df.dtypes
        assert df["s"].iloc[3] == "r30" and df["r"].iloc[4] == 40 ** 0.5
        con.close()

    @step("magic")
    def _():
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        cfg = Config()
        cfg.HistoryManager.enabled = False
        shell = InteractiveShell.instance(config=cfg)
        shell.run_line_magic("load_ext", "sqlnb")
        for cell in ("%sql :memory:", "%sql CREATE TABLE m(a, b)",
                     "%sql INSERT INTO m VALUES (1, 'x'), (2, 'y')",
                     "n = 2\ndf = %sql SELECT a, b FROM m WHERE a = :n"):
            r = shell.run_cell(cell)
            r.raise_error()
        df = shell.user_ns["df"]
        assert df.to_dict("records") == [{"a": 2, "b": "y"}], df
        shell.run_line_magic("sql", "--close memory")

    @step("tour")
    def _():
        from sqlnb import demo

        nb = demo.execute_notebook(tour, timeout=600, db=db)
        code = [c for c in nb.cells if c.cell_type == "code"]
        errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(code)
                  for o in c.get("outputs", []) if o.output_type == "error"]
        assert errors == [], errors
        assert all(c.execution_count is not None for c in code), "a cell did not run"
        assert any(o.get("output_type") == "execute_result" for c in code for o in c.outputs)
        RESULT["tour_cells"] = len(code)

    print("SMOKE-RESULT " + json.dumps(RESULT), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: smoke_wheel.py TOUR.ipynb DEMO.db EXPECTED_VERSION")
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
