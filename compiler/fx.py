"""Checked graph -> `torch.fx.GraphModule`, built node by node (no tracing).

A build runs four stages (`StageTimes` names them, benchmarks/vs_reference.py times them):
load and analyze (compiler.spec, compiler.analysis), construct and emit (here). Construct
creates each node's module as a hand-written model's `__init__` would: under
`torch.device(device)` and, given a seed, under `torch.manual_seed(seed)` (the caller's random
state forked and restored), each layer drawing PyTorch's default; then the spec's init policy
sets the tensors it names in one pass (compiler.init.initialize). So a seed's weights are what
the hand-written constructors give under that seed, then the policy's draws. Emit installs the
modules under their node ids (state_dict keys read `conv1.conv.weight`,
`layer2.0.conv1.conv.weight`) and calls them from an fx graph whose values are named after node
ids; `GraphModule` then generates a `forward` that reads like hand-written PyTorch.
`device="meta"` allocates and draws nothing at all.
"""

from __future__ import annotations

import contextlib
import keyword
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
from torch import nn

from . import init as init_policies
from .analysis import analyze
from .budget import check_build
from .errors import Problem, SpecError
from .graph import Graph
from .inplace import SHAPE, make_inplace
from .slices import read_parts_directly
from .spec import Spec, load


def _python_name(node_id: str) -> str:
    return re.sub(r"\W", "_", node_id)


# names a forward() argument must not take: Python keywords, `self` and the fixed globals of
# fx's generated code (an input named `in` would be a SyntaxError, one named `torch` would
# shadow torch); fx names its other globals around the node names itself
_RESERVED = set(keyword.kwlist) | {"self", "torch", "math", "operator", "builtins", "inf", "nan", "NoneType",
                                   "device", "dtype", "fx_pytree", "pytree"}


def _argument_names(inputs: list[str], reserved: set[str] = _RESERVED) -> list[str]:
    """forward()'s argument names: the input names, with `_` added to a reserved one."""
    names: list[str] = []
    for name in inputs:
        candidate = _python_name(name)
        while candidate in reserved or candidate in names or (candidate in inputs and candidate != name):
            candidate += "_"
        names.append(candidate)
    return names


def _node_module(node, in_shapes, context):
    """The node's module, built under `context` (the device). A tensor too large for PyTorch to
    describe (more than 2**63 bytes, found by fuzzing) is a located SpecError, not a
    RuntimeError."""
    try:
        with context:
            return node.block.build(in_shapes)
    except (RuntimeError, OverflowError, TypeError) as exc:
        if isinstance(exc, TypeError) and "Overflow" not in str(exc):  # sizes past 2**63: "Overflow when unpacking"
            raise
        raise SpecError(Problem(node.loc, f"node {node.id!r} ({node.op}) cannot be built: "
                                          f"{str(exc).splitlines()[0]}", node.path)) from None


def _device_context(device: torch.device):
    """What to build a node's layers under: the device context intercepts every factory call
    (a third of CPU build time), so only when `device` is not the default one already."""
    return contextlib.nullcontext() if device == torch.get_default_device() else torch.device(device)


def construct_modules(graph: Graph, device: torch.device | str = "meta",
                      initialise: bool = True) -> dict[str, nn.Module | None]:
    """Each node's module on `device`, by node id in graph order, holding its layers' default
    initialisation; then, with `initialise`, the spec's init policy applied over them in one
    pass (as a hand-written `__init__` ends). Draws from the global generator: `build` seeds it."""
    device = torch.device(device)
    spec = graph.spec
    context = _device_context(device)
    modules = {node_id: _node_module(spec.node(node_id), graph.in_shapes(node_id), context)
               for node_id in graph.order}
    if initialise:
        for node_id, module in modules.items():
            if module is not None:
                _initialize_node(spec.node(node_id), module, spec.init)
    return modules


def _initialize_node(node, module: nn.Module, policy: init_policies.InitPolicy) -> None:
    try:
        init_policies.initialize(module, policy, node.init, node.block.family)
    except ValueError as exc:  # an init rule that cannot apply (init.Initializer.check)
        raise SpecError(Problem(node.loc, f"node {node.id!r}: {exc}", node.path + ".init")) from None


def _class_name(spec_name: str) -> str:
    parts = re.split(r"[^A-Za-z0-9]+", spec_name)
    name = "".join(p[:1].upper() + p[1:] for p in parts if p)
    return name if name and not name[0].isdigit() else f"Net{name}"


class _Emitter:
    """The view of the fx graph one block gets while it emits its node."""

    def __init__(self, graph: torch.fx.Graph, node_id: str, module: nn.Module | None, loc: str):
        self.graph, self.node_id, self.module, self.loc = graph, node_id, module, loc
        self.base = _python_name(node_id)

    def _name(self, name: str | None) -> str:
        return self.base if name is None else f"{self.base}_{name}"

    def _tag(self, node: torch.fx.Node) -> torch.fx.Node:
        node.meta["blockgraph_node"] = self.node_id
        node.meta["blockgraph_loc"] = self.loc
        return node

    def call_module(self, args: list, child: str | None = None, name: str | None = None) -> torch.fx.Node:
        target = self.node_id if child is None else f"{self.node_id}.{child}"
        return self._tag(self.graph.create_node("call_module", target, tuple(args), {}, name=self._name(name)))

    def call_function(self, fn: Any, args: tuple, kwargs: dict | None = None,
                      name: str | None = None) -> torch.fx.Node:
        return self._tag(self.graph.create_node("call_function", fn, tuple(args), kwargs or {},
                                                name=self._name(name)))


