"""The rest of the stdlib ``sqlite3`` surface, which :class:`sqlnb.Connection` inherits (docs/functions.md, docs/dbapi.md).

==============  ==========================================================
``surface``     :class:`StdlibSurface`: user functions, aggregates, window functions, collations,
                limits, ``text_factory``, ``isolation_level``
``more``        progress/trace/authorizer callbacks, backup, serialize, ``iterdump``, ``blobopen``,
                extensions (a mixin of ``StdlibSurface``)
``blob``        :class:`Blob`, the handle ``blobopen`` returns
``convert``     ``detect_types``, ``register_converter``, ``register_adapter``
==============  ==========================================================
"""
