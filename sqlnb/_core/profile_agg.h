/*
 * profile_agg.h: the sqlnb_profile(v [, K, p, k, exact, copy]) aggregate (included by
 * sqlnb/_core/profile.pxi, one compilation unit per flavour like capi.h): every statistic of
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
 *   to a hash collision, odds about n^2 / 2^65), then HyperLogLog with 2^p one-byte registers,
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

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "capi.h"

#define SP_NULL 0
#define SP_INT 1
#define SP_REAL 2
#define SP_TEXT 3
#define SP_BLOB 4

#define SP_MAGIC 0x31504e53u   /* "SNP1" */
#define SP_VERSION 1u

/* defaults and bounds of the optional arguments */
#define SP_K_DEFAULT 65536
#define SP_K_MAX (1 << 24)
#define SP_P_DEFAULT 14
#define SP_P_MIN 4
#define SP_P_MAX 18
#define SP_TOPK_DEFAULT 256
#define SP_TOPK_MAX 65536
#define SP_EXACT_DEFAULT 10000
#define SP_EXACT_MAX (1 << 22)
#define SP_COPY_DEFAULT 1024
#define SP_COPY_MAX (1 << 20)

typedef struct sp_value {
    int cls;
    int64_t i;
    double d;
    unsigned char *p;     /* TEXT/BLOB bytes (owned), `n` of them kept */
    int64_t n;
    int64_t full;         /* the value's length in bytes (> n: a counter kept a prefix) */
    int64_t cap;          /* bytes allocated at p */
} sp_value;

typedef struct sp_ctr {
    sp_value v;
    uint64_t h;
    int64_t c;
} sp_ctr;

typedef struct sp_idx {
    uint32_t tag;         /* the hash's high 32 bits */
    int32_t slot;
} sp_idx;

typedef struct sp_state {
    int init;
    int failed;           /* 1: out of memory (reported at the end); 2: an error already set */
    int64_t K, k, exact, copy;
    int p;
    int64_t rows, n[5];
    int have_min;
    sp_value vmin, vmax;
    int64_t min_len, max_len;
    /* numbers */
    int64_t n_num;
    double sum, comp, shift, wmean, m2;
    int64_t wn;           /* values merged into wmean, m2 */
    double block[256];    /* values (minus shift) not merged yet */
    int nblock;
    /* distinct */
    uint8_t *hll;
    uint64_t *set;
    int64_t set_n, set_slots;
    int set_over;
    /* reservoir */
    double *res;
    int64_t res_n, res_cap;
    uint64_t rng;
    /* Misra-Gries */
    sp_ctr *ctr;          /* k slots (buffers of freed slots are reused) */
    int64_t nctr;
    struct sp_idx *idx;   /* open addressing: (hash, slot + 1), slot 0 empty */
    uint64_t idx_mask;
    int64_t decrements;
} sp_state;

/* ---- hashing ------------------------------------------------------------------------------ */
static inline uint64_t sp_fmix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline uint64_t sp_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t sp_hash_int(int64_t i) { return sp_fmix((uint64_t)i ^ 0x9E3779B97F4A7C15ULL); }

/* a REAL equal to an INTEGER hashes as that INTEGER (SQLite's equality: 1 = 1.0, -0.0 = 0) */
static inline uint64_t sp_hash_real(double d) {
    uint64_t b;
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        int64_t i = (int64_t)d;
        if ((double)i == d) return sp_hash_int(i);
    }
    memcpy(&b, &d, 8);
    return sp_fmix(b ^ 0x3C6EF372FE94F82AULL);
}

