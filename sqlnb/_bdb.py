"""What the BerkeleyDB SQL engine (a SQLite 3.7.6.2 core) needs beyond the shared driver.

* :func:`explain_error` turns the old core's bare ``near "(": syntax error``
  into a :class:`~sqlnb.errors.FeatureNotSupportedError` that names the
  missing feature, the engine and its core version, and suggests the
  ``sqlite`` engine. It only speaks when SQLite itself raised an error, and
  it confirms the feature from the SQL's tokens (strings, quoted names and
  comments are skipped), so valid SQL that merely mentions ``over`` is never
  touched.
* :func:`check_open` refuses, before anything touches the disk, the opens
  that would damage or litter: a real SQLite file opened with ``bdb`` (BDB
  would leave a ``<name>-journal/`` directory that makes SQLite fail on the
  file), a BDB database opened with ``sqlite``/``system``, URI filenames.
* :func:`before_statement` refuses a statement that BerkeleyDB's blocking
  locks would make wait forever: another sqlnb connection *in this process*
  to the same database holds an open transaction; and, through
  :func:`_watch_locks`, bounds waits for other processes' locks by the
  connection's timeout (the statement then fails with ``BusyError``).
  Before a connection's first statement, :func:`_recover_abandoned` has
  BerkeleyDB recover an environment that processes died in (SIGKILL), instead
  of letting the open hang on a mutex the dead process held.
* :func:`setup` (called once when the engine's module loads) installs the
  fork guard: a child forked while bdb connections were open can neither use
  the inherited connections nor open new ones (BerkeleyDB environments are
  not fork-safe), and never closes the parent's handles on exit.
"""
from __future__ import annotations

import os
import re
import stat
import threading
import time
import weakref
from dataclasses import dataclass

from sqlnb import errors as _errors

ENGINE = "bdb"
CORE_VERSION = "3.7.6.2"  # replaced by the loaded library's own version in setup()

# ---------------------------------------------------------------------------
# a small SQL tokenizer (enough to find keywords outside strings and comments)
# ---------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*(?:[^*]|\*(?!/))*(?:\*/|\Z))
  | (?P<str>'(?:[^']|'')*(?:'|\Z))
  | (?P<qid>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\]]*(?:\]|\Z))
  | (?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_\x80-\U0010FFFF][\w$\x80-\U0010FFFF]*)
  | (?P<param>[?][0-9]*|[:@$][\w]+)
  | (?P<op>->>|->|\|\||<<|>>|<=|>=|==|!=|<>|.)
