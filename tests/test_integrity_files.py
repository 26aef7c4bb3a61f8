"""Files and locks: no descriptor of sqlnb's own on a held database file, one SQLite library
per file in a process, and read-only opens that leave the directory as they found it.

(issue 18, points 1, 2 and 7; issue 19 point 5, the system engine's read-only URI open)

The "other process" is a child Python driven line by line over pipes: each step
runs only when the test asks for it, so the two processes' order is fixed, with
no sleeps.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap
import threading

import pytest

import sqlnb
from sqlnb import errors

from .conftest import need_engine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = textwrap.dedent(r"""
    import sys, sqlnb
    engine, path = sys.argv[1], sys.argv[2]
    con = None
    def say(x):
        sys.stdout.write(x + "\n"); sys.stdout.flush()
    def opened():
        global con
        if con is None:
            con = sqlnb.connect(path, engine=engine, timeout=0, isolation_level=None)
        return con
    for line in sys.stdin:
        cmd = line.strip()
        try:
            if cmd == "write":       # a new table and 500 rows, committed
                c = opened()
                c.execute("BEGIN IMMEDIATE")
                try:
                    c.execute("CREATE TABLE other(y)")
                    c.executemany("INSERT INTO other VALUES (?)", [(i,) for i in range(500)])
                    c.execute("COMMIT")
                except BaseException:
                    if c.in_transaction:
                        c.execute("ROLLBACK")
                    raise
                say("ok")
            elif cmd == "read":
                say("ok %d" % opened().execute("SELECT count(*) FROM t").fetchone()[0])
            elif cmd == "close":
                if con is not None:
                    con.close()
                    con = None
                say("ok")
            elif cmd == "counts":
                c = sqlnb.connect(path, engine=engine, timeout=5)
                t = c.execute("SELECT count(*) FROM t").fetchone()[0]
                names = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]
                o = c.execute("SELECT count(*) FROM other").fetchone()[0] if "other" in names else -1
                c.close()
                say("ok %d %d" % (t, o))
            elif cmd == "quit":
                break
        except sqlnb.Error as exc:
            say("error %s %s" % (type(exc).__name__, str(exc).replace("\n", " ")))
""")


class Other:
    """Another process using the same database, one step at a time."""

    def __init__(self, engine, path):
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.p = subprocess.Popen([sys.executable, "-c", _CHILD, engine, str(path)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env)

    def __call__(self, cmd: str) -> str:
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline().strip()
        assert out, f"the other process died at {cmd!r}"
        return out

    def stop(self):
        try:
            self.p.stdin.close()   # (its loop ends; a failed test may leave it waiting on a lock: kill)
            self.p.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()


@pytest.fixture
def other():
    made = []

    def start(engine, path):
        o = Other(engine, path)
        made.append(o)
        return o

    yield start
    for o in made:
        o.stop()


def _make(engine, path, *, wal: bool):
    c = sqlnb.connect(str(path), engine=engine, isolation_level=None)
    if wal:
        assert c.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() == "wal"
    c.execute("CREATE TABLE t(x)")
    c.close()


# ---------------------------------------------------------------------------
# 1. a second connect() must not drop this process's locks
# ---------------------------------------------------------------------------
# BerkeleyDB SQL has no WAL mode (it keeps its own log): bdb runs in its one journal mode
JOURNALS = [("sqlite", "rollback"), ("sqlite", "wal"), ("system", "rollback"), ("system", "wal"),
            ("bdb", "rollback")]


@pytest.mark.parametrize("engine,journal", JOURNALS, ids=[f"{e}-{j}" for e, j in JOURNALS])
def test_second_connect_keeps_this_process_locks(engine, journal, tmp_path, other):
    """A holds a write transaction; a second connect() on the file; the other process must still
    be kept out, and at the end both A's rows and the other process's commit are there."""
    need_engine(engine)
    path = tmp_path / "c.db"
    _make(engine, path, wal=journal == "wal")
    o = other(engine, path)
    assert o("read") == "ok 0"   # (on bdb: the other process has joined the environment first)
    a = sqlnb.connect(str(path), engine=engine, isolation_level=None)
    a.execute("BEGIN IMMEDIATE")
    a.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
    # (bdb: another process's write waiting on A's lock is not always bounded by its timeout (a
    # BerkeleyDB lock-wait problem, reported separately), so on bdb the other process does not
    # try while A writes; BerkeleyDB keeps its locks in its own regions, not in POSIX locks)
    contend = engine != "bdb"
    if contend:
        assert o("write").startswith("error BusyError"), "the other process must be kept out while A writes"
    if engine == "bdb":
        # another bdb connection's open would wait for A's write lock (forever, in one thread): refused
        with pytest.raises(errors.BusyError, match="has an open transaction"):
            sqlnb.connect(str(path), engine=engine)
        b = None
    else:
        b = sqlnb.connect(str(path), engine=engine)  # the second %sql connection
    if journal == "rollback" and contend:
        # with A's RESERVED lock dropped, this commit would go through and be lost at A's commit
        assert o("write").startswith("error BusyError")
    elif journal == "wal":
        # with A's SHARED lock dropped, the other process's close would think it is the last
        # user, checkpoint, and delete the -wal that A's commit is about to go to
        assert o("read") == "ok 0"
        assert o("close") == "ok"
    a.execute("COMMIT")
    assert o("counts") == "ok 500 -1"   # A's commit is visible to another process
    assert o("write") == "ok"
    if b is not None:
        b.close()
    a.close()
    assert o("counts") == "ok 500 500"


_DB_SUFFIXES = ("", "-journal", "-wal", "-shm")
_watching: list = []
_opened: list = []


def _audit(event, args):
    if event == "open" and _watching and args and isinstance(args[0], (str, bytes, os.PathLike)):
        name = os.fsdecode(args[0])
        for base in _watching:
            if any(name == base + s for s in _DB_SUFFIXES):
                _opened.append(name)


sys.addaudithook(_audit)


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_no_descriptor_of_our_own_on_a_held_file(engine, mode, tmp_path):
    """While a connection of this process holds the file, connect() (and its error paths) open no
    descriptor of sqlnb's own on the file or its -journal/-wal/-shm (a Python audit hook sees
    every open() and os.open())."""
    path = str(tmp_path / "h.db")
    _make(engine, path, wal=False)
    a = sqlnb.connect(path, engine=engine)
    a.execute("SELECT count(*) FROM t").fetchall()
    _watching.append(os.path.realpath(path))
    _opened.clear()
    try:
        b = sqlnb.connect(path, engine=engine, mode=mode)
        b.execute("SELECT count(*) FROM t").fetchall()
        b.close()
    finally:
        _watching.clear()
    a.close()
    assert _opened == []


def test_error_paths_read_no_held_file(tmp_path):
    """The error annotation's sniff (what kind of file is this?) reads no file this process holds."""
    from sqlnb import _files

    need_engine("sqlite")
    path = str(tmp_path / "h.db")
    _make("sqlite", path, wal=False)
    a = sqlnb.connect(path, engine="sqlite")
    a.execute("SELECT 1 FROM t").fetchall()
    _watching.append(os.path.realpath(path))
    _opened.clear()
    try:
        assert _files.file_kind(path) is None
    finally:
        _watching.clear()
    a.close()
    assert _opened == []
    assert _files.file_kind(path) == "sqlite"  # no one holds it: reading is safe



