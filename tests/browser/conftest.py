"""A real JupyterLab on loopback, driven by Debian's headless chromium through Playwright.

* ``lab``: ``jupyter lab`` on 127.0.0.1, a free port and a random token, its
  root a temporary copy of ``notebooks/``; its kernels import the sqlnb of
  this checkout (PYTHONPATH); user settings, workspaces and runtime files live
  in the temporary directory, so nothing of the user's JupyterLab is touched
  or used (news and update checks are off: no network).
* ``page``: a chromium page (``/usr/bin/chromium``, never a downloaded browser).
* Screenshots go to ``build/screenshots/``.

These tests are part of ``make test``; under ``CI=true`` a missing chromium,
Playwright or JupyterLab fails them instead of skipping (tests/conftest.py).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SQLNB_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "build" / "screenshots"


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen, log: Path):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path: str, query: str = "") -> str:
        return f"{self.base}/{path.lstrip('/')}?{query + '&' if query else ''}token={self.token}"

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self):
        """Shut down every kernel of this server (a test must not leave a statement running)."""
        for k in self.api("kernels"):
            self.api(f"kernels/{k['id']}", method="DELETE")

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def _settings(user_settings: Path):
    # no news, no update check (both would reach the internet), no toasts over the notebook
    f = user_settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))
    # open notebooks with their own kernel, no "Select Kernel" dialog
    f = user_settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"autoStartDefaultKernel": True}))


@pytest.fixture(scope="session")
def demo_db():
    """The demo database (built once into build/flights.db by sqlnb.demo; reused when complete)."""
    from sqlnb import demo

    path = ROOT / "build" / "flights.db"
    if not demo.is_complete(path):
        demo.build_database(path, quiet=True)
    return path


@pytest.fixture(scope="session")
def lab(tmp_path_factory, demo_db):
    pytest.importorskip("jupyterlab")
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    if (ROOT / "notebooks").is_dir():
        shutil.copytree(ROOT / "notebooks", root,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.db", "*.db-*"))
    else:
        root.mkdir()
    _settings(base / "user-settings")
    port, token = free_port(), secrets.token_hex(24)
    env = dict(os.environ,
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(base / "user-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
               IPYTHONDIR=str(base / "ipython"),
               SQLNB_DEMO_DB=str(demo_db))  # the tour opens sqlnb.demo.database_path()
    env.pop("JPY_PARENT_PID", None)
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = ([str(jupyter)] if jupyter.exists() else [sys.executable, "-m", "jupyter"]) + [
        "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
        "--LabApp.news_url=None", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI runners often run as root
    log = base / "lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=str(root), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = Lab(root, port, token, proc, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{server.logs()}")
            try:
                server.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer within 90 s:\n{server.logs()}")
                time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM} (Debian package 'chromium'; make system-deps)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, lab, request):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.sqlnb_workspace = request.node.name  # each test opens its notebook in a fresh workspace
    yield pg
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(SHOTS / f"{request.node.name}-final.png"), full_page=False)
    except Exception:  # noqa: BLE001 - a failed screenshot must not hide the test's result
        pass
    ctx.close()
    lab.shutdown_kernels()
