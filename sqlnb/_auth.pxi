# The authorizer: read-only modes and table/column policies compiled to a C table
# (included by _fast.pyx, so it sees RawConnection's C fields).
#
# sqlnb.authorizer.Policy describes a mode and its policies in Python; ``install_policy``
# compiles it into an AuthTable (plain C arrays: a rule per action code, a PRAGMA
# allow-list, denied/allowed/masked name patterns) and registers ``_auth_cb`` with
# sqlite3_set_authorizer. The callback is ``noexcept nogil`` and makes no Python call
# unless the user supplied a Python authorizer (which then runs after the built-in
# checks, can only tighten them, and fails closed).
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.ref cimport PyObject
from posix.time cimport CLOCK_THREAD_CPUTIME_ID
from libc.string cimport strcmp


cdef double _cpu_now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef enum:
    SQLNB_DBCONFIG_DEFENSIVE = 1010   # sqlite3.h 3.26+ (BerkeleyDB's 3.7.6.2 core answers SQLITE_ERROR)

cdef enum:
    AUTH_NACTIONS = 64          # action codes 0..63 have a rule; higher ones get unknown_rule
    AUTH_FIELD = 96             # bytes kept of each string of a refusal

# rules (the values of sqlnb.authorizer.Rule)
cdef enum:
    RULE_ALLOW = 0
    RULE_REFUSE = 1             # the mode refuses the action
    RULE_TEMP_ONLY = 2          # allowed only on the temp database (ro-scratch)
    RULE_PRAGMA = 3             # only the read-only PRAGMA allow-list
    RULE_FUNCTION = 4           # every function except load_extension (unless allowed)
    RULE_WRITE = 5              # INSERT/UPDATE/DELETE in the ro modes: temp (ro-scratch) or a
                                # virtual table's own statement on its shadow tables

# why an action was refused (the values of sqlnb.authorizer.Why)
cdef enum:
    WHY_NONE = 0
    WHY_MODE = 1
    WHY_PRAGMA = 2
    WHY_LOADEXT = 3
    WHY_DENIED = 4
    WHY_NOT_ALLOWED = 5
    WHY_USER = 6
    WHY_FUNCTION = 7
    WHY_SCHEMA = 8
    WHY_ATTACH = 9
    WHY_HIDDEN = 10
    WHY_REPREPARE = 12          # SQLite recompiling a stepping statement (schema changed): unchecked


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
    from sqlnb.authorizer import first_keyword
    sql = data[start:end].decode("utf-8", "replace")
    kw = first_keyword(sql) or "statement"
    exc = _errors.make_error(
        SQLITE_AUTH, f"mode {t.mode!r} refused {kw} (the statement passed no authorizer check when prepared)",
        cls=_errors.ReadOnlyError, sql=sql)
    exc.mode = t.mode
    exc.action = kw
    exc.action_code = -1
    exc.target = ""
    exc.reason = "unchecked"
    return exc


