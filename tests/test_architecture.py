"""The package layout: no import cycle between dgblocks packages, foundations only at the root,
no file over 300 lines.

The graph has one node per top-level package or root module (``dgblocks.losses``,
``dgblocks._checks``, ...); an edge ``A -> B`` for every import of ``dgblocks.B...`` anywhere in
a module of ``A``, including imports inside functions and under ``TYPE_CHECKING`` (a lazy
import hides a cycle, it does not remove it).
"""

import ast
from pathlib import Path

import dgblocks

ROOT = Path(dgblocks.__file__).parent
FOUNDATIONS = {"__init__", "_checks", "_module_checks", "_dist", "distances", "functional"}
MAX_LINES = 300


def _module_name(path: Path) -> list[str]:
    parts = ["dgblocks", *path.relative_to(ROOT).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path) -> set[str]:
    """Absolute dotted names of every dgblocks module or name imported by ``path``."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)  # `from dgblocks import meta`
    return {n for n in out if n.split(".")[0] == "dgblocks"}


def _node(dotted: str) -> str | None:
    parts = dotted.split(".")
    if len(parts) < 2:
        return None
    top = parts[1]
    if (ROOT / top).is_dir() or (ROOT / f"{top}.py").is_file():
        return top
    return None  # a name imported from dgblocks/__init__.py (e.g. ``from dgblocks import checks``)


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        src = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        edges = graph.setdefault(src, set())
        for name in _imports(path):
            dst = _node(name)
            if dst is not None and dst != src:
                edges.add(dst)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_graph_sees_lazy_imports():
    graph = package_graph()
    assert "data" in graph["protocols"]
    assert "_checks" in graph["losses"]


def test_no_import_cycle_between_packages():
    cycle = _find_cycle(package_graph())
    assert cycle is None, "import cycle between dgblocks packages: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_root_holds_only_the_foundations():
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert modules == FOUNDATIONS, f"unexpected modules at the package root: {modules - FOUNDATIONS}"


def test_no_file_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"
