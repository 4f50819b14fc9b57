"""Which of our packages may import which: the table in docs/architecture.md, held to the code.

Every module of every package ``pyproject.toml`` ships is parsed with ``ast`` (imports in
functions and under ``TYPE_CHECKING`` count: they are dependencies all the same). The
imports between top-level packages must be exactly the table's (an edge the code lacks
is a stale table), they must form no cycle, and the simulator must reach the scheduling
core without FastAPI. ``__main__`` modules are entry points like the console scripts:
they are left out, as nothing imports them.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
WEB_STACK = {"fastapi", "starlette", "uvicorn"}


def packages() -> list[str]:
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return [name.rstrip("*") for name in find["include"]]


def modules() -> dict[str, Path]:
    """Dotted name → file, for every module of our packages (``__main__`` left out)."""
    found = {}
    for package in packages():
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__main__":
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The modules ``name`` imports: ours by dotted name, others by top-level name."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # ``from package import module`` imports the module
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base


def module_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imported(name, path, known)) for name, path in known.items()}


def package_graph() -> dict[str, set[str]]:
    ours = set(packages())
    graph: dict[str, set[str]] = {package: set() for package in ours}
    for module, targets in module_graph().items():
        source = module.partition(".")[0]
        graph[source] |= {t.partition(".")[0] for t in targets} & ours - {source}
    return graph


def table() -> dict[str, set[str]]:
    """The "may import" column of docs/architecture.md's package table."""
    rows = re.findall(r"^\| `(\w+)/` \|[^|]*\| ([^|]*) \|$", ARCHITECTURE.read_text(), re.MULTILINE)
    return {package: set(re.findall(r"`(\w+)`", allowed)) for package, allowed in rows}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path per back edge found by a depth-first walk (empty: the graph is acyclic)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_table_names_every_package_once():
    assert sorted(table()) == sorted(packages())


def test_packages_import_exactly_what_the_table_allows():
    actual, allowed = package_graph(), table()
    wrong = {
        package: {
            "imports, not in the table": sorted(actual[package] - allowed.get(package, set())),
            "in the table, not imported": sorted(allowed.get(package, set()) - actual[package]),
        }
        for package in actual
        if actual[package] != allowed.get(package)
    }
    assert not wrong, f"docs/architecture.md's table and the code disagree: {wrong}"


def test_no_cycles_between_packages():
    assert cycles(package_graph()) == []


def test_the_simulator_reaches_the_scheduling_core_without_the_web_stack():
    graph = module_graph()
    seen, todo = set(), [m for m in graph if m.partition(".")[0] == "simulator"]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    assert "scheduler_extender.scheduler" in seen
    assert not {m.partition(".")[0] for m in seen} & WEB_STACK, sorted(
        m for m in seen if any(t.partition(".")[0] in WEB_STACK for t in graph.get(m, ()))
    )


def test_the_checks_can_fail():
    """The walk finds a cycle and a relative import resolves to the module it names."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    known = modules()
    assert "scheduler_extender.scheduler" in set(
        imported("scheduler_extender.app", known["scheduler_extender.app"], known)
    )
