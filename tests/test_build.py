"""What the build made: versions, options, hidden symbols, pins, no vendored sources."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sqlnb

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = (Path(os.environ.get("SQLNB_CACHE") or ROOT / "build") / "wheelhouse"
              / f"cp{sys.version_info[0]}{sys.version_info[1]}")  # tools/dist.py wheelhouse (make wheelhouse)
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
    # the SPDX `license` needs setuptools>=77 (the venv's own is older): from the wheelhouse, offline
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(WHEELHOUSE), "setuptools>=77"],
                   check=True)
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


# ---------------------------------------------------------------------------------------------
# the compiled core's source layout (sqlnb/_fast.pyx + sqlnb/_core/)
# ---------------------------------------------------------------------------------------------
CORE = ROOT / "sqlnb" / "_core"


def _core_sources():
    return sorted([*CORE.glob("*.pxi"), *CORE.glob("*.h"), *CORE.glob("*.c"), *ROOT.glob("sqlnb/_fast*.pyx")])


def test_generated_consts_are_current():
    """sqlnb/_core/consts.pxi is what tools/gen_consts.py makes of sqlnb/_consts.py today."""
    sys.path.insert(0, str(ROOT / "tools"))
    import gen_consts

    assert (CORE / "consts.pxi").read_text() == gen_consts.render(), "run python tools/gen_consts.py"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_consts.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_generated_consts_match_python_and_are_not_copied():
    from sqlnb import _consts, _fast

    text = (CORE / "consts.pxi").read_text()
    for name in ("INTEGER", "REAL", "TEXT", "BLOB", "NULL"):
        assert f"    CLASS_{name} = {getattr(_consts, name)}\n" in text
    for cls, prefix in ((_consts.Rule, "RULE"), (_consts.Why, "WHY"), (_consts.AuthAction, "ACTION")):
        for m in cls:
            assert f"    {prefix}_{m.name} = {int(m)}\n" in text
    # the module checked every action and storage-class code against sqlite3.h at import
    assert len(_fast._HEADER_PAIRS) == 5 + len(_consts.AuthAction)
    assert all(ours == theirs for ours, theirs in _fast._HEADER_PAIRS)
    # no hand copy of those codes is left in the hand-written sources
    for path in _core_sources():
        if path.name == "consts.pxi":
            continue
        src = path.read_text()
        for stale in ("RULE_ALLOW = ", "WHY_NONE = ", "WHY_REPREPARE = ", "_T_INT", "_T_NULL"):
            assert stale not in src, (path.name, stale)


def test_core_files_are_small_and_one_unit_per_flavour():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in _core_sources()}
    assert all(n < 700 for n in sizes.values()), sizes
    toc = (ROOT / "sqlnb" / "_fast.pyx").read_text()
    included = [line.split('"')[1] for line in toc.splitlines() if line.startswith("include ")]
    assert "_core/bdb_env.pxi" not in included  # BerkeleyDB-only code: _fast_bdb.pyx alone
    pieces = {p.name for p in CORE.glob("*.pxi")} - {"bdb_env.pxi"}
    assert sorted(included) == sorted(f"_core/{n}" for n in pieces), "a piece is not included (or missing)"
    bdb = (ROOT / "sqlnb" / "_fast_bdb.pyx").read_text()
    assert 'include "_fast.pyx"' in bdb and 'include "_core/bdb_env.pxi"' in bdb


def test_bdb_only_functions_live_in_the_bdb_flavour():
    from sqlnb import _fast

    for name in ("lock_watch", "lock_unwatch", "clear_dead_env", "HAVE_LOCK_WATCH"):
        assert not hasattr(_fast, name), name
    from tests.conftest import engine_available

    if engine_available("bdb")[0]:
        from sqlnb import _fast_bdb

        assert callable(_fast_bdb.lock_watch) and callable(_fast_bdb.clear_dead_env)


def test_core_imports_only_the_lowest_layers():
    """The compiled core imports errors, _bind, _sql, _files and _sigint (the Ctrl-C count), never the
    policy layer (a Policy is passed to install_policy) nor anything higher; no import inside a function."""
    allowed = {"from sqlnb import errors as _errors", "from sqlnb import _bind", "from sqlnb import _files",
               "from sqlnb import _sql", "from sqlnb import _sigint"}
    for path in _core_sources():
        for line in path.read_text().splitlines():
            if "sqlnb" in line and ("import " in line) and not line.lstrip().startswith("#"):
                assert line in allowed, (path.name, line)


def test_stub_names_the_compiled_surface():
    """sqlnb/_fast.pyi declares every public class, method and function of the module, and
    nothing the module lacks."""
    import ast

    from sqlnb import _fast

    def member(n):
        return n.name if isinstance(n, (ast.FunctionDef, ast.ClassDef)) else n.target.id

    kinds = (ast.FunctionDef, ast.ClassDef, ast.AnnAssign)
    tree = ast.parse((ROOT / "sqlnb" / "_fast.pyi").read_text())
    stub = {member(n): ({member(m) for m in n.body if isinstance(m, kinds)} if isinstance(n, ast.ClassDef) else None)
            for n in tree.body if isinstance(n, kinds)}
    public = {n for n in dir(_fast) if not n.startswith("_") and (callable(getattr(_fast, n)) or n.isupper())}
    public -= {"Params", "Chunk", "Refusal"}
    assert sorted(public - set(stub)) == []
    assert sorted(n for n in stub if not hasattr(_fast, n) and n not in ("Params", "Chunk", "Refusal")) == []
    for cls in ("RawConnection", "RawStatement", "Fetch", "RawColumn", "ExportColumns", "AuthTable"):
        members = {n for n in dir(getattr(_fast, cls)) if not n.startswith("__")}
        declared = stub[cls] - {"__init__", "__len__", "__buffer__"}
        assert sorted({n for n in members if not n.startswith("_")} - declared) == [], cls
        assert sorted(declared - members) == [], cls
