/*
 * frame_vtab.h: the sqlnb_frame virtual table (included by sqlnb/_core/vtab.pxi, one
 * compilation unit per flavour like capi.h): SQLite reads a pandas / Arrow frame's column
 * buffers in place.
 *
 * The Cython side (vtab.pxi) describes a frame as columns of chunks (raw pointers into numpy
 * arrays and Arrow buffers, validity bitmaps, byte masks, offsets) and keeps the Python objects
 * that own them alive; this file only reads that description. Stepping runs with the GIL
 * released (statement.pxi), so xBestIndex, xFilter, xNext and xColumn touch no Python object
 * but one case: a value of a numpy object column that is not a str / bytes / float / bool /
 * None (xColumn then takes the GIL for that one value). xConnect, xOpen (a fresh description
 * of the frame as it is now), xClose and xDisconnect take the GIL through the hooks the Cython
 * side fills in (sqlnb_frame_hooks).
 *
 * Read-only: xUpdate refuses with a message naming the frame. Rowids are row positions
 * (0-based). xBestIndex consumes rowid equality and ranges, and LIMIT / OFFSET where the core
 * passes them (3.38+) and every other constraint is one it consumed; and a one-column ORDER BY /
 * GROUP BY, whose rows the scan then emits in order (frame_order.h).
 * BerkeleyDB's 3.7.6.2 core has a version-1 module and no estimatedRows / idxFlags / LIMIT:
 * the fields are used only where the header has them.
 */
#ifndef SQLNB_FRAME_VTAB_H
#define SQLNB_FRAME_VTAB_H

#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "capi.h"

#include "frame_types.h"   /* the frame's description, the key, the table and cursor structs */

/* --- xCreate / xConnect / xDisconnect ------------------------------------------------------ */
static int sqlnb_fv_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                            sqlite3_vtab **out, char **err) {
    sqlnb_fvtab *vt;
    void *source = NULL;
    char *decl = NULL;
    int64_t nrows = 0;
    int64_t *counter = NULL;
    const char *label = NULL;
    int rc;
    if (argc != 4) {
        *err = sqlite3_mprintf("sqlnb_frame takes one argument, the key a frame was registered under "
                               "(use Connection.register(name, frame))");
        return SQLITE_ERROR;
    }
    rc = sqlnb_frame_hooks.connect(aux, argv[3], &source, &decl, &nrows, &counter, &label, err);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_declare_vtab(db, decl);
    sqlite3_free(decl);
    if (rc != SQLITE_OK) {
        sqlnb_frame_hooks.release(source);
        *err = sqlite3_mprintf("sqlnb_frame: could not declare the columns of %s", label);
        return rc;
    }
    vt = (sqlnb_fvtab *)sqlite3_malloc(sizeof(*vt));
    if (vt == NULL) {
        sqlnb_frame_hooks.release(source);
        return SQLITE_NOMEM;
    }
    memset(vt, 0, sizeof(*vt));
    vt->source = source;
    vt->nrows = nrows;
    vt->counter = counter;
    vt->label = label;
    vt->db = db;
    sqlnb_frame_hooks.classes(source, &vt->classes, &vt->ncols);
    *out = &vt->base;
    return SQLITE_OK;
}

static int sqlnb_fv_disconnect(sqlite3_vtab *p) {
    sqlnb_fvtab *vt = (sqlnb_fvtab *)p;
    sqlnb_frame_hooks.release(vt->source);
    sqlite3_free(vt);
    return SQLITE_OK;
}

/* --- xBestIndex -------------------------------------------------------------------------- */
#include "frame_order.h"   /* GROUP BY / ORDER BY one column: the ordered scan */

