/*
 * capi.h: one C view of "the SQLite API" for every flavour sqlnb compiles
 * from the same Cython source (sqlnb/_fast.pyx and the sqlnb/_core/ pieces it includes).
 *
 *   SQLNB_FLAVOUR_OWN  our amalgamation (+ lsm1), compiled into the module, symbols hidden
 *   SQLNB_FLAVOUR_BDB  BerkeleyDB's SQL front-end (dbsql.h, libdb_sql, SQLite 3.7.6.2 API)
 *
 * SQLNB_HAVE_* tell the Cython code (at run time, as ints) what the core offers;
 * the sqlnb_* shims paper over API calls the older core lacks.
 */
#ifndef SQLNB_CAPI_H
#define SQLNB_CAPI_H

#if defined(SQLNB_FLAVOUR_BDB)
#  include <dbsql.h>
#  define SQLNB_FLAVOUR_NAME "bdb"
#else
#  include "sqlite3.h"
#  define SQLNB_FLAVOUR_NAME "sqlite"
#endif

#define SQLNB_NEWER(v) (SQLITE_VERSION_NUMBER >= (v))

#if SQLNB_NEWER(3007014)
#  define sqlnb_close(db) sqlite3_close_v2(db)
#else
#  define sqlnb_close(db) sqlite3_close(db)
#endif

#if SQLNB_NEWER(3038000)
#  define SQLNB_HAVE_ERROR_OFFSET 1
#else
#  define SQLNB_HAVE_ERROR_OFFSET 0
#  define sqlite3_error_offset(db) (-1)
#endif

#if !SQLNB_NEWER(3007015)
#  define sqlite3_errstr(rc) "unknown error"
#endif

#if !SQLNB_NEWER(3008000)
#  define sqlite3_stmt_busy(s) (0)
#  define SQLNB_HAVE_STMT_BUSY 0
#else
#  define SQLNB_HAVE_STMT_BUSY 1
#endif

#if !SQLNB_NEWER(3010000)
#  define sqlite3_stmt_isexplain(s) (0)
#endif

#if !SQLNB_NEWER(3030000)
#  define sqlite3_drop_modules(db, keep) (SQLITE_ERROR)
#  define SQLNB_HAVE_DROP_MODULES 0
#else
#  define SQLNB_HAVE_DROP_MODULES 1
#endif

#if !SQLNB_NEWER(3014000)
#  define sqlite3_expanded_sql(s) ((char*)0)
#endif

#if !SQLNB_NEWER(3007014)
#  define sqlite3_db_readonly(db, name) (-1)
#endif

#ifndef SQLITE_OPEN_URI
#  define SQLITE_OPEN_URI 0
#  define SQLNB_HAVE_URI 0
#else
#  define SQLNB_HAVE_URI 1
#endif

#ifndef SQLITE_DETERMINISTIC
#  define SQLITE_DETERMINISTIC 0
#endif

#ifndef SQLITE_RECURSIVE
#  define SQLITE_RECURSIVE 33
#endif

#ifndef SQLITE_NOTICE
#  define SQLITE_NOTICE 27
#  define SQLITE_WARNING 28
#endif

#ifndef SQLITE_CONSTRAINT_PRIMARYKEY
#  define SQLITE_CONSTRAINT_PRIMARYKEY (SQLITE_CONSTRAINT | (6<<8))
#endif

/* Double-quoted string literals ("lit" read as 'lit' where no such column exists), per
 * connection: SQLITE_DBCONFIG_DQS_DML/_DDL arrived in 3.29. An older core (bdb's 3.7.6.2)
 * always accepts them and cannot be made strict: sqlnb_set_dqs then answers SQLITE_OK for
 * "on" and SQLITE_MISUSE for "off". Our build compiles with SQLITE_DQS=0 (strict by default)
 * and turns them on at open unless asked for strict (see RawConnection.set_double_quoted_strings). */
#if defined(SQLITE_DBCONFIG_DQS_DML) && defined(SQLITE_DBCONFIG_DQS_DDL)
#  define SQLNB_HAVE_DQS_CONFIG 1
static int sqlnb_set_dqs(sqlite3 *db, int on) {
    int rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, on, (int*)0);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, on, (int*)0);
    return rc;
}
#else
#  define SQLNB_HAVE_DQS_CONFIG 0
static int sqlnb_set_dqs(sqlite3 *db, int on) { (void)db; return on ? SQLITE_OK : SQLITE_MISUSE; }
#endif

