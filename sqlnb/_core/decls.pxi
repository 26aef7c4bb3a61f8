# The SQLite C API as sqlnb uses it (included by sqlnb/_fast.pyx): declarations only,
# names as in sqlite3.h. Everything comes through capi.h (beside this file), which
# picks the flavour's header (our amalgamation or BerkeleyDB's dbsql.h) and shims what
# an older core lacks. The BerkeleyDB-only C functions are declared in bdb_env.pxi.

cdef extern from "capi.h" nogil:
    ctypedef struct sqlite3
    ctypedef struct sqlite3_stmt
    ctypedef struct sqlite3_value
    ctypedef struct sqlite3_context
    ctypedef int64_t sqlite3_int64

    const char *SQLNB_FLAVOUR_NAME
    int SQLNB_HAVE_STMT_BUSY
    int SQLNB_HAVE_DROP_MODULES
    int SQLNB_HAVE_ERROR_OFFSET
    int SQLNB_HAVE_URI
    int SQLNB_HAVE_LSM1
    int SQLNB_HAVE_DQS_CONFIG
    int sqlnb_set_dqs(sqlite3 *db, int on)
    int sqlnb_close(sqlite3 *db)
    int sqlnb_register_builtin_extensions()

    const char *SQLITE_VERSION

    # result codes
    enum:
        SQLITE_OK
        SQLITE_ERROR
        SQLITE_INTERNAL
        SQLITE_PERM
        SQLITE_ABORT
        SQLITE_BUSY
        SQLITE_LOCKED
        SQLITE_NOMEM
        SQLITE_READONLY
        SQLITE_INTERRUPT
        SQLITE_IOERR
        SQLITE_CORRUPT
        SQLITE_NOTFOUND
        SQLITE_FULL
        SQLITE_CANTOPEN
        SQLITE_PROTOCOL
        SQLITE_EMPTY
        SQLITE_SCHEMA
        SQLITE_TOOBIG
        SQLITE_CONSTRAINT
        SQLITE_MISMATCH
        SQLITE_MISUSE
        SQLITE_NOLFS
        SQLITE_AUTH
        SQLITE_FORMAT
        SQLITE_RANGE
        SQLITE_NOTADB
        SQLITE_NOTICE
        SQLITE_WARNING
        SQLITE_ROW
        SQLITE_DONE

    # open flags
    enum:
        SQLITE_OPEN_READONLY
        SQLITE_OPEN_READWRITE
        SQLITE_OPEN_CREATE
        SQLITE_OPEN_URI
        SQLITE_OPEN_NOMUTEX
        SQLITE_OPEN_FULLMUTEX
        SQLITE_OPEN_MEMORY

    # fundamental types
    enum:
        SQLITE_INTEGER
        SQLITE_FLOAT
        SQLITE_TEXT
        SQLITE_BLOB
        SQLITE_NULL

    # authorizer return values and action codes
    enum:
        SQLITE_DENY
        SQLITE_IGNORE
        SQLITE_CREATE_INDEX
        SQLITE_CREATE_TABLE
        SQLITE_CREATE_TEMP_INDEX
        SQLITE_CREATE_TEMP_TABLE
        SQLITE_CREATE_TEMP_TRIGGER
        SQLITE_CREATE_TEMP_VIEW
        SQLITE_CREATE_TRIGGER
        SQLITE_CREATE_VIEW
        SQLITE_DELETE
        SQLITE_DROP_INDEX
        SQLITE_DROP_TABLE
        SQLITE_DROP_TEMP_INDEX
        SQLITE_DROP_TEMP_TABLE
        SQLITE_DROP_TEMP_TRIGGER
        SQLITE_DROP_TEMP_VIEW
        SQLITE_DROP_TRIGGER
        SQLITE_DROP_VIEW
        SQLITE_INSERT
        SQLITE_PRAGMA
        SQLITE_READ
        SQLITE_SELECT
        SQLITE_TRANSACTION
        SQLITE_UPDATE
        SQLITE_ATTACH
        SQLITE_DETACH
        SQLITE_ALTER_TABLE
        SQLITE_REINDEX
        SQLITE_ANALYZE
        SQLITE_CREATE_VTABLE
        SQLITE_DROP_VTABLE
        SQLITE_FUNCTION
        SQLITE_SAVEPOINT
        SQLITE_RECURSIVE

    ctypedef void (*sqlite3_destructor_type)(void *)
    sqlite3_destructor_type SQLITE_TRANSIENT
    sqlite3_destructor_type SQLITE_STATIC

    const char *sqlite3_libversion()
    int sqlite3_threadsafe()
    const char *sqlite3_compileoption_get(int n)

    int sqlite3_open_v2(const char *filename, sqlite3 **ppDb, int flags, const char *zVfs)
    int sqlite3_close(sqlite3 *db)
    int sqlite3_errcode(sqlite3 *db)
    int sqlite3_extended_errcode(sqlite3 *db)
    int sqlite3_extended_result_codes(sqlite3 *db, int onoff)
    const char *sqlite3_errmsg(sqlite3 *db)
    const char *sqlite3_errstr(int rc)
    int sqlite3_error_offset(sqlite3 *db)
    int sqlite3_busy_timeout(sqlite3 *db, int ms)
    void sqlite3_interrupt(sqlite3 *db)
    int sqlite3_changes(sqlite3 *db)
    int sqlite3_total_changes(sqlite3 *db)
    sqlite3_int64 sqlite3_last_insert_rowid(sqlite3 *db)
    int sqlite3_get_autocommit(sqlite3 *db)
    int sqlite3_db_readonly(sqlite3 *db, const char *zDbName)
    int sqlite3_limit(sqlite3 *db, int id, int newVal)
    void sqlite3_progress_handler(sqlite3 *db, int n, int (*cb)(void *) noexcept nogil, void *arg)
    int sqlite3_set_authorizer(
        sqlite3 *db,
        int (*cb)(void *, int, const char *, const char *, const char *, const char *) noexcept nogil,
        void *arg)

    int sqlite3_prepare_v2(sqlite3 *db, const char *zSql, int nByte, sqlite3_stmt **ppStmt, const char **pzTail)
    int sqlite3_finalize(sqlite3_stmt *pStmt)
    int sqlite3_reset(sqlite3_stmt *pStmt)
    int sqlite3_step(sqlite3_stmt *pStmt)
    int sqlite3_clear_bindings(sqlite3_stmt *pStmt)
    int sqlite3_transfer_bindings(sqlite3_stmt *pFrom, sqlite3_stmt *pTo)
    int sqlite3_stmt_readonly(sqlite3_stmt *pStmt)
    int sqlite3_stmt_busy(sqlite3_stmt *pStmt)
    int sqlite3_drop_modules(sqlite3 *db, const char **azKeep)
    int sqlite3_stmt_isexplain(sqlite3_stmt *pStmt)
    const char *sqlite3_sql(sqlite3_stmt *pStmt)
    char *sqlite3_expanded_sql(sqlite3_stmt *pStmt)
    sqlite3 *sqlite3_db_handle(sqlite3_stmt *pStmt)
    int sqlite3_db_config(sqlite3 *db, int op, ...)

    int sqlite3_bind_parameter_count(sqlite3_stmt *pStmt)
    const char *sqlite3_bind_parameter_name(sqlite3_stmt *pStmt, int i)
    int sqlite3_bind_parameter_index(sqlite3_stmt *pStmt, const char *zName)
    int sqlite3_bind_null(sqlite3_stmt *pStmt, int i)
    int sqlite3_bind_int64(sqlite3_stmt *pStmt, int i, sqlite3_int64 v)
    int sqlite3_bind_double(sqlite3_stmt *pStmt, int i, double v)
    int sqlite3_bind_text(sqlite3_stmt *pStmt, int i, const char *z, int n, sqlite3_destructor_type d)
    int sqlite3_bind_blob(sqlite3_stmt *pStmt, int i, const void *z, int n, sqlite3_destructor_type d)

    int sqlite3_column_count(sqlite3_stmt *pStmt)
    int sqlite3_data_count(sqlite3_stmt *pStmt)
    const char *sqlite3_column_name(sqlite3_stmt *pStmt, int i)
    const char *sqlite3_column_decltype(sqlite3_stmt *pStmt, int i)
    int sqlite3_column_type(sqlite3_stmt *pStmt, int i)
    sqlite3_int64 sqlite3_column_int64(sqlite3_stmt *pStmt, int i)
    double sqlite3_column_double(sqlite3_stmt *pStmt, int i)
    const unsigned char *sqlite3_column_text(sqlite3_stmt *pStmt, int i)
    const void *sqlite3_column_blob(sqlite3_stmt *pStmt, int i)
    int sqlite3_column_bytes(sqlite3_stmt *pStmt, int i)

    void *sqlite3_malloc(int n)
    void sqlite3_free(void *p)
    int sqlite3_complete(const char *sql)

    # --- columnar fetch (fetch.pxi) ---------------------------------------
    ctypedef struct sqlite3_mutex
    sqlite3_mutex *sqlite3_db_mutex(sqlite3 *db)
    void sqlite3_mutex_enter(sqlite3_mutex *m)
    void sqlite3_mutex_leave(sqlite3_mutex *m)
    sqlite3_value *sqlite3_column_value(sqlite3_stmt *pStmt, int i)
    int sqlite3_value_type(sqlite3_value *v)
    sqlite3_int64 sqlite3_value_int64(sqlite3_value *v)
    double sqlite3_value_double(sqlite3_value *v)
    const unsigned char *sqlite3_value_text(sqlite3_value *v)
    const void *sqlite3_value_blob(sqlite3_value *v)
    int sqlite3_value_bytes(sqlite3_value *v)

