"""`dense_weights`: how strongly each layer of a trained dense block reads each earlier one.

Huang et al. 2017 (*Densely Connected Convolutional Networks*, Fig. 5) plot, per dense block, a
heat map whose pixel (s, l) is the average absolute weight connecting source s to target layer
l: layers spread their weights over many earlier ones, and the transition layer reads the
block's last layers little. Here, for each `dense` node (compiler/blocks/dense.py), layer l's
*first* conv (`D.layer{l}.conv1`, the 1x1 bottleneck; `conv2`, the 3x3, without bottleneck)
reads the concatenation the block builds as `cat{l-1} = [features, new]`, new channels
appended after: source 0 is the block's input (C0 channels), source s >= 1 the growth-rate k
channels of layer s, at C0 + (s-1)k : C0 + sk. The mean |w| over each source's slice (all
output channels, kernel positions) is `mean_abs[l][s]`; the heat map (`blocks`) divides each
target layer's row by its largest entry, so a row's 1 is the source that layer reads most and
rows of layers with larger weights are comparable. A `transition` node reading the block's
output adds a last row over the L + 1 sources (the paper's "transition layer" row).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from compiler.graph import resolve_ref

from .base import Probe, ProbeContext, ProbeValue, When


def dense_blocks(spec: Any) -> list[Any]:
    """The spec's dense block groups (each copy of a repeated one), in the order loaded."""
    return [group for group in spec.groups.values() if group.kind == "composite" and group.op == "dense"]


def _conv_of(model: nn.Module, node_id: str) -> nn.Conv2d:
    """The conv layer inside spec node `node_id`'s module (a conv node is norm, act and conv)."""
    module = model.get_submodule(node_id)
    convs = [m for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    if not convs:
        raise ValueError(f"dense_weights: node {node_id!r} has no conv layer")
    return convs[0]


def source_means(weight: torch.Tensor, first: int, growth: int, sources: int) -> list[float]:
    """Mean |w| over each source's input channels: [0, first) then `growth` channels each."""
    if weight.shape[1] != first + (sources - 1) * growth:
        raise ValueError(f"dense_weights: a conv reads {weight.shape[1]} channels, expected "
                         f"{first} + {sources - 1} x {growth}")
    magnitude = weight.detach().abs().double()
    bounds = [0, first] + [first + s * growth for s in range(1, sources)]
    return [magnitude[:, start:end].mean().item() for start, end in zip(bounds, bounds[1:])]


def _row_normalised(rows: list[list[float]]) -> list[list[float]]:
    return [[value / max(row) if max(row) > 0 else 0.0 for value in row] for row in rows]


class DenseWeights(Probe):
    """Per dense block: mean |w| from each source layer to each target layer."""

    name: ClassVar[str] = "dense_weights"
    when: ClassVar[When] = "end"

    transition: bool = True
    """Add the row of a transition layer that reads the block's output."""

    def applies_to(self, spec: Any, analysis: Any) -> str | None:
        return None if dense_blocks(spec) else "needs a dense block: the spec has none"

    def measure(self, context: ProbeContext) -> dict[str, ProbeValue]:
        graph = context.analysis.graph
        heat_maps, raw, transitions = {}, {}, {}
        for group in dense_blocks(context.spec):
            block = group.block
            first_conv = "conv1" if block.bottleneck else "conv2"
            first = graph.in_shapes(f"{group.id}.layer1.{first_conv}")[0][0]
            rows = [source_means(_conv_of(context.model, f"{group.id}.layer{layer}.{first_conv}").weight,
                                 first, block.growth, sources=layer) for layer in range(1, block.layers + 1)]
            after = self._transition_after(context.spec, graph, group.id) if self.transition else None
            if after is not None:
                rows.append(source_means(_conv_of(context.model, after).weight, first, block.growth,
                                         sources=block.layers + 1))
                transitions[group.id] = after
            raw[group.id] = rows
            heat_maps[group.id] = _row_normalised(rows)
        return {"blocks": heat_maps, "mean_abs": raw, "transitions": transitions}

    @staticmethod
    def _transition_after(spec: Any, graph: Any, block_id: str) -> str | None:
        """The transition node that reads dense block `block_id`'s output, if one does."""
        output = resolve_ref(spec, block_id)
        for node_id in graph.order:
            if spec.node(node_id).op == "transition" and graph.inputs[node_id] == [output]:
                return node_id
        return None
