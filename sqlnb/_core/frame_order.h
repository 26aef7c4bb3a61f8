/*
 * frame_order.h: rows delivered grouped / ordered by one column, so that SQLite skips its sorter
 * for `GROUP BY c` and `ORDER BY c [DESC]` over a frame (included by frame_vtab.h; issue 24).
 *
 * xBestIndex consumes a one-term ORDER BY on a column whose class (sqlnb_fo_class, computed at
 * each xOpen and kept on the FrameSource) says the order is certain (FO_ORDERED), or, for a
 * column whose SQL values sort differently from its keys (FO_GROUPED: times shown as ISO text
 * outside the years 0000-9999), only where sqlite3_vtab_distinct() (3.38+) says grouping or
 * DISTINCT is enough. Rows are then emitted in SQLite's order of the values xColumn produces:
 * NULL < numbers (INTEGER and REAL compared by value) < TEXT (bytes, BINARY) < BLOB; ASC puts
 * NULLs first, DESC last. Equal values (0.0 and -0.0, categories of equal value, uint64 above
 * 2**63 that round to one REAL) are one group.
 *
 * Memory: no per-row permutation while the range holds at most FO_MAX_GROUPS distinct keys.
 * Pass 1 hashes the distinct keys (strings by pointer and length into the frame's own buffers,
 * no copy) and records each key's first and last row; the G keys are sorted. Groups are then
 * emitted in batches of up to 255: a tagging pass writes one byte per row (the row's group
 * within the batch, 255: another batch) and each group's rows are found with memchr between its
 * first and last row. With G <= 255 pass 1 writes the tags itself (one pass in all). So: n bytes
 * of tags + O(G), and 1 + ceil(G / 255) passes over the column.
 * Above FO_MAX_GROUPS (the passes would grow as G/255) the scan sorts a permutation of the rows
 * instead (4 bytes per row, an in-place three-way quicksort).
 * The rows come in an order the hardware prefetcher cannot guess (a group's rows are spread over
 * the frame): the scan finds FO_AHEAD rows ahead and prefetches their values in the columns SQLite
 * reads (colUsed, passed in idxStr): 1.24 s -> 0.71 s on the numeric benchmark's GROUP BY.
 *
 * Keys are read without the GIL, but for a value of a numpy object column that is not a str
 * with a UTF-8 form, bytes, float, bool or None: the pykey hook takes the GIL for that value
 * (a str gets its UTF-8 form cached by CPython; other objects the value xColumn gives, kept on
 * the cursor's snapshot). An object column is served ordered only when its values were strings
 * when it was described (FF_STRINGS); the hook covers a column changed after planning.
 */
#ifndef SQLNB_FRAME_ORDER_H
#define SQLNB_FRAME_ORDER_H

#include "frame_types.h"

#define FO_NONE 0       /* not served in order: SQLite sorts */
#define FO_ORDERED 1    /* rows can come in SQLite's order of the column's values */
#define FO_GROUPED 2    /* only grouped (equal values adjacent): GROUP BY / DISTINCT */

#define FO_MAX_GROUPS 2048
#define FO_DIRECT 65536 /* the widest span of integer keys tagged through a table (256 KB) */
#define FO_AHEAD 32     /* rows found ahead of the cursor, their values prefetched */

