"""The package's parts point down only: no two top-level parts import each other, however indirectly.

A part is a top-level subpackage or module of ``btcmlops`` (``contest``, ``registry``, ``settings``...).
The graph is read from the source with ``ast`` (every import that runs, at module level or inside a
function; those under ``if TYPE_CHECKING:`` never run and are left out), so a cycle is caught where it
is written, not only where an import order happens to trip over it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import btcmlops

PACKAGE = Path(btcmlops.__file__).parent


def _type_checking_only(tree: ast.AST) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:``."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            skipped.update(id(child) for statement in node.body for child in ast.walk(statement))
    return skipped


def _imported_modules(path: Path) -> Iterator[str]:
    """Every module ``path`` imports at run time, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_only(tree)
    here = ["btcmlops", *path.relative_to(PACKAGE).with_suffix("").parts]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.module or ""
            else:
                base = here[: len(here) - node.level]
                yield ".".join([*base, node.module] if node.module else base)


def _part(module: str) -> str | None:
    """The top-level part of a ``btcmlops`` module (None: not ours, or the package itself)."""
    names = module.split(".")
    return names[1] if names[0] == "btcmlops" and len(names) > 1 else None


def import_graph() -> dict[str, set[str]]:
    """Which parts each part imports (itself left out)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        part = _part("btcmlops." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        if part is None or part.startswith("__"):  # __init__, __main__: the package's own doors
            continue
        targets = graph.setdefault(part, set())
        targets.update(p for m in _imported_modules(path) if (p := _part(m)) and p != part)
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one part (Tarjan), each sorted, as a path to read."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_two_parts_import_each_other() -> None:
    graph = import_graph()
    found = cycles(graph)
    described = [
        " and ".join(f"{a} -> {b}" for a in group for b in sorted(graph[a]) if b in group) for group in found
    ]
    assert not found, f"parts that import each other: {described}"


def test_the_graph_sees_the_imports_a_cycle_is_made_of() -> None:
    """The test above can fail: the graph has the edges it must have, and a planted cycle is found."""
    graph = import_graph()
    assert "registry" in graph["contest"]  # the contest drives the registry...
    assert "clock" in graph["store"]  # ...the store keeps the clock's row...
    assert "contest" not in graph["registry"]  # ...and nothing points back up
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_settings_do_not_import_the_clock() -> None:
    assert "clock" not in import_graph()["settings"]
