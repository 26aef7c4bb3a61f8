"""Policies that hold (issue 19): masks, deny and read-only that no SQL, no join and no
Python attribute can get around; and an interrupt in the authorizer is an interrupt (issue 18.8).

The fixture: ``users(id, name, email)`` masked on ``email`` and a denied ``secrets(k, v)``,
plus, where the engine's core has them, an FTS5/FTS4 table, an R*Tree and a table with
generated columns over a masked column. Each refusal names the policy's reason; under
``ro``/``ro-scratch`` every file the engine owns keeps its sha256.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3

import pytest

import sqlnb
from sqlnb import authorizer, errors
from sqlnb.engines import base as _base, open as _modes  # noqa: E402
from sqlnb.authorizer import Policy
from sqlnb.connection import Connection

from tests.conftest import has_feature

pytestmark = pytest.mark.timeout(120)

POLICY = dict(deny_tables=["secrets"], mask_columns=["users.email"])
EMAILS = ("ann@example.org", "bob@example.org")


def generated_ok(engine):
    return engine == "sqlite" or (engine == "system" and sqlite3.sqlite_version_info >= (3, 31))


def fts4_ok(engine):
    if engine == "bdb":
        return False
    return any("FTS4" in o or "FTS3" in o for o in sqlnb.compile_options(engine))


def build(engine, d) -> str:
    path = str(d / "p.db")
    con = sqlnb.connect(path, engine=engine, isolation_level=None)
    con.executescript("""
        CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT);
        CREATE INDEX idx_users_email ON users(email);
        CREATE TABLE secrets(k TEXT PRIMARY KEY, v TEXT);
        CREATE TABLE grants(uid INTEGER, k TEXT REFERENCES secrets(k));
    """)
    for i, e in enumerate(EMAILS, 1):
        con.execute("INSERT INTO users VALUES (?, ?, ?)", (i, f"user{i}", e))
    con.execute("INSERT INTO secrets VALUES ('root', 'hunter2')")
    con.execute("INSERT INTO grants VALUES (1, 'nope')")  # no parent: foreign_key_check reports it
    if has_feature(engine, "fts5"):
        con.executescript("""
            CREATE VIRTUAL TABLE docs USING fts5(title, body);
            INSERT INTO docs VALUES ('one', 'the password is swordfish');
            INSERT INTO docs VALUES ('two', 'nothing to see');
        """)
    if has_feature(engine, "rtree"):
        con.executescript("""
            CREATE VIRTUAL TABLE rt USING rtree(id, x0, x1);
            INSERT INTO rt VALUES (4242, 0, 1);
        """)
    if fts4_ok(engine):
        con.executescript("""
            CREATE VIRTUAL TABLE notes USING fts4(body);
            INSERT INTO notes VALUES ('the pin is 8731');
        """)
    if generated_ok(engine):
        con.executescript("""
            CREATE TABLE people(id INTEGER PRIMARY KEY, email TEXT,
                                email_uc TEXT AS (upper(email)) VIRTUAL,
                                email_lc TEXT AS (lower(email)) STORED);
            INSERT INTO people(id, email) VALUES (1, 'Carol@Example.org');
        """)
    con.close()
    return path


@pytest.fixture
def db(engine, tmp_path):
    return build(engine, tmp_path)


def owned_files(engine, path):
    """Every file the engine owns for ``path`` (bdb: its -journal/ environment directory too)."""
    out = {}
    for p in (path, path + "-journal", path + "-wal", path + "-shm"):
        if os.path.isfile(p):
            out[p] = p
        elif os.path.isdir(p):
            for f in sorted(os.listdir(p)):
                # BerkeleyDB rewrites its region and log files on any read (issue 18, point 7,
                # handled there); everything else in its environment must stay as it was
                if engine == "bdb" and (f.startswith("__db.") or f.startswith("log.")):
                    continue
                out[os.path.join(p, f)] = os.path.join(p, f)
    return {k: hashlib.sha256(open(v, "rb").read()).hexdigest() for k, v in out.items()}


def open_with(engine, path, mode, handle="ro", **policy):
    """``mode`` on a read-only handle (the normal connect) or a read-write one (the policy alone)."""
    if handle == "ro":
        return sqlnb.connect(path, engine=engine, mode=mode, isolation_level=None, **policy)
    raw = _modes.open_raw(engine, path, mode="rw")
    try:
        _modes.install(raw, engine, mode=mode, **policy)
    except BaseException:
        raw.close()
        raise
    return Connection(raw, engine=engine, mode=mode, database=path, isolation_level=None)


def refused(con, sql, cls=errors.PolicyError, params=None):
    with pytest.raises(cls) as ei:
        cur = con.execute(sql, params) if params is not None else con.execute(sql)
        rows = cur.fetchall()
        pytest.fail(f"not refused: {sql} -> {rows}")
    msg = str(ei.value)
    assert "refused" in msg, msg
    return ei.value


def no_leak(rows):
    text = repr(rows)
    for secret in (*EMAILS, "hunter2", "swordfish", "8731", "CAROL", "carol", "4242"):
        assert secret not in text, rows


HANDLES = [("ro", "ro"), ("ro", "rw"), ("ro-scratch", "ro"), ("ro-scratch", "rw"), ("rw", "rw")]


# --- 1. FULL JOIN with USING / NATURAL -----------------------------------------------------
@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
@pytest.mark.parametrize("mode,handle", HANDLES)
def test_full_join_using_does_not_read_masked_or_denied(engine, db, mode, handle):
    if engine == "bdb":
        pytest.skip("bdb lacks FULL JOIN (3.39+)")
    before = owned_files(engine, db)
    con = open_with(engine, db, mode, handle, **POLICY)
    try:
        e = refused(con, "SELECT email FROM users FULL JOIN (SELECT NULL AS email WHERE 0) USING (email)")
        assert "masked column main.users.email" in str(e) and e.reason == "verify"
        e = refused(con, "SELECT * FROM secrets NATURAL FULL JOIN (SELECT 1 AS k, 1 AS v WHERE 0)",
                    errors.AccessDeniedError)
        assert "main.secrets, which is in deny_tables" in str(e)
        if mode == "ro-scratch":
            refused(con, "CREATE TEMP TABLE t AS SELECT email FROM users "
                         "FULL JOIN (SELECT NULL AS email WHERE 0) USING (email)")
            refused(con, "CREATE TEMP TABLE t2 AS SELECT * FROM secrets "
                         "NATURAL FULL JOIN (SELECT 1 AS k, 1 AS v WHERE 0)", errors.AccessDeniedError)
        # a plain read of the masked column still works, as NULL
        assert con.execute("SELECT email FROM users ORDER BY id").fetchall() == [(None,), (None,)]
    finally:
        con.close()
    if mode != "rw":
        assert owned_files(engine, db) == before


@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
def test_full_join_natural_under_allow_tables(engine, db):
    if engine == "bdb":
        pytest.skip("bdb lacks FULL JOIN (3.39+)")
    con = open_with(engine, db, "ro", allow_tables=["users"])
    try:
        e = refused(con, "SELECT * FROM secrets NATURAL FULL JOIN (SELECT 1 AS k, 1 AS v WHERE 0)",
                    errors.AccessDeniedError)
        assert "not in allow_tables" in str(e)
    finally:
        con.close()


@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
def test_user_authorizer_not_bypassed_by_using(engine, db):
    """A user authorizer that masks email is backed by the program check too."""
    if engine == "bdb":
        pytest.skip("bdb lacks FULL JOIN (3.39+)")
    con = open_with(engine, db, "ro", mask_columns=["users.email"],
                    authorizer=lambda *a: authorizer.OK)
    try:
        refused(con, "SELECT email FROM users FULL JOIN (SELECT NULL AS email WHERE 0) USING (email)")
    finally:
        con.close()


# --- 2. USING / NATURAL JOIN as an equality oracle (all engines) ----------------------------
@pytest.mark.parametrize("mode", ["ro", "rw"])
def test_using_join_is_no_equality_oracle(engine, db, mode):
    before = owned_files(engine, db)
    con = open_with(engine, db, mode, "ro" if mode == "ro" else "rw", **POLICY)
    try:
        for guess in (EMAILS[0], "wrong@example.org"):
            refused(con, "SELECT id FROM users JOIN (SELECT ? AS email) USING (email)", params=(guess,))
            refused(con, "SELECT id FROM users NATURAL JOIN (SELECT ? AS email, 1 AS id, 'user1' AS name)",
                    params=(guess,))
        for guess in ("root", "nope"):
            refused(con, "SELECT 1 FROM secrets JOIN (SELECT ? AS k) USING (k)", errors.AccessDeniedError,
                    params=(guess,))
        # ON with other columns is fine
        rows = con.execute("SELECT u.id FROM users u JOIN (SELECT 1 AS id) s ON u.id = s.id").fetchall()
        assert rows == [(1,)]
        # the WHERE form reads NULL: a guess never matches
        assert con.execute("SELECT id FROM users WHERE email = ?", (EMAILS[0],)).fetchall() == []
    finally:
        con.close()
    if mode == "ro":
        assert owned_files(engine, db) == before


# --- 3. the table's own features -------------------------------------------------------------
@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
@pytest.mark.parametrize("mode", ["ro", "rw"])
def test_generated_columns_over_a_masked_column_read_null(engine, db, mode):
    if not generated_ok(engine):
        pytest.skip(f"{engine} lacks generated columns")
    con = open_with(engine, db, mode, "ro" if mode == "ro" else "rw", mask_columns=["people.email"])
    try:
        rows = con.execute("SELECT email, email_uc, email_lc FROM people").fetchall()
        assert rows == [(None, None, None)]
        assert con.execute("SELECT id FROM people WHERE email_uc LIKE 'C%'").fetchall() == []
    finally:
        con.close()


@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
@pytest.mark.parametrize("table,module", [("docs", "fts5"), ("notes", "fts4")])
def test_masking_a_full_text_column_is_refused(engine, db, table, module):
    """FTS answers MATCH, docs('word'), highlight() and snippet() from its own index, which
    no mask covers: a mask on a full-text column is refused when the connection opens."""
    if not (has_feature(engine, "fts5") if module == "fts5" else fts4_ok(engine)):
        pytest.skip(f"{engine} lacks {module}")
    for mode in ("ro", "rw"):
        with pytest.raises(ValueError, match=f"full-text \\({module}\\) table.*deny the table instead"):
            sqlnb.connect(db, engine=engine, mode=mode, mask_columns=[f"{table}.body"])
    con = sqlnb.connect(db, engine=engine, mode="ro", deny_tables=[table])
    try:
        refused(con, f"SELECT * FROM {table} WHERE {table} MATCH 'swordfish'", errors.AccessDeniedError)
        if module == "fts5":
            refused(con, "SELECT highlight(docs, 1, '[', ']') FROM docs('swordfish')", errors.AccessDeniedError)
            refused(con, "SELECT block FROM docs_data", errors.AccessDeniedError)
    finally:
        con.close()


@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
def test_rtree_masked_id_not_read_through_rowid(engine, db):
    if not has_feature(engine, "rtree"):
        pytest.skip(f"{engine} lacks rtree")
    con = open_with(engine, db, "ro", mask_columns=["rt.id"])
    try:
        for sql in ("SELECT id FROM rt", "SELECT rowid FROM rt", "SELECT _rowid_, oid FROM rt"):
            rows = con.execute(sql).fetchall()
            no_leak(rows)
    finally:
        con.close()


def test_masking_an_integer_primary_key_is_refused(engine, db):
    with pytest.raises(ValueError, match="INTEGER PRIMARY KEY"):
        sqlnb.connect(db, engine=engine, mode="ro", mask_columns=["users.id"])


def test_indexed_by_masked_index_reads_no_value(engine, db):
    """Documented: a scan through an index on the masked column returns the other columns
    in that index's order (the order is not hidden), the masked values stay NULL."""
    con = open_with(engine, db, "ro", **POLICY)
    try:
        if engine != "bdb":  # (3.7.6.2: INDEXED BY needs a WHERE the index serves)
            rows = con.execute("SELECT id, email FROM users INDEXED BY idx_users_email").fetchall()
            assert sorted(rows) == [(1, None), (2, None)]
        refused(con, "SELECT id FROM users INDEXED BY idx_users_email JOIN (SELECT 'x' AS email) USING (email)")
    finally:
        con.close()