""", re.X | re.S)


@dataclass(frozen=True)
class Tok:
    kind: str   # word, qid, str, num, param, op
    text: str
    depth: int  # parenthesis depth before this token

    @property
    def up(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text


def tokenize(sql: str) -> list[Tok]:
    """The tokens of ``sql`` without whitespace and comments, each with its paren depth."""
    out: list[Tok] = []
    depth = 0
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        text = m.group()
        if text == ")":
            depth = max(0, depth - 1)
        out.append(Tok(kind, text, depth))
        if text == "(":
            depth += 1
    return out


def _words(toks):
    return [t.up if t.kind == "word" else None for t in toks]


# ---------------------------------------------------------------------------
# features newer than the 3.7.6.2 core
# ---------------------------------------------------------------------------
_NEAR = re.compile(r'^near "(.*)": syntax error$', re.S)
_NO_FUNC = re.compile(r"^no such function: (\w+)$")
_NO_MODULE = re.compile(r"^no such module: (\w+)$")
_NO_COLUMN = re.compile(r"^no such column: (true|false)$", re.I)
_BAD_TOKEN = re.compile(r'^unrecognized token: "(.*)"$', re.S)

WINDOW_ONLY = {"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag",
               "lead", "first_value", "last_value", "nth_value"}
MATH = {"acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos",
        "cosh", "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow",
        "power", "radians", "sin", "sinh", "sqrt", "tan", "tanh", "trunc"}
# scalar/aggregate functions added after 3.7.6.2, with the release that added them
NEWER_FUNCTIONS = {
    "instr": "3.7.15", "char": "3.7.16", "unicode": "3.7.16", "likely": "3.8.1",
    "unlikely": "3.8.1", "likelihood": "3.8.2", "printf": "3.8.3", "iif": "3.32.0",
    "substring": "3.34.0", "format": "3.38.0", "unixepoch": "3.38.0", "unhex": "3.41.0",
    "octet_length": "3.43.0", "timediff": "3.43.0", "concat": "3.44.0", "concat_ws": "3.44.0",
    "string_agg": "3.44.0", "if": "3.48.0",
}
MODULES = {"fts5": ("FTS5 full-text search", "3.9.0"), "fts4": ("FTS4 full-text search", "(a build option)"),
           "fts3": ("FTS3 full-text search", "(a build option)"), "rtree": ("R*Tree", "(a build option)"),
           "rtree_i32": ("R*Tree", "(a build option)"), "geopoly": ("Geopoly", "3.26.0"),
           "dbstat": ("dbstat", "3.8.3"), "lsm1": ("lsm1 key-value", "(sqlnb's own build)"),
           "json_each": ("JSON table-valued", "3.38.0"), "json_tree": ("JSON table-valued", "3.38.0"),
           "generate_series": ("generate_series", "(an extension)")}


@dataclass(frozen=True)
class Missing:
    key: str        # short name, e.g. "window"
    what: str       # e.g. "window functions (OVER ...)"
    since: str      # the SQLite release that added it

    def message(self, version: str, original: str | None) -> str:
        since = f"added in SQLite {self.since}" if self.since[:1].isdigit() else f"in SQLite {self.since}"
        said = f" (SQLite said: {original})" if original else ""
        return (f"the {ENGINE} engine (SQLite {version} core) has no {self.what}, "
                f"{since}; use engine='sqlite'{said}")


def _seq(words, i, *want):
    """True if words[i:] starts with the keywords ``want`` (None in want matches any word)."""
    if i + len(want) > len(words):
        return False
    return all(w is None and words[i + k] is not None or words[i + k] == w
               for k, w in enumerate(want))


def _syntax_features(toks: list[Tok], near: str | None) -> list[Missing]:
    """Features newer than 3.7.6.2 that these tokens use (for a syntax error)."""
    words = _words(toks)
    n = len(toks)
    first = words[0] if words else None
    found: list[Missing] = []
    nu = near.upper() if near is not None else None

    def text(i):
        return toks[i].text if i < n else None

    for i, w in enumerate(words):
        if w is None:
            continue
        nxt = text(i + 1)
        if w == "OVER" and i > 0 and toks[i - 1].text == ")" and nxt is not None and (
                nxt == "(" or toks[i + 1].kind in ("word", "qid")):
            found.append(Missing("window", "window functions (... OVER (...))", "3.25.0"))
        elif w == "WINDOW" and i + 2 < n and toks[i + 1].kind in ("word", "qid") and words[i + 2] == "AS":
            found.append(Missing("window", "window functions (WINDOW clause)", "3.25.0"))
        elif w == "FILTER" and i > 0 and toks[i - 1].text == ")" and nxt == "(" and words[i + 2:i + 3] == ["WHERE"]:
            found.append(Missing("filter", "FILTER clauses on aggregates", "3.30.0"))
        elif w == "WITH" and (i == 0 or toks[i - 1].text in ("(", ";")) and i + 1 < n and (
                words[i + 1] == "RECURSIVE" or (toks[i + 1].kind in ("word", "qid") and (
                    words[i + 2:i + 3] == ["AS"] or text(i + 2) == "("))):
            found.append(Missing("cte", "common table expressions (WITH ...)", "3.8.3"))
        elif w in ("JSON_EACH", "JSON_TREE") and nxt == "(":
            found.append(Missing("json", f"JSON table-valued functions ({w.lower()})", "3.38.0"))
        elif w == "ON" and first in ("INSERT", "REPLACE") and _seq(words, i, "ON", "CONFLICT") and any(
                words[j] == "DO" and words[j + 1:j + 2] in (["NOTHING"], ["UPDATE"]) for j in range(i + 2, n)):
            found.append(Missing("upsert", "UPSERT (INSERT ... ON CONFLICT ... DO ...)", "3.24.0"))
        elif w == "RETURNING" and first in ("INSERT", "REPLACE", "UPDATE", "DELETE") and toks[i].depth == 0 \
                and nu == "RETURNING":
            found.append(Missing("returning", "RETURNING clauses", "3.35.0"))
        elif w == "STRICT" and first == "CREATE" and toks[i].depth == 0 and i > 0 and \
                (toks[i - 1].text == ")" or toks[i - 1].text == ",") and nu == "STRICT":
            found.append(Missing("strict", "STRICT tables", "3.37.0"))
        elif w == "WITHOUT" and _seq(words, i, "WITHOUT", "ROWID") and first == "CREATE":
            found.append(Missing("without_rowid", "WITHOUT ROWID tables", "3.8.2"))
        elif first == "CREATE" and toks[i].depth == 1 and (
                (w == "AS" and nxt == "(") or _seq(words, i, "GENERATED", "ALWAYS", "AS")) and \
                "TABLE" in words[:4] and nu in ("AS", "(", "GENERATED", "ALWAYS"):
            found.append(Missing("generated", "generated columns (... AS (expr))", "3.31.0"))
        elif w == "NULLS" and words[i + 1:i + 2] in (["FIRST"], ["LAST"]):
            found.append(Missing("nulls_order", "NULLS FIRST/LAST in ORDER BY", "3.30.0"))
        elif w == "IS" and (_seq(words, i, "IS", "DISTINCT", "FROM")
                            or _seq(words, i, "IS", "NOT", "DISTINCT", "FROM")):
            found.append(Missing("is_distinct", "IS [NOT] DISTINCT FROM", "3.39.0"))
        elif w == "DROP" and first == "ALTER" and i > 2:
            found.append(Missing("drop_column", "ALTER TABLE ... DROP COLUMN", "3.35.0"))
        elif w == "RENAME" and first == "ALTER" and words[i + 1:i + 2] != ["TO"]:
            found.append(Missing("rename_column", "ALTER TABLE ... RENAME COLUMN", "3.25.0"))
        elif w == "FROM" and first == "UPDATE" and toks[i].depth == 0 and nu == "FROM":
            found.append(Missing("update_from", "UPDATE ... FROM", "3.33.0"))
        elif w == "VALUES" and first in ("INSERT", "REPLACE") and nxt == "(" and near == ",":
            j, d0 = i + 1, toks[i + 1].depth
            while j < n and not (toks[j].text == ")" and toks[j].depth == d0):
                j += 1
            if j + 2 < n and toks[j + 1].text == "," and toks[j + 2].text == "(":
                found.append(Missing("multirow_values", "multi-row VALUES lists (VALUES (...), (...))", "3.7.11"))
    if any(t.kind == "op" and t.text in ("->", "->>") for t in toks) and near in (">", ">>", "-", "->", "->>"):
        found.append(Missing("json", "JSON operators (-> and ->>)", "3.38.0"))
    return found


def missing_feature(message: str, sql: str) -> Missing | None:
    """The newer-than-3.7.6.2 feature that explains SQLite's ``message`` for ``sql``, or None."""
    message = (message or "").strip()
    m = _NO_FUNC.match(message)
    if m:
        name = m.group(1).lower()
        if name.startswith("json"):
            return Missing("json", f"JSON functions ({name}() and the rest)", "3.38.0")
        if name in WINDOW_ONLY:
            return Missing("window", f"window functions ({name}() OVER (...))", "3.25.0")
        if name in MATH:
            return Missing("math", f"math functions ({name}() and the rest)", "3.35.0")
        if name in NEWER_FUNCTIONS:
            return Missing("function", f"function {name}()", NEWER_FUNCTIONS[name])
        return None
    m = _NO_MODULE.match(message)
    if m:
        name = m.group(1).lower()
        if name in MODULES:
            what, since = MODULES[name]
            return Missing(name, f"{name} virtual tables ({what})", since)
        return None
    m = _NO_COLUMN.match(message)
    if m:
        if any(t.kind == "word" and t.up == m.group(1).upper() for t in tokenize(sql)):
            return Missing("true_false", "TRUE and FALSE literals", "3.23.0")
        return None
    m = _BAD_TOKEN.match(message)
    if m and re.fullmatch(r"0[xX][0-9a-fA-F]+", m.group(1)):
        return Missing("hex_literal", "hexadecimal integer literals (0x...)", "3.8.6")
    if message.startswith("RIGHT and FULL OUTER JOINs are not currently supported"):
        return Missing("right_join", "RIGHT and FULL OUTER JOIN", "3.39.0")
    m = _NEAR.match(message)
    if m or message in ("incomplete input",) or message.startswith("unrecognized token"):
        found = _syntax_features(tokenize(sql), m.group(1) if m else None)
        return found[0] if found else None
    return None


