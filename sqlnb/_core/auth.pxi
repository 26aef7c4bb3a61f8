# The authorizer: read-only modes and table/column policies compiled to a C table
# (included by _fast.pyx, so it sees RawConnection's C fields).
#
# sqlnb.authorizer.Policy describes a mode and its policies in Python; ``install_policy``
# compiles it into an AuthTable (plain C arrays: a rule per action code, a PRAGMA
# allow-list, denied/allowed/masked name patterns) and registers ``_auth_cb`` with
# sqlite3_set_authorizer. The callback is ``noexcept nogil`` and makes no Python call
# unless the user supplied a Python authorizer (which then runs after the built-in
# checks, can only tighten them, and fails closed).


cdef double _cpu_now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef enum:
    SQLNB_DBCONFIG_DEFENSIVE = 1010   # sqlite3.h 3.26+ (BerkeleyDB's 3.7.6.2 core answers SQLITE_ERROR)

cdef enum:
    AUTH_NACTIONS = 64          # action codes 0..63 have a rule; higher ones get unknown_rule
    AUTH_FIELD = 96             # bytes kept of each string of a refusal

# RULE_* (how a mode treats an action) and WHY_* (why it refused) are generated from
# sqlnb._consts.Rule / Why into consts.pxi.


cdef struct auth_name:          # a (database, table, column) pattern; NULL database/column = any
    const char *db
    const char *table
    const char *column


cdef struct auth_pragma:
    const char *name
    int any_arg                 # 1: the argument names an object (table_info(t)); 0: only the bare read form


cdef struct auth_refusal:
    int set
    int action
    int why
    char a1[AUTH_FIELD]
    char a2[AUTH_FIELD]
    char db[AUTH_FIELD]
    char inner[AUTH_FIELD]
    int has_a1, has_a2, has_db, has_inner


cdef struct auth_state:
    unsigned char rule[AUTH_NACTIONS]
    int unknown_rule
    int allow_loadext
    int readonly_mode            # ro / ro-scratch: refuses statements that passed no check
    int scratch                  # ro-scratch: writes to the temp database are allowed
    auth_pragma *pragmas
    int npragmas
    const char **denied_functions
    int ndenied_functions
    auth_name *denied
    int ndenied
    auth_name *allowed
    int nallowed
    int has_allow_list
    auth_name *masked
    int nmasked
    auth_name *hidden            # dbstat, sqlite_dbpage: refused under table policies
    int nhidden
    auth_pragma *schema_pragmas  # writable_schema, schema_version=: refused under table policies
    int nschema_pragmas
    int schema_guard             # a table policy is set: no schema rewrite, no ATTACH of a file
    auth_name *shadow            # shadow tables of the virtual tables (found at install)
    int nshadow
    const char **free_tables     # tables every policy lets through (the schema tables)
    int nfree_tables
    PyObject *py_authorizer     # borrowed from AuthTable.user (NULL: none)
    void *owner                  # the RawConnection (borrowed; it owns the AuthTable)
    auth_refusal refusal
    long long calls
    long long since_begin        # calls since the last prepare/step began (0: the next is the first)
    int quiet                    # the program check's EXPLAIN is being prepared: no user authorizer
    int guard_reprepare          # the program check is on: a re-prepare while stepping is refused
    sqlite3_stmt *stepping       # the statement our code is stepping (NULL: none, or our own prepare)


cdef inline char _fold(char c) noexcept nogil:
    if c >= b'A' and c <= b'Z':
        return c + 32
    return c


cdef bint _ieq(const char *a, const char *b) noexcept nogil:
    """ASCII case-insensitive equality (SQLite's rule for identifiers); NULL equals only NULL."""
    if a == NULL or b == NULL:
        return a == b
    while a[0] != 0 and b[0] != 0:
        if _fold(a[0]) != _fold(b[0]):
            return False
        a += 1
        b += 1
    return a[0] == b[0]


cdef bint _name_matches(const auth_name *p, const char *db, const char *table,
                        const char *column) noexcept nogil:
    if table == NULL or not _ieq(p.table, table):
        return False
    # a NULL database (SQLite's READ for count(*)) matches any: deny lists stay safe
    if p.db != NULL and db != NULL and not _ieq(p.db, db):
        return False
    if p.column != NULL and (column == NULL or not _ieq(p.column, column)):
        return False
    return True


