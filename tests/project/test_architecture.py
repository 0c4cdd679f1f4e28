"""The shape of the code: no import circle in any package, theory apart from montecarlo, no ``_src`` reached from
outside its package (tests apart, which check internals: montecarlo's through ``montecarlo.testing`` only).

The import graph is read from the source (every ``import`` statement, at module level or inside a function, relative
imports resolved), not from ``sys.modules``, so a deferred import that closes a circle counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("theory", "montecarlo", "paper_figures")
OUTSIDE = ("benchmarks", "docs", "notebooks", "tasks.py")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imported(path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``path`` imports (``from pkg import name`` is ``pkg.name`` if a module)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # import a.b.c of a module a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    if "importlib.import_module(" in path.read_text():
        # Imported by name at run time (the figure modules, the Gram backends): count every module of the
        # package as imported, so a circle through a dynamic import is still seen.
        found.update(m for m in modules if m.rpartition(".")[0] == package and m != name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a circle of imports."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_circle_and_reads_relative_imports(tmp_path):
    """The checker itself: a two-module circle through a relative import is found; a chain is not a circle."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    modules = _modules()
    backend = ROOT / "montecarlo" / "_src" / "gram" / "numpy_backend.py"  # from .factorised import gram_blocks
    assert {"montecarlo._src.gram.factorised", "montecarlo._src.draw.layers"} <= _imported(backend, modules)
    gram = ROOT / "montecarlo" / "_src" / "gram" / "__init__.py"  # from .. import validation
    assert "montecarlo._src.validation" in _imported(gram, modules)
    figures = ROOT / "paper_figures" / "figures" / "__init__.py"  # finds its modules with importlib
    assert "paper_figures.figures.f08_depth_training" in _imported(figures, modules)


def test_no_import_circle_in_any_package():
    modules = _modules()
    graph = {name: _imported(path, modules) for name, path in modules.items()}
    assert sum(len(v) for v in graph.values()) > 100  # the graph was read
    assert _cycles(graph) == []


def test_theory_imports_no_montecarlo_and_nothing_outside_reaches_into_src():
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("theory"):
            assert not any(t.startswith(("montecarlo", "paper_figures")) for t in _imported(path, modules)), name
        if name.startswith("paper_figures"):
            assert not any("._src" in t for t in _imported(path, modules)), name
    sources = [p for entry in OUTSIDE for p in ([ROOT / entry] if entry.endswith(".py") else (ROOT / entry).rglob("*.py"))]
    tests = sorted((ROOT / "tests").rglob("*.py"))
    assert sources and tests
    for path in sources + tests:
        if "_build" in path.parts or "_generated" in path.parts:
            continue
        private = "montecarlo._src" if path in tests else "._src"  # the tests' one way in: montecarlo.testing
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                if isinstance(node, ast.ImportFrom):  # from montecarlo._src.x import y, from montecarlo import _src
                    names = [node.module or ""] + [f"{node.module}.{n}" for n in names]
                assert not any(private in n for n in names), (path, names)


#: The rooms of ``montecarlo._src`` in their documented order (``montecarlo/_src/__init__.py``): a room may import
#: the rooms before it, never one after it.
ROOMS = ("validation", "provenance", "draw", "gram", "statistics", "trials", "engines", "training", "phenomena", "cli")


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[:2] == ["montecarlo", "_src"] and len(parts) > 2 else None


def test_imports_run_down_the_rooms_never_back_up():
    modules = _modules()
    rooms = {_room(name) for name in modules} - {None}
    assert rooms <= set(ROOMS), rooms - set(ROOMS)  # a new room takes its place in the list
    upward = [(name, target) for name, path in modules.items() if _room(name)
              for target in _imported(path, modules)
              if _room(target) and ROOMS.index(_room(target)) > ROOMS.index(_room(name))]
    assert upward == []
    # the checker sees an upward arrow where there is one
    assert ROOMS.index(_room("montecarlo._src.engines.sampling")) > ROOMS.index(_room("montecarlo._src.trials.mlp"))