@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
def test_dbstat_refused_under_table_policies(engine, db):
    if not has_feature(engine, "dbstat"):
        pytest.skip(f"{engine} lacks dbstat")
    for pol in (POLICY, dict(allow_tables=["users"]), dict(mask_columns=["users.email"])):
        con = open_with(engine, db, "ro", **pol)
        try:
            if engine == "system":  # (the stdlib cannot drop a module: the authorizer refuses it)
                e = refused(con, "SELECT name, pgsize FROM dbstat WHERE name = 'secrets'",
                            errors.AccessDeniedError)
                assert "shows the pages" in str(e)
            else:  # the module is gone from this connection
                with pytest.raises(errors.OperationalError, match="no such table: dbstat"):
                    con.execute("SELECT name, pgsize FROM dbstat WHERE name = 'secrets'")
        finally:
            con.close()
    con = open_with(engine, db, "ro")  # no table policy: dbstat is a plain read
    try:
        assert con.execute("SELECT count(*) FROM dbstat WHERE name = 'secrets'").fetchone()[0] >= 1
    finally:
        con.close()


@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
def test_foreign_key_check_does_not_read_a_denied_parent(engine, db):
    if engine == "bdb":
        pytest.skip("bdb lacks PRAGMA foreign_key_check (3.7.16)")
    con = open_with(engine, db, "ro", **POLICY)
    try:
        refused(con, "PRAGMA foreign_key_check(grants)", errors.AccessDeniedError)
        refused(con, "PRAGMA foreign_key_check", errors.AccessDeniedError)
    finally:
        con.close()


