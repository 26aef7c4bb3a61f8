"""The notebook layer: what only the ``%sql`` magics need, kept apart so that ``import sqlnb``
never imports IPython.

* :mod:`~sqlnb.notebook.command` carries out one parsed ``%sql`` command;
* :mod:`~sqlnb.notebook.cell` runs the statements of a cell (parameters bound from Python);
* :mod:`~sqlnb.notebook.session` keeps the magic's connections by alias;
* :mod:`~sqlnb.notebook.display` renders results (``SqlResult``, also ``sqlnb.display``);
* :mod:`~sqlnb.notebook.explore` lists tables, describes one, draws query plans;
* :mod:`~sqlnb.notebook.completion` completes names inside ``%%sql`` cells;
* :mod:`~sqlnb.notebook.functions` registers Python functions for SQL on every connection
  (``sqlnb.notebook.function``, ``%sql --function NAME``).

They are plain functions over an ``sqlnb.Connection``: IPython is imported only by
``sqlnb.magics`` (and, inside a function, by the completion matcher). This layer
imports ``connection``, ``frames``, ``export`` and ``lsm``; nothing below imports it.
"""
from sqlnb.notebook.functions import aggregate, collation, function, window_function

__all__ = ["function", "aggregate", "window_function", "collation"]