# --- read-only modes and policies (auth*.pxi) --------------------------------
cdef extern from "capi.h" nogil:
    int sqlite3_enable_load_extension(sqlite3 *db, int onoff)

# --- parallel fetch (parallel.pxi): one snapshot, the connection's state --------
cdef extern from "capi.h" nogil:
    ctypedef struct sqlite3_snapshot
    int SQLNB_HAVE_SNAPSHOT
    int sqlite3_snapshot_get(sqlite3 *db, const char *zSchema, sqlite3_snapshot **ppSnapshot)
    int sqlite3_snapshot_open(sqlite3 *db, const char *zSchema, sqlite3_snapshot *pSnapshot)
    void sqlite3_snapshot_free(sqlite3_snapshot *p)
    const char *sqlite3_db_name(sqlite3 *db, int N)
    int sqlnb_db_config_flag(sqlite3 *db, int op, int value, int *out)

# --- user-defined functions, aggregates, window functions, collations (functions.pxi) ------
ctypedef void (*sqlnb_xfunc)(sqlite3_context *, int, sqlite3_value **) noexcept nogil
ctypedef void (*sqlnb_xfinal)(sqlite3_context *) noexcept nogil
ctypedef void (*sqlnb_xdestroy)(void *) noexcept nogil
ctypedef int (*sqlnb_xcompare)(void *, int, const void *, int, const void *) noexcept nogil

