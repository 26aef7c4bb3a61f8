"""Transitional: the stdlib adapter moved to :mod:`sqlnb.engines.system`.

Kept only while ``sqlnb.export`` still imports it (see the engines part of issue #21);
delete once the exporter calls ``Engine.insert_rows``.
"""
from sqlnb.engines.system import RawConnection, RawStatement, translate  # noqa: F401
