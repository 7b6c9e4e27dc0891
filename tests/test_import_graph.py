"""The project's module graph, read from the source (every ``import``, at any depth, typing
-only ones under ``TYPE_CHECKING`` included): no import cycle among the modules of
``detectors/``, and nothing in ``detectors/`` imports ``streams`` or ``simulation`` (the
engine stays pure). ``streams/`` still has cycles (``app`` with ``bursts``, ``combine`` and
``side``, which subclass or attach to its ``Runtime``; ``settings`` with ``config`` and
``topics``); they go with the runtime's split (issue 13), and until then the test pins them:
a new cycle in ``streams/`` fails it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports(package: str) -> dict[str, set[str]]:
    """module -> the project modules it imports (dotted names, ``package.x``)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).glob("*.py")):
        name = f"{package}.{path.stem}" if path.stem != "__init__" else package
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the package of this module
                    base = package if not node.module else f"{package}.{node.module}"
                else:
                    base = node.module or ""
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)  # from pkg import module
        graph[name] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan), and modules that
    import themselves."""
    nodes = set(graph)
    edges = {n: {m for m in graph[n] if m in nodes} for n in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges[v]:
                out.append(comp)

    for n in sorted(nodes):
        if n not in index:
            visit(n)
    return out


def test_the_cycle_finder_finds_a_cycle_and_passes_a_chain() -> None:
    assert cycles({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}) == [
        {"p.a", "p.b", "p.c"}]
    assert cycles({"p.a": {"p.b", "os"}, "p.b": {"p.c"}, "p.c": set()}) == []


def test_no_import_cycle_among_the_detectors_modules() -> None:
    assert cycles(imports("detectors")) == []


def test_nothing_in_detectors_imports_streams_or_simulation() -> None:
    bad = {(mod, dep) for mod, deps in imports("detectors").items() for dep in deps
           if dep.split(".")[0] in ("streams", "simulation")}
    assert bad == set()


def test_the_streams_cycles_are_only_the_known_ones() -> None:
    """Known: the runtime in ``streams/app.py`` and the modules built on it; the settings
    and the configuration file and topic names they read. The sets may shrink (then update
    them here); they must not grow."""
    known = [{"streams.app", "streams.bursts", "streams.combine", "streams.episodes",
              "streams.side"},
             {"streams.settings", "streams.config", "streams.topics"}]
    found = cycles(imports("streams"))
    assert all(any(c <= k for k in known) for c in found), found
