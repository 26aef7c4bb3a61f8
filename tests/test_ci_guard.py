"""The CI guard of tests/conftest.py: under ``CI=true`` a skip fails, at every phase.

Each case runs pytest in a subprocess on a small module written for it, with
tests/conftest.py loaded as a plugin (``-p tests.conftest``), once with
``CI=true`` (the skip must turn into a failure) and once without (it stays a skip).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    "module_importorskip": """
        import pytest
        pytest.importorskip("sqlnb_no_such_module")

        def test_never_collected():
            pass
    """,
    "module_skip": """
        import pytest
        pytest.skip("the whole module", allow_module_level=True)

        def test_never_collected():
            pass
    """,
    "skip_in_test": """
        import pytest

        def test_skips():
            pytest.skip("inside the test")
    """,
    "skip_in_fixture": """
        import pytest

        @pytest.fixture
        def missing():
            pytest.skip("in the fixture")

        def test_needs_it(missing):
            pass
    """,
}


def run_pytest(tmp_path: Path, source: str, ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_case.py").write_text(textwrap.dedent(source))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "tests.conftest",
                           "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"),
                           "--rootdir", str(tmp_path), str(tmp_path / "test_case.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_skip_fails_under_ci(tmp_path, case):
    r = run_pytest(tmp_path, CASES[case], ci=True)
    out = r.stdout + r.stderr
    if case.startswith("module"):
        # a collection error: pytest stops the whole run (exit code 2, INTERRUPTED)
        assert r.returncode == 2, out
        assert "CI=true: a test module may not skip while being collected" in out, out
        assert "1 error" in out.splitlines()[-1], out
    else:
        assert r.returncode == 1, out
        assert "CI=true: a test of a claimed capability may not skip" in out, out
        # (a skip in a fixture fails the setup: reported as an error)
        assert ("1 error" if "fixture" in case else "1 failed") in out.splitlines()[-1], out
    assert "skipped" not in out.splitlines()[-1], out


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_same_skip_is_a_skip_without_ci(tmp_path, case):
    r = run_pytest(tmp_path, CASES[case], ci=False)
    out = r.stdout + r.stderr
    # (5: "no tests collected", when the only module skipped as a whole)
    assert r.returncode == (5 if case.startswith("module") else 0), out
    assert "1 skipped" in out.splitlines()[-1], out


def test_an_allowed_skip_stays_a_skip_under_ci(tmp_path):
    r = run_pytest(tmp_path, """
        import pytest

        @pytest.mark.allowed_skip
        def test_absent_by_design():
            pytest.skip("not a missing capability")
    """, ci=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "1 skipped" in out.splitlines()[-1], out
