/*
 * profile_agg.h: the sqlnb_profile(v [, K, p, k, exact, copy]) aggregate (included by
 * sqlnb/_core/profile.pxi, one compilation unit per flavour like capi.h; its pieces are in
 * profile_sketch.h): every statistic of
 * sqlnb.profile(approx=True) for one column in ONE pass over its values, in C, no Python.
 *
 * Exact: rows; values per storage class; min and max in SQLite's order (INTEGER and REAL
 * compared numerically as SQLite compares them, < TEXT by memcmp < BLOB by memcmp; a tie
 * between an INTEGER and an equal REAL keeps the INTEGER, as the exact profile's grouped min()
 * does); the mean over INTEGER + REAL values as float64 (Kahan-Babuska-Neumaier sum); the sum
 * of squared deviations (two passes over the kept values when every numeric value is kept,
 * else blocks of 256 values shifted by the first one, each block's mean and corrected two-pass
 * sum of squares merged by Chan's formula); min/max text length in
 * characters counted as SQLite's length() counts them (UTF-8 lead bytes up to a NUL).
 *
 * Approximate (exact below a size, see each):
 * - distinct values: a set of 64-bit hashes while it holds at most `exact` of them (exact up
 *   to a hash collision, odds about n^2 / 2^65), then HyperLogLog with 2^p one-byte registers
 *   (filled from the set's hashes when it overflows),
 *   estimated with Ertl's improved estimator (no bias tables; standard error 1.04 / sqrt(2^p)).
 *   Equality is SQLite's: 1 and 1.0 one value, -0.0 = 0.0, TEXT and BLOB by bytes, a TEXT
 *   never equal to a BLOB.
 * - quartiles: a uniform reservoir sample (Vitter's algorithm R, a fixed seed) of at most K
 *   numeric values; every value when there are at most K. The values at ranks
 *   floor((s-1)j/4) and the next one of the sorted sample (s values) come out; Python
 *   interpolates as numpy's "linear".
 * - most common values: Misra-Gries with k counters keyed by (storage class, value); counts are
 *   exact when no decrement happened (at most k distinct values), else lower bounds at most
 *   `decrements` <= n/(k+1) below the truth, and every value more frequent than n/(k+1) is
 *   present. A counter keeps at most `copy` bytes of a TEXT/BLOB value (its full length and
 *   hash identify it).
 *
 * The result is a BLOB packed in native byte order (sqlnb/look/sketch.py unpacks it with
 * struct): no sqlite3_str_* (BerkeleyDB's 3.7.6.2 core has none). Out of memory sets the
 * statement's error (SQLITE_NOMEM); nothing crashes on huge values, empty input or all NULLs.
 */
#ifndef SQLNB_PROFILE_AGG_H
#define SQLNB_PROFILE_AGG_H

#include "profile_sketch.h"

/* ---- the aggregate ------------------------------------------------------------------------ */
static int sp_arg(sqlite3_context *ctx, sqlite3_value **argv, int argc, int at, int64_t dflt, int64_t lo,
                  int64_t hi, const char *what, int64_t *out) {
    int64_t v;
    if (at >= argc || sqlite3_value_type(argv[at]) == SQLITE_NULL) { *out = dflt; return 1; }
    if (sqlite3_value_type(argv[at]) != SQLITE_INTEGER) {
        sqlite3_result_error(ctx, what, -1);
        return 0;
    }
    v = sqlite3_value_int64(argv[at]);
    if (v < lo || v > hi) { sqlite3_result_error(ctx, what, -1); return 0; }
    *out = v;
    return 1;
}

static int sp_init(sp_state *s, sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    int64_t p;
    s->init = 1;
    if (argc > 6) {
        sqlite3_result_error(ctx, "sqlnb_profile(value [, K, p, k, exact, copy]) takes 1 to 6 arguments", -1);
        return 0;
    }
    if (!sp_arg(ctx, argv, argc, 1, SP_K_DEFAULT, 1, SP_K_MAX,
                "sqlnb_profile: K (the sample size) must be an integer from 1 to 16777216", &s->K)
        || !sp_arg(ctx, argv, argc, 2, SP_P_DEFAULT, SP_P_MIN, SP_P_MAX,
                   "sqlnb_profile: p (HyperLogLog's 2^p registers) must be an integer from 4 to 18", &p)
        || !sp_arg(ctx, argv, argc, 3, SP_TOPK_DEFAULT, 1, SP_TOPK_MAX,
                   "sqlnb_profile: k (the common values' counters) must be an integer from 1 to 65536", &s->k)
        || !sp_arg(ctx, argv, argc, 4, SP_EXACT_DEFAULT, 0, SP_EXACT_MAX,
                   "sqlnb_profile: exact (distinct values counted exactly) must be an integer from 0 to 4194304", &s->exact)
        || !sp_arg(ctx, argv, argc, 5, SP_COPY_DEFAULT, 0, SP_COPY_MAX,
                   "sqlnb_profile: copy (bytes kept of a common value) must be an integer from 0 to 1048576", &s->copy))
        return 0;
    s->p = (int)p;
    s->min_len = s->max_len = -1;
    s->rng = 0x5eed5eed5eed5eedULL;
    if (s->exact == 0 && !sp_set_overflow(s)) { s->failed = 1; return 0; }
    return 1;
}

