#!/usr/bin/env python3
"""Build and check what sqlnb ships: an sdist and manylinux wheels (docs/build.md).

    python tools/dist.py wheelhouse [3.11 ...]   (default: the running Python) the dependency wheels the smoke check installs
                                                 from (once; $SQLNB_CACHE/wheelhouse/cp3XX)
    python tools/dist.py all [3.10 3.11 ...]     `make dist`: the sdist, then per Python a wheel
                                                 built from it, auditwheel repair, check-wheel-contents,
                                                 twine check and the smoke check; prints a summary

A wheel's smoke check (``smoke()``): a fresh virtual environment of that Python, PATH = its bin
directory only (no compiler), the network cut (``unshare --net`` when this machine allows it, else
pip's index switched off and its proxies pointed at a closed port), the wheel and its ``notebook``
extra installed with ``pip --no-index --only-binary :all:`` from the wheelhouse, then
tools/smoke_wheel.py there: import, engines, query_df, a %sql magic, the tour notebook.

Wheels leave the BerkeleyDB flavour out (``SQLNB_BDB=0``): see docs/build.md, "What each
artifact carries". The SQLite objects come from $SQLNB_CACHE/obj, shared by every Python.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
#: installed beside the wheel's own dependencies and its `notebook` extra, to run the tour
SMOKE_EXTRA = ("ipykernel>=6", "nbclient>=0.10", "nbformat>=5")
#: what building the sdist without network and without build isolation needs (pyproject [build-system])
BUILD_EXTRA = ("setuptools>=77", "Cython>=3.0")


def log(msg: str) -> None:
    print(f"[sqlnb.dist] {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    return Path(os.environ.get("SQLNB_CACHE") or ROOT / "build")


def version() -> str:
    """``__version__`` of sqlnb/__init__.py, read without importing (the one place it is set)."""
    tree = ast.parse((ROOT / "sqlnb" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError("sqlnb/__init__.py sets no __version__")


def requirements() -> list[str]:
    """The wheel's dependencies and its `notebook` extra (from pyproject.toml), SMOKE_EXTRA, BUILD_EXTRA."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"]["notebook"]) + list(SMOKE_EXTRA) + list(BUILD_EXTRA)


def run(cmd, *, env=None, cwd=None, check=True, quiet=True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, text=True,
                       stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)
    if check and r.returncode != 0:
        tail = (r.stdout or "")[-4000:]
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} ... failed (exit {r.returncode}):\n{tail}")
    return r


# --- interpreters ---------------------------------------------------------------------------
def python_info(exe: str) -> tuple[str, str] | None:
    """(X.Y, sys.executable) of an interpreter, or None when it does not run."""
    try:
        r = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0 or not r.stdout.strip():
        return None
    minor, path = r.stdout.split(None, 1)
    return minor, path.strip()


def find_python(want: str) -> str:
    """The interpreter for ``want`` (``3.12``, or a path): PATH first, then pyenv's versions."""
    if os.sep in want:
        info = python_info(want)
        if info is None:
            raise RuntimeError(f"{want} does not run")
        return info[1]
    if python_info(sys.executable)[0] == want:
        return sys.executable
    candidates = [shutil.which(f"python{want}") or ""]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted((str(p) for p in pyenv_root.glob(f"versions/{want}.*/bin/python{want}")), reverse=True)
    candidates += [f"/usr/bin/python{want}", f"/usr/local/bin/python{want}"]
    for c in candidates:
        info = python_info(c) if c else None
        if info and info[0] == want:
            return info[1]
    raise RuntimeError(f"no Python {want} found (PATH, {pyenv_root}/versions, /usr/bin)")


def tag(py: str) -> str:
    return "cp" + python_info(py)[0].replace(".", "")


