"""Parallel fetch of a plain table scan: rowid ranges over N read connections, joined in order.

:func:`fetch` runs in four steps, each its own function or class:

* **plan** (:func:`_plan`): in the main connection's read transaction, the table's rowid
  span and its ranges, and the buffers the rows are written to;
* **claim** (:class:`_Claims`): which range each worker reads next (its own region from
  the front; a worker done with its own takes ranges from the back of another's);
* **worker** (:class:`_Reading`): the loop each worker thread runs, stopped by Ctrl-C,
  ``interrupt()``, the time limit or another worker's error;
* **join** (:func:`_join`): the parts in rowid order into one set of columns.

:mod:`sqlnb.frames.scan` decides whether a query may be split, and
:mod:`sqlnb.frames.workers` holds the worker connections and threads. Whether to fall
back to the serial fetch is :func:`sqlnb.frames.run`'s decision alone: :func:`fetch`
returns None when the table was empty at the moment read.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from sqlnb import errors as _errors
from sqlnb.frames import scan as _scan
from sqlnb.frames import workers as _workers
from sqlnb.frames.result import Result
from sqlnb._bind import is_mapping
from sqlnb.frames.scan import query_rows

_clock = time.monotonic

# rowid ranges per worker: its region, read from the front; a worker done with its own takes
# ranges from the back of another's, so a slower core reads fewer
_RANGES_PER_WORKER = 8
_MIN_RANGE_ROWS = 16384
_MOMENT_TRIES = 3  # attempts at one moment for every worker (workers.Moved)

_STOPPED = object()  # a held Ctrl-C: the KeyboardInterrupt comes when HoldCtrlC ends


def fetch(con, sql, params, cap, n):
    """The rows of ``sql`` read over ``n`` worker connections that all read one moment of
    the database, as a :class:`Result` equal to the serial fetch's; None when the table was
    empty at that moment. Refused (:class:`~sqlnb.frames.scan.ParallelRefused`) for a query
    or connection it cannot split.

    Ctrl-C is held back while workers exist (``HoldCtrlC``), ``interrupt()`` and the
    connection's time limit stop every worker, and the workers are always joined before
    their statements are finalized and their connections closed.
    """
    mod, scan, raw, stop, deadline = _begin(con, sql, params, n, cap)
    result = _STOPPED
    with _workers.HoldCtrlC(stop):
        in_place = None
        tries = 0
        while True:
            stop.requested = False  # a new attempt (a held Ctrl-C, interrupt() still count)
            try:
                result = _attempt(con, mod, scan, params, n, stop, deadline, in_place)
                break
            except _workers.Moved as exc:
                tries += 1
                if tries >= _MOMENT_TRIES:
                    _scan.refuse(exc.why)
            except mod.PartFull:  # a range held more rows than rowids: cannot happen for a rowid table
                if in_place is False:
                    raise
                in_place = False
    if result is _STOPPED:  # Ctrl-C was held back and its handler did not raise
        raise _errors.interrupted(sql)
    return result


def _attempt(con, mod, scan, params, n, stop, deadline, in_place):
    """One try at one moment: plan, open the workers, let the main connection's read go, read."""
    raw = con._raw
    stmts = []
    crew = None
    try:
        # the main connection's read transaction fixes the moment: the rowid bounds come from
        # it, and every worker begins its own read at it before it ends
        query_rows(raw, "BEGIN")
        plan = _plan(raw, mod, scan, n, in_place)
        if plan is None:
            return None
        snap = _workers.snapshot_of(raw, mod)
        for _ in range(min(n, len(plan.ranges))):
            if stop.asked():
                break
            stmts.append(_workers.open_reader(raw, mod, snap, scan.part_sql, stop.conns))
        snap = None
        query_rows(raw, "ROLLBACK")  # every worker reads the moment now; the main one need not
        if stop.asked():
            return _stopped_result(stop, raw, scan.sql) or _STOPPED
        reading = _Reading(raw, mod, plan, list(stop.conns), stmts, params, stop, deadline, scan.sql)
        crew = _workers.Crew(reading.work, len(stmts))
        crew.start()
        crew.wait(reading.poll)
        return _outcome(con, scan, plan, reading, n)
    finally:
        _end(raw, stop, crew, stmts)


