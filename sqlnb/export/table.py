"""DataFrames into tables: :func:`to_table`'s plan, schema check, transaction and insert.

``to_table`` derives a schema from the pandas dtypes (:mod:`sqlnb.export.columns`),
then fills the table with one prepared INSERT inside one transaction. One driver
(:func:`_insert`) walks the frame in chunks for every engine: an engine with the
compiled column loop (capability ``columnar_export``: ``_core/export.pxi``) binds straight
from the column buffers, the GIL released while a chunk of plain columns is stepped;
any other engine takes the same values as Python rows through its ``insert_rows`` hook.
An error, an interrupt or a killed process leaves the database as it was. The rules
are documented in docs/export.md.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sqlnb import errors as _errors
from sqlnb import progress as _progress
from sqlnb._sql import quote_identifier
from sqlnb.engines.protocol import rows as _run
from sqlnb.dbapi import affinity as _affinity  # SQLite's column affinity rules: one copy
from sqlnb.export.columns import (_arrow_buffers, _check_names, _Col, _apply_dtype, _convert,
                                  _frame_columns, _is_missing, _length, _py_values)

IF_EXISTS = ("fail", "replace", "append")
DEFAULT_CHUNK_ROWS = 65536
ROWS_PER_STEP = 16     # rows per INSERT step where multi-row VALUES exists (see _rows_per_step)
_MAX_PARAMS = 32766    # SQLITE_MAX_VARIABLE_NUMBER of our build
# our SQLite's page cache during a large export (KiB; SQLite's default is 2,000 KiB). The new
# table's pages then stay in memory until COMMIT instead of being written out and read back
# while the b-tree grows; the connection's own setting is restored afterwards.
EXPORT_CACHE_KIB = 262144
_EXPORT_CACHE_ROWS = 100_000   # exports smaller than this keep the connection's cache
_SAVEPOINT = '"sqlnb_to_table"'


class TableExistsError(_errors.ProgrammingError, ValueError):
    """``to_table(..., if_exists="fail")`` found the table (or another object of that name)."""


class IncompatibleTableError(_errors.ProgrammingError, ValueError):
    """``to_table(..., if_exists="append")``: the frame does not fit the existing table."""


# ---------------------------------------------------------------------------
# the plan: the table to create, or the existing columns to append to
# ---------------------------------------------------------------------------
def _create_sql(table: str, cols: list[_Col]) -> str:
    defs = ", ".join(f"{quote_identifier(c.name)} {c.decl}".rstrip() for c in cols)
    return f"CREATE TABLE main.{quote_identifier(table)} ({defs})"


def _fits(col: _Col, decl: str) -> str | None:
    """None when ``col``'s values keep their type in a column declared ``decl``, else why not."""
    aff = _affinity(decl)
    fam = col.family
    if aff == "BLOB" or fam == "null":
        return None
    numbers = ("integer", "bool", "timedelta", "real")
    if aff in ("REAL", "NUMERIC") and fam in numbers:
        return None
    if aff == "INTEGER":
        if fam in ("integer", "bool", "timedelta"):
            return None
        if fam == "real" and col.kind == "float":
            v = col.values[~np.isnan(col.values)]
            if not len(v) or (np.all(np.mod(v, 1) == 0) and np.all(np.abs(v) < 2.0 ** 63)):
                return None
            return "its float values are not all whole numbers"
    if aff == "TEXT" and fam in ("text", "datetime", "date"):
        return None
    if aff == "NUMERIC" and fam in ("text", "datetime", "date") and ("DATE" in decl.upper() or "TIME" in decl.upper()):
        return None
    what = {"mixed": "values of mixed types", "text": "text", "blob": "bytes", "real": "floats",
            "integer": "integers", "bool": "booleans", "timedelta": "timedeltas (integer ns)",
            "datetime": "datetimes (ISO-8601 text)", "date": "dates (ISO-8601 text)"}[fam]
    return f"{what} would be converted by the column's {aff} affinity"


