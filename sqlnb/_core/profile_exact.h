/*
 * profile_exact.h: the exact column profile in C (included by sqlnb/_core/profile.pxi, one
 * compilation unit per flavour like capi.h; it uses the pieces of profile_sketch.h and the packing
 * of profile_agg.h). Three SQL functions share one configuration (pe_cfg, the functions' user data):
 *
 *   sqlnb_profile_config(budget, table_max, arena_max, top, hash_bits): set it before a read.
 *   sqlnb_profile_exact(v): every statistic of one column, exactly (read 1).
 *   sqlnb_profile_pick(v, spec): the TEXT/BLOB values read 1 could only count (read 2).
 *
 * Read 1, per column:
 * - streamed: rows, values per storage class, min and max in SQLite's order, the Kahan-Babuska-
 *   Neumaier sum of the INTEGER and REAL values, min/max text length (as sqlnb_profile);
 * - while the column has at most `table_max` distinct values holding at most `arena_max` bytes of
 *   TEXT/BLOB: one hash table of its (storage class, value) groups with counts, the values
 *   themselves in it (numbers in the entry, TEXT/BLOB bytes in an arena) and compared exactly;
 * - beyond ("big"): INTEGER values into an int64 array, REAL values into a float64 array (sorted by
 *   a radix sort at the end: 8 bytes a value), TEXT/BLOB values as a 64-bit hash each (the
 *   table's groups are spilled there, count times). At the end the sorted hashes give the TEXT/BLOB
 *   groups' counts; which values they are, read 2 says, and it verifies that no two different
 *   values shared a hash: two values with one hash make a group of count >= 2, and read 2 compares a
 *   second, independent hash of every value of such a group with its first value's. A collision (odds
 *   about n^2 / 2^65 per column) is reported, never hidden: Python then profiles that column with
 *   plain SQL.
 * - from the groups: distinct values (SQLite's equality: 1 and 1.0 one value), the values at the
 *   ranks around each quartile (pandas' linear definition over the numbers as float64), the sum
 *   of squared deviations from the mean (two passes: the mean first), the `top` most common groups
 *   (count descending, then SQLite's order).
 *
 * Memory: every column of a statement draws on one budget (`budget` bytes of tables, arenas and
 * arrays); a column whose next growth would pass it gives its memory back and answers "deferred":
 * Python reads it again in a later statement with fewer columns, and profiles a column that is
 * deferred alone with plain SQL (sorts SQLite may spill to disk). The radix sort at the end takes,
 * one column at a time, a second array as large as the one it sorts.
 *
 * Results are BLOBs in native byte order (sqlnb/look/exact.py unpacks them). No Python runs per
 * row: the functions step with the GIL released, under the progress handler, like sqlnb_profile.
 */
#ifndef SQLNB_PROFILE_EXACT_H
#define SQLNB_PROFILE_EXACT_H

#include "profile_agg.h"

#define PE_MAGIC 0x31584e53u        /* "SNX1": a read-1 result */
#define PE_SPEC_MAGIC 0x31534e53u   /* "SNS1": what read 2 needs of one column */
#define PE_PICK_MAGIC 0x31504b53u   /* "SKP1": a read-2 result */
#define PE_VERSION 1u
#define PE_SEED2_TEXT 0x3c6ef372fe94f82bULL   /* the second hash (collision check) */
#define PE_SEED2_BLOB 0xa54ff53a5f1d36f1ULL

#define PE_BUDGET_DEFAULT ((int64_t)64 << 20)
#define PE_TABLE_MAX_DEFAULT 65536
#define PE_ARENA_MAX_DEFAULT ((int64_t)4 << 20)
#define PE_TOP_DEFAULT 5

typedef struct pe_cfg {
    int refs;                /* the functions holding it (pe_cfg_unref) */
    int64_t budget, used;    /* bytes all columns of a statement may hold; held now */
    int64_t table_max, arena_max, top;
    uint64_t mask;           /* the bits of a TEXT/BLOB hash kept (all but in tests of collisions) */
} pe_cfg;

/* a group of the exact table: 16 bytes, so that the tables of a row's columns stay in the caches */
typedef struct pe_ent {
    uint64_t key;            /* INTEGER: the int64; REAL: the double's bits (-0.0 as 0.0); TEXT/BLOB: the hash */
    uint64_t cc;             /* the storage class << 56 | the count; 0: an empty slot */
} pe_ent;

#define PE_COUNT(e) ((int64_t)((e)->cc & 0x00ffffffffffffffULL))
#define PE_CLS(e) ((int)((e)->cc >> 56))

/* one value of a row, read before any group is touched (the table's slot is prefetched meanwhile) */
typedef struct pe_in {
    int cls;                 /* SP_NULL .. SP_BLOB */
    int64_t i, n;
    double d;
    const unsigned char *p;
    uint64_t key, h;         /* the group's key and the hash placing it in the table */
} pe_in;

typedef struct pe_state {
    int init, deferred, big;
    pe_cfg *cfg;
    int64_t rows, n[5], n_num;
    int have_min;
    sp_value vmin, vmax;
    int64_t min_len, max_len;
    double sum, comp;
    pe_ent *tab;
    uint64_t *tx;            /* per slot of a TEXT/BLOB group: offset << 32 | length of its bytes in the arena */
    int64_t tab_n, tab_slots;
    unsigned char *arena;
    int64_t arena_n, arena_cap;
    int64_t *ints;
    int64_t ni, ci;
    double *reals;
    int64_t nr, cr;
    uint64_t *hs;
    int64_t nh, ch;
    uint64_t hsum;           /* sum of the TEXT/BLOB hashes: read 2 checks it read the same values */
    sp_value *small;         /* big: the `top` smallest distinct TEXT/BLOB values (SQLite's order) */
    int64_t nsmall;
    /* while the TEXT/BLOB values arrive in order (a time, a key), their groups are runs: counted
     * exactly on the way, the most common kept, no hash needed at the end and no second read */
    int unsorted;            /* a value came before the one preceding it: no runs from then on */
    int have_prev;
    sp_value prev;           /* the last TEXT/BLOB value */
    int64_t run, nruns;      /* the current run's length; runs closed */
    sp_value *rtop;          /* the `top` longest runs closed (count descending, then in order) */
    int64_t *rtop_c, nrtop;
    int64_t charged;         /* bytes drawn from cfg->used */
} pe_state;

/* ---- memory on the budget ----------------------------------------------------------------- */
static int pe_charge(pe_state *s, int64_t delta) {
    if (delta > 0 && s->cfg->used + delta > s->cfg->budget) return 0;
    s->cfg->used += delta;
    s->charged += delta;
    return 1;
}

/* room for `need` elements of `size` bytes at *p (capacity *cap): 1 done, -1 past the budget,
 * 0 out of memory */
static int pe_reserve(pe_state *s, void **p, int64_t *cap, size_t size, int64_t need) {
    int64_t ncap;
    void *np;
    if (need <= *cap) return 1;
    ncap = *cap ? *cap : 256;
    while (ncap < need) {
        if (ncap > INT64_MAX / 4 / (int64_t)size) return 0;
        ncap *= 2;
    }
    if (!pe_charge(s, (ncap - *cap) * (int64_t)size)) return -1;
    np = realloc(*p, (size_t)ncap * size);
    if (np == NULL) { pe_charge(s, -(ncap - *cap) * (int64_t)size); return 0; }
    *p = np;
    *cap = ncap;
    return 1;
}

