"""A fresh IPython shell for the magics tests: ``run_cell`` raises what the cell raised."""
from __future__ import annotations

import atexit

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


class RaisingShell(InteractiveShell):
    """An ``InteractiveShell`` whose ``run_cell`` raises the cell's error (so tests see failures)."""

    def run_cell(self, raw_cell, *args, **kwargs):
        result = super().run_cell(raw_cell, *args, **kwargs)
        result.raise_error()
        return result

    def run_cell_result(self, raw_cell):
        """Run without raising; return IPython's ExecutionResult."""
        return super().run_cell(raw_cell)


def new_shell() -> RaisingShell:
    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.HistoryManager.hist_file = ":memory:"
    RaisingShell.clear_instance()
    shell = RaisingShell.instance(config=cfg)
    shell.run_line_magic("load_ext", "sqlnb")
    return shell


def close_shell(shell):
    from sqlnb import magics

    magics.unload_ipython_extension(shell)
    shell.cleanup()
    # Every InteractiveShell registers its atexit_operations (a full gc.collect() among them): left
    # registered, each closed shell stays alive and costs a full collection at exit, which made the
    # test process take minutes to exit after a full run
    atexit.unregister(shell.atexit_operations)
    RaisingShell.clear_instance()
