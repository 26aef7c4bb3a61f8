/*
 * profile_sketch.h: the pieces of the sqlnb_profile aggregate (included by profile_agg.h, one
 * compilation unit per flavour like capi.h): its state, the hashes (SQLite's equality), SQLite's
 * order, the exact set of hashes and HyperLogLog (Ertl's estimator), the reservoir sample, the
 * Misra-Gries counters and the blocks of the variance. What each computes: profile_agg.h.
 */
#ifndef SQLNB_PROFILE_SKETCH_H
#define SQLNB_PROFILE_SKETCH_H

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
        if (a->cls == SP_INT) return sqlnb_int_real_cmp(a->i, d);
        return -sqlnb_int_real_cmp(i, a->d);
    }
    return sp_bytes_cmp(a->p, a->n, p, n);
}

/* copy a value into `v` (at most `limit` bytes of a TEXT/BLOB; -1: all); 0 on out of memory */
static inline int sp_set(sp_value *v, int cls, int64_t i, double d, const unsigned char *p, int64_t n, int64_t limit) {
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

/* min and max in SQLite's order (an INTEGER wins a tie with an equal REAL, as the grouped min() of
 * the exact profile); 0 on out of memory */
static inline int sp_minmax(sp_value *vmin, sp_value *vmax, int *have, int cls, int64_t i, double d,
                            const unsigned char *p, int64_t n) {
    if (!*have) {
        if (!sp_set(vmin, cls, i, d, p, n, -1) || !sp_set(vmax, cls, i, d, p, n, -1)) return 0;
        *have = 1;
    } else if (cls == SP_INT && vmin->cls == SP_INT && vmax->cls == SP_INT) {   /* the common cases inline */
        if (i < vmin->i) vmin->i = i;
        if (i > vmax->i) vmax->i = i;
    } else if (cls == SP_REAL && vmin->cls == SP_REAL && vmax->cls == SP_REAL) {
        if (d < vmin->d) vmin->d = d;
        if (d > vmax->d) vmax->d = d;
    } else {
        int c = sp_cmp(vmax, cls, i, d, p, n);
        if (c < 0 || (c == 0 && cls == SP_INT && vmax->cls == SP_REAL)) {
            if (!sp_set(vmax, cls, i, d, p, n, -1)) return 0;
        }
        if (c >= 0) {   /* above the max: not below the min (an ascending column compares once) */
            c = sp_cmp(vmin, cls, i, d, p, n);
            if (c > 0 || (c == 0 && cls == SP_INT && vmin->cls == SP_REAL)) {
                if (!sp_set(vmin, cls, i, d, p, n, -1)) return 0;
            }
        }
    }
    return 1;
}

/* one term of a Kahan-Babuska-Neumaier sum (SQLite's sum() since 3.43) */
static inline void sp_sum_add(double *sum, double *comp, double x) {
    double t = *sum + x;
    if (fabs(*sum) >= fabs(x)) *comp += (*sum - t) + x;
    else *comp += (x - t) + *sum;
    *sum = t;
}

/* the sum, its compensation dropped when that overflowed (an infinite value), as SQLite's sum() */
static inline double sp_sum_total(double sum, double comp) { return isfinite(comp) ? sum + comp : sum; }

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
    int64_t m, w;
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
    for (m = 0, w = 0; m < s->nctr; m++) {   /* survivors to the front; a slot keeps its buffer for reuse */
        if (--s->ctr[m].c > 0) {
            if (m != w) {
                sp_ctr t = s->ctr[w];
                s->ctr[w] = s->ctr[m];
                s->ctr[m] = t;
            }
            w++;
        }
    }
    s->nctr = w;
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

#endif /* SQLNB_PROFILE_SKETCH_H */