# --- the network ----------------------------------------------------------------------------
#: run inside the new network namespace: bring its loopback up (a kernel talks to its client over
#: 127.0.0.1), then exec the command; the namespace has no other interface, so no network at all
LO_UP = ("import fcntl, os, socket, struct, sys\n"
         "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "flags = struct.unpack('16sH14s', fcntl.ioctl(s, 0x8913, struct.pack('16sH14s', b'lo', 0, b'')))[1]\n"
         "fcntl.ioctl(s, 0x8914, struct.pack('16sH14s', b'lo', flags | 1, b''))\n"
         "os.execv(sys.argv[1], sys.argv[1:])\n")


def _offline_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if not unshare:
        return []
    prefix = [unshare, "--net", sys.executable, "-c", LO_UP]
    probe = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); socket.create_connection(s.getsockname())"
    r = subprocess.run(prefix + [sys.executable, "-c", probe], capture_output=True)
    return prefix if r.returncode == 0 else []


OFFLINE_PREFIX = _offline_prefix()
#: what cuts the network for the offline steps (reported in the summary and by the test)
OFFLINE_HOW = ("unshare --net (a network namespace with loopback only)" if OFFLINE_PREFIX
               else "pip --no-index, proxies to a closed port")


def offline_env(env: dict) -> dict:
    env = dict(env, PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    if not OFFLINE_PREFIX:
        closed = "http://127.0.0.1:9"
        env.update(http_proxy=closed, https_proxy=closed, HTTP_PROXY=closed, HTTPS_PROXY=closed, no_proxy="")
    return env


# --- the wheelhouse -------------------------------------------------------------------------
def wheelhouse(py: str) -> Path:
    """$SQLNB_CACHE/wheelhouse/cp3XX: binary wheels of every requirement for ``py``; downloaded
    once (a stamp records the requirements), no network after that."""
    reqs = requirements()
    dest = cache_root() / "wheelhouse" / tag(py)
    stamp = dest / ".stamp"
    want = hashlib.sha256(json.dumps(reqs).encode()).hexdigest()
    if stamp.is_file() and stamp.read_text() == want:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    log(f"downloading the {tag(py)} wheelhouse into {dest} ({len(reqs)} requirements and their dependencies)")
    run([py, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary", ":all:",
         "-d", dest, *reqs])
    stamp.write_text(want)
    return dest


# --- building -------------------------------------------------------------------------------
def export_tree(dest: Path) -> Path:
    """The files git tracks or would track (nothing ignored: no build/, no .so) copied to dest."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for f in filter(None, files):
        src = ROOT / os.fsdecode(f)
        if src.is_file():
            (dest / os.fsdecode(f)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / os.fsdecode(f))
    return dest


def build_env(**extra) -> dict:
    """Wheels leave BerkeleyDB out and must carry our engine (no silent 'system'-only wheel)."""
    env = dict(os.environ, SQLNB_BDB="0", SQLNB_REQUIRE_EXT="1", SQLNB_CACHE=str(cache_root()))
    env.pop("SQLNB_NO_EXT", None)
    env.update(extra)
    return env


def build_sdist(out: Path, *, isolated: bool = True, offline: bool = False, builder: str = sys.executable) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sqlnb-sdist-") as tmp:
        tree = export_tree(Path(tmp) / "src")
        env = build_env()
        cmd = [builder, "-m", "build", "--sdist", *([] if isolated else ["--no-isolation"]), "-o", out, tree]
        if offline:
            env, cmd = offline_env(env), OFFLINE_PREFIX + cmd
        run(cmd, env=env, cwd=tmp)
    return out / f"sqlnb-{version()}.tar.gz"


def unpack(sdist: Path, dest: Path) -> Path:
    with tarfile.open(sdist) as tar:
        tar.extractall(dest, filter="data")
    return dest / sdist.name[: -len(".tar.gz")]


def builder_for(py: str) -> str:
    """An interpreter of ``py``'s version with the `build` frontend: ``py`` itself when it has it,
    else a venv kept in $SQLNB_CACHE/dist/builders/ (created once, `build` from the index)."""
    # -I: not the current directory (a checkout's build/ directory would pass for the package)
    if subprocess.run([py, "-I", "-c", "import build.__main__"], capture_output=True).returncode == 0:
        return py
    venv = cache_root() / "dist" / "builders" / tag(py)
    exe = venv / "bin" / "python"
    if not (exe.exists() and subprocess.run([exe, "-I", "-c", "import build.__main__"],
                                            capture_output=True).returncode == 0):
        log(f"creating the {tag(py)} builder venv {venv}")
        run([py, "-m", "venv", "--clear", venv])
        run([exe, "-m", "pip", "install", "-q", "--disable-pip-version-check", "build>=1.2"])
    return str(exe)


def build_wheel(sdist: Path, py: str, out: Path, *, isolated: bool = True, offline: bool = False) -> tuple[Path, str]:
    """A wheel for ``py`` built from the sdist (unpacked: what a user's pip does); (wheel, build log)."""
    out.mkdir(parents=True, exist_ok=True)
    builder = builder_for(py)
    with tempfile.TemporaryDirectory(prefix="sqlnb-wheel-") as tmp:
        src = unpack(sdist, Path(tmp))
        env = build_env()
        cmd = [builder, "-m", "build", "--wheel", *([] if isolated else ["--no-isolation"]), "-o", out, src]
        if offline:
            env, cmd = offline_env(env), OFFLINE_PREFIX + cmd
        r = run(cmd, env=env, cwd=tmp)
    name = [line for line in r.stdout.splitlines() if line.startswith("Successfully built ")]
    if not name:
        raise RuntimeError("build printed no wheel name:\n" + r.stdout[-2000:])
    return out / name[-1].split()[-1], r.stdout


def tool(name: str) -> str:
    """A console script of the environment running this (auditwheel, twine ...), else PATH's."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: pip install 'sqlnb[dist]' (or make venv)")
    return found


def repair(wheel: Path, out: Path) -> Path:
    """auditwheel repair: the manylinux tag this machine's glibc allows; nothing grafted (the
    wheel links only libc, libm and libpthread)."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    r = run([tool("auditwheel"), "repair", "-w", out, wheel], env=env)
    fixed = [line.split()[-1] for line in r.stdout.splitlines() if "Fixed-up wheel written to" in line]
    if not fixed:
        raise RuntimeError("auditwheel wrote no wheel:\n" + r.stdout[-2000:])
    return Path(fixed[-1])


def check(artifact: Path) -> list[str]:
    """twine check (both kinds) and check-wheel-contents (wheels): the failures, [] when clean."""
    bad = []
    r = run([tool("twine"), "check", "--strict", artifact], check=False)
    if r.returncode != 0:
        bad.append("twine check: " + r.stdout.strip()[-500:])
    if artifact.suffix == ".whl":
        r = run([tool("check-wheel-contents"), artifact], check=False)
        if r.returncode != 0:
            bad.append("check-wheel-contents: " + r.stdout.strip()[-500:])
    return bad


# --- the smoke check ------------------------------------------------------------------------
def smoke(py: str, wheel: Path, workdir: Path, db: Path) -> dict:
    """Install ``wheel`` in a fresh venv of ``py`` without compiler or network; run
    tools/smoke_wheel.py there. Returns its result (raises with the output on failure)."""
    house = wheelhouse(py)
    venv = workdir / "venv"
    run([py, "-m", "venv", "--clear", venv])
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": str(venv / "bin"), "HOME": str(home), "LANG": "C.UTF-8", "TMPDIR": str(workdir),
           "PYTHONNOUSERSITE": "1", "JUPYTER_PLATFORM_DIRS": "1"}
    if OFFLINE_PREFIX:
        env["SQLNB_SMOKE_NO_NETWORK"] = "1"
    env = offline_env(env)
    t0 = time.perf_counter()
    run(OFFLINE_PREFIX + [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile", "--no-index", "--only-binary",
                          ":all:", "--find-links", house, f"{wheel}[notebook]", *SMOKE_EXTRA], env=env, cwd=workdir)
    installed = time.perf_counter() - t0
    nb = workdir / "nb"
    nb.mkdir(exist_ok=True)
    shutil.copy2(ROOT / "notebooks" / "01-tour.ipynb", nb / "01-tour.ipynb")
    shutil.copy2(HERE / "smoke_wheel.py", workdir / "smoke_wheel.py")
    r = run(OFFLINE_PREFIX + [venv / "bin" / "python", workdir / "smoke_wheel.py", nb / "01-tour.ipynb", db,
                              version()], env=env, cwd=workdir, check=False)
    result = [line for line in r.stdout.splitlines() if line.startswith("SMOKE-RESULT ")]
    if r.returncode != 0 or not result:
        raise RuntimeError(f"smoke check of {wheel.name} failed (exit {r.returncode}):\n{r.stdout[-4000:]}")
    out = json.loads(result[-1].split(" ", 1)[1])
    out["seconds"]["install"] = round(installed, 1)
    out["offline"] = OFFLINE_HOW
    return out


