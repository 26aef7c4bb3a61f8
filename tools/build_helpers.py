"""Build support for setup.py: compile (and cache) our SQLite + lsm1 objects,
find BerkeleyDB SQL, and keep the C extension optional.

* ``own_objects()`` fetches the pinned sources (tools/fetch_sources.py) and
  compiles sqlite3.c and the lsm1 files concurrently into a cache keyed by the
  sources, flags and compiler, so a rebuild (or a second build in the same run)
  links in seconds instead of recompiling SQLite for ~90 s.
* ``OptionalBuildExt`` turns a failed compile (e.g. no C compiler, ``CC=false``)
  into a one-line warning: the package then runs on the ``system`` engine. Missing
  pinned sources without network are an error of one line instead (what to fetch,
  where to put it): a build that could not even try to compile is not "no compiler".
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
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


#: flags every object of our SQLite gets besides opt_flags(), whatever Python runs the build: the
#: objects then do not depend on the interpreter (its CFLAGS differ between 3.10 and 3.11), so one
#: cache serves the wheels of every Python (`make dist`) and the wheel test of `make test`
OBJ_FLAGS = ["-fwrapv", "-DNDEBUG", "-pthread"]


def _compiler_words(compiler) -> list[str]:
    """The compiler command without Python's flags: ``gcc`` of ``gcc -O3 -Wall ... -fPIC``
    (``$CC`` when set: setuptools put it first), ``ccache gcc`` stays two words."""
    words = list(getattr(compiler, "compiler_so", None) or ["cc"])
    exe = []
    for w in words:
        if w.startswith("-"):
            break
        exe.append(w)
    return exe or ["cc"]


def _compiler_identity(exe: list[str]) -> str:
    """What the cache key knows of the compiler: its resolved path and version."""
    path = shutil.which(exe[-1]) or exe[-1]
    try:
        out = subprocess.run(exe + ["-dumpfullversion", "-dumpversion"], capture_output=True, text=True,
                             timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = "?"
    return f"{' '.join(exe)} {os.path.realpath(path)} {out}"


def check_compiler(compiler) -> None:
    """RuntimeError when the C compiler does not run (``CC=false``, none installed): "no compiler"
    is known before the pinned sources are looked for, so it never needs them or the network."""
    exe = _compiler_words(compiler)
    try:
        ok = subprocess.run(exe + ["--version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if not ok:
        raise RuntimeError(f"no working C compiler ({' '.join(exe)} --version failed)")


def own_objects(compiler) -> tuple[Path, list[str]]:
    """Return (source dir, object files) for our SQLite + lsm1, compiling only what the cache lacks.

    The objects are compiled with the compiler's command alone (``$CC`` or Python's ``CC``) and our
    own flags, never Python's CFLAGS: the cache key (sources, defines, flags, compiler identity) is
    the same for every Python version."""
    src = fetch_sources.prepare()
    exe = _compiler_words(compiler)
    flags = OBJ_FLAGS + opt_flags()
    key = hashlib.sha256(
        ((src / ".stamp").read_text() + repr(SQLITE_DEFINES) + repr(LSM_DEFINES)
         + repr(flags) + _compiler_identity(exe)).encode()).hexdigest()[:16]
    out = cache_root() / "obj" / key
    out.mkdir(parents=True, exist_ok=True)
    jobs = [("sqlite3.c", SQLITE_DEFINES)] + [(f, LSM_DEFINES) for f in LSM_FILES]

    def one(job):
        name, defines = job
        obj = out / (name[:-2] + ".o")
        if obj.is_file():
            return str(obj)
        tmp = out / f".tmp-{name[:-2]}-{os.getpid()}.o"
        cmd = (exe + ["-c", str(src / name), "-o", str(tmp), f"-I{src}"]
               + [f"-D{k}={v}" for k, v in defines] + flags)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            tmp.unlink(missing_ok=True)
            first = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[0]
            raise RuntimeError(f"{' '.join(exe)} failed on {name}: {first}")
        os.replace(tmp, obj)
        return str(obj)

    missing = [j for j in jobs if not (out / (j[0][:-2] + ".o")).is_file()]
    if missing:
        log(f"compiling SQLite {fetch_sources.json.loads(fetch_sources.PINS.read_text())['sqlite']['sqlite_version']}"
            f" + lsm1 ({len(missing)} files, cache {out})")
    # sqlite3.c dominates: run it beside the small lsm1 files
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        objects = list(pool.map(one, jobs))
    return src, objects


def cache_root() -> Path:
    """``$SQLNB_CACHE``, else ``build/`` of the source tree (docs/build.md)."""
    return Path(os.environ.get("SQLNB_CACHE") or ROOT / "build")


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
    """build_ext that compiles our SQLite objects first; no working compiler is a warning (the
    install goes on with the `system` engine), missing pinned sources offline an error of one line."""

    def build_extension(self, ext):
        required = os.environ.get("SQLNB_REQUIRE_EXT") == "1"
        try:
            if ext.name == "sqlnb._fast":
                check_compiler(self.compiler)
                try:
                    src, objects = own_objects(self.compiler)
                except fetch_sources.SourcesUnavailable as exc:  # not a compiler problem: say what to fetch
                    raise SystemExit(f"[sqlnb] error: {exc}") from None
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
