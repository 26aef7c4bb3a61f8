"""Transitional: opening and policy installation moved to :mod:`sqlnb.engines.open`.

Kept only while ``sqlnb.frames`` and ``sqlnb.lsm`` still import it (see the engines
part of issue #21); delete once they call ``sqlnb.engines.open`` and
``Engine.open_like``.
"""
from sqlnb.engines.base import OPEN_CREATE, OPEN_NOMUTEX, OPEN_READONLY, OPEN_READWRITE, OPEN_URI  # noqa: F401
from sqlnb.engines.open import install, install_like, install_policy, open_checked, open_raw  # noqa: F401
