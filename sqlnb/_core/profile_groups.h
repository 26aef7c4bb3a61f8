/*
 * profile_groups.h: the groups of one column of the exact profile (included by profile_exact.h; the
 * aggregate and what it computes from the groups are there): the shared configuration and memory
 * budget, the exact hash table of (storage class, value) groups with the values in it, the arrays
 * of numbers and TEXT/BLOB hashes of a column past its table, their radix sorts, the runs of
 * TEXT/BLOB values arriving in order and the smallest TEXT/BLOB values kept on the way.
 */
#ifndef SQLNB_PROFILE_GROUPS_H
#define SQLNB_PROFILE_GROUPS_H

#include "profile_agg.h"

#define PE_MAGIC 0x31584e53u        /* "SNX1": a read-1 result */

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

#endif /* SQLNB_PROFILE_GROUPS_H */
