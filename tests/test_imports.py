"""finar's import structure: no cycle among its modules, a light ``import finar``, names that resolve.

The import graph is read from the source with :mod:`ast`, not by importing, so an import inside a
function (which runs late and so can hide a cycle at import time) counts like any other.

Rules of the graph (nodes: every module and package of ``finar``):

- ``import a.b.c`` and ``from a.b import c`` (``c`` a module) are edges to ``a.b.c``;
  ``from a.b import name`` (``name`` not a module) is an edge to the package ``a.b`` itself
  (its ``__init__``). Relative imports are resolved first. Imports under
  ``if TYPE_CHECKING:`` never run and are left out.
- Importing ``a.b.c`` also runs the ``__init__`` of ``a.b`` and of ``a``: edges to those
  packages are added, except to packages that contain the importing module. A module's own
  enclosing packages are already being imported when it runs, so ``finar.models.base``
  importing its sibling ``finar.models.scenarios`` is not an edge to ``finar.models``, and a
  package ``__init__`` importing its own submodules (``finar.models -> finar.models.base``) is
  an edge that closes a cycle only if that submodule, directly or not, imports the package
  ``__init__`` back by name (``from finar.models import X``, ``import finar``).
- A package's lazy names (PEP 562, :mod:`finar._lazy`: the ``_LAZY`` dict of name -> module)
  are edges from the package to those modules, as if imported eagerly: laziness hides no cycle.
- Imports by a computed name (``importlib.import_module``, e.g. the model registry finding
  its built-in classes) are look-ups, not dependencies, and are not read.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import finar
import finar.reporting

ROOT = Path(finar.__file__).resolve().parent
HEAVY = ("torch", "plotly")


def finar_modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package), for ``finar`` and everything under it."""
    out = {"finar": (ROOT / "__init__.py", True)}

    def walk(path: Path, prefix: str) -> None:
        for info in pkgutil.iter_modules([str(path)], prefix):
            short = info.name.rsplit(".", 1)[-1]
            if info.ispkg:
                out[info.name] = (path / short / "__init__.py", True)
                walk(path / short, info.name + ".")
            else:
                out[info.name] = (path / f"{short}.py", False)

    walk(ROOT, "finar.")
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(tree: ast.AST) -> list[ast.stmt]:
    """Every import statement and ``_LAZY = {...}`` of a module, outside ``if TYPE_CHECKING:``."""
    found: list[ast.stmt] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom | ast.Assign | ast.AnnAssign):
            found.append(node)  # type: ignore[arg-type]
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imports_of(name: str, path: Path, is_pkg: bool, modules: dict[str, tuple[Path, bool]]) -> set[str]:
    """The finar modules ``name`` imports (see the module docstring for the rules)."""
    package = name if is_pkg else name.rpartition(".")[0]
    targets: list[str] = []
    for node in _statements(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and target.id == "_LAZY" and isinstance(node.value, ast.Dict):
                targets += [v.value for v in node.value.values
                            if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    out: set[str] = set()
    for target in targets:
        while target and target not in modules:  # ``import finar.x.y as z`` of a name inside a module
            target = target.rpartition(".")[0]
        if not target.startswith("finar"):
            continue
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            mod = ".".join(parts[:i])
            enclosing = name == mod or name.startswith(mod + ".")
            if mod != name and (i == len(parts) or not enclosing):
                out.add(mod)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = finar_modules()
    return {name: imports_of(name, path, is_pkg, modules) for name, (path, is_pkg) in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


# ---- the graph ---------------------------------------------------------------------------------
def test_the_graph_reader_sees_every_kind_of_import() -> None:
    """The reader itself: relative, function-level and lazy imports all become edges."""
    graph = import_graph()
    assert "finar.reporting.pipeline" in graph["finar.reporting.sections"]
    assert {"finar.models", "finar.reporting", "finar.ticks"} <= graph["finar"]     # eager and _LAZY
    assert "finar.models.wavenet" in graph["finar.models"]                          # _LAZY of finar.models
    assert "finar.models" not in graph["finar.models.base"]                         # a sibling is no edge
    assert "finar.evaluation" in graph["finar.ticks.stylized"]                       # another package's init
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_finar() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# ---- import finar stays light ------------------------------------------------------------------
def test_import_finar_imports_neither_torch_nor_plotly() -> None:
    code = ("import sys, finar; finar.models.GARCH; finar.models.AR; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert run.stdout.strip() == "[]", f"imported: {run.stdout.strip()}"
    timed = [line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()
             if line.startswith("import time:")]
    assert "finar.models.garch" in timed  # the importtime output is read, not empty
    heavy = sorted({m for m in timed if m.split(".")[0] in HEAVY})
    assert not heavy, f"import finar imported {heavy}"


def test_lazy_names_are_listed_and_resolve() -> None:
    for module in (finar, finar.models, finar.ticks, finar.reporting):
        names = set(dir(module))
        assert set(module.__all__) <= names, module.__name__
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
    assert finar.ticks is sys.modules["finar.ticks"] and callable(finar.report)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        finar.models.nothing  # noqa: B018


# ---- names -------------------------------------------------------------------------------------
def test_backtest_panel_is_public_and_its_module_is_reachable() -> None:
    import finar.evaluation.backtesting as backtesting

    assert finar.backtest_panel is backtesting.backtest_panel
    assert finar.backtest is backtesting.backtest
    assert finar.evaluation.backtesting is backtesting  # the module, not shadowed by a function


def test_no_function_hides_its_module() -> None:
    """A package attribute named like one of its submodules must be that module (the old
    ``finar.evaluation.backtest`` function hid the module of the same name and its other names)."""
    import importlib
    import pkgutil
    import types

    import finar

    clashes = []
    for info in pkgutil.walk_packages(finar.__path__, "finar."):
        parent_name, _, child = info.name.rpartition(".")
        parent = importlib.import_module(parent_name)
        if child in vars(parent) and not isinstance(vars(parent)[child], types.ModuleType):
            clashes.append(f"{parent_name}.{child}")
    assert not clashes, f"names that hide a module of the same name: {clashes}"