def explain_error(exc, sql: str):
    """Return a clearer exception for ``exc`` raised by ``sql`` on the bdb engine, or None.

    Only SQLITE_ERROR (code 1) is considered, and only when the SQL really
    uses a feature the 3.7.6.2 core lacks.
    """
    if not isinstance(exc, _errors.Error) or isinstance(exc, _errors.FeatureNotSupportedError):
        return None
    if (exc.result_code or 0) & 0xFF == 6:  # a lock wait outlived the timeout (see _watch_locks)
        err = _errors.make_error(
            5, "database is locked: a BerkeleyDB lock held by another connection (in this or another "
               "process) outlasted this connection's timeout, so the statement did not run. Retry once "
               "the other side commits or rolls back, or open with a longer timeout= "
               f"(BerkeleyDB: {exc})", cls=_errors.BusyError, sql=sql)
        return err
    if (exc.result_code or 0) & 0xFF != 1:
        return None
    feature = missing_feature(str(exc), sql or "")
    if feature is None:
        return None
    return feature_error(feature, original=str(exc), exc=exc, sql=sql)


def feature_error(feature: Missing, *, original=None, exc=None, sql=None):
    err = _errors.make_error(
        exc.result_code if exc is not None and exc.result_code else 1,
        feature.message(CORE_VERSION, original),
        extended_code=getattr(exc, "extended_code", None), sql=sql,
        cls=_errors.FeatureNotSupportedError)
    err.feature = feature.key
    err.engine = ENGINE
    err.core_version = CORE_VERSION
    err.since = feature.since
    return err