typedef struct sqlnb_forder {
    int col, desc;
    int64_t lo, hi;         /* the row range */
    const sqlnb_fcol *fc;
    void *owner;            /* the cursor's snapshot object (the pykey hook's) */
    int hint;
    /* grouping by tags */
    int64_t G, cap, max;    /* distinct keys, hash capacity, room for keys */
    sqlnb_fkey *keys;       /* by id (insertion order) */
    int64_t *first, *last;  /* by id */
    int32_t *byrank;        /* rank -> id */
    int32_t *rankof;        /* id -> rank */
    int32_t *table;         /* hash: id or -1 */
    uint8_t *tags;          /* per row of the range */
    int single;             /* G <= 255: the tags are the ids (pass 1 wrote them) */
    int32_t *direct;        /* plain integer keys within FO_DIRECT of each other: rank of v - dmin */
    int64_t dmin;
    uint64_t drange;
    int64_t batch;          /* the first rank of the tagged batch (-1: none) */
    int64_t g;              /* the rank being emitted */
    /* the permutation (G > FO_MAX_GROUPS) */
    uint32_t *perm;
    int64_t pos;
    int done;
    int ready;              /* the keys, tags or permutation are complete (reusable) */
    int keyed;              /* xColumn may give the group's key as the value (sqlnb_fo_value) */
    /* the next rows of the group, found ahead and their values prefetched */
    const sqlnb_fsnap *snap;
    uint64_t used;          /* the columns SQLite reads (colUsed: the first 63; bdb: all) */
    int64_t ring[FO_AHEAD];
    int rhead, rcount, rend; /* rend: the group has no row after the ring's last */
    int64_t rlast;
} sqlnb_forder;

#include "frame_keys.h"   /* one value as SQLite compares it: read, compared, hashed */

