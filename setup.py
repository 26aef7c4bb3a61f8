"""Build sqlnb: the Cython core compiled against our own SQLite (+ lsm1), and
again against BerkeleyDB SQL when its header is present. See tools/build_helpers.py."""
import os
import sys

from setuptools import Extension, setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools"))
from build_helpers import CORE, OptionalBuildExt, core_depends, find_bdb, log, opt_flags  # noqa: E402

try:
    from Cython.Build import cythonize
except ImportError:  # an sdist without Cython could ship generated C; we do not: no C engine then
    cythonize = None

# One compilation unit per flavour: sqlnb/_fast.pyx includes the pieces under sqlnb/_core/
# (SQLite's symbols stay hidden in one .so; the bdb flavour is the same source plus bdb_env.pxi).
directives = {"language_level": "3", "boundscheck": False, "wraparound": False, "cdivision": True}
common = dict(extra_compile_args=opt_flags() + ["-fno-strict-aliasing"], libraries=["m", "pthread"],
              depends=core_depends())
exts = [Extension("sqlnb._fast", ["sqlnb/_fast.pyx"], include_dirs=[CORE],
                  define_macros=[("SQLNB_FLAVOUR_OWN", "1")], **common)]
bdb_dir, why = find_bdb()
log(f"BerkeleyDB SQL flavour: {'BUILD' if bdb_dir else 'SKIP'} ({why})")
if bdb_dir:
    exts.append(Extension("sqlnb._fast_bdb",
                          ["sqlnb/_fast_bdb.pyx", f"{CORE}/bdb_locks.c", f"{CORE}/bdb_recover.c"],
                          include_dirs=[CORE, bdb_dir],
                          define_macros=[("SQLNB_FLAVOUR_BDB", "1")], **dict(common, libraries=["db_sql"])))
if os.environ.get("SQLNB_NO_EXT") == "1":
    log("SQLNB_NO_EXT=1: installing without the C engines (make venv builds them in place next)")
    exts = []
elif cythonize is None:
    log("WARNING: Cython is not installed: building without the C engines ('system' engine only)")
    exts = []
else:
    import gen_consts  # noqa: E402  (tools/): sqlnb/_core/consts.pxi from sqlnb/_consts.py

    if gen_consts.write():
        log(f"wrote {os.path.relpath(gen_consts.OUTPUT)} from sqlnb/_consts.py")
    exts = cythonize(exts, compiler_directives=directives, quiet=True)

setup(ext_modules=exts, cmdclass={"build_ext": OptionalBuildExt})
