# Columnar fetch (sqlnb/_fetch.pxi): included by _fast.pyx. See issue "The fast path".