cdef class AuthTable:
    """A compiled policy: the C data ``_auth_cb`` reads. Built by ``install_policy``."""
    cdef auth_state st
    cdef list _keep           # bytes objects the C pointers point into
    cdef readonly object user  # the user's Python authorizer, or None
    cdef readonly str mode
    cdef bint verify           # check each prepared statement's program (Policy.check_program)
    cdef object checker        # the policy's check_program, bound when installed
    cdef bint compiled
    cdef readonly bint defensive  # SQLITE_DBCONFIG_DEFENSIVE is on (3.26+ cores)

    def __cinit__(self):
        self._keep = []
        self.compiled = False
        self.verify = False
        self.st.pragmas = NULL
        self.st.schema_pragmas = NULL
        self.st.hidden = NULL
        self.st.denied_functions = NULL
        self.st.denied = NULL
        self.st.allowed = NULL
        self.st.masked = NULL
        self.st.shadow = NULL
        self.st.free_tables = NULL
        self.st.py_authorizer = NULL
        self.st.owner = NULL
        self.st.quiet = 0

    def __dealloc__(self):
        PyMem_Free(self.st.pragmas)
        PyMem_Free(<void*>self.st.denied_functions)
        PyMem_Free(self.st.denied)
        PyMem_Free(self.st.allowed)
        PyMem_Free(self.st.masked)
        PyMem_Free(self.st.hidden)
        PyMem_Free(self.st.schema_pragmas)
        PyMem_Free(self.st.shadow)
        PyMem_Free(<void*>self.st.free_tables)

    cdef const char *_c(self, s) except? NULL:
        if s is None:
            return NULL
        b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
        if b"\0" in b:
            raise ValueError(f"name {s!r} contains a NUL character")
        self._keep.append(b)
        return <const char*>(<bytes>b)

    cdef auth_name *_names(self, entries, int *count) except? NULL:
        cdef int i, n = len(entries)
        cdef auth_name *arr
        count[0] = n
        if n == 0:
            return NULL
        arr = <auth_name*>PyMem_Malloc(n * sizeof(auth_name))
        if arr == NULL:
            raise MemoryError()
        try:
            for i, (d, t, c) in enumerate(entries):
                arr[i].db = self._c(d)
                arr[i].table = self._c(t)
                arr[i].column = self._c(c)
        except BaseException:
            PyMem_Free(arr)
            raise
        return arr

    cdef const char **_strings(self, names, int *count) except? NULL:
        cdef int i, n = len(names)
        cdef const char **arr
        count[0] = n
        if n == 0:
            return NULL
        arr = <const char**>PyMem_Malloc(n * sizeof(const char*))
        if arr == NULL:
            raise MemoryError()
        try:
            for i, s in enumerate(names):
                arr[i] = self._c(s)
        except BaseException:
            PyMem_Free(<void*>arr)
            raise
        return arr

    cdef auth_pragma *_pragmas(self, items, int *count) except? NULL:
        cdef int i, n
        cdef auth_pragma *arr
        items = list(items.items()) if isinstance(items, dict) else list(items)
        n = len(items)
        count[0] = n
        if n == 0:
            return NULL
        arr = <auth_pragma*>PyMem_Malloc(n * sizeof(auth_pragma))
        if arr == NULL:
            raise MemoryError()
        try:
            for i, (name, any_arg) in enumerate(items):
                arr[i].name = self._c(name)
                arr[i].any_arg = 1 if any_arg else 0
        except BaseException:
            PyMem_Free(arr)
            raise
        return arr

    cdef int _compile(self, spec) except -1:
        """Fill the C table from ``spec`` (``sqlnb.authorizer.Policy.c_spec()``), once.

        Not reachable from Python: a compiled table is never recompiled (a policy is
        frozen when the connection opens)."""
        cdef int i
        if self.compiled:
            raise _errors.ProgrammingError("an authorizer table is compiled once")
        self.compiled = True
        rules = spec["rules"]
        if len(rules) > AUTH_NACTIONS:
            raise ValueError("too many action rules")
        for i in range(AUTH_NACTIONS):
            self.st.rule[i] = rules[i] if i < len(rules) else spec["unknown_rule"]
        self.st.unknown_rule = spec["unknown_rule"]
        self.st.allow_loadext = 1 if spec["allow_load_extension"] else 0
        self.st.readonly_mode = 1 if spec["readonly"] else 0
        self.st.scratch = 1 if spec["scratch"] else 0
        self.mode = spec["mode"]
        self.st.pragmas = self._pragmas(spec["pragmas"], &self.st.npragmas)
        self.st.schema_pragmas = self._pragmas(spec.get("schema_pragmas", ()), &self.st.nschema_pragmas)
        self.st.denied_functions = self._strings(spec["denied_functions"], &self.st.ndenied_functions)
        self.st.free_tables = self._strings(spec["free_tables"], &self.st.nfree_tables)
        self.st.denied = self._names(tuple(spec["deny"]), &self.st.ndenied)
        self.st.hidden = self._names(tuple(spec.get("hidden", ())), &self.st.nhidden)
        self.st.masked = self._names(tuple(spec["mask"]), &self.st.nmasked)
        self.st.shadow = self._names(tuple(spec["shadow"]), &self.st.nshadow)
        allow = spec["allow"]
        self.st.has_allow_list = allow is not None
        self.st.allowed = self._names(tuple(allow or ()), &self.st.nallowed)
        self.st.schema_guard = 1 if (self.st.ndenied or self.st.nmasked or self.st.has_allow_list) else 0
        self.user = spec["authorizer"]
        self.st.py_authorizer = <PyObject*>self.user if self.user is not None else NULL
        return 0

    def decide(self, int action, a1=None, a2=None, db=None, inner=None, bint first=True):
        """The built-in decision for one action, as ``(result, why)`` (tests compare it with Python's)."""
        cdef int why = 0
        cdef int rc
        b1 = a1.encode() if a1 is not None else None
        b2 = a2.encode() if a2 is not None else None
        bd = db.encode() if db is not None else None
        bi = inner.encode() if inner is not None else None
        rc = _auth_decide(&self.st, action, <const char*>b1 if b1 is not None else NULL,
                          <const char*>b2 if b2 is not None else NULL,
                          <const char*>bd if bd is not None else NULL,
                          <const char*>bi if bi is not None else NULL, first, &why)
        return rc, why

    def take_refusal(self):
        """The first refusal since the last prepare/step as ``(action, a1, a2, db, inner, why)``; clears it."""
        cdef auth_refusal *r = &self.st.refusal
        if not r.set:
            return None
        r.set = 0
        return (r.action,
                r.a1.decode("utf-8", "replace") if r.has_a1 else None,
                r.a2.decode("utf-8", "replace") if r.has_a2 else None,
                r.db.decode("utf-8", "replace") if r.has_db else None,
                r.inner.decode("utf-8", "replace") if r.has_inner else None,
                r.why)

    def time_callback(self, trace, int repeat=1000):
        """CPU seconds per call of the C callback over ``trace`` (``(action, a1, a2, db, inner)``
        tuples, e.g. what a statement's prepare sends), run ``repeat`` times without the GIL.

        For benchmarks/bench_authorizer.py: it isolates the callback's own cost from
        the noise of preparing statements on a shared machine. Refusal records and the
        call counter are restored afterwards.
        """
        cdef Py_ssize_t i, n = len(trace)
        cdef int r, k
        cdef double t0, t1
        cdef long long calls = self.st.calls
        cdef auth_refusal saved = self.st.refusal
        if n == 0 or repeat <= 0:
            return 0.0
        if self.st.py_authorizer != NULL:
            raise ValueError("time_callback measures the C table alone (no Python authorizer)")
        keep = [tuple(x.encode() if isinstance(x, str) else None for x in row[1:]) for row in trace]
        cdef int *acts = <int*>PyMem_Malloc(n * sizeof(int))
        cdef const char **args = <const char**>PyMem_Malloc(4 * n * sizeof(const char*))
        if acts == NULL or args == NULL:
            PyMem_Free(acts)
            PyMem_Free(<void*>args)
            raise MemoryError()
        try:
            for i in range(n):
                acts[i] = trace[i][0]
                for k in range(4):
                    b = keep[i][k]
                    args[4 * i + k] = <const char*>b if b is not None else NULL
            with nogil:
                t0 = _cpu_now()
                for r in range(repeat):
                    self.st.since_begin = 0
                    for i in range(n):
                        _auth_cb(&self.st, acts[i], args[4 * i], args[4 * i + 1], args[4 * i + 2],
                                 args[4 * i + 3])
                t1 = _cpu_now()
        finally:
            PyMem_Free(acts)
            PyMem_Free(<void*>args)
            self.st.calls = calls
            self.st.refusal = saved
        return (t1 - t0) / (repeat * n)

    @property
    def calls(self):
        """How many times SQLite called the authorizer on this connection."""
        return self.st.calls


