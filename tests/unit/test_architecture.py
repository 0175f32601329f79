"""The rooms of the code base and what each may import (docs/ARCHITECTURE.md), checked on the
source itself: a stage importing upward, the kernel importing a stage, or two modules importing
each other fails here, before it becomes a tangle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("riskcast", "features", "training", "fairness", "serving")
MAY_IMPORT: dict[str, set[str]] = {
    "riskcast": set(),
    "features": {"riskcast"},
    "training": {"riskcast", "features"},
    "fairness": {"riskcast", "features", "training"},
    "serving": {"riskcast", "features", "training", "fairness"},
}
TOOLS = ("features.simulator",)
"""Tools that production code outside them must not import (the simulator writes deliveries and
their truth; runtime code reads deliveries through the contract and truth through its manifest)."""


COMMAND_ROOTS = ("features.cli", "serving.cli")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _type_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return hidden


def _imports(path: Path, module: str, *, typing: bool = True) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports (at any depth, lazy imports included), resolved; without
    the ``TYPE_CHECKING`` ones unless ``typing``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = set() if typing else _type_only(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # `from pkg import submodule`
                yield f"{target}.{alias.name}", node.lineno


MODULES = _modules()


def _room(name: str) -> str | None:
    head = name.split(".")[0]
    return head if head in ROOMS else None


def test_every_room_imports_only_the_rooms_below_it() -> None:
    wrong = []
    for module, path in MODULES.items():
        room = _room(module)
        assert room is not None
        for target, line in _imports(path, module):
            other = _room(target)
            if other and other != room and other not in MAY_IMPORT[room]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({room}) imports {target}")
    assert not wrong, "\n".join(wrong)


def test_runtime_code_does_not_import_the_simulator() -> None:
    wrong = []
    for module, path in MODULES.items():
        if module.startswith(TOOLS) or module in COMMAND_ROOTS:
            continue  # the tool itself; the command roots register its commands
        for target, line in _imports(path, module):
            if target.startswith(TOOLS):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, _ in _imports(path, module, typing=False):
            if target in MODULES and target != module and not module.startswith(f"{target}."):
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_two_modules_import_each_other() -> None:
    graph = _graph()
    # a package's __init__ re-exporting its own submodules is not a cycle of design
    for module in graph:
        graph[module] = {t for t in graph[module] if not t.startswith(f"{module}.")}
    assert _cycles(graph) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_the_cycle_finder_finds_cycles(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert _cycles(graph) == expected


def test_modules_stay_small() -> None:
    """God modules are where a code base stops being readable (~500 lines, a little slack)."""
    large = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 550
    }
    assert large == {}
