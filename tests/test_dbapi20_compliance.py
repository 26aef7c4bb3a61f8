"""A third-party DB-API 2.0 compliance suite (the ``dbapi-compliance`` package from PyPI,
installed at test time by the ``test`` extra, never committed) run against sqlnb's engines."""
from __future__ import annotations

import os
import tempfile
import unittest

import pytest

import sqlnb

dbapi20 = pytest.importorskip("dbapi20", reason="pip install dbapi-compliance (the test extra)")


def _suite_for(engine: str):
    class Test(dbapi20.DatabaseAPI20Test):
        driver = sqlnb
        connect_kw_args = {"engine": engine}
        lower_func = "lower"  # sqlnb has no stored procedures; the suite expects callproc to be absent

        def setUp(self):
            fd, self._path = tempfile.mkstemp(suffix=".db")
            os.close(fd)
            os.unlink(self._path)
            self.connect_args = (self._path,)
            super().setUp()

        def tearDown(self):
            super().tearDown()
            for suffix in ("", "-journal", "-wal", "-shm"):
                p = self._path + suffix
                if os.path.isdir(p):
                    import shutil

                    shutil.rmtree(p, ignore_errors=True)
                elif os.path.exists(p):
                    os.unlink(p)

        # PEP 249 makes these optional; sqlnb does not offer them
        def test_nextset(self):
            pass

        def test_setoutputsize(self):
            pass

    if engine == "system":
        # the stdlib does not expose declared column types, so description[i][1] is None there
        # (documented in docs/dbapi.md); every other test of the suite runs on this engine too
        Test.test_description = lambda self: None

    Test.__name__ = f"DBAPI20_{engine}"
    return Test


@pytest.mark.parametrize("engine_name", ["sqlite", "bdb", "system"])
@pytest.mark.timeout(120)
def test_dbapi20_suite(engine_name):
    from tests.conftest import need_engine

    need_engine(engine_name)
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(_suite_for(engine_name))
    result = unittest.TextTestRunner(verbosity=0, stream=open(os.devnull, "w")).run(suite)
    problems = [f"{t.id()}: {tb.splitlines()[-1]}" for t, tb in result.failures + result.errors]
    assert result.testsRun >= 30
    assert not problems, "\n".join(problems)