static void pe_free_small(pe_state *s) {
    int64_t j;
    if (s->small) for (j = 0; j < s->cfg->top; j++) free(s->small[j].p);
    free(s->small);
    s->small = NULL; s->nsmall = 0;
}

static void pe_free_runs(pe_state *s) {
    int64_t j;
    if (s->rtop) for (j = 0; j < s->cfg->top; j++) free(s->rtop[j].p);
    free(s->rtop); free(s->rtop_c); free(s->prev.p);
    s->rtop = NULL; s->rtop_c = NULL; s->prev.p = NULL; s->nrtop = 0; s->have_prev = 0;
}

static void pe_release_groups(pe_state *s) {
    if (s->cfg) { pe_free_small(s); pe_free_runs(s); }
    free(s->tab); free(s->tx); free(s->arena); free(s->ints); free(s->reals); free(s->hs);
    s->tab = NULL; s->tx = NULL; s->arena = NULL; s->ints = NULL; s->reals = NULL; s->hs = NULL;
    s->tab_n = s->tab_slots = s->arena_n = s->arena_cap = 0;
    s->ni = s->ci = s->nr = s->cr = s->nh = s->ch = 0;
    if (s->cfg) s->cfg->used -= s->charged;
    s->charged = 0;
}

static void pe_free(pe_state *s) {
    pe_release_groups(s);
    free(s->vmin.p); free(s->vmax.p);
    s->vmin.p = s->vmax.p = NULL;
}

/* ---- the groups: a table while small, arrays when big ------------------------------------- */
static inline uint64_t pe_num_hash(int cls, uint64_t key) {
    return sp_fmix(key ^ (cls == SP_INT ? 0x9E3779B97F4A7C15ULL : 0x3C6EF372FE94F82AULL));
}

static inline uint64_t pe_real_key(double d) {
    uint64_t b;
    if (d == 0) d = 0.0;   /* -0.0 = 0.0, as SQLite groups them */
    memcpy(&b, &d, 8);
    return b;
}

