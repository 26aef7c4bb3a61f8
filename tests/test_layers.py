"""The house rules of docs/architecture.md, checked on the source.

``pyproject.toml`` holds the import contracts (``[tool.importlinter]``: layers, no cycles,
no IPython below the notebook layer); ``lint-imports`` checks them and the first test here
runs it. The rest is what import-linter cannot see:

- function-level imports: never of sqlnb itself (a lazy ``from sqlnb ...`` hides a cycle
  or an upward import); of third-party packages only the optional ones; the stdlib is free;
- no engine-name comparison (``engine == "bdb"``, ``e.name in ("sqlite", ...)``) outside
  ``sqlnb/engines/``: ask the engine for a capability or call its hook;
- no source file over 700 lines;
- ``import sqlnb`` (and the library layers) never import IPython;
- at most 8 floors of module-level imports from ``sqlnb.magics`` down, and no cycle.
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sqlnb._consts import ENGINES

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "sqlnb"
MAX_LINES = 700
MAX_FLOORS = 8

#: third-party packages sqlnb does not require: these alone may be imported inside a function
#: (numpy and pandas are required, but pandas takes most of a second to import: lazy on purpose)
OPTIONAL_THIRD_PARTY = {
    "pandas", "pyarrow", "IPython", "ipykernel", "itables", "matplotlib", "nbformat", "nbclient",
    "nbconvert", "ipywidgets", "traitlets", "tqdm", "psutil", "jupyter_client",
}
#: the one function-level import of sqlnb itself: IPython's ``%load_ext sqlnb`` calls these on the
#: package, and the package must not import IPython (``sqlnb.magics`` does)
EXTENSION_ENTRY_POINTS = {
    ("sqlnb", "load_ipython_extension", "sqlnb.magics"),
    ("sqlnb", "unload_ipython_extension", "sqlnb.magics"),
}
#: the notebook stack: never imported by ``import sqlnb`` nor by the library layers (L0-L4)
NOTEBOOK_STACK = {"IPython", "ipykernel", "ipywidgets", "traitlets", "matplotlib", "itables", "nbformat",
                  "nbclient"}
#: names that hold an engine's name (``engine``, ``con.engine``, ``info.name``, ``FLAVOUR``, ...)
ENGINE_HOLDER = re.compile(r"(?:^|_)(?:engine|engine_name|name|kind|flavour|flavor|backend|file_format)$",
                           re.I)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PY_FILES = sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)
MODULES = {_module_name(p): p for p in PY_FILES}
COMPILED = {_module_name(p) for p in PKG.glob("*.pyx")}  # sqlnb._fast, sqlnb._fast_bdb
CYTHON_FILES = sorted(p for ext in ("*.pyx", "*.pxi", "*.pxd") for p in PKG.rglob(ext))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The modules an import statement imports (``from a import b``: ``a.b`` when that is a
    module of ours, else ``a``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        full = ".".join(base + ([node.module] if node.module else []))
    else:
        full = node.module or ""
    out = []
    for alias in node.names:
        sub = f"{full}.{alias.name}"
        out.append(sub if sub in MODULES or sub in COMPILED else full)
    return out


class _Imports(ast.NodeVisitor):
    """Every import of a module, with the function it sits in (None: module level) and whether
    it is under ``if TYPE_CHECKING:`` (never executed)."""

    def __init__(self, module: str, is_package: bool):
        self.module, self.is_package = module, is_package
        self.function: str | None = None
        self.type_checking = False
        self.found: list[tuple[str | None, bool, str, int]] = []  # (function, type_checking, target, line)

    def _function(self, node):
        outer, self.function = self.function, self.function or node.name
        self.generic_visit(node)
        self.function = outer

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node):
        outer, self.function = self.function, self.function or "<lambda>"
        self.generic_visit(node)
        self.function = outer

    def visit_If(self, node):
        if _is_type_checking(node.test):
            outer, self.type_checking = self.type_checking, True
            for child in node.body:
                self.visit(child)
            self.type_checking = outer
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _import(self, node):
        for target in _targets(node, self.module, self.is_package):
            self.found.append((self.function, self.type_checking, target, node.lineno))

    visit_Import = visit_ImportFrom = _import


def _imports(module: str) -> list[tuple[str | None, bool, str, int]]:
    path = MODULES[module]
    visitor = _Imports(module, path.name == "__init__.py")
    visitor.visit(_parse(path))
    return visitor.found


ALL_IMPORTS = {m: _imports(m) for m in MODULES}


def _ours(target: str) -> bool:
    return target == "sqlnb" or target.startswith("sqlnb.")


# --- the contracts -------------------------------------------------------------------------

def test_import_contracts_hold():
    """``lint-imports`` (import-linter) keeps every contract in pyproject.toml."""
    exe = Path(sys.executable).with_name("lint-imports")
    assert exe.exists(), f"{exe} is missing: import-linter comes with the test extra (pip install -e '.[test]')"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([str(exe), "--no-cache", str(ROOT / "pyproject.toml")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


# --- function-level imports ----------------------------------------------------------------

def test_no_function_level_import_of_sqlnb():
    """A lazy ``from sqlnb ...`` hides a cycle or an import of a higher layer: fix the layering."""
    bad = [f"{_rel(MODULES[m])}:{line} {func}() imports {target}"
           for m, found in ALL_IMPORTS.items() for func, _, target, line in found
           if func is not None and _ours(target) and (m, func, target) not in EXTENSION_ENTRY_POINTS]
    assert not bad, "function-level imports of sqlnb:\n" + "\n".join(bad)


def test_function_level_imports_are_optional_packages_only():
    """Inside a function: the stdlib, or a third-party package sqlnb does not require."""
    allowed = OPTIONAL_THIRD_PARTY | set(sys.stdlib_module_names)
    bad = [f"{_rel(MODULES[m])}:{line} {func}() imports {target}"
           for m, found in ALL_IMPORTS.items() for func, _, target, line in found
           if func is not None and not _ours(target) and target.split(".")[0] not in allowed]
    assert not bad, ("function-level imports of packages sqlnb requires (import them at the top) or "
                     "does not know (add them to OPTIONAL_THIRD_PARTY and to an extra):\n" + "\n".join(bad))


def test_no_hidden_import_of_a_python_module_of_ours():
    """``importlib.import_module("sqlnb.x")`` is a lazy import too; only the compiled engines
    are loaded that way (they may be missing or need special flags)."""
    bad = []
    for module, path in MODULES.items():
        for node in ast.walk(_parse(path)):
            if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str) and _ours(node.args[0].value)
                    and node.args[0].value not in COMPILED
                    and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                         or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
                bad.append(f"{_rel(path)}:{node.lineno} loads {node.args[0].value}")
    assert not bad, "\n".join(bad)


# --- engine names --------------------------------------------------------------------------

def _engine_names(node: ast.expr) -> list[str]:
    """The engine names a comparison side spells: ``"bdb"``, or in ``("sqlite", "system")``."""
    if isinstance(node, ast.Constant) and node.value in ENGINES:
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in ENGINES]
    return []


def _holds_engine(node: ast.expr) -> str | None:
    """The name of an expression that holds an engine's name: ``engine``, ``con.engine``,
    ``info.name``, ``FLAVOUR``..."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    return name if name is not None and ENGINE_HOLDER.search(name) else None