# ---------------------------------------------------------------------------
# small helpers over the raw engine protocol (every engine's RawConnection)
# ---------------------------------------------------------------------------
def _existing(raw, table: str):
    """(type, stored name) of the schema object called ``table`` in main, or None."""
    rows = _run(raw, "SELECT type, name FROM main.sqlite_master WHERE name = ? COLLATE NOCASE "
                     "AND type IN ('table', 'view', 'index', 'trigger')", (table,))
    return rows[0] if rows else None


def _table_info(raw, table: str):
    return [(r[1], r[2] or "", bool(r[3]), r[4], int(r[5]))
            for r in _run(raw, f"PRAGMA main.table_info({quote_identifier(table)})")]


def _append_plan(raw, table: str, cols: list[_Col]) -> list[str]:
    """The table's column names matching ``cols`` (in order), or IncompatibleTableError saying why not."""
    info = _table_info(raw, table)
    by_key = {n.lower(): (n, decl, notnull, dflt, pk) for n, decl, notnull, dflt, pk in info}
    problems, targets = [], []
    for c in cols:
        hit = by_key.get(c.name.lower())
        if hit is None:
            problems.append(f"the frame's column {c.name!r} is not a column of the table "
                            f"(its columns: {', '.join(n for n, *_ in info)})")
            continue
        targets.append(hit[0])
        why = _fits(c.child if c.kind == "category" else c, hit[1]) if hit[1] else None
        if why:
            problems.append(f"column {c.name!r} ({c.dtype}) does not fit declared type {hit[1]}: {why}")
    given = {c.name.lower() for c in cols}
    int_pk = [n for n, decl, _, _, pk in info if pk and decl.upper() == "INTEGER"]
    for n, decl, notnull, dflt, pk in info:
        if n.lower() in given:
            continue
        if notnull and dflt is None and not (len(int_pk) == 1 and n == int_pk[0]):
            problems.append(f"table column {n!r} is NOT NULL without a default and the frame has no such column")
    if problems:
        raise IncompatibleTableError(f"cannot append to table {table!r}: " + "; ".join(problems))
    return targets


# ---------------------------------------------------------------------------
# the insert driver
# ---------------------------------------------------------------------------
def _columns_for(mod, cols: list[_Col], n: int):
    """ExportColumns over ``cols``, and [(slot, chunks)] for the Arrow columns held in several chunks."""
    ec = mod.ExportColumns(n, _is_missing)
    cats, chunked = [], []
    for c in cols:
        if c.kind == "category":
            cats.append((ec.reserve_category(c.name), c))
        else:
            slot = _add(ec, c, True)
            if c.kind == "arrow" and hasattr(c.arrow, "chunks"):
                chunked.append((slot, [ch for ch in c.arrow.chunks if len(ch)]))
    for slot, c in cats:
        child = _add(ec, c.child, False)
        ec.set_category(slot, c.codes, child, _length(c.child))
    return ec, chunked


def _add(ec, c: _Col, bound: bool) -> int:
    if c.kind == "int":
        return ec.add_int64(c.name, c.values, c.mask, bound=bound)
    if c.kind == "float":
        return ec.add_float64(c.name, c.values, c.mask, bound=bound)
    if c.kind == "datetime":
        return ec.add_datetime(c.name, c.values, c.ticks, c.frac, c.utc, None, bound=bound)
    if c.kind == "arrow":
        a, rows = c.arrow, -1
        if hasattr(a, "chunks"):          # a ChunkedArray: start at its first non-empty chunk
            if not bound:
                a = a.combine_chunks()
            else:
                rows, a = len(a), next(ch for ch in a.chunks if len(ch))
        return ec.add_arrow(c.name, len(a), *_arrow_buffers(a), blob=c.family == "blob", bound=bound,
                            rows=rows)
    if c.kind == "object":
        return ec.add_objects(c.name, c.objects, bound=bound)
    if c.kind == "null":
        return ec.add_null(c.name, bound=bound)
    raise AssertionError(c.kind)