static inline double pe_key_real(uint64_t b) {
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static inline uint64_t pe_slot_hash(const pe_ent *e) {
    int cls = PE_CLS(e);
    return cls == SP_INT || cls == SP_REAL ? pe_num_hash(cls, e->key) : e->key;
}

static int pe_tab_grow(pe_state *s) {
    int64_t slots = s->tab_slots ? s->tab_slots * 2 : 64, m;
    int64_t more = (slots - s->tab_slots) * (int64_t)(sizeof(pe_ent) + sizeof(uint64_t));
    pe_ent *nt;
    uint64_t *ntx, mask = (uint64_t)slots - 1, j;
    if (!pe_charge(s, more)) return -1;
    nt = (pe_ent *)calloc((size_t)slots, sizeof(pe_ent));
    ntx = (uint64_t *)malloc((size_t)slots * sizeof(uint64_t));
    if (nt == NULL || ntx == NULL) { free(nt); free(ntx); pe_charge(s, -more); return 0; }
    for (m = 0; m < s->tab_slots; m++) {
        if (s->tab[m].cc) {
            j = pe_slot_hash(&s->tab[m]) & mask;
            while (nt[j].cc) j = (j + 1) & mask;
            nt[j] = s->tab[m];
            ntx[j] = s->tx[m];
        }
    }
    free(s->tab); free(s->tx);
    s->tab = nt;
    s->tx = ntx;
    s->tab_slots = slots;
    return 1;
}

/* one value into the table: 1 done, 2 the table is full (go big), -1 past the budget, 0 out of memory */
static int pe_tab_add(pe_state *s, const pe_in *x) {
    uint64_t mask, j, cls = (uint64_t)x->cls;
    int r;
    if (s->tab_slots == 0 && (r = pe_tab_grow(s)) != 1) return r;
    mask = (uint64_t)s->tab_slots - 1;
    j = x->h & mask;
    while (s->tab[j].cc) {
        pe_ent *e = &s->tab[j];
        if (e->key == x->key && (e->cc >> 56) == cls
            && (x->cls == SP_INT || x->cls == SP_REAL
                || ((s->tx[j] & 0xffffffffULL) == (uint64_t)x->n
                    && (x->n == 0 || memcmp(s->arena + (s->tx[j] >> 32), x->p, (size_t)x->n) == 0)))) {
            e->cc++;
            return 1;
        }
        j = (j + 1) & mask;
    }
    if (s->tab_n >= s->cfg->table_max) return 2;
    if (x->cls == SP_TEXT || x->cls == SP_BLOB) {
        if (s->arena_n + x->n > s->cfg->arena_max || x->n > UINT32_MAX || s->arena_n + x->n > UINT32_MAX) return 2;
        if ((r = pe_reserve(s, (void **)&s->arena, &s->arena_cap, 1, s->arena_n + x->n)) != 1) return r;
    }
    if ((s->tab_n + 1) * 2 > s->tab_slots) {
        if ((r = pe_tab_grow(s)) != 1) return r;
        return pe_tab_add(s, x);
    }
    s->tab[j].key = x->key;
    s->tab[j].cc = (cls << 56) | 1;
    if (x->cls == SP_TEXT || x->cls == SP_BLOB) {
        if (x->n > 0) memcpy(s->arena + s->arena_n, x->p, (size_t)x->n);
        s->tx[j] = ((uint64_t)s->arena_n << 32) | (uint64_t)x->n;
        s->arena_n += x->n;
    } else {
        s->tx[j] = 0;
    }
    s->tab_n++;
    return 1;
}

/* append `times` copies of a value to one of the column's arrays (the fast path inline) */
#define PE_PUSH(name, T, arr, n, cap)                                                        \
    static inline int name(pe_state *s, T x, int64_t times) {                                \
        int r;                                                                               \
        if (times == 1 && s->n < s->cap) { s->arr[s->n++] = x; return 1; }                   \
        r = pe_reserve(s, (void **)&s->arr, &s->cap, sizeof(T), s->n + times);               \
        if (r != 1) return r;                                                                \
        while (times-- > 0) s->arr[s->n++] = x;                                              \
        return 1;                                                                            \
    }
PE_PUSH(pe_push_int, int64_t, ints, ni, ci)
PE_PUSH(pe_push_real, double, reals, nr, cr)

static inline int pe_push_hash(pe_state *s, uint64_t h, int64_t times) {
    int r;
    h &= s->cfg->mask;
    if (times == 1 && s->nh < s->ch) { s->hsum += h; s->hs[s->nh++] = h; return 1; }
    r = pe_reserve(s, (void **)&s->hs, &s->ch, sizeof(uint64_t), s->nh + times);
    if (r != 1) return r;
    s->hsum += h * (uint64_t)times;
    while (times-- > 0) s->hs[s->nh++] = h;
    return 1;
}

/* a TEXT/BLOB value to the `top` smallest distinct ones of a big column (one comparison with the
 * largest kept, for most values); 0 on out of memory */
static int pe_small_offer(pe_state *s, int cls, const unsigned char *p, int64_t n) {
    int64_t k = s->cfg->top, j;
    sp_value spare;
    if (s->small == NULL) {
        s->small = (sp_value *)calloc((size_t)k, sizeof(sp_value));
        if (s->small == NULL) return 0;
    }
    if (s->nsmall == k && sp_cmp(&s->small[k - 1], cls, 0, 0, p, n) <= 0) return 1;
    for (j = 0; j < s->nsmall; j++)
        if (sp_cmp(&s->small[j], cls, 0, 0, p, n) == 0) return 1;   /* kept already */
    j = s->nsmall < k ? s->nsmall++ : k - 1;
    spare = s->small[j];   /* the slot whose buffer is reused */
    while (j > 0 && sp_cmp(&s->small[j - 1], cls, 0, 0, p, n) > 0) {
        s->small[j] = s->small[j - 1];
        j--;
    }
    s->small[j] = spare;
    return sp_set(&s->small[j], cls, 0, 0, p, n, -1);
}

/* ascending radix sort of n keys: 11 bits a pass (6 passes), passes where every key has the same
 * digit skipped; a sorted array is left as it is; 0 on out of memory */
#define PE_RADIX_BITS 11
#define PE_RADIX_PASSES 6
static int pe_radix(uint64_t *a, int64_t n) {
    const uint64_t dmask = (1u << PE_RADIX_BITS) - 1;
    int64_t (*cnt)[1 << PE_RADIX_BITS], j;
    uint64_t *tmp, *src = a, *dst;
    int b, sorted = 1;
    for (j = 1; j < n; j++) if (a[j - 1] > a[j]) { sorted = 0; break; }
    if (sorted) return 1;
    cnt = (int64_t (*)[1 << PE_RADIX_BITS])calloc(PE_RADIX_PASSES, sizeof(*cnt));
    tmp = (uint64_t *)malloc((size_t)n * sizeof(uint64_t));
    if (cnt == NULL || tmp == NULL) { free(cnt); free(tmp); return 0; }
    for (j = 0; j < n; j++) {
        uint64_t x = a[j];
        for (b = 0; b < PE_RADIX_PASSES; b++) cnt[b][(x >> (PE_RADIX_BITS * b)) & dmask]++;
    }
    dst = tmp;
    for (b = 0; b < PE_RADIX_PASSES; b++) {
        int64_t sum = 0, c;
        int k, shift = PE_RADIX_BITS * b;
        if (cnt[b][(a[0] >> shift) & dmask] == n) continue;   /* every key has this digit */
        for (k = 0; k < (1 << PE_RADIX_BITS); k++) { c = cnt[b][k]; cnt[b][k] = sum; sum += c; }
        for (j = 0; j < n; j++) dst[cnt[b][(src[j] >> shift) & dmask]++] = src[j];
        { uint64_t *t = src; src = dst; dst = t; }
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof(uint64_t));
    free(tmp); free(cnt);
    return 1;
}

/* ascending sort of 64-bit hashes (uniform): radix on the top 33 bits (3 passes), then the rare
 * runs sharing them (about n^2 / 2^34 pairs) put in order by insertion; 0 on out of memory */
static int pe_sort_hashes(uint64_t *a, int64_t n) {
    const uint64_t dmask = (1u << PE_RADIX_BITS) - 1;
    int64_t (*cnt)[1 << PE_RADIX_BITS], j, i;
    uint64_t *tmp, *src = a, *dst;
    int b;
    if (n < 2) return 1;
    cnt = (int64_t (*)[1 << PE_RADIX_BITS])calloc(3, sizeof(*cnt));
    tmp = (uint64_t *)malloc((size_t)n * sizeof(uint64_t));
    if (cnt == NULL || tmp == NULL) { free(cnt); free(tmp); return 0; }
    for (j = 0; j < n; j++) {
        uint64_t x = a[j];
        for (b = 0; b < 3; b++) cnt[b][(x >> (31 + PE_RADIX_BITS * b)) & dmask]++;
    }
    dst = tmp;
    for (b = 0; b < 3; b++) {
        int64_t sum = 0, c;
        int k, shift = 31 + PE_RADIX_BITS * b;
        for (k = 0; k < (1 << PE_RADIX_BITS); k++) { c = cnt[b][k]; cnt[b][k] = sum; sum += c; }
        for (j = 0; j < n; j++) dst[cnt[b][(src[j] >> shift) & dmask]++] = src[j];
        { uint64_t *t = src; src = dst; dst = t; }
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof(uint64_t));
    free(tmp); free(cnt);
    for (j = 1; j < n; j++) {   /* the low 31 bits, within runs of equal top bits */
        uint64_t x = a[j];
        if ((a[j - 1] >> 31) != (x >> 31) || a[j - 1] <= x) continue;
        for (i = j; i > 0 && (a[i - 1] >> 31) == (x >> 31) && a[i - 1] > x; i--) a[i] = a[i - 1];
        a[i] = x;
    }
    return 1;
}

static int pe_sort_ints(int64_t *a, int64_t n) {
    uint64_t *u = (uint64_t *)a;
    int64_t j;
    int ok;
    for (j = 0; j < n; j++) u[j] ^= 0x8000000000000000ULL;
    ok = pe_radix(u, n);
    for (j = 0; j < n; j++) u[j] ^= 0x8000000000000000ULL;
    return ok;
}

static int pe_sort_reals(double *a, int64_t n) {   /* no NaN (SQLite stores none); -0.0 already 0.0 */
    uint64_t *u = (uint64_t *)a;
    int64_t j;
    int ok;
    for (j = 0; j < n; j++) u[j] = (u[j] >> 63) ? ~u[j] : u[j] | 0x8000000000000000ULL;
    ok = pe_radix(u, n);
    for (j = 0; j < n; j++) u[j] = (u[j] >> 63) ? u[j] & 0x7fffffffffffffffULL : ~u[j];
    return ok;
}

/* the table's groups into the arrays, count times each (TEXT/BLOB groups also offered to the
 * smallest values); the table and the arena freed */
static int pe_go_big(pe_state *s) {
    int64_t m, ni = 0, nr = 0, nh = 0, c;
    int r, cls;
    for (m = 0; m < s->tab_slots; m++) {
        pe_ent *e = &s->tab[m];
        if (!e->cc) continue;
        cls = PE_CLS(e); c = PE_COUNT(e);
        if (cls == SP_INT) ni += c; else if (cls == SP_REAL) nr += c; else nh += c;
    }
    if ((r = pe_reserve(s, (void **)&s->ints, &s->ci, sizeof(int64_t), ni)) != 1) return r;
    if ((r = pe_reserve(s, (void **)&s->reals, &s->cr, sizeof(double), nr)) != 1) return r;
    if ((r = pe_reserve(s, (void **)&s->hs, &s->ch, sizeof(uint64_t), nh)) != 1) return r;
    for (m = 0; m < s->tab_slots; m++) {
        pe_ent *e = &s->tab[m];
        if (!e->cc) continue;
        cls = PE_CLS(e); c = PE_COUNT(e);
        if (cls == SP_INT) pe_push_int(s, (int64_t)e->key, c);
        else if (cls == SP_REAL) pe_push_real(s, pe_key_real(e->key), c);
        else {
            pe_push_hash(s, e->key, c);
            if (!pe_small_offer(s, cls, s->arena + (s->tx[m] >> 32), (int64_t)(s->tx[m] & 0xffffffffULL)))
                return 0;
        }
    }
    /* in order, so that a column arriving sorted (a key, a time) stays sorted and is not sorted again */
    if (!pe_sort_ints(s->ints, s->ni) || !pe_sort_reals(s->reals, s->nr)) return 0;
    pe_charge(s, -(s->tab_slots * (int64_t)(sizeof(pe_ent) + sizeof(uint64_t)) + s->arena_cap));
    free(s->tab); free(s->tx); free(s->arena);
    s->tab = NULL; s->tx = NULL; s->arena = NULL;
    s->tab_n = s->tab_slots = s->arena_n = s->arena_cap = 0;
    s->big = 1;
    return 1;
}

/* one non-NULL value into the groups: 1 done, -1 past the budget, 0 out of memory */
static int pe_group(pe_state *s, const pe_in *x) {
    int r;
    if (!s->big) {
        r = pe_tab_add(s, x);
        if (r != 2) return r;
        if ((r = pe_go_big(s)) != 1) return r;
    }
    if (x->cls == SP_INT) return pe_push_int(s, x->i, 1);
    if (x->cls == SP_REAL) return pe_push_real(s, pe_key_real(x->key), 1);
    if ((r = pe_push_hash(s, x->key, 1)) != 1) return r;
    return pe_small_offer(s, x->cls, x->p, x->n);
}

/* ---- read 1: the aggregate ---------------------------------------------------------------- */
static void pe_defer(pe_state *s) {
    pe_release_groups(s);
    s->deferred = 1;
}

/* the run of the last value ends: offered to the longest runs (they arrive in order, so a run no
 * longer than the shortest kept loses its tie); 0 on out of memory */
static int pe_run_close(pe_state *s) {
    int64_t k = s->cfg->top, j;
    sp_value spare;
    if (!s->have_prev) return 1;
    s->nruns++;
    if (s->rtop == NULL) {
        s->rtop = (sp_value *)calloc((size_t)k, sizeof(sp_value));
        s->rtop_c = (int64_t *)calloc((size_t)k, sizeof(int64_t));
        if (s->rtop == NULL || s->rtop_c == NULL) return 0;
    }
    if (s->nrtop == k && s->run <= s->rtop_c[k - 1]) return 1;
    j = s->nrtop < k ? s->nrtop++ : k - 1;
    spare = s->rtop[j];
    while (j > 0 && s->run > s->rtop_c[j - 1]) {
        s->rtop[j] = s->rtop[j - 1];
        s->rtop_c[j] = s->rtop_c[j - 1];
        j--;
    }
    s->rtop[j] = spare;
    s->rtop_c[j] = s->run;
    return sp_set(&s->rtop[j], s->prev.cls, 0, 0, s->prev.p, s->prev.n, -1);
}

/* a TEXT/BLOB value against the one before it: the same run, a new run, or out of order (the runs
 * are dropped: the hashes count the groups instead); 0 on out of memory */
static int pe_run_add(pe_state *s, const pe_in *x) {
    int c;
    if (!s->have_prev) {
        s->have_prev = 1;
        s->run = 1;
        return sp_set(&s->prev, x->cls, 0, 0, x->p, x->n, -1);
    }
    c = sp_cmp(&s->prev, x->cls, 0, 0, x->p, x->n);
    if (c == 0) { s->run++; return 1; }
    if (c > 0) { s->unsorted = 1; pe_free_runs(s); return 1; }
    if (!pe_run_close(s)) return 0;
    s->run = 1;
    return sp_set(&s->prev, x->cls, 0, 0, x->p, x->n, -1);
}

/* phase 1 of a row: read a column's value into `x`, compute its group's key and hash, and start
 * loading the table slot it goes to (the slots of all the row's columns load at once); 0 on out of memory */
static int pe_read(pe_state *s, sqlite3_value *v, pe_in *x) {
    x->cls = SP_NULL;
    if (s->deferred) return 1;
    switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
        x->cls = SP_INT; x->i = sqlite3_value_int64(v); x->d = (double)x->i;
        x->key = (uint64_t)x->i; x->h = pe_num_hash(SP_INT, x->key);
        break;
    case SQLITE_FLOAT:
        x->cls = SP_REAL; x->d = sqlite3_value_double(v);
        x->key = pe_real_key(x->d); x->h = pe_num_hash(SP_REAL, x->key);
        break;
    case SQLITE_TEXT:
    case SQLITE_BLOB:
        if (sqlite3_value_type(v) == SQLITE_TEXT) {
            x->cls = SP_TEXT;
            x->p = sqlite3_value_text(v);
        } else {
            x->cls = SP_BLOB;
            x->p = (const unsigned char *)sqlite3_value_blob(v);
        }
        x->n = sqlite3_value_bytes(v);
        if (x->p == NULL) { if (x->n > 0) return 0; x->p = (const unsigned char *)""; }
        x->key = x->h = sp_hash_bytes(x->p, x->n, x->cls == SP_TEXT ? SP_SEED_TEXT : SP_SEED_BLOB);
        break;
    default:
        return 1;
    }
    if (!s->big && s->tab != NULL) __builtin_prefetch(&s->tab[x->h & (uint64_t)(s->tab_slots - 1)], 1);
    return 1;
}

