"""`class_maps`: where a trained global-average-pooling classifier sees each sample's class.

A classifier that ends in global average pooling keeps a map per channel up to its last
layer, so its score for a class can be read back onto the image grid:

- `gap` -> `linear` (ResNet, DenseNet): the class activation map of Zhou et al. 2016 (*Learning
  Deep Features for Discriminative Localization*), M_c = sum_k w[c, k] f_k, the last feature
  map f (the gap's input, [C, H, W]) weighted by the linear layer's row of class c (its bias
  left out: it adds the same to every position). gap then linear gives the mean of M_c + b_c,
  the class score, so M_c is that score spread over the positions.
- a conv to one map per class then `gap` as the output (Lin et al. 2014, *Network In Network*,
  §4.7): the class's own channel of the gap's input is the map.

For the first `samples` samples of the validation batch: the map of the predicted class, the
sample's label and the prediction. Dropout and flatten nodes between the gap, the linear layer
and the output are passed over (eval mode: the identity). The feature map comes from an edited
copy of the graph that also returns a clone of the gap's input, run over a scratch copy in
eval mode; the model is left as found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pydantic import PositiveInt
from torch import nn

from .base import Probe, ProbeContext, ProbeValue, When
from .classification import class_count, first_output, is_classification
from .graph_edit import NODE, graph_copy, module_over, value_node
from .scratch import scratch_copy

PASSED_OVER = {"dropout", "flatten", "identity"}
IMAGE_DECIMALS = 3
"""The input image kept with each map is for the eye: three decimals of [0, 1] are plenty."""
"""Ops between the gap and the output that change nothing in eval mode but the layout."""


@dataclass(frozen=True)
class ClassifierHead:
    gap: str
    """The gap node whose input is the last feature map."""
    linear: str | None
    """The linear classifier after it; None when the gap's outputs are the class scores (NiN)."""


def _users(graph: Any) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for node_id in graph.order:
        for ref in graph.inputs[node_id]:
            users.setdefault(ref, []).append(node_id)
    return users


def _plain_linear(block: Any) -> bool:
    """A linear layer whose scores are w x + b (no norm; no activation, or a softmax)."""
    return getattr(block, "norm", None) is None and (block.act is None or block.act.kind == "softmax")


def classifier_head(spec: Any, graph: Any) -> ClassifierHead | None:
    """The spec's gap classifier: a gap whose value reaches the first output through passed-over
    nodes and at most one plain linear layer (the last such gap), else None."""
    if not graph.outputs:
        return None
    users, output = _users(graph), graph.outputs[0]
    for gap in reversed([n for n in graph.order if spec.node(n).op == "gap"]):
        current, linear = gap, None
        while current != output and len(users.get(current, [])) == 1:
            current = users[current][0]
            block = spec.node(current).block
            if block.op == "linear" and linear is None and _plain_linear(block):
                linear = current
            elif block.op not in PASSED_OVER:
                break
        if current == output:
            return ClassifierHead(gap=gap, linear=linear)
    return None


def _linear_weight(model: nn.Module, node_id: str) -> torch.Tensor:
    return next(m for m in model.get_submodule(node_id).modules() if isinstance(m, nn.Linear)).weight


class ClassMaps(Probe):
    """Class activation maps of a GAP classifier for the first samples of the batch."""

    name: ClassVar[str] = "class_maps"
    when: ClassVar[When] = "end"

    samples: PositiveInt = 4
    """How many samples of the batch (the first ones) to map."""

    def applies_to(self, spec: Any, analysis: Any) -> str | None:
        if classifier_head(spec, analysis.graph) is not None:
            return None
        return ("needs a global-average-pooling classifier (gap -> linear as the output, or a conv to one map "
                "per class -> gap as the output): the spec has none")

    def measure(self, context: ProbeContext) -> dict[str, ProbeValue]:
        head = classifier_head(context.spec, context.analysis.graph)
        if head is None:
            raise ValueError(self.applies_to(context.spec, context.analysis))
        model = scratch_copy(context.model, training=False)
        graph = graph_copy(model)
        gap = value_node(graph, head.gap)
        feature = gap.args[0]
        with graph.inserting_before(gap):
            kept = graph.call_function(torch.clone, (feature,))
        output = next(node for node in graph.nodes if node.op == "output")
        output.args = ((output.args[0], kept),)
        with torch.no_grad():
            outputs, features = module_over(model, graph)(context.inputs)
            logits = first_output(outputs)
            predictions = logits.argmax(dim=1)
            count = min(self.samples, features.shape[0])
            if head.linear is None:
                maps = features[torch.arange(count), predictions[:count]]
            else:
                rows = _linear_weight(model, head.linear)[predictions[:count]]
                maps = (rows[:, :, None, None] * features[:count]).sum(dim=1)
        labels = context.target[:count].tolist() if is_classification(logits, context.target) else [None] * count
        images = _display_images(context.inputs[:count])
        return {"samples": [{"map": maps[i].double().tolist(), "label": labels[i], "prediction": int(predictions[i]),
                             **({"image": images[i]} if images is not None else {})} for i in range(count)],
                "classes": list(range(class_count(context.classes, logits))),
                "kind": "channel" if head.linear is None else "cam",
                "feature_map": feature.meta.get(NODE), "gap": head.gap, "linear": head.linear}


def _display_images(inputs: torch.Tensor) -> list[list] | None:
    """Each input image [C, H, W] (1 or 3 channels) as rows of [0, 1] pixels ([H][W][C]),
    stretched from its own min to max (the dataset's normalisation undone for the eye, not
    exactly), so a plot can lay the map over what the net saw; None for other inputs."""
    if inputs.dim() != 4 or inputs.shape[1] not in (1, 3):
        return None
    flat = inputs.detach().double().flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    scaled = (inputs.detach().double() - low[:, None, None, None]) / (high - low).clamp_min(1e-12)[:, None, None, None]
    return [img.permute(1, 2, 0).round(decimals=IMAGE_DECIMALS).tolist() for img in scaled]