def demo_db() -> Path:
    """The demo database the tour reads (built by `make demo` / `make test`, or here)."""
    sys.path.insert(0, str(ROOT))
    from sqlnb import demo

    return demo.database_path(create=True, quiet=False)


# --- make dist ------------------------------------------------------------------------------
def dist_all(wants: list[str], out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("sqlnb-*.whl")) + list(out.glob("sqlnb-*.tar.gz")):
        old.unlink()
    rows, failed = [], 0
    t0 = time.perf_counter()
    sdist = build_sdist(out)
    problems = check(sdist)
    rows.append(("sdist", sdist.name, f"{sdist.stat().st_size / 1e6:.1f} MB", f"{time.perf_counter() - t0:.0f} s",
                 "ok" if not problems else "; ".join(problems), "-"))
    failed += bool(problems)
    db = demo_db()
    for want in wants:
        t0 = time.perf_counter()
        try:
            py = find_python(want)
            with tempfile.TemporaryDirectory(prefix=f"sqlnb-dist-{want}-") as tmp:
                raw, build_log = build_wheel(sdist, py, Path(tmp) / "raw")
                wheel = repair(raw, out)
                built = time.perf_counter() - t0
                problems = check(wheel)
                s = smoke(py, wheel, Path(tmp), db)
            steps = ", ".join(f"{k} {v}s" for k, v in s["seconds"].items())
            compiled = "compiled SQLite" if "compiling SQLite" in build_log else "cached SQLite objects"
            rows.append((want, wheel.name, f"{wheel.stat().st_size / 1e6:.1f} MB", f"{built:.0f} s, {compiled}",
                         "ok" if not problems else "; ".join(problems),
                         f"ok: sqlite {s['engines']['sqlite']}, bdb {s['engines']['bdb']}, "
                         f"{s['tour_cells']} tour cells; {steps}"))
            failed += bool(problems)
        except Exception as exc:  # noqa: BLE001 - one Python failing does not hide the others' results
            failed += 1
            first = str(exc).strip().splitlines()
            log(f"{want}: FAILED\n{exc}")
            rows.append((want, "-", "-", f"{time.perf_counter() - t0:.0f} s", "-", f"FAILED: {first[0] if first else exc}"))
    print(f"\nsqlnb {version()} dist summary (network cut for the smoke checks by: {OFFLINE_HOW}; "
          f"no compiler on the smoke PATH):")
    for row in [("python", "artifact", "size", "build", "twine/check-wheel-contents", "smoke check")] + rows:
        print("  " + " | ".join(row))
    print(f"artifacts in {out}")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("wheelhouse", "all"):
        print(__doc__)
        return 2
    if argv[0] == "wheelhouse":  # default: the running Python (make test's set-up)
        wants = argv[1:] or [python_info(sys.executable)[0]]
        for want in wants:
            print(wheelhouse(find_python(want)))
        return 0
    wants = argv[1:] or os.environ.get("SQLNB_DIST_PYTHONS", " ".join(PYTHONS)).split()
    return dist_all(wants, Path(os.environ.get("SQLNB_DIST_DIR", ROOT / "dist")))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