def test_denied_table_schema_stays_visible(engine, db):
    """Documented: deny hides a table's rows, not its name, DDL or columns."""
    con = open_with(engine, db, "ro", **POLICY)
    try:
        sql = con.execute("SELECT sql FROM sqlite_master WHERE name = 'secrets'").fetchone()[0]
        assert "CREATE TABLE secrets" in sql
        cols = [r[1] for r in con.execute("PRAGMA table_info(secrets)").fetchall()]
        assert cols == ["k", "v"]
        refused(con, "SELECT k FROM secrets", errors.AccessDeniedError)
    finally:
        con.close()


@pytest.mark.parametrize("mode", ["ro", "ro-scratch", "rw"])
def test_attach_same_file_refused_under_deny(engine, db, mode):
    before = owned_files(engine, db)
    con = open_with(engine, db, mode, "ro" if mode != "rw" else "rw", deny_tables=["main.secrets"])
    try:
        e = refused(con, f"ATTACH '{db}' AS again", errors.ReadOnlyError if mode != "rw" else errors.PolicyError)
        assert "ATTACH" in str(e)
        refused(con, "SELECT v FROM secrets", errors.AccessDeniedError)
    finally:
        con.close()
    if mode != "rw":
        assert owned_files(engine, db) == before


# --- 4. shadow-table writes behind a multi-row VALUES ----------------------------------------
SHADOW_WRITES = [
    ("rtree", "INSERT INTO rt_node VALUES (99, x'00'), (98, x'00')"),
    ("rtree", "INSERT INTO rt_node SELECT 97, x'00' UNION ALL SELECT 96, x'00'"),
    ("fts5", "DELETE FROM docs_data WHERE id NOT IN (VALUES (0), (0))"),
    ("fts5", "INSERT INTO docs_data VALUES (500, x'00'), (501, x'00')"),
    ("fts5", "UPDATE docs_data SET block = x'00' WHERE id IN (VALUES (1), (2))"),
]


@pytest.mark.parametrize("mode,handle", HANDLES[:4])
def test_shadow_table_writes_refused(engine, db, mode, handle):
    before = owned_files(engine, db)
    con = open_with(engine, db, mode, handle)
    try:
        n = 0
        for need, sql in SHADOW_WRITES:
            if has_feature(engine, need):
                refused(con, sql, errors.ReadOnlyError)
                n += 1
        if engine != "bdb":
            assert n == len(SHADOW_WRITES)
        if has_feature(engine, "fts5"):
            assert con.execute("SELECT title FROM docs WHERE docs MATCH 'swordfish'").fetchall() == [("one",)]
    finally:
        con.close()
    assert owned_files(engine, db) == before


def test_shadow_writes_refused_on_a_shared_cache_ro_connection(tmp_path):
    """sqlite: a ro connection sharing the cache of this process's rw connection has a
    writable b-tree; the policy alone must hold (the FTS5 index stays intact)."""
    db = build("sqlite", tmp_path)
    uri = f"file:{db}?cache=shared"
    rw = sqlnb.connect(uri, uri=True, isolation_level=None)
    try:
        ro = sqlnb.connect(uri, uri=True, mode="ro", isolation_level=None)
        try:
            for need, sql in SHADOW_WRITES:
                refused(ro, sql, errors.ReadOnlyError)
            refused(ro, "DELETE FROM docs_data WHERE id > ?", errors.ReadOnlyError, params=(1,))
        finally:
            ro.close()
        assert rw.execute("SELECT title FROM docs WHERE docs MATCH 'swordfish'").fetchall() == [("one",)]
        assert rw.execute("INSERT INTO docs(docs) VALUES ('integrity-check')") is not None
    finally:
        rw.close()


# --- 5. executemany resets the policy's per-statement state ----------------------------------
@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
@pytest.mark.parametrize("mode,handle", HANDLES[:4])
def test_executemany_shadow_writes_refused(engine, db, mode, handle):
    if not has_feature(engine, "fts5"):
        pytest.skip(f"{engine} lacks fts5")
    before = owned_files(engine, db)
    con = open_with(engine, db, mode, handle)
    try:
        cur = con.cursor()
        con.execute("SELECT count(*) FROM docs").fetchall()  # a statement before: state to reset
        for sql, seq in (("DELETE FROM docs_data WHERE id > ?", [(1,), (2,)]),
                         ("INSERT INTO docs_data VALUES (?, x'00')", [(700,), (701,)]),
                         ("INSERT INTO rt_node VALUES (?, x'00')", [(90,), (91,)])):
            with pytest.raises(errors.ReadOnlyError):
                cur.executemany(sql, seq)
        assert con.execute("SELECT title FROM docs WHERE docs MATCH 'swordfish'").fetchall() == [("one",)]
    finally:
        con.close()
    assert owned_files(engine, db) == before


