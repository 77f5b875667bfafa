"""Load + analyze of a text, and what the page draws from it, cached: the update that runs
after every edit (`refresh`) must cost milliseconds when nothing changed.

Every cache here (functools.lru_cache) holds a pure function of its arguments, shared by all
browser sessions; nothing per-user lives at module level. Var overrides enter the caches as
`freeze_vars(...)` keys (types included: True and 1 differ).
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import compiler
from compiler import Problem, SpecError
from compiler.analysis import Analysis, Unit, collapse
from compiler.errors import Loc
from compiler.formatting import human_bytes
from ui.designer.files import SPECS, zoo
from ui.problems import UNTITLED, source_name

DTYPES = ("float32", "float16", "bfloat16", "float64")

_warm = threading.Lock()
_warmed: list[str] | None = None


def warm_up() -> list[str]:
    """Once per process: import the plugins the `blockgraph` command would (installed
    packages' `blockgraph.blocks` entry points and $BLOCKGRAPH_PLUGINS: the app runs in its
    own process, so `--plugin` names reach it only through that variable); import torch and
    the fx compiler (the first meta-device parameter count or code build would otherwise stall
    an edit by about two seconds); then move every object alive so far into the garbage
    collector's permanent generation (gc.freeze), so that full collections no longer walk
    torch's and Streamlit's import-time objects: without it an edit every few seconds takes
    ~0.6 s instead of ~40 ms on a 400-node spec. Returns the plugin problems (messages), the
    same at every call."""
    global _warmed
    with _warm:
        if _warmed is not None:
            return _warmed
        import gc

        from compiler.plugins import PluginError, load_entry_points, load_from_environment

        problems = []
        for load in (load_entry_points, load_from_environment):
            try:
                load()
            except PluginError as exc:
                problems.append(str(exc))
        importlib.import_module("compiler.fx")  # imports torch

        gc.collect()
        gc.freeze()
        _warmed = problems
        return problems


def load_text(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED) -> compiler.Spec:
    """`compiler.load` of YAML text as if it were the file `file` (`untitled.yaml` for a buffer
    without one): problems are reported against that name and `extends:` resolves next to it
    (plain `compiler.load(text)` would say `<string>` and resolve it in the working directory)."""
    return compiler.load(text, vars=vars, file=source_name(file))


def freeze_vars(vars: dict[str, Any] | None) -> tuple:
    """A hashable cache key for var overrides (types included: True and 1 differ)."""
    return tuple(sorted((k, type(v).__name__, v) for k, v in (vars or {}).items()))


def thaw_vars(key: tuple) -> dict[str, Any] | None:
    """The var overrides of a `freeze_vars` key again (None for none)."""
    return {k: v for k, _, v in key} or None


@dataclass(eq=False)
class Result:
    """One load + analyze of a text: the spec and its analysis, or the problems."""

    text: str
    vars: dict[str, Any] | None
    file: str
    spec: compiler.Spec | None = None
    analysis: Analysis | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.analysis is not None

    @property
    def max_depth(self) -> int:
        """The depth at which nothing is collapsed any more."""
        if self.analysis is None:
            return 0
        return max((len(n.group) for n in self.analysis.nodes), default=0)


@functools.lru_cache(maxsize=16)
def _analyse(text: str, vars_key: tuple, file: str, batch: int, dtype: str) -> Result:
    start = time.perf_counter()
    result = Result(text, thaw_vars(vars_key), file)
    try:
        spec = load_text(text, thaw_vars(vars_key), file)
        result.spec = spec
        result.analysis = compiler.analyze(spec, batch=batch, dtype=dtype)
        result.warnings = list(result.analysis.warnings)
    except SpecError as exc:
        result.errors = list(exc.errors)
    except Exception as exc:  # an internal error must not take the app down
        result.errors = [Problem(Loc(file, 1, 1), f"internal error: {type(exc).__name__}: {exc}")]
    result.seconds = time.perf_counter() - start
    return result


def analyse(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED, batch: int = 1,
            dtype: str = "float32") -> Result:
    """Load and analyse `text` (cached by text, vars, file, batch and dtype)."""
    return _analyse(text, freeze_vars(vars), file, int(batch), dtype)


@functools.lru_cache(maxsize=64)
def _dot(result: Result, depth: int | None, rankdir: str) -> str:
    from compiler.render import to_graphviz

    return to_graphviz(result.analysis, depth=depth, rankdir=rankdir, legend=True).source


def dot_source(result: Result, depth: int | None = 0, rankdir: str = "TB") -> str:
    """Graphviz DOT text of an analysed result (cached): what st.graphviz_chart draws."""
    if not result.ok:
        raise ValueError("no graph: the spec has errors")
    return _dot(result, depth, rankdir)


@functools.lru_cache(maxsize=16)
def svg_of(dot: str) -> bytes:
    """The drawing as SVG, laid out by graphviz's `dot` program."""
    import graphviz

    return graphviz.Source(dot).pipe(format="svg")