def _end(raw, stop, crew, stmts):
    """Join the workers, end the main connection's read transaction, then finalize the
    workers' statements and close their connections: each step runs whatever an earlier
    one raised (the first exception is raised at the end). Statements and connections are
    left to the garbage collector only if a worker thread could still be running (the
    crew waits for every thread before it raises, so this is not expected)."""
    pending = []

    def attempt(fn, *args):
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - raised below, after the cleanup
            pending.append(exc)

    if crew is not None:
        attempt(crew.close, stop)
    if not raw.closed and not raw.autocommit:
        attempt(query_rows, raw, "ROLLBACK")
    if crew is None or not crew.running():
        for st in stmts:
            attempt(st.finalize)
        for w in stop.conns:
            attempt(w.close)
    stop.conns.clear()
    if pending:
        raise pending[0]


# --- plan -------------------------------------------------------------------------------------

def _begin(con, sql, params, n, cap):
    """What a parallel fetch and a parallel stream start from: ``n`` checked, the engine's module,
    the scan it may split (or ParallelRefused), the raw connection, the workers' Stop, the deadline."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"parallel must be an int >= 1, not {n!r}")
    mod = con.backend.load()
    scan = _scan.check(con, mod, sql, params, cap)
    raw = con._raw
    deadline = _clock() + raw.timeout if raw.timeout > 0 else None
    return mod, scan, raw, _workers.Stop(raw, mod), deadline


def _seconds_left(run):
    """Seconds left of ``run``'s time limit (its ``deadline``; None: no limit); past it, marks
    ``run.stop`` timed out and raises the time-limit error (a parallel fetch and a parallel stream)."""
    if run.deadline is None:
        return None
    rest = run.deadline - _clock()
    if rest <= 0:
        run.stop.timed_out = True
        raise _errors.timeout_error(run.raw.timeout, run.sql)
    return rest


@dataclass
class _Plan:
    ranges: list  # inclusive (lo, hi) rowid ranges, ascending, covering the table's span
    dest: object  # the engine's Fetch: the rows of the whole span when in_place
    in_place: bool  # rows written at their rowid's offset in dest (else each part its own Fetch)


def _plan(raw, mod, scan, n, in_place):
    """The ranges of the table's rowid span, read in ``raw``'s read transaction, and where
    their rows go; None when the table is empty."""
    lo, hi = query_rows(raw, scan.bounds_sql)[0]
    if lo is None:
        return None
    nchunks = max(n, min(n * _RANGES_PER_WORKER, (hi - lo + 1) // _MIN_RANGE_ROWS))
    bounds = sorted({lo + (hi - lo + 1) * k // nchunks for k in range(nchunks)})
    ranges = [(b, nb - 1) for b, nb in zip(bounds, bounds[1:])] + [(bounds[-1], hi)]  # inclusive
    if in_place is None:
        in_place = _can_reserve(hi - lo + 1, len(scan.names))
    dest = mod.Fetch()
    if in_place:
        try:
            dest.reserve(len(scan.names), ranges[-1][1] - ranges[0][0] + 1)
        except MemoryError:
            in_place = False
    return _Plan(ranges, dest, in_place)


def _can_reserve(span, ncol):
    """Can the rows of a rowid span be written in place (tags + 8 bytes per value, reserved
    up front, touched only where rows exist)? Only when the address space asked for is at
    most the machine's memory; sparse rowids (a huge span) take the copying join."""
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return False
    return ncol > 0 and span * ncol * 9 <= ram