# --- 6. rw: no schema rewrite lifts deny or mask ---------------------------------------------
def test_rw_cannot_rewrite_the_schema_to_lift_a_policy(engine, db):
    con = open_with(engine, db, "rw", "rw", **POLICY)
    try:
        e = refused(con, "PRAGMA writable_schema=ON")
        assert "schema cannot be rewritten" in str(e)
        refused(con, "PRAGMA writable_schema=1")
        refused(con, "PRAGMA writable_schema")
        refused(con, "PRAGMA schema_version=1000")
        with pytest.raises(errors.Error):
            con.execute("UPDATE sqlite_master SET name = 'open', sql = replace(sql, 'secrets', 'open') "
                        "WHERE name = 'secrets'")
        with pytest.raises(errors.Error):
            con.execute("UPDATE sqlite_master SET sql = replace(sql, 'email', 'mail') WHERE name = 'users'")
        refused(con, "ALTER TABLE secrets RENAME TO open", errors.AccessDeniedError)
        if engine != "bdb":  # (3.7.6.2: no RENAME COLUMN)
            e = refused(con, "ALTER TABLE users RENAME COLUMN email TO mail")
            assert "masked column" in str(e)
        refused(con, "ALTER TABLE users RENAME TO people2")
        refused(con, "ALTER TABLE users ADD COLUMN e2 TEXT")
        if generated_ok(engine):
            refused(con, "ALTER TABLE users ADD COLUMN e3 AS (email)")
        # a trigger body's new.email is a read of the column: NULL
        con.execute("CREATE TRIGGER tg AFTER UPDATE ON users BEGIN "
                    "INSERT INTO grants VALUES (new.id, new.email); END")
        con.execute("UPDATE users SET name = 'z' WHERE id = 1")
        no_leak(con.execute("SELECT * FROM grants").fetchall())
        # a UNIQUE index on the masked column would make INSERT an oracle: refused
        other = sqlnb.connect(db, engine=engine, isolation_level=None)
        other.execute("CREATE UNIQUE INDEX uq_email ON users(email)")
        other.close()
        assert con.execute("SELECT name FROM users WHERE id = 2").fetchall() == [("user2",)]
        for guess in (EMAILS[1], "new@example.org"):
            refused(con, "INSERT INTO users(id, name, email) VALUES (50, 'x', ?)", params=(guess,))
        con.execute("UPDATE users SET name = 'y' WHERE id = 2")  # not touching the index: fine
        con.execute("CREATE TABLE copy AS SELECT * FROM users")
        no_leak(con.execute("SELECT * FROM copy").fetchall())
        refused(con, "SELECT v FROM secrets", errors.AccessDeniedError)
        assert con.execute("SELECT email FROM users").fetchall() == [(None,), (None,)]
    finally:
        con.close()
    con = open_with(engine, db, "ro", **POLICY)
    try:
        refused(con, "SELECT v FROM secrets", errors.AccessDeniedError)
        assert con.execute("SELECT email FROM users").fetchall() == [(None,), (None,)]
        with pytest.raises(errors.Error):
            con.execute("SELECT * FROM open")
    finally:
        con.close()


def test_defensive_flag_where_the_core_has_it(engine, db):
    for mode, pol in (("ro", {}), ("ro-scratch", {}), ("rw", POLICY)):
        con = open_with(engine, db, mode, **({"handle": "rw"} if mode == "rw" else {}), **pol)
        try:
            table = con.raw.policy.table
            if engine == "sqlite":
                assert table.defensive
            elif engine == "bdb":
                assert table is not None and not table.defensive  # 3.7.6.2: no DEFENSIVE
        finally:
            con.close()


# --- 7. Python cannot loosen a policy on an open connection ----------------------------------
def test_python_cannot_replace_recompile_or_remove_a_policy(engine, db, monkeypatch):
    before = owned_files(engine, db)
    con = sqlnb.connect(db, engine=engine, mode="ro", isolation_level=None, **POLICY)
    summary = con.policy_summary
    raw = con.raw
    pol = raw.policy
    try:
        if engine != "system":
            with pytest.raises(AttributeError):
                pol.table._compile(Policy("rw").c_spec())
            with pytest.raises(errors.ProgrammingError, match="already open"):
                raw.__init__(db, _base.OPEN_READWRITE | _base.OPEN_CREATE)
            mod = __import__(type(raw).__module__, fromlist=["install_policy"])
            with pytest.raises(errors.ProgrammingError, match="cannot be changed"):
                mod.install_policy(raw, Policy("rw"))
        else:
            with pytest.raises(errors.ProgrammingError, match="cannot be changed"):
                raw.install_policy(Policy("rw"))
        with pytest.raises(AttributeError):
            raw.policy = None
        with pytest.raises(AttributeError):
            raw.policy = Policy("rw")
        for name, value in (("mask_columns", ()), ("deny_tables", ()), ("mode", "rw"),
                            ("rules", (0,) * 64), ("table", None), ("allow_tables", None)):
            with pytest.raises(AttributeError, match="frozen"):
                setattr(pol, name, value)
        assert isinstance(pol.deny_tables, tuple) and isinstance(pol.mask_columns, tuple)
        # module lists are copied when a policy is built
        with pytest.raises(TypeError):
            authorizer.READ_ONLY_PRAGMAS["writable_schema"] = True
        monkeypatch.setattr(authorizer, "FREE_TABLES", ("secrets",) + authorizer.FREE_TABLES)
        monkeypatch.setattr(authorizer, "READ_ONLY_PRAGMAS", {"writable_schema": True, "user_version": True})
        refused(con, "SELECT v FROM secrets", errors.AccessDeniedError)
        refused(con, "PRAGMA user_version = 7", errors.ReadOnlyError)
        refused(con, "UPDATE users SET name = 'x'", errors.ReadOnlyError)
        assert con.execute("SELECT email FROM users").fetchall() == [(None,), (None,)]
        assert con.policy_summary == summary
    finally:
        con.close()
    assert owned_files(engine, db) == before


def test_allow_list_copied_at_open(engine, db):
    allow = ["users"]
    con = sqlnb.connect(db, engine=engine, mode="ro", allow_tables=allow)
    try:
        allow.append("secrets")
        refused(con, "SELECT v FROM secrets", errors.AccessDeniedError)
    finally:
        con.close()