/* 64 x 64 -> 128-bit product, its halves folded: the mixing step of the byte hash */
static inline uint64_t sp_mum(uint64_t a, uint64_t b) {
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* a byte hash: 16 bytes a round folded through sp_mum, the last 1-16 bytes read as two (possibly
 * overlapping) words, the length mixed in, murmur3's finalizer last */
static uint64_t sp_hash_bytes(const unsigned char *p, int64_t n, uint64_t seed) {
    const uint64_t c1 = 0xa0761d6478bd642fULL, c2 = 0xe7037ed1a0b428dbULL, c3 = 0x8ebc6af09c88c6e3ULL;
    uint64_t h = seed ^ ((uint64_t)n * c3), a, b;
    int64_t left = n;
    while (left > 16) {
        memcpy(&a, p, 8);
        memcpy(&b, p + 8, 8);
        h = sp_mum(a ^ c1, b ^ h ^ c2);
        p += 16; left -= 16;
    }
    if (left >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + left - 8, 8);
    } else if (left >= 4) {
        uint32_t x, y;
        memcpy(&x, p, 4);
        memcpy(&y, p + left - 4, 4);
        a = x; b = y;
    } else if (left > 0) {
        a = ((uint64_t)p[0] << 16) | ((uint64_t)p[left >> 1] << 8) | p[left - 1];
        b = 0;
    } else {
        a = b = 0;
    }
    h = sp_mum(a ^ c1 ^ (uint64_t)left, b ^ h ^ c2);
    return sp_fmix(h);
}

#define SP_SEED_TEXT 0x6a09e667f3bcc908ULL
#define SP_SEED_BLOB 0xbb67ae8584caa73bULL

/* ---- SQLite's order ----------------------------------------------------------------------- */
/* sqlite3IntFloatCompare (SQLite 3.43): an INTEGER against a REAL, exactly */
static int sp_int_real_cmp(int64_t i, double r) {
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

static int sp_rank(int cls) { return cls == SP_INT || cls == SP_REAL ? 1 : cls == SP_TEXT ? 2 : 3; }

static int sp_bytes_cmp(const unsigned char *a, int64_t na, const unsigned char *b, int64_t nb) {
    int64_t m = na < nb ? na : nb;
    int c;
    if (m > 0 && a[0] != b[0]) return a[0] < b[0] ? -1 : 1;   /* most comparisons end at the first byte */
    c = m > 0 ? memcmp(a, b, (size_t)m) : 0;
    if (c) return c < 0 ? -1 : 1;
    return (na > nb) - (na < nb);
}

/* the stored value `a` against the incoming one */
static inline int sp_cmp(const sp_value *a, int cls, int64_t i, double d, const unsigned char *p, int64_t n) {
    int ra = sp_rank(a->cls), rb = sp_rank(cls);
    if (ra != rb) return ra < rb ? -1 : 1;
    if (ra == 1) {
        if (a->cls == SP_INT && cls == SP_INT) return (a->i > i) - (a->i < i);
        if (a->cls == SP_REAL && cls == SP_REAL) return (a->d > d) - (a->d < d);
        if (a->cls == SP_INT) return sp_int_real_cmp(a->i, d);
        return -sp_int_real_cmp(i, a->d);
    }
    return sp_bytes_cmp(a->p, a->n, p, n);
}

/* copy a value into `v` (at most `limit` bytes of a TEXT/BLOB; -1: all); 0 on out of memory */
static int sp_set(sp_value *v, int cls, int64_t i, double d, const unsigned char *p, int64_t n, int64_t limit) {
    int64_t keep = (limit >= 0 && n > limit) ? limit : n;
    v->cls = cls; v->i = i; v->d = d; v->full = n; v->n = 0;
    if (cls == SP_TEXT || cls == SP_BLOB) {
        if (keep > v->cap || v->p == NULL) {
            int64_t want = keep > 16 ? keep : 16;
            unsigned char *np;
            if ((uint64_t)want > (uint64_t)SIZE_MAX / 2) return 0;
            np = (unsigned char *)realloc(v->p, (size_t)want);
            if (np == NULL) return 0;
            v->p = np; v->cap = want;
        }
        if (keep > 0) memcpy(v->p, p, (size_t)keep);
        v->n = keep;
    }
    return 1;
}

/* SQLite's length() of a TEXT: characters up to the first NUL, a byte >= 0xc0 starting one and
 * the 10xxxxxx bytes after it belonging to it (sqlite3 func.c lengthFunc, SQLITE_SKIP_UTF8) */
static int64_t sp_text_length(const unsigned char *z, int64_t n) {
    const unsigned char *end = z + n;
    int64_t len = 0;
    uint64_t w;
    while (end - z >= 8) {   /* 8 ASCII bytes, none NUL: 8 characters */
        memcpy(&w, z, 8);
        if ((w & 0x8080808080808080ULL) || ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL)) break;
        z += 8; len += 8;
    }
    while (z < end && *z) {
        len++;
        if (*(z++) >= 0xc0) {
            while (z < end && (*z & 0xc0) == 0x80) z++;
        }
    }
    return len;
}

