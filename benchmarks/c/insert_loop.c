/*
 * insert_loop.c: the floor for bench_export.py. A plain C prepared-INSERT loop
 * over columnar arrays, linked against the same SQLite amalgamation object as
 * sqlnb: one transaction, one prepared statement, bind + step + reset per step.
 * A step carries ROWS rows (INSERT ... VALUES (...), (...), ...: ROWS = 16 is
 * what sqlnb's to_table does on our SQLite, ROWS = 1 the classic loop); the rows
 * left over after the last whole step go through a one-row statement.
 *
 * Input: a directory written by bench_export.py holding the mixed frame's
 * columns as raw little-endian files:
 *   id.i64 user_id.i64 amount.f64 flag.i64 flag.null (1 byte per row, 1 = NULL)
 *   ts.off/ts.dat category.off/category.dat note.off/note.dat (int64 offsets, n+1; UTF-8 bytes)
 * Loading the files is not timed; opening the database, BEGIN, CREATE TABLE,
 * the loop, COMMIT and close are.
 *
 * Usage: insert_loop DB DATA_DIR NROWS [ROWS]   -> prints {"seconds": s, "rss_mb": m}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sqlite3.h"

static void *load(const char *dir, const char *name, size_t want) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (want && (size_t)size < want) { fprintf(stderr, "%s: %ld bytes, want %zu\n", path, size, want); exit(2); }
    void *p = malloc(size ? (size_t)size : 1);
    if (!p || fread(p, 1, (size_t)size, f) != (size_t)size) { fprintf(stderr, "read %s failed\n", path); exit(2); }
    fclose(f);
    return p;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void check(int rc, sqlite3 *db, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE) {
        fprintf(stderr, "%s: %s\n", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) { fprintf(stderr, "usage: %s DB DATA_DIR NROWS [ROWS]\n", argv[0]); return 2; }
    const char *dbpath = argv[1], *dir = argv[2];
    int64_t n = atoll(argv[3]);
    int per_step = argc == 5 ? atoi(argv[4]) : 1;
    if (per_step < 1 || per_step > 1000) { fprintf(stderr, "ROWS must be 1..1000\n"); return 2; }
    const int64_t *id = load(dir, "id.i64", n * 8), *user = load(dir, "user_id.i64", n * 8);
    const double *amount = load(dir, "amount.f64", n * 8);
    const int64_t *flag = load(dir, "flag.i64", n * 8);
    const uint8_t *flag_null = load(dir, "flag.null", n);
    const int64_t *ts_off = load(dir, "ts.off", (n + 1) * 8), *cat_off = load(dir, "category.off", (n + 1) * 8);
    const int64_t *note_off = load(dir, "note.off", (n + 1) * 8);
    const char *ts = load(dir, "ts.dat", 0), *cat = load(dir, "category.dat", 0), *note = load(dir, "note.dat", 0);

    double t0 = now();
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    check(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL), db,
          "open");  /* as sqlnb opens our SQLite */
    /* the page cache sqlnb's to_table gives a large export (sqlnb.export.EXPORT_CACHE_KIB) */
    check(sqlite3_exec(db, "PRAGMA main.cache_size=-262144", NULL, NULL, NULL), db, "cache_size");
    check(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), db, "begin");
    check(sqlite3_exec(db, "CREATE TABLE main.\"mixed\" (\"id\" INTEGER, \"ts\" TEXT, \"user_id\" INTEGER, "
                           "\"category\" TEXT, \"amount\" REAL, \"note\" TEXT, \"flag\" INTEGER)",
                       NULL, NULL, NULL), db, "create");
    static const char head[] = "INSERT INTO main.\"mixed\" (\"id\", \"ts\", \"user_id\", \"category\", "
                               "\"amount\", \"note\", \"flag\") VALUES (?, ?, ?, ?, ?, ?, ?)";
    char *sql = malloc(sizeof head + (size_t)per_step * 24);
    strcpy(sql, head);
    for (int k = 1; k < per_step; k++) strcat(sql, ", (?, ?, ?, ?, ?, ?, ?)");
    sqlite3_stmt *one = NULL;
    check(sqlite3_prepare_v2(db, sql, -1, &st, NULL), db, "prepare");
    check(sqlite3_prepare_v2(db, head, -1, &one, NULL), db, "prepare");
    for (int64_t i = 0; i < n;) {
        sqlite3_stmt *s = n - i >= per_step ? st : one;
        int rows = s == st ? per_step : 1;
        for (int k = 0; k < rows; k++, i++) {
            int p = k * 7;
            sqlite3_bind_int64(s, p + 1, id[i]);
            sqlite3_bind_text(s, p + 2, ts + ts_off[i], (int)(ts_off[i + 1] - ts_off[i]), SQLITE_STATIC);
            sqlite3_bind_int64(s, p + 3, user[i]);
            sqlite3_bind_text(s, p + 4, cat + cat_off[i], (int)(cat_off[i + 1] - cat_off[i]), SQLITE_STATIC);
            if (amount[i] != amount[i]) sqlite3_bind_null(s, p + 5); else sqlite3_bind_double(s, p + 5, amount[i]);
            sqlite3_bind_text(s, p + 6, note + note_off[i], (int)(note_off[i + 1] - note_off[i]), SQLITE_STATIC);
            if (flag_null[i]) sqlite3_bind_null(s, p + 7); else sqlite3_bind_int64(s, p + 7, flag[i]);
        }
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) check(rc, db, "step");
        sqlite3_reset(s);
    }
    sqlite3_finalize(one);
    free(sql);
    sqlite3_finalize(st);
    check(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), db, "commit");
    check(sqlite3_close(db), NULL, "close");
    double t1 = now();

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"seconds\": %.6f, \"rss_mb\": %.1f}\n", t1 - t0, ru.ru_maxrss / 1024.0);
    return 0;
}
