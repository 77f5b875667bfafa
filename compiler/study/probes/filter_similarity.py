"""`filter_similarity`: how alike a layer's filters are (the symmetry a constant init leaves).

For each conv and linear layer (compiler.study.probes.layers) with at least two output units,
the cosine similarity between every pair of its filters — a filter is the weights of one output
unit, flattened: a row of a linear layer's [out, in] matrix, one output channel's [in/groups, k,
k] kernel of a conv (for a transposed conv, whose weight is [in, out/groups, k, k], the slice of
the output channel's weights) — and the layer's mean over all pairs i < j and its maximum.
Biases are left out: the weights decide what a unit responds to.

Units that start with equal weights get equal gradients and stay equal (the symmetry Glorot &
Bengio 2010 and every init since break with random draws): a layer of identical filters has
similarity 1, independent random filters near 0, orthogonal ones 0. A zero filter has no
direction, so its cosine with another is 0/0; we define it as 1 when the other filter is zero
too (identical filters, as all-zero init makes every pair) and 0 otherwise. So zero init reads
1.0, the symmetry it causes.

`at: init` (default) measures the model as built, `at: end` the trained one: whether training
broke the symmetry. The probe's `when` follows `at` (a property of the instance, not a ClassVar).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from .base import Probe, ProbeContext, ProbeValue, When
from .layers import kinds_of, missing_layers, output_units, weighted_layers

MEASURED = ("conv", "linear")


def filters_of(module: nn.Module) -> torch.Tensor:
    """[out units, weights per unit] of a conv or linear layer."""
    weight = module.weight.detach()
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        groups = module.groups
        per_group = weight.reshape(groups, weight.shape[0] // groups, *weight.shape[1:])
        return per_group.transpose(1, 2).reshape(module.out_channels, -1)
    return weight.reshape(weight.shape[0], -1)


@dataclass(frozen=True)
class Similarity:
    mean: float
    """Over every pair of distinct filters."""
    max: float


BLOCK_ENTRIES = 1 << 24
"""How many cosines are held at once (64 MiB of float32): a 32k-word output layer's 10^9 pairs
are summed block by block of rows instead of as one matrix."""


def pairwise_similarity(filters: torch.Tensor) -> Similarity:
    """Mean and max cosine similarity over the pairs i < j of `filters`' rows (two or more),
    with 0/0 (a zero row) defined as 1 between two zero rows and 0 otherwise. Cosines are
    float32 (summed in float64), so identical filters read 1 to about 1e-7."""
    rows = filters.float()
    norms = rows.norm(dim=1)
    zero = norms == 0
    unit = rows / torch.where(zero, torch.ones_like(norms), norms).unsqueeze(1)
    count = rows.shape[0]
    columns = torch.arange(count, device=rows.device)
    total, largest = 0.0, -1.0
    step = max(1, BLOCK_ENTRIES // count)
    for start in range(0, count - 1, step):
        stop = min(start + step, count)
        cosine = unit[start:stop] @ unit.T
        both_zero = zero[start:stop].unsqueeze(1) & zero.unsqueeze(0)
        cosine = torch.where(both_zero, torch.ones_like(cosine), cosine).clamp(-1.0, 1.0)
        later = columns.unsqueeze(0) > columns[start:stop].unsqueeze(1)  # the pairs i < j
        values = cosine[later]
        total += values.double().sum().item()
        largest = max(largest, values.max().item())
    return Similarity(mean=total / (count * (count - 1) / 2), max=largest)


class FilterSimilarity(Probe):
    """Per conv/linear layer, the mean and max cosine similarity between its filters."""

    name: ClassVar[str] = "filter_similarity"

    at: Literal["init", "end"] = "init"
    """When to measure: the model as built (init) or the trained model (end)."""
    layers: Literal["all", "conv", "linear"] = "all"
    """Which layers to measure: conv, linear, or both."""

    @property
    def when(self) -> When:
        return self.at

    def applies_to(self, spec: Any, analysis: Any) -> str | None:
        return missing_layers(spec, kinds_of(self.layers, MEASURED), minimum=2)

    def measure(self, context: ProbeContext) -> dict[str, ProbeValue]:
        names, means, maxima = [], [], []
        with torch.no_grad():
            for layer in weighted_layers(context.model, kinds_of(self.layers, MEASURED)):
                if output_units(layer.module) < 2:
                    continue
                similarity = pairwise_similarity(filters_of(layer.module))
                names.append(layer.name)
                means.append(similarity.mean)
                maxima.append(similarity.max)
        return {"layers": names, "mean_similarity": means, "max_similarity": maxima}
