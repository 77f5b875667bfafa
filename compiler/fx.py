"""Checked graph -> `torch.fx.GraphModule`, built node by node (no tracing).

Each node's module is created on the meta device, installed under its id (so state_dict
keys read `conv1.conv.weight`, `layer2.0.conv1.conv.weight`), and called from an fx graph
whose values are named after node ids; `GraphModule` then generates a `forward` that reads
like hand-written PyTorch. Weights are materialised on the target device only at the end,
then initialised by the spec's policies, so `device="meta"` allocates nothing at all.
"""

from __future__ import annotations

import keyword
import os
import re
from typing import Any

import torch
import torch.fx
from torch import nn

from . import init as init_policies
from .analysis import analyze
from .budget import check_build
from .errors import SpecError
from .graph import Graph
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


_MODULE_ATTRIBUTES = set(dir(nn.Module))


def _meta_build(node, in_shapes):
    """The node's module on the meta device; a tensor too large for PyTorch to describe (more
    than 2**63 bytes, found by fuzzing) is a located SpecError, not a RuntimeError."""
    try:
        with torch.device("meta"):
            return node.block.build(in_shapes)
    except (RuntimeError, OverflowError, TypeError) as exc:
        if isinstance(exc, TypeError) and "Overflow" not in str(exc):  # sizes past 2**63: "Overflow when unpacking"
            raise
        from .errors import Problem

        raise SpecError(Problem(node.loc, f"node {node.id!r} ({node.op}) cannot be built: "
                                          f"{str(exc).splitlines()[0]}", node.path)) from None


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


def build_graph_module(graph: Graph) -> torch.fx.GraphModule:
    """The module on the meta device (no memory), with the generated forward."""
    spec = graph.spec
    fx_graph = torch.fx.Graph()
    root = nn.Module()
    values: dict[str, torch.fx.Node] = {}
    for name, argument in zip(spec.inputs, _argument_names(list(spec.inputs))):
        values[name] = fx_graph.placeholder(argument)
    installed: dict[str, nn.Module] = {}
    for node_id in graph.order:
        node = spec.node(node_id)
        module = _meta_build(node, graph.in_shapes(node_id))
        if module is not None:
            taken = next((part for part in node_id.split(".") if part in _MODULE_ATTRIBUTES), None)
            if taken is not None:  # found by fuzzing: `id: double` raised KeyError
                from .errors import Problem

                raise SpecError(Problem(node.loc, f"id {taken!r} is the name of a torch.nn.Module attribute "
                                                  f"(Module.{taken}), so the built module cannot hold a node of "
                                                  f"that name; choose another id, e.g. {taken}_", node.path))
            _install(root, node_id, module)
            installed[node_id] = module
        emitter = _Emitter(fx_graph, node_id, module, str(node.loc))
        values[node_id] = node.block.emit(emitter, [values[r] for r in graph.inputs[node_id]])
    results = [values[o] for o in graph.outputs]
    fx_graph.output(results[0] if len(results) == 1 else tuple(results))
    fx_graph.lint()
    gm = torch.fx.GraphModule(root, fx_graph, class_name=_class_name(spec.name))
    # GraphModule copies only the called children and rebuilds their parents as bare
    # Modules; put each node's own module back so `model.conv1(x)` still works.
    for node_id, module in installed.items():
        _install(gm, node_id, module)
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
    gm = build_graph_module(graph)
    if device.type != "meta":
        gm.to_empty(device=device)
        initialize(gm, spec, seed)
    if dtype is not None:
        gm.to(dtype)
    return gm


def initialize(gm: nn.Module, spec: Spec, seed: int | None = None) -> None:
    """Apply PyTorch's defaults, then the spec's policies, deterministically for a seed."""
    seed = spec.init.seed if seed is None else seed
    devices = []
    p = next(iter(gm.parameters()), None)
    if p is not None and p.device.type == "cuda":
        devices = [p.device.index or 0]
    with torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        with torch.no_grad():
            for node in spec.nodes:
                module = gm.get_submodule(node.id) if _has_module(gm, node.id) else None
                if module is None:
                    continue
                init_policies.reset(module)
                try:
                    init_policies.apply(module, spec.init, node.init, node.block.family)
                except ValueError as exc:
                    from .errors import Problem

                    raise SpecError(Problem(node.loc, f"node {node.id!r}: {exc}", node.path + ".init")) from None


def _has_module(gm: nn.Module, dotted: str) -> bool:
    try:
        gm.get_submodule(dotted)
        return True
    except AttributeError:
        return False
