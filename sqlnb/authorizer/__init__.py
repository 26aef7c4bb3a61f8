"""Read-only modes and table/column policies, enforced by SQLite's authorizer.

A :class:`Policy` describes what a connection may do: its mode (``rw``, ``ro``,
``ro-scratch``), denied tables, an allow-list of tables, masked columns and an
optional user authorizer. ``sqlnb.connect(..., mode=, deny_tables=, ...)`` builds
one and installs it when the connection opens; it is never loosened afterwards.

On the Cython engines (``sqlite``, ``bdb``) the policy is compiled to a C table
and checked by a ``noexcept`` C callback (``sqlnb/_core/auth.pxi``, ``auth_table.pxi``); on the ``system``
engine :meth:`Policy.decide` (the same rules, in Python) runs through the stdlib's
``set_authorizer``. Behind the authorizer, :meth:`Policy.check_program` checks each
statement's bytecode. See docs/read-only.md.

This module is the public face; the parts live in ``sqlnb.authorizer.rules`` (rule tables,
names, the decision), ``sqlnb.authorizer.program`` (the bytecode check) and
``sqlnb.authorizer.refusal`` (refusal messages).
"""
from __future__ import annotations

from typing import Callable

from sqlnb.authorizer import program as _policy_program, refusal as _refusal, rules as _policy_rules
from sqlnb._consts import MODES, AuthAction, Rule, Why
from sqlnb.authorizer.program import VERIFY_OPCODES
from sqlnb.authorizer.rules import (DENIED_FUNCTIONS, DENY, FREE_TABLES, HIDDEN_TABLES, IGNORE, OK,
                                 READ_ONLY_PRAGMAS, SCHEMA_PRAGMAS, mode_rules, parse_columns, parse_tables)
from sqlnb.authorizer.refusal import action_name, describe
from sqlnb._sql import first_keyword  # noqa: F401  (sqlnb.authorizer.first_keyword: the compiled core's import)


