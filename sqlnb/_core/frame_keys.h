/*
 * frame_keys.h: the key of one value of a frame column, as SQLite compares the value xColumn
 * gives (NULL < numbers < TEXT < BLOB; INTEGER and REAL by value; text and blobs byte by byte):
 * read from the column's buffers without the GIL (but for a numpy object column's value only
 * Python reads: the pykey hook), compared, and hashed so that equal keys hash alike. Included by
 * frame_order.h (the ordered scan), which owns the sqlnb_fkey type's use.
 */
#ifndef SQLNB_FRAME_KEYS_H
#define SQLNB_FRAME_KEYS_H

#include "frame_types.h"


/* an object only Python reads: vtab.pxi's hook takes the GIL (owner: the snapshot object,
 * which keeps the text or bytes the key points to) */
static int sqlnb_fv_pykey(void *owner, void *obj, sqlnb_fkey *k) {
    return sqlnb_frame_hooks.pykey(owner, obj, k);
}

/* --- keys ------------------------------------------------------------------------------------ */
static int sqlnb_fk_get(const sqlnb_fcol *col, void *owner, int *hint, int64_t row, sqlnb_fkey *k);

static int sqlnb_fk_at(const sqlnb_fcol *col, void *owner, const sqlnb_fchunk *ch, int64_t i, sqlnb_fkey *k) {
    const char *p;
    k->type = FKT_NUM; k->isint = 1;
    if (ch->valid != NULL) {
        int64_t b = ch->vbit + i;
        if (!(ch->valid[b >> 3] & (1 << (b & 7)))) { k->type = FKT_NULL; return 0; }
    }
    if (ch->mask != NULL && ch->mask[i]) { k->type = FKT_NULL; return 0; }
    p = ch->data + i * ch->stride;
    switch (col->kind) {
    case FK_INT:
        k->i = sqlnb_fv_int(p, col->width);
        if ((col->flags & FF_NAT) && k->i == INT64_MIN) k->type = FKT_NULL;
        return 0;
    case FK_UINT: {
        uint64_t v = sqlnb_fv_uint(p, col->width);
        if (v > (uint64_t)INT64_MAX) { k->isint = 0; k->d = (double)v; } else k->i = (int64_t)v;
        return 0;
    }
    case FK_FLOAT: {
        double v;
        if (col->width == 4) { float f; memcpy(&f, p, 4); v = f; } else memcpy(&v, p, 8);
        if (isnan(v)) k->type = FKT_NULL; else { k->isint = 0; k->d = v; }
        return 0;
    }
    case FK_BOOL8: k->i = *p != 0; return 0;
    case FK_BITBOOL: {
        int64_t b = ch->bit0 + i;
        k->i = (ch->data[b >> 3] >> (b & 7)) & 1;
        return 0;
    }
    case FK_TIME: {
        int64_t v = sqlnb_fv_int(p, col->width), unit = col->unit > 0 ? col->unit : 1;
        if ((col->flags & FF_NAT) && v == INT64_MIN) { k->type = FKT_NULL; return 0; }
        if (col->flags & FF_TIMEDELTA) {   /* as sqlnb_fv_time: INTEGER ns, REAL on overflow */
            int64_t factor = unit >= 1000000000 ? 1 : 1000000000 / unit;
            if (v > INT64_MAX / factor || v < -(INT64_MAX / factor)) { k->isint = 0; k->d = (double)v * factor; }
            else k->i = v * factor;
        } else if (col->flags & FF_EPOCH) {
            k->isint = 0;
            k->d = (col->flags & FF_DATE) ? (double)v * 86400.0 / (double)unit : (double)v / (double)unit;
        } else k->i = v;   /* ISO text: one text per tick count; sorted alike in 0000-9999 */
        return 0;
    }
    case FK_STR: case FK_BIN: {
        int64_t a, b;
        if (col->width == 4) { int32_t x[2]; memcpy(x, ch->offsets + 4 * i, 8); a = x[0]; b = x[1]; }
        else { int64_t x[2]; memcpy(x, ch->offsets + 8 * i, 16); a = x[0]; b = x[1]; }
        k->type = col->kind == FK_STR ? FKT_TEXT : FKT_BLOB;
        k->p = b > a ? ch->chars + a : "";
        k->n = b > a ? b - a : 0;
        return 0;
    }
    case FK_STRVIEW: case FK_BINVIEW: {
        int32_t len, bi, off;
        memcpy(&len, p, 4);
        k->type = col->kind == FK_STRVIEW ? FKT_TEXT : FKT_BLOB;
        k->n = len;
        if (len <= 12) k->p = p + 4;
        else {
            memcpy(&bi, p + 8, 4);
            memcpy(&off, p + 12, 4);
            if (bi < 0 || bi >= ch->nvbufs) return -1;
            k->p = ch->vbufs[bi] + off;
        }
        return 0;
    }
    case FK_OBJECT: {
        PyObject *o;
        memcpy(&o, p, sizeof(o));
        if (o == NULL || o == Py_None) { k->type = FKT_NULL; return 0; }
        if (PyUnicode_CheckExact(o) && PyUnicode_IS_READY(o)) {
            if (PyUnicode_IS_COMPACT_ASCII(o)) {
                k->type = FKT_TEXT;
                k->p = (const char *)(((PyASCIIObject *)o) + 1);
                k->n = ((PyASCIIObject *)o)->length;
                return 0;
            }
            if (PyUnicode_IS_COMPACT(o) && ((PyCompactUnicodeObject *)o)->utf8 != NULL) {
                k->type = FKT_TEXT;
                k->p = ((PyCompactUnicodeObject *)o)->utf8;
                k->n = ((PyCompactUnicodeObject *)o)->utf8_length;
                return 0;
            }
        } else if (PyBytes_CheckExact(o)) {
            k->type = FKT_BLOB; k->p = PyBytes_AS_STRING(o); k->n = PyBytes_GET_SIZE(o);
            return 0;
        } else if (PyFloat_CheckExact(o)) {
            double v = PyFloat_AS_DOUBLE(o);
            if (isnan(v)) k->type = FKT_NULL; else { k->isint = 0; k->d = v; }
            return 0;
        } else if (o == Py_True || o == Py_False) {
            k->i = o == Py_True;
            return 0;
        }
        k->type = FKT_PY; k->p = (const char *)o;
        return sqlnb_fv_pykey(owner, (void *)o, k);
    }
    case FK_DICT: {
        int64_t code = sqlnb_fv_int(p, col->width);
        int hint = 0;
        if (code < 0 || col->dict == NULL) { k->type = FKT_NULL; return 0; }
        return sqlnb_fk_get(col->dict, owner, &hint, code, k);
    }
    default:
        k->type = FKT_NULL;
        return 0;
    }
}