static void sp_free(sp_state *s) {
    int64_t m;
    free(s->vmin.p); free(s->vmax.p);
    free(s->hll); free(s->set); free(s->res); free(s->idx);
    if (s->ctr) {
        for (m = 0; m < s->k; m++) free(s->ctr[m].v.p);
        free(s->ctr);
    }
    memset(s, 0, sizeof(*s));
}

/* 1 and 1.0 are two entries of the common values, as in the exact profile */
static inline uint64_t sp_mg_hash(uint64_t h, int cls) { return sp_fmix(h + (uint64_t)cls); }

/* one non-NULL value of class `cls` (its hash `h`) into every statistic; 0 on out of memory */
static int sp_add(sp_state *s, int cls, int64_t i, double d, const unsigned char *p, int64_t n, uint64_t h) {
    uint64_t hm = sp_mg_hash(h, cls);
    /* the two random reads (a register, the counters' index) start now, the rest runs meanwhile */
    if (s->set_over) __builtin_prefetch(&s->hll[h >> (64 - s->p)], 1);
    if (s->idx != NULL) __builtin_prefetch(&s->idx[hm & s->idx_mask], 0);
    s->n[cls]++;
    if (!sp_minmax(&s->vmin, &s->vmax, &s->have_min, cls, i, d, p, n)) return 0;
    if (cls == SP_INT || cls == SP_REAL) {
        double y;
        s->n_num++;
        sp_sum_add(&s->sum, &s->comp, d);
        if (s->n_num == 1) s->shift = d;
        y = d - s->shift;
        s->block[s->nblock++] = y;
        if (s->nblock == 256) sp_block_merge(s);
        if (!sp_res_add(s, d)) return 0;
    } else if (cls == SP_TEXT) {
        int64_t len = sp_text_length(p, n);
        if (s->min_len < 0 || len < s->min_len) s->min_len = len;
        if (len > s->max_len) s->max_len = len;
    }
    if (!sp_set_add(s, h)) return 0;   /* and HyperLogLog, past `exact` */
    if (!sp_mg_add(s, hm, cls, i, d, p, n)) return 0;
    return 1;
}

static void sqlnb_profile_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    sp_state *s = (sp_state *)sqlite3_aggregate_context(ctx, (int)sizeof(sp_state));
    sqlite3_value *v;
    int t, cls;
    int64_t i = 0, n = 0;
    double d = 0;
    const unsigned char *p = NULL;
    uint64_t h;
    if (s == NULL) { sqlite3_result_error_nomem(ctx); return; }
    if (s->failed) return;
    if (argc < 1) { sqlite3_result_error(ctx, "sqlnb_profile needs a value", -1); s->failed = 2; return; }
    if (!s->init && !sp_init(s, ctx, argc, argv)) {
        if (s->failed == 1) sqlite3_result_error_nomem(ctx);
        s->failed = 2;
        return;
    }
    s->rows++;
    v = argv[0];
    t = sqlite3_value_type(v);
    switch (t) {
    case SQLITE_INTEGER: cls = SP_INT; i = sqlite3_value_int64(v); d = (double)i; h = sp_hash_int(i); break;
    case SQLITE_FLOAT: cls = SP_REAL; d = sqlite3_value_double(v); h = sp_hash_real(d); break;
    case SQLITE_TEXT:
        cls = SP_TEXT;
        p = sqlite3_value_text(v);
        n = sqlite3_value_bytes(v);
        if (p == NULL) { if (n > 0) { s->failed = 1; goto oom; } p = (const unsigned char *)""; }
        h = sp_hash_bytes(p, n, SP_SEED_TEXT);
        break;
    case SQLITE_BLOB:
        cls = SP_BLOB;
        p = (const unsigned char *)sqlite3_value_blob(v);
        n = sqlite3_value_bytes(v);
        if (p == NULL) { if (n > 0) { s->failed = 1; goto oom; } p = (const unsigned char *)""; }
        h = sp_hash_bytes(p, n, SP_SEED_BLOB);
        break;
    default:
        s->n[SP_NULL]++;
        return;
    }
    if (!sp_add(s, cls, i, d, p, n, h)) { s->failed = 1; goto oom; }
    return;
oom:
    sqlite3_result_error_nomem(ctx);
    s->failed = 2;
}

/* ---- the packed result -------------------------------------------------------------------- */
typedef struct sp_buf {
    unsigned char *p;
    size_t n, cap;
    int oom;
} sp_buf;

static void sp_put(sp_buf *b, const void *x, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        unsigned char *np;
        while (cap < b->n + n) {
            if (cap > SIZE_MAX / 2) { b->oom = 1; return; }
            cap *= 2;
        }
        np = (unsigned char *)realloc(b->p, cap);
        if (np == NULL) { b->oom = 1; return; }
        b->p = np; b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, x, n);
    b->n += n;
}