static int sqlnb_fv_best_index(sqlite3_vtab *p, sqlite3_index_info *info) {
    sqlnb_fvtab *vt = (sqlnb_fvtab *)p;
    int i, eq = -1, lo = -1, hi = -1, lim = -1, off = -1, other = 0, n = 0, bits = 0;
    double rows = (double)(vt->nrows > 0 ? vt->nrows : 1);
    for (i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        int op = c->op;
#ifdef SQLITE_INDEX_CONSTRAINT_LIMIT
        if (op == SQLITE_INDEX_CONSTRAINT_LIMIT) { if (c->usable) lim = i; else other = 1; continue; }
        if (op == SQLITE_INDEX_CONSTRAINT_OFFSET) { if (c->usable) off = i; else other = 1; continue; }
#endif
        if (!c->usable || c->iColumn != -1) { other = 1; continue; }
        if (op == SQLITE_INDEX_CONSTRAINT_EQ && eq < 0) eq = i;
        else if ((op == SQLITE_INDEX_CONSTRAINT_GT || op == SQLITE_INDEX_CONSTRAINT_GE) && lo < 0) lo = i;
        else if ((op == SQLITE_INDEX_CONSTRAINT_LT || op == SQLITE_INDEX_CONSTRAINT_LE) && hi < 0) hi = i;
        else other = 1;
    }
    if (eq >= 0) {
        info->aConstraintUsage[eq].argvIndex = ++n;
        info->aConstraintUsage[eq].omit = 1;
        bits |= FB_EQ;
        rows = 1;
        if (lo >= 0 || hi >= 0) other = 1;   /* left to SQLite */
    } else {
        if (lo >= 0) {
            info->aConstraintUsage[lo].argvIndex = ++n;
            info->aConstraintUsage[lo].omit = 1;
            bits |= FB_LO | (info->aConstraint[lo].op == SQLITE_INDEX_CONSTRAINT_GE ? FB_LOINC : 0);
            rows /= 4;
        }
        if (hi >= 0) {
            info->aConstraintUsage[hi].argvIndex = ++n;
            info->aConstraintUsage[hi].omit = 1;
            bits |= FB_HI | (info->aConstraint[hi].op == SQLITE_INDEX_CONSTRAINT_LE ? FB_HIINC : 0);
            rows /= 4;
        }
    }
    info->idxNum = 0;
    if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == -1 && !info->aOrderBy[0].desc)
        info->orderByConsumed = 1;   /* rows come in rowid order */
    else if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn >= 0 && info->aOrderBy[0].iColumn < vt->ncols
             && info->aOrderBy[0].iColumn <= FB_COLMAX && vt->classes != NULL) {
        /* rows grouped / ordered by one column (frame_order.h): SQLite skips its sorter */
        int col = info->aOrderBy[0].iColumn, cls = vt->classes[col], distinct = 0;
#if SQLNB_NEWER(3038000)
        distinct = sqlite3_vtab_distinct(info);
#endif
        if (cls == FO_ORDERED || (cls == FO_GROUPED && (distinct == 1 || distinct == 2))) {
            info->orderByConsumed = 1;
            bits |= FB_ORDER | (info->aOrderBy[0].desc ? FB_DESC : 0) | (col << FB_COLSHIFT);
            /* the columns SQLite reads, for the scan to prefetch (3.10+; older: all) */
#if SQLNB_NEWER(3010000)
            info->idxStr = sqlite3_mprintf("%llx", (unsigned long long)info->colUsed);
#else
            info->idxStr = sqlite3_mprintf("%llx", ~0ULL);
#endif
            info->needToFreeIdxStr = 1;
        }
    }
    /* LIMIT / OFFSET only when no other constraint is left for SQLite to test afterwards and
     * no ORDER BY is left to sort the rows (SQLite passes them in both cases) */
    if (!other && lim >= 0 && (info->nOrderBy == 0 || info->orderByConsumed)) {
        info->aConstraintUsage[lim].argvIndex = ++n;
        info->aConstraintUsage[lim].omit = 1;
        bits |= FB_LIMIT;
        if (off >= 0) {
            info->aConstraintUsage[off].argvIndex = ++n;
            info->aConstraintUsage[off].omit = 1;
            bits |= FB_OFFSET;
        }
    }
    info->idxNum = bits;
    if (rows < 1) rows = 1;
    info->estimatedCost = rows;
#if SQLNB_NEWER(3008002)
    info->estimatedRows = (sqlite3_int64)rows;
#endif
#if SQLNB_NEWER(3009000)
    if (bits & FB_EQ) info->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
#endif
    return SQLITE_OK;
}