#: virtual-table modules a connection with a table policy loses: they read pages, not tables,
#: so neither the authorizer's table names nor the program check's root pages cover them
_PAGE_MODULES = ("dbstat", "sqlite_dbpage")


cdef int _drop_page_modules(RawConnection raw) except -1:
    """sqlite3_drop_modules keeping every module but dbstat and sqlite_dbpage (3.30+ cores;
    older ones have neither module built in here, and the authorizer refuses them by name)."""
    cdef const char **keep
    cdef Py_ssize_t i
    cdef int rc
    if not SQLNB_HAVE_DROP_MODULES:
        return 0
    st, _ = raw.prepare(b"PRAGMA module_list", 0)
    names = []
    if st is not None:
        try:
            names = [r[0].encode("utf-8") for r in st.fetchmany(1 << 20)
                     if r[0].lower() not in _PAGE_MODULES]
        finally:
            st.finalize()
    if not names:
        return 0    # (no module list to keep from: dropping would take every module with it)
    keep = <const char**>PyMem_Malloc((len(names) + 1) * sizeof(const char*))
    if keep == NULL:
        raise MemoryError()
    try:
        for i in range(len(names)):
            keep[i] = <const char*>(<bytes>names[i])
        keep[len(names)] = NULL
        rc = sqlite3_drop_modules(raw.db, keep)
    finally:
        PyMem_Free(<void*>keep)
    if rc != SQLITE_OK:
        check_rc(rc, raw.db)
    return 0