def shape_text(shape) -> str:
    return "×".join(str(d) for d in shape)


def summary_rows(units: list[Unit]) -> list[dict[str, Any]]:
    """Rows of the summary table: one per unit of `collapse(analysis, depth)` (a repeat's op
    says how many copies: `residual ×5`, its nodes column how many nodes)."""
    return [{"id": u.id, "op": f"{u.op} ×{u.repeats}" if u.kind == "repeat" else u.op, "nodes": len(u.members),
             "shape": shape_text(u.shape), "params": u.params, "MACs": u.macs, "RF": u.rf, "jump": u.jump,
             "memory": human_bytes(u.activation_bytes)}
            for u in units]


@dataclass(eq=False)
class View:
    """What the page shows for one text, var overrides and settings."""

    result: Result
    dot: str | None
    rows: list[dict[str, Any]]
    depth: int
    seconds: float


@functools.lru_cache(maxsize=16)
def _refresh(text: str, vars_key: tuple, file: str, depth: int, batch: int, dtype: str, rankdir: str) -> View:
    start = time.perf_counter()
    result = _analyse(text, vars_key, file, batch, dtype)
    dot, rows = None, []
    if result.ok:
        depth = min(depth, result.max_depth)
        dot = _dot(result, depth, rankdir)
        rows = summary_rows(collapse(result.analysis, depth))
    return View(result, dot, rows, depth, time.perf_counter() - start)


def refresh(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED, depth: int = 0,
            batch: int = 1, dtype: str = "float32", rankdir: str = "TB") -> View:
    """The designer's update after an edit: validation (load + analyze), the graph's DOT
    source at `depth` and the summary rows; cached by all of its arguments."""
    return _refresh(text, freeze_vars(vars), file, int(depth), int(batch), dtype, rankdir)


@functools.lru_cache(maxsize=32)
def _zoo_result(path: str, mtime: float) -> Result:
    text = Path(path).read_text()
    return _analyse(text, (), path, 1, "float32")


def zoo_result(name: str) -> Result:
    """A zoo spec (file name under specs/) loaded and analysed, cached by modification time."""
    path = SPECS / name
    return _zoo_result(str(path), path.stat().st_mtime)


@functools.lru_cache(maxsize=32)
def _diff(a: Result, b: Result, depth: int | None):
    from compiler.diff import diff

    return diff(a.analysis, b.analysis, depth)


def diff_of(a: Result, b: Result, depth: int | None = None):
    """`compiler.diff.diff` of two analysed results (cached): what changes from a to b."""
    if not (a.ok and b.ok):
        raise ValueError("both specs must be valid to compare them")
    return _diff(a, b, depth)


def diff_default(file: str, text: str) -> str:
    """The zoo spec to compare with first: the one this text extends, else one extending this
    file, else the closest name (never the file itself)."""
    import difflib

    names = zoo()
    current = Path(file).name
    others = [n for n in names if n != current]
    if not others:
        return current
    try:
        data = parse_document(text).data
    except SpecError:
        data = None
    parent = data.get("extends") if isinstance(data, dict) else None
    if isinstance(parent, str) and Path(parent).name in others:
        return Path(parent).name
    for name in others:
        head = (SPECS / name).read_text()[:4000]
        if re.search(rf"^extends:\s*['\"]?{re.escape(current)}['\"]?\s*$", head, re.M):
            return name
    return (difflib.get_close_matches(current, others, n=1, cutoff=0) or others)[0]


@functools.lru_cache(maxsize=16)
def parse_document(text: str):
    """`compiler.source.parse` of the text (cached): its data and the line of every value."""
    from compiler.source import parse

    return parse(text)
