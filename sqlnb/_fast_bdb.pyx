# cython: language_level=3, embedsignature=True
# The BerkeleyDB SQL flavour: the very same source as sqlnb._fast, compiled a
# second time against dbsql.h / libdb_sql (setup.py defines SQLNB_FLAVOUR_BDB),
# plus the code only BerkeleyDB needs (bounded lock waits, dead-environment recovery).
include "_fast.pyx"
include "_core/bdb_env.pxi"
