# The progress handler (included by sqlnb/_fast.pyx): SQLite calls _progress_cb every
# 1000 VM ops of a step, and the fetch loop every 1024 rows. It brings signals
# (Ctrl-C, the notebook's interrupt button), the statement's time limit and the
# progress callback (sqlnb.progress) into the GIL-free step loops.

cdef double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef struct progress_state:
    double deadline          # monotonic seconds; 0 = no limit
    double next_report       # when to call the Python callback next; 0 = never
    double report_every
    int abort_reason         # 0 none, 1 signal (KeyboardInterrupt pending), 2 timeout, 3 callback asked
    int check_signals
    int interrupts           # bumped by RawConnection.interrupt(): loops of many short statements poll it
    int user_every           # the user's progress handler (hooks.pxi) runs every user_every calls (0: none)
    int user_calls
    long sigint_mark         # sqlnb._sigint.count when the statement started (-1: not counted)
    void *owner              # the RawConnection (borrowed: it owns this struct)


cdef int _progress_signal(progress_state *ps) noexcept with gil:
    try:
        PyErr_CheckSignals()
        if ps.sigint_mark >= 0 and _sigint.count != ps.sigint_mark:
            raise KeyboardInterrupt()   # a Ctrl-C whose KeyboardInterrupt Python lost elsewhere (sqlnb/_sigint.py)
    except BaseException as exc:
        if ps.sigint_mark >= 0:
            ps.sigint_mark = _sigint.count   # spent: it stops this run, not a later step
        (<RawConnection>ps.owner)._pending = exc
        return 1
    return 0


cdef int _progress_report(progress_state *ps) noexcept with gil:
    return (<RawConnection>ps.owner)._call_progress()


# Only the main thread is told about signals (PyErr_CheckSignals does nothing elsewhere), so only
# there is the GIL worth taking in the progress check: threads stepping with the GIL released
# (a parallel fetch's workers) would otherwise queue for it thousands of times a second.
cdef extern from "pythread.h":
    unsigned long _thread_ident "PyThread_get_thread_ident" () nogil  # safe without the GIL

cdef unsigned long _main_thread_ident = <unsigned long>_threading.main_thread().ident


cdef int _progress_cb(void *arg) noexcept nogil:
    cdef progress_state *ps = <progress_state*>arg
    cdef double now
    if (ps.check_signals and _thread_ident() == _main_thread_ident
            and _progress_signal(ps)):
        ps.abort_reason = 1
        return 1
    if ps.deadline > 0 or ps.next_report > 0:
        now = _now()
        if ps.deadline > 0 and now >= ps.deadline:
            ps.abort_reason = 2
            return 1
        if ps.next_report > 0 and now >= ps.next_report:
            ps.next_report = now + ps.report_every
            if _progress_report(ps):
                ps.abort_reason = 3
                return 1
    if ps.user_every > 0:    # the stdlib's set_progress_handler, layered under ours (hooks.pxi)
        ps.user_calls += 1
        if ps.user_calls >= ps.user_every:
            ps.user_calls = 0
            if _progress_user(ps):
                ps.abort_reason = 4
                return 1
    return 0