# BerkeleyDB's meta-page and log magics (db.h: btree, hash, heap, queue, log), in both byte orders
@pytest.mark.parametrize("magic", [0x053162, 0x061561, 0x074582, 0x042253, 0x040988])
@pytest.mark.parametrize("order", ["little", "big"])
def test_every_bdb_magic_in_both_byte_orders_is_a_bdb_file(tmp_path, magic, order):
    from sqlnb import _files

    head = bytes(12) + magic.to_bytes(4, order) + bytes(84)
    assert _files.is_bdb_file(head)
    path = tmp_path / "f.db"
    path.write_bytes(head)
    assert _files.file_kind(str(path)) == "bdb"


def test_file_kinds(tmp_path):
    from sqlnb import _files

    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "text").write_bytes(b"hello, world, not a database")
    os.mkfifo(tmp_path / "fifo")  # never opened: reading it would block
    assert _files.file_kind(str(tmp_path / "empty")) == "empty"
    assert _files.file_kind(str(tmp_path / "text")) is None
    assert _files.file_kind(str(tmp_path / "fifo")) is None
    assert _files.file_kind(str(tmp_path / "missing")) is None
    assert _files.env_dir("/x/a.db") == "/x/a.db-journal"


def test_proc_locks_names_this_process_locks(tmp_path):
    """The one /proc/locks reader: POSIX byte-range locks with their holder, type and inclusive range."""
    import fcntl

    from sqlnb import _files

    if not sys.platform.startswith("linux"):
        pytest.skip("/proc/locks is Linux's")
    path = str(tmp_path / "locked")
    with open(path, "wb") as fh:
        fh.write(b"x" * 10)
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX, 2, 4)
        fcntl.lockf(fd, fcntl.LOCK_SH, 0, 100)  # (0 bytes: to the end of the file)
        got = _files.proc_locks(path)
        assert (os.getpid(), "WRITE", 4, 5) in got
        assert (os.getpid(), "READ", 100, _files.LOCK_EOF) in got
    finally:
        os.close(fd)
    assert _files.proc_locks(path) == []