/* phase 2: the value into every statistic of its column: 1 done, 0 out of memory (a column past the
 * budget is deferred) */
static int pe_take(pe_state *s, const pe_in *x) {
    int r;
    if (s->deferred) return 1;
    s->rows++;
    s->n[x->cls]++;
    if (x->cls == SP_NULL) return 1;
    if (!sp_minmax(&s->vmin, &s->vmax, &s->have_min, x->cls, x->i, x->d, x->p, x->n)) return 0;
    if (x->cls == SP_INT || x->cls == SP_REAL) {
        s->n_num++;
        sp_sum_add(&s->sum, &s->comp, x->d);
    } else if (x->cls == SP_TEXT) {
        int64_t len = sp_text_length(x->p, x->n);
        if (s->min_len < 0 || len < s->min_len) s->min_len = len;
        if (len > s->max_len) s->max_len = len;
    }
    if ((x->cls == SP_TEXT || x->cls == SP_BLOB) && !s->unsorted && !pe_run_add(s, x)) return 0;
    r = pe_group(s, x);
    if (r == -1) pe_defer(s);
    return r != 0;
}

/* the aggregate's state: one pe_state per argument (column) */
typedef struct pe_agg {
    int ncols, failed;       /* failed: the error is set, the columns freed */
    pe_state *cols;
    pe_in *in;               /* the row's values */
} pe_agg;

static void pe_agg_free(pe_agg *a) {
    int j;
    if (a->cols) for (j = 0; j < a->ncols; j++) pe_free(&a->cols[j]);
    free(a->cols); free(a->in);
    a->cols = NULL; a->in = NULL;
}

static void sqlnb_profile_exact_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    pe_agg *a = (pe_agg *)sqlite3_aggregate_context(ctx, (int)sizeof(pe_agg));
    int j;
    if (a == NULL) { sqlite3_result_error_nomem(ctx); return; }
    if (a->failed) return;
    if (a->cols == NULL) {
        if (argc < 1) {
            sqlite3_result_error(ctx, "sqlnb_profile_exact needs at least one value", -1);
            a->failed = 1;
            return;
        }
        a->cols = (pe_state *)calloc((size_t)argc, sizeof(pe_state));
        a->in = (pe_in *)calloc((size_t)argc, sizeof(pe_in));
        if (a->cols == NULL || a->in == NULL) {
            pe_agg_free(a);
            a->failed = 1;
            sqlite3_result_error_nomem(ctx);
            return;
        }
        a->ncols = argc;
        for (j = 0; j < argc; j++) {
            a->cols[j].init = 1;
            a->cols[j].cfg = (pe_cfg *)sqlite3_user_data(ctx);
            a->cols[j].min_len = a->cols[j].max_len = -1;
        }
    }
    for (j = 0; j < a->ncols; j++) {
        if (!pe_read(&a->cols[j], argv[j], &a->in[j])) goto oom;
    }
    for (j = 0; j < a->ncols; j++) {
        if (!pe_take(&a->cols[j], &a->in[j])) {
        oom:
            pe_agg_free(a);
            a->failed = 1;
            sqlite3_result_error_nomem(ctx);
            return;
        }
    }
}