/* --- the class of a column (at each xOpen) --------------------------------------------------- */
static int sqlnb_fo_class(const sqlnb_fcol *col) {
    switch (col->kind) {
    case FK_NULL: case FK_INT: case FK_UINT: case FK_FLOAT: case FK_BOOL8: case FK_BITBOOL:
    case FK_STR: case FK_BIN: case FK_STRVIEW: case FK_BINVIEW:
        return FO_ORDERED;
    case FK_OBJECT:
        return (col->flags & FF_STRINGS) ? FO_ORDERED : FO_NONE;
    case FK_DICT:
        return col->dict != NULL ? sqlnb_fo_class(col->dict) : FO_ORDERED;
    case FK_TIME: {
        /* ISO text sorts in time order while the year has 4 digits: check the range */
        int64_t unit = col->unit > 0 ? col->unit : 1, lo = INT64_MAX, hi = INT64_MIN, i;
        int c;
        if (col->flags & (FF_TIMEDELTA | FF_EPOCH)) return FO_ORDERED;
        if (!(col->flags & FF_DATE) && unit == 1000000000) return FO_ORDERED;   /* 1677..2262 */
        for (c = 0; c < col->nchunks; c++) {
            const sqlnb_fchunk *ch = &col->chunks[c];
            for (i = 0; i < ch->length; i++) {
                int64_t v = sqlnb_fv_int(ch->data + i * ch->stride, col->width);
                if ((col->flags & FF_NAT) && v == INT64_MIN) continue;
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
        }
        if (lo > hi) return FO_ORDERED;
        if (col->flags & FF_DATE) { lo = lo / unit - 1; hi = hi / unit + 1; }          /* days */
        else { lo = lo / unit / 86400 - 1; hi = hi / unit / 86400 + 1; }
        return (lo >= -719528 && hi <= 2932896) ? FO_ORDERED : FO_GROUPED;   /* 0000-01-01..9999-12-31 */
    }
    default:
        return FO_NONE;
    }
}

/* --- the scan -------------------------------------------------------------------------------- */
/* is a key the value xColumn gives? 1: yes; 2: for TEXT / BLOB / NULL keys only (an object
 * column: 1 and 1.0 are one key, two values); 0: no (times as text: the key is the tick count) */
static int sqlnb_fo_keyed(const sqlnb_fcol *col) {
    if (col->kind == FK_DICT) return col->dict != NULL ? sqlnb_fo_keyed(col->dict) : 1;
    if (col->kind == FK_TIME) return (col->flags & (FF_TIMEDELTA | FF_EPOCH)) ? 1 : 0;
    if (col->kind == FK_OBJECT) return 2;
    return 1;
}

/* xColumn of the ordered column in a grouped scan: every row of the group has the group's key,
 * so the value is given without reading the row (a read out of order: a cache miss). 0: read it */
static int sqlnb_fo_value(const sqlnb_forder *o, sqlite3_context *ctx) {
    const sqlnb_fkey *k;
    if (o->perm != NULL || o->done || !o->keyed || o->g >= o->G) return 0;
    k = &o->keys[o->byrank[o->g]];
    switch (k->type) {
    case FKT_NULL:
        sqlite3_result_null(ctx);
        return 1;
    case FKT_NUM:
        if (o->keyed != 1) return 0;
        if (k->isint) sqlite3_result_int64(ctx, k->i);
        else if (k->d == 0.0) return 0;          /* 0.0 and -0.0: one key, two values */
        else sqlite3_result_double(ctx, k->d);
        return 1;
    case FKT_TEXT: case FKT_BLOB:
        if (k->n > 0x7fffffff) return 0;
        if (k->type == FKT_TEXT) sqlite3_result_text(ctx, k->n ? k->p : "", (int)k->n, SQLITE_TRANSIENT);
        else sqlite3_result_blob(ctx, k->n ? k->p : "", (int)k->n, SQLITE_TRANSIENT);
        return 1;
    default:
        return 0;
    }
}

static void sqlnb_fo_free(sqlnb_forder *o) {
    if (o == NULL) return;
    sqlite3_free(o->keys); sqlite3_free(o->first); sqlite3_free(o->last);
    sqlite3_free(o->byrank); sqlite3_free(o->rankof); sqlite3_free(o->table);
    sqlite3_free(o->tags); sqlite3_free(o->perm); sqlite3_free(o->direct);
    sqlite3_free(o);
}

static int sqlnb_fo_interrupted(sqlite3 *db) {
#if SQLNB_NEWER(3041000)
    return db != NULL && sqlite3_is_interrupted(db);
#else
    (void)db;
    return 0;
#endif
}

/* the id of key k, inserting it (with row) when new; -1: more than FO_MAX_GROUPS keys */
static int64_t sqlnb_fo_id(sqlnb_forder *o, const sqlnb_fkey *k, int64_t row, int insert) {
    uint64_t m = (uint64_t)o->cap - 1, h = sqlnb_fk_hash(k) & m;
    for (;;) {
        int32_t id = o->table[h];
        if (id < 0) break;
        if (o->keys[id].type == k->type && sqlnb_fk_cmp(&o->keys[id], k) == 0) {
            if (insert) o->last[id] = row;
            return id;
        }
        h = (h + 1) & m;
    }
    if (!insert || o->G >= o->max) return -1;
    o->keys[o->G] = *k;
    o->first[o->G] = o->last[o->G] = row;
    o->table[h] = (int32_t)o->G;
    return o->G++;
}

static int sqlnb_fo_cmp_ids(const void *a, const void *b, void *ctx) {
    const sqlnb_forder *o = (const sqlnb_forder *)ctx;
    int c = sqlnb_fk_cmp(&o->keys[*(const int32_t *)a], &o->keys[*(const int32_t *)b]);
    return o->desc ? -c : c;
}

/* a plain integer column (one buffer, no NULL): its data and stride, read and hashed without the
 * generic key path (the common GROUP BY of an int64 column); NULL: use the generic path */
static const char *sqlnb_fo_plainint(const sqlnb_forder *o, int64_t *stride) {
    const sqlnb_fcol *c = o->fc;
    const sqlnb_fchunk *ch;
    if (c->kind != FK_INT || c->nchunks != 1 || (c->flags & FF_NAT)) return NULL;
    ch = &c->chunks[0];
    if (ch->valid != NULL || ch->mask != NULL || ch->start != 0 || ch->length < o->hi) return NULL;
    *stride = ch->stride;
    return ch->data;
}

/* sqlnb_fo_id for an INTEGER key v (the same hash as sqlnb_fk_hash) */
static int64_t sqlnb_fo_intid(sqlnb_forder *o, int64_t v, int64_t row, int insert) {
    uint64_t m = (uint64_t)o->cap - 1, h = sqlnb_fk_mix((uint64_t)v + 1) & m;
    sqlnb_fkey *k;
    for (;;) {
        int32_t id = o->table[h];
        if (id < 0) break;
        if (o->keys[id].i == v) {
            if (insert) o->last[id] = row;
            return id;
        }
        h = (h + 1) & m;
    }
    if (!insert || o->G >= o->max) return -1;
    k = &o->keys[o->G];
    memset(k, 0, sizeof(*k));
    k->type = FKT_NUM; k->isint = 1; k->i = v;
    o->first[o->G] = o->last[o->G] = row;
    o->table[h] = (int32_t)o->G;
    return o->G++;
}

/* sort the G ids by key; rankof: id -> rank */
static void sqlnb_fo_sort_ids(sqlnb_forder *o) {
    int64_t i, j;
    for (i = 0; i < o->G; i++) o->byrank[i] = (int32_t)i;
    /* a shell sort: G <= FO_MAX_GROUPS keys */
    {
        static const int64_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
        int gi;
        for (gi = 0; gi < 8; gi++) {
            int64_t gap = gaps[gi];
            for (i = gap; i < o->G; i++) {
                int32_t t = o->byrank[i];
                for (j = i; j >= gap && sqlnb_fo_cmp_ids(&o->byrank[j - gap], &t, o) > 0; j -= gap)
                    o->byrank[j] = o->byrank[j - gap];
                o->byrank[j] = t;
            }
        }
    }
    for (i = 0; i < o->G; i++) o->rankof[o->byrank[i]] = (int32_t)i;
}

/* plain integer keys whose span (max - min) is under FO_DIRECT: a table from key - min to rank,
 * so that the tagging passes read each row's rank without hashing its key (the numeric
 * benchmark's GROUP BY: 1,000 keys, four passes) */
static int sqlnb_fo_direct(sqlnb_forder *o) {
    int64_t i, lo, hi, stride = 0;
    if (o->single || o->G == 0 || sqlnb_fo_plainint(o, &stride) == NULL) return SQLITE_OK;
    lo = hi = o->keys[0].i;
    for (i = 1; i < o->G; i++) {
        if (o->keys[i].i < lo) lo = o->keys[i].i;
        if (o->keys[i].i > hi) hi = o->keys[i].i;
    }
    if ((uint64_t)hi - (uint64_t)lo >= FO_DIRECT) return SQLITE_OK;
    o->drange = (uint64_t)hi - (uint64_t)lo + 1;
    o->direct = (int32_t *)sqlite3_malloc64(sizeof(int32_t) * o->drange);
    if (o->direct == NULL) return SQLITE_NOMEM;
    memset(o->direct, 0xff, sizeof(int32_t) * o->drange);   /* -1: no such key */
    o->dmin = lo;
    for (i = 0; i < o->G; i++) o->direct[(uint64_t)o->keys[i].i - (uint64_t)lo] = o->rankof[i];
    return SQLITE_OK;
}

/* tag the rows of the batch of ranks [b0, b0 + 255) */
static int sqlnb_fo_tag(sqlnb_forder *o, sqlite3 *db, int64_t b0) {
    int64_t r, stride = 0;
    sqlnb_fkey k;
    const char *ints = sqlnb_fo_plainint(o, &stride);
    if (o->batch == b0) return SQLITE_OK;
    o->batch = -1;          /* until the pass completes */
    if (ints != NULL && o->direct != NULL) {
        const int width = o->fc->width;
        int64_t end;
        for (r = o->lo; r < o->hi; r = end) {
            end = r + 0x10000 < o->hi ? r + 0x10000 : o->hi;
            if (r > o->lo && sqlnb_fo_interrupted(db)) return SQLITE_INTERRUPT;
            for (; r < end; r++) {
                uint64_t d = (uint64_t)sqlnb_fv_int(ints + r * stride, width) - (uint64_t)o->dmin;
                int64_t rk = d < o->drange ? o->direct[d] - b0 : -1;   /* direct[d] == -1: no such key */
                o->tags[r - o->lo] = (uint8_t)(rk >= 0 && rk < 255 ? rk : 255);
            }
        }
        o->batch = b0;
        return SQLITE_OK;
    }
    for (r = o->lo; r < o->hi; r++) {
        int64_t id, rk;
        if (((r - o->lo) & 0xffff) == 0xffff && sqlnb_fo_interrupted(db)) return SQLITE_INTERRUPT;
        if (ints != NULL) id = sqlnb_fo_intid(o, sqlnb_fv_int(ints + r * stride, o->fc->width), r, 0);
        else {
            if (sqlnb_fk_get(o->fc, o->owner, &o->hint, r, &k) != 0) return SQLITE_ERROR;
            id = sqlnb_fo_id(o, &k, r, 0);
        }
        rk = id < 0 ? -1 : o->rankof[id] - b0;
        o->tags[r - o->lo] = (uint8_t)(rk >= 0 && rk < 255 ? rk : 255);
    }
    o->batch = b0;
    return SQLITE_OK;
}

/* the three-way quicksort of the permutation (G > FO_MAX_GROUPS) */
static int sqlnb_fo_pcmp(sqlnb_forder *o, uint32_t a, const sqlnb_fkey *pivot, int *err) {
    sqlnb_fkey k;
    int c;
    if (sqlnb_fk_get(o->fc, o->owner, &o->hint, o->lo + a, &k) != 0) { *err = 1; return 0; }
    c = sqlnb_fk_cmp(&k, pivot);
    return o->desc ? -c : c;
}

static int sqlnb_fo_psort(sqlnb_forder *o, sqlite3 *db, int64_t lo, int64_t hi, int depth) {
    uint32_t *p = o->perm;
    int err = 0;
    while (hi - lo > 16) {
        int64_t lt = lo, i = lo, gt = hi - 1, mid = lo + (hi - lo) / 2;
        sqlnb_fkey pivot, ka, kb, kc;
        uint32_t t;
        if (sqlnb_fo_interrupted(db)) return SQLITE_INTERRUPT;
        /* the median of three as the pivot */
        if (sqlnb_fk_get(o->fc, o->owner, &o->hint, o->lo + p[lo], &ka) || sqlnb_fk_get(o->fc, o->owner, &o->hint, o->lo + p[mid], &kb)
            || sqlnb_fk_get(o->fc, o->owner, &o->hint, o->lo + p[hi - 1], &kc)) return SQLITE_ERROR;
        {
            int ab = sqlnb_fk_cmp(&ka, &kb), bc = sqlnb_fk_cmp(&kb, &kc), ac = sqlnb_fk_cmp(&ka, &kc);
            if ((ab <= 0 && bc <= 0) || (ab >= 0 && bc >= 0)) pivot = kb;
            else if ((ab <= 0 && ac >= 0) || (ab >= 0 && ac <= 0)) pivot = ka;
            else pivot = kc;
        }
        while (i <= gt) {
            int c = sqlnb_fo_pcmp(o, p[i], &pivot, &err);
            if (err) return SQLITE_ERROR;
            if (c < 0) { t = p[lt]; p[lt] = p[i]; p[i] = t; lt++; i++; }
            else if (c > 0) { t = p[gt]; p[gt] = p[i]; p[i] = t; gt--; }
            else i++;
        }
        /* [lo, lt) < pivot, [lt, gt] == pivot, (gt, hi) > pivot: recurse on the smaller side */
        if (lt - lo < hi - gt - 1) {
            int rc = sqlnb_fo_psort(o, db, lo, lt, depth + 1);   /* depth <= log2(n) */
            if (rc != SQLITE_OK) return rc;
            lo = gt + 1;
        } else {
            int rc = sqlnb_fo_psort(o, db, gt + 1, hi, depth + 1);
            if (rc != SQLITE_OK) return rc;
            hi = lt;
        }
    }
    {   /* insertion sort of the rest */
        int64_t i, j;
        for (i = lo + 1; i < hi; i++) {
            uint32_t t = p[i];
            sqlnb_fkey kt;
            if (sqlnb_fk_get(o->fc, o->owner, &o->hint, o->lo + t, &kt)) return SQLITE_ERROR;
            for (j = i; j > lo; j--) {
                int c = sqlnb_fo_pcmp(o, p[j - 1], &kt, &err);
                if (err) return SQLITE_ERROR;
                if (c <= 0) break;
                p[j] = p[j - 1];
            }
            p[j] = t;
        }
    }
    return SQLITE_OK;
}

/* the first row of rank g at or after row `from` (the tags of g's batch in place); -1: none */
static int64_t sqlnb_fo_find(sqlnb_forder *o, int64_t g, int64_t from) {
    int32_t id = o->byrank[g];
    int64_t end = o->last[id] + 1;
    uint8_t tag = (uint8_t)(o->single ? id : g - o->batch);
    const uint8_t *hit;
    if (from < o->first[id]) from = o->first[id];
    if (from >= end) return -1;
    hit = (const uint8_t *)memchr(o->tags + (from - o->lo), tag, (size_t)(end - from));
    return hit == NULL ? -1 : o->lo + (hit - o->tags);
}

/* the rows come in an order the hardware does not foresee: ask for the cache lines of the values
 * of frame row `row` in the columns SQLite reads before it reads them.
 * The empty volatile asm is a side effect the compiler must keep: without it GCC finds the
 * function "const" (a prefetch changes nothing it can see) and drops every call to it. */
static void sqlnb_fo_prefetch(const sqlnb_forder *o, int64_t row) {
#if defined(__GNUC__) || defined(__clang__)
    int i, n = o->snap->ncols < 63 ? o->snap->ncols : 63;   /* colUsed names the first 63 */
    __asm__ __volatile__("");
    for (i = 0; i < n; i++) {
        const sqlnb_fcol *col = &o->snap->cols[i];
        const sqlnb_fchunk *ch;
        int64_t at;
        if (!(o->used & ((uint64_t)1 << i))) continue;
        if (col->nchunks != 1) continue;          /* one buffer (numpy): no chunk to look up */
        ch = &col->chunks[0];
        at = row - ch->start;
        if (at < 0 || at >= ch->length) continue;
        if (ch->offsets != NULL) __builtin_prefetch(ch->offsets + at * col->width);
        else if (ch->data != NULL && ch->stride > 0) __builtin_prefetch(ch->data + at * ch->stride);
        if (ch->mask != NULL) __builtin_prefetch(ch->mask + at);
    }
#else
    (void)o; (void)row;
#endif
}

/* find the group's rows ahead of the ring's last, up to FO_AHEAD of them */
static void sqlnb_fo_fill(sqlnb_forder *o) {
    while (o->rcount < FO_AHEAD && !o->rend) {
        int64_t r = sqlnb_fo_find(o, o->g, o->rlast + 1);
        if (r < 0) { o->rend = 1; break; }
        o->ring[(o->rhead + o->rcount) % FO_AHEAD] = r;
        o->rcount++;
        o->rlast = r;
        sqlnb_fo_prefetch(o, r);
    }
}

/* move to the first row of rank g or a later one (*row), or done */
static int sqlnb_fo_group(sqlnb_forder *o, sqlite3 *db, int64_t g, int64_t *row) {
    for (; g < o->G; g++) {
        int64_t r;
        if (!o->single) {
            int rc = sqlnb_fo_tag(o, db, g - g % 255);
            if (rc != SQLITE_OK) return rc;
        }
        r = sqlnb_fo_find(o, g, o->lo);
        if (r >= 0) {
            o->g = g; *row = r;
            o->rhead = 0; o->rcount = 1; o->ring[0] = r; o->rlast = r; o->rend = 0;
            sqlnb_fo_fill(o);
            return SQLITE_OK;
        }
    }
    o->done = 1;
    return SQLITE_OK;
}

/* start the ordered scan of rows [lo, hi) by column `col` of `snap`; *row: the first row */
static int sqlnb_fo_start(sqlnb_forder **out, const sqlnb_fsnap *snap, void *owner, sqlite3 *db, int col, int desc,
                          uint64_t used, int64_t lo, int64_t hi, int64_t *row, char **err) {
    const char *ints;
    int64_t stride = 0;
    sqlnb_forder *o = *out;
    int64_t r, n = hi - lo;
    sqlnb_fkey k;
    int rc;
    if (o != NULL && o->ready && o->col == col && o->desc == desc && o->lo == lo && o->hi == hi) {
        o->done = 0;
        o->used = used;   /* the same range again (an inner loop): the keys and tags are kept */
        if (o->perm != NULL) { o->pos = 0; o->done = n == 0; *row = n ? lo + o->perm[0] : lo; return SQLITE_OK; }
        return sqlnb_fo_group(o, db, 0, row);
    }
    sqlnb_fo_free(o);
    *out = o = (sqlnb_forder *)sqlite3_malloc(sizeof(*o));
    if (o == NULL) return SQLITE_NOMEM;
    memset(o, 0, sizeof(*o));
    o->col = col; o->desc = desc; o->lo = lo; o->hi = hi; o->batch = -1;
    o->fc = &snap->cols[col];
    o->owner = owner;
    o->snap = snap;
    o->used = used;
    o->keyed = sqlnb_fo_keyed(o->fc);
    if (n <= 0) { o->done = 1; return SQLITE_OK; }
    /* room for min(n, FO_MAX_GROUPS) keys (a short range, e.g. one rowid of an inner loop: little) */
    o->max = n < FO_MAX_GROUPS ? n : FO_MAX_GROUPS;
    for (o->cap = 16; o->cap < 2 * o->max; o->cap <<= 1) {}
    o->keys = (sqlnb_fkey *)sqlite3_malloc64(sizeof(sqlnb_fkey) * (sqlite3_uint64)o->max);
    o->first = (int64_t *)sqlite3_malloc64(sizeof(int64_t) * (sqlite3_uint64)o->max);
    o->last = (int64_t *)sqlite3_malloc64(sizeof(int64_t) * (sqlite3_uint64)o->max);
    o->byrank = (int32_t *)sqlite3_malloc64(sizeof(int32_t) * (sqlite3_uint64)o->max);
    o->rankof = (int32_t *)sqlite3_malloc64(sizeof(int32_t) * (sqlite3_uint64)o->max);
    o->table = (int32_t *)sqlite3_malloc64(sizeof(int32_t) * (sqlite3_uint64)o->cap);
    o->tags = (uint8_t *)sqlite3_malloc64((sqlite3_uint64)n);
    if (!o->keys || !o->first || !o->last || !o->byrank || !o->rankof || !o->table || !o->tags)
        return SQLITE_NOMEM;
    memset(o->table, 0xff, sizeof(int32_t) * (size_t)o->cap);
    /* pass 1: the distinct keys (and, while there are at most 255, the tags) */
    ints = sqlnb_fo_plainint(o, &stride);
    for (r = lo; r < hi; r++) {
        int64_t id;
        if (((r - lo) & 0xffff) == 0xffff && sqlnb_fo_interrupted(db)) return SQLITE_INTERRUPT;
        if (ints != NULL) id = sqlnb_fo_intid(o, sqlnb_fv_int(ints + r * stride, o->fc->width), r, 1);
        else {
            if (sqlnb_fk_get(o->fc, o->owner, &o->hint, r, &k) != 0) goto unreadable;
            id = sqlnb_fo_id(o, &k, r, 1);
        }
        if (id < 0) break;
        o->tags[r - lo] = (uint8_t)(id < 255 ? id : 255);
    }
    if (r == hi) {
        o->single = o->G <= 255;
        sqlnb_fo_sort_ids(o);
        rc = sqlnb_fo_direct(o);
        if (rc != SQLITE_OK) return rc;
        o->ready = 1;
        return sqlnb_fo_group(o, db, 0, row);
    }
    /* too many groups: a permutation of the range, sorted */
    if ((uint64_t)n > (uint64_t)UINT32_MAX) {
        *err = sqlite3_mprintf("too many rows (%lld) to order in one scan", (long long)n);
        return SQLITE_TOOBIG;
    }
    sqlite3_free(o->tags); o->tags = NULL;
    o->perm = (uint32_t *)sqlite3_malloc64(sizeof(uint32_t) * (sqlite3_uint64)n);
    if (o->perm == NULL) return SQLITE_NOMEM;
    for (r = 0; r < n; r++) o->perm[r] = (uint32_t)r;
    rc = sqlnb_fo_psort(o, db, 0, n, 0);
    if (rc == SQLITE_ERROR) goto unreadable;
    if (rc != SQLITE_OK) return rc;
    o->ready = 1;
    o->pos = 0;
    *row = lo + o->perm[0];
    return SQLITE_OK;
unreadable:
    *err = sqlite3_mprintf("a value of column %d, which the scan orders by, could not be read "
                           "(converting an object of a numpy object column failed)", col);
    return SQLITE_ERROR;
}

/* the next row of the ordered scan */
static int sqlnb_fo_next(sqlnb_forder *o, sqlite3 *db, int64_t *row) {
    if (o->done) return SQLITE_OK;
    if (o->perm != NULL) {
        if (++o->pos >= o->hi - o->lo) { o->done = 1; return SQLITE_OK; }
        *row = o->lo + o->perm[o->pos];
        if (o->pos + FO_AHEAD < o->hi - o->lo) sqlnb_fo_prefetch(o, o->lo + o->perm[o->pos + FO_AHEAD]);
        return SQLITE_OK;
    }
    /* the ring's first row is the current one */
    o->rhead = (o->rhead + 1) % FO_AHEAD;
    o->rcount--;
    sqlnb_fo_fill(o);
    if (o->rcount > 0) { *row = o->ring[o->rhead]; return SQLITE_OK; }
    return sqlnb_fo_group(o, db, o->g + 1, row);
}

/* xFilter of an ordered scan: rows [lo, hi) by the column in idxNum; LIMIT / OFFSET in argv[k..]
 * count the rows emitted */
static int sqlnb_fv_filter_ordered(sqlnb_fcursor *cur, int idxNum, const char *idxStr, int64_t lo, int64_t hi,
                                   int argc, sqlite3_value **argv, int k) {
    sqlnb_fvtab *vt = (sqlnb_fvtab *)cur->base.pVtab;
    int col = (idxNum >> FB_COLSHIFT) & FB_COLMAX, rc;
    sqlite3_int64 lim = -1, off = 0;
    uint64_t used;
    char *err = NULL;
    (void)argc;
    if (idxNum & FB_LIMIT) {
        lim = sqlite3_value_int64(argv[k++]);
        if (idxNum & FB_OFFSET) off = sqlite3_value_int64(argv[k++]);
    }
    if (col >= cur->snap->ncols) return SQLITE_ERROR;
    used = idxStr != NULL ? (uint64_t)strtoull(idxStr, NULL, 16) : ~(uint64_t)0;
    rc = sqlnb_fo_start(&cur->ord, cur->snap, cur->snapobj, vt->db, col, (idxNum & FB_DESC) != 0, used,
                        lo, hi, &cur->row, &err);
    if (rc != SQLITE_OK) {
        if (err != NULL) {
            sqlite3_free(vt->base.zErrMsg);
            vt->base.zErrMsg = sqlite3_mprintf("%s: %s", vt->label, err);
            sqlite3_free(err);
        }
        return rc;
    }
    cur->ordered = 1;
    cur->left = lim < 0 ? -1 : lim;
    while (off > 0 && !cur->ord->done) {   /* OFFSET: skip rows in order */
        rc = sqlnb_fo_next(cur->ord, vt->db, &cur->row);
        if (rc != SQLITE_OK) return rc;
        off--;
    }
    if (cur->left == 0) cur->ord->done = 1;
    if (!cur->ord->done) { *vt->counter += 1; if (cur->left > 0) cur->left--; }
    return SQLITE_OK;
}

#endif /* SQLNB_FRAME_ORDER_H */
