"""The project's module graph, read from the source (every ``import``, at any depth, typing
-only ones under ``TYPE_CHECKING`` included): no import cycle among the modules of
``detectors/``, ``simulation/``, ``local/`` or ``streams/`` (until issue 13 ``streams/`` had two:
``app`` with ``bursts``, ``combine`` and ``side``, built on the ``Runtime`` that lived in ``app``;
``settings`` with ``config`` and ``topics``); the rooms only import downwards: nothing in
``detectors/`` imports ``streams``, ``simulation`` or ``local`` (the engine stays pure), nothing
in ``simulation/`` imports ``streams`` or ``local`` (traffic and scoring need no Kafka), and in
``streams/`` only the commands that drive the tools (``demo``, ``simulate_cmd``,
``evaluate_cmd``) import ``simulation`` or ``local`` (the worker runs without them)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("package", ["detectors", "simulation", "local"])
def test_no_import_cycle_among_the_modules_of(package: str) -> None:
    graph = imports(package)
    assert len(graph) > 1  # the package was read
    assert cycles(graph) == []


def reaches(package: str, others: tuple[str, ...]) -> set[tuple[str, str]]:
    """(module, import) pairs of ``package`` that import one of the ``others`` packages."""
    return {(mod, dep) for mod, deps in imports(package).items() for dep in deps
            if dep.split(".")[0] in others}


def test_reaches_finds_an_import_of_another_package() -> None:
    assert ("streams.demo", "local.worker") in reaches("streams", ("local",))


def test_nothing_in_detectors_imports_streams_simulation_or_local() -> None:
    assert reaches("detectors", ("streams", "simulation", "local")) == set()


def test_nothing_in_simulation_imports_streams_or_local() -> None:
    assert reaches("simulation", ("streams", "local")) == set()


def test_only_the_tool_commands_in_streams_import_simulation_or_local() -> None:
    tools = {"streams.demo", "streams.simulate_cmd", "streams.evaluate_cmd"}
    assert {mod for mod, _ in reaches("streams", ("simulation", "local"))} <= tools


def test_no_import_cycle_among_the_streams_modules() -> None:
    assert cycles(imports("streams")) == []