#if defined(SQLNB_FLAVOUR_OWN)
int sqlite3_lsm_init(sqlite3 *db, char **pzErrMsg, const void *pApi);
static int sqlnb_register_builtin_extensions(void) {
    return sqlite3_auto_extension((void (*)(void))sqlite3_lsm_init);
}
#  define SQLNB_HAVE_LSM1 1
#else
static int sqlnb_register_builtin_extensions(void) { return 0; }
#  define SQLNB_HAVE_LSM1 0
#endif

/* parallel fetch (parallel.pxi): one WAL snapshot shared by the workers, the attached
 * databases and the connection's flags (to copy or refuse). Our build has them all
 * (SQLITE_ENABLE_SNAPSHOT); BerkeleyDB's 3.7 core has none (parallel fetch refuses bdb). */
#if defined(SQLNB_FLAVOUR_OWN)
#  define SQLNB_HAVE_SNAPSHOT 1
static int sqlnb_db_config_flag(sqlite3 *db, int op, int value, int *out) {
    /* only the (int, int*) on/off ops: others take pointers (MAINDBNAME, LOOKASIDE) */
    if (op < SQLITE_DBCONFIG_ENABLE_FKEY || op > SQLITE_DBCONFIG_MAX) return SQLITE_MISUSE;
    return sqlite3_db_config(db, op, value, out);
}
#else
#  define SQLNB_HAVE_SNAPSHOT 0
typedef struct sqlite3_snapshot { unsigned char hidden[48]; } sqlite3_snapshot;
#  define sqlite3_snapshot_get(db, schema, pp) (SQLITE_ERROR)
#  define sqlite3_snapshot_open(db, schema, p) (SQLITE_ERROR)
#  define sqlite3_snapshot_free(p) ((void)0)
#  define sqlite3_db_name(db, n) ((const char*)0)
#  define sqlnb_db_config_flag(db, op, value, out) (SQLITE_ERROR)
#endif

/* user-defined functions (functions.pxi): the deterministic flag came with 3.8.3, window
 * functions (sqlite3_create_window_function) with 3.25; the Python side asks these first. */
#define SQLNB_HAVE_DETERMINISTIC SQLNB_NEWER(3008003)
#if SQLNB_NEWER(3025000)
#  define SQLNB_HAVE_WINDOW_FUNCTIONS 1
#else
#  define SQLNB_HAVE_WINDOW_FUNCTIONS 0
#  define sqlite3_create_window_function(db, n, a, e, p, s, f, v, i, d) (SQLITE_ERROR)
#endif

/* the stdlib surface (hooks.pxi, backup.pxi): statement tracing (sqlite3_trace_v2 came with 3.14;
 * the older core has sqlite3_trace), serialize/deserialize (3.23; the bdb core has neither). */
#if SQLNB_NEWER(3014000)
#  define SQLNB_HAVE_TRACE_V2 1
#  define sqlnb_trace_v1(db, cb, ctx) ((void)0)
#else
#  define SQLNB_HAVE_TRACE_V2 0
#  ifndef SQLITE_TRACE_STMT
#    define SQLITE_TRACE_STMT 1
#  endif
#  define sqlite3_trace_v2(db, mask, cb, ctx) (SQLITE_ERROR)
#  define sqlnb_trace_v1(db, cb, ctx) ((void)sqlite3_trace(db, cb, ctx))
#endif
#if SQLNB_NEWER(3023000) && !defined(SQLITE_OMIT_DESERIALIZE)
#  define SQLNB_HAVE_SERIALIZE 1
#else
#  define SQLNB_HAVE_SERIALIZE 0
#  define sqlite3_serialize(db, schema, psize, flags) ((unsigned char*)0)
#  define sqlite3_deserialize(db, schema, data, size, bufsize, flags) (SQLITE_ERROR)
#endif
#ifndef SQLITE_DESERIALIZE_FREEONCLOSE
#  define SQLITE_DESERIALIZE_FREEONCLOSE 1
#  define SQLITE_DESERIALIZE_RESIZEABLE 2
#endif
#if !SQLNB_NEWER(3008007)
#  define sqlite3_malloc64(n) sqlite3_malloc((int)(n))
#endif

/* An INTEGER against a REAL, exactly, as SQLite's sqlite3IntFloatCompare (3.43) orders them:
 * negative, zero or positive. (The frame table's ordered scans and the profile aggregate.) */
#include <stdint.h>
static inline int sqlnb_int_real_cmp(int64_t i, double r) {
    int64_t y;
    double s;
    if (r < -9223372036854775808.0) return 1;
    if (r >= 9223372036854775808.0) return -1;
    y = (int64_t)r;
    if (i < y) return -1;
    if (i > y) return 1;
    s = (double)i;
    return (s < r) ? -1 : (s > r);
}

#endif /* SQLNB_CAPI_H */