def install_policy(RawConnection raw, spec):
    """Compile a policy and install it as ``raw``'s authorizer; returns the AuthTable.

    ``spec``: a ``sqlnb.authorizer.Policy`` (it becomes ``raw.policy``, read-only, and
    its program check runs on every prepared statement) or its ``c_spec()`` dict (the
    C table alone; for tests). A connection gets one policy, at open: installing a
    second one is refused so no code path can loosen a mode afterwards. With a
    read-only mode or a table policy, SQLITE_DBCONFIG_DEFENSIVE is switched on where
    the core has it (3.26+; not BerkeleyDB's 3.7.6.2 core): shadow tables read-only to
    SQL, no writable_schema, no schema-version writes.
    """
    cdef AuthTable table
    cdef int rc
    cdef int on = 0
    raw._check()
    if raw._auth is not None or raw.policy is not None:
        raise _errors.ProgrammingError(
            "this connection already has a mode and policy; they are chosen when it is opened "
            "and cannot be changed")
    policy = None
    if not isinstance(spec, dict):
        policy = spec
        spec = policy.c_spec()
    table = AuthTable.__new__(AuthTable)
    table._compile(spec)
    table.st.owner = <void*>raw
    if policy is not None:
        table.verify = bool(policy.needs_verify)
        table.checker = policy.check_program
        table.st.guard_reprepare = table.verify
    if table.st.allow_loadext:
        rc = sqlite3_enable_load_extension(raw.db, 1)
        if rc != SQLITE_OK:
            check_rc(rc, raw.db)
    if table.st.schema_guard:
        _drop_page_modules(raw)
    if table.st.readonly_mode or table.st.schema_guard:
        sqlite3_db_config(raw.db, SQLNB_DBCONFIG_DEFENSIVE, <int>1, &on)  # an older core: no-op
    table.defensive = on == 1
    raw._auth = table
    raw._ast = <void*>&table.st
    rc = sqlite3_set_authorizer(raw.db, _auth_cb, <void*>&table.st)
    if rc != SQLITE_OK:
        raw._auth = None
        raw._ast = NULL
        check_rc(rc, raw.db)
    if policy is not None:
        raw.policy = policy
    return table


# --- the second check: each prepared statement's program ---------------------------
cdef enum:
    _NVERIFY_OPS = 33
cdef const char *_VERIFY_OPS[33]
_VERIFY_OPS[:] = [b"RowData", b"RowCell", b"Transaction", b"VerifyCookie", b"OpenRead", b"OpenWrite", b"ReopenIdx",
                  b"OpenDup", b"Column", b"Destroy", b"Clear", b"CreateBtree", b"CreateTable",
                  b"CreateIndex", b"SetCookie", b"VUpdate", b"VCreate", b"VDestroy", b"Vacuum",
                  b"IncrVacuum", b"SeekGE", b"SeekGT", b"SeekLE", b"SeekLT", b"IdxGE", b"IdxGT",
                  b"IdxLE", b"IdxLT", b"Found", b"NotFound", b"NoConflict", b"SeekScan",
                  b"IsUnique"]


cdef bint _verify_op(const char *op) noexcept nogil:
    cdef int i
    if op == NULL:
        return False
    for i in range(_NVERIFY_OPS):
        if strcmp(op, _VERIFY_OPS[i]) == 0:
            return True
    return False


cdef class _SchemaQuery:
    """Runs the schema reads of Policy.snapshot_btrees on the connection (only those)."""
    cdef RawConnection conn

    def __call__(self, str sql):
        cdef RawConnection conn = self.conn
        if not (sql.startswith("PRAGMA main.")
                or sql.startswith("SELECT type, name, tbl_name, rootpage, sql FROM main.sqlite_master ")):
            raise ValueError("only the policy's schema reads run here")
        cdef AuthTable t = <AuthTable>conn._auth if conn._auth is not None else None
        conn._verifying = True
        if t is not None:
            t.st.quiet = 1  # the policy's own schema reads: the user's authorizer does not rule on them
        try:
            st, _ = conn.prepare(sql.encode("utf-8"), 0)
            if st is None:
                return []
            try:
                return st.fetchmany(1 << 30)
            finally:
                st.finalize()
        finally:
            conn._verifying = False
            if t is not None:
                t.st.quiet = 0