cdef extern from "capi.h" nogil:
    int SQLNB_HAVE_DETERMINISTIC
    int SQLNB_HAVE_WINDOW_FUNCTIONS
    enum:
        SQLITE_UTF8
        SQLITE_DETERMINISTIC
    void *sqlite3_user_data(sqlite3_context *ctx)
    sqlite3 *sqlite3_context_db_handle(sqlite3_context *ctx)
    void *sqlite3_aggregate_context(sqlite3_context *ctx, int nBytes)
    int sqlite3_create_function_v2(sqlite3 *db, const char *zName, int nArg, int eTextRep, void *pApp,
                                   sqlnb_xfunc xFunc, sqlnb_xfunc xStep, sqlnb_xfinal xFinal,
                                   sqlnb_xdestroy xDestroy)
    int sqlite3_create_window_function(sqlite3 *db, const char *zName, int nArg, int eTextRep, void *pApp,
                                       sqlnb_xfunc xStep, sqlnb_xfinal xFinal, sqlnb_xfinal xValue,
                                       sqlnb_xfunc xInverse, sqlnb_xdestroy xDestroy)
    int sqlite3_create_collation_v2(sqlite3 *db, const char *zName, int eTextRep, void *pArg,
                                    sqlnb_xcompare xCompare, sqlnb_xdestroy xDestroy)
    void sqlite3_result_null(sqlite3_context *ctx)
    void sqlite3_result_int64(sqlite3_context *ctx, sqlite3_int64 v)
    void sqlite3_result_double(sqlite3_context *ctx, double v)
    void sqlite3_result_text(sqlite3_context *ctx, const char *z, int n, sqlite3_destructor_type d)
    void sqlite3_result_blob(sqlite3_context *ctx, const void *z, int n, sqlite3_destructor_type d)
    void sqlite3_result_error(sqlite3_context *ctx, const char *z, int n)
    void sqlite3_result_error_code(sqlite3_context *ctx, int code)
    void sqlite3_result_error_toobig(sqlite3_context *ctx)
    void sqlite3_result_error_nomem(sqlite3_context *ctx)