def test_parallel_fetch_guard_cannot_be_switched_off(tmp_path):
    db = build("sqlite", tmp_path)
    con = sqlnb.connect(db, engine="sqlite", mode="ro", **POLICY)
    try:
        with pytest.raises(AttributeError):
            con.raw.policy = None
        from sqlnb import frames

        try:
            df = frames.query_df(con, "SELECT id, email FROM users", parallel=2)
        except errors.Error:
            return  # refused: fine
        assert df["email"].isna().all()
    finally:
        con.close()


# --- issue 18.8: an interrupt inside the authorizer is an interrupt --------------------------
def test_keyboard_interrupt_in_the_authorizer_callback_surfaces(tmp_path, monkeypatch):
    """system: the policy itself runs in Python (the other engines' callback is C)."""
    engine, db = "system", build("system", tmp_path)
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(Policy, "decide", interrupted)
    con = sqlnb.connect(db, engine=engine, isolation_level=None)  # rw, no table policy
    monkeypatch.undo()
    try:
        with pytest.raises(KeyboardInterrupt):
            con.execute("SELECT name FROM users").fetchall()
        assert calls
    finally:
        con.close()


def test_keyboard_interrupt_in_a_user_authorizer_surfaces(engine, db):
    def user(*args):
        raise KeyboardInterrupt

    con = sqlnb.connect(db, engine=engine, isolation_level=None, authorizer=user)
    try:
        with pytest.raises(KeyboardInterrupt):
            con.execute("SELECT name FROM users").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("mode", ["rw", "ro", "ro-scratch"])
def test_c_table_agrees_with_python_rules_on_the_schema_guards(mode):
    from sqlnb import _fast
    from sqlnb.authorizer import AuthAction as A

    pol = Policy(mode, deny_tables=["secrets"], mask_columns=["users.email"])
    raw = _fast.RawConnection(":memory:")
    try:
        table = _fast.install_policy(raw, pol.c_spec())
        samples = [(A.PRAGMA, "writable_schema", None, None), (A.PRAGMA, "writable_schema", "ON", "main"),
                   (A.PRAGMA, "schema_version", None, None), (A.PRAGMA, "schema_version", "5", None),
                   (A.PRAGMA, "user_version", "5", None), (A.ATTACH, "", None, None),
                   (A.ATTACH, "/tmp/x.db", None, None), (A.READ, "dbstat", "name", "main"),
                   (A.READ, "sqlite_dbpage", "data", "main"), (A.READ, "users", "email", "main"),
                   (A.READ, "secrets", "k", None), (A.ALTER_TABLE, "main", "users", None),
                   (A.ALTER_TABLE, "main", "grants", None), (A.ALTER_TABLE, "temp", "users", None)]
        for action, a1, a2, dbname in samples:
            c = table.decide(int(action), a1, a2, dbname, None, True)
            p = pol.decide(int(action), a1, a2, dbname, None, True)
            assert c == (int(p[0]), int(p[1])), (mode, action, a1, a2, dbname)
        if mode == "rw":
            assert pol.decide(A.PRAGMA, "writable_schema", "ON", None)[1] == authorizer.Why.SCHEMA
            assert pol.decide(A.ATTACH, "/tmp/x.db", None, None)[1] == authorizer.Why.ATTACH
            assert pol.decide(A.ATTACH, "", None, None)[0] == authorizer.OK  # VACUUM
        assert pol.decide(A.READ, "dbstat", "name", "main") == (authorizer.DENY, authorizer.Why.HIDDEN)
        assert Policy(mode).decide(A.READ, "dbstat", "name", "main")[0] == authorizer.OK
    finally:
        raw.close()


def test_program_check_follows_schema_changes_of_other_connections(engine, db):
    """The check's root pages are re-read when a statement's program names a new schema
    cookie: an index on the masked column made by another connection after open is covered."""
    con = open_with(engine, db, "ro", **POLICY)
    try:
        refused(con, "SELECT id FROM users JOIN (SELECT ? AS email) USING (email)", params=(EMAILS[0],))
        other = sqlnb.connect(db, engine=engine, isolation_level=None)
        try:
            other.execute("DROP INDEX idx_users_email")
            other.execute("CREATE TABLE pad(x)")  # the new index gets another root page
            other.execute("CREATE INDEX idx_users_email2 ON users(email)")
        finally:
            other.close()
        before = con.raw.policy._btrees[0]
        assert con.execute("SELECT name FROM users ORDER BY id").fetchall() == [("user1",), ("user2",)]
        for guess in (EMAILS[0], "wrong@example.org"):
            refused(con, "SELECT id FROM users JOIN (SELECT ? AS email) USING (email)", params=(guess,))
            if engine != "bdb":  # (3.7.6.2: INDEXED BY needs a WHERE the index serves)
                refused(con, "SELECT id FROM users INDEXED BY idx_users_email2 "
                             "JOIN (SELECT ? AS email) USING (email)", params=(guess,))
        assert con.raw.policy._btrees[0] != before  # the snapshot was read again
    finally:
        con.close()


def test_user_authorizer_rules_once_per_statement(engine, db):
    """The program check's EXPLAIN does not ask the user's authorizer again."""
    seen = []
    con = open_with(engine, db, "ro", mask_columns=["users.email"],
                    authorizer=lambda *a: (seen.append(a), authorizer.OK)[1])
    try:
        seen.clear()
        con.execute("SELECT name FROM users WHERE id = 1").fetchall()
        reads = [a for a in seen if a[0] == authorizer.AuthAction.READ and a[2] == "name"]
        assert len(reads) == 1, seen
    finally:
        con.close()


def test_analyze_statistics_hidden_under_table_policies(engine, db):
    """sqlite_stat1 holds row counts (stat3/4: sampled index keys, i.e. values)."""
    con = sqlnb.connect(db, engine=engine, isolation_level=None)
    con.execute("ANALYZE")
    con.close()
    for pol in (POLICY, dict(allow_tables=["users"]), dict(mask_columns=["users.email"])):
        c = open_with(engine, db, "ro", **pol)
        try:
            e = refused(c, "SELECT * FROM sqlite_stat1", errors.AccessDeniedError)
            assert "statistics of the tables a policy hides" in str(e)
        finally:
            c.close()
    c = open_with(engine, db, "ro")
    try:
        assert c.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] >= 1
    finally:
        c.close()