cdef bint _any_matches(const auth_name *arr, int n, const char *db, const char *table,
                       const char *column) noexcept nogil:
    cdef int i
    for i in range(n):
        if _name_matches(&arr[i], db, table, column):
            return True
    return False


cdef bint _any_table_matches(const auth_name *arr, int n, const char *db, const char *table) noexcept nogil:
    """A pattern names this table (whatever its column)."""
    cdef int i
    for i in range(n):
        if table != NULL and _ieq(arr[i].table, table) and (
                arr[i].db == NULL or db == NULL or _ieq(arr[i].db, db)):
            return True
    return False


cdef bint _in_list(const char **arr, int n, const char *name) noexcept nogil:
    cdef int i
    for i in range(n):
        if _ieq(arr[i], name):
            return True
    return False


cdef bint _is_temp(const char *db) noexcept nogil:
    return db != NULL and _ieq(db, "temp")


cdef bint _pragma_ok(const auth_state *st, const char *name, const char *arg) noexcept nogil:
    cdef int i
    for i in range(st.npragmas):
        if _ieq(st.pragmas[i].name, name):
            return st.pragmas[i].any_arg or arg == NULL
    return False


cdef bint _schema_pragma(const auth_state *st, const char *name, const char *arg) noexcept nogil:
    """True for a PRAGMA that would let SQL rewrite the schema (refused under table policies)."""
    cdef int i
    for i in range(st.nschema_pragmas):
        if _ieq(st.schema_pragmas[i].name, name):
            return st.schema_pragmas[i].any_arg or arg != NULL
    return False


cdef const char *_table_of(int action, const char *a1, const char *a2) noexcept nogil:
    """The table an action touches, or NULL when it names none."""
    if (action == SQLITE_READ or action == SQLITE_INSERT or action == SQLITE_UPDATE
            or action == SQLITE_DELETE or action == SQLITE_CREATE_TABLE
            or action == SQLITE_CREATE_TEMP_TABLE or action == SQLITE_DROP_TABLE
            or action == SQLITE_DROP_TEMP_TABLE or action == SQLITE_ANALYZE
            or action == SQLITE_CREATE_VTABLE or action == SQLITE_DROP_VTABLE):
        return a1
    if (action == SQLITE_CREATE_INDEX or action == SQLITE_CREATE_TEMP_INDEX
            or action == SQLITE_DROP_INDEX or action == SQLITE_DROP_TEMP_INDEX
            or action == SQLITE_CREATE_TRIGGER or action == SQLITE_CREATE_TEMP_TRIGGER
            or action == SQLITE_DROP_TRIGGER or action == SQLITE_DROP_TEMP_TRIGGER
            or action == SQLITE_ALTER_TABLE):
        return a2
    return NULL


