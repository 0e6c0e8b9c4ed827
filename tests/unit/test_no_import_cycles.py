"""No import cycles in the layer, the CLI, the handlers or the emulator.

The graph is read from the source with `ast`, without importing anything: every `import` and
`from ... import` counts, those inside functions too (an import moved into a function only postpones the
cycle to the first call), except those under `if TYPE_CHECKING:`, which never run. `from package import
name` leads to the package and, when the package's __init__ says which submodule the name comes from (a
PEP 562 lazy package such as miro_sync.miro says so in its TYPE_CHECKING block), to that submodule too.
Names resolved from strings at run time (`importlib.import_module`) are not seen.

A cycle is a strongly connected component of that graph. The known ones are listed in KNOWN_CYCLES with
their reason; any other cycle fails, and so does a known one that grew or disappeared (then update the
list).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# (folder on sys.path, top-level package in it)
PACKAGES = (
    ("layers/miro_sync", "miro_sync"),
    ("cli", "miro_sync_cli"),
    ("emulator", "miro_emulator"),
)
# Each handler folder is its own code root in Lambda; here they are named functions.<folder>.<module>.
FUNCTIONS = "functions"

KNOWN_CYCLES: dict[frozenset[str], str] = {
    # frozenset({module, ...}): "why it is there and who is to break it"
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: Path
    line: int


def find_modules(roots: Iterable[tuple[Path, str]], functions_dir: Path | None = None) -> dict[str, Path]:
    """Module name -> file, for each (folder, package) and each handler under `functions_dir`."""
    modules: dict[str, Path] = {}
    for folder, package in roots:
        for path in sorted((folder / package).rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    if functions_dir is not None:
        for path in sorted(functions_dir.glob("*/*.py")):
            parts = path.relative_to(functions_dir.parent).with_suffix("").parts
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, *, with_type_checking: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth (functions, methods, try blocks)."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node) and not with_type_checking:
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _known(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module `name` imports (its closest enclosing known module), or None outside the graph."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def build_graph(modules: Mapping[str, Path]) -> dict[str, list[Edge]]:
    trees = {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in modules.items()}
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}
    # For `from package import name`: which submodule each package's __init__ takes `name` from.
    origins: dict[str, dict[str, str]] = {}
    for package in packages:
        origins[package] = {}
        for node in _imports(trees[package], with_type_checking=True):
            if isinstance(node, ast.ImportFrom):
                source = _absolute(package, True, node)
                for alias in node.names:
                    origins[package][alias.asname or alias.name] = source
    graph: dict[str, list[Edge]] = {}
    for name, tree in trees.items():
        edges: dict[str, Edge] = {}
        # in line order, so each edge names its first import
        for node in sorted(_imports(tree, with_type_checking=False), key=lambda node: node.lineno):
            for target in _targets(name, name in packages, node, modules, origins):
                known = _known(target, modules)
                if known is not None and known != name and known not in edges:
                    edges[known] = Edge(name, known, modules[name], node.lineno)
        graph[name] = list(edges.values())
    return graph


def _targets(
    module: str,
    is_package: bool,
    node: ast.Import | ast.ImportFrom,
    modules: Mapping[str, Path],
    origins: Mapping[str, Mapping[str, str]],
) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = _absolute(module, is_package, node)
    for alias in node.names:
        if f"{base}.{alias.name}" in modules:  # `from package import submodule`
            yield f"{base}.{alias.name}"
            continue
        yield base
        if alias.name in origins.get(base, {}):
            yield origins[base][alias.name]


def _reachable(graph: Mapping[str, list[Edge]], start: str) -> set[str]:
    seen = {start}
    pending = [start]
    while pending:
        for edge in graph[pending.pop()]:
            if edge.target not in seen:
                seen.add(edge.target)
                pending.append(edge.target)
    return seen


def find_cycles(graph: Mapping[str, list[Edge]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module: each module in one reaches every
    other. Quadratic, and the graph is a few hundred modules."""
    reach = {module: _reachable(graph, module) for module in graph}
    cycles: set[frozenset[str]] = set()
    for module, reached in reach.items():
        component = frozenset(other for other in reached if module in reach[other])
        if len(component) > 1:
            cycles.add(component)
    return sorted(cycles, key=sorted)


