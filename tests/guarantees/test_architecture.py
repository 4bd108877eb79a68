"""The package's layers hold: no import circle among its modules, type-only imports included, and
no module grows past the size one reader can hold."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "unlearn_pl"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over every ``import`` in the package, wherever it stands
    (top level, inside functions, under ``TYPE_CHECKING``). ``from pkg import name`` counts as an
    import of ``pkg.name`` when that is a module, else of ``pkg``."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            graph[name].update(t for t in targets if t in files and t != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_the_package():
    graph = import_graph()
    assert "unlearn_pl.module" in graph["unlearn_pl.cli.main"]
    assert "unlearn_pl.protocols" in graph["unlearn_pl.localizers.base"]


def test_the_package_has_no_import_circle():
    assert circles(import_graph()) == []


def test_plug_ins_do_not_import_the_module():
    graph = import_graph()
    plug_ins = [
        m for m in graph if m.startswith(("unlearn_pl.localizers", "unlearn_pl.unlearners", "unlearn_pl.metrics"))
    ]
    assert plug_ins
    assert [m for m in plug_ins if "unlearn_pl.module" in graph[m]] == []


def test_no_module_exceeds_300_lines_and_the_module_stays_small():
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {m: n for m, n in sizes.items() if n > 300} == {}
    assert sizes["unlearn_pl.module"] <= 220


def test_a_moved_module_keeps_its_old_import_for_one_release():
    import importlib
    import sys
    import warnings

    import pytest

    sys.modules.pop("unlearn_pl.shadow", None)
    with pytest.warns(DeprecationWarning, match="unlearn_pl.ulira"):
        shadow = importlib.import_module("unlearn_pl.shadow")
    from unlearn_pl.ulira.design import ShadowSpec
    from unlearn_pl.ulira.shadow import build_bank

    assert shadow.ShadowSpec is ShadowSpec and shadow.build_bank is build_bank
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.import_module("unlearn_pl.ulira")  # the new home imports without the warning
