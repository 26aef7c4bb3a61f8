# cython: language_level=3, embedsignature=True
# The BerkeleyDB SQL flavour: the very same source as sqlnb._fast, compiled a
# second time against dbsql.h / libdb_sql (setup.py defines SQLNB_FLAVOUR_BDB).
include "_fast.pyx"
