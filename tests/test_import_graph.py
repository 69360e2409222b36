"""The layer rule and the absence of import cycles, read from the code itself (docs/architecture.md).

Every .py of portal/, builds/, web/ and api/ (not migrations) is parsed with `ast`; every
import counts, wherever it stands (module level, inside a function, under TYPE_CHECKING), so
a cycle cannot hide behind a function-local import.

- portal/ (the floor) imports neither builds, notify, web nor api;
- notify/ (events and their deliveries) sits between: it imports neither builds, web nor
  api; builds emits events through notify.events and runs its jobs from builds/cron.py;
- builds/ (the domain) imports neither web nor api;
- no module of web/ or api/ (the roof) imports builds.azure: Azure is reached through
  preflight, services and selectors;
- no two modules import each other, directly or through others.
"""

from __future__ import annotations

import ast
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PACKAGES = ("portal", "builds", "notify", "web", "api")
FORBIDDEN = {"portal": ("builds", "notify", "web", "api"), "builds": ("web", "api"), "web": ("builds.azure",),
             "api": ("builds.azure",),
             "notify": ("builds", "web", "api")}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((BASE_DIR / package).rglob("*.py")):
            parts = path.relative_to(BASE_DIR).with_suffix("").parts
            if "migrations" in parts or "tests" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported_names(name: str, path: Path) -> set[str]:
    """Every module name `name` imports, absolute, including `from package import module`."""
    names: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def graph() -> dict[str, set[str]]:
    """Module -> the app modules it imports (a package's __init__ counts as the package)."""
    found = modules()
    return {name: {other for other in imported_names(name, path) if other in found and other != name}
            for name, path in found.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path that ends where it starts, or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for other in sorted(edges[node]):
            if colour[other] == grey:
                return [*stack[stack.index(other):], other]
            if colour[other] == white and (cycle := visit(other)):
                return cycle
        stack.pop()
        colour[node] = black
        return None

    for node in sorted(edges):
        if colour[node] == white and (cycle := visit(node)):
            return cycle
    return None


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_graph_sees_every_package():
    found = modules()
    for package in PACKAGES:
        assert package in found
    assert "builds.azure" in found
    assert "notify.events" in found


def test_there_is_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_layers_point_one_way():
    found = modules()
    breaches = []
    for name, path in found.items():
        layer = name.split(".")[0]
        for other in sorted(imported_names(name, path)):
            for forbidden in FORBIDDEN[layer]:
                if _within(other, forbidden):
                    breaches.append(f"{name} imports {other}")
    assert breaches == []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
