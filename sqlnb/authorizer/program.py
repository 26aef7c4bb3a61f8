"""The program check: each prepared statement's bytecode, checked against the policy.

The second, independent check behind the authorizer (``Policy.check_program``): the
opcodes of a statement's ``EXPLAIN`` listing say which databases it writes and which
b-trees (tables, indexes) it opens and reads, whatever SQL form led there: USING and
NATURAL joins read columns SQLite never authorizes. :func:`snapshot_btrees` maps the
main database's root pages to the tables a policy hides or masks; :func:`check_program`
walks a program against that map.
"""
from __future__ import annotations

from sqlnb import _sql, errors as _errors
from sqlnb.authorizer.rules import declares_without_rowid, ieq, matches, table_refusal
from sqlnb.authorizer.refusal import verify_error

#: write opcodes -> which operand (1..3) names the database they write
WRITE_DB = {"OpenWrite": 3, "Destroy": 3, "Clear": 2, "CreateBtree": 1, "CreateTable": 1,
            "CreateIndex": 1, "SetCookie": 1}

#: The opcodes :func:`check_program` looks at (the rest of a program is skipped).
VERIFY_OPCODES = frozenset((
    "RowData", "RowCell", "Transaction", "VerifyCookie", "OpenRead", "OpenWrite", "ReopenIdx", "OpenDup", "Column",
    "Destroy", "Clear", "CreateBtree", "CreateTable", "CreateIndex", "SetCookie",
    "VUpdate", "VCreate", "VDestroy", "Vacuum", "IncrVacuum",
    "SeekGE", "SeekGT", "SeekLE", "SeekLT", "IdxGE", "IdxGT", "IdxLE", "IdxLT", "Found", "NotFound",
    "NoConflict", "SeekScan", "IsUnique"))
#: the opcodes that compare a key with an index b-tree's records
SEEKS = frozenset(("SeekGE", "SeekGT", "SeekLE", "SeekLT", "IdxGE", "IdxGT", "IdxLE", "IdxLT",
                   "Found", "NotFound", "NoConflict", "SeekScan", "IsUnique"))  # (IsUnique: 3.7)
#: opcodes that write whatever their operands say
_ALWAYS_WRITES = frozenset(("VUpdate", "VCreate", "VDestroy", "Vacuum", "IncrVacuum"))


def p2isreg(core_version: tuple | None) -> int:
    """OpenWrite's OPFLAG_P2ISREG on a core of ``core_version`` (``(major, minor)``): 0x10 since
    3.8 (which uses 0x02 for OPFLAG_SEEKEQ), 0x02 on 3.7. Unknown: 0x10."""
    return 0x02 if core_version is not None and tuple(core_version[:2]) < (3, 8) else 0x10


def snapshot_btrees(p, query) -> tuple:
    """``(cookie, forbidden, masked)`` of the main database under policy ``p``: the root pages of
    the tables and indexes it hides (``{root: (table, reason)}``) and, for tables with a masked
    column, the record positions that hold it (``{root: (table, columns, positions, index_btree)}``).
    ``query(sql)`` returns rows. Read from the schema as SQLite parsed it."""
    cookie = query("PRAGMA main.schema_version")[0][0]
    rows = query("SELECT type, name, tbl_name, rootpage, sql FROM main.sqlite_master "
                 "WHERE type IN ('table', 'index')")
    forbidden, masked = {}, {}
    tables = {r[1].lower(): r for r in rows if r[0] == "table"}
    # WITHOUT ROWID tables as SQLite parsed them (table_list's ``wr``: 3.37+; older cores have
    # no table_list, and the 3.7 core no WITHOUT ROWID: the text is read there)
    listed = query("PRAGMA main.table_list")
    wr = ({r[1].lower() for r in listed if len(r) > 4 and r[4]} if listed else
          {k for k, r in tables.items() if declares_without_rowid(r[4])})
    for typ, name, tbl, root, _ in rows:
        if not isinstance(root, int) or root <= 0:
            continue
        why = table_refusal(p, "main", tbl)
        if why is None and typ == "table":
            why = table_refusal(p, "main", name)
        if any(matches(h, "main", tbl) for h in p.hidden_tables):
            why = "hidden"  # sqlite_stat1..4: what ANALYZE sampled (row counts, index keys)
        elif why == "not allow_tables" and ieq(tbl, "sqlite_sequence"):
            why = "bookkeeping"  # AUTOINCREMENT's counters: free to the statement maintaining them
        if why is not None:
            forbidden[root] = (tbl, why)
    masks = p.all_masks
    for key, (_, name, _, root, _) in tables.items():
        pats = [m for m in masks if matches((m[0], m[1], None), "main", name)]
        if not pats or not isinstance(root, int) or root <= 0:
            continue
        q = _sql.quote_identifier(name)
        cols = query(f"PRAGMA main.table_xinfo({q})") or [  # (older cores: table_info)
            (*r, 0) for r in query(f"PRAGMA main.table_info({q})")]
        mcids = {r[0] for r in cols if any(ieq(m[2], r[1]) for m in pats)}
        if not mcids:
            continue
        label = ", ".join(r[1] for r in cols if r[0] in mcids)
        if key in wr:  # the record is the primary key index's: positions in that index
            pk = [r for r in query(f"PRAGMA main.index_list({q})") if r[3] == "pk"]
            pkcols = query(f"PRAGMA main.index_xinfo({_sql.quote_identifier(pk[0][1])})") if pk else ()
            masked[root] = (name, label, frozenset(r[0] for r in pkcols if r[1] in mcids), True)
        else:
            pos, n = set(), 0
            for r in cols:
                if len(r) > 6 and r[6] == 2:  # VIRTUAL generated: no storage (masked by name)
                    continue
                if r[0] in mcids:
                    pos.add(n)
                n += 1
            masked[root] = (name, label, frozenset(pos), False)
        for r in rows:
            if r[0] != "index" or not ieq(r[2], name) or not isinstance(r[3], int):
                continue
            qi = _sql.quote_identifier(r[1])
            irows = query(f"PRAGMA main.index_xinfo({qi})") or query(f"PRAGMA main.index_info({qi})")
            ipos = frozenset(x[0] for x in irows if x[1] in mcids or x[1] == -2)
            if ipos:
                masked[r[3]] = (name, label, ipos, True)
    return cookie, forbidden, masked