def test_interrupt_before_the_callbacks_try_is_still_an_interrupt(tmp_path, monkeypatch):
    """system: a signal can land on the callback's first line, before its ``try``; the
    stdlib then drops the KeyboardInterrupt and answers DENY, which left no refusal record:
    that unexplained SQLITE_AUTH is the interrupt, raised as such."""
    db = build("system", tmp_path)
    real = Policy.python_callback
    armed = []

    def wrapped(self, owner):
        cb = real(self, owner)

        def first_line(*args):
            if armed:
                armed.clear()
                raise KeyboardInterrupt  # as if the signal handler ran here
            return cb(*args)
        return first_line

    monkeypatch.setattr(Policy, "python_callback", wrapped)
    con = sqlnb.connect(db, engine="system", isolation_level=None)
    monkeypatch.undo()
    try:
        armed.append(1)
        with pytest.raises(KeyboardInterrupt):
            con.execute("SELECT name FROM users").fetchall()
        assert con.execute("SELECT name FROM users ORDER BY id").fetchall() == [("user1",), ("user2",)]
    finally:
        con.close()


# --- 8. issue 19 review: bypasses of the program check --------------------------------------
@pytest.mark.parametrize("mode", ["ro", "ro-scratch", "rw"])
def test_attach_with_a_computed_filename_refused_under_table_policies(engine, db, mode):
    """The authorizer sees NULL for a computed ATTACH filename: refused all the same (only
    ATTACH '' of a temporary database is allowed), so no second name reaches the hidden rows."""
    d = os.path.dirname(db)
    con = open_with(engine, db, mode, "ro" if mode != "rw" else "rw", **POLICY)
    try:
        refused(con, f"ATTACH '{d}/p'||'.db' AS m2",
                errors.ReadOnlyError if mode != "rw" else errors.PolicyError)
        refused(con, "ATTACH ? AS m3", errors.ReadOnlyError if mode != "rw" else errors.PolicyError,
                params=(db,))
        for sql in ("SELECT v FROM m2.secrets", "SELECT email FROM m2.users"):
            with pytest.raises(errors.Error):
                no_leak(con.execute(sql).fetchall())
    finally:
        con.close()


def test_program_check_refuses_cursors_on_attached_databases(engine, db):
    """Belt and braces: a cursor on an attached database's b-tree (p3 >= 2) is refused under
    table policies (the check knows main's root pages only)."""
    pol = Policy("rw", **POLICY)
    pol._btrees = (1, {}, {})
    err = pol.check_program([("Transaction", 2, 0, 1, 0), ("OpenRead", 0, 2, 2, 0),
                             ("Column", 0, 1, 0, 0)], lambda q: [], "SELECT v FROM m2.secrets")
    assert err is not None and "attached" in str(err)
    assert pol.check_program([("OpenRead", 0, 2, 1, 0)], lambda q: [], "SELECT 1 FROM temp.t") is None


LEAKY_VIEW = "SELECT email AS x FROM users FULL JOIN (SELECT NULL AS email WHERE 0) USING (email)"


@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
@pytest.mark.parametrize("mode", ["ro-scratch", "rw"])
def test_statement_reprepared_after_a_schema_change_is_checked_again(engine, db, mode):
    """SQLite re-prepares a statement whose schema changed on its next step: that new program is
    checked too (or refused), never run unchecked."""
    if engine == "bdb":
        pytest.skip("bdb lacks FULL JOIN (3.39+)")
    con = open_with(engine, db, mode, "ro" if mode != "rw" else "rw", **POLICY)
    try:
        con.execute("CREATE TEMP TABLE log(x)")
        con.execute("CREATE TEMP VIEW v AS SELECT 1 AS x")

        def gen():
            yield ()
            con.execute("DROP VIEW temp.v")
            con.execute(f"CREATE TEMP VIEW v AS {LEAKY_VIEW}")
            yield ()
            yield ()

        with pytest.raises(errors.Error) as ei:
            con.executemany("INSERT INTO temp.log SELECT * FROM v", gen())
        assert "refused" in str(ei.value) or "schema changed" in str(ei.value), ei.value
        no_leak(con.execute("SELECT * FROM temp.log").fetchall())
        # a statement held across a schema change
        con.execute("DROP VIEW temp.v")
        con.execute("CREATE TEMP VIEW v AS SELECT 1 AS x")
        cur = con.execute("SELECT * FROM v")
        assert cur.fetchall() == [(1,)]
        con.execute("DROP VIEW temp.v")
        con.execute(f"CREATE TEMP VIEW v AS {LEAKY_VIEW}")
        with pytest.raises(errors.Error):
            no_leak(con.execute("SELECT * FROM v").fetchall())
        if engine != "system":
            st, _ = con.raw.prepare(b"SELECT * FROM temp.log", 0)
            try:
                con.execute("DROP VIEW temp.v")
                con.execute("DROP TABLE temp.log")
                con.execute(f"CREATE TEMP TABLE log AS SELECT 1 AS x")
                con.execute("DROP TABLE temp.log")
                con.execute(f"CREATE TEMP VIEW log AS {LEAKY_VIEW}")
                with pytest.raises(errors.Error) as ei:
                    no_leak(st.fetchmany(10))
                assert "prepare it again" in str(ei.value) or "refused" in str(ei.value), ei.value
            finally:
                st.finalize()
    finally:
        con.close()


