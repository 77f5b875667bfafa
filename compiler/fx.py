"""Checked graph -> `torch.fx.GraphModule`, built node by node (no tracing).

Each node's module is created directly on the target device (as a hand-written model's
`__init__` would, so building costs what constructing the reference costs), installed under
its id (so state_dict keys read `conv1.conv.weight`, `layer2.0.conv1.conv.weight`), and called
from an fx graph whose values are named after node ids; `GraphModule` then generates a
`forward` that reads like hand-written PyTorch. The spec's init policies are applied once the
modules exist, all under one seed; `device="meta"` allocates nothing at all.
"""

from __future__ import annotations

import contextlib
import keyword
import math
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


SKIP_DEFAULT_INIT_ABOVE = 100_000
"""Parameters in a node above which it is built on the meta device first, so that the tensors
its init policy sets are never given PyTorch's default values: drawing them costs ~3 ns a value
on a CPU (a 3x3 conv of 512 channels: 6 ms), which passes the ~0.3 ms the detour adds at about
this size (measured on DenseNet-121's and ResNet-50's layers)."""


def _node_module(node, in_shapes, device: torch.device, policy: init_policies.InitPolicy | None = None):
    """The node's module on `device`, every tensor initialised once: by the init policy where
    it sets the tensor (given `policy`), else by PyTorch's default. A tensor too large for
    PyTorch to describe (more than 2**63 bytes, found by fuzzing) is a located SpecError, not a
    RuntimeError."""
    # the device context intercepts every factory call (a third of CPU build time): only when needed
    context = contextlib.nullcontext() if device == torch.get_default_device() else torch.device(device)
    try:
        module = _built_for_policy(node, in_shapes, device, policy) if policy is not None else None
        if module is not None:
            return module
        with context:
            return node.block.build(in_shapes)
    except (RuntimeError, OverflowError, TypeError) as exc:
        if isinstance(exc, TypeError) and "Overflow" not in str(exc):  # sizes past 2**63: "Overflow when unpacking"
            raise
        from .errors import Problem

        raise SpecError(Problem(node.loc, f"node {node.id!r} ({node.op}) cannot be built: "
                                          f"{str(exc).splitlines()[0]}", node.path)) from None


def _built_for_policy(node, in_shapes, device: torch.device, policy: init_policies.InitPolicy):
    """The node's module with the tensors its policy will set left uninitialised (None when not
    worth it, or when the module holds tensors whose defaults cannot be redone here).

    Hand-written models initialise twice (their layers' defaults, then `kaiming_normal_` over
    them); this skips the first where the second overwrites it. Other tensors get their
    defaults from their layer's own `reset_parameters` (a norm's running statistics, a bias no
    rule sets)."""
    if not init_policies.sets_any(policy, node.init):
        return None
    counted = node.block.param_count(in_shapes)
    if counted is None or counted[0] <= SKIP_DEFAULT_INIT_ABOVE:
        return None
    with torch.device("meta"):
        module = node.block.build(in_shapes)
    if module is None:
        return None
    redo = []  # (layer, the tensors of it the policy leaves to PyTorch's default)
    for sub in module.modules():
        own = _own_tensors(sub)
        set_by_policy = init_policies.rules(sub, policy, node.init, node.block.family) if own else {}
        unset = [name for name in own if name not in set_by_policy]
        if not unset:
            continue
        if init_policies.family_of(sub) is None or not hasattr(sub, "reset_parameters"):
            return None
        redo.append((sub, unset))
    _materialise(module, device)
    for sub, unset in redo:
        if unset == ["bias"] and isinstance(sub, (nn.modules.conv._ConvNd, nn.Linear)):
            _default_bias(sub)  # the weight is the policy's: draw only the bias reset_parameters would
        else:
            sub.reset_parameters()
    return module


def _materialise(module: nn.Module, device: torch.device) -> None:
    """Module.to_empty without its per-tensor dispatch (3x faster on small layers); a tensor
    two layers share stays shared."""
    made: dict[int, torch.Tensor] = {}
    for sub in module.modules():
        for store, wrap in ((sub._parameters, True), (sub._buffers, False)):
            for name, t in store.items():
                if t is None:
                    continue
                if id(t) not in made:
                    empty = torch.empty(t.shape, dtype=t.dtype, device=device)
                    made[id(t)] = nn.Parameter(empty, t.requires_grad) if wrap else empty
                store[name] = made[id(t)]


def _own_tensors(module: nn.Module) -> list[str]:
    """Names of the parameters and buffers `module` holds itself (not its children's)."""
    return [name for name, t in [*module._parameters.items(), *module._buffers.items()] if t is not None]


def _default_bias(layer: nn.Module) -> None:
    """PyTorch's default bias of a conv or linear layer (`reset_parameters`): uniform within
    1/sqrt(fan_in)."""
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    nn.init.uniform_(layer.bias, -bound, bound)


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
                       policy: init_policies.InitPolicy | None = None) -> torch.fx.GraphModule:
    """The module with the generated forward, its tensors on `device` (default meta: no memory).
    Without `policy` every tensor holds PyTorch's default initialisation; with it, the tensors
    the policy sets may be left uninitialised, for `apply_policies` to fill."""
    device = torch.device(device)
    spec = graph.spec
    fx_graph = torch.fx.Graph()
    root = nn.Module()
    values: dict[str, torch.fx.Node] = {}
    for name, argument in zip(spec.inputs, _argument_names(list(spec.inputs))):
        values[name] = fx_graph.placeholder(argument)
    for node_id in graph.order:
        node = spec.node(node_id)
        module = _node_module(node, graph.in_shapes(node_id), device, policy)
        if module is not None:
            _install(root, node_id, module)
        emitter = _Emitter(fx_graph, node_id, module, str(node.loc))
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
        with _seeded(spec.init.seed if seed is None else seed, device):
            gm = build_graph_module(graph, device, spec.init)
            apply_policies(gm, spec)
    if dtype is not None:
        gm.to(dtype)
    return gm


def _seeded(seed: int | None, device: torch.device):
    """Run under `seed` without disturbing the caller's random state (no-op for None)."""
    if seed is None:
        return contextlib.nullcontext()
    return _fork_and_seed(seed, [device.index or 0] if device.type == "cuda" else [])


@contextlib.contextmanager
def _fork_and_seed(seed: int, devices: list[int]):
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def apply_policies(gm: nn.Module, spec: Spec) -> None:
    """The spec's init policies over freshly built modules (which already hold PyTorch's
    defaults, so tensors no rule mentions keep them)."""
    with torch.no_grad():
        for node in spec.nodes:
            module = gm.get_submodule(node.id) if _has_module(gm, node.id) else None
            if module is None:
                continue
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