# ---------------------------------------------------------------------------
# 2. one SQLite library per file in a process
# ---------------------------------------------------------------------------
PAIRS = [("sqlite", "system"), ("system", "sqlite"), ("sqlite", "bdb"), ("system", "bdb"),
         ("bdb", "sqlite"), ("bdb", "system")]


@pytest.mark.parametrize("first,second", PAIRS, ids=[f"{a}-then-{b}" for a, b in PAIRS])
def test_two_libraries_on_one_file_are_refused(first, second, tmp_path):
    need_engine(first)
    need_engine(second)
    path = str(tmp_path / "two.db")
    _make(first, path, wal=False)
    before = _digest(tmp_path)
    a = sqlnb.connect(path, engine=first, isolation_level=None)
    a.execute("BEGIN IMMEDIATE")
    a.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(errors.CantOpenError) as ei:
        sqlnb.connect(path, engine=second)
    msg = str(ei.value)
    assert "\n" not in msg
    assert f"engine={first!r}" in msg and f"engine={second!r}" in msg and "close that connection" in msg
    a.execute("COMMIT")
    a.close()
    assert before.keys() <= _digest(tmp_path).keys()
    c = sqlnb.connect(path, engine=first)  # the registry forgot the closed connection
    assert c.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    c.close()
    if {first, second} == {"sqlite", "system"}:
        d = sqlnb.connect(path, engine=second)  # allowed once no connection of `first` holds it
        assert d.execute("SELECT count(*) FROM t").fetchone()[0] == 1
        d.close()


def test_two_libraries_scenario_no_commit_lost(tmp_path):
    """The issue's scenario: sqlite in BEGIN IMMEDIATE, a system connection to the same file
    would commit a table that the sqlite commit then destroys. The system open is refused."""
    need_engine("sqlite")
    path = str(tmp_path / "s.db")
    _make("sqlite", path, wal=False)
    a = sqlnb.connect(path, engine="sqlite", isolation_level=None)
    a.execute("BEGIN IMMEDIATE")
    a.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
    with pytest.raises(errors.CantOpenError):
        sqlnb.connect(path, engine="system")
    a.execute("COMMIT")
    assert a.execute("SELECT count(*) FROM t").fetchone()[0] == 500
    a.close()


def test_same_file_through_a_hard_link_and_a_uri(tmp_path):
    """The registry knows a file by device and inode: another name of it is the same file."""
    need_engine("sqlite")
    path = str(tmp_path / "l.db")
    _make("sqlite", path, wal=False)
    os.link(path, tmp_path / "alias.db")
    a = sqlnb.connect(path, engine="sqlite")
    with pytest.raises(errors.CantOpenError):
        sqlnb.connect(str(tmp_path / "alias.db"), engine="system")
    with pytest.raises(errors.CantOpenError):
        sqlnb.connect(f"file:{tmp_path / 'l.db'}?mode=ro", engine="system", uri=True)
    a.close()