def engine_name_branches(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for a, b in zip(sides, sides[1:]):
                for const, other in ((a, b), (b, a)):
                    names, holder = _engine_names(const), _holds_engine(other)
                    if names and holder:
                        out.append((node.lineno, f"{holder} compared with {', '.join(map(repr, names))}"))
        elif isinstance(node, ast.Match) and _holds_engine(node.subject):
            for case in node.cases:
                for sub in ast.walk(case.pattern):
                    if isinstance(sub, ast.MatchValue) and _engine_names(sub.value):
                        out.append((case.pattern.lineno, f"match {_holds_engine(node.subject)} case {sub.value.value!r}"))
    return sorted(out)


# Cython: the same shapes, read as text (no Python parser reads .pyx)
_CY_ENGINE = "|".join(map(re.escape, ENGINES))
_CY_HOLDER = r"\b\w*(?:engine|name|kind|flavou?r|FLAVOUR|backend|file_format)\b"
_CY_BRANCH = re.compile(
    rf"{_CY_HOLDER}\s*(?:==|!=|\bnot\s+in\b|\bin\b)\s*[(\[{{]?[^\n#]*?[\"'](?:{_CY_ENGINE})[\"']"
    rf"|[\"'](?:{_CY_ENGINE})[\"']\s*(?:==|!=)\s*{_CY_HOLDER}", re.I)


def test_engine_name_branch_check_sees_the_shapes():
    """The check below finds the branches it is meant to find, and not their look-alikes."""
    found = engine_name_branches(ast.parse(
        'engine == "bdb"\ncon.engine != "sqlite"\nself.backend.name in ("system", "bdb")\n'
        '"bdb" == engine_name\nmatch con.engine:\n    case "bdb": pass\n'))
    assert [line for line, _ in found] == [1, 2, 3, 4, 6]
    assert not engine_name_branches(ast.parse(
        'engine in ENGINES\nmode == "ro"\ntable == "system"\nengine.has("wal")\nname == "sqlite_master"\n'))
    assert _CY_BRANCH.search('if FLAVOUR == "bdb":') and _CY_BRANCH.search("if engine in ('sqlite', 'system'):")
    assert not _CY_BRANCH.search('msg = f"{FLAVOUR} engine"') and not _CY_BRANCH.search("x == 'sqlite_master'")


def test_no_engine_name_branches_outside_the_engine_package():
    """Only ``sqlnb/engines/`` knows which engine is which: elsewhere ask ``has(cap)`` or call a hook."""
    engines_dir = PKG / "engines"
    bad = [f"{_rel(path)}:{line} {what}" for path in PY_FILES if engines_dir not in path.parents
           for line, what in engine_name_branches(_parse(path))]
    for path in CYTHON_FILES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.lstrip().startswith("#") and _CY_BRANCH.search(line):
                bad.append(f"{_rel(path)}:{n} {line.strip()}")
    assert not bad, "engine-name comparisons outside sqlnb/engines/:\n" + "\n".join(bad)


# --- sizes ---------------------------------------------------------------------------------

def test_no_source_file_over_700_lines():
    sizes = {_rel(p): len(p.read_text(encoding="utf-8").splitlines())
             for ext in ("*.py", "*.pyx", "*.pxi") for p in PKG.rglob(ext) if "__pycache__" not in p.parts}
    big = {f: n for f, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not big, f"split by concern (docs/architecture.md): {big}"


# --- IPython stays in the notebook layer ---------------------------------------------------

def _imported_stack(code: str) -> list[str]:
    """The notebook-stack packages ``code`` imports, run in a fresh interpreter on this tree."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    probe = code + (
        "\nimport sys\n"
        # every sqlnb module must come from this tree (an editable install elsewhere must not fill a gap)
        f"elsewhere = sorted(n for n, m in sys.modules.items() if n.split('.')[0] == 'sqlnb' "
        f"and not (getattr(m, '__file__', None) or {str(ROOT)!r}).startswith({str(ROOT)!r}))\n"
        "assert not elsewhere, elsewhere\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(NOTEBOOK_STACK)!r}))")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return ast.literal_eval(r.stdout.strip().splitlines()[-1])


def test_import_sqlnb_does_not_import_ipython():
    assert _imported_stack("import sqlnb\nsqlnb.connect(':memory:').execute('SELECT 1').fetchall()") == []


def test_library_layers_do_not_import_ipython():
    """Everything below the notebook layer imports without the notebook stack."""
    assert _imported_stack("import sqlnb.connection, sqlnb.engines, sqlnb.frames, sqlnb.export, sqlnb.lsm") == []


# --- floors and cycles ---------------------------------------------------------------------

def module_graph() -> dict[str, set[str]]:
    """sqlnb's modules and the modules of ours each imports when it is imported (module level,
    ``if TYPE_CHECKING:`` left out; a compiled engine is a leaf: its imports are not read)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, found in ALL_IMPORTS.items():
        for func, type_checking, target, _ in found:
            if func is None and not type_checking and _ours(target) and target != m:
                graph[m].add(target)
                graph.setdefault(target, set())
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def longest_chain(graph: dict[str, set[str]], start: str) -> list[str]:
    best: dict[str, list[str]] = {}

    def chain(v):
        if v not in best:
            tails = [chain(w) for w in sorted(graph[v])]
            best[v] = [v] + max(tails, key=len, default=[])
        return best[v]

    return chain(start)


def test_module_level_imports_have_no_cycle():
    cycles = _cycles(module_graph())
    assert not cycles, f"import cycles: {cycles}"


def test_at_most_8_floors_from_magics_down():
    """The longest chain of module-level imports from ``sqlnb.magics`` (magics is floor 1), each
    subpackage (authorizer, engines, export, frames, notebook) counted as one floor: the house as
    docs/architecture.md draws it, where a package is one room whose files are its concerns."""
    graph = module_graph()
    assert not _cycles(graph), "cycles first (test_module_level_imports_have_no_cycle)"
    chain = longest_chain(graph, "sqlnb.magics")  # module by module, for the reader
    packages = {m for m in MODULES if MODULES[m].name == "__init__.py" and m != "sqlnb"}
    unit = {m: next((p for p in packages if m == p or m.startswith(p + ".")), m) for m in graph}
    by_package = {unit[m]: set() for m in graph}
    for m, targets in graph.items():
        by_package[unit[m]].update(unit[t] for t in targets if unit[t] != unit[m])
    assert not _cycles(by_package), _cycles(by_package)
    coarse = longest_chain(by_package, "sqlnb.magics")
    assert len(coarse) <= MAX_FLOORS, (f"{len(coarse)} floors: {' -> '.join(coarse)}\n(module by module: "
                                       f"{len(chain)}: {' -> '.join(chain)})")


def test_floor_counting_sees_the_shapes():
    """The chain and cycle readers on known shapes."""
    g = {"a": {"b"}, "b": {"c", "d"}, "c": {"d"}, "d": set()}
    assert longest_chain(g, "a") == ["a", "b", "c", "d"] and not _cycles(g)
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_is_placed_in_a_layer(module):
    """Every module of sqlnb sits in a layer of the layers contract (a new module gets a floor)."""
    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    placed = set()
    for contract in layers:
        if contract["type"] == "layers":
            for layer in contract["layers"]:
                for item in re.split(r"[|:]", layer):
                    placed.add(item.strip().strip("()"))
    assert module == "sqlnb" or any(module == p or module.startswith(p + ".") for p in placed), (
        f"{module} is in no layer of pyproject.toml's layers contract: give it one (docs/architecture.md)")
