"""When the compiled engine cannot be loaded, connect() falls back to the stdlib engine and says so once.

Each case runs in a subprocess that makes the import of ``sqlnb._fast`` fail (a
``sys.meta_path`` finder placed first), as a missing build, a build for another
Python or a missing symbol would.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent("""
    import json, sys, warnings
    HOW = sys.argv[1]

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name == "sqlnb._fast":
                if HOW == "missing":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                raise ImportError("/x/sqlnb/_fast.so: undefined symbol: sqlite3_made_up", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    import sqlnb
    from sqlnb import errors
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = sqlnb.connect(":memory:")
        b = sqlnb.connect(":memory:")
        a.execute("create table t(x)")
    out = {"engines": [a.engine, b.engine],
           "warnings": [(w.category.__name__, issubclass(w.category, RuntimeWarning), str(w.message),
                         w.filename) for w in caught]}
    try:
        sqlnb.connect(":memory:", engine="sqlite")
        out["explicit"] = "opened"
    except errors.EngineUnavailableError as exc:
        out["explicit"] = str(exc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sqlnb.connect(":memory:", engine="system")
    out["explicit_system_warnings"] = len(caught)
    print(json.dumps(out))
""")


def run_child(how: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", CHILD, how], capture_output=True, text=True, timeout=120,
                       env=env, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("how, reason", [
    ("missing", "it was not built for this Python"),
    ("symbol", "undefined symbol: sqlite3_made_up"),
])
def test_fallback_warns_once_with_reason_and_fix(how, reason):
    out = run_child(how)
    assert out["engines"] == ["system", "system"]
    assert len(out["warnings"]) == 1, out["warnings"]
    category, is_runtime, message, filename = out["warnings"][0]
    assert category == "EngineFallbackWarning" and is_runtime
    assert reason in message, message
    assert "Falling back to the stdlib's sqlite3" in message
    assert "Fix: rebuild the extension for this Python" in message and "engine='system'" in message
    assert filename == "<string>", filename  # attributed to the caller's connect(), not to sqlnb
    # asking for the compiled engine by name is an error, not a fallback
    assert out["explicit"].startswith("engine 'sqlite' is not available: ") and reason in out["explicit"]
    # choosing the stdlib engine explicitly warns about nothing
    assert out["explicit_system_warnings"] == 0


def test_no_warning_when_the_compiled_engine_loads(recwarn):
    import sqlnb
    from sqlnb import engines

    con = sqlnb.connect(":memory:")
    assert con.engine == "sqlite"
    assert not [w for w in recwarn if issubclass(w.category, engines.EngineFallbackWarning)]
    con.close()