static void sp_put_i64(sp_buf *b, int64_t x) { sp_put(b, &x, 8); }
static void sp_put_f64(sp_buf *b, double x) { sp_put(b, &x, 8); }

/* u8 class; INTEGER: i64; REAL: f64; TEXT/BLOB: i64 full length, i64 kept length, the bytes */
static void sp_put_value(sp_buf *b, const sp_value *v, int have) {
    unsigned char c = (unsigned char)(have ? v->cls : SP_NULL);
    sp_put(b, &c, 1);
    if (!have) return;
    if (v->cls == SP_INT) sp_put_i64(b, v->i);
    else if (v->cls == SP_REAL) sp_put_f64(b, v->d);
    else { sp_put_i64(b, v->full); sp_put_i64(b, v->n); sp_put(b, v->p, (size_t)v->n); }
}

static int sp_dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void sqlnb_profile_final(sqlite3_context *ctx) {
    sp_state *s = (sp_state *)sqlite3_aggregate_context(ctx, 0);
    sp_state empty;
    sp_buf b = {NULL, 0, 0, 0};
    double m2 = NAN, distinct_est = 0, total;
    int64_t distinct_exact = 0, j, m;
    uint32_t head[2] = {SP_MAGIC, SP_VERSION};
    if (s != NULL && s->failed) {
        if (s->failed == 1) sqlite3_result_error_nomem(ctx);
        sp_free(s);
        return;
    }
    if (s == NULL || !s->init) {   /* no rows */
        memset(&empty, 0, sizeof(empty));
        empty.min_len = empty.max_len = -1;
        empty.p = SP_P_DEFAULT; empty.k = SP_TOPK_DEFAULT;
        if (s != NULL) { empty.rows = 0; }
        s = &empty;
    }
    /* the compensation is dropped when it overflowed (an infinite value), as SQLite's sum() does */
    total = sp_sum_total(s->sum, s->comp);
    if (s->n_num > 0 && s->res_n == s->n_num) {   /* every value kept: two passes, as pandas */
        double mean = total / (double)s->n_num, ss = 0, c = 0;
        for (j = 0; j < s->res_n; j++) sp_sum_add(&ss, &c, (s->res[j] - mean) * (s->res[j] - mean));
        m2 = sp_sum_total(ss, c);
    } else if (s->n_num > 0) {
        sp_block_merge(s);
        m2 = s->m2;
    }
    if (!s->set_over) distinct_exact = s->set_n, distinct_est = (double)s->set_n;
    else distinct_exact = -1, distinct_est = s->hll ? sp_hll_estimate(s) : 0;
    if (s->res_n > 1) qsort(s->res, (size_t)s->res_n, sizeof(double), sp_dcmp);

    sp_put(&b, head, 8);
    sp_put_i64(&b, s->rows);
    for (j = 0; j < 5; j++) sp_put_i64(&b, s->n[j]);   /* null, integer, real, text, blob */
    sp_put_i64(&b, s->n_num);
    sp_put_f64(&b, total);
    sp_put_f64(&b, m2);
    sp_put_i64(&b, s->min_len);
    sp_put_i64(&b, s->max_len);
    sp_put_i64(&b, distinct_exact);
    sp_put_f64(&b, distinct_est);
    sp_put_i64(&b, s->p);
    sp_put_i64(&b, s->res_n);
    for (j = 1; j <= 3; j++) {
        if (s->res_n > 0) {
            int64_t lo = ((s->res_n - 1) * j) / 4, hi = lo + 1 < s->res_n ? lo + 1 : s->res_n - 1;
            sp_put_f64(&b, s->res[lo]);
            sp_put_f64(&b, s->res[hi]);
        } else {
            sp_put_f64(&b, NAN);
            sp_put_f64(&b, NAN);
        }
    }
    sp_put_i64(&b, s->k);
    sp_put_i64(&b, s->decrements);
    sp_put_i64(&b, s->nctr);
    sp_put_value(&b, &s->vmin, s->have_min);
    sp_put_value(&b, &s->vmax, s->have_min);
    for (m = 0; m < s->nctr; m++) {
        sp_put_i64(&b, s->ctr[m].c);
        sp_put_value(&b, &s->ctr[m].v, 1);
    }
    if (s != &empty) sp_free(s);
    if (b.oom) { free(b.p); sqlite3_result_error_nomem(ctx); return; }
    if (b.n > (size_t)INT_MAX) { free(b.p); sqlite3_result_error_toobig(ctx); return; }
    sqlite3_result_blob(ctx, b.p, (int)b.n, free);
}

/* register sqlnb_profile on `db` (any number of arguments; checked at the first row) */
static int sqlnb_profile_register(sqlite3 *db, const char *name) {
    return sqlite3_create_function_v2(db, name, -1, SQLITE_UTF8, NULL, NULL, sqlnb_profile_step,
                                      sqlnb_profile_final, NULL);
}

#endif /* SQLNB_PROFILE_AGG_H */