# ---------------------------------------------------------------------------
# foreign files: refuse before BerkeleyDB or SQLite touches the disk
# ---------------------------------------------------------------------------
SQLITE_MAGIC = b"SQLite format 3\x00"
_BDB_MAGICS = (0x053162, 0x061561, 0x042253, 0x074582)  # btree, hash, queue, heap meta pages


def is_bdb_file(head: bytes) -> bool:
    """True if ``head`` (the first bytes of a file) is a BerkeleyDB meta page."""
    if len(head) < 16:
        return False
    magic_le = int.from_bytes(head[12:16], "little")
    magic_be = int.from_bytes(head[12:16], "big")
    return magic_le in _BDB_MAGICS or magic_be in _BDB_MAGICS


def env_dir(path: str) -> str:
    return path + "-journal"


def is_bdb_env(path: str) -> bool:
    d = env_dir(path)
    return os.path.isdir(d) and any(os.path.exists(os.path.join(d, f)) for f in ("__db.register", "__db.001"))


def _read_head(path: str) -> bytes:
    """The first 100 bytes of a regular file (never opens a FIFO or device, which could block)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        return b""
    with open(path, "rb") as f:
        return f.read(100)


def check_open(engine: str, path: str, *, mode: str = "rw", uri: bool = False, held: bool = False) -> None:
    """Raise a clear error for an open that the engine would get wrong, before any file is touched.

    ``held``: a connection of this process (of this engine) has the file open. Its
    first bytes are then not read: closing a descriptor of our own on the file
    would drop every POSIX lock this process holds on it (see ``sqlnb._files``),
    and the open that holds it already passed this check.
    """
    if engine == "bdb":
        if uri or str(path).startswith("file:"):
            raise feature_error(Missing("uri", "URI filenames (file:...?mode=...)", "3.7.7"))
    if not path or path == ":memory:" or (engine != "bdb" and (uri or str(path).startswith("file:"))):
        return
    p = os.fspath(path)
    exists = os.path.exists(p)
    if engine == "bdb":
        if not exists:
            parent = os.path.dirname(os.path.abspath(p))
            if mode != "rw":
                exc = _errors.make_error(14, f"unable to open database file: {p!r} does not exist "
                                             f"(mode={mode!r} is read-only and never creates one)",
                                         cls=_errors.CantOpenError)
                exc.filename = path
                raise exc
            if not os.path.isdir(parent):
                exc = _errors.make_error(14, f"unable to open database file {p!r}: its directory does not exist",
                                         cls=_errors.CantOpenError)
                exc.filename = path
                raise exc
            return
        if not os.path.isfile(p):
            what = "is a directory" if os.path.isdir(p) else "is not a regular file"
            exc = _errors.make_error(14, f"unable to open database file: {p!r} {what}", cls=_errors.CantOpenError)
            exc.filename = path
            raise exc
        if held:  # (an open waits for another connection's write lock forever, like a statement)
            _refuse_if_busy_here(_key(p), None)
            return
        try:
            head = _read_head(p)
        except OSError as exc:
            raise _errors.make_error(14, f"unable to open database file {p!r}: {exc.strerror}",
                                     cls=_errors.CantOpenError) from None
        if head.startswith(SQLITE_MAGIC):
            raise _errors.make_error(
                26, f"{p!r} is an SQLite database file, not a BerkeleyDB SQL database: open it with "
                    f"engine='sqlite' (the bdb engine refuses it so that it never leaves a "
                    f"{os.path.basename(env_dir(p))}/ directory next to it, which would make SQLite "
                    f"fail on the file)", cls=_errors.NotADatabaseError)
        if not is_bdb_file(head):
            what = "an empty file" if not head else "not a database"
            raise _errors.make_error(
                26, f"file is not a database: {p!r} is {what}, not a BerkeleyDB SQL database "
                    f"(nothing was changed on disk)", cls=_errors.NotADatabaseError)
        return
    # sqlite / system engines
    if not exists or os.path.isdir(p) or held:
        return
    try:
        head = _read_head(p)
    except OSError:
        return
    if is_bdb_file(head):
        raise _errors.make_error(
            26, f"file is not a database: {p!r} is a BerkeleyDB SQL database; open it with "
                f"engine='bdb' (or a bdb:/// URL)", cls=_errors.NotADatabaseError)
    if head.startswith(SQLITE_MAGIC) and is_bdb_env(p):
        raise _errors.make_error(
            10, f"{p!r} is an SQLite database, but a BerkeleyDB environment directory "
                f"{env_dir(p)!r} sits next to it (left by opening it with the bdb engine); SQLite "
                f"reads that as a hot journal and fails with 'disk I/O error'. Remove that directory "
                f"(it holds no data of this file) and open again", cls=_errors.IOError_)


# ---------------------------------------------------------------------------
# locking: BerkeleyDB waits forever where SQLite would say "database is locked"
# ---------------------------------------------------------------------------
_live: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()   # Connection -> database key
_lock = threading.Lock()
_lock_timeouts: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # Connection -> seconds
_watched: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # Connection -> finalize(unwatch)


def _key(path: str) -> str | None:
    if not path or path == ":memory:":
        return None  # a private in-memory database: nothing to share
    return os.path.realpath(path)


_LOCK_WAIT = 0.05  # seconds one lock request may wait before BerkeleyDB refuses it (see _watch_locks)


def register(con, timeout: float | None = None) -> None:
    """Track a bdb Connection (for the lock check, the lock timeout and the fork guard).

    ``timeout`` (the connection's busy timeout, seconds) bounds how long its
    statements wait for another process's locks (see :func:`_watch_locks`).
    """
    with _lock:
        _live[con] = _key(con.path)
        _lock_timeouts[con] = float(timeout or 0.0)


def unregister(con) -> None:
    """A bdb Connection was closed: stop bounding lock waits on its behalf."""
    with _lock:
        fin = _watched.pop(con, None)
    if fin is not None:
        fin()


def _watch_locks(con, key: str) -> None:
    """Bound ``con``'s waits for other processes' locks, once its environment directory exists.

    BerkeleyDB SQL ignores ``sqlite3_busy_timeout`` (its busy handler only
    makes it wait again) and waits inside its lock manager, where Ctrl-C cannot
    reach. The compiled module joins the environment, sets its lock timeout to
    ``_LOCK_WAIT`` and has a thread expire longer waits every 20 ms
    (``sqlnb/sqlnb_bdb_locks.c``). A refused wait surfaces as BusyError;
    ``Connection._waiting`` (through :func:`retry_busy`) tries again until the
    connection's ``timeout`` has passed, so a statement waits about as long as
    on the sqlite engine, and Ctrl-C works between tries. The lock timeout lives in the environment's shared
    region, so other processes using the same database get refused waits
    too, instead of waiting forever. BerkeleyDB creates the environment at the
    first statement that touches a table, so this runs before each statement
    until it has succeeded once.

    Before joining, :func:`_recover_abandoned` makes sure the environment was not
    left behind by processes that died in it; joining such an environment can
    block forever on a mutex the dead process held.
    """
    from sqlnb import _engines

    mod = _engines.load("bdb")
    home = env_dir(key)
    with _lock:
        if con in _watched:
            return
        state = _recover_abandoned(mod, con, key)
        _used.add(con)  # from here on, this connection's statements may open the environment
        if state not in (ENV_HEALTHY, ENV_OPEN_HERE) or not os.path.exists(os.path.join(home, "__db.001")):
            return  # no environment yet, or one BerkeleyDB SQL still has to recover: join it later
        mod.lock_watch(home, _LOCK_WAIT)
        _watched[con] = weakref.finalize(con, mod.lock_unwatch, home)


# what sqlnb_bdb_clear_dead_env() found (sqlnb/sqlnb_bdb_recover.h)
ENV_HEALTHY, ENV_CLEARED, ENV_SHARED_DEAD, ENV_OPEN_HERE, ENV_BUSY = range(5)
_used: "weakref.WeakSet" = weakref.WeakSet()  # Connections that have run (or are running) a statement


def _recover_abandoned(mod, con, key: str) -> int:
    """Have BerkeleyDB SQL recover ``key``'s environment if the processes registered in it all died.

    A process killed while it had the database open (SIGKILL, OOM killer, a
    crash) stays listed in the environment's DB_REGISTER file. The next
    BerkeleyDB SQL open notices and tries "failchk", which attaches to the
    shared regions the dead process left; if that process died holding the
    environment region's mutex, the open spins forever (libdb 5.3.28), and so
    does joining the environment for the lock timeout. When only dead processes
    are registered, ``mod.clear_dead_env`` removes the region files (only those),
    and BerkeleyDB SQL's open then takes its full-recovery path: new regions,
    the log replayed, the dead writer's unfinished transaction rolled back,
    committed ones kept (see ``sqlnb/sqlnb_bdb_recover.c``). With a live
    process registered too, nothing is touched.

    Called with ``_lock`` held, before ``con`` runs its first statement. It is
    skipped while another connection of this process to the same database has
    run a statement (the environment is open here, and the C side must not open
    and close the registry file then: closing it would drop this process's own
    registration lock). ``_lock`` also keeps other threads from starting their
    first statement meanwhile. Returns one of the ``ENV_*`` codes.
    """
    home = env_dir(key)
    if not os.path.isdir(home):
        return ENV_HEALTHY
    for other, k in list(_live.items()):
        if other is not con and k == key and other in _used and other._raw is not None \
                and not other._raw.closed:
            return ENV_OPEN_HERE
    try:
        return mod.clear_dead_env(home)
    except OSError:
        return ENV_HEALTHY  # could not inspect it: leave it to BerkeleyDB, as before


def before_statement(con) -> None:
    """Refuse (BusyError) a statement BerkeleyDB would block on forever within this process."""
    if _forked_from is not None:
        raise _fork_error()
    key = _live.get(con)
    if key is None:
        return
    if con not in _watched:
        _watch_locks(con, key)
    _refuse_if_busy_here(key, con)


def _refuse_if_busy_here(key, con) -> None:
    """BusyError if a connection of this process other than ``con`` has a transaction open on ``key``."""
    with _lock:
        others = [c for c, k in _live.items() if k == key and c is not con]
    for other in others:
        raw = other._raw
        if raw is None or raw.closed:
            continue
        try:
            busy = not raw.autocommit
        except _errors.Error:
            continue
        if busy:
            raise _errors.make_error(
                5, f"database is locked: another connection in this process ({other!r}) has an open "
                   f"transaction on {key!r}. The bdb engine's locks would make this "
                   f"{'statement' if con is not None else 'open'} wait "
                   f"until that transaction ends, which in one thread is forever: commit() or "
                   f"rollback() the other connection first (or open it with isolation_level=None)",
                cls=_errors.BusyError)


def retry_busy(con, fn, *args, statement=None):
    """``fn(*args)``, called again while it raises BusyError, until ``con``'s timeout has passed.

    For a prepare, a first step or a whole run of a statement: a lock refused
    after ``_LOCK_WAIT`` (see :func:`_watch_locks`) left nothing done, so it
    can be tried again, as SQLite's busy handler would; ``statement`` (when
    ``fn`` steps one) is prepared afresh, bindings kept, before each new try.
    Ctrl-C stops the loop.
    """
    deadline = None
    renew = False
    while True:
        try:
            if renew:
                statement.renew()
                renew = False
            return fn(*args)
        except (_errors.BusyError, _errors.LockedError):  # (BerkeleyDB SQL answers either)
            now = time.monotonic()
            if deadline is None:
                deadline = now + _lock_timeouts.get(con, 5.0)
            if now >= deadline:
                raise
            time.sleep(0.02)
            # a statement whose lock wait was refused keeps failing: prepare it afresh
            renew = renew or statement is not None


class BufferedRows:
    """A finished SELECT's rows, standing in for the RawStatement a Cursor would keep open.

    On bdb a stepped-but-unfinished statement holds table locks that block
    every other connection (and in one thread deadlocks it), so a Cursor
    fetches the whole result at execute() and finalizes the statement at once.
    """

    def __init__(self, st, first_row):
        self.sql = st.sql
        self._names = st.column_names()
        self._decltypes = st.decltypes()
        rows = [first_row]
        try:
            while True:
                chunk = st.fetchmany(4096)
                rows.extend(chunk)
                if len(chunk) < 4096:
                    break
        finally:
            st.finalize()
        self._rows = rows
        self._pos = 1  # the first row was already handed to the cursor
        self._current = first_row
        self.done = len(rows) == 1
        self.finalized = False
        self.column_count = len(self._names)
        self.readonly = True

    def column_names(self):
        return list(self._names)

    def decltypes(self):
        return list(self._decltypes)

    def step(self):
        if self._pos < len(self._rows):
            self._current = self._rows[self._pos]
            self._pos += 1
            return True
        self.done = True
        return False

    def row(self):
        return self._current

    def fetchmany(self, size):
        out = self._rows[self._pos:self._pos + size]
        self._pos += len(out)
        if self._pos >= len(self._rows):
            self.done = True
        return out

    def remaining(self):
        """The rows not handed out yet (for the columnar fetchers)."""
        return self._rows[self._pos:]

    def finalize(self):
        self._rows = []
        self._pos = 0
        self.finalized = True


# ---------------------------------------------------------------------------
# fork: BerkeleyDB environments are not fork-safe
# ---------------------------------------------------------------------------
_forked_from: int | None = None   # parent pid, set in a child forked with bdb connections open


def _fork_error():
    return _errors.EngineUnavailableError(
        f"the bdb engine cannot be used in this process: it was forked from process {_forked_from} "
        f"while BerkeleyDB SQL connections were open there, and a BerkeleyDB environment is not "
        f"fork-safe (the child would corrupt the parent's lock table). Open bdb connections in the "
        f"child only when it was started with multiprocessing's 'spawn' or 'forkserver' method, "
        f"or close every bdb connection before forking")


class _ForkedRaw:
    """Stands in, in a forked child, for a bdb connection that belongs to the parent."""

    def __init__(self, raw):
        self._closed = False
        self.timeout = getattr(raw, "timeout", 0.0)
        self.policy = None

    @property
    def closed(self):
        return self._closed

    def close(self):
        self._closed = True  # never sqlite3_close: the handle is the parent's

    def __getattr__(self, name):
        raise _fork_error()


def _after_fork_child() -> None:
    global _forked_from
    with _lock:
        inherited = [c for c in list(_live) if c._raw is not None and not c._raw.closed]
    if not inherited:
        return
    _forked_from = os.getppid()
    for con in inherited:
        raw = con._raw
        forget = getattr(raw, "_forget", None)
        if forget is not None:
            forget()
        else:  # an older core module: keep it alive forever rather than close the parent's handle
            _leaked.append(raw)
        con._raw = _ForkedRaw(raw)


_leaked: list = []
_setup_done = False


def check_fork_safe() -> None:
    """Raise if this process may not use the bdb engine (a child forked with bdb connections open)."""
    if _forked_from is not None:
        raise _fork_error()


def setup(module) -> None:
    """Called once when the bdb engine's module is first loaded (process-wide safety settings)."""
    global CORE_VERSION, _setup_done
    version = module.sqlite_version()
    if version != module.HEADER_VERSION or getattr(module, "FLAVOUR", "bdb") != "bdb":
        raise ImportError(f"sqlnb bdb engine: module reports SQLite {version} / flavour "
                          f"{getattr(module, 'FLAVOUR', '?')}, expected BerkeleyDB SQL "
                          f"{module.HEADER_VERSION}")
    CORE_VERSION = version
    if not _setup_done and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_child)
    _setup_done = True
