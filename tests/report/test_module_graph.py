"""The report package's modules import each other without a cycle (static imports, type-only ones
included): model <- writers, grid <- research <- tables <- build."""

from __future__ import annotations

import ast
from pathlib import Path

import xstilts.report

PACKAGE = "xstilts.report"


def report_imports() -> dict[str, set[str]]:
    """module stem -> the report modules it imports (the package itself as `__init__`)."""
    root = Path(xstilts.report.__file__).parent
    stems = {p.stem for p in root.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in root.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
                names = [a.name if a.name in stems else "__init__" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE + "."):
                names = [str(node.module).split(".")[2]]
            elif isinstance(node, ast.Import):
                names = [a.name.split(".")[2] for a in node.names if a.name.startswith(PACKAGE + ".")]
            found.update(n for n in names if n != path.stem)
        graph[path.stem] = found
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_report_modules_import_without_a_cycle() -> None:
    graph = report_imports()
    assert {"model", "grid", "writers", "tables", "research"} <= set(graph)
    assert "tables" not in graph["research"] and "research" in graph["tables"]
    assert cycle(graph) is None, " -> ".join(cycle(graph) or [])


def test_the_cycle_check_finds_one() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