def check_program(p, ops, sql, btrees, isreg: int = 0x10):
    """Check program ``ops`` of ``sql`` against policy ``p`` (``Policy.check_program`` documents
    what is refused). ``btrees(cookie)``: :func:`snapshot_btrees` for the main database's schema
    cookie the program names (None: any); ``isreg``: the core's OPFLAG_P2ISREG (:func:`p2isreg`).
    Returns None, or the exception refusing the statement."""
    ro = p.mode != "rw"
    scratch = p.mode == "ro-scratch"
    cookie = None
    cursors, writers = {}, set()  # keyed by (frame, cursor): each sub-program numbers its own
    attached = None
    for row in ops:
        op, p1, p2, p3, p5 = row[:5]
        frame = row[5] if len(row) > 5 else 0
        if op in ("Transaction", "VerifyCookie"):
            if p1 == 0:
                cookie = p3 if op == "Transaction" else p2
            continue
        if ro:
            db = WRITE_DB.get(op)
            if db is not None:
                db = (p1, p2, p3)[db - 1]
                if not (scratch and db == 1):
                    return verify_error(p.mode, sql, f"its program writes to the database ({op})", ro=True)
            if op in _ALWAYS_WRITES:
                return verify_error(p.mode, sql, f"its program writes to the database ({op})", ro=True)
        if op in ("OpenRead", "OpenWrite", "ReopenIdx"):
            # (OpenWrite's P2 may be a register (OPFLAG_P2ISREG): a b-tree this statement
            # creates, a write the authorizer already checked by name)
            if p3 == 0 and not (op == "OpenWrite" and p5 & isreg):
                cursors.setdefault((frame, p1), set()).add(p2)
            elif p3 >= 2 and attached is None:
                attached = op  # an attached database: its root pages are not main's
            if op == "OpenWrite":
                writers.add((frame, p1))
        elif op == "OpenDup":
            cursors.setdefault((frame, p1), set()).update(cursors.get((frame, p2), ()))
    if not p.has_table_policies:
        return None
    if attached is not None:
        return verify_error(
            p.mode, sql, f"its program opens a b-tree of an attached database ({attached}); under table "
            "policies only main and temp are read (the policy names main's tables)",
            cls=_errors.AccessDeniedError)
    roots = set().union(*cursors.values()) if cursors else set()
    if not roots:
        return None
    _, forbidden, masked = btrees(cookie)
    written = set().union(*(cursors.get(w, ()) for w in writers)) if writers else set()
    for r in roots:
        if r in forbidden:
            tbl, why = forbidden[r]
            if why == "bookkeeping" and r in written:
                continue  # AUTOINCREMENT maintaining sqlite_sequence (the authorizer is not asked)
            reason = {"deny_tables": "which is in deny_tables",
                      "hidden": "which holds statistics of the tables a policy hides"}.get(
                          why, "which is not in allow_tables")
            return verify_error(
                p.mode, sql, f"its program reads main.{tbl}, {reason}"
                " (through a form the authorizer does not see, e.g. USING or NATURAL joins)",
                cls=_errors.AccessDeniedError)
    if not any(r in masked for r in roots):
        return None
    return _masked_reads(p.mode, ops, sql, cursors, writers, masked, ro)


def _masked_reads(mode, ops, sql, cursors, writers, masked, ro):
    """The refusal of the first read of a masked column from a record in ``ops``, or None."""
    for row in ops:
        op, p1, p2 = row[:3]
        frame = row[5] if len(row) > 5 else 0
        if op == "RowCell":
            p1 = p2  # the source cursor (P1 is the destination)
        elif op != "Column" and op != "RowData" and op not in SEEKS:
            continue
        if op != "RowCell" and op not in SEEKS and not ro and (frame, p1) in writers:
            continue  # an UPDATE/DELETE copying its row or maintaining its indexes
        for r in cursors.get((frame, p1), ()):
            m = masked.get(r)
            if m is None:
                continue
            if op in ("RowData", "RowCell"):  # a whole record: the masked column with it
                return verify_error(
                    mode, sql, f"it copies whole records holding the masked column main.{m[0]}.{m[1]} "
                    "(INSERT … SELECT * copies records without reading columns; name the "
                    "columns to copy)", cls=_errors.PolicyError)
            if op != "Column":  # a seek in an index b-tree that holds the masked column compares it
                if m[3]:
                    return verify_error(
                        mode, sql, f"it searches an index that holds the masked column main.{m[0]}.{m[1]} "
                        "(a comparison with the hidden values; name other columns)", cls=_errors.PolicyError)
                continue
            if p2 in m[2]:
                return verify_error(
                    mode, sql, f"it compares or returns the masked column main.{m[0]}.{m[1]} "
                    "(USING and NATURAL joins read it without asking; join with ON and name "
                    "other columns)", cls=_errors.PolicyError)
    return None
