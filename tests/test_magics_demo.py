"""The demo database (sqlnb.demo): where it goes, and what it holds."""
from __future__ import annotations

from pathlib import Path

import pytest

import sqlnb
from sqlnb import demo


def test_location_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("SQLNB_DEMO_DB", str(tmp_path / "x.db"))
    monkeypatch.setenv("SQLNB_CACHE", str(tmp_path / "cache"))
    assert demo.default_database() == tmp_path / "x.db"
    monkeypatch.delenv("SQLNB_DEMO_DB")
    assert demo.default_database() == tmp_path / "cache" / "flights.db"
    monkeypatch.delenv("SQLNB_CACHE")
    assert demo.default_database() == Path(demo.__file__).resolve().parent.parent / "build" / "flights.db"


def test_data_is_read_without_importing_the_package():
    d = demo.data_dir()
    assert (d / "flights.csv.zip").exists()
    first = next(demo._rows("airlines"))
    assert first == ("9E", "Endeavor Air Inc.")


def test_missing_database_without_create(monkeypatch, tmp_path):
    monkeypatch.setenv("SQLNB_DEMO_DB", str(tmp_path / "none.db"))
    with pytest.raises(FileNotFoundError, match="python -m sqlnb.demo"):
        demo.database_path(create=False)
    assert not (tmp_path / "none.db").exists()


def test_incomplete_file_is_not_taken_for_the_database(tmp_path):
    p = tmp_path / "half.db"
    c = sqlnb.connect(str(p))
    c.execute("CREATE TABLE flights(x)")
    c.commit()
    c.close()
    assert not demo.is_complete(p)


@pytest.mark.timeout(600)
def test_demo_database_contents():
    path = demo.database_path()
    con = sqlnb.connect(str(path), isolation_level=None)
    try:
        for table, n in demo.EXPECTED_ROWS.items():
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == n
        assert con.execute("SELECT count(*) FROM flights WHERE dep_delay IS NULL").fetchone()[0] == 8255
        assert con.execute("SELECT typeof(dep_delay), typeof(carrier), typeof(distance) FROM flights "
                           "WHERE dep_delay IS NOT NULL LIMIT 1").fetchone() == ("integer", "text", "integer")
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()
