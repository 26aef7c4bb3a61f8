"""What sqlnb ships (#27, docs/build.md): the sdist builds offline from the cached pinned sources
(and says in one line what to fetch when they are missing), the wheel built from it for the running
Python is repaired to a manylinux tag, passes twine check and check-wheel-contents, and works in a
fresh virtual environment with no compiler on the PATH and no network: import, engines, query_df,
a %sql magic in an IPython shell, the tour notebook. `make dist` runs the same smoke check
(tools/dist.py) for CPython 3.10-3.13.

Marker ``dist``: ``-m 'not dist'`` leaves these out locally; under CI=true the Makefile refuses that.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import sqlnb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_helpers  # noqa: E402
import dist  # noqa: E402

pytestmark = pytest.mark.dist
PINS = json.loads((ROOT / "sources.json").read_text())


def test_version_has_one_place():
    """pyproject.toml takes the version from sqlnb/__init__.py; the installed metadata agrees."""
    import tomllib
    from importlib.metadata import version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sqlnb.__version__"}
    assert dist.version() == sqlnb.__version__ == version("sqlnb")
    assigned = [n for n in ast.walk(ast.parse((ROOT / "sqlnb" / "__init__.py").read_text()))
                if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in n.targets)]
    assert len(assigned) == 1
    assert isinstance(project["project"]["license"], str)  # an SPDX expression, not the table form


def test_sqlite_objects_do_not_depend_on_the_python():
    """Python 3.10's and 3.11's compiler flags differ; our SQLite objects (and their cache) do not."""
    class Py310:
        compiler_so = ["gcc", "-Wno-unused-result", "-Wsign-compare", "-DNDEBUG", "-g", "-fwrapv", "-O3", "-fPIC"]

    class Py311:
        compiler_so = ["gcc", "-Wsign-compare", "-DNDEBUG", "-g", "-fwrapv", "-O3", "-Wall", "-fPIC"]

    assert build_helpers._compiler_words(Py310) == ["gcc"]
    src_a, objs_a = build_helpers.own_objects(Py310)
    src_b, objs_b = build_helpers.own_objects(Py311)
    assert objs_a == objs_b and all(Path(o).is_file() for o in objs_a)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """The sdist, built offline without build isolation."""
    return dist.build_sdist(tmp_path_factory.mktemp("sdist"), isolated=False, offline=True)


@pytest.fixture(scope="module")
def built(sdist, tmp_path_factory):
    """The sdist and, from it, a wheel for this Python built with the network cut: the pinned
    sources and SQLite objects come from $SQLNB_CACHE."""
    out = tmp_path_factory.mktemp("dist")
    wheel, log = dist.build_wheel(sdist, sys.executable, out / "raw", isolated=False, offline=True)
    repaired = dist.repair(wheel, out)
    return sdist, wheel, repaired, log


@pytest.mark.timeout(900)
def test_sdist_builds_offline_and_carries_no_generated_c(built):
    sdist, wheel, _, log = built
    assert "compiling SQLite" not in log, "the wheel build recompiled SQLite instead of using $SQLNB_CACHE/obj"
    assert "BerkeleyDB SQL flavour: SKIP (disabled by SQLNB_BDB=0)" in log
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"setup.py", "pyproject.toml", "sources.json", "LICENSE", "README.md", "tools/fetch_sources.py",
            "tools/build_helpers.py", "tools/gen_consts.py", "sqlnb/_fast.pyx", "docs/build.md"} <= names
    assert not {"sqlnb/_fast.c", "sqlnb/_fast_bdb.c", "sqlnb/_core/consts.pxi"} & names  # Cython is needed
    assert not [n for n in names if n.endswith((".so", ".o")) or Path(n).name in ("sqlite3.c", "lsm.h")]
    assert dist.check(sdist) == []


@pytest.mark.timeout(900)
def test_wheel_is_manylinux_and_passes_the_checkers(built):
    _, _, wheel, _ = built
    assert "-manylinux_" in wheel.name and f"-cp{sys.version_info[0]}{sys.version_info[1]}-" in wheel.name, wheel.name
    assert dist.check(wheel) == []  # twine check --strict, check-wheel-contents
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(f"sqlnb-{sqlnb.__version__}.dist-info/METADATA").decode()
        so = [n for n in names if n.startswith("sqlnb/_fast.") and n.endswith(".so")]
        assert len(so) == 1, names
        assert not [n for n in names if "_fast_bdb" in n and n.endswith(".so")]  # BerkeleyDB left out
        assert not [n for n in names if n.startswith("sqlnb.libs/")]  # nothing grafted: libc/libm only
        lib = Path(str(wheel) + ".so")
        lib.write_bytes(z.read(so[0]))
    assert "License-Expression: MIT" in meta and "Requires-Python: >=3.10" in meta
    assert "Programming Language :: Python :: 3.13" in meta and "Provides-Extra: notebook" in meta
    assert "Description-Content-Type: text/markdown" in meta and "# sqlnb" in meta
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True)
    exported = [line.split()[-1] for line in out.stdout.splitlines() if line.strip()]
    assert exported and not [s for s in exported if s.startswith(("sqlite3", "lsm"))]


@pytest.mark.timeout(900)
def test_wheel_works_without_compiler_or_network(built, tmp_path):
    _, _, wheel, _ = built
    from sqlnb import demo

    result = dist.smoke(sys.executable, wheel, tmp_path, demo.database_path(create=True))
    assert result["version"] == sqlnb.__version__
    assert result["compiler"] is None
    assert result["engines"]["sqlite"] == PINS["sqlite"]["sqlite_version"]
    assert result["engines"]["system"] != "unavailable" and result["engines"]["bdb"] == "unavailable"
    assert result["tour_cells"] > 10
    assert set(result["seconds"]) >= {"environment", "import", "engines", "query_df", "magic", "tour", "install"}
    if dist.OFFLINE_PREFIX:
        assert result["network"] == "none"


@pytest.mark.timeout(300)
def test_sdist_without_sources_offline_fails_in_one_line(sdist, tmp_path):
    """No cached sources, no network: the build stops with one line naming what to fetch and where."""
    src = dist.unpack(sdist, tmp_path)
    empty = tmp_path / "cache"
    env = dist.offline_env(dist.build_env(SQLNB_CACHE=str(empty)))
    env.pop("SQLNB_SOURCES_DIR", None)
    r = subprocess.run(dist.OFFLINE_PREFIX + [sys.executable, "-m", "build", "--wheel", "--no-isolation",
                                              "-o", str(tmp_path / "out"), str(src)],
                       env=env, capture_output=True, text=True, timeout=280)
    assert r.returncode != 0
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("[sqlnb] error:")]
    assert len(lines) == 1, r.stdout[-2000:] + r.stderr[-2000:]
    line = lines[0]
    for pin in ("sqlite", "lsm1"):
        assert PINS[pin]["filename"] in line
    assert str(empty / "sources" / "sdists") in line and "SQLNB_SOURCES_DIR" in line
    assert "Traceback" not in r.stdout + r.stderr
    assert not list(tmp_path.glob("out/*.whl"))
    assert not (empty / "obj").exists()  # nothing compiled, nothing cached


def test_bdb_is_left_out_of_wheels_and_says_how_to_get_it():
    """A wheel build switches the BerkeleyDB flavour off; engines() then names the way to it."""
    env = dist.build_env()
    assert env["SQLNB_BDB"] == "0" and env["SQLNB_REQUIRE_EXT"] == "1"
    from sqlnb.engines.bdb import BdbEngine

    why = BdbEngine()._not_built()
    assert "libdb5.3-sql-dev" in why and "--no-binary" in why


@pytest.mark.timeout(300)
def test_sdist_offline_without_compiler_is_system_only_not_a_sources_error(sdist, tmp_path):
    """No compiler is known before any source is looked for: offline, with an empty cache and
    CC=false, the build still succeeds, warns, and the wheel carries no compiled engine."""
    src = dist.unpack(sdist, tmp_path)
    empty = tmp_path / "cache"
    env = dist.offline_env(dist.build_env(SQLNB_CACHE=str(empty), CC="false", LDSHARED="false"))
    env.pop("SQLNB_REQUIRE_EXT")
    r = subprocess.run(dist.OFFLINE_PREFIX + [sys.executable, "-m", "build", "--wheel", "--no-isolation",
                                              "-o", str(tmp_path / "out"), str(src)],
                       env=env, capture_output=True, text=True, timeout=280)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "no working C compiler" in out and "will use the pure-Python 'system' engine" in out
    assert "[sqlnb] error:" not in out
    (wheel,) = (tmp_path / "out").glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert not [n for n in z.namelist() if n.endswith(".so")]
    assert not (empty / "sources").exists() and not (empty / "obj").exists()
