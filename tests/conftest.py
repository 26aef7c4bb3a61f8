"""Shared fixtures.

* ``engine`` is parametrized over every engine sqlnb claims (``sqlite``, ``bdb``,
  ``system``); a test that needs a capability an engine's core lacks asks
  ``require(engine, feature)``.
* Under ``CI=true`` nothing that tests a claimed capability may skip, at any phase:
  a skip while collecting a module (a module-level ``pytest.importorskip`` or
  ``pytest.skip(allow_module_level=True)``, see ``pytest_make_collect_report``) or
  while setting up, running or tearing down a test (``pytest_runtest_makereport``)
  becomes a failure naming what was missing. ``tests/test_ci_guard.py`` proves it.
"""
from __future__ import annotations

import os
import signal

import pytest

import sqlnb

CI = os.environ.get("CI", "").lower() == "true"

# A test run started in the background by a non-interactive shell (`make test &` in a script)
# inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler: the Ctrl-C
# tests would wait for an interrupt that never comes (a runaway fetch filled 24 GB once). Give
# the run Python's own handler back; child processes then start with SIGINT's default too.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
ENGINES = ("sqlite", "bdb", "system")

# what each engine's SQLite core can do (bdb is a 3.7.6.2 core)
FEATURES = {
    "sqlite": {"window", "cte", "json", "fts5", "rtree", "math", "dbstat", "upsert", "returning",
               "uri", "lsm1", "generated", "strict"},
    "system": {"window", "cte", "json", "fts5", "rtree", "upsert", "returning", "uri"},
    "bdb": set(),
}


def engine_available(name: str) -> tuple[bool, str]:
    for info in sqlnb.engines():
        if info.name == name:
            return info.available, info.why or ""
    return False, f"unknown engine {name}"


def need_engine(name: str):
    ok, why = engine_available(name)
    if not ok:
        pytest.skip(f"engine {name!r} unavailable: {why}")


@pytest.fixture(params=ENGINES)
def engine(request):
    need_engine(request.param)
    if request.param == "bdb":
        request.node.add_marker(pytest.mark.bdb)
    return request.param


def has_feature(engine: str, feature: str) -> bool:
    if engine == "system":
        import sqlite3

        v = sqlite3.sqlite_version_info
        extra = {"window": v >= (3, 25), "upsert": v >= (3, 24), "returning": v >= (3, 35),
                 "math": "ENABLE_MATH_FUNCTIONS" in " ".join(sqlnb.compile_options("system"))}
        if feature in extra:
            return extra[feature]
    return feature in FEATURES[engine]


def interrupt_at_call(con, stall_at: int, work) -> tuple[dict, list]:
    """Register ``mark(x)`` on ``con`` (it returns x, and at its ``stall_at``-th call stops until
    the test has called ``con.interrupt()``), run ``work()`` in a thread, interrupt it there and
    wait for it: ``({"result": ...} or {"exc": ...}, [calls made])``. No race: the interrupt is
    sent while the statement is known to be inside ``mark``."""
    import threading

    reached, go, calls = threading.Event(), threading.Event(), [0]

    def mark(x):
        calls[0] += 1
        if calls[0] == stall_at:
            reached.set()
            go.wait(60)
        return x

    con.create_function("mark", 1, mark)
    out = {}

    def run():
        try:
            out["result"] = work()
        except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
            out["exc"] = exc

    th = threading.Thread(target=run)
    th.start()
    assert reached.wait(60), f"the work never reached call {stall_at}"
    con.interrupt()
    go.set()
    th.join(60)
    assert not th.is_alive()
    return out, calls


@pytest.fixture
def con(engine, tmp_path):
    c = sqlnb.connect(str(tmp_path / "t.db"), engine=engine)
    yield c
    c.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if CI and rep.skipped and not hasattr(rep, "wasxfail") and "allowed_skip" not in item.keywords:
        rep.outcome = "failed"
        rep.longrepr = f"CI=true: a test of a claimed capability may not skip ({_reason(rep.longrepr)})"


def _reason(longrepr) -> str:
    return longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module that skips as a whole while being collected fails under CI=true (the tests in it vanish
    otherwise: the per-test hook below never sees them)."""
    outcome = yield
    rep = outcome.get_result()
    if CI and rep.skipped:
        rep.outcome = "failed"
        rep.longrepr = (f"CI=true: a test module may not skip while being collected "
                        f"({collector.nodeid}: {_reason(rep.longrepr)})")


def pytest_configure(config):
    config.addinivalue_line("markers", "allowed_skip: a skip that is not a missing capability (e.g. feature absent by design)")