/* ---- read 1: the end ---------------------------------------------------------------------- */

/* a group offered to the most common ones: count, then SQLite's order */
typedef struct pe_cand {
    int64_t count;
    int cls;
    int64_t i;
    double d;
    const unsigned char *p;
    int64_t n;
} pe_cand;

static int pe_order(const pe_cand *a, const pe_cand *b) {   /* SQLite's order of the values */
    sp_value x;
    x.cls = a->cls; x.i = a->i; x.d = a->d; x.p = (unsigned char *)a->p; x.n = a->n;
    return sp_cmp(&x, b->cls, b->i, b->d, b->p, b->n);
}

static int pe_before(const pe_cand *a, const pe_cand *b) {
    if (a->count != b->count) return a->count > b->count;
    return pe_order(a, b) < 0;
}

/* keep the best `k` of the offered groups in `best` (sorted, *nb of them) */
static void pe_offer(pe_cand *best, int64_t *nb, int64_t k, const pe_cand *c) {
    int64_t j;
    if (*nb == k && !pe_before(c, &best[k - 1])) return;
    j = *nb < k ? (*nb)++ : k - 1;
    while (j > 0 && pe_before(c, &best[j - 1])) { best[j] = best[j - 1]; j--; }
    best[j] = *c;
}

typedef struct pe_xc { double x; int64_t c; } pe_xc;

static int pe_xc_cmp(const void *a, const void *b) {
    double x = ((const pe_xc *)a)->x, y = ((const pe_xc *)b)->x;
    return (x > y) - (x < y);
}

/* the numbers of a big column in order as float64 (sorted INTEGERs and REALs merged): the values
 * at the 0-based ranks want[0..5] */
static void pe_ranks_big(const pe_state *s, const int64_t *want, double *out) {
    int64_t a = 0, b = 0, r, last = 0, total = s->ni + s->nr;
    int w;
    for (w = 0; w < 6; w++) if (want[w] > last) last = want[w];
    for (r = 0; r <= last && r < total; r++) {
        double x;
        if (a < s->ni && (b >= s->nr || (double)s->ints[a] <= s->reals[b])) x = (double)s->ints[a++];
        else x = s->reals[b++];
        for (w = 0; w < 6; w++) if (want[w] == r) out[w] = x;
    }
}

/* the same over (value, count) groups sorted by value */
static void pe_ranks_table(const pe_xc *xs, int64_t m, const int64_t *want, double *out) {
    int64_t j, cum = 0;
    int w;
    for (j = 0; j < m; j++) {
        int64_t from = cum;
        cum += xs[j].c;
        for (w = 0; w < 6; w++) if (want[w] >= from && want[w] < cum) out[w] = xs[j].x;
    }
}

typedef struct pe_run { uint64_t h; int64_t c; } pe_run;

static void sp_put_cand(sp_buf *b, const pe_cand *c) {
    unsigned char cls = (unsigned char)c->cls;
    sp_put_i64(b, c->count);
    sp_put(b, &cls, 1);
    if (c->cls == SP_INT) sp_put_i64(b, c->i);
    else if (c->cls == SP_REAL) sp_put_f64(b, c->d);
    else { sp_put_i64(b, c->n); sp_put_i64(b, c->n); sp_put(b, c->p, (size_t)c->n); }
}

/* min-heap of the k largest counts seen (h[0] the k-th largest) */
static void pe_heap_offer(int64_t *h, int64_t *nh, int64_t k, int64_t c) {
    int64_t j, m;
    if (*nh < k) {
        j = (*nh)++;
        while (j > 0 && h[(j - 1) / 2] > c) { h[j] = h[(j - 1) / 2]; j = (j - 1) / 2; }
        h[j] = c;
        return;
    }
    if (c <= h[0]) return;
    j = 0;
    for (;;) {
        m = 2 * j + 1;
        if (m >= k) break;
        if (m + 1 < k && h[m + 1] < h[m]) m++;
        if (h[m] >= c) break;
        h[j] = h[m];
        j = m;
    }
    h[j] = c;
}

/* the TEXT/BLOB groups of a big column, from its sorted hashes: their number into *distinct, and
 * either their most common values into `best` (when every hash is alone, so that no two values can
 * have shared one: the most common are the `k` smallest, kept on the way) or, into `spec`, what read 2
 * needs: the k-th largest group count ct, how many groups to take among those of count ct (r), the
 * groups above ct, every group of count >= 2 (hash and count: read 2 looks counts up there and
 * checks that each holds one value); 0 on out of memory */
static int pe_text_groups(pe_state *s, int64_t k, int64_t *distinct, pe_cand *best, int64_t *nbest, sp_buf *spec) {
    int64_t j, g = 0, nheap = 0, ct, above = 0, ndup = 0, *heap;
    uint32_t head[2] = {PE_SPEC_MAGIC, PE_VERSION};
    heap = (int64_t *)malloc((size_t)k * sizeof(int64_t));
    if (heap == NULL) return 0;
    for (j = 0; j < s->nh;) {   /* the groups: runs of one hash */
        int64_t e = j + 1;
        while (e < s->nh && s->hs[e] == s->hs[j]) e++;
        pe_heap_offer(heap, &nheap, k, e - j);
        if (e - j >= 2) ndup++;
        g++;
        j = e;
    }
    *distinct += g;
    ct = nheap ? heap[0] : 0;
    free(heap);
    if (ndup == 0) {
        pe_cand c;
        for (j = 0; j < s->nsmall; j++) {
            c.count = 1; c.cls = s->small[j].cls; c.i = 0; c.d = 0; c.p = s->small[j].p; c.n = s->small[j].n;
            pe_offer(best, nbest, k, &c);
        }
        return 1;
    }
    sp_put(spec, head, 8);
    sp_put_i64(spec, k);
    sp_put_i64(spec, ct);
    sp_put_i64(spec, s->nh);
    sp_put(spec, &s->hsum, 8);
    sp_put(spec, &s->cfg->mask, 8);
    for (j = 0; j < s->nh;) {   /* the groups above ct */
        int64_t e = j + 1;
        while (e < s->nh && s->hs[e] == s->hs[j]) e++;
        if (e - j > ct) above++;
        j = e;
    }
    sp_put_i64(spec, k - above < 0 ? 0 : k - above);   /* r: groups to take at count ct */
    sp_put_i64(spec, above);
    for (j = 0; j < s->nh;) {
        int64_t e = j + 1;
        while (e < s->nh && s->hs[e] == s->hs[j]) e++;
        if (e - j > ct) { sp_put(spec, &s->hs[j], 8); sp_put_i64(spec, e - j); }
        j = e;
    }
    sp_put_i64(spec, ndup);
    for (j = 0; j < s->nh;) {
        int64_t e = j + 1;
        while (e < s->nh && s->hs[e] == s->hs[j]) e++;
        if (e - j >= 2) { sp_put(spec, &s->hs[j], 8); sp_put_i64(spec, e - j); }
        j = e;
    }
    return 1;
}