def _install(root: nn.Module, dotted: str, module: nn.Module) -> None:
    *parents, leaf = dotted.split(".")
    current = root
    for part in parents:
        child = current._modules.get(part)
        if child is None:
            child = nn.Module()
            current.add_module(part, child)
        current = child
    current.add_module(leaf, module)


def emit_graph_module(graph: Graph, modules: dict[str, nn.Module | None]) -> torch.fx.GraphModule:
    """The GraphModule holding `modules` (from `construct_modules`) under their node ids, with
    the generated forward."""
    spec = graph.spec
    fx_graph = torch.fx.Graph()
    root = nn.Module()
    values: dict[str, torch.fx.Node] = {}
    for name, argument in zip(spec.inputs, _argument_names(list(spec.inputs))):
        values[name] = fx_graph.placeholder(argument)
    for node_id, module in modules.items():
        if module is not None:
            _install(root, node_id, module)
    for node_id in graph.order:
        node = spec.node(node_id)
        emitter = _Emitter(fx_graph, node_id, modules[node_id], str(node.loc))
        values[node_id] = node.block.emit(emitter, [values[r] for r in graph.inputs[node_id]])
        if isinstance(values[node_id], torch.fx.Node):
            values[node_id].meta[SHAPE] = graph.shapes[node_id]
    results = [values[o] for o in graph.outputs]
    fx_graph.output(results[0] if len(results) == 1 else tuple(results))
    read_parts_directly(fx_graph)
    make_inplace(fx_graph, root)
    fx_graph.lint()
    # GraphModule(root, graph) would copy every called child into a rebuilt hierarchy of bare
    # Modules (a tenth of ResNet-50's build time); start it empty and give it `root`'s children,
    # so each node keeps its own module (`model.conv1(x)` works) and the graph then compiles.
    gm = torch.fx.GraphModule(nn.Module(), torch.fx.Graph(), class_name=_class_name(spec.name))
    for name, child in root.named_children():
        gm.add_module(name, child)
    gm.graph = fx_graph
    gm.meta["blockgraph"] = {"name": spec.name, "outputs": list(spec.outputs), "file": spec.file}
    return gm


@dataclass
class StageTimes:
    """Seconds one build spent in each stage (`build(..., times=StageTimes())` fills it), so a
    benchmark shows where the time goes. `construct` includes setting the init policy and a
    `dtype` conversion."""

    load: float = 0.0
    analyze: float = 0.0
    construct: float = 0.0
    emit: float = 0.0

    @property
    def total(self) -> float:
        return self.load + self.analyze + self.construct + self.emit


def build(spec_or_path: Spec | str | os.PathLike, device: str | torch.device | None = None,
          dtype: torch.dtype | None = None, seed: int | None = None,
          vars: dict[str, Any] | None = None, max_memory: Any = None,
          times: StageTimes | None = None) -> torch.fx.GraphModule:
    """Compile a spec (or a path / YAML text) to a `torch.fx.GraphModule`.

    `device="meta"` allocates nothing; otherwise weights are created on `device` (default
    CPU) with their layers' defaults and then the spec's `init:` policies, drawn under `seed`
    or `init.seed` (neither: from the global random state, as a hand-written model draws).
    Before that, a spec whose weights need more than the memory budget (`max_memory`, see
    compiler.budget) is refused with a located BudgetError. `times`, when given, receives the
    seconds of each stage.
    """
    times = times if times is not None else StageTimes()
    started = time.perf_counter()
    spec = spec_or_path if isinstance(spec_or_path, Spec) else load(spec_or_path, vars=vars)
    loaded = time.perf_counter()
    analysis = analyze(spec)
    graph = analysis.graph
    device = torch.device(device) if device is not None else torch.device("cpu")
    check_build(analysis, device, max_memory, dtype)
    analyzed = time.perf_counter()
    with _seeded(spec.init.seed if seed is None else seed, device):
        modules = construct_modules(graph, device, initialise=device.type != "meta")
    constructed = time.perf_counter()
    gm = emit_graph_module(graph, modules)
    emitted = time.perf_counter()
    if dtype is not None:
        gm.to(dtype)
    times.load, times.analyze = loaded - started, analyzed - loaded
    times.construct, times.emit = constructed - analyzed + time.perf_counter() - emitted, emitted - constructed
    return gm


_SEEDED = threading.Lock()
"""Held while a seeded build draws: the global generator is one per process, so two seeded
builds at once (the designer's sessions are threads) would draw from each other's streams."""


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device):
    """Run under `seed` without disturbing the caller's random state (with None, use and
    advance the global random state, as a hand-written model does)."""
    if seed is None or device.type == "meta":
        yield
        return
    with _SEEDED, torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
