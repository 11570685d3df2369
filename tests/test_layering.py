"""The package's layers point one way, and its modules import each other without cycles.

Layers, bottom first (docs: README "Layout", DESIGN "Layering"):

    errors, interrupt, io, options, rng, tiers  <-  nn  <-  dynamics, divergences  <-  toy  <-  viz  <-  deep  <-  grading  <-  cli

A module may import its own layer and the layers below it, never one above; every import counts, at the top of
a module or inside a function (a late import is still a dependency, and the way cycles used to hide). The
NumPy half (the bottom, nn, dynamics, divergences, toy) and viz never import torch, not even late. The graph
of all imports between the package's modules has no cycle.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gancourse"

#: the layers, bottom first; a module belongs to the layer of the longest prefix that names it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("bottom", ("gancourse", "gancourse.errors", "gancourse.interrupt", "gancourse.io", "gancourse.options",
                "gancourse.rng", "gancourse.tiers")),
    ("nn", ("gancourse.nn",)),
    ("maths", ("gancourse.dynamics", "gancourse.divergences")),
    ("toy", ("gancourse.toy",)),
    ("viz", ("gancourse.viz",)),
    ("deep", ("gancourse.deep",)),
    ("grading", ("gancourse.grading",)),
    ("cli", ("gancourse.cli", "gancourse.__main__")),
]
#: the layers that never import torch: the NumPy half of the course, and the figures drawn from it
NO_TORCH = ("bottom", "nn", "maths", "toy", "viz")

#: upward imports made on purpose, each inside a module-level ``__getattr__`` (a lazy re-export of names that
#: moved up, so that old imports keep working): (importer, imported) -> why
LAZY_REEXPORTS = {
    ("gancourse.divergences", "gancourse.toy.engine_demos"):
        "notebooks 02 and 03 import vanishing_gradients, train_discriminator, discriminator_error and "
        "wgan_tracking from gancourse.divergences; the experiments train the toy engine, so they live in toy",
}


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    line: int
    top_level: bool  # executed when the importer is imported (not inside a function)
    function: str | None  # the enclosing function's name, if any

    def where(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
PACKAGES = {name for name, p in MODULES.items() if p.name == "__init__.py"}


def _resolve_from(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if importer not in PACKAGES:
        base = base[:-1]  # a module's relative imports start at its package
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


class _Collector(ast.NodeVisitor):
    """Every import of a ``gancourse`` module in one file, with where it happens."""

    def __init__(self, importer: str):
        self.importer = importer
        self.functions: list[str] = []
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.AST) -> None:
        if target == "gancourse" or target.startswith("gancourse."):
            self.found.append(Import(self.importer, target, node.lineno, not self.functions,
                                     self.functions[-1] if self.functions else None))

    def _function(self, node) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.functions.append("<lambda>")
        self.generic_visit(node)
        self.functions.pop()

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = _resolve_from(self.importer, node)
        for alias in node.names:
            sub = f"{module}.{alias.name}"
            self._add(sub if sub in MODULES else module, node)  # ``from pkg import submodule``

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("gancourse.x") and __import__("gancourse.x") are imports too
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            self._add(node.args[0].value, node)
        self.generic_visit(node)


def imports_of(module: str) -> list[Import]:
    collector = _Collector(module)
    collector.visit(ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module])))
    return collector.found


ALL_IMPORTS = [imp for module in MODULES for imp in imports_of(module)]


def layer_of(module: str) -> str | None:
    best, layer = -1, None
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            exact_only = prefix == "gancourse"  # the root package is the bottom, its sub-packages are not
            if module == prefix or (not exact_only and module.startswith(prefix + ".")):
                if len(prefix) > best:
                    best, layer = len(prefix), name
    return layer


RANK = {name: i for i, (name, _) in enumerate(LAYERS)}


# --- the checks ---------------------------------------------------------------------------------------


def test_the_collector_sees_every_kind_of_import(tmp_path):
    code = (
        "import gancourse.nn\n"
        "from gancourse.toy import trainer\n"
        "from gancourse.toy.config import ToyConfig\n"
        "from . import wasserstein\n"
        "def late():\n"
        "    from gancourse.viz.toy import plot_losses\n"
        "    import importlib\n"
        "    importlib.import_module('gancourse.deep')\n"
        "    return lambda: __import__('gancourse.grading')\n"
    )
    collector = _Collector("gancourse.divergences.samples")
    collector.visit(ast.parse(code))
    got = {(i.target, i.top_level, i.function) for i in collector.found}
    assert got == {
        ("gancourse.nn", True, None), ("gancourse.toy.trainer", True, None), ("gancourse.toy.config", True, None),
        ("gancourse.divergences.wasserstein", True, None), ("gancourse.viz.toy", False, "late"),
        ("gancourse.deep", False, "late"), ("gancourse.grading", False, "<lambda>"),
    }


def test_every_module_has_a_layer():
    unmapped = sorted(m for m in MODULES if layer_of(m) is None)
    assert not unmapped, f"modules outside every layer (add them to LAYERS here and to the README): {unmapped}"


def test_no_module_imports_a_layer_above_its_own():
    offenders = []
    for imp in ALL_IMPORTS:
        assert imp.target in MODULES, f"{imp.where()}, which does not exist"
        if RANK[layer_of(imp.target)] <= RANK[layer_of(imp.importer)]:
            continue
        allowed = (imp.importer, imp.target) in LAZY_REEXPORTS and imp.function == "__getattr__"
        line = f"{imp.where()}: layer {layer_of(imp.importer)!r} is below {layer_of(imp.target)!r}"
        if not allowed and line not in offenders:
            offenders.append(line)
    assert not offenders, "upward imports (move the shared code down, or the importer up):\n" + "\n".join(offenders)


def test_lazy_reexports_are_still_there_and_lazy():
    # each allowed upward import exists (else drop it from LAZY_REEXPORTS) and only inside __getattr__
    for (importer, target), why in LAZY_REEXPORTS.items():
        found = [i for i in ALL_IMPORTS if (i.importer, i.target) == (importer, target)]
        assert found and all(i.function == "__getattr__" for i in found), (importer, target, why)


def test_the_numpy_half_never_imports_torch():
    offenders = []
    for module, path in MODULES.items():
        if layer_of(module) not in NO_TORCH:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{module} (line {node.lineno}) imports {n}" for n in names
                          if n.split(".")[0] in ("torch", "torchvision")]
    assert not offenders, offenders


def _import_graph() -> dict[str, set[str]]:
    """importer -> modules it makes Python execute: the target and the packages above it (not its own)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in ALL_IMPORTS:
        if (imp.importer, imp.target) in LAZY_REEXPORTS:
            continue
        parts = imp.target.split(".")
        for i in range(1, len(parts) + 1):
            executed = ".".join(parts[:i])
            own_package = imp.importer == executed or imp.importer.startswith(executed + ".")
            if not own_package and executed != imp.importer:
                graph[imp.importer].add(executed)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_import_graph_has_no_cycle():
    cycle = _find_cycle(_import_graph())
    assert cycle is None, "import cycle (top-level and late imports alike): " + " -> ".join(cycle)


@pytest.mark.parametrize("module, absent", [
    ("gancourse.divergences", "gancourse.toy"),  # the lazy re-export stays lazy
    ("gancourse.toy", "gancourse.viz"),
    ("gancourse.toy", "gancourse.cli"),
    ("gancourse.io", "gancourse.toy"),
])
def test_importing_a_layer_loads_nothing_above_it(module, absent):
    code = (f"import sys, {module}\n"
            f"assert {absent!r} not in sys.modules, sorted(m for m in sys.modules if m.startswith('gancourse'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_names_that_moved_up_are_still_importable_from_divergences():
    import gancourse.divergences as divergences
    from gancourse.toy import engine_demos

    for name in ("critic_gap", "discriminator_error", "train_discriminator", "vanishing_gradients", "wgan_tracking"):
        assert getattr(divergences, name) is getattr(engine_demos, name)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        divergences.nope  # noqa: B018