# --- the stdlib surface: tracing, backup, serialize (hooks.pxi, backup.pxi) --------------------
ctypedef int (*sqlnb_xtrace_v2)(unsigned int, void *, void *, void *) noexcept nogil
ctypedef void (*sqlnb_xtrace_v1)(void *, const char *) noexcept nogil

cdef extern from "capi.h" nogil:
    ctypedef struct sqlite3_backup
    int SQLNB_HAVE_TRACE_V2
    int SQLNB_HAVE_SERIALIZE
    enum:
        SQLITE_TRACE_STMT
        SQLITE_DESERIALIZE_FREEONCLOSE
        SQLITE_DESERIALIZE_RESIZEABLE
    int sqlite3_trace_v2(sqlite3 *db, unsigned int mask, sqlnb_xtrace_v2 cb, void *ctx)
    void sqlnb_trace_v1(sqlite3 *db, sqlnb_xtrace_v1 cb, void *ctx)
    sqlite3_backup *sqlite3_backup_init(sqlite3 *pDest, const char *zDestName, sqlite3 *pSource,
                                        const char *zSourceName)
    int sqlite3_backup_step(sqlite3_backup *p, int nPage)
    int sqlite3_backup_finish(sqlite3_backup *p)
    int sqlite3_backup_remaining(sqlite3_backup *p)
    int sqlite3_backup_pagecount(sqlite3_backup *p)
    unsigned char *sqlite3_serialize(sqlite3 *db, const char *zSchema, sqlite3_int64 *piSize, unsigned int mFlags)
    int sqlite3_deserialize(sqlite3 *db, const char *zSchema, unsigned char *pData, sqlite3_int64 szDb,
                            sqlite3_int64 szBuf, unsigned mFlags)
    void *sqlite3_malloc64(uint64_t n)

# --- incremental blob I/O (blob.pxi) -------------------------------------------------------------
cdef extern from "capi.h" nogil:
    ctypedef struct sqlite3_blob
    int sqlite3_blob_open(sqlite3 *db, const char *zDb, const char *zTable, const char *zColumn,
                          sqlite3_int64 iRow, int flags, sqlite3_blob **ppBlob)
    int sqlite3_blob_close(sqlite3_blob *b)
    int sqlite3_blob_bytes(sqlite3_blob *b)
    int sqlite3_blob_read(sqlite3_blob *b, void *Z, int N, int iOffset)
    int sqlite3_blob_write(sqlite3_blob *b, const void *z, int n, int iOffset)

# --- extensions (extension.pxi) --------------------------------------------------------------------
cdef extern from "capi.h" nogil:
    int sqlite3_load_extension(sqlite3 *db, const char *zFile, const char *zProc, char **pzErrMsg)
