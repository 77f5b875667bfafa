"""Checked graph -> `torch.fx.GraphModule`, built node by node (no tracing).

Each node's module is created directly on the target device (as a hand-written model's
`__init__` would), installed under its id (so state_dict keys read `conv1.conv.weight`,
`layer2.0.conv1.conv.weight`), and called from an fx graph whose values are named after node
ids; `GraphModule` then generates a `forward` that reads like hand-written PyTorch. Each
tensor is drawn once, by the spec's init policy where a rule sets it and else by PyTorch's
default, from generators seeded from one seed, beside the build (compiler.draws);
`device="meta"` allocates and draws nothing at all.
"""

from __future__ import annotations

import contextlib
import keyword
import os
import re
from typing import Any

import torch
import torch.fx
from torch import nn

from . import init as init_policies
from .analysis import analyze
from .blocks import registry
from .budget import check_build
from .draws import CallRecorder, Draws, base_seed
from .errors import SpecError
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


def _node_module(node, in_shapes, device: torch.device, draws: Draws | None = None,
                 policy: init_policies.InitPolicy | None = None, context=None):
    """The node's module on `device`. With `draws`, its random initialisation is scheduled
    there (see compiler.draws: each tensor drawn once, by the policy where a rule sets it,
    else by PyTorch's default) instead of drawn here. A tensor too large for PyTorch to
    describe (more than 2**63 bytes, found by fuzzing) is a located SpecError, not a
    RuntimeError."""
    if context is None:
        context = _device_context(device)
    try:
        if draws is None:
            with context:
                return node.block.build(in_shapes)
        with draws.recording(_records_safely(node.block)) as recorder, context:
            module = node.block.build(in_shapes)
        if isinstance(recorder, CallRecorder) and recorder.disturbed():
            # the constructor wrote into a tensor whose draw was deferred: build it again, exactly
            with draws.recording(exact=True) as recorder, context:
                module = node.block.build(in_shapes)
        if module is not None:
            try:
                draws.schedule(module, recorder, policy, node.init, node.block.family)
            except ValueError as exc:  # an init rule that cannot apply (init.Initializer.check)
                from .errors import Problem

                raise SpecError(Problem(node.loc, f"node {node.id!r}: {exc}", node.path + ".init")) from None
        return module
    except (RuntimeError, OverflowError, TypeError) as exc:
        if isinstance(exc, TypeError) and "Overflow" not in str(exc):  # sizes past 2**63: "Overflow when unpacking"
            raise
        from .errors import Problem

        raise SpecError(Problem(node.loc, f"node {node.id!r} ({node.op}) cannot be built: "
                                          f"{str(exc).splitlines()[0]}", node.path)) from None


def _device_context(device: torch.device):
    """What to build a node's layers under: the device context intercepts every factory call
    (a third of CPU build time), so only when `device` is not the default one already."""
    return contextlib.nullcontext() if device == torch.get_default_device() else torch.device(device)


def _records_safely(block) -> bool:
    """Whether the block's constructor may have its torch.nn.init draws recorded: built-in
    blocks build torch.nn layers, whose draws are their last word on a tensor; a plugin's
    constructor may do anything with its tensors, so it runs as written."""
    return registry.is_built_in(type(block))


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


def build_graph_module(graph: Graph, device: torch.device | str = "meta",
                       draws: Draws | None = None) -> torch.fx.GraphModule:
    """The module with the generated forward, its tensors on `device` (default meta: no memory).
    Without `draws` every tensor holds PyTorch's default initialisation, drawn as each layer
    is built; with it, the spec's init policy is scheduled there and the tensors are filled
    once `draws` is closed."""
    device = torch.device(device)
    spec = graph.spec
    fx_graph = torch.fx.Graph()
    root = nn.Module()
    values: dict[str, torch.fx.Node] = {}
    context = _device_context(device)
    for name, argument in zip(spec.inputs, _argument_names(list(spec.inputs))):
        values[name] = fx_graph.placeholder(argument)
    modules = {}
    for node_id in graph.order:
        module = _node_module(spec.node(node_id), graph.in_shapes(node_id), device, draws, spec.init, context)
        if module is not None:
            _install(root, node_id, module)
        modules[node_id] = module
    if draws is not None:
        draws.start()  # draw while the forward code is generated
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


def build(spec_or_path: Spec | str | os.PathLike, device: str | torch.device | None = None,
          dtype: torch.dtype | None = None, seed: int | None = None,
          vars: dict[str, Any] | None = None, max_memory: Any = None) -> torch.fx.GraphModule:
    """Compile a spec (or a path / YAML text) to a `torch.fx.GraphModule`.

    `device="meta"` allocates nothing; otherwise weights are created on `device` (default
    CPU) and initialised by the spec's `init:` policies, seeded by `seed` or `init.seed`.
    Before that, a spec whose weights need more than the memory budget (`max_memory`, see
    compiler.budget) is refused with a located BudgetError.
    """
    spec = spec_or_path if isinstance(spec_or_path, Spec) else load(spec_or_path, vars=vars)
    analysis = analyze(spec)
    graph = analysis.graph
    device = torch.device(device) if device is not None else torch.device("cpu")
    check_build(analysis, device, max_memory, dtype)
    if device.type == "meta":
        gm = build_graph_module(graph, device)
    else:
        with _seeded(spec.init.seed if seed is None else seed, device) as chosen:
            draws = Draws(device, base_seed(chosen))
            try:
                gm = build_graph_module(graph, device, draws)
            except BaseException:
                draws.close(cancel=True)
                raise
            draws.close()
    if dtype is not None:
        gm.to(dtype)
    return gm


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device):
    """Run under `seed` without disturbing the caller's random state (yields the seed; with
    None, uses and advances the global random state, as a hand-written model does)."""
    if seed is None:
        yield None
        return
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield seed
