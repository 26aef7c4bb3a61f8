"""Results as pandas DataFrames and Arrow tables.

(Interim implementation through the cursor; the columnar fetcher replaces it.)
"""
from __future__ import annotations


def _run_last(con, sql, params):
    cur = con.cursor()
    cur.execute(sql, params)
    return cur


def cursor_df(cur, *, limit=None):
    import pandas as pd

    if cur.description is None:
        return pd.DataFrame()
    rows = cur.fetchall() if limit is None else cur.fetchmany(limit)
    cols = [d[0] for d in cur.description] if cur.description else []
    return pd.DataFrame.from_records(rows, columns=cols)


def query_df(con, sql, params=None, *, limit=None):
    return cursor_df(_run_last(con, sql, params), limit=limit)


def query_arrow(con, sql, params=None, *, limit=None):
    import pyarrow as pa

    return pa.Table.from_pandas(query_df(con, sql, params, limit=limit), preserve_index=False)
