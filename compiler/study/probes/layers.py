"""The layers a probe measures: the conv, linear and recurrent modules a compiled spec's fx
graph calls, in graph order, each named by its fx target (`stage1.0.conv`, `fc.linear`), which
follows the spec's node ids, so a probe's per-layer lists line up with the spec a reader has.

One home for "which modules count as weighted layers" (signal_std, filter_similarity and any
later per-layer probe), and for answering `applies_to` from the same rule: the spec is built on
the meta device (no memory, no draws; ~0.05 s for a ResNet-50), so the answer before training is
the one the probe meets on the real model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Literal

import torch
from torch import nn

from compiler.init import family_of

LayerKind = Literal["conv", "linear", "recurrent"]
LayerChoice = Literal["all", "conv", "linear", "recurrent"]
"""A probe's `layers:` option: one kind of layer, or every weighted one."""


@dataclass(frozen=True)
class WeightedLayer:
    name: str
    """The fx target the graph calls: the spec's node id and the module inside it."""
    module: nn.Module
    kind: LayerKind


def layer_kind(module: nn.Module) -> LayerKind | None:
    """conv (any nn.Conv*/ConvTranspose*), linear (nn.Linear), recurrent (nn.LSTM/GRU/RNN, or a
    block module that wraps them or the layer-normalised LSTM's cells), else None."""
    family = family_of(module)
    if family in ("conv", "linear"):
        return family
    if isinstance(module, nn.RNNBase):
        return "recurrent"
    if any(isinstance(sub, nn.RNNBase) or type(sub).__name__ == "LayerNormLSTMCell" for sub in module.modules()):
        return "recurrent"
    return None


def kinds_of(choice: LayerChoice, allowed: Collection[LayerKind]) -> set[LayerKind]:
    """The kinds a `layers:` option selects among those a probe can measure."""
    return set(allowed) if choice == "all" else {choice} & set(allowed)


def weighted_layers(model: torch.fx.GraphModule, kinds: Collection[LayerKind]) -> list[WeightedLayer]:
    """Each module of `kinds` the graph calls, in graph order, once (a module called twice is
    listed at its first call)."""
    found: dict[str, WeightedLayer] = {}
    for node in model.graph.nodes:
        if node.op != "call_module" or node.target in found:
            continue
        module = model.get_submodule(node.target)
        kind = layer_kind(module)
        if kind in kinds:
            found[node.target] = WeightedLayer(name=node.target, module=module, kind=kind)
    return list(found.values())


def missing_layers(spec: Any, kinds: Collection[LayerKind], minimum: int = 1) -> str | None:
    """None when the spec's model calls a layer of `kinds`, else why a probe cannot measure it
    (`applies_to`'s answer). `minimum` is how many output units such a layer needs."""
    from compiler.fx import build

    model = build(spec, device="meta")
    layers = [layer for layer in weighted_layers(model, kinds) if output_units(layer.module) >= minimum]
    if layers:
        return None
    wanted = " or ".join(sorted(kinds))
    if minimum > 1:
        return f"needs a {wanted} layer with at least {minimum} output units: the spec has none"
    return f"needs a {wanted} layer: the spec has none"


def output_units(module: nn.Module) -> int:
    """How many filters (output channels, output features) a conv or linear layer has."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return module.out_channels
    if isinstance(module, nn.Linear):
        return module.out_features
    return 0