/* one column's section of the result into `b` (its groups freed after); 0 on out of memory */
static int pe_col_final(pe_state *s, sp_buf *b) {
    sp_buf spec = {NULL, 0, 0, 0};
    int64_t k = s->cfg->top, distinct = 0, want[6], nbest = 0, j, m;
    double q[6], m2 = NAN, total = 0;
    pe_cand *best = NULL, c;
    pe_xc *xs = NULL;
    int oom = 0;
    sp_put_i64(b, s->deferred);
    if (s->deferred) goto done;
    for (j = 0; j < 6; j++) q[j] = NAN;
    total = sp_sum_total(s->sum, s->comp);
    best = (pe_cand *)malloc((size_t)k * sizeof(pe_cand));
    if (best == NULL) { oom = 1; goto done; }
    if (s->n_num > 0) {
        for (j = 1; j <= 3; j++) {
            want[2 * j - 2] = ((s->n_num - 1) * j) / 4;
            want[2 * j - 1] = want[2 * j - 2] + 1 < s->n_num ? want[2 * j - 2] + 1 : s->n_num - 1;
        }
    }
    if (s->big) {
        double mean = total / (double)(s->n_num ? s->n_num : 1), ss = 0, cc = 0;
        if (!pe_sort_ints(s->ints, s->ni) || !pe_sort_reals(s->reals, s->nr)
            || (s->unsorted && !pe_sort_hashes(s->hs, s->nh))) {
            oom = 1;
            goto done;
        }
        for (j = 0; j < s->ni;) {   /* INTEGER groups */
            int64_t e = j + 1;
            while (e < s->ni && s->ints[e] == s->ints[j]) e++;
            c.count = e - j; c.cls = SP_INT; c.i = s->ints[j]; c.d = 0; c.p = NULL; c.n = 0;
            if (nbest < k || c.count > best[k - 1].count) pe_offer(best, &nbest, k, &c);   /* ascending: a tie loses */
            distinct++;
            j = e;
        }
        for (j = 0, m = 0; j < s->nr;) {   /* REAL groups; one equal to an INTEGER is not another value */
            int64_t e = j + 1;
            while (e < s->nr && s->reals[e] == s->reals[j]) e++;
            c.count = e - j; c.cls = SP_REAL; c.i = 0; c.d = s->reals[j]; c.p = NULL; c.n = 0;
            if (nbest < k || c.count >= best[k - 1].count) pe_offer(best, &nbest, k, &c);
            while (m < s->ni && sqlnb_int_real_cmp(s->ints[m], c.d) < 0) m++;
            if (!(m < s->ni && sqlnb_int_real_cmp(s->ints[m], c.d) == 0)) distinct++;
            j = e;
        }
        if (s->n_num > 0) {
            ss = 0; cc = 0;
            for (j = 0; j < s->ni; j++) sp_sum_add(&ss, &cc, ((double)s->ints[j] - mean) * ((double)s->ints[j] - mean));
            for (j = 0; j < s->nr; j++) sp_sum_add(&ss, &cc, (s->reals[j] - mean) * (s->reals[j] - mean));
            m2 = sp_sum_total(ss, cc);
            pe_ranks_big(s, want, q);
        }
        if (s->nh > 0 && !s->unsorted) {   /* TEXT/BLOB in order: the runs are the groups */
            if (!pe_run_close(s)) { oom = 1; goto done; }
            distinct += s->nruns;
            for (j = 0; j < s->nrtop; j++) {
                c.count = s->rtop_c[j]; c.cls = s->rtop[j].cls; c.i = 0; c.d = 0;
                c.p = s->rtop[j].p; c.n = s->rtop[j].n;
                pe_offer(best, &nbest, k, &c);
            }
        } else if (s->nh > 0 && !pe_text_groups(s, k, &distinct, best, &nbest, &spec)) { oom = 1; goto done; }
    } else {
        int64_t nx = 0;
        double mean = total / (double)(s->n_num ? s->n_num : 1), ss = 0, cc = 0;
        if (s->n_num > 0) {
            xs = (pe_xc *)malloc((size_t)(s->tab_n ? s->tab_n : 1) * sizeof(pe_xc));
            if (xs == NULL) { oom = 1; goto done; }
        }
        for (j = 0; j < s->tab_slots; j++) {
            pe_ent *e = &s->tab[j];
            if (!e->cc) continue;
            c.count = PE_COUNT(e); c.cls = PE_CLS(e); c.i = 0; c.d = 0; c.p = NULL; c.n = 0;
            if (c.cls == SP_INT) { c.i = (int64_t)e->key; c.d = (double)c.i; }
            else if (c.cls == SP_REAL) c.d = pe_key_real(e->key);
            else { c.p = s->arena + (s->tx[j] >> 32); c.n = (int64_t)(s->tx[j] & 0xffffffffULL); }
            pe_offer(best, &nbest, k, &c);
            distinct++;
            if (c.cls == SP_REAL) {   /* a REAL equal to an INTEGER group is not another value */
                double d = c.d;
                if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && (double)(int64_t)d == d) {
                    uint64_t key = (uint64_t)(int64_t)d, mask = (uint64_t)s->tab_slots - 1, h = pe_num_hash(SP_INT, key) & mask;
                    while (s->tab[h].cc) {
                        if (PE_CLS(&s->tab[h]) == SP_INT && s->tab[h].key == key) { distinct--; break; }
                        h = (h + 1) & mask;
                    }
                }
            }
            if (c.cls == SP_INT || c.cls == SP_REAL) {
                xs[nx].x = c.d; xs[nx].c = c.count; nx++;
                sp_sum_add(&ss, &cc, (double)c.count * ((c.d - mean) * (c.d - mean)));
            }
        }
        if (s->n_num > 0) {
            m2 = sp_sum_total(ss, cc);
            qsort(xs, (size_t)nx, sizeof(pe_xc), pe_xc_cmp);
            pe_ranks_table(xs, nx, want, q);
        }
    }
done:
    if (!s->deferred && !oom) {
        sp_put_i64(b, s->rows);
        for (j = 0; j < 5; j++) sp_put_i64(b, s->n[j]);   /* null, integer, real, text, blob */
        sp_put_i64(b, s->n_num);
        sp_put_f64(b, total);
        sp_put_f64(b, m2);
        sp_put_i64(b, s->min_len);
        sp_put_i64(b, s->max_len);
        sp_put_i64(b, distinct);
        for (j = 0; j < 6; j++) sp_put_f64(b, q[j]);
        sp_put_i64(b, s->big);
        sp_put_value(b, &s->vmin, s->have_min);
        sp_put_value(b, &s->vmax, s->have_min);
        sp_put_i64(b, nbest);
        for (j = 0; j < nbest; j++) sp_put_cand(b, &best[j]);
        sp_put_i64(b, (int64_t)spec.n);
        sp_put(b, spec.p, spec.n);
    }
    free(best); free(xs); free(spec.p);
    pe_free(s);
    return !(oom || spec.oom);
}

