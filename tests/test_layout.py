"""The package's layout: imports run one way, from the pytest layer down to the shared data.

A newcomer reads the data path from the tree (see ``pytest_aide/__init__.py``); this test keeps
the tree honest, so that a shortcut import (the report reaching into the search, a proposer
into the evaluator) is caught where it is written.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_aide"

#: Each module or subpackage's layer; a module may import its own layer and the layers below.
#: Within one layer, groups do not import one another (proposers, executors and report; the
#: data modules are one group). The guards sit below the runners: what checks a candidate
#: never reaches into what runs it.
LAYERS = {
    "plugin": ("pytest", 0),
    "session": ("pytest", 0),
    "hookspecs": ("pytest", 0),
    "api": ("pytest", 0),
    "run": ("run", 1),
    "search": ("search", 2),
    "proposers": ("proposers", 3),
    "executors": ("executors", 3),
    "report": ("report", 3),
    "evaluation": ("evaluation", 4),
    "guards": ("guards", 5),
    "workspace": ("data", 6),
    "settings": ("data", 6),
    "study": ("data", 6),
    "symbols": ("data", 6),
    "sources": ("data", 6),
    "metrics": ("data", 6),
    "journal": ("data", 6),
}


def group_of(module: str) -> str:
    """``pytest_aide.search.loop`` -> ``search``."""
    return module.split(".")[1]


def layer_of(module: str) -> tuple[str, int]:
    return LAYERS[group_of(module)]


def package_imports(path: Path) -> set[str]:
    """Every ``pytest_aide.*`` module the file imports, at any depth (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pytest_aide":
                found.update(f"pytest_aide.{alias.name}" for alias in node.names)
            elif node.module.startswith("pytest_aide."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pytest_aide."))
    return found


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1:
            out.append((".".join(parts), path))
    return out


def test_every_module_belongs_to_a_known_group() -> None:
    unknown = sorted({group_of(name) for name, _ in modules()} - set(LAYERS))
    assert not unknown, f"add these to the layout (LAYERS and pytest_aide/__init__.py): {unknown}"


@pytest.mark.parametrize("name,path", modules(), ids=[name for name, _ in modules()])
def test_imports_run_one_way(name: str, path: Path) -> None:
    own, rank = layer_of(name)
    upward = sorted(
        target
        for target in package_imports(path)
        if layer_of(target)[0] != own and layer_of(target)[1] <= rank
    )
    assert not upward, f"{name} imports {upward}: against the data path's direction"


def import_graph() -> dict[str, set[str]]:
    """Each module's imports of other package modules (a package's import counts as its
    ``__init__``'s), lazy imports included."""
    known = {name for name, _ in modules()}
    graph = {}
    for name, path in modules():
        graph[name] = {
            target if target in known else target.rpartition(".")[0]
            for target in package_imports(path)
        } - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle in ``graph`` as the list of its modules, or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_find_cycle_finds_one_and_only_one_that_is_there() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) == []


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_each_subpackage_says_what_it_is_for_and_may_import() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "import" in doc.lower(), f"{init.parent.name}/__init__.py: say what it may import"


def test_the_architecture_map_names_only_files_that_exist() -> None:
    """ARCHITECTURE.md's tables say which files to touch: a renamed file must be renamed there
    too, or the next maintainer is sent to a file that is gone."""
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:pytest_aide|tests|benchmarks)/[\w/]+\.py)`", text))
    assert len(named) >= 10, "the map should name the files to touch"
    missing = sorted(p for p in named if not (PACKAGE.parent / p).is_file())
    assert not missing, f"ARCHITECTURE.md names files that do not exist: {missing}"
    for package in sorted({group_of(name) for name, _ in modules()}):
        assert f"`{package}" in text, f"ARCHITECTURE.md does not say what {package} is for"
