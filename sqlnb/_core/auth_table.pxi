# AuthTable, a policy compiled to C arrays, and install_policy (included by
# sqlnb/_fast.pyx after auth.pxi). The policy object (sqlnb.authorizer.Policy) is passed
# in: the core reads its c_spec(), needs_verify, check_program and explain_refusal and
# imports nothing of the policy layer.

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
