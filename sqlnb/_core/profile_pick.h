/*
 * profile_pick.h: read 2 of the exact profile, sqlnb_profile_pick(value, spec) (included by
 * profile_exact.h, which registers it): for a big column whose TEXT/BLOB hashes repeat, the values
 * of the groups read 1 chose (those above the k-th count, the smallest of those at it), and the check
 * that no two different values shared a hash (a second, independent hash of every value of a group
 * of count >= 2 against its first value's); `changed` when the values differ from read 1's (their
 * number or the sum of their hashes). The spec is what read 1 wrote (pe_text_groups).
 */
#ifndef SQLNB_PROFILE_PICK_H
#define SQLNB_PROFILE_PICK_H

#include "profile_agg.h"

#define PE_SPEC_MAGIC 0x31534e53u   /* "SNS1": what read 2 needs of one column */
#define PE_PICK_MAGIC 0x31504b53u   /* "SKP1": a read-2 result */
#define PE_VERSION 1u
#define PE_SEED2_TEXT 0x3c6ef372fe94f82bULL   /* the second hash (collision check) */
#define PE_SEED2_BLOB 0xa54ff53a5f1d36f1ULL

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
#endif /* SQLNB_PROFILE_PICK_H */