static void sqlnb_profile_exact_final(sqlite3_context *ctx) {
    pe_agg *a = (pe_agg *)sqlite3_aggregate_context(ctx, 0);
    sp_buf b = {NULL, 0, 0, 0};
    uint32_t head[2] = {PE_MAGIC, PE_VERSION};
    int j, ok = 1;
    if (a != NULL && a->failed) { pe_agg_free(a); return; }
    sp_put(&b, head, 8);
    sp_put_i64(&b, a != NULL && a->cols != NULL ? a->ncols : 0);   /* 0: no rows */
    if (a != NULL && a->cols != NULL) {
        for (j = 0; j < a->ncols; j++) ok &= pe_col_final(&a->cols[j], &b);
        pe_agg_free(a);
    }
    if (!ok || b.oom) { free(b.p); sqlite3_result_error_nomem(ctx); return; }
    if (b.n > (size_t)INT_MAX) { free(b.p); sqlite3_result_error_toobig(ctx); return; }
    sqlite3_result_blob(ctx, b.p, (int)b.n, free);
}

/* ---- read 2: the TEXT/BLOB values of the groups read 1 chose ------------------------------ */
typedef struct pk_dup {
    uint64_t h, h2;
    int64_t c;
    int seen;
} pk_dup;

typedef struct pk_state {
    int init, failed;
    int64_t k, ct, r, expect_n, nabove, ndup, n;
    uint64_t expect_sum, mask, sum;
    int collision;
    pk_dup *above;           /* nabove: hash, count (h2 unused) */
    sp_value *above_v;       /* nabove values, cls 0 until seen */
    pk_dup *dups;            /* open addressing, dup_slots */
    int64_t dup_slots;
    uint64_t *seen;          /* a bit per (hash >> shift) of a group of count >= 2: most values skip the table */
    int bits;
    sp_value *ties;          /* the r smallest values of count ct, sorted */
    int64_t nties;
} pk_state;

static void pk_free(pk_state *s) {
    int64_t j;
    if (s->above_v) for (j = 0; j < s->nabove; j++) free(s->above_v[j].p);
    if (s->ties) for (j = 0; j < s->r; j++) free(s->ties[j].p);
    free(s->above); free(s->above_v); free(s->dups); free(s->ties); free(s->seen);
    memset(s, 0, sizeof(*s));
}

static int pk_read(const unsigned char **at, const unsigned char *end, void *out, size_t n) {
    if ((size_t)(end - *at) < n) return 0;
    memcpy(out, *at, n);
    *at += n;
    return 1;
}

/* parse the spec read 1 wrote (pe_put_spec); 0: not a spec (error set), -1: out of memory */
static int pk_init(pk_state *s, sqlite3_context *ctx, sqlite3_value *specv) {
    const unsigned char *at, *end;
    uint32_t head[2];
    int64_t j;
    s->init = 1;
    if (sqlite3_value_type(specv) != SQLITE_BLOB) goto bad;
    at = (const unsigned char *)sqlite3_value_blob(specv);
    end = at + sqlite3_value_bytes(specv);
    if (at == NULL || !pk_read(&at, end, head, 8) || head[0] != PE_SPEC_MAGIC || head[1] != PE_VERSION) goto bad;
    if (!pk_read(&at, end, &s->k, 8) || !pk_read(&at, end, &s->ct, 8) || !pk_read(&at, end, &s->expect_n, 8)
        || !pk_read(&at, end, &s->expect_sum, 8) || !pk_read(&at, end, &s->mask, 8)
        || !pk_read(&at, end, &s->r, 8) || !pk_read(&at, end, &s->nabove, 8)) goto bad;
    if (s->k < 1 || s->k > 65536 || s->r < 0 || s->r > s->k || s->nabove < 0 || s->nabove > s->k) goto bad;
    s->above = (pk_dup *)calloc((size_t)(s->nabove ? s->nabove : 1), sizeof(pk_dup));
    s->above_v = (sp_value *)calloc((size_t)(s->nabove ? s->nabove : 1), sizeof(sp_value));
    s->ties = (sp_value *)calloc((size_t)(s->r ? s->r : 1), sizeof(sp_value));
    if (s->above == NULL || s->above_v == NULL || s->ties == NULL) return -1;
    for (j = 0; j < s->nabove; j++)
        if (!pk_read(&at, end, &s->above[j].h, 8) || !pk_read(&at, end, &s->above[j].c, 8)) goto bad;
    if (!pk_read(&at, end, &s->ndup, 8) || s->ndup < 0 || (uint64_t)s->ndup > (uint64_t)(end - at) / 16) goto bad;
    s->dup_slots = 4;
    while (s->dup_slots < s->ndup * 2) s->dup_slots *= 2;
    s->dups = (pk_dup *)calloc((size_t)s->dup_slots, sizeof(pk_dup));
    s->bits = 12;
    while (s->bits < 24 && ((int64_t)1 << s->bits) < s->ndup * 16) s->bits++;
    s->seen = (uint64_t *)calloc((size_t)1 << (s->bits - 6), sizeof(uint64_t));
    if (s->dups == NULL || s->seen == NULL) return -1;
    for (j = 0; j < s->ndup; j++) {
        uint64_t h, slot;
        int64_t c;
        pk_read(&at, end, &h, 8);
        pk_read(&at, end, &c, 8);
        if (c < 2) goto bad;
        slot = sp_fmix(h) & (uint64_t)(s->dup_slots - 1);
        while (s->dups[slot].c) slot = (slot + 1) & (uint64_t)(s->dup_slots - 1);
        s->dups[slot].h = h;
        s->dups[slot].c = c;
        slot = sp_fmix(h) >> (64 - s->bits);
        s->seen[slot >> 6] |= (uint64_t)1 << (slot & 63);
    }
    return 1;
bad:
    sqlite3_result_error(ctx, "sqlnb_profile_pick: the spec is not one sqlnb_profile_exact wrote", -1);
    return 0;
}

static int pk_less(const sp_value *a, const sp_value *b) {   /* SQLite's order (TEXT < BLOB, bytes) */
    return sp_cmp(a, b->cls, b->i, b->d, b->p, b->n) < 0;
}

