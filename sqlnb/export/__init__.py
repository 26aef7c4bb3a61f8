"""DataFrames into tables (:func:`to_table`) and results into files (:func:`write_result`).

``to_table`` derives a schema from the pandas dtypes, then fills the table with one
prepared INSERT inside one transaction; an error, an interrupt or a killed process
leaves the database as it was. ``write_result`` writes a DataFrame or Arrow table to
CSV, Parquet, JSON lines, JSON or Arrow IPC (Feather). The rules are documented in
docs/export.md.

The package, by concern:

* :mod:`sqlnb.export.columns`: a pandas dtype becomes a declared type and the buffers
  (or the Python values) the insert binds;
* :mod:`sqlnb.export.table`: the plan (create, replace or append), the schema check,
  the transaction and the one insert driver of every engine;
* :mod:`sqlnb.export.files`: ``write_result`` and ``write_query``;
* :mod:`sqlnb.export.target`: the formats, ``check_target``, the temporary name, ``Written``;
* :mod:`sqlnb.export.stream`: the streaming writers (a RecordBatchReader, batch by batch).
"""
from __future__ import annotations

from sqlnb._sql import quote_identifier
from sqlnb.export.columns import schema_for
from sqlnb.export.files import write_query, write_result
from sqlnb.export.target import FORMATS, ExportError, ExportTargetError, Written, check_target, format_for
from sqlnb.export.table import (DEFAULT_CHUNK_ROWS, EXPORT_CACHE_KIB, IF_EXISTS, ROWS_PER_STEP,
                                IncompatibleTableError, TableExistsError, to_table)

__all__ = ["to_table", "write_result", "write_query", "check_target", "ExportError", "ExportTargetError",
           "Written", "FORMATS", "TableExistsError", "IncompatibleTableError",
           "schema_for", "quote_identifier", "format_for", "IF_EXISTS", "DEFAULT_CHUNK_ROWS",
           "ROWS_PER_STEP", "EXPORT_CACHE_KIB"]