cdef int _auth_decide(const auth_state *st, int action, const char *a1, const char *a2,
                      const char *db, const char *inner, int first, int *why) noexcept nogil:
    """The built-in decision: SQLITE_OK, SQLITE_DENY or SQLITE_IGNORE, and why (for a DENY).

    ``first``: this is the first action of the statement being prepared (the user's
    INSERT/DELETE always is); ``inner``: the trigger or view the action comes from.
    """
    cdef int rule = st.rule[action] if 0 <= action < AUTH_NACTIONS else st.unknown_rule
    cdef const char *table
    cdef const char *tdb = db
    why[0] = WHY_NONE
    if rule == RULE_REFUSE:
        why[0] = WHY_MODE
        return SQLITE_DENY
    elif rule == RULE_TEMP_ONLY:
        # ALTER TABLE names its database in the first argument
        if not _is_temp(a1 if action == SQLITE_ALTER_TABLE else db):
            why[0] = WHY_MODE
            return SQLITE_DENY
    elif rule == RULE_WRITE:
        if st.scratch and _is_temp(db):
            pass
        elif (action != SQLITE_UPDATE and not first and inner == NULL
              and _any_matches(st.shadow, st.nshadow, db, a1, NULL)):
            pass    # a virtual table (R*Tree) preparing its own statements while it connects
        else:
            why[0] = WHY_MODE
            return SQLITE_DENY
    elif rule == RULE_PRAGMA:
        if not _pragma_ok(st, a1, a2):
            why[0] = WHY_PRAGMA
            return SQLITE_DENY
    elif rule == RULE_FUNCTION:
        if a2 != NULL and _ieq(a2, "load_extension") and not st.allow_loadext:
            why[0] = WHY_LOADEXT
            return SQLITE_DENY
        if a2 != NULL and _in_list(st.denied_functions, st.ndenied_functions, a2):
            why[0] = WHY_FUNCTION
            return SQLITE_DENY
    # table policies, on whatever the mode let through
    if not st.schema_guard:
        return SQLITE_OK
    if action == SQLITE_PRAGMA and _schema_pragma(st, a1, a2):
        why[0] = WHY_SCHEMA
        return SQLITE_DENY
    if action == SQLITE_ATTACH and (a1 == NULL or a1[0] != 0):  # a file or a computed name
        why[0] = WHY_ATTACH
        return SQLITE_DENY
    table = _table_of(action, a1, a2)
    if table == NULL:
        return SQLITE_OK
    if action == SQLITE_ALTER_TABLE:
        tdb = a1
    if st.ndenied and _any_matches(st.denied, st.ndenied, tdb, table, NULL):
        why[0] = WHY_DENIED
        return SQLITE_DENY
    if st.nhidden and _any_matches(st.hidden, st.nhidden, tdb, table, NULL):
        why[0] = WHY_HIDDEN
        return SQLITE_DENY
    if action == SQLITE_ALTER_TABLE and _any_table_matches(st.masked, st.nmasked, tdb, table):
        why[0] = WHY_SCHEMA     # renaming the table or the column would lift the mask
        return SQLITE_DENY
    if _in_list(st.free_tables, st.nfree_tables, table):
        return SQLITE_OK
    if (st.has_allow_list and not _is_temp(tdb)
            and not _any_matches(st.allowed, st.nallowed, tdb, table, NULL)):
        why[0] = WHY_NOT_ALLOWED
        return SQLITE_DENY
    if action == SQLITE_READ and st.nmasked and _any_matches(st.masked, st.nmasked, tdb, table, a2):
        return SQLITE_IGNORE
    return SQLITE_OK


cdef void _copy_field(char *dst, const char *src, int *has) noexcept nogil:
    cdef int i = 0
    has[0] = src != NULL
    if src != NULL:
        while src[i] != 0 and i < AUTH_FIELD - 1:
            dst[i] = src[i]
            i += 1
    dst[i] = 0


cdef void _record_refusal(auth_state *st, int action, const char *a1, const char *a2,
                          const char *db, const char *inner, int why) noexcept nogil:
    cdef auth_refusal *r = &st.refusal
    if r.set:           # keep the first refusal of a prepare: it is the one SQLite reports
        return
    r.set = 1
    r.action = action
    r.why = why
    _copy_field(r.a1, a1, &r.has_a1)
    _copy_field(r.a2, a2, &r.has_a2)
    _copy_field(r.db, db, &r.has_db)
    _copy_field(r.inner, inner, &r.has_inner)


cdef inline object _opt_str(const char *p):
    return None if p == NULL else p.decode("utf-8", "replace")


cdef int _auth_call_user(auth_state *st, int action, const char *a1, const char *a2,
                         const char *db, const char *inner) noexcept with gil:
    """Ask the user's Python authorizer; any exception or bad return denies (fail closed)."""
    cdef RawConnection conn = <RawConnection>st.owner
    try:
        r = (<object>st.py_authorizer)(action, _opt_str(a1), _opt_str(a2), _opt_str(db), _opt_str(inner))
        if type(r) is int and (r == SQLITE_OK or r == SQLITE_DENY or r == SQLITE_IGNORE):
            return r
        raise TypeError(
            f"the authorizer returned {r!r} for action {action} ({_opt_str(a1)!r}, {_opt_str(a2)!r}); "
            f"it must return sqlnb.authorizer.OK, DENY or IGNORE (the ints 0, 1, 2): denied")
    except BaseException as exc:
        if conn._pending is None:
            conn._pending = exc
        return SQLITE_DENY