def test_two_libraries_from_two_threads(tmp_path):
    """Two threads opening one file with two libraries at once: one of them is refused."""
    need_engine("sqlite")
    path = str(tmp_path / "th.db")
    results = {}
    go = threading.Barrier(2)

    def open_with(name):
        go.wait()
        try:
            results[name] = sqlnb.connect(path, engine=name, check_same_thread=False)
        except errors.CantOpenError as exc:
            results[name] = exc

    ts = [threading.Thread(target=open_with, args=(n,)) for n in ("sqlite", "system")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    refused = [n for n, r in results.items() if isinstance(r, errors.CantOpenError)]
    assert len(refused) == 1
    for r in results.values():
        if not isinstance(r, Exception):
            r.close()


# ---------------------------------------------------------------------------
# 7. read-only opens leave the directory as they found it
# ---------------------------------------------------------------------------
def _digest(directory) -> dict:
    """Every file (and directory) under ``directory``, with the sha256 of each file."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), directory) + "/"] = "dir"
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, directory)] = hashlib.sha256(fh.read()).hexdigest()
    return out


SQLITE_JOURNALS = [(e, j) for e, j in JOURNALS if e != "bdb"]


@pytest.mark.parametrize("mode", ["ro", "ro-scratch"])
@pytest.mark.parametrize("engine,journal", SQLITE_JOURNALS, ids=[f"{e}-{j}" for e, j in SQLITE_JOURNALS])
def test_read_only_leaves_the_directory_unchanged(engine, mode, journal, tmp_path):
    need_engine(engine)
    d = tmp_path / "d"
    d.mkdir()
    path = str(d / "r.db")
    c = sqlnb.connect(path, engine=engine)
    if journal == "wal":
        c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE t(x)")
    c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    c.commit()
    c.close()
    before = _digest(d)
    r = sqlnb.connect(path, engine=engine, mode=mode)
    assert r.execute("SELECT count(*) FROM t").fetchone()[0] == 100
    if mode == "ro-scratch":
        r.execute("CREATE TEMP TABLE s AS SELECT * FROM t")
    r.close()
    assert _digest(d) == before


def _rows(path, engine):
    c = sqlnb.connect(path, engine=engine, mode="ro")
    try:
        return c.execute("SELECT * FROM t ORDER BY x").fetchall()
    finally:
        c.close()


@pytest.mark.parametrize("mode", ["ro", "ro-scratch"])
def test_bdb_read_only_writes_only_what_the_docs_say(mode, tmp_path):
    """BerkeleyDB SQL cannot open its environment read-only. What a read-only session writes is
    exactly what docs/berkeleydb.md says: an open that runs no statement writes nothing; no file is
    created or removed; under plain reads the database file stays byte for byte the same, and only
    the environment's region files (``__db.00N``) and its log (``log.N``) change. (``SELECT count(*)``'s
    two bytes are in docs/read-only.md's Limits.)"""
    need_engine("bdb")
    d = tmp_path / "d"
    d.mkdir()
    path = str(d / "r.db")
    c = sqlnb.connect(path, engine="bdb")
    c.execute("CREATE TABLE t(x)")
    c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    c.commit()
    c.close()
    first = _digest(d)
    sqlnb.connect(path, engine="bdb", mode=mode).close()
    assert _digest(d) == first   # an open that runs no statement writes nothing
    rows = _rows(path, "bdb")
    assert rows == [(i,) for i in range(100)]
    settled = _digest(d)
    assert settled.keys() == first.keys() and settled["r.db"] == first["r.db"]
    for _ in range(2):
        r = sqlnb.connect(path, engine="bdb", mode=mode)
        assert r.execute("SELECT * FROM t ORDER BY x").fetchall() == rows
        if mode == "ro-scratch":
            r.execute("CREATE TEMP TABLE s AS SELECT * FROM t")
        r.close()
        now = _digest(d)
        assert now.keys() == first.keys()
        changed = {k for k in now if now[k] != settled[k]}
        assert "r.db" not in changed
        assert all(re.fullmatch(r"r\.db-journal/(__db\.\d{3}|log\.\d{10})", k) for k in changed), changed


def test_read_only_keeps_files_another_process_uses(tmp_path, other):
    """The -wal/-shm a read-only open created stay while another process has the database open."""
    need_engine("sqlite")
    path = str(tmp_path / "w.db")
    _make("sqlite", path, wal=True)
    r = sqlnb.connect(path, engine="sqlite", mode="ro")
    assert r.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    o = other("system", path)
    assert o("read") == "ok 0"   # the other process now uses the -shm this open created
    r.close()
    assert os.path.exists(path + "-shm") and os.path.exists(path + "-wal")
    assert o("write") == "ok"
    assert o("counts") == "ok 0 500"
    assert o("close") == "ok"


def test_read_only_keeps_files_this_process_uses(tmp_path):
    need_engine("sqlite")
    path = str(tmp_path / "w.db")
    _make("sqlite", path, wal=True)
    r = sqlnb.connect(path, engine="sqlite", mode="ro")
    r.execute("SELECT count(*) FROM t").fetchall()
    w = sqlnb.connect(path, engine="sqlite")
    w.execute("INSERT INTO t VALUES (1)")
    w.commit()
    r.close()
    assert os.path.exists(path + "-wal")
    assert w.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    w.close()
    s = sqlnb.connect(path, engine="sqlite", mode="ro")
    assert s.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    s.close()


# ---------------------------------------------------------------------------
# issue 19 point 5: the system engine's read-only open through a file: URI
# ---------------------------------------------------------------------------
def test_system_ro_uri_creates_nothing(tmp_path):
    missing = tmp_path / "missing.db"
    with pytest.raises(errors.CantOpenError):
        sqlnb.connect(f"file:{missing}", engine="system", uri=True, mode="ro")
    assert not missing.exists()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mode", ["ro", "ro-scratch"])
def test_system_ro_uri_does_not_checkpoint(mode, tmp_path, other):
    """A WAL database with frames another process committed: a read-only URI open reads them
    and leaves the database file and the -wal as they were."""
    path = str(tmp_path / "wal.db")
    _make("system", path, wal=True)
    o = other("system", path)
    assert o("write") == "ok"
    o.p.kill()   # dies with its connection open: its committed frames stay in the -wal, unmerged
    o.p.wait()
    assert os.path.getsize(path + "-wal") > 0
    before = _digest(tmp_path)
    r = sqlnb.connect(f"file:{path}", engine="system", uri=True, mode=mode)
    assert r.execute("SELECT count(*) FROM other").fetchone()[0] == 500
    with pytest.raises(errors.Error):
        r.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    r.close()
    after = _digest(tmp_path)
    assert {k: v for k, v in after.items() if not k.endswith("-shm")} == \
        {k: v for k, v in before.items() if not k.endswith("-shm")}