/* --- cursors ------------------------------------------------------------------------------ */
static int sqlnb_fv_open(sqlite3_vtab *p, sqlite3_vtab_cursor **out) {
    sqlnb_fvtab *vt = (sqlnb_fvtab *)p;
    sqlnb_fcursor *cur;
    char *err = NULL;
    cur = (sqlnb_fcursor *)sqlite3_malloc(sizeof(*cur));
    if (cur == NULL) return SQLITE_NOMEM;
    memset(cur, 0, sizeof(*cur));
    if (sqlnb_frame_hooks.open(vt->source, &cur->snapobj, &cur->snap, &err) != SQLITE_OK) {
        sqlite3_free(cur);
        sqlite3_free(p->zErrMsg);
        p->zErrMsg = err;
        return SQLITE_ERROR;
    }
    vt->nrows = cur->snap->nrows;
    cur->cur = (int *)sqlite3_malloc((int)sizeof(int) * (cur->snap->ncols + 1));
    if (cur->cur == NULL) {
        sqlnb_frame_hooks.close(cur->snapobj);
        sqlite3_free(cur);
        return SQLITE_NOMEM;
    }
    memset(cur->cur, 0, sizeof(int) * (cur->snap->ncols + 1));
    *out = &cur->base;
    return SQLITE_OK;
}

