/*
 * frame_types.h: what the sqlnb_frame virtual table's C files share (included by frame_vtab.h,
 * frame_order.h, frame_keys.h): a frame as the Cython side describes it (column kinds, flags,
 * chunks, snapshots), the key of one value as SQLite compares it, the hooks into Python, the
 * table and cursor structs, the idxNum bits xBestIndex hands xFilter, and the readers of a
 * chunk's raw integers.
 */
#ifndef SQLNB_FRAME_TYPES_H
#define SQLNB_FRAME_TYPES_H

#include <Python.h>
#include <stdint.h>
#include <string.h>
#include "capi.h"

/* column kinds (sqlnb/frames/source.py has the same numbers) */
#define FK_NULL 0      /* every value NULL (Arrow null type) */
#define FK_INT 1       /* signed integer of `width` bytes */
#define FK_UINT 2      /* unsigned integer of `width` bytes (above 2**63-1: REAL) */
#define FK_FLOAT 3     /* float of `width` (4, 8) bytes; NaN is NULL */
#define FK_BOOL8 4     /* one byte per value (numpy bool) */
#define FK_BITBOOL 5   /* one bit per value (Arrow boolean) at bit `bit0` + i of data */
#define FK_TIME 6      /* int64 (width 8) or int32 (width 4) count of 1/`unit` s since the epoch */
#define FK_STR 7       /* Arrow (large) string: `width` 4 or 8 bytes per offset */
#define FK_BIN 8       /* Arrow (large) binary */
#define FK_STRVIEW 9   /* Arrow string_view: 16-byte views, data buffers in vbufs */
#define FK_BINVIEW 10  /* Arrow binary_view */
#define FK_OBJECT 11   /* numpy object array: PyObject* per value */
#define FK_DICT 12     /* codes (signed, `width` bytes; negative: NULL) into the column `dict` */

/* flags */
#define FF_NAT 1       /* INT64_MIN is NULL (numpy NaT) */
#define FF_UTC 2       /* FK_TIME: a time zone aware column: text ends in +00:00 */
#define FF_DATE 4      /* FK_TIME: a date: text is YYYY-MM-DD */
#define FF_EPOCH 8     /* FK_TIME: REAL seconds since the epoch instead of text */
#define FF_TIMEDELTA 16 /* FK_TIME: a duration: INTEGER nanoseconds */
#define FF_STRINGS 32   /* FK_OBJECT: its values were str / missing when it was described */

typedef struct sqlnb_fchunk {
    int64_t start;          /* the frame row of this chunk's first value */
    int64_t length;
    const char *data;       /* value i at data + i*stride (FK_BITBOOL: bits) */
    int64_t stride;
    int64_t bit0;           /* FK_BITBOOL: bit offset of value 0 */
    const uint8_t *valid;   /* Arrow validity bitmap (bit vbit+i set: a value), or NULL */
    int64_t vbit;
    const uint8_t *mask;    /* pandas mask (byte i non-zero: NULL), or NULL */
    const char *offsets;    /* FK_STR / FK_BIN: offsets of value 0.. (width bytes each) */
    const char *chars;      /* FK_STR / FK_BIN: the character data */
    const char **vbufs;     /* FK_*VIEW: the variadic data buffers */
    int nvbufs;
} sqlnb_fchunk;

typedef struct sqlnb_fcol {
    int kind;
    int width;
    int64_t unit;           /* FK_TIME: ticks per second (date32: 1, with FF_DATE: days) */
    int flags;
    int nchunks;
    sqlnb_fchunk *chunks;
    struct sqlnb_fcol *dict;  /* FK_DICT: the values (one chunk) */
} sqlnb_fcol;

typedef struct sqlnb_fsnap {  /* a frame as it was at one xOpen */
    int64_t nrows;
    int ncols;
    sqlnb_fcol *cols;
} sqlnb_fsnap;

/* the key of one value, as SQLite compares it (frame_order.h); key types in SQLite's order */
#define FKT_NULL 0
#define FKT_NUM 1
#define FKT_TEXT 2
#define FKT_BLOB 3
#define FKT_PY 4        /* an object only Python reads (resolved through the pykey hook) */

typedef struct sqlnb_fkey {
    int type;
    int isint;          /* FKT_NUM: i (else d) */
    int64_t i;
    double d;
    const char *p;      /* FKT_TEXT / FKT_BLOB: the bytes; FKT_PY: the PyObject* */
    int64_t n;
} sqlnb_fkey;

