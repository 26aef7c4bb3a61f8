# sqlnb/_core/look.pxi: C aggregates for the plots of sqlnb.look (histograms), included by _fast.pyx.
#
# ``sqlnb_histogram(x, edges)``: ``edges`` is a BLOB of n + 1 float64 bin edges (native byte
# order, increasing); the result a BLOB of n int64 counts, numpy's rule: bin i holds
# edges[i] <= x < edges[i+1], the last bin also its right edge; values outside [edges[0],
# edges[n]], NULLs, TEXT and BLOBs are not counted. INTEGER values count as REAL (CAST). NULL
# when no row was read. ``sqlnb_numeric_range(x)``: a BLOB of 3 int64 (INTEGER or REAL values,
# TEXT values, BLOB values) then 2 float64 (min and max of the numeric values as REAL; NaN
# when there are none). Both run without the GIL: one C call per row, one read of the source
# each (docs/look.md, "The plots").

from libc.string cimport memcpy, memset
from libc.math cimport NAN

cdef struct hist_state:
    int64_t nbins
    double norm            # nbins / (last edge - first edge): the first guess of a value's bin
    double *edges          # nbins + 1 (sqlite3_malloc64)
    int64_t *counts        # nbins
    int failed


cdef void _hist_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) noexcept nogil:
    cdef hist_state *st = <hist_state*>sqlite3_aggregate_context(ctx, sizeof(hist_state))
    cdef int t
    cdef int n
    cdef double d, g
    cdef int64_t lo
    if st == NULL:
        sqlite3_result_error_nomem(ctx)
        return
    if st.failed:
        return
    if st.edges == NULL:
        n = sqlite3_value_bytes(argv[1])
        if sqlite3_value_type(argv[1]) != SQLITE_BLOB or n < 16 or n % 8 != 0:
            st.failed = 1
            sqlite3_result_error(ctx, "sqlnb_histogram: the edges must be a BLOB of at least 2 float64", -1)
            return
        st.nbins = n // 8 - 1
        st.edges = <double*>sqlite3_malloc64(<uint64_t>n)
        st.counts = <int64_t*>sqlite3_malloc64(<uint64_t>(st.nbins * 8))
        if st.edges == NULL or st.counts == NULL:
            st.failed = 1
            sqlite3_result_error_nomem(ctx)
            return
        memcpy(st.edges, sqlite3_value_blob(argv[1]), n)
        memset(st.counts, 0, st.nbins * 8)
        for lo in range(st.nbins):
            if not (st.edges[lo] < st.edges[lo + 1]):
                st.failed = 1
                sqlite3_result_error(ctx, "sqlnb_histogram: the edges must increase", -1)
                return
        st.norm = st.nbins / (st.edges[st.nbins] - st.edges[0])
    t = sqlite3_value_type(argv[0])
    if t != SQLITE_INTEGER and t != SQLITE_FLOAT:
        return
    d = sqlite3_value_double(argv[0])
    if not (d >= st.edges[0] and d <= st.edges[st.nbins]):
        return
    # numpy's way: a guess from the value, then at most a step or two to the bin whose edges
    # hold it (edges[lo] <= d < edges[lo + 1], the last bin closed)
    g = (d - st.edges[0]) * st.norm
    lo = <int64_t>g if g < <double>st.nbins else st.nbins - 1
    if lo < 0:
        lo = 0
    while lo > 0 and d < st.edges[lo]:
        lo -= 1
    while lo < st.nbins - 1 and d >= st.edges[lo + 1]:
        lo += 1
    st.counts[lo] += 1


cdef void _hist_final(sqlite3_context *ctx) noexcept nogil:
    cdef hist_state *st = <hist_state*>sqlite3_aggregate_context(ctx, 0)
    if st == NULL:
        sqlite3_result_null(ctx)
        return
    if not st.failed and st.counts != NULL:
        sqlite3_result_blob(ctx, st.counts, <int>(st.nbins * 8), SQLITE_TRANSIENT)
    sqlite3_free(st.edges)
    sqlite3_free(st.counts)
    st.edges = NULL
    st.counts = NULL


cdef struct range_state:
    int64_t counts[3]
    double lo, hi


cdef void _range_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) noexcept nogil:
    cdef range_state *st = <range_state*>sqlite3_aggregate_context(ctx, sizeof(range_state))
    cdef int t
    cdef double d
    if st == NULL:
        sqlite3_result_error_nomem(ctx)
        return
    t = sqlite3_value_type(argv[0])
    if t == SQLITE_INTEGER or t == SQLITE_FLOAT:
        d = sqlite3_value_double(argv[0])
        if st.counts[0] == 0 or d < st.lo:
            st.lo = d
        if st.counts[0] == 0 or d > st.hi:
            st.hi = d
        st.counts[0] += 1
    elif t == SQLITE_TEXT:
        st.counts[1] += 1
    elif t == SQLITE_BLOB:
        st.counts[2] += 1


cdef void _range_final(sqlite3_context *ctx) noexcept nogil:
    cdef range_state *st = <range_state*>sqlite3_aggregate_context(ctx, sizeof(range_state))
    cdef char out[40]
    cdef double bounds[2]
    if st == NULL:
        sqlite3_result_error_nomem(ctx)
        return
    bounds[0] = st.lo if st.counts[0] else NAN
    bounds[1] = st.hi if st.counts[0] else NAN
    memcpy(out, st.counts, 24)
    memcpy(out + 24, bounds, 16)
    sqlite3_result_blob(ctx, out, 40, SQLITE_TRANSIENT)


def register_look_aggregates(RawConnection raw):
    """Register ``sqlnb_histogram`` and ``sqlnb_numeric_range`` on ``raw`` (again: replaced)."""
    cdef int rc
    cdef int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC
    _lock(raw)
    try:
        raw._check()
        rc = sqlite3_create_function_v2(raw.db, b"sqlnb_histogram", 2, flags, NULL, NULL,
                                        _hist_step, _hist_final, NULL)
        if rc == SQLITE_OK:
            rc = sqlite3_create_function_v2(raw.db, b"sqlnb_numeric_range", 1, flags, NULL, NULL,
                                            _range_step, _range_final, NULL)
        check_rc(rc, raw.db)
    finally:
        _unlock(raw)
