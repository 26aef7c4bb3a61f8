/*
 * limit.c: the physical limit of "SQLite rows into columns", for the fetch benchmark.
 *
 * Compiled by benchmarks/bench_fetch.py against the same SQLite amalgamation object
 * sqlnb links (tools/build_helpers.py cache). It opens the database, prepares the
 * query, steps every row and copies every value into growable columnar arrays: a
 * storage-class tag per row, an 8-byte value slot per row (int64 or double), and
 * Arrow-style int64 offsets + one data buffer for TEXT/BLOB bytes. Nothing else:
 * no type decisions, no UTF-8 validation, no Python. It is what any fetcher must
 * at least do, so sqlnb's time is reported as a ratio to it.
 *
 * usage: limit DB SQL [--repeat N] [--step-only] [--nomutex] [--hold] [--values]
 *   --nomutex  open with SQLITE_OPEN_NOMUTEX, as sqlnb opens our SQLite (bench_fetch uses it)
 *   --hold     hold the connection's mutex around the whole loop instead
 *   --values   read each value through sqlite3_column_value, as sqlnb's fetcher does
 * prints one JSON line: {"rows": R, "cols": C, "bytes": B, "seconds": [t1, ...]}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sqlite3.h"

typedef struct {
    unsigned char *tags;
    int64_t *slot;
    int64_t *offs;
    char *data;
    size_t data_len, data_cap;
} column;

static double now(void) {
    struct timespec ts;
#ifdef CPUTIME
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "out of memory\n");
        exit(3);
    }
    return q;
}

/* Append a TEXT/BLOB value's bytes to the column's Arrow-style data buffer. */
static void append_bytes(column *col, const void *p, size_t len) {
    if (col->data_len + len > col->data_cap) {
        size_t nc = col->data_cap ? col->data_cap * 2 : 65536;
        while (nc < col->data_len + len) nc *= 2;
        col->data = xrealloc(col->data, nc);
        col->data_cap = nc;
    }
    if (len) memcpy(col->data + col->data_len, p, len);
    col->data_len += len;
}

static double run_once(sqlite3 *db, const char *sql, int step_only, int hold, int values, int64_t *rows_out,
                       int *cols_out, size_t *bytes_out) {
    sqlite3_stmt *st = NULL;
    double t0 = now();
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "prepare: %s\n", sqlite3_errmsg(db));
        exit(2);
    }
    int ncol = sqlite3_column_count(st);
    column *cols = calloc((size_t)ncol, sizeof(column));
    size_t cap = 1024, n = 0, total = 0;
    for (int c = 0; c < ncol && !step_only; c++) {
        cols[c].tags = xrealloc(NULL, cap);
        cols[c].slot = xrealloc(NULL, cap * 8);
        cols[c].offs = xrealloc(NULL, (cap + 1) * 8);
        cols[c].offs[0] = 0;
    }
    int rc;
    if (hold) sqlite3_mutex_enter(sqlite3_db_mutex(db));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (step_only) {
            n++;
            continue;
        }
        if (n == cap) {
            cap *= 2;
            for (int c = 0; c < ncol; c++) {
                cols[c].tags = xrealloc(cols[c].tags, cap);
                cols[c].slot = xrealloc(cols[c].slot, cap * 8);
                cols[c].offs = xrealloc(cols[c].offs, (cap + 1) * 8);
            }
        }
        for (int c = 0; c < ncol; c++) {
            column *col = &cols[c];
            if (values) {
                sqlite3_value *v = sqlite3_column_value(st, c);
                int t = sqlite3_value_type(v);
                col->tags[n] = (unsigned char)t;
                if (t == SQLITE_INTEGER) {
                    col->slot[n] = sqlite3_value_int64(v);
                } else if (t == SQLITE_FLOAT) {
                    double d = sqlite3_value_double(v);
                    memcpy(&col->slot[n], &d, 8);
                } else if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
                    const void *p = (t == SQLITE_TEXT) ? (const void *)sqlite3_value_text(v) : sqlite3_value_blob(v);
                    size_t len = (size_t)sqlite3_value_bytes(v);
                    append_bytes(col, p, len);
                }
                col->offs[n + 1] = (int64_t)col->data_len;
                continue;
            }
            int t = sqlite3_column_type(st, c);
            col->tags[n] = (unsigned char)t;
            if (t == SQLITE_INTEGER) {
                col->slot[n] = sqlite3_column_int64(st, c);
            } else if (t == SQLITE_FLOAT) {
                double d = sqlite3_column_double(st, c);
                memcpy(&col->slot[n], &d, 8);
            } else if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
                const void *p = (t == SQLITE_TEXT) ? (const void *)sqlite3_column_text(st, c)
                                                   : sqlite3_column_blob(st, c);
                size_t len = (size_t)sqlite3_column_bytes(st, c);
                append_bytes(col, p, len);
            }
            col->offs[n + 1] = (int64_t)col->data_len;
        }
        n++;
    }
    if (hold) sqlite3_mutex_leave(sqlite3_db_mutex(db));
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "step: %s\n", sqlite3_errmsg(db));
        exit(2);
    }
    sqlite3_finalize(st);
    double t1 = now();
    for (int c = 0; c < ncol; c++) {
        total += cols[c].data_len;
        free(cols[c].tags);
        free(cols[c].slot);
        free(cols[c].offs);
        free(cols[c].data);
    }
    free(cols);
    *rows_out = (int64_t)n;
    *cols_out = ncol;
    *bytes_out = total;
    return t1 - t0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DB SQL [--repeat N] [--step-only] [--nomutex] [--hold] [--values]\n", argv[0]);
        return 1;
    }
    int repeat = 1, step_only = 0, hold = 0, values = 0, flags = SQLITE_OPEN_READONLY;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--step-only")) step_only = 1;
        else if (!strcmp(argv[i], "--nomutex")) flags |= SQLITE_OPEN_NOMUTEX;
        else if (!strcmp(argv[i], "--hold")) hold = 1;
        else if (!strcmp(argv[i], "--values")) values = 1;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 1;
        }
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(argv[1], &db, flags, NULL) != SQLITE_OK) {
        fprintf(stderr, "open: %s\n", db ? sqlite3_errmsg(db) : "?");
        return 2;
    }
    int64_t rows = 0;
    int ncol = 0;
    size_t bytes = 0;
    printf("{\"seconds\": [");
    for (int r = 0; r < repeat; r++) {
        double t = run_once(db, argv[2], step_only, hold, values, &rows, &ncol, &bytes);
        printf("%s%.6f", r ? ", " : "", t);
    }
    printf("], \"rows\": %lld, \"cols\": %d, \"bytes\": %zu, \"version\": \"%s\"}\n", (long long)rows, ncol,
           bytes, sqlite3_libversion());
    sqlite3_close(db);
    return 0;
}