static void sqlnb_profile_pick_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    pk_state *s = (pk_state *)sqlite3_aggregate_context(ctx, (int)sizeof(pk_state));
    sqlite3_value *v;
    int t, cls;
    const unsigned char *p;
    int64_t n, cnt = 1, j;
    uint64_t h, slot;
    if (s == NULL) { sqlite3_result_error_nomem(ctx); return; }
    if (s->failed) return;
    if (!s->init) {
        int r;
        if (argc != 2) {
            sqlite3_result_error(ctx, "sqlnb_profile_pick(value, spec) takes two arguments", -1);
            s->failed = 2;
            return;
        }
        r = pk_init(s, ctx, argv[1]);
        if (r == 0) { s->failed = 2; return; }
        if (r < 0) goto oom;
    }
    v = argv[0];
    t = sqlite3_value_type(v);
    if (t == SQLITE_TEXT) { cls = SP_TEXT; p = sqlite3_value_text(v); }
    else if (t == SQLITE_BLOB) { cls = SP_BLOB; p = (const unsigned char *)sqlite3_value_blob(v); }
    else return;
    n = sqlite3_value_bytes(v);
    if (p == NULL) { if (n > 0) goto oom; p = (const unsigned char *)""; }
    h = sp_hash_bytes(p, n, cls == SP_TEXT ? SP_SEED_TEXT : SP_SEED_BLOB) & s->mask;
    s->n++;
    s->sum += h;
    slot = sp_fmix(h);
    if (!((s->seen[(slot >> (64 - s->bits)) >> 6] >> ((slot >> (64 - s->bits)) & 63)) & 1)) slot = s->dup_slots;
    else slot &= (uint64_t)(s->dup_slots - 1);
    while (slot < (uint64_t)s->dup_slots && s->dups[slot].c) {
        pk_dup *e = &s->dups[slot];
        if (e->h == h) {
            uint64_t h2 = sp_hash_bytes(p, n, cls == SP_TEXT ? PE_SEED2_TEXT : PE_SEED2_BLOB) ^ (uint64_t)cls;
            cnt = e->c;
            if (!e->seen) { e->seen = 1; e->h2 = h2; }
            else if (e->h2 != h2) s->collision = 1;
            break;
        }
        slot = (slot + 1) & (uint64_t)(s->dup_slots - 1);
    }
    if (cnt > s->ct) {
        for (j = 0; j < s->nabove; j++) {
            if (s->above[j].h == h && s->above_v[j].cls == 0) {
                if (!sp_set(&s->above_v[j], cls, 0, 0, p, n, -1)) goto oom;
                break;
            }
        }
    } else if (cnt == s->ct && s->r > 0) {   /* keep the r smallest distinct values of count ct */
        sp_value x;
        x.cls = cls; x.i = 0; x.d = 0; x.p = (unsigned char *)p; x.n = n;
        if (s->nties == s->r && !pk_less(&x, &s->ties[s->r - 1])) return;
        for (j = 0; j < s->nties; j++)
            if (sp_cmp(&s->ties[j], cls, 0, 0, p, n) == 0) return;   /* already kept */
        {
            sp_value spare = s->ties[s->nties < s->r ? s->nties : s->r - 1];   /* the slot whose buffer is reused */
            j = s->nties < s->r ? s->nties++ : s->r - 1;
            while (j > 0 && pk_less(&x, &s->ties[j - 1])) { s->ties[j] = s->ties[j - 1]; j--; }
            s->ties[j] = spare;
            if (!sp_set(&s->ties[j], cls, 0, 0, p, n, -1)) goto oom;
        }
    }
    return;
oom:
    pk_free(s);
    s->failed = 2;
    sqlite3_result_error_nomem(ctx);
}

static void sqlnb_profile_pick_final(sqlite3_context *ctx) {
    pk_state *s = (pk_state *)sqlite3_aggregate_context(ctx, 0);
    sp_buf b = {NULL, 0, 0, 0};
    uint32_t head[2] = {PE_PICK_MAGIC, PE_VERSION};
    int64_t j, changed;
    if (s != NULL && s->failed) { pk_free(s); return; }
    sp_put(&b, head, 8);
    if (s == NULL || !s->init) {   /* no rows */
        sp_put_i64(&b, 0); sp_put_i64(&b, 1); sp_put_i64(&b, 0); sp_put_i64(&b, 0);
    } else {
        changed = s->n != s->expect_n || s->sum != s->expect_sum;
        for (j = 0; j < s->nabove; j++) if (s->above_v[j].cls == 0) changed = 1;
        sp_put_i64(&b, s->collision);
        sp_put_i64(&b, changed);
        sp_put_i64(&b, s->nabove);
        for (j = 0; j < s->nabove; j++) {
            sp_put_i64(&b, s->above[j].c);
            sp_put_value(&b, &s->above_v[j], s->above_v[j].cls != 0);
        }
        sp_put_i64(&b, s->nties);
        for (j = 0; j < s->nties; j++) {
            sp_put_i64(&b, s->ct);
            sp_put_value(&b, &s->ties[j], 1);
        }
        pk_free(s);
    }
    if (b.oom) { free(b.p); sqlite3_result_error_nomem(ctx); return; }
    if (b.n > (size_t)INT_MAX) { free(b.p); sqlite3_result_error_toobig(ctx); return; }
    sqlite3_result_blob(ctx, b.p, (int)b.n, free);
}

/* ---- the configuration -------------------------------------------------------------------- */
static void sqlnb_profile_config_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    pe_cfg *cfg = (pe_cfg *)sqlite3_user_data(ctx);
    int64_t x[5];
    int j;
    static const int64_t lo[5] = {1, 1, 0, 1, 1}, hi[5] = {INT64_MAX / 4, 1 << 24, (int64_t)1 << 31, 65536, 64};
    if (argc != 5) {
        sqlite3_result_error(ctx, "sqlnb_profile_config(budget, table_max, arena_max, top, hash_bits)", -1);
        return;
    }
    for (j = 0; j < 5; j++) {
        if (sqlite3_value_type(argv[j]) != SQLITE_INTEGER
            || (x[j] = sqlite3_value_int64(argv[j])) < lo[j] || x[j] > hi[j]) {
            sqlite3_result_error(ctx, "sqlnb_profile_config: an argument is not an integer in its range", -1);
            return;
        }
    }
    cfg->budget = x[0]; cfg->table_max = x[1]; cfg->arena_max = x[2]; cfg->top = x[3];
    cfg->mask = x[4] >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << x[4]) - 1);
    sqlite3_result_int64(ctx, cfg->used);
}

static void pe_cfg_default(pe_cfg *cfg) {
    cfg->budget = PE_BUDGET_DEFAULT;
    cfg->used = 0;
    cfg->table_max = PE_TABLE_MAX_DEFAULT;
    cfg->arena_max = PE_ARENA_MAX_DEFAULT;
    cfg->top = PE_TOP_DEFAULT;
    cfg->mask = ~(uint64_t)0;
}

static void pe_cfg_unref(void *p) {
    pe_cfg *cfg = (pe_cfg *)p;
    if (--cfg->refs == 0) free(cfg);
}

/* register the three functions on `db`, sharing one new configuration: each holds a reference,
 * dropped by SQLite when the function is replaced, the connection closed, or the registration
 * failed (it calls the destructor then too) */
static int sqlnb_profile_exact_register(sqlite3 *db) {
    pe_cfg *cfg = (pe_cfg *)malloc(sizeof(pe_cfg));
    int rc;
    if (cfg == NULL) return SQLITE_NOMEM;
    pe_cfg_default(cfg);
    cfg->refs = 1;   /* ours, while registering */
    cfg->refs++;
    rc = sqlite3_create_function_v2(db, "sqlnb_profile_config", 5, SQLITE_UTF8, cfg, sqlnb_profile_config_func,
                                    NULL, NULL, pe_cfg_unref);
    if (rc == SQLITE_OK) {
        cfg->refs++;
        rc = sqlite3_create_function_v2(db, "sqlnb_profile_pick", 2, SQLITE_UTF8, cfg, NULL,
                                        sqlnb_profile_pick_step, sqlnb_profile_pick_final, pe_cfg_unref);
    }
    if (rc == SQLITE_OK) {
        cfg->refs++;
        rc = sqlite3_create_function_v2(db, "sqlnb_profile_exact", -1, SQLITE_UTF8, cfg, NULL,
                                        sqlnb_profile_exact_step, sqlnb_profile_exact_final, pe_cfg_unref);
    }
    pe_cfg_unref(cfg);
    return rc;
}

#endif /* SQLNB_PROFILE_EXACT_H */