def describe(cycle: frozenset[str], graph: Mapping[str, list[Edge]]) -> str:
    lines = [f"cycle of {len(cycle)} modules: {', '.join(sorted(cycle))}"]
    for module in sorted(cycle):
        for edge in graph[module]:
            if edge.target in cycle:
                where = edge.path.relative_to(REPO_ROOT) if edge.path.is_relative_to(REPO_ROOT) else edge.path
                lines.append(f"  {edge.source} -> {edge.target}  ({where}:{edge.line})")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Edge]]:
    roots = [(REPO_ROOT / folder, package) for folder, package in PACKAGES]
    return build_graph(find_modules(roots, REPO_ROOT / FUNCTIONS))


def test_the_graph_covers_every_package_and_handler(graph: dict[str, list[Edge]]) -> None:
    for prefix in [package for _, package in PACKAGES] + [f"{FUNCTIONS}.offboarding.app"]:
        assert any(module == prefix or module.startswith(f"{prefix}.") for module in graph), prefix
    # a function-level import is an edge (offboard_cmd imports the store inside its commands)
    assert "miro_sync.store.queue" in {edge.target for edge in graph["miro_sync_cli.offboard_cmd"]}


def test_no_import_cycle_besides_the_known_ones(graph: dict[str, list[Edge]]) -> None:
    new = [cycle for cycle in find_cycles(graph) if cycle not in KNOWN_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(describe(cycle, graph) for cycle in new)


def test_each_known_cycle_is_still_there(graph: dict[str, list[Edge]]) -> None:
    """A known cycle that was broken (or changed its modules) comes off the list, so the list stays true."""
    gone = [sorted(cycle) for cycle in KNOWN_CYCLES if cycle not in find_cycles(graph)]
    assert not gone, f"no longer cycles as listed, update KNOWN_CYCLES: {gone}"


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/stack.py": "from pkg import invoke\n",
            "pkg/invoke.py": "def load():\n    from pkg.stack import DEFAULT\n    return DEFAULT\n",
            "pkg/template.py": "from pkg.invoke import load\n",
        },
    )
    graph = build_graph(find_modules([(tmp_path, "pkg")]))
    assert find_cycles(graph) == [frozenset({"pkg.stack", "pkg.invoke"})]
    assert "pkg/invoke.py:2" in describe(frozenset({"pkg.stack", "pkg.invoke"}), graph)


def test_type_checking_imports_and_lazy_package_names(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            # a lazy package: names resolved on first use, declared for the type checker
            "pkg/__init__.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg.client import Client\n"
                "def __getattr__(name):\n"
                "    import importlib\n"
                "    return importlib.import_module('pkg.client')\n"
            ),
            "pkg/client.py": "from pkg.tokens import Token\n",
            "pkg/tokens.py": "def refresh():\n    from pkg import Client\n",
            # an annotation-only back reference does not run
            "pkg/app.py": "from pkg.routes import ROUTES\n",
            "pkg/routes.py": (
                "import typing\nif typing.TYPE_CHECKING:\n    from pkg.app import App\nROUTES = ()\n"
            ),
        },
    )
    graph = build_graph(find_modules([(tmp_path, "pkg")]))
    assert find_cycles(graph) == [frozenset({"pkg.client", "pkg.tokens"})]


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from .a import A\n",
            "pkg/sub/a.py": "from ..b import B\nA = 1\n",
            "pkg/b.py": "def f():\n    from pkg.sub import a\nB = 1\n",
        },
    )
    graph = build_graph(find_modules([(tmp_path, "pkg")]))
    assert find_cycles(graph) == [frozenset({"pkg.sub.a", "pkg.b"})]