def _rows_per_step(backend, ncols: int) -> int:
    """Rows one INSERT step carries (``VALUES (...), (...)``): fewer statement starts per row.
    One on an engine without multi-row VALUES (BerkeleyDB's 3.7.6 core predates 3.7.11)."""
    if not backend.has("multirow_values"):
        return 1
    return max(1, min(ROWS_PER_STEP, _MAX_PARAMS // max(ncols, 1)))


def _spans(n: int, chunk_rows: int, cuts: list[int]):
    """(start, stop) of each chunk of the export: at most ``chunk_rows`` rows, never across one
    of the rows ``cuts`` (where an Arrow column held in several chunks moves to its next one)."""
    cuts = sorted(set(cuts))
    done, j = 0, 0
    while done < n:
        while j < len(cuts) and cuts[j] <= done:
            j += 1
        stop = min(n, done + chunk_rows, cuts[j] if j < len(cuts) else n)
        yield done, stop
        done = stop


def _chunk_starts(cols: list[_Col]) -> list[int]:
    """The rows where a column's next Arrow chunk starts (columns held in several chunks)."""
    cuts = []
    for c in cols:
        if c.kind == "arrow" and hasattr(c.arrow, "chunks"):
            at = 0
            for ch in c.arrow.chunks:
                at += len(ch)
                cuts.append(at)
    return cuts


def _insert(raw, backend, head: str, row: str, cols: list[_Col], n: int, chunk_rows: int) -> None:
    """The insert driver of every engine: rows 0..n-1 of ``cols`` through ``head + row``
    (``INSERT INTO ... VALUES `` and ``(?, ...)``), chunk by chunk, ``raw.rows_seen``
    advancing after each. An engine with the compiled column loop binds from the buffers;
    any other takes the same values as Python rows through its ``insert_rows`` hook."""
    spans = _spans(n, chunk_rows, _chunk_starts(cols))
    if backend.has("columnar_export"):
        _insert_columns(raw, backend.load(), head, row, cols, n, spans, _rows_per_step(backend, len(cols)))
    else:
        _insert_rows(raw, backend, head + row, cols, n, spans)


def _insert_columns(raw, mod, head: str, row: str, cols: list[_Col], n: int, spans,
                    rows_per_step: int) -> None:
    ec, chunked = _columns_for(mod, cols, n)
    # Arrow columns in several chunks: [slot, chunks, index of the current chunk, its first row]
    cursors = [[slot, chunks, 0, 0] for slot, chunks in chunked]
    k = rows_per_step if n >= rows_per_step else 1
    one, _ = raw.prepare((head + row).encode("utf-8"), 0)
    many = one
    try:
        if k > 1:
            many, _ = raw.prepare((head + ",".join([row] * k)).encode("utf-8"), 0)
        for start, stop in spans:
            for cur in cursors:
                slot, chunks, c, row0 = cur
                if start >= row0 + len(chunks[c]):     # this column's chunk is used up: the next one
                    row0 += len(chunks[c])
                    c += 1
                    ec.set_arrow_chunk(slot, row0, len(chunks[c]), *_arrow_buffers(chunks[c]))
                    cur[2:] = [c, row0]
            whole = start + (stop - start) // k * k     # rows that fill k-row steps, then one by one
            if whole > start:
                _insert_steps(ec, many, one, start, whole, start == 0)
            if stop > whole:
                ec.insert(one, whole, stop, whole == 0)
            raw.rows_seen = stop
    finally:
        if many is not one:
            many.finalize()
        one.finalize()


def _insert_rows(raw, backend, insert_sql: str, cols: list[_Col], n: int, spans) -> None:
    """The rows as Python tuples (the same values by the same rules) through ``backend.insert_rows``,
    which bounds them by the connection's time limit and interrupt(); the error names the row.
    No Python code runs per row here: each chunk is converted once and handed over by ``zip``."""
    chunk: list[Any] = [0, [], False]   # the chunk being inserted: its first row, its columns; converting?

    def rows():
        for start, stop in spans:
            chunk[2] = True
            columns = [_py_values(c, start, stop) for c in cols]
            chunk[:] = [start, columns, False]
            yield from zip(*columns)
            raw.rows_seen = stop

    try:
        backend.insert_rows(raw, insert_sql, rows())
    except UnicodeEncodeError as exc:
        raise _surrogate_error(cols, chunk[0], chunk[1], exc) from None
    except _errors.Error as err:
        if chunk[2] or isinstance(err, _errors.QueryTimeoutError):
            raise   # a value the conversion refused names its row already; a time limit has none
        taken = getattr(err, "rows_taken", 0)   # the failing row is the last one taken
        if taken:
            err.row = taken - 1
            err.add_note(f"while inserting row {err.row} (0-based position in the frame)")
        else:
            err.add_note(f"while inserting rows 0..{n - 1} (0-based positions in the frame)")
        raise


def _surrogate_error(cols: list[_Col], start: int, columns: list, exc: UnicodeEncodeError):
    """The BindError naming the first row of the chunk whose text has a lone surrogate."""
    for row, values in enumerate(zip(*columns), start):
        for c, v in zip(cols, values):
            if isinstance(v, str):
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    return _errors.BindError(
                        f"column {c.name!r}, row {row}: text with lone surrogates cannot be stored "
                        f"by the system engine (the stdlib encodes UTF-8 strictly; the sqlite and bdb "
                        f"engines store them as surrogateescape bytes)")
    return exc


def _insert_steps(ec, many, one, start: int, stop: int, first: bool) -> None:
    """ec.insert through the k-row statement; when a value breaks a constraint, SQLite undoes that
    step alone, and its rows go again one by one so that the error names the row."""
    try:
        ec.insert(many, start, stop, first)
    except (_errors.IntegrityError, _errors.DataError) as exc:
        rows = getattr(exc, "rows", None)
        if rows is None:
            raise
        ec.insert(one, rows[0], rows[1], False)
        raise


# ---------------------------------------------------------------------------
# to_table
# ---------------------------------------------------------------------------
def to_table(con, df, name: str, *, if_exists: str = "fail", index: bool = False, dtype=None,
             chunk_rows: int = DEFAULT_CHUNK_ROWS) -> int:
    """Write ``df`` into table ``name`` of ``con``'s main database, atomically.

    :param con: a :class:`sqlnb.Connection` (any engine).
    :param df: a pandas DataFrame (or Series).
    :param name: the table name, used verbatim (quoted: any text is just a name).
    :param if_exists: ``"fail"`` (default: error if ``name`` exists), ``"replace"``
        (drop and re-create, in the same transaction) or ``"append"`` (the frame must
        fit the existing columns and declared types; created if missing).
    :param index: also write the frame's index as leading column(s), as ``reset_index()`` names them.
    :param dtype: a declared SQL type for every column (str) or per column (dict); applies
        when the table is created. Values are still bound by the type rules in docs/export.md.
    :param chunk_rows: rows per chunk: the progress counter ``raw.rows_seen`` and interrupt
        checks advance per chunk (the whole export is still one transaction).
    :returns: the number of rows written.

    Runs in one transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT`` when none is open,
    else inside ``SAVEPOINT`` (released on success: your own COMMIT makes it durable).
    Any error, ``KeyboardInterrupt`` or a killed process leaves the database as it was.
    """
    if if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists must be one of {', '.join(map(repr, IF_EXISTS))}, not {if_exists!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"to_table() needs a non-empty table name (str), not {name!r}")
    quote_identifier(name)
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive int, not {chunk_rows!r}")
    pairs = _frame_columns(df, index)
    if not pairs:
        raise ValueError("to_table(): the frame has no columns (a table needs at least one)")
    names = [n for n, _ in pairs]
    _check_names(names)
    cols = [_convert(s, n) for n, s in pairs]
    _apply_dtype(cols, dtype)
    n = len(pairs[0][1])

    raw, backend = con.raw, con.backend
    own = raw.autocommit
    cache = _raise_cache(raw) if backend.has("export_cache") and n >= _EXPORT_CACHE_ROWS else None
    try:
        _fill_table(raw, backend, name, cols, names, n, if_exists=if_exists, own=own, chunk_rows=chunk_rows)
    except BaseException:
        if cache is not None and not raw.closed:
            try:
                _run(raw, f"PRAGMA main.cache_size={cache}")
            except BaseException:  # noqa: BLE001 - never hide the export's own error
                pass
        raise
    if cache is not None:
        _run(raw, f"PRAGMA main.cache_size={cache}")
    return n


def _raise_cache(raw) -> int | None:
    """Raise main's page cache to EXPORT_CACHE_KIB if it is smaller; return the setting to restore."""
    old = _run(raw, "PRAGMA main.cache_size")[0][0]
    kib = -old if old < 0 else old * _run(raw, "PRAGMA main.page_size")[0][0] // 1024
    if kib >= EXPORT_CACHE_KIB:
        return None
    _run(raw, f"PRAGMA main.cache_size={-EXPORT_CACHE_KIB}")
    return old


def _fill_table(raw, backend, name, cols, names, n, *, if_exists, own, chunk_rows) -> None:
    """to_table's transaction: create/replace/append, fill, commit; roll back on any error.

    The BEGIN/SAVEPOINT runs inside the ``try``: an interrupt (Ctrl-C) that lands
    right after it took effect still rolls back, so no transaction of ours stays open
    (a later export would write into it and vanish at close). ``_undo`` finds out
    from the connection whether it did take effect.
    """
    begun = False
    try:
        _run(raw, "BEGIN IMMEDIATE" if own else f"SAVEPOINT {_SAVEPOINT}")
        begun = True
        found = _existing(raw, name)
        create = True
        targets = names
        if found is not None:
            kind, stored = found
            if if_exists == "fail":
                raise TableExistsError(
                    f"table {stored!r} already exists" if kind == "table" else
                    f"{kind} {stored!r} already exists (to_table writes tables)"
                    + "; pass if_exists='replace' or 'append'" * (kind == "table"))
            if kind != "table":
                raise TableExistsError(f"{kind} {stored!r} already exists; to_table only replaces or "
                                       f"appends to tables")
            if if_exists == "replace":
                _run(raw, f"DROP TABLE main.{quote_identifier(stored)}")
            else:
                targets = _append_plan(raw, stored, cols)
                name = stored
                create = False
        if create:
            _run(raw, _create_sql(name, cols))
        head = (f"INSERT INTO main.{quote_identifier(name)} "
                f"({', '.join(quote_identifier(t) for t in targets)}) VALUES ")
        raw.rows_seen = 0
        if n:
            with _progress.track(raw, label=f"to_table {name}", total=n):
                _insert(raw, backend, head, f"({', '.join('?' * len(cols))})", cols, n, chunk_rows)
        _run(raw, "COMMIT" if own else f"RELEASE {_SAVEPOINT}")
    except BaseException as exc:
        _undo(raw, own, exc, begun)
        raise


def _undo(raw, own: bool, exc: BaseException, begun: bool = True) -> None:
    """Roll the export back; note on ``exc`` if SQLite had already rolled back more.

    ``begun`` False: the exception came before the BEGIN/SAVEPOINT was known to have
    run. With ``own``, the connection's autocommit state says whether it did; inside the
    caller's transaction, a ROLLBACK TO that finds no savepoint of ours is expected then.
    """
    try:
        if raw.closed:
            return
        if raw.autocommit:
            if not own and begun and hasattr(exc, "add_note"):
                exc.add_note("SQLite rolled back the whole enclosing transaction (it does so on an "
                             "interrupt or an I/O error), not just the export")
            return
        if own:
            _run(raw, "ROLLBACK")
        else:
            try:
                _run(raw, f"ROLLBACK TO {_SAVEPOINT}")
            except _errors.Error:
                if begun:
                    raise
                return  # the SAVEPOINT never ran: nothing of ours to undo
            _run(raw, f"RELEASE {_SAVEPOINT}")
    except BaseException as undo_exc:  # noqa: BLE001 - report both, the original wins
        if hasattr(exc, "add_note"):
            exc.add_note(f"rolling back the export also failed: {type(undo_exc).__name__}: {undo_exc}")