# --- claim ------------------------------------------------------------------------------------
class _Claims:
    """Which range each of ``nw`` workers reads next, and the Fetch each range went to.

    Worker i owns the ranges ``cuts[i]:cuts[i + 1]`` (its region) and reads them from the
    front into one Fetch (one part of the in-place buffers); a worker done with its own
    takes the last range left in the region with most left, into a Fetch of its own. So
    each region's rows are mostly one part, whose TEXT/BLOB the join keeps as one chunk,
    and a slower core still ends up reading fewer ranges."""

    def __init__(self, nranges, nw):
        self.cuts = [nranges * i // nw for i in range(nw + 1)]
        self._front, self._back = self.cuts[:-1], self.cuts[1:]
        self._lock = threading.Lock()
        self._pieces = []  # (first range index, Fetch)

    def claim(self, i):
        """The next range for worker i: ``(index, mine)``, ``mine`` when it is of i's own
        region; ``(None, False)`` when none is left."""
        with self._lock:
            front, back = self._front, self._back
            if front[i] < back[i]:
                front[i] += 1
                return front[i] - 1, True
            j = max(range(len(front)), key=lambda r: back[r] - front[r])
            if back[j] <= front[j]:
                return None, False
            back[j] -= 1
            return back[j], False

    def add(self, k, f):
        """Fetch ``f`` holds the rows from range ``k`` on."""
        with self._lock:
            self._pieces.append((k, f))

    def in_order(self):
        return [f for _, f in sorted(self._pieces, key=lambda kf: kf[0])]


# --- worker -----------------------------------------------------------------------------------
class _Reading:
    """What the worker threads share while they read: their statements, the claims, the
    rows each has read, and each one's error (reported by the main thread)."""

    def __init__(self, raw, mod, plan, conns, stmts, params, stop, deadline, sql):
        self.raw, self.mod, self.plan, self.params = raw, mod, plan, params
        self.conns, self.stmts = conns, stmts
        self.stop, self.deadline, self.sql = stop, deadline, sql
        self.base = plan.ranges[0][0]
        nw = len(stmts)
        self.claims = _Claims(len(plan.ranges), nw)
        self.errors = [None] * nw
        self.done_rows = [0] * nw
        self.busy = [False] * nw

    def left(self):
        """Seconds left of the connection's time limit (None: no limit); raises past it."""
        return _seconds_left(self)

    def work(self, i):
        """Worker i's thread: claim a range, bind it, read its rows, until none is left or
        the fetch is asked to stop."""
        w, st = self.conns[i], self.stmts[i]
        plan, stop, claims = self.plan, self.stop, self.claims
        own = None
        try:
            while not stop.asked():
                self.left()
                k, mine = claims.claim(i)
                if k is None:
                    break
                lo_k, hi_k = plan.ranges[k]
                f = own if mine else None
                if f is None:
                    # rows of a range (a stolen one) or of the whole region (this worker's run)
                    span_hi = plan.ranges[claims.cuts[i + 1] - 1][1] if mine else hi_k
                    f = (plan.dest.part(lo_k - self.base, span_hi - lo_k + 1) if plan.in_place
                         else self.mod.Fetch())
                    claims.add(k, f)
                    if mine:
                        own = f
                _bind_with_range(st, self.params, lo_k, hi_k)
                if stop.asked():
                    break
                rest = self.left()
                if rest is not None:
                    w.timeout = rest  # this range may not outlive the fetch's limit
                before = f.nrows
                self.busy[i] = True
                f.run(st)
                self.done_rows[i] += f.nrows - before
                self.busy[i] = False
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.errors[i] = exc
            stop.request()

    def seen(self):
        """Rows read so far: the ranges done, plus the rows of those being read."""
        return sum(self.done_rows) + sum(w.rows_seen for w, b in zip(self.conns, self.busy) if b)

    def poll(self):
        """The main thread's look while it waits: progress, interrupt(), the time limit."""
        stop = self.stop
        self.raw.rows_seen = self.seen()
        if stop.interrupted() and not stop.requested:
            stop.request()
        if self.deadline is not None and _clock() >= self.deadline and not stop.requested:
            stop.timed_out = True
            stop.request()


def _bind_with_range(st, params, lo, hi):
    """Bind the user's parameters plus the two (inclusive) rowid bounds."""
    if is_mapping(params):
        st.bind({**{k: params[k] for k in params.keys()}, "__sqlnb_lo": lo, "__sqlnb_hi": hi})
        return
    values = list(params) if params is not None else []
    want = len(st.param_names()) - 2
    if len(values) != want:
        raise _errors.ParameterError(
            f"Incorrect number of bindings supplied. The current statement uses {want}, "
            f"and there are {len(values)} supplied.")
    st.bind(values + [lo, hi])


# --- join -------------------------------------------------------------------------------------
def _stopped_result(stop, raw, sql):
    """The outcome of a fetch that was asked to stop: _STOPPED for a held Ctrl-C (the
    KeyboardInterrupt comes when HoldCtrlC ends); else the error; None when it was not."""
    if stop.signal is not None:
        return _STOPPED
    if stop.interrupted():
        raise _errors.interrupted(sql)  # as a serial fetch
    if stop.timed_out:
        raise _errors.timeout_error(raw.timeout, sql)
    return None


def _outcome(con, scan, plan, reading, n):
    """Every worker has ended: the error that stopped the fetch, or the joined Result."""
    raw = con._raw
    out = _stopped_result(reading.stop, raw, scan.sql)
    if out is not None:
        return out
    failed = [e for e in reading.errors if e is not None]
    if failed:  # the first failure; the others were most likely interrupted by it
        if any(isinstance(e, _errors.QueryTimeoutError) for e in failed):
            raise _errors.timeout_error(raw.timeout, scan.sql)  # a range ran into the fetch's limit
        raise next((e for e in failed if not isinstance(e, _errors.InterruptError)), failed[0])
    cols = _join(plan, reading.claims.in_order(), n)
    nrows = cols[0].nrows if cols else 0
    raw.rows_seen = nrows
    return Result(columns=scan.names, decltypes=scan.decltypes, raw_columns=cols, nrows=nrows,
                  statement=scan.sql, engine=con.engine)


def _join(plan, fetches, n):
    """The parts' rows in rowid order as columns, joined on up to ``n`` threads.

    In place: rows move down over the rowids without a row; numbers are not copied where
    the rowids are dense, TEXT/BLOB never (each part's bytes stay a chunk of the column).
    Otherwise each part's rows are appended (copied) after the first part's."""
    if plan.in_place:
        plan.dest.join_parts(fetches, threads=n)
        return plan.dest.columns()
    first = fetches[0]
    for f in fetches[1:]:
        first.append(f, threads=n)
    return first.columns()


# --- the stream: pieces of the rowid span, read ahead by the workers, handed out in order -----
_STREAM_MAX_PIECES = 1 << 16  # a sparse rowid span is cut into at most this many pieces
_PIECE_BATCHES = 2  # batches a piece holds read but not handed out before its worker waits
_stream_watch = None  # a test's hook: called (event, pieces held, batches held) under the stream's lock


def stream_batches(con, sql, params, n, rows):
    """``(names, decltypes, source)`` for :func:`sqlnb.frames.batches.query_batches`'s
    ``parallel=n``: ``source`` yields ``(columns, nrows, last)`` in rowid order, as the serial
    stream's batches; None when the table was empty at the moment read (the caller streams
    serially, as :func:`fetch` falls back). Refused (:class:`ParallelRefused`) for what
    :func:`fetch` refuses.

    The table's rowid span is cut into pieces of ``rows`` rowids (more where the span is too
    sparse for :data:`_STREAM_MAX_PIECES`); ``n`` workers claim the pieces in order, at
    most ``2 * n`` pieces claimed and not yet handed out, each read ``rows`` rows at a time
    and holding at most :data:`_PIECE_BATCHES` batches before its worker waits: memory is
    bounded by about ``2 * n * 3`` batches whatever the table's size. Closing ``source`` (the
    reader freed, an error, the end) stops and joins every worker, then finalizes their
    statements and closes their connections.
    """
    mod, scan, raw, stop, deadline = _begin(con, sql, params, n, None)
    tries = 0
    opened = None
    with _workers.HoldCtrlC(stop):
        while True:
            stop.requested = False
            try:
                opened = _open_stream(raw, mod, scan, n, rows, stop)
                break
            except _workers.Moved as exc:
                tries += 1
                if tries >= _MOMENT_TRIES:
                    _scan.refuse(exc.why)
    if opened is _STOPPED:
        raise _errors.interrupted(sql)  # interrupt() (or a Ctrl-C not raised) while the workers were opened
    if opened is None:
        return None
    ranges, stmts = opened
    pieces = _Pieces(raw, mod, ranges, list(stop.conns), stmts, params, stop, deadline, scan.sql, rows, n)
    return scan.names, scan.decltypes, _Ordered(pieces)


def _open_stream(raw, mod, scan, n, rows, stop):
    """The pieces and the workers' statements, every worker reading the main connection's
    moment (as :func:`_attempt`); None when the table is empty, _STOPPED when asked to stop."""
    stmts = []
    ok = False
    try:
        query_rows(raw, "BEGIN")
        lo, hi = query_rows(raw, scan.bounds_sql)[0]
        if lo is None:
            return None
        span = hi - lo + 1
        step = max(rows, -(-span // _STREAM_MAX_PIECES))
        ranges = [(a, min(hi, a + step - 1)) for a in range(lo, hi + 1, step)]
        snap = _workers.snapshot_of(raw, mod)
        for _ in range(min(n, len(ranges))):
            if stop.asked():
                return _STOPPED
            stmts.append(_workers.open_reader(raw, mod, snap, scan.part_sql, stop.conns))
        snap = None
        ok = True
        return ranges, stmts
    finally:
        if not raw.closed and not raw.autocommit:
            query_rows(raw, "ROLLBACK")
        if not ok:
            for st in stmts:
                st.finalize()
            for w in stop.conns:
                w.close()
            stop.conns.clear()


class _Piece:
    __slots__ = ("batches", "done")

    def __init__(self):
        self.batches = []  # (columns, nrows) read, not handed out
        self.done = False


class _Pieces:
    """The workers of one parallel stream and the pieces they read, handed out in order."""

    def __init__(self, raw, mod, ranges, conns, stmts, params, stop, deadline, sql, rows, n):
        self.raw, self.mod, self.ranges, self.conns, self.stmts = raw, mod, ranges, conns, stmts
        self.params, self.stop, self.deadline, self.sql, self.rows = params, stop, deadline, sql, rows
        self.window = 2 * n  # pieces claimed and not yet handed out, at most
        self.cond = threading.Condition()
        self.pieces = {}  # index -> _Piece, for the pieces claimed and not yet handed out
        self.next = 0  # the next piece to claim
        self.head = 0  # the piece being handed out
        self.errors = [None] * len(stmts)
        self.handed = 0
        self.crew = None  # the workers' threads, once the first batch is asked for

    def _watch(self, event):
        if _stream_watch is not None:
            _stream_watch(event, len(self.pieces), sum(len(p.batches) for p in self.pieces.values()))

    def _left(self):
        return _seconds_left(self)

    def _stopping(self):
        return self.stop.asked() or any(e is not None for e in self.errors)

    def work(self, i):
        """Worker i: claim the next piece when the window has room, read it a batch at a time."""
        w, st, cond = self.conns[i], self.stmts[i], self.cond
        try:
            while True:
                with cond:
                    while (not self._stopping() and self.next < len(self.ranges)
                           and self.next >= self.head + self.window):
                        self._watch("full")
                        cond.wait(0.5)
                    if self._stopping() or self.next >= len(self.ranges):
                        return
                    k = self.next
                    self.next += 1
                    piece = self.pieces[k] = _Piece()
                    self._watch("claim")
                lo_k, hi_k = self.ranges[k]
                _bind_with_range(st, self.params, lo_k, hi_k)
                more = False
                while True:
                    rest = self._left()
                    if rest is not None:
                        w.timeout = rest
                    _names, cols, status = self.mod.fetch_columns(st, self.rows, more, more)
                    more = True
                    nrows = cols[0].nrows if cols else 0
                    with cond:
                        if nrows:
                            piece.batches.append((cols, nrows))
                        piece.done = status == "done"
                        self._watch("batch")
                        cond.notify_all()
                        while (not piece.done and len(piece.batches) >= _PIECE_BATCHES
                               and not self._stopping()):
                            cond.wait(0.5)
                        if self._stopping():
                            return
                    if piece.done:
                        break
        except BaseException as exc:  # noqa: BLE001 - raised by the reading thread
            self.errors[i] = exc
            self.stop.request()
            with cond:
                cond.notify_all()

    def _check(self):
        """Raise what stops the stream at once: interrupt(), the time limit."""
        stop = self.stop
        if stop.interrupted():
            stop.request()
            raise _errors.interrupted(self.sql)
        if self.deadline is not None and _clock() >= self.deadline:
            stop.timed_out = True
        if stop.timed_out:
            raise _errors.timeout_error(self.raw.timeout, self.sql)

    def _check_failed(self):
        """Raise a worker's error: the first that is not the interruption of the others."""
        failed = [e for e in self.errors if e is not None]
        if failed:
            if any(isinstance(e, _errors.QueryTimeoutError) for e in failed):
                raise _errors.timeout_error(self.raw.timeout, self.sql)
            raise next((e for e in failed if not isinstance(e, _errors.InterruptError)), failed[0])

    def _next_batch(self):
        """The next batch in rowid order, or None at the end; waits for the workers."""
        cond = self.cond
        with _workers.HoldCtrlC(self.stop):
            with cond:
                while True:
                    if self.stop.signal is not None:
                        break  # the held Ctrl-C raises as the block ends
                    self._check()
                    if self.head >= len(self.ranges):
                        return None
                    piece = self.pieces.get(self.head)
                    if piece is not None and piece.batches:
                        got = piece.batches.pop(0)
                        cond.notify_all()
                        return got
                    if piece is not None and piece.done:
                        del self.pieces[self.head]
                        self.head += 1
                        cond.notify_all()
                        continue
                    # a worker failed: every batch before the first piece left unread was handed out
                    self._check_failed()
                    cond.wait(0.05)
                    self.raw.rows_seen = self.handed
        return None  # not reached: HoldCtrlC raised KeyboardInterrupt

    def in_order(self):
        """The generator of ``(columns, nrows, last)``: starts the workers, closes them at its end."""
        crew = self.crew = _workers.Crew(self.work, len(self.stmts))
        try:
            crew.start()
            got = self._next_batch()
            while got is not None:
                after = self._next_batch()  # one batch ahead: whether this one is the last
                self.handed += got[1]
                self.raw.rows_seen = self.handed
                yield got[0], got[1], after is None
                got = after
        finally:
            self._close(crew)

    def _close(self, crew):
        """Stop and join every worker, then finalize their statements and close their connections."""
        stop = self.stop
        stop.request()
        with self.cond:
            self.cond.notify_all()
        try:
            if crew is not None:
                crew.close(stop)
        finally:
            # (not _end: the main connection's transaction, if any, is the user's own by now)
            if crew is None or not crew.running():
                for st in self.stmts:
                    st.finalize()
                self.stmts = []
                for w in stop.conns:
                    w.close()
            stop.conns.clear()
            self.pieces.clear()


class _Ordered:
    """The stream's source: an iterator of ``(columns, nrows, last)`` whose ``close()`` (also
    when it was never iterated, or when it is freed) releases the workers."""

    def __init__(self, pieces):
        self._pieces = pieces
        self._gen = pieces.in_order()

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._gen)

    def close(self):
        self._gen.close()  # a started generator closes its workers in its finally
        if self._pieces.crew is None:  # never started: no thread, only the connections
            self._pieces._close(None)

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing to report to at collection time
            pass