cdef object _auth_defensive_refusal(RawConnection conn, bytes sql, Py_ssize_t offset):
    """Which wall refused a statement that failed to prepare with SQLITE_ERROR under a
    read-only mode with SQLITE_DBCONFIG_DEFENSIVE on ("table x may not be modified": a shadow
    table)? Prepare it once more with DEFENSIVE off (nothing runs) and let the program check
    name the write. Returns the ReadOnlyError, or None (the original error stands)."""
    cdef AuthTable t
    cdef sqlite3_stmt *st = NULL
    cdef const char *tail = NULL
    cdef int rc, off = 1, on = 0
    cdef void *prev
    if conn._auth is None:
        return None
    t = <AuthTable>conn._auth
    if not (t.defensive and t.st.readonly_mode and t.verify):
        return None
    exc = None
    sqlite3_db_config(conn.db, SQLNB_DBCONFIG_DEFENSIVE, <int>0, &off)
    try:
        _auth_begin(conn)
        prev = _auth_enter_prepare(conn)
        try:
            rc = sqlite3_prepare_v2(conn.db, PyBytes_AS_STRING(sql) + offset,
                                    <int>(PyBytes_GET_SIZE(sql) - offset), &st, &tail)
        finally:
            _auth_leave_prepare(conn, prev)
        conn._pending = None
        if rc != SQLITE_OK or st == NULL:
            if rc != SQLITE_OK:
                exc = conn._policy_error(rc, sql[offset:].decode("utf-8", "replace"))
        else:
            exc = _auth_verify(conn, st, sql, offset, (tail - PyBytes_AS_STRING(sql)) if tail != NULL
                               else PyBytes_GET_SIZE(sql))
    finally:
        if st != NULL:
            sqlite3_finalize(st)
        sqlite3_db_config(conn.db, SQLNB_DBCONFIG_DEFENSIVE, <int>1, &on)
        t.take_refusal()
        conn._pending = None
    if isinstance(exc, _errors.ReadOnlyError):
        return exc
    return None


cdef object _auth_verify(RawConnection conn, sqlite3_stmt *user, bytes data, Py_ssize_t start,
                         Py_ssize_t end):
    """Check the program of a statement just prepared (``EXPLAIN`` of its text, the opcodes
    in VERIFY_OPCODES) with ``Policy.check_program``. Returns the exception to raise, or None.
    Independent of the authorizer: it sees what SQLite compiled, USING/NATURAL joins too."""
    cdef AuthTable t
    cdef sqlite3_stmt *st = NULL
    cdef const char *op
    cdef int rc
    cdef bytes text
    cdef _SchemaQuery q
    cdef void *prev
    if conn._auth is None or conn._verifying:
        return None
    t = <AuthTable>conn._auth
    if not t.verify or sqlite3_stmt_isexplain(user):
        return None
    text = b"EXPLAIN " + data[start:end]
    t.st.quiet = 1      # the user's authorizer already ruled on this statement
    prev = _auth_enter_prepare(conn)
    try:
        rc = sqlite3_prepare_v2(conn.db, text, <int>len(text), &st, NULL)
    finally:
        t.st.quiet = 0
        _auth_leave_prepare(conn, prev)
    sql = data[start:end].decode("utf-8", "replace")
    if rc != SQLITE_OK or st == NULL:
        if st != NULL:
            sqlite3_finalize(st)
        conn._pending = None
        from sqlnb.authorizer import first_keyword
        if first_keyword(sql) == "EXPLAIN":  # (a core without sqlite3_stmt_isexplain)
            return None
        exc = _errors.make_error(SQLITE_AUTH, "policy refused the statement: its program could not be "
                                 "checked (EXPLAIN failed)", cls=_errors.PolicyError, sql=sql)
        exc.reason = "verify"
        return exc
    ops = []
    frame = -1          # each (trigger) sub-program's listing starts again at address 0
    try:
        while True:
            rc = sqlite3_step(st)
            if rc != SQLITE_ROW:
                break
            if sqlite3_column_int64(st, 0) == 0:
                frame += 1
            op = <const char*>sqlite3_column_text(st, 1)
            if _verify_op(op):
                ops.append((op.decode(), sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                            sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 6), frame))
    finally:
        sqlite3_finalize(st)
    if rc != SQLITE_DONE:
        exc = _errors.make_error(SQLITE_AUTH, "policy refused the statement: its program could not be "
                                 "read", cls=_errors.PolicyError, sql=sql)
        exc.reason = "verify"
        return exc
    q = _SchemaQuery.__new__(_SchemaQuery)
    q.conn = conn
    return t.checker(ops, q, sql)