/* ---- the pieces --------------------------------------------------------------------------- */
static inline uint64_t sp_rand(sp_state *s) {   /* splitmix64 */
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void sp_hll_add(sp_state *s, uint64_t h) {
    uint64_t j = h >> (64 - s->p);
    uint64_t rest = h << s->p;
    int rho = rest ? __builtin_clzll(rest) + 1 : 64 - s->p + 1;
    if (rho > s->hll[j]) s->hll[j] = (uint8_t)rho;
}

/* the exact set grew past `exact`: HyperLogLog from now on, its registers filled from the set's
 * hashes (a register keeps a maximum: the order of the values does not matter); 0 on out of memory */
static int sp_set_overflow(sp_state *s) {
    int64_t m;
    s->hll = (uint8_t *)calloc((size_t)1 << s->p, 1);
    if (s->hll == NULL) return 0;
    for (m = 0; m < s->set_slots; m++)
        if (s->set[m]) sp_hll_add(s, s->set[m]);
    free(s->set);
    s->set = NULL;
    s->set_over = 1;
    return 1;
}

/* the exact set of hashes while it is small (HyperLogLog after); 0 on out of memory */
static int sp_set_add(sp_state *s, uint64_t h) {
    uint64_t mask, j;
    if (s->set_over) { sp_hll_add(s, h); return 1; }
    if (h == 0) h = 1;   /* 0 marks an empty slot */
    if (s->set == NULL || (s->set_n + 1) * 2 > s->set_slots) {
        int64_t slots = s->set_slots ? s->set_slots * 2 : 64, m;
        uint64_t *ns;
        if (s->set_n + 1 > s->exact) {   /* too many to keep: HyperLogLog alone from now on */
            if (!sp_set_overflow(s)) return 0;
            sp_hll_add(s, h);
            return 1;
        }
        ns = (uint64_t *)calloc((size_t)slots, sizeof(uint64_t));
        if (ns == NULL) return 0;
        for (m = 0; m < s->set_slots; m++) {
            uint64_t x = s->set[m];
            if (x) {
                j = x & (uint64_t)(slots - 1);
                while (ns[j]) j = (j + 1) & (uint64_t)(slots - 1);
                ns[j] = x;
            }
        }
        free(s->set);
        s->set = ns; s->set_slots = slots;
    }
    mask = (uint64_t)(s->set_slots - 1);
    j = h & mask;
    while (s->set[j]) {
        if (s->set[j] == h) return 1;
        j = (j + 1) & mask;
    }
    if (s->set_n + 1 > s->exact) {
        if (!sp_set_overflow(s)) return 0;
        sp_hll_add(s, h);
        return 1;
    }
    s->set[j] = h;
    s->set_n++;
    return 1;
}

static int sp_res_add(sp_state *s, double x) {
    if (s->res_n < s->K) {
        if (s->res_n == s->res_cap) {
            int64_t cap = s->res_cap ? s->res_cap * 2 : 256;
            double *nr;
            if (cap > s->K) cap = s->K;
            nr = (double *)realloc(s->res, (size_t)cap * sizeof(double));
            if (nr == NULL) return 0;
            s->res = nr; s->res_cap = cap;
        }
        s->res[s->res_n++] = x;
    } else {
        /* uniform in [0, n_num) by a multiply-shift (Lemire), n_num counting this value: algorithm R */
        uint64_t j = (uint64_t)(((unsigned __int128)sp_rand(s) * (uint64_t)s->n_num) >> 64);
        if (j < (uint64_t)s->K) s->res[j] = x;
    }
    return 1;
}

static int sp_ctr_eq(const sp_ctr *c, uint64_t h, int cls, int64_t i, double d, const unsigned char *p, int64_t n) {
    if (c->h != h || c->v.cls != cls) return 0;
    if (cls == SP_INT) return c->v.i == i;
    if (cls == SP_REAL) return c->v.d == d;
    if (c->v.full != n) return 0;
    return c->v.n == 0 || memcmp(c->v.p, p, (size_t)c->v.n) == 0;   /* a kept prefix: the hash decides the rest */
}

static void sp_idx_put(sp_state *s, int64_t slot) {
    uint64_t j = s->ctr[slot].h & s->idx_mask;
    while (s->idx[j].slot) j = (j + 1) & s->idx_mask;
    s->idx[j].tag = (uint32_t)(s->ctr[slot].h >> 32);
    s->idx[j].slot = (int32_t)(slot + 1);
}

/* `h`: the value's hash mixed with its class (sp_mg_hash) */
static int sp_mg_add(sp_state *s, uint64_t h, int cls, int64_t i, double d, const unsigned char *p, int64_t n) {
    uint64_t j;
    int64_t m;
    if (s->ctr == NULL) {
        uint64_t slots = 4;
        while (slots < (uint64_t)s->k * 2) slots <<= 1;
        s->ctr = (sp_ctr *)calloc((size_t)s->k, sizeof(sp_ctr));
        s->idx = (sp_idx *)calloc((size_t)slots, sizeof(sp_idx));
        if (s->ctr == NULL || s->idx == NULL) return 0;
        s->idx_mask = slots - 1;
    }
    j = h & s->idx_mask;
    while (s->idx[j].slot) {
        if (s->idx[j].tag == (uint32_t)(h >> 32)) {   /* a counter is read only when the tag matches */
            sp_ctr *c = &s->ctr[s->idx[j].slot - 1];
            if (sp_ctr_eq(c, h, cls, i, d, p, n)) { c->c++; return 1; }
        }
        j = (j + 1) & s->idx_mask;
    }
    if (s->nctr < s->k) {
        sp_ctr *c = &s->ctr[s->nctr];
        if (!sp_set(&c->v, cls, i, d, p, n, s->copy)) return 0;
        c->h = h; c->c = 1;
        s->idx[j].tag = (uint32_t)(h >> 32);
        s->idx[j].slot = (int32_t)(s->nctr + 1);
        s->nctr++;
        return 1;
    }
    /* full: every counter and the new value lose one (the new value is gone); drop zeros */
    s->decrements++;
    for (m = 0; m < s->nctr;) {
        if (--s->ctr[m].c == 0) {
            sp_ctr t = s->ctr[m];
            s->ctr[m] = s->ctr[s->nctr - 1];
            s->ctr[s->nctr - 1] = t;    /* keeps the buffer for reuse */
            s->nctr--;
        } else {
            m++;
        }
    }
    memset(s->idx, 0, (size_t)(s->idx_mask + 1) * sizeof(sp_idx));
    for (m = 0; m < s->nctr; m++) sp_idx_put(s, m);
    return 1;
}

/* the block of shifted values into (wn, wmean, m2): its mean, its sum of squared deviations by the
 * corrected two-pass formula, merged by Chan et al.'s update (no division per value) */
static void sp_block_merge(sp_state *s) {
    int j, nb = s->nblock;
    double sb = 0, mb, d, sd = 0, sd2 = 0, m2b, delta;
    int64_t n;
    if (nb == 0) return;
    for (j = 0; j < nb; j++) sb += s->block[j];
    mb = sb / nb;
    for (j = 0; j < nb; j++) { d = s->block[j] - mb; sd += d; sd2 += d * d; }
    m2b = sd2 - sd * sd / nb;
    n = s->wn + nb;
    delta = mb - s->wmean;
    s->m2 += m2b + delta * delta * ((double)s->wn * (double)nb / (double)n);
    s->wmean += delta * ((double)nb / (double)n);
    s->wn = n;
    s->nblock = 0;
}

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
    /* min and max (SQLite's order; an INTEGER wins a tie with an equal REAL) */
    if (!s->have_min) {
        if (!sp_set(&s->vmin, cls, i, d, p, n, -1) || !sp_set(&s->vmax, cls, i, d, p, n, -1)) return 0;
        s->have_min = 1;
    } else if (cls == SP_INT && s->vmin.cls == SP_INT && s->vmax.cls == SP_INT) {   /* the common cases inline */
        if (i < s->vmin.i) s->vmin.i = i;
        if (i > s->vmax.i) s->vmax.i = i;
    } else if (cls == SP_REAL && s->vmin.cls == SP_REAL && s->vmax.cls == SP_REAL) {
        if (d < s->vmin.d) s->vmin.d = d;
        if (d > s->vmax.d) s->vmax.d = d;
    } else {
        int c = sp_cmp(&s->vmin, cls, i, d, p, n);
        if (c > 0 || (c == 0 && cls == SP_INT && s->vmin.cls == SP_REAL)) {
            if (!sp_set(&s->vmin, cls, i, d, p, n, -1)) return 0;
        }
        c = sp_cmp(&s->vmax, cls, i, d, p, n);
        if (c < 0 || (c == 0 && cls == SP_INT && s->vmax.cls == SP_REAL)) {
            if (!sp_set(&s->vmax, cls, i, d, p, n, -1)) return 0;
        }
    }
    if (cls == SP_INT || cls == SP_REAL) {
        double y, sum;
        s->n_num++;
        sum = s->sum + d;   /* Kahan-Babuska-Neumaier */
        if (fabs(s->sum) >= fabs(d)) s->comp += (s->sum - sum) + d;
        else s->comp += (d - sum) + s->sum;
        s->sum = sum;
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

/* Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017), section 4 */
static double sp_sigma(double x) {
    double y = 1, z = x, zp;
    if (x == 1) return INFINITY;
    do { x *= x; zp = z; z += x * y; y += y; } while (zp != z);
    return z;
}

static double sp_tau(double x) {
    double y = 1, z, zp;
    if (x == 0 || x == 1) return 0;
    z = 1 - x;
    do { x = sqrt(x); zp = z; y *= 0.5; z -= (1 - x) * (1 - x) * y; } while (zp != z);
    return z / 3;
}

static double sp_hll_estimate(const sp_state *s) {
    int q = 64 - s->p, k;
    double m = (double)((int64_t)1 << s->p), z;
    int64_t counts[66] = {0}, j;
    for (j = 0; j < ((int64_t)1 << s->p); j++) counts[s->hll[j]]++;
    if (counts[0] == (int64_t)m) return 0;
    z = m * sp_tau(1 - (double)counts[q + 1] / m);
    for (k = q; k >= 1; k--) z = 0.5 * (z + (double)counts[k]);
    z += m * sp_sigma((double)counts[0] / m);
    return (m * m / (2 * log(2.0))) / z;
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
    total = isfinite(s->comp) ? s->sum + s->comp : s->sum;
    if (s->n_num > 0 && s->res_n == s->n_num) {   /* every value kept: two passes, as pandas */
        double mean = total / (double)s->n_num, ss = 0, c = 0, t, x;
        for (j = 0; j < s->res_n; j++) {
            x = (s->res[j] - mean) * (s->res[j] - mean);
            t = ss + x;
            if (fabs(ss) >= fabs(x)) c += (ss - t) + x; else c += (x - t) + ss;
            ss = t;
        }
        m2 = isfinite(c) ? ss + c : ss;
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