@pytest.mark.parametrize("mode", ["ro-scratch", "rw"])
def test_insert_select_star_transfer_does_not_copy_a_masked_column(engine, db, mode):
    """``INSERT INTO copy SELECT * FROM users`` copies whole records (the transfer optimisation:
    RowData/RowCell, no Column): refused, or the copy holds no masked value."""
    con = open_with(engine, db, mode, "ro" if mode != "rw" else "rw", **POLICY)
    try:
        t = "temp.copy" if mode == "ro-scratch" else "copy"
        con.execute(f"CREATE TABLE {t}(id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
        try:
            con.execute(f"INSERT INTO {t} SELECT * FROM users")
        except errors.PolicyError as e:
            assert "masked column main.users.email" in str(e)
        no_leak(con.execute(f"SELECT * FROM {t}").fetchall())
        # a copy of an unmasked table still works
        con.execute(f"CREATE TABLE {t}2(uid INTEGER, k TEXT)")
        con.execute(f"INSERT INTO {t}2 SELECT * FROM grants")
        assert con.execute(f"SELECT * FROM {t}2").fetchall() == [(1, "nope")]
    finally:
        con.close()


def test_analyze_statistics_not_read_through_a_natural_join(engine, db):
    con = sqlnb.connect(db, engine=engine, isolation_level=None)
    con.execute("ANALYZE")
    con.close()
    con = open_with(engine, db, "ro", **POLICY)
    try:
        if engine != "bdb":
            e = refused(con, "SELECT * FROM sqlite_stat1 NATURAL FULL JOIN "
                             "(SELECT 1 AS tbl, 1 AS idx, 1 AS stat WHERE 0)", errors.AccessDeniedError)
            assert "sqlite_stat1" in str(e)
        refused(con, "SELECT 1 FROM sqlite_stat1 NATURAL JOIN (SELECT 'users' AS tbl)",
                errors.AccessDeniedError)
    finally:
        con.close()


@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
def test_dbstat_module_gone_under_table_policies(engine, db):
    """dbstat has no b-tree the program check could see: on a connection with a table policy
    the module is dropped (Cython engines), so no form of SQL reaches it."""
    if engine == "system" or not has_feature(engine, "dbstat"):
        pytest.skip(f"{engine}: no dbstat, or sqlite3_drop_modules is not reachable (stdlib)")
    con = open_with(engine, db, "ro", **POLICY)
    try:
        with pytest.raises(errors.Error, match="no such"):
            con.execute("SELECT * FROM dbstat NATURAL JOIN (SELECT 'secrets' AS name)").fetchall()
        assert con.execute("SELECT count(*) FROM docs").fetchone()[0] == 2  # other modules stay
    finally:
        con.close()


@pytest.mark.parametrize("mode", ["rw"])
def test_trigger_sub_program_cursors_are_not_confused_with_the_main_programs(engine, db, mode):
    """A trigger's program numbers its cursors from 0 again: its reads are checked as its own."""
    con = open_with(engine, db, "rw", "rw", **POLICY)
    try:
        con.execute("CREATE TABLE t(x)")
        con.execute("CREATE TABLE hits(id)")
        con.execute("CREATE TRIGGER tr AFTER INSERT ON t BEGIN "
                    "INSERT INTO hits SELECT id FROM users NOT INDEXED JOIN (SELECT new.x AS email) USING (email); END")
        for guess in (EMAILS[0], "wrong@example.org"):
            refused(con, "INSERT INTO t VALUES (?)", params=(guess,))
        assert con.execute("SELECT * FROM hits").fetchall() == []
    finally:
        con.close()


def test_program_check_frames_of_sub_programs():
    """Unit: cursor 0 of a sub-program (addresses restart at 0) is not the main program's cursor 0."""
    pol = Policy("rw", **POLICY)
    pol._btrees = (1, {}, {7: ("users", "email", frozenset({2}), False)})
    ops = [("OpenWrite", 0, 9, 0, 0, 0),
           ("OpenRead", 0, 7, 0, 0, 1), ("Column", 0, 2, 0, 0, 1)]
    err = pol.check_program(ops, lambda q: [], "INSERT INTO t VALUES (1)")
    assert err is not None and "masked column" in str(err)


@pytest.mark.allowed_skip  # the engine's core lacks the feature (bdb: 3.7.6.2)
def test_without_rowid_strict_table_masked_at_its_record_positions(engine, db):
    if engine == "bdb" or (engine == "system" and sqlite3.sqlite_version_info < (3, 37)):
        pytest.skip("STRICT needs 3.37")
    con = sqlnb.connect(db, engine=engine, isolation_level=None)
    con.executescript("""
        CREATE TABLE wr(email TEXT, k TEXT PRIMARY KEY, name TEXT) WITHOUT ROWID, STRICT;
        INSERT INTO wr VALUES ('ann@example.org', 'a', 'n');
        CREATE TABLE "w""q"(email TEXT, k TEXT PRIMARY KEY) WITHOUT ROWID;
        INSERT INTO "w""q" VALUES ('bob@example.org', 'b');
    """)
    con.close()
    con = open_with(engine, db, "ro", mask_columns=["wr.email", 'w"q.email'])
    try:
        refused(con, "SELECT k FROM wr JOIN (SELECT ? AS email) USING (email)", params=(EMAILS[0],))
        refused(con, 'SELECT k FROM "w""q" JOIN (SELECT ? AS email) USING (email)', params=(EMAILS[1],))
        assert con.execute("SELECT email, k, name FROM wr").fetchall() == [(None, "a", "n")]
    finally:
        con.close()


def test_open_write_seekeq_cursor_still_checked():
    """OPFLAG_SEEKEQ (0x02 on 3.8+) is not OPFLAG_P2ISREG (0x10): the root still counts."""
    pol = Policy("rw", deny_tables=["secrets"])
    pol._btrees = (1, {5: ("secrets", "deny_tables")}, {})
    ops = [("OpenWrite", 1, 5, 0, 0x02)]
    ops10 = [("OpenWrite", 1, 5, 0, 0x10)]
    if True:  # (3.8+ cores: the sqlite engine)
        assert pol.check_program(ops, lambda q: [], "DELETE FROM x") is not None
    assert pol.check_program(ops10, lambda q: [], "CREATE TABLE x(y)") is None


def test_open_write_register_flag_follows_the_core_version():
    """The core's version is a fact given to the policy: on 3.7 OPFLAG_P2ISREG is 0x02 (a b-tree
    the statement creates: not a root page); on 3.8+ 0x02 is OPFLAG_SEEKEQ (still a root page)."""
    ops = [("OpenWrite", 1, 5, 0, 0x02)]
    for version, refused_ in (((3, 7), False), ((3, 8), True), ((3, 50), True), (None, True)):
        pol = Policy("rw", deny_tables=["secrets"], core_version=version)
        pol._btrees = (1, {5: ("secrets", "deny_tables")}, {})
        assert (pol.check_program(ops, lambda q: [], "DELETE FROM x") is not None) == refused_, version
        assert pol.like().core_version == pol.core_version


def test_one_row_update_and_delete_still_run_under_policies(engine, db):
    con = open_with(engine, db, "rw", "rw", **POLICY)
    try:
        con.execute("UPDATE users SET name = 'z' WHERE id = 1")
        con.execute("DELETE FROM users WHERE id = 2")
        assert con.execute("SELECT id, name, email FROM users").fetchall() == [(1, "z", None)]
    finally:
        con.close()


def test_python_level_freezing_reaches_the_instance_dict(engine, db):
    con = open_with(engine, db, "ro", **POLICY)
    raw = con.raw
    try:
        with pytest.raises((AttributeError, TypeError)):
            raw.policy.__dict__["mask_columns"] = ()
        with pytest.raises(AttributeError):
            raw._RawConnection__policy = None
        refused(con, "SELECT id FROM users JOIN (SELECT ? AS email) USING (email)", params=(EMAILS[0],))
        assert con.execute("SELECT email FROM users").fetchall() == [(None,), (None,)]
    finally:
        con.close()


def test_a_failing_program_check_finalizes_the_statement(engine, db, monkeypatch):
    def boom(self, ops, query, sql):
        raise RuntimeError("the check failed")
    monkeypatch.setattr(Policy, "check_program", boom)
    con = open_with(engine, db, "ro", **POLICY)
    try:
        with pytest.raises(RuntimeError, match="the check failed"):
            con.execute("SELECT name FROM users").fetchall()
    finally:
        con.close()  # (bdb: a statement left unfinalized makes close fail)
    assert con.closed


def test_autoincrement_insert_under_allow_tables(engine, db):
    c = sqlnb.connect(db, engine=engine, isolation_level=None)
    c.execute("CREATE TABLE counter(id INTEGER PRIMARY KEY AUTOINCREMENT, x)")
    c.close()
    con = open_with(engine, db, "rw", "rw", allow_tables=["counter"])
    try:
        con.execute("INSERT INTO counter(x) VALUES (1)")
        assert con.execute("SELECT id, x FROM counter").fetchall() == [(1, 1)]
        refused(con, "SELECT * FROM users", errors.AccessDeniedError)
    finally:
        con.close()


def test_schema_refresh_is_not_ruled_on_by_the_user_authorizer(engine, db):
    """The program check re-reads the schema (PRAGMA table_list, table_xinfo) after a schema
    change: a user authorizer that refuses PRAGMAs does not make every later statement fail."""
    def no_pragmas(action, *rest):
        return authorizer.DENY if action == authorizer.AuthAction.PRAGMA else authorizer.OK
    con = open_with(engine, db, "rw", "rw", authorizer=no_pragmas, **POLICY)
    try:
        con.execute("CREATE TABLE pad(x)")  # a new schema cookie: the next check reads the schema
        assert con.execute("SELECT name FROM users ORDER BY id").fetchall() == [("user1",), ("user2",)]
        refused(con, "PRAGMA user_version", errors.AccessDeniedError)
    finally:
        con.close()


@pytest.mark.parametrize("mode", ["ro", "rw"])
def test_statement_reprepared_after_a_harmless_schema_change_still_runs(engine, db, mode):
    """The re-prepare is checked, not simply refused: a held statement whose schema changed
    harmlessly runs (with its bound values) on every engine."""
    con = open_with(engine, db, mode, "ro" if mode == "ro" else "rw", **POLICY)
    try:
        cur = con.cursor()
        cur.execute("SELECT name, email FROM users WHERE id = ?", (2,))
        assert cur.fetchall() == [("user2", None)]
        other = sqlnb.connect(db, engine=engine, isolation_level=None)
        try:
            other.execute("CREATE TABLE pad2(x)")
        finally:
            other.close()
        if engine != "system":
            st, _ = con.raw.prepare(b"SELECT name FROM users WHERE id = ?", 0)
            try:
                st.bind((1,))
                other = sqlnb.connect(db, engine=engine, isolation_level=None)
                try:
                    other.execute("CREATE TABLE pad3(x)")
                finally:
                    other.close()
                assert st.fetchmany(10) == [("user1",)]
            finally:
                st.finalize()
        cur.execute("SELECT name, email FROM users WHERE id = ?", (2,))
        assert cur.fetchall() == [("user2", None)]
    finally:
        con.close()


# --- the SQL text a policy reads (for messages, and facts old cores do not report) ------------
def test_ddl_words_name_the_statement_through_the_lexer():
    from sqlnb.authorizer.refusal import _ddl_words

    assert _ddl_words("create temp table t(a)", "temp") == "CREATE TEMP TABLE on temp.t"
    assert _ddl_words("  -- why\n/* c */ CREATE /* x */ TABLE temp.late(a)", "main") == "CREATE TABLE on temp.late"
    assert _ddl_words('CREATE INDEX IF NOT EXISTS "my ""i""" ON t(a)', "main") == 'CREATE INDEX on main.my "i"'
    assert _ddl_words("DROP VIEW [v w]", None) == "DROP VIEW on v w"
    assert _ddl_words("INSERT INTO t VALUES (1)", "main") == ""


def test_schema_text_facts_through_the_lexer():
    from sqlnb.authorizer.rules import declares_without_rowid, vtab_module

    assert declares_without_rowid("CREATE TABLE t(a TEXT PRIMARY KEY, b) WITHOUT ROWID")
    assert declares_without_rowid("CREATE TABLE t(a TEXT PRIMARY KEY) without  rowid, STRICT")
    assert not declares_without_rowid("CREATE TABLE t(a TEXT DEFAULT ') WITHOUT ROWID', b)")
    assert not declares_without_rowid("CREATE TABLE t(a, b) /* ) WITHOUT ROWID */")
    assert not declares_without_rowid(None)
    assert vtab_module("CREATE VIRTUAL TABLE d USING FTS5(a, b)") == "fts5"
    assert vtab_module('CREATE VIRTUAL TABLE "using" USING rtree(id, x0, x1)') == "rtree"
    assert vtab_module("CREATE TABLE t(a)") == ""


def test_policy_modules_import_sqlnb_only_at_top_level():
    """The policy layer (L1) imports nothing of sqlnb inside a function."""
    import ast
    import pathlib

    root = pathlib.Path(authorizer.__file__).parent
    for name in ("__init__.py", "rules.py", "program.py", "refusal.py"):
        tree = ast.parse((root / name).read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom):
                        assert not (node.module or "").startswith("sqlnb"), (name, fn.name)
                    if isinstance(node, ast.Import):
                        assert not any(a.name.startswith("sqlnb") for a in node.names), (name, fn.name)