typedef struct sqlnb_fhooks {
    /* find the frame registered under `key` in the registry `aux`; on success *source is a
     * new reference, *decl a sqlite3_malloc'ed CREATE TABLE, *nrows its row count, *counter
     * where to count the rows read, *label its name for messages (valid while *source lives) */
    int (*connect)(void *aux, const char *key, void **source, char **decl, int64_t *nrows,
                   int64_t **counter, const char **label, char **err);
    /* per column its FO_* class as of the last xOpen (valid while *source lives), the count */
    void (*classes)(void *source, const uint8_t **classes, int *ncols);
    void (*release)(void *source);
    /* describe the frame as it is now: *snapobj a new reference owning *snap */
    int (*open)(void *source, void **snapobj, sqlnb_fsnap **snap, char **err);
    void (*close)(void *snapobj);
    /* the value of an object column that the GIL-free path does not read */
    void (*pyvalue)(sqlite3_context *ctx, void *obj);
    /* the key of an object column's value that the GIL-free path does not read: 0, or -1 */
    int (*pykey)(void *snapobj, void *obj, sqlnb_fkey *k);
} sqlnb_fhooks;

static sqlnb_fhooks sqlnb_frame_hooks;

typedef struct {
    sqlite3_vtab base;
    void *source;            /* the FrameSource (a strong reference) */
    int64_t nrows;           /* rows at connect (xBestIndex's estimate) */
    int64_t *counter;        /* rows read (the FrameSource's) */
    const char *label;
    sqlite3 *db;
    const uint8_t *classes;  /* per column FO_* (the FrameSource's, updated at each xOpen) */
    int ncols;
} sqlnb_fvtab;

typedef struct {
    sqlite3_vtab_cursor base;
    void *snapobj;
    sqlnb_fsnap *snap;
    int64_t row, end;
    int *cur;                /* per column: the chunk the last value came from */
    char buf[72];
    struct sqlnb_forder *ord; /* an ordered scan (frame_order.h), or NULL */
    int ordered;             /* the current scan is ordered */
    int64_t left;            /* ordered scan: rows still to emit (LIMIT), -1: no limit */
} sqlnb_fcursor;

/* idxNum bits: which rowid bounds xFilter gets in argv, in this order */
#define FB_EQ 1
#define FB_LO 2      /* > or >= (bit FB_LOINC: >=) */
#define FB_LOINC 4
#define FB_HI 8      /* < or <= (FB_HIINC: <=) */
#define FB_HIINC 16
#define FB_LIMIT 32
#define FB_OFFSET 64
#define FB_ORDER 128   /* rows in the order of column idxNum >> FB_COLSHIFT (frame_order.h) */
#define FB_DESC 256
#define FB_COLSHIFT 12
#define FB_COLMAX 0x7ffff

/* --- reading a chunk's raw values -------------------------------------------------------- */
/* the chunk of `col` holding frame row `row`; *at its index in that chunk */
static const sqlnb_fchunk *sqlnb_fv_chunk(const sqlnb_fcol *col, int *hint, int64_t row, int64_t *at) {
    int i = *hint, lo, hi;
    const sqlnb_fchunk *ch;
    if (i >= 0 && i < col->nchunks) {
        ch = &col->chunks[i];
        if (row >= ch->start && row < ch->start + ch->length) { *at = row - ch->start; return ch; }
        if (i + 1 < col->nchunks) {
            ch = &col->chunks[i + 1];
            if (row >= ch->start && row < ch->start + ch->length) {
                *hint = i + 1; *at = row - ch->start; return ch;
            }
        }
    }
    lo = 0; hi = col->nchunks - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        ch = &col->chunks[mid];
        if (row < ch->start) hi = mid - 1;
        else if (row >= ch->start + ch->length) lo = mid + 1;
        else { *hint = mid; *at = row - ch->start; return ch; }
    }
    return NULL;
}

static int64_t sqlnb_fv_int(const char *p, int width) {
    switch (width) {
    case 1: return *(const int8_t *)p;
    case 2: { int16_t v; memcpy(&v, p, 2); return v; }
    case 4: { int32_t v; memcpy(&v, p, 4); return v; }
    default: { int64_t v; memcpy(&v, p, 8); return v; }
    }
}

static uint64_t sqlnb_fv_uint(const char *p, int width) {
    switch (width) {
    case 1: return *(const uint8_t *)p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

#endif /* SQLNB_FRAME_TYPES_H */