/* the key of frame row `row`: 0, or -1 (a value that cannot be read: an error) */
static int sqlnb_fk_get(const sqlnb_fcol *col, void *owner, int *hint, int64_t row, sqlnb_fkey *k) {
    int64_t at;
    const sqlnb_fchunk *ch;
    if (col->kind == FK_NULL || col->nchunks == 0) { k->type = FKT_NULL; return 0; }
    ch = sqlnb_fv_chunk(col, hint, row, &at);
    if (ch == NULL) { k->type = FKT_NULL; return 0; }
    return sqlnb_fk_at(col, owner, ch, at, k);
}


static int sqlnb_fk_cmp(const sqlnb_fkey *a, const sqlnb_fkey *b) {
    if (a->type != b->type) return a->type < b->type ? -1 : 1;
    switch (a->type) {
    case FKT_NUM:
        if (a->isint && b->isint) return a->i < b->i ? -1 : a->i > b->i;
        if (!a->isint && !b->isint) return a->d < b->d ? -1 : a->d > b->d;
        if (a->isint) return sqlnb_int_real_cmp(a->i, b->d);
        return -sqlnb_int_real_cmp(b->i, a->d);
    case FKT_TEXT: case FKT_BLOB: {
        int64_t n = a->n < b->n ? a->n : b->n;
        int c = n > 0 ? memcmp(a->p, b->p, (size_t)n) : 0;
        if (c) return c < 0 ? -1 : 1;
        return a->n < b->n ? -1 : a->n > b->n;
    }
    default:
        return 0;
    }
}

static uint64_t sqlnb_fk_mix(uint64_t h) {
    h ^= h >> 33; h *= 0xff51afd7ed558ccdULL; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ULL; h ^= h >> 33;
    return h;
}

/* equal keys (sqlnb_fk_cmp 0) hash alike: a REAL with an integer value hashes as that integer */
static uint64_t sqlnb_fk_hash(const sqlnb_fkey *k) {
    switch (k->type) {
    case FKT_NUM: {
        if (!k->isint) {
            double d = k->d;
            uint64_t bits;
            if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
                return sqlnb_fk_mix((uint64_t)(int64_t)d + 1);
            memcpy(&bits, &d, 8);
            return sqlnb_fk_mix(bits);
        }
        return sqlnb_fk_mix((uint64_t)k->i + 1);
    }
    case FKT_TEXT: case FKT_BLOB: {
        uint64_t h = 1469598103934665603ULL ^ (uint64_t)k->type;
        int64_t j;
        for (j = 0; j < k->n; j++) { h ^= (unsigned char)k->p[j]; h *= 1099511628211ULL; }
        return sqlnb_fk_mix(h);
    }
    default:
        return 0;
    }
}

#endif /* SQLNB_FRAME_KEYS_H */
