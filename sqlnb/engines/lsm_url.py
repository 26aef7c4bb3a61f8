"""``lsm:///`` URLs: an ``.lsm`` file mounted on a private in-memory SQLite of sqlnb's own build.

``sqlnb.connect("lsm:///events.lsm?key_type=UINT&values=kind,payload")`` calls
:func:`open_lsm` and wraps the raw connection it returns in an ordinary
``Connection`` (engine ``sqlite``); nothing here builds a Connection.
docs/lsm1.md ("lsm:/// URLs") describes the options and where the schema comes from.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from sqlnb import _files, _lsm_file, _lsm_pages, _sql
from sqlnb import errors as _errors
from sqlnb._consts import MODES
from sqlnb.engines import open as _open
from sqlnb.engines.protocol import rows as _rows

URL_OPTIONS = ("table", "key", "key_type", "values", "create", "verify")
_TRUE = ("1", "true", "yes", "on")
# an existing file of other software, without key_type= and values=: its raw key bytes, one value
# column until the first record is counted
_FOREIGN = {"key": "key", "key_type": "BLOB", "values": ("value",)}


def _flag(value) -> bool:
    return value.lower() in _TRUE if isinstance(value, str) else bool(value)


def open_lsm(path, *, mode: str = "rw", timeout: float | None = 5.0, statement_timeout: float | None = None,
             url: str | None = None, options: dict):
    """Mount the LSM file ``path`` as one lsm1 table on a private in-memory SQLite.

    Returns ``(raw, extras, attach)``: the raw connection (its mode's policy installed,
    the file held in ``sqlnb._files`` until it is closed), the connection's extras
    (``{"lsm": {name, schema, file, key, key_type, values, schema_from}}``) and
    ``attach(con)``, to call once the Connection over ``raw`` exists.

    :param path: the ``.lsm`` file (relative paths are made absolute now).
    :param mode: ``"rw"``, ``"ro"`` or ``"ro-scratch"`` (``options["mode"]`` wins; the caller
        has already taken the strictest of its sources). ``ro`` modes never create the file and
        mount it read-only, in the ``temp`` schema of a read-only private database.
    :param timeout: seconds to wait, in ``rw`` mode, for another process's write transaction
        on the file to end before giving up with BusyError; also the busy timeout.
    :param statement_timeout: the raw connection's statement time limit.
    :param url: the URL as written (the caller names the Connection with it; not used here).
    :param options: ``table=`` (default: the file's stem), ``key=``, ``key_type=``
        (UINT/TEXT/BLOB), ``values=`` (comma list or sequence), ``create=`` (default True
        in ``rw``), ``verify=`` (default False: :func:`sqlnb._lsm_file.verify` first).
    """
    options = dict(options)
    unknown = sorted(set(options) - set(URL_OPTIONS) - {"mode"})
    if unknown:
        raise _errors.InterfaceError(
            f"unknown lsm option(s) {', '.join(unknown)}; lsm URLs take {', '.join(URL_OPTIONS)}, mode")
    mode = options.pop("mode", mode)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    path = os.fspath(path)
    if path in ("", ":memory:"):
        raise _errors.InterfaceError("an lsm URL needs a file path: lsm:///relative.lsm or lsm:////abs/path.lsm")
    create = mode == "rw" and _flag(options.get("create", True))
    abspath = _lsm_file.check_lsm_file(path, must_exist=not create)
    if _flag(options.get("verify", False)) and os.path.exists(abspath):
        _lsm_file.verify(abspath)  # the full read: every data page (CorruptError before anything is mounted)
    name = _lsm_file.check_name(options.get("table") or Path(abspath).stem or "lsm", "table")
    schema = _lsm_file.resolve_schema(
        abspath, key=options.get("key"),
        key_type=_lsm_file.check_key_type(options["key_type"]) if options.get("key_type") else None,
        values=_lsm_file.check_values(options["values"]) if options.get("values") else None,
        foreign=_FOREIGN)
    key, kt, vals = schema.key, schema.key_type, schema.values
    if mode == "rw" and schema.existed:
        _lsm_file.wait_for_writer(abspath, timeout)

    # A read-only mode mounts the file read-only: the private database is opened read-only and the
    # table lives in its temp schema; lsm1Connect (patched at build time, tools/lsm1_readonly.c)
    # then opens lsm with LSM_CONFIG_READONLY, so lsm never writes the file, its log or its size.
    where = "main" if mode == "rw" else "temp"
    target = f"{_sql.quote_identifier(where)}.{_sql.quote_identifier(name)}"
    raw = _open.open_raw("sqlite", ":memory:", mode="rw" if mode == "rw" else "ro")
    try:
        if schema.existed:  # held from now on: nothing of sqlnb's reads it with a descriptor of its own
            _files.hold(raw, abspath)
        if timeout is not None:
            raw.busy_timeout(float(timeout))
        try:
            _rows(raw, _lsm_file.create_sql(name, abspath, key=key, key_type=kt, values=vals, schema=where))
        except _errors.Error as exc:
            if not schema.existed:
                _lsm_file.remove_new(abspath)
            raise type(exc)(f"cannot mount lsm file {abspath!r}: {exc}") from exc
        if not schema.existed:
            _files.hold(raw, abspath)
        if schema.source == "guess":
            if not options.get("values"):
                row = _rows(raw, f"SELECT lsm1_value FROM {target} LIMIT 1", limit=1)
                n = _lsm_pages.count_value_fields(row[0][0]) if row and row[0][0] is not None else 1
                if n > 1:
                    vals = tuple(f"value{i}" for i in range(1, n + 1))
                    _rows(raw, f"DROP TABLE {target}")
                    _rows(raw, _lsm_file.create_sql(name, abspath, key=key, key_type=kt, values=vals, schema=where))
            warnings.warn(
                f"{abspath} has no sqlnb sidecar ({os.path.basename(_lsm_file.sidecar_path(abspath))}) and no "
                f"key_type/values options, so table {name!r} shows key {key!r} as {kt} and value column(s) "
                f"{', '.join(vals)}; the raw record is in the hidden column lsm1_value. Pass them, e.g. "
                f"lsm:///{path}?key_type=UINT&values=a,b", UserWarning, stacklevel=3)
        if statement_timeout:
            raw.timeout = float(statement_timeout)
        _open.install(raw, "sqlite", mode=mode)
        if not schema.existed:
            _lsm_file.write_sidecar(abspath, key=key, key_type=kt, values=vals, table=name)
    except BaseException:
        raw.close()
        _files.release(raw)
        raise
    extras = {"lsm": {"name": name, "schema": where, "file": abspath, "key": key, "key_type": kt,
                      "values": vals, "schema_from": schema.source}}
    return raw, extras, _attach


def _attach(con) -> None:
    """Nothing is left to do once the Connection exists: the file is held by ``raw`` itself
    (``sqlnb._files``), which the Connection closes and releases."""
