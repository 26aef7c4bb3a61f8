# The library this flavour runs (included by sqlnb/_fast.pyx): facts the engines
# report, and the checks that refuse to import a mis-bound build.

FLAVOUR = (<bytes>SQLNB_FLAVOUR_NAME).decode()
HEADER_VERSION = (<bytes>SQLITE_VERSION).decode()
HAVE_URI = bool(SQLNB_HAVE_URI)
HAVE_LSM1 = bool(SQLNB_HAVE_LSM1)
HAVE_ERROR_OFFSET = bool(SQLNB_HAVE_ERROR_OFFSET)
HAVE_DQS_CONFIG = bool(SQLNB_HAVE_DQS_CONFIG)   # per-connection double-quoted-string switch (3.29+)


def sqlite_version():
    """The version of the SQLite core this module runs (``sqlite3_libversion``)."""
    return (<bytes>sqlite3_libversion()).decode()


def threadsafe():
    """``sqlite3_threadsafe()``: 1 for our build (SQLITE_THREADSAFE=1)."""
    return sqlite3_threadsafe()


def compile_options():
    """The options the SQLite core was compiled with (``sqlite3_compileoption_get``)."""
    cdef int i = 0
    cdef const char *opt
    out = []
    while True:
        opt = sqlite3_compileoption_get(i)
        if opt == NULL:
            break
        out.append((<bytes>opt).decode())
        i += 1
    return out


def complete_statement(str sql):
    """True if ``sql`` ends a complete statement (SQLite's own tokenizer)."""
    return bool(sqlite3_complete(sql.encode("utf-8", "surrogateescape")))


# The module must run the library its header describes: if another SQLite
# were interposed (symbols not hidden, or a global libsqlite3), stop here.
if sqlite_version() != HEADER_VERSION:
    raise ImportError(
        f"sqlnb {FLAVOUR} engine: linked SQLite library is {sqlite_version()} "
        f"but it was compiled against {HEADER_VERSION}; refusing to run a mis-bound library")

if sqlnb_register_builtin_extensions() != SQLITE_OK:
    raise ImportError("sqlnb: could not register the built-in lsm1 extension")


# the generated codes (sqlnb/_consts.py) must be sqlite3.h's
if any(ours != theirs for ours, theirs in _HEADER_PAIRS):
    raise ImportError("sqlnb: sqlnb/_consts.py disagrees with sqlite3.h (action or storage class codes)")
