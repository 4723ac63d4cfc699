"""Imports point one way: a test walks every import in harness/ (lazy ones inside functions too).

commands -> report, check -> results -> the rest; no module imports itself back through
others. The packages below results still import each other (config <-> loaders <->
augment, trial <-> monitor); KNOWN_TANGLE names them, so the tangle can shrink, never grow.
"""

import ast
from pathlib import Path

from tests.conftest import ROOT

HARNESS = ROOT / "harness"
# packages that still import each other: shrink this set, never add to it
KNOWN_TANGLE = {"augment", "config", "data", "loaders", "monitor", "results", "trial"}
# (importer, imported): a package on the left must not import the one on the right
FORBIDDEN = [(low, high) for low in ("report", "check", "results") for high in ("commands",)] + [
    ("results", "report"),
    ("results", "check"),
    ("report", "check"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each harness module -> the harness modules it imports, anywhere in its body."""
    modules = {module_name(p): p for p in HARNESS.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("harness"):
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("harness")}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = set()
            while True:
                w = stack.pop()
                members.add(w)
                if w == v:
                    break
            if len(members) > 1:
                found.append(members)

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_back():
    assert cycles(imports()) == []


def test_packages_import_one_way_outside_the_known_tangle():
    graph = imports()
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        packages.setdefault(package(module), set()).update(package(t) for t in targets if package(t) != package(module))
    for members in cycles(packages):
        assert members <= KNOWN_TANGLE, f"a new import cycle between packages: {sorted(members)}"
    for low, high in FORBIDDEN:
        assert high not in packages.get(low, set()), f"harness.{low} imports harness.{high}: imports must point down"


def test_the_walk_sees_lazy_imports():
    """The check would be blind if imports inside functions were missed (launch imports report lazily)."""
    assert "harness.report.render" in imports()["harness.commands.launch"]


def test_every_command_has_its_own_help(capsys):
    """history --help once raised KeyError: a command without an entry in COMMAND_HELP."""
    from harness.__main__ import COMMAND_HELP, COMMANDS, main

    assert set(COMMANDS) == set(COMMAND_HELP)
    for command in COMMANDS:
        assert main([command, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: python -m harness {command}")
