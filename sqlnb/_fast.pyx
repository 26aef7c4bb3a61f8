# cython: language_level=3, embedsignature=True
"""sqlnb's Cython core over the SQLite C API.

This one source is compiled once per flavour: ``sqlnb._fast`` against our own
amalgamation (with lsm1), ``sqlnb._fast_bdb`` against BerkeleyDB's libdb_sql
(``_fast_bdb.pyx`` includes this file, then the BerkeleyDB-only ``_core/bdb_env.pxi``).
One compilation unit per flavour: SQLite's symbols stay hidden inside one ``.so``
and the bdb flavour (loaded with RTLD_DEEPBIND) keeps its own library. The pieces
are named by object under ``sqlnb/_core/``; ``sqlnb/_fast.pyi`` types the surface.
The Python facade (``sqlnb.connection``) is the documented API; the classes here
(``RawConnection``, ``RawStatement``, ``Fetch``, ``ExportColumns``) are its engine.

Rules kept throughout:
* one raising helper, ``check_rc``, maps result codes through
  ``sqlnb.errors.CODE_TO_CLASS``; a failed step goes through ``_step_error`` only;
* statements are split by SQLite's own tail pointer, never by a hand parser;
* stepping releases the GIL; a progress handler brings signals (Ctrl-C, the
  notebook's interrupt button) and time limits into the step loop;
* the core imports only the lowest layers (``errors``, ``_consts`` through the
  generated ``consts.pxi``, ``_bind``, ``_sql``, ``_files``); a policy is passed
  in by ``install_policy``.
"""
cimport cython
from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_FORMAT, PyBUF_ND,
                             PyBUF_STRIDES)
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock, PyThread_get_thread_ident,
                               WAIT_LOCK, NOWAIT_LOCK)
from cpython.ref cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport NAN
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t, uintptr_t, INT64_MIN
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, memmove, memset, strcmp, strlen
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC, CLOCK_THREAD_CPUTIME_ID
cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

import os
import threading as _threading
import weakref

from sqlnb import errors as _errors
from sqlnb import _bind
from sqlnb import _files
from sqlnb import _sql
from sqlnb import _sigint

include "_core/decls.pxi"        # the SQLite C API, through capi.h (flavour shims)
include "_core/consts.pxi"       # GENERATED from sqlnb/_consts.py by tools/gen_consts.py
include "_core/library.pxi"      # what was built: versions, options; import-time checks
include "_core/errors.pxi"       # result code -> exception; the one rule for a failed step
include "_core/progress.pxi"     # the progress handler: signals, time limits, callbacks
include "_core/connection.pxi"   # the per-connection lock, RawConnection
include "_core/statement.pxi"    # RawStatement: bind (fast paths + sqlnb._bind), step, rows
include "_core/column.pxi"       # RawColumn and the buffers numpy/Arrow wrap (_Buf)
include "_core/fetch.pxi"        # the GIL-free C fetch loop, Fetch
include "_core/parallel.pxi"     # Fetch's parallel parts (reserve/part/join), Snapshot
include "_core/auth.pxi"         # the authorizer's C callback and decision
include "_core/auth_table.pxi"   # AuthTable (a policy compiled to C), install_policy
include "_core/auth_program.pxi" # the second check: each prepared statement's program
include "_core/export.pxi"       # ExportColumns: the columnar INSERT loop of to_table
include "_core/vtab.pxi"         # the sqlnb_frame virtual table: SQL over a frame's buffers (frame_vtab.h)
include "_core/functions.pxi"    # user-defined functions, aggregates, window functions, collations
include "_core/hooks.pxi"        # the stdlib's set_progress_handler (layered), set_trace_callback
include "_core/backup.pxi"       # RawBackup (online backup), serialize, deserialize
include "_core/blob.pxi"         # RawBlob: incremental BLOB I/O (blobopen)
include "_core/extension.pxi"    # load_extension (the C API switched on for one call)
include "_core/look.pxi"         # C aggregates of the plots (sqlnb_histogram, sqlnb_numeric_range)
include "_core/profile.pxi"      # the sqlnb_profile aggregate: an approximate profile in one scan (profile_agg.h)
