/*
 * profile_exact.h: the exact column profile in C (included by sqlnb/_core/profile.pxi, one
 * compilation unit per flavour like capi.h): the aggregate of read 1 and what it computes from a
 * column's groups, the configuration and the registration. A column's groups are kept by
 * profile_groups.h, read 2 is profile_pick.h; they use the pieces of profile_sketch.h and the packing
 * of profile_agg.h. Three SQL functions share one configuration (pe_cfg, the functions' user data):
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

#include "profile_groups.h"
#include "profile_pick.h"

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
