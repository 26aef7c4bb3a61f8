"""sqlnb.progress outside Jupyter: nothing shown, nothing installed, the query unaffected.

(Inside a real kernel the display is tested in tests/test_kernel.py.)
"""
from __future__ import annotations

import sqlnb
from sqlnb import progress


def test_track_outside_a_kernel_installs_nothing(con):
    raw = con.raw
    before = raw.progress_callback
    with progress.track(raw, label="x") as tracker:
        assert tracker is None
        assert raw.progress_callback is before
        assert con.execute("SELECT 40 + 2").fetchone() == (42,)
    assert raw.progress_callback is before


def test_track_keeps_exceptions_and_connection(con):
    raw = con.raw
    try:
        with progress.track(raw):
            con.execute("SELECT * FROM no_such_table")
    except sqlnb.OperationalError as exc:
        assert "no_such_table" in str(exc)
    else:
        raise AssertionError("the error was swallowed")
    assert con.execute("SELECT 1").fetchone() == (1,)


def test_in_kernel_is_false_in_pytest():
    assert progress.in_kernel() is None


def test_tracker_line_reads_rows_seen_and_tolerates_none():
    class Raw:  # only the two attributes a Tracker reads
        rows_seen = 250_000
        progress_callback = None

    t = progress.Tracker(Raw(), label="flights", total=1_000_000)
    line = t.line()
    assert line.startswith("running flights \u00b7 ") and "250,000 rows" in line and "25%" in line
    Raw.rows_seen = None
    assert "rows" not in t.line()
    assert t.line("stopped (KeyboardInterrupt)").startswith("stopped (KeyboardInterrupt)")