static int sqlnb_fv_close(sqlite3_vtab_cursor *c) {
    sqlnb_fcursor *cur = (sqlnb_fcursor *)c;
    sqlnb_fo_free(cur->ord);
    sqlnb_frame_hooks.close(cur->snapobj);
    sqlite3_free(cur->cur);
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int sqlnb_fv_filter(sqlite3_vtab_cursor *c, int idxNum, const char *idxStr,
                           int argc, sqlite3_value **argv) {
    sqlnb_fcursor *cur = (sqlnb_fcursor *)c;
    int64_t n = cur->snap->nrows, lo = 0, hi = n;
    int k = 0;
    (void)idxStr; (void)argc;
    if (idxNum & FB_EQ) {
        sqlite3_value *v = argv[k++];
        int t = sqlite3_value_type(v);
        double d = sqlite3_value_double(v);
        if (t == SQLITE_NULL || t == SQLITE_TEXT || t == SQLITE_BLOB || d != floor(d) || d < 0
            || d >= (double)n) { lo = hi = 0; }
        else { lo = (int64_t)d; hi = lo + 1; }
    }
    if (idxNum & FB_LO) {
        sqlite3_value *v = argv[k++];
        int t = sqlite3_value_type(v);
        if (t == SQLITE_NULL || t == SQLITE_TEXT || t == SQLITE_BLOB) { lo = hi = 0; }  /* a number < text */
        else {
            double d = sqlite3_value_double(v);
            double b = (idxNum & FB_LOINC) ? ceil(d) : floor(d) + 1;
            if (b > lo) lo = b >= (double)n ? n : (int64_t)b;
        }
    }
    if (idxNum & FB_HI) {
        sqlite3_value *v = argv[k++];
        int t = sqlite3_value_type(v);
        if (t == SQLITE_NULL) { lo = hi = 0; }
        else if (t != SQLITE_TEXT && t != SQLITE_BLOB) {   /* below text: no upper bound */
            double d = sqlite3_value_double(v);
            double b = (idxNum & FB_HIINC) ? floor(d) + 1 : ceil(d);   /* exclusive end */
            if (b < hi) hi = b <= 0 ? 0 : (int64_t)b;
        }
    }
    if ((idxNum & FB_LIMIT) && !(idxNum & FB_ORDER)) {
        sqlite3_int64 lim = sqlite3_value_int64(argv[k++]);
        sqlite3_int64 off = (idxNum & FB_OFFSET) ? sqlite3_value_int64(argv[k++]) : 0;
        if (off > 0) lo = (off >= hi - lo) ? hi : lo + off;
        if (lim >= 0 && lim < hi - lo) hi = lo + lim;
    }
    if (hi < lo) hi = lo;
    cur->ordered = 0;
    if (idxNum & FB_ORDER)
        return sqlnb_fv_filter_ordered(cur, idxNum, idxStr, lo, hi, argc, argv, k);
    cur->row = lo;
    cur->end = hi;
    if (lo < hi) *((sqlnb_fvtab *)c->pVtab)->counter += 1;
    return SQLITE_OK;
}

static int sqlnb_fv_next(sqlite3_vtab_cursor *c) {
    sqlnb_fcursor *cur = (sqlnb_fcursor *)c;
    if (cur->ordered) {
        sqlnb_fvtab *vt = (sqlnb_fvtab *)c->pVtab;
        int rc;
        if (cur->left == 0) { cur->ord->done = 1; return SQLITE_OK; }
        rc = sqlnb_fo_next(cur->ord, vt->db, &cur->row);
        if (rc != SQLITE_OK) return rc;
        if (!cur->ord->done) { *vt->counter += 1; if (cur->left > 0) cur->left--; }
        return SQLITE_OK;
    }
    cur->row++;
    if (cur->row < cur->end) *((sqlnb_fvtab *)c->pVtab)->counter += 1;
    return SQLITE_OK;
}

static int sqlnb_fv_eof(sqlite3_vtab_cursor *c) {
    sqlnb_fcursor *cur = (sqlnb_fcursor *)c;
    if (cur->ordered) return cur->ord->done;
    return cur->row >= cur->end;
}

static int sqlnb_fv_rowid(sqlite3_vtab_cursor *c, sqlite3_int64 *out) {
    *out = ((sqlnb_fcursor *)c)->row;
    return SQLITE_OK;
}

/* --- values ------------------------------------------------------------------------------- */
/* days since 1970-01-01 -> y, m, d (proleptic Gregorian; H. Hinnant's civil_from_days) */
static void sqlnb_fv_civil(int64_t z, int64_t *y, int *m, int *d) {
    int64_t era, doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static void sqlnb_fv_time(sqlite3_context *ctx, const sqlnb_fcol *col, int64_t v, char *buf) {
    int64_t unit = col->unit > 0 ? col->unit : 1, secs, frac, days, sod, y;
    int m, d, n, digits = 0;
    int64_t u;
    if (col->flags & FF_TIMEDELTA) {   /* INTEGER nanoseconds, as to_table writes them */
        int64_t factor = unit >= 1000000000 ? 1 : 1000000000 / unit;
        if (v > INT64_MAX / factor || v < -(INT64_MAX / factor)) sqlite3_result_double(ctx, (double)v * factor);
        else sqlite3_result_int64(ctx, v * factor);
        return;
    }
    if (col->flags & FF_EPOCH) {
        sqlite3_result_double(ctx, (col->flags & FF_DATE) ? (double)v * 86400.0 / (double)unit
                                                          : (double)v / (double)unit);
        return;
    }
    if (col->flags & FF_DATE) {   /* date32 (unit 1: days) or date64 (unit 86400000: ms per day) */
        days = v / unit;
        if (v % unit < 0) days -= 1;
        sqlnb_fv_civil(days, &y, &m, &d);
        n = snprintf(buf, 64, "%04lld-%02d-%02d", (long long)y, m, d);
        sqlite3_result_text(ctx, buf, n, SQLITE_TRANSIENT);
        return;
    }
    secs = v / unit;
    frac = v % unit;
    if (frac < 0) { frac += unit; secs -= 1; }
    days = secs / 86400;
    sod = secs % 86400;
    if (sod < 0) { sod += 86400; days -= 1; }
    sqlnb_fv_civil(days, &y, &m, &d);
    n = snprintf(buf, 64, "%04lld-%02d-%02d %02d:%02d:%02d", (long long)y, m, d,
                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
    if (frac) {
        for (u = unit; u > 1; u /= 10) digits++;
        n += snprintf(buf + n, 24, ".%0*lld", digits, (long long)frac);
        while (buf[n - 1] == '0') n--;
        buf[n] = 0;
    }
    if (col->flags & FF_UTC) { memcpy(buf + n, "+00:00", 7); n += 6; }
    sqlite3_result_text(ctx, buf, n, SQLITE_TRANSIENT);
}

/* a value of a numpy object column: str, bytes, float, bool and None without the GIL */
static void sqlnb_fv_object(sqlite3_context *ctx, PyObject *o) {
    if (o == NULL || o == Py_None) { sqlite3_result_null(ctx); return; }
    if (PyUnicode_CheckExact(o) && PyUnicode_IS_READY(o)) {
        if (PyUnicode_IS_COMPACT_ASCII(o)) {
            sqlite3_result_text(ctx, (const char *)(((PyASCIIObject *)o) + 1),
                                (int)((PyASCIIObject *)o)->length, SQLITE_TRANSIENT);
            return;
        }
        if (PyUnicode_IS_COMPACT(o) && ((PyCompactUnicodeObject *)o)->utf8 != NULL) {
            sqlite3_result_text(ctx, ((PyCompactUnicodeObject *)o)->utf8,
                                (int)((PyCompactUnicodeObject *)o)->utf8_length, SQLITE_TRANSIENT);
            return;
        }
    } else if (PyBytes_CheckExact(o)) {
        sqlite3_result_blob(ctx, PyBytes_AS_STRING(o), (int)PyBytes_GET_SIZE(o), SQLITE_TRANSIENT);
        return;
    } else if (PyFloat_CheckExact(o)) {
        double v = PyFloat_AS_DOUBLE(o);
        if (isnan(v)) sqlite3_result_null(ctx); else sqlite3_result_double(ctx, v);
        return;
    } else if (o == Py_True || o == Py_False) {
        sqlite3_result_int(ctx, o == Py_True);
        return;
    }
    sqlnb_frame_hooks.pyvalue(ctx, (void *)o);   /* takes the GIL */
}

static void sqlnb_fv_value(sqlite3_context *ctx, const sqlnb_fcol *col, const sqlnb_fchunk *ch,
                           int64_t i, char *buf) {
    const char *p;
    if (ch->valid != NULL) {
        int64_t b = ch->vbit + i;
        if (!(ch->valid[b >> 3] & (1 << (b & 7)))) { sqlite3_result_null(ctx); return; }
    }
    if (ch->mask != NULL && ch->mask[i]) { sqlite3_result_null(ctx); return; }
    p = ch->data + i * ch->stride;
    switch (col->kind) {
    case FK_INT: {
        int64_t v = sqlnb_fv_int(p, col->width);
        if ((col->flags & FF_NAT) && v == INT64_MIN) sqlite3_result_null(ctx);
        else sqlite3_result_int64(ctx, v);
        return;
    }
    case FK_UINT: {
        uint64_t v = sqlnb_fv_uint(p, col->width);
        if (v > (uint64_t)INT64_MAX) sqlite3_result_double(ctx, (double)v);
        else sqlite3_result_int64(ctx, (int64_t)v);
        return;
    }
    case FK_FLOAT: {
        double v;
        if (col->width == 4) { float f; memcpy(&f, p, 4); v = f; } else memcpy(&v, p, 8);
        if (isnan(v)) sqlite3_result_null(ctx); else sqlite3_result_double(ctx, v);
        return;
    }
    case FK_BOOL8:
        sqlite3_result_int(ctx, *p != 0);
        return;
    case FK_BITBOOL: {
        int64_t b = ch->bit0 + i;
        sqlite3_result_int(ctx, (ch->data[b >> 3] >> (b & 7)) & 1);
        return;
    }
    case FK_TIME: {
        int64_t v = sqlnb_fv_int(p, col->width);
        if ((col->flags & FF_NAT) && v == INT64_MIN) sqlite3_result_null(ctx);
        else sqlnb_fv_time(ctx, col, v, buf);
        return;
    }
    case FK_STR: case FK_BIN: {
        int64_t a, b;
        if (col->width == 4) {
            int32_t x[2]; memcpy(x, ch->offsets + 4 * i, 8); a = x[0]; b = x[1];
        } else {
            int64_t x[2]; memcpy(x, ch->offsets + 8 * i, 16); a = x[0]; b = x[1];
        }
        if (b - a > 0x7fffffff) { sqlite3_result_error_toobig(ctx); return; }
        if (col->kind == FK_STR)
            sqlite3_result_text(ctx, b > a ? ch->chars + a : "", (int)(b - a), SQLITE_TRANSIENT);
        else sqlite3_result_blob(ctx, b > a ? ch->chars + a : "", (int)(b - a), SQLITE_TRANSIENT);
        return;
    }
    case FK_STRVIEW: case FK_BINVIEW: {
        int32_t len, buf_index, off;
        const char *s;
        memcpy(&len, p, 4);
        if (len <= 12) s = p + 4;
        else {
            memcpy(&buf_index, p + 8, 4);
            memcpy(&off, p + 12, 4);
            if (buf_index < 0 || buf_index >= ch->nvbufs) { sqlite3_result_error(ctx, "bad string view", -1); return; }
            s = ch->vbufs[buf_index] + off;
        }
        if (col->kind == FK_STRVIEW) sqlite3_result_text(ctx, s, len, SQLITE_TRANSIENT);
        else sqlite3_result_blob(ctx, s, len, SQLITE_TRANSIENT);
        return;
    }
    case FK_OBJECT: {
        PyObject *o;
        memcpy(&o, p, sizeof(o));
        sqlnb_fv_object(ctx, o);
        return;
    }
    case FK_DICT: {
        int64_t code = sqlnb_fv_int(p, col->width), at;
        int hint = 0;
        const sqlnb_fchunk *dch;
        if (code < 0 || col->dict == NULL) { sqlite3_result_null(ctx); return; }
        dch = sqlnb_fv_chunk(col->dict, &hint, code, &at);
        if (dch == NULL) { sqlite3_result_error(ctx, "category code out of range", -1); return; }
        sqlnb_fv_value(ctx, col->dict, dch, at, buf);
        return;
    }
    default:
        sqlite3_result_null(ctx);
    }
}

static int sqlnb_fv_column(sqlite3_vtab_cursor *c, sqlite3_context *ctx, int i) {
    sqlnb_fcursor *cur = (sqlnb_fcursor *)c;
    const sqlnb_fcol *col;
    const sqlnb_fchunk *ch;
    int64_t at;
    if (i < 0 || i >= cur->snap->ncols) { sqlite3_result_null(ctx); return SQLITE_OK; }
    col = &cur->snap->cols[i];
    if (col->kind == FK_NULL || col->nchunks == 0) { sqlite3_result_null(ctx); return SQLITE_OK; }
    if (cur->ordered && i == cur->ord->col && sqlnb_fo_value(cur->ord, ctx))
        return SQLITE_OK;      /* the group's key: no read of the row (frame_order.h) */
    ch = sqlnb_fv_chunk(col, &cur->cur[i], cur->row, &at);
    if (ch == NULL) { sqlite3_result_null(ctx); return SQLITE_OK; }
    sqlnb_fv_value(ctx, col, ch, at, cur->buf);
    return SQLITE_OK;
}

/* --- read-only ---------------------------------------------------------------------------- */
static int sqlnb_fv_update(sqlite3_vtab *p, int argc, sqlite3_value **argv, sqlite3_int64 *rowid) {
    sqlnb_fvtab *vt = (sqlnb_fvtab *)p;
    (void)argc; (void)argv; (void)rowid;
    sqlite3_free(p->zErrMsg);
    p->zErrMsg = sqlite3_mprintf("%s is a frame registered from Python and is read-only; change the "
                                 "frame itself, or copy it into a table (to_table) to modify it in SQL",
                                 vt->label);
    return SQLITE_READONLY;
}

static int sqlnb_fv_rename(sqlite3_vtab *p, const char *name) {
    sqlnb_fvtab *vt = (sqlnb_fvtab *)p;
    (void)name;
    sqlite3_free(p->zErrMsg);
    p->zErrMsg = sqlite3_mprintf("%s is a frame registered from Python: unregister it and register it "
                                 "under the new name instead of renaming it", vt->label);
    return SQLITE_READONLY;
}

static sqlite3_module sqlnb_frame_module = {
    1,                      /* iVersion: the fields below are those of every core since 3.7 */
    sqlnb_fv_connect,       /* xCreate */
    sqlnb_fv_connect,       /* xConnect */
    sqlnb_fv_best_index,
    sqlnb_fv_disconnect,
    sqlnb_fv_disconnect,    /* xDestroy */
    sqlnb_fv_open,
    sqlnb_fv_close,
    sqlnb_fv_filter,
    sqlnb_fv_next,
    sqlnb_fv_eof,
    sqlnb_fv_column,
    sqlnb_fv_rowid,
    sqlnb_fv_update,
    0, 0, 0, 0,             /* xBegin, xSync, xCommit, xRollback */
    0,                      /* xFindFunction */
    sqlnb_fv_rename,
};

static int sqlnb_frame_create_module(sqlite3 *db, const char *name, void *aux, void (*destroy)(void *)) {
    return sqlite3_create_module_v2(db, name, &sqlnb_frame_module, aux, destroy);
}

#endif /* SQLNB_FRAME_VTAB_H */
