"""What the build made: versions, options, hidden symbols, pins, no vendored sources."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import sqlnb

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_OPTIONS = ["ENABLE_FTS5", "ENABLE_FTS4", "ENABLE_RTREE", "ENABLE_MATH_FUNCTIONS", "ENABLE_DBSTAT_VTAB",
                    "ENABLE_COLUMN_METADATA", "DQS=0", "DEFAULT_MEMSTATUS=0", "THREADSAFE=1", "USE_URI"]


def vtuple(v):
    return tuple(int(x) for x in v.split("."))


def test_our_sqlite_version_and_options():
    assert vtuple(sqlnb.sqlite_version()) >= (3, 50, 4)
    assert sqlnb.sqlite_version("sqlite") == json.loads((ROOT / "sources.json").read_text())["sqlite"]["sqlite_version"]
    opts = sqlnb.compile_options()
    for want in REQUIRED_OPTIONS:
        assert any(o == want or o.startswith(want) for o in opts), want
    # STMT_SCANSTATUS times every VDBE op with the CPU's cycle counter (on by default per
    # connection): it cost about 40% of a table scan's stepping on this machine
    assert "ENABLE_STMT_SCANSTATUS" not in opts


def test_features_really_work():
    con = sqlnb.connect(":memory:")
    con.executescript("""
        CREATE VIRTUAL TABLE docs USING fts5(body);
        INSERT INTO docs VALUES ('sqlite in notebooks'), ('berkeley db');
        CREATE VIRTUAL TABLE d4 USING fts4(body);
        CREATE VIRTUAL TABLE box USING rtree(id, x0, x1);
        INSERT INTO box VALUES (1, 0, 10);
    """)
    assert con.execute("SELECT body FROM docs WHERE docs MATCH 'notebooks'").fetchall() == [("sqlite in notebooks",)]
    assert con.execute("SELECT id FROM box WHERE x0 <= 5 AND x1 >= 5").fetchall() == [(1,)]
    assert con.execute("SELECT json_extract('{\"a\": [1, 2]}', '$.a[1]')").fetchone() == (2,)
    assert con.execute("SELECT round(sqrt(16) + ln(1), 3)").fetchone() == (4.0,)
    assert con.execute("SELECT count(*) > 0 FROM dbstat").fetchone() == (1,)
    assert con.execute("SELECT sum(x) OVER () FROM (SELECT 1 x UNION ALL SELECT 2)").fetchall() == [(3,), (3,)]


def test_import_time_version_check_and_flavours():
    from sqlnb import _fast

    assert _fast.HEADER_VERSION == _fast.sqlite_version()
    assert _fast.FLAVOUR == "sqlite"
    assert _fast.HAVE_LSM1
    assert _fast.HAVE_DQS_CONFIG  # per-connection double-quoted strings (docs/dbapi.md)
    from tests.conftest import engine_available

    if engine_available("bdb")[0]:
        from sqlnb import _fast_bdb

        assert _fast_bdb.FLAVOUR == "bdb" and _fast_bdb.HEADER_VERSION == _fast_bdb.sqlite_version() == "3.7.6.2"
        assert not _fast_bdb.HAVE_LSM1 and not _fast_bdb.HAVE_DQS_CONFIG


def test_sqlite_symbols_hidden():
    from sqlnb import _fast

    out = subprocess.run(["nm", "-D", "--defined-only", _fast.__file__], capture_output=True, text=True, check=True)
    exported = [line.split()[-1] for line in out.stdout.splitlines() if line.strip()]
    assert not [s for s in exported if s.startswith(("sqlite3", "lsm"))], exported[:10]
    assert "PyInit__fast" in exported


def test_engines_listed():
    infos = {e.name: e for e in sqlnb.engines()}
    assert set(infos) >= {"sqlite", "bdb", "system"}
    assert infos["sqlite"].available and infos["sqlite"].version == sqlnb.sqlite_version()
    assert infos["system"].available
    for e in infos.values():
        assert e.available or e.why


def test_pins_cover_every_fetched_file():
    pins = json.loads((ROOT / "sources.json").read_text())
    for key in ("sqlite", "lsm1"):
        entry = pins[key]
        assert len(entry["sha256"]) == 64
        assert entry["files"] and all(len(spec["sha256"]) == 64 for spec in entry["files"].values())


def test_fetched_sources_match_pins():
    sys.path.insert(0, str(ROOT / "tools"))
    import fetch_sources

    src = fetch_sources.prepare()
    pins = json.loads((ROOT / "sources.json").read_text())
    for key in ("sqlite", "lsm1"):
        for spec in pins[key]["files"].values():
            data = (src / spec["as"]).read_bytes()
            if spec.get("patch"):  # our own xBestIndex is spliced in at build time
                assert b"sqlnb" in data, spec["as"]
            else:
                assert hashlib.sha256(data).hexdigest() == spec["sha256"], spec["as"]


def test_no_third_party_source_committed():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    banned = {"sqlite3.c", "sqlite3.h", "sqlite3ext.h", "shell.c", "lsm.h", "lsmInt.h", "dbsql.h", "dbapi20.py"}
    bad = [f for f in files if Path(f).name in banned or (Path(f).name.startswith("lsm_") and f.endswith(".c"))]
    assert bad == []
    # and nothing big that looks like an amalgamation
    for f in files:
        p = ROOT / f
        if p.suffix in (".c", ".h") and p.is_file():
            assert p.stat().st_size < 200_000, f


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_install_without_compiler_gives_system_engine(tmp_path):
    """CC=false: the package installs with a warning and works on the stdlib engine."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "CC": "false", "LDSHARED": "false", "HOME": str(tmp_path),
           "SQLNB_CACHE": str(tmp_path / "cache"), "PIP_NO_INDEX": "1"}
    src = tmp_path / "src"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(src)], check=True)
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-build-isolation", "--no-deps", "-v", str(src)],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "will use the pure-Python 'system' engine" in r.stdout + r.stderr
    code = ("import sqlnb, os; assert 'src' not in sqlnb.__file__; "
            "e={i.name: i for i in sqlnb.engines()}; assert not e['sqlite'].available, e; "
            "c=sqlnb.connect(':memory:'); c.execute('create table a(x)'); "
            "c.executemany('insert into a values (?)', [(1,), (2,)]); "
            "print(sqlnb.connect(':memory:').engine, c.execute('select sum(x) from a').fetchone()[0], "
            "e['sqlite'].why)")
    r = subprocess.run([str(py), "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    engine, total, why = r.stdout.split(" ", 2)
    assert engine == "system" and total == "3" and "not built" in why
