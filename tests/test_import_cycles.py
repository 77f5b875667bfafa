"""No import cycle anywhere in compiler/: every module's imports, those inside functions too
(a lazy import only hides a cycle until the function runs), form a directed graph without
cycles. A package's own __init__ is not counted as imported by its submodules (Python runs it
first, but that is not a dependency of the submodule's code)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "compiler"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of compiler/ that module `name` (at `path`) imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # `from pkg import sub`: the submodule; the package itself for any other name
            subs = {f"{target}.{alias.name}" for alias in node.names} & known
            found.update(subs)
            if len(subs) < len(node.names):
                found.add(target)
    return {m for m in found if m in known and m != name}


def import_graph() -> nx.DiGraph:
    found = modules()
    known = set(found)
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    for name, path in found.items():
        graph.add_edges_from((name, target) for target in imported(name, path, known))
    return graph


def test_the_import_graph_sees_relative_lazy_and_submodule_imports():
    """The walker against imports whose targets are known by reading the files."""
    graph = import_graph()
    assert graph.has_edge("compiler.train.tasks", "compiler.train.tasks.yolo")  # from .yolo import YoloTask
    assert graph.has_edge("compiler.train.tasks.yolo", "compiler.detection.yolo")  # from ...detection.yolo
    assert graph.has_edge("compiler.train.loop", "compiler.train.checkpoint")  # from . import checkpoint
    assert graph.has_edge("compiler.train.predictions", "compiler.data")  # inside a function


def test_compiler_has_no_import_cycle():
    graph = import_graph()
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    raise AssertionError("import cycle: " + " -> ".join([a for a, _ in cycle] + [cycle[0][0]]))


def test_each_task_module_imports_only_the_base_of_the_tasks():
    """compiler/train/tasks/: one module per task, none depending on another task or on the loop."""
    graph = import_graph()
    tasks = [m for m in graph if m.startswith("compiler.train.tasks.") and m != "compiler.train.tasks.base"]
    assert {"compiler.train.tasks.classification", "compiler.train.tasks.yolo"} <= set(tasks)
    for name in tasks:
        own = {t for t in graph.successors(name) if t.startswith("compiler.train")}
        assert own == {"compiler.train.tasks.base"}, (name, own)
    assert not {t for t in graph.successors("compiler.train.tasks.base") if t.startswith("compiler.train")}
