"""Build support for setup.py: compile (and cache) our SQLite + lsm1 objects,
find BerkeleyDB SQL, and keep the C extension optional.

* ``own_objects()`` fetches the pinned sources (tools/fetch_sources.py) and
  compiles sqlite3.c and the lsm1 files concurrently into a cache keyed by the
  sources, flags and compiler, so a rebuild (or a second build in the same run)
  links in seconds instead of recompiling SQLite for ~90 s.
* ``OptionalBuildExt`` turns a failed compile (e.g. no C compiler, ``CC=false``)
  into a one-line warning: the package then runs on the ``system`` engine.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: the compiled core's pieces (setup.py passes it relative: setuptools wants relative source paths)
CORE = "sqlnb/_core"
sys.path.insert(0, str(HERE))
import fetch_sources  # noqa: E402

SQLITE_DEFINES = [
    ("SQLITE_ENABLE_FTS5", "1"),
    ("SQLITE_ENABLE_FTS4", "1"),
    ("SQLITE_ENABLE_FTS3_PARENTHESIS", "1"),
    ("SQLITE_ENABLE_RTREE", "1"),
    ("SQLITE_ENABLE_MATH_FUNCTIONS", "1"),
    ("SQLITE_ENABLE_DBSTAT_VTAB", "1"),
    ("SQLITE_ENABLE_COLUMN_METADATA", "1"),
    ("SQLITE_DQS", "0"),
    ("SQLITE_DEFAULT_MEMSTATUS", "0"),
    ("SQLITE_THREADSAFE", "1"),
    ("SQLITE_USE_URI", "1"),
    ("SQLITE_ENABLE_SNAPSHOT", "1"),  # parallel fetch: every worker reads one WAL snapshot
]
LSM_DEFINES = [("SQLITE_CORE", "1"), ("LSM_MUTEX_PTHREADS", "1"), ("NDEBUG", "1")]
LSM_FILES = ["lsm_ckpt.c", "lsm_file.c", "lsm_log.c", "lsm_main.c", "lsm_mem.c", "lsm_mutex.c",
             "lsm_shared.c", "lsm_sorted.c", "lsm_str.c", "lsm_tree.c", "lsm_unix.c",
             "lsm_varint.c", "lsm_vtab.c"]


def core_depends() -> list[str]:
    """Every file under sqlnb/_core/ (headers and C files included, the generated consts.pxi
    too): a change to any of them rebuilds both flavours."""
    names = sorted(p.name for p in (ROOT / CORE).iterdir() if p.suffix in (".pxi", ".h", ".c"))
    if "consts.pxi" not in names:  # written by gen_consts just before cythonize
        names = sorted(names + ["consts.pxi"])
    return [f"{CORE}/{n}" for n in names]


def opt_flags() -> list[str]:
    return shlex.split(os.environ.get("SQLNB_OPT", "-O2")) + ["-g0", "-fPIC", "-fvisibility=hidden", "-w"]


def log(msg: str) -> None:
    print(f"[sqlnb] {msg}", file=sys.stderr, flush=True)


def own_objects(compiler) -> tuple[Path, list[str]]:
    """Return (source dir, object files) for our SQLite + lsm1, compiling only what the cache lacks."""
    src = fetch_sources.prepare()
    cc = " ".join(compiler.compiler_so) if hasattr(compiler, "compiler_so") else "cc"
    key = hashlib.sha256(
        ((src / ".stamp").read_text() + repr(SQLITE_DEFINES) + repr(LSM_DEFINES)
         + repr(opt_flags()) + cc).encode()).hexdigest()[:16]
    out = Path(os.environ.get("SQLNB_CACHE", ROOT / "build")) / "obj" / key
    out.mkdir(parents=True, exist_ok=True)
    jobs = [("sqlite3.c", SQLITE_DEFINES)] + [(f, LSM_DEFINES) for f in LSM_FILES]

    def one(job):
        name, defines = job
        obj = out / (name[:-2] + ".o")
        if obj.is_file():
            return str(obj)
        tmpdir = out / f".tmp-{name[:-2]}-{os.getpid()}"
        objs = compiler.compile([str(src / name)], output_dir=str(tmpdir), macros=defines,
                                include_dirs=[str(src)], extra_postargs=opt_flags())
        os.replace(objs[0], obj)
        return str(obj)

    missing = [j for j in jobs if not (out / (j[0][:-2] + ".o")).is_file()]
    if missing:
        log(f"compiling SQLite {fetch_sources.json.loads(fetch_sources.PINS.read_text())['sqlite']['sqlite_version']}"
            f" + lsm1 ({len(missing)} files, cache {out})")
    # sqlite3.c dominates: run it beside the small lsm1 files
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        objects = list(pool.map(one, jobs))
    return src, objects


def find_bdb() -> tuple[str | None, str]:
    """Locate dbsql.h. Returns (include dir or None, a human reason)."""
    want = os.environ.get("SQLNB_BDB", "auto")
    if want == "0":
        return None, "disabled by SQLNB_BDB=0"
    dirs = [os.environ.get("SQLNB_BDB_INCLUDE", ""), "/usr/include", "/usr/local/include",
            sysconfig.get_config_var("INCLUDEDIR") or ""]
    for d in dirs:
        if d and (Path(d) / "dbsql.h").is_file():
            if not (Path(d) / "db.h").is_file():  # sqlnb/_core/bdb_locks.c uses BerkeleyDB's own API too
                return None, f"found {Path(d) / 'dbsql.h'} but not db.h (Debian: apt-get install libdb5.3-dev)"
            return d, f"found {Path(d) / 'dbsql.h'} and db.h"
    return None, "dbsql.h not found (Debian: apt-get install libdb5.3-sql-dev libdb5.3-dev)"


class OptionalBuildExt(build_ext):
    """build_ext that compiles our SQLite objects first and never fails the install."""

    def build_extension(self, ext):
        required = os.environ.get("SQLNB_REQUIRE_EXT") == "1"
        try:
            if ext.name == "sqlnb._fast":
                src, objects = own_objects(self.compiler)
                ext.include_dirs = [str(src)] + list(ext.include_dirs)
                ext.extra_objects = objects
                # relink when the objects change (other flags or sources: a new cache directory)
                ext.depends = list(ext.depends) + objects
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "no C engine"
            if required:
                raise
            log(f"WARNING: could not build {ext.name} ({type(exc).__name__}: {exc}); "
                f"sqlnb will use the pure-Python 'system' engine instead")
