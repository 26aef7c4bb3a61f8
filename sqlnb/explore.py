"""Exploring a connection: tables, one table's description, query plans (the public name of
:mod:`sqlnb.notebook.explore`; importing it never imports IPython)."""
from sqlnb.notebook.explore import (
    Description,
    QueryPlan,
    columns_of,
    describe,
    plan,
    plan_tree,
    schemas,
    table_names,
    tables,
    virtual_module,
)

__all__ = ["Description", "QueryPlan", "columns_of", "describe", "plan", "plan_tree", "schemas",
           "table_names", "tables", "virtual_module"]
