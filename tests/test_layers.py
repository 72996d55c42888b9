"""The layers contract: each package imports only from the layers below it, and no
modules import each other in a circle (issue 22). Read from the source with `ast`, every
import counted: at the top, inside functions and under TYPE_CHECKING alike."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "labsim"
# Bottom to top. Above them all: the package's own `__init__`, `__main__`, `api` and
# `pytest_plugin`, which present the layers to users.
LAYERS = ("core", "model", "components", "run", "views", "cli")
TOP = ("labsim", "labsim.__main__", "labsim.api", "labsim.pytest_plugin")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The labsim modules `path` imports (a `from package import module` names the module)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "labsim"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "labsim":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return found - {module}


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def layer_of(module: str) -> int:
    if module in TOP:
        return len(LAYERS)
    name = module.split(".")[1]
    assert name in LAYERS, f"{module} is in no layer: put it in one of {', '.join(LAYERS)}"
    return LAYERS.index(name)


def test_every_module_is_in_a_layer() -> None:
    loose = [m for m in MODULES if m not in TOP and m.split(".")[1] not in LAYERS]
    assert loose == [], f"modules outside the layer packages: {loose}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_only_look_down(module: str) -> None:
    upward = [t for t in sorted(GRAPH[module]) if t in MODULES and layer_of(t) > layer_of(module)]
    assert upward == [], f"{module} imports from a layer above it: {upward}"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path; 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_circle_of_imports() -> None:
    # A package's `__init__` re-exporting its own modules is not a circle of layers.
    graph = {
        m: {t for t in ts if t in MODULES and not m.startswith(t + ".")} for m, ts in GRAPH.items()
    }
    cycle = _cycle(graph)
    assert cycle is None, "modules import each other in a circle: " + " -> ".join(cycle or [])


def test_the_checker_finds_a_circle_and_an_upward_import() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("labsim.cli.up") > layer_of("labsim.core.clock")


# The lab's components are named in the lab's own description only: its sections and
# their defaults (`config.py`, read and checked by `topology.py`), its graph (`lab.py`),
# and the kind its microservice is (`kinds.py`). Everything else reads the graph.
LAB_DESCRIPTION = {
    "labsim.model.config",
    "labsim.model.topology",
    "labsim.model.lab",
    "labsim.model.kinds",
}
LAB_NAMES = re.compile(r"load-balancer|microservice|gateway-\d+")


def _string_constants(path: Path) -> list[str]:
    """The module's string literals, docstrings left out (they may give examples)."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_only_the_lab_s_description_names_the_lab_s_components() -> None:
    naming = {
        name: sorted({s for s in _string_constants(path) if LAB_NAMES.fullmatch(s)})
        for name, path in MODULES.items()
        if name not in LAB_DESCRIPTION
    }
    assert {name: found for name, found in naming.items() if found} == {}