class Policy:
    """A connection's mode and policies (``RawConnection.policy``, read-only there).

    The same rules run as a compiled C table on the Cython engines and as
    :meth:`decide` on the ``system`` engine. A policy is frozen when it is installed:
    its attributes cannot be set afterwards, its name lists are tuples, and the
    module-level lists it uses (``READ_ONLY_PRAGMAS``, ``FREE_TABLES``) were copied
    when it was built.

    ``engine``: the engine's name, a label (a parallel-fetch worker's policy is installed
    on the same engine); no rule depends on it. ``core_version``: the SQLite core's
    ``(major, minor)``, a fact the bytecode check needs (an opcode flag moved in 3.8).
    """

    # no instance __dict__: an installed policy's rules cannot be swapped behind __setattr__
    # (Python-level freezing is best effort: object.__setattr__ still reaches a slot; on the
    # Cython engines the rules the authorizer applies live in C, compiled at install)
    __slots__ = ("rules", "unknown_rule", "mode", "allow_load_extension", "deny_tables",
                 "allow_tables", "mask_columns", "authorizer", "engine", "core_version", "pragmas",
                 "free_tables", "hidden_tables", "schema_pragmas", "mask_extra", "table", "shadow",
                 "_state", "_btrees", "_p2isreg", "_frozen", "__weakref__")

    def __init__(self, mode: str = "rw", *, allow_load_extension: bool = False,
                 deny_tables=(), mask_columns=(), allow_tables=None,
                 authorizer: Callable[[int, str | None, str | None, str | None, str | None], int] | None = None,
                 engine: str | None = None, core_version: tuple | None = None):
        object.__setattr__(self, "_frozen", False)
        rules, self.unknown_rule = mode_rules(mode)
        self.rules = tuple(rules)
        self.mode = mode
        if allow_load_extension and mode != "rw":
            raise ValueError(f"allow_load_extension=True is only possible in mode 'rw', not {mode!r}: "
                             "an extension runs arbitrary code")
        self.allow_load_extension = bool(allow_load_extension)
        self.deny_tables = parse_tables(deny_tables, "deny_tables")
        self.allow_tables = None if allow_tables is None else parse_tables(allow_tables, "allow_tables")
        self.mask_columns = parse_columns(mask_columns)
        if authorizer is not None and not callable(authorizer):
            raise TypeError(f"authorizer must be callable, not {type(authorizer).__name__}")
        self.authorizer = authorizer
        self.engine = engine
        self.core_version = None if core_version is None else tuple(core_version)
        # copies of the lists, taken now (through this module, whose names are the public
        # ones): changing those later loosens nothing
        self.pragmas = tuple(READ_ONLY_PRAGMAS.items())
        self.free_tables = tuple(FREE_TABLES)
        self.hidden_tables = tuple((None, t, None) for t in HIDDEN_TABLES) if self.has_table_policies else ()
        self.schema_pragmas = tuple(SCHEMA_PRAGMAS.items()) if self.has_table_policies else ()
        self.mask_extra: tuple = ()  # masks implied by the schema (generated columns, R*Tree rowid)
        self.table = None  # the compiled AuthTable (Cython engines)
        self.shadow: tuple = ()  # (db, shadow table, None) of the virtual tables, found at install
        self._state = None  # the system engine's refusal record
        self._btrees = None  # (schema cookie, forbidden roots, masked roots) for the bytecode check
        self._p2isreg = _policy_program.p2isreg(self.core_version)  # OpenWrite's OPFLAG_P2ISREG

    def __setattr__(self, name, value):
        if self._frozen:
            raise AttributeError(f"a policy is frozen once installed: {name!r} cannot be set "
                                 "(a connection's mode and policy are chosen when it is opened)")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        raise AttributeError(f"a policy is frozen: {name!r} cannot be deleted")

    def like(self) -> "Policy":
        """A new, uninstalled policy with this one's rules (for another connection to the same
        database, such as a parallel-fetch worker): its own refusal record and schema view."""
        new = Policy(self.mode, allow_load_extension=self.allow_load_extension,
                     authorizer=self.authorizer, engine=self.engine, core_version=self.core_version)
        for name in ("deny_tables", "allow_tables", "mask_columns", "pragmas", "free_tables",
                     "hidden_tables", "schema_pragmas", "_p2isreg"):
            object.__setattr__(new, name, getattr(self, name))
        return new

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    @property
    def has_table_policies(self) -> bool:
        return bool(self.deny_tables or self.mask_columns or self.allow_tables is not None)

    @property
    def needs_verify(self) -> bool:
        """Whether each prepared statement's program is checked (ro modes and table policies)."""
        return self.mode != "rw" or self.has_table_policies

    @property
    def all_masks(self) -> tuple:
        return self.mask_columns + self.mask_extra

    # --- compilation --------------------------------------------------------
    def bind_schema(self, tables, columns=None) -> None:
        """Learn the virtual tables' shadow tables from ``PRAGMA table_list`` rows.

        ``tables``: ``(schema, name, type, ...)`` rows. Shadow tables are needed twice:
        an R*Tree prepares INSERT/DELETE statements on its own shadow tables when it
        connects (allowed in the ro modes only as such internal statements), and a
        table policy on a virtual table extends to its shadow tables (so
        ``allow_tables=['docs']`` lets FTS5 read ``docs_content`` and friends).

        ``columns``: ``{(schema, table): (sql, table_xinfo rows)}`` of the tables that
        have a masked column. A mask then also covers what reveals the column: the
        table's generated columns and an R*Tree's ``rowid`` when its id is masked.
        Refused (ValueError): masking an ordinary table's INTEGER PRIMARY KEY (every
        join by rowid would compare it) and a column of a full-text table (its index
        answers ``MATCH``, ``docs('word')``, ``highlight()`` and ``snippet()`` about it).
        """
        self.shadow, owner = _policy_rules.shadow_tables(tables)
        self.deny_tables = _policy_rules.with_shadow_tables(self.deny_tables, owner)
        if self.allow_tables is not None:
            self.allow_tables = _policy_rules.with_shadow_tables(self.allow_tables, owner)
        self.mask_extra = _policy_rules.implied_masks(self.mask_columns, tables, columns)

    def c_spec(self) -> dict:
        """Everything ``_core/auth_table.pxi`` compiles into its C table."""
        return {
            "mode": self.mode,
            "scratch": self.mode == "ro-scratch",
            "shadow": self.shadow,
            "rules": self.rules,
            "unknown_rule": self.unknown_rule,
            "allow_load_extension": self.allow_load_extension,
            "readonly": self.mode != "rw",
            "pragmas": self.pragmas,
            "denied_functions": DENIED_FUNCTIONS if self.mode != "rw" else (),
            "free_tables": self.free_tables,
            "deny": self.deny_tables,
            "hidden": self.hidden_tables,
            "schema_pragmas": self.schema_pragmas,
            "allow": self.allow_tables,
            "mask": self.all_masks,
            "authorizer": self.authorizer,
        }

    # --- the rules in Python (the system engine; tests compare it with the C table) ---
    def decide(self, action: int, a1: str | None, a2: str | None, db: str | None,
               inner: str | None = None, first: bool = True,
               schema_quirk: bool = False) -> tuple[int, int]:
        """The built-in decision for one action: ``(OK|DENY|IGNORE, Why)``.

        ``first``: the first action of the statement being prepared; ``inner``: the
        trigger or view it comes from. ``schema_quirk``: older cores (3.40) authorize
        connecting any virtual table as an UPDATE of ``sqlite_master``; let that
        internal UPDATE through (a user's UPDATE of sqlite_master still needs
        ``writable_schema``, a PRAGMA the ro modes refuse).
        """
        return _policy_rules.decide(self, action, a1, a2, db, inner, first, schema_quirk)

    # --- the second, independent check: each statement's program -----------------------
    def table_refusal(self, db, table) -> str | None:
        """Why a table's b-trees may not be opened (None: they may)."""
        return _policy_rules.table_refusal(self, db, table)

    def snapshot_btrees(self, query) -> tuple:
        """``(cookie, forbidden, masked)`` of the main database: the root pages of the tables
        and indexes a policy hides (``{root: (table, reason)}``) and, for tables with a masked
        column, the record positions that hold it (``{root: (table, columns, positions,
        index_btree)}``). ``query(sql)`` returns rows. Read from the schema as SQLite parsed it;
        :meth:`check_program` reads it again whenever a program names another schema cookie."""
        return _policy_program.snapshot_btrees(self, query)

    def check_program(self, ops, query, sql):
        """Check a statement's program (``(opcode, p1, p2, p3, p5)`` rows of its EXPLAIN,
        only the opcodes in ``VERIFY_OPCODES``) against the policy, independently of the
        authorizer. Returns None, or the exception refusing the statement.

        Refused: under ``ro`` any write to a database but ``temp`` (``ro-scratch``) and any
        virtual-table write; under table policies any cursor on a denied (or not allowed)
        table's or its indexes' b-trees, and any read of a masked column from a table's or
        an index's record (a masked column the authorizer saw reads as NULL without one:
        what remains comes from USING/NATURAL joins and other references SQLite does not
        authorize). In ``rw``, the record reads of an UPDATE/DELETE's own write cursors are
        allowed (they copy the row or maintain its indexes).
        """
        def btrees(cookie):
            snap = self._btrees
            if snap is None or (cookie is not None and cookie != snap[0]):
                snap = self.snapshot_btrees(query)
                object.__setattr__(self, "_btrees", snap)  # (a cache: frozen policies keep it fresh)
            return snap

        return _policy_program.check_program(self, ops, sql, btrees, self._p2isreg)

    # --- the system engine's callback -------------------------------------------------
    def python_callback(self, owner):
        """A stdlib ``set_authorizer`` callback for ``owner`` (the system engine's RawConnection).

        A user authorizer's exception (or bad return) is stored on ``owner._pending``
        and the action denied; the engine raises it once the statement fails. So is
        an interrupt (KeyboardInterrupt) that lands in the callback: the statement is
        refused and the interrupt raised as such.
        """
        if self._frozen:
            raise AttributeError("this policy is installed already; it makes no second callback")
        decide = self.decide
        user = self.authorizer
        state = {"first": None, "since": 0, "quiet": False}
        object.__setattr__(self, "_state", state)

        def callback(action, a1, a2, db, inner):
            try:
                first = state["since"] == 0
                state["since"] += 1
                rc, why = decide(action, a1, a2, db, inner, first, True)
                if rc == OK and user is not None and not state["quiet"]:
                    try:
                        r = user(action, a1, a2, db, inner)
                        if type(r) is not int or r not in (OK, DENY, IGNORE):
                            raise TypeError(
                                f"the authorizer returned {r!r} for action {action} ({a1!r}, {a2!r}); "
                                "it must return sqlnb.authorizer.OK, DENY or IGNORE (the ints 0, 1, 2): denied")
                        rc = r
                    except BaseException as exc:  # fail closed, surface later
                        if owner._pending is None:
                            owner._pending = exc
                        rc = DENY
                    if rc == DENY:
                        why = Why.USER
                if rc == DENY and state["first"] is None:
                    state["first"] = (action, a1, a2, db, inner, int(why))
                return rc
            except BaseException as exc:  # never let an error in our own code allow an action
                if not isinstance(exc, Exception):
                    if owner._pending is None:
                        owner._pending = exc  # KeyboardInterrupt & co.: raised as themselves
                elif state["first"] is None:
                    state["first"] = (action, a1, a2, db, inner, int(Why.NONE))
                return DENY

        return callback

    def begin(self):
        """Forget the previous refusal (called before each statement on the system engine)."""
        if self.table is None and self._state is not None:
            self._state["first"] = None
            self._state["since"] = 0

    def take_refusal(self):
        """The first refusal of the last statement: ``(action, a1, a2, db, inner, why)`` or None."""
        if self.table is not None:
            return self.table.take_refusal()
        state = self._state
        if state is None:
            return None
        r, state["first"] = state["first"], None
        return r

    # --- what the user sees --------------------------------------------------------
    def summary(self) -> str:
        """``'ro'``, or e.g. ``'ro; deny: secrets; mask: users.email'``."""
        parts = [self.mode]
        if self.deny_tables:
            parts.append("deny: " + ", ".join(_refusal.fmt_name(p) for p in self.deny_tables))
        if self.allow_tables is not None:
            parts.append("allow: " + (", ".join(_refusal.fmt_name(p) for p in self.allow_tables) or "(none)"))
        if self.mask_columns:
            parts.append("mask: " + ", ".join(_refusal.fmt_name(p) for p in self.mask_columns))
        if self.allow_load_extension:
            parts.append("load_extension allowed")
        if self.authorizer is not None:
            parts.append("authorizer: " + getattr(self.authorizer, "__name__", type(self.authorizer).__name__))
        return "; ".join(parts)

    def __repr__(self):
        return f"<sqlnb.authorizer.Policy {self.summary()}>"

    def explain_refusal(self, exc):
        """Turn SQLite's bare ``not authorized`` into an error naming mode, action and object.

        Returns None when no refusal of this policy was recorded (then ``exc`` stands).
        """
        rec = self.take_refusal()
        return None if rec is None else _refusal.explain(self.mode, rec, exc)


__all__ = ["Policy", "AuthAction", "Rule", "Why", "OK", "DENY", "IGNORE", "MODES",
           "READ_ONLY_PRAGMAS", "DENIED_FUNCTIONS", "FREE_TABLES", "HIDDEN_TABLES", "SCHEMA_PRAGMAS",
           "VERIFY_OPCODES", "action_name", "describe", "first_keyword",
           "mode_rules", "parse_tables", "parse_columns"]