cdef int _auth_cb(void *arg, int action, const char *a1, const char *a2, const char *db,
                  const char *inner) noexcept nogil:
    cdef auth_state *st = <auth_state*>arg
    cdef int why = WHY_NONE
    cdef int rc
    cdef int first = st.since_begin == 0
    st.calls += 1
    st.since_begin += 1
    if st.guard_reprepare and st.stepping != NULL and not sqlite3_stmt_busy(st.stepping):
        # Not our prepare, and the statement being stepped is not running: SQLite is compiling
        # it again after a schema change (sqlite3Reprepare), a program the check never saw.
        # (A virtual table's own statements are prepared while the statement runs: busy.)
        # The 3.7 core has no sqlite3_stmt_busy (always 0): there, a step's own schema reads
        # (its CREATE re-reading sqlite_master) pass, and everything else prepared during a step
        # is refused (a recompiled statement that reads only the schema reveals nothing).
        if not SQLNB_HAVE_STMT_BUSY and (action == SQLITE_SELECT or (
                action == SQLITE_READ and a1 != NULL
                and _in_list(st.free_tables, st.nfree_tables, a1))):
            return SQLITE_OK
        if st.refusal.why != WHY_REPREPARE:
            st.refusal.set = 0      # (the reason the step fails, whatever an earlier prepare left)
        _record_refusal(st, action, a1, a2, db, inner, WHY_REPREPARE)
        return SQLITE_DENY
    rc = _auth_decide(st, action, a1, a2, db, inner, first, &why)
    if rc == SQLITE_OK and st.py_authorizer != NULL and not st.quiet:
        rc = _auth_call_user(st, action, a1, a2, db, inner)
        if rc == SQLITE_DENY:
            why = WHY_USER
    if rc == SQLITE_DENY:
        _record_refusal(st, action, a1, a2, db, inner, why)
    return rc


cdef inline int _auth_step(void *ast, sqlite3_stmt *st) noexcept nogil:
    """sqlite3_step, telling the authorizer (``ast``: the connection's auth_state or NULL)
    which statement runs, so that a re-prepare of it inside the step is recognised."""
    cdef auth_state *a = <auth_state*>ast
    cdef sqlite3_stmt *prev
    cdef int rc
    if a == NULL:
        return sqlite3_step(st)
    prev = a.stepping
    a.stepping = st
    rc = sqlite3_step(st)
    a.stepping = prev
    return rc


cdef inline void *_auth_enter_prepare(RawConnection conn) noexcept:
    """Our own prepare: no statement of ours is stepping for its duration (returns the one that was)."""
    cdef auth_state *a = <auth_state*>conn._ast
    cdef void *prev
    if a == NULL:
        return NULL
    prev = <void*>a.stepping
    a.stepping = NULL
    return prev


cdef inline void _auth_leave_prepare(RawConnection conn, void *prev) noexcept:
    cdef auth_state *a = <auth_state*>conn._ast
    if a != NULL:
        a.stepping = <sqlite3_stmt*>prev


cdef bint _auth_took_reprepare(RawConnection conn) noexcept:
    """Did the last step fail because the authorizer refused SQLite's re-prepare? (Clears it.)"""
    cdef AuthTable t
    if conn._auth is None:
        return False
    t = <AuthTable>conn._auth
    if t.st.refusal.set and t.st.refusal.why == WHY_REPREPARE:
        t.st.refusal.set = 0
        return True
    return False


cdef inline void _auth_begin(RawConnection conn) noexcept:
    """Called before each prepare and step: forget the previous refusal, start counting."""
    cdef AuthTable t
    if conn._auth is not None:
        t = <AuthTable>conn._auth
        t.st.refusal.set = 0
        t.st.since_begin = 0


cdef object _auth_after_prepare(RawConnection conn, bytes data, Py_ssize_t start, Py_ssize_t end):
    """The second check of the ro modes: a statement that reached no authorizer check is refused.

    (BerkeleyDB's VACUUM is one: its core runs it without asking the authorizer.)
    Returns the exception to raise, or None.
    """
    cdef AuthTable t
    if conn._auth is None:
        return None
    t = <AuthTable>conn._auth
    if not t.st.readonly_mode or t.st.since_begin != 0:
        return None
    sql = data[start:end].decode("utf-8", "replace")
    kw = _sql.first_keyword(sql) or "statement"
    exc = _errors.make_error(
        SQLITE_AUTH, f"mode {t.mode!r} refused {kw} (the statement passed no authorizer check when prepared)",
        cls=_errors.ReadOnlyError, sql=sql)
    exc.mode = t.mode
    exc.action = kw
    exc.action_code = -1
    exc.target = ""
    exc.reason = "unchecked"
    return exc
