"""`se_excitations`: the trained model's squeeze-and-excitation gates, averaged per class.

Hu et al. (*Squeeze-and-Excitation Networks*, Fig. 6) plot, for SE blocks at several depths,
the mean excitation of each channel over the images of each class: early blocks excite
channels alike for every class (shared low-level features), late ones by class. Here the
excitation of an `se` node S (standalone or a residual's `se:` option, `b.se`) is the output of
its gate module `S.gate`, the sigmoid of the second 1x1 conv, [N, C, 1, 1] — what multiplies
the block's input. Captured by a forward hook on a scratch copy in eval mode over the run's
validation batch, it is averaged over the samples of each class (`blocks`: classes x
channels; a class with no sample in the batch is a row of nulls, which JSON keeps and the
report reads as missing) and over the classes (`mean`: the mean of the class rows, so every
class weighs the same).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch

from .base import Probe, ProbeContext, ProbeValue, When
from .classification import class_count, class_targets, first_output
from .scratch import scratch_copy


def se_nodes(spec: Any, analysis: Any) -> list[str]:
    """The spec's `se` nodes, in graph order."""
    return [node_id for node_id in analysis.graph.order if spec.node(node_id).op == "se"]


def per_class_means(values: torch.Tensor, target: torch.Tensor, classes: int) -> list[list[float | None]]:
    """values [N, C] averaged over the samples of each class (a row of None for an absent class)."""
    rows = []
    for label in range(classes):
        chosen = values[target == label]
        rows.append(chosen.mean(dim=0).tolist() if len(chosen) else [None] * values.shape[1])
    return rows


def mean_of_rows(rows: list[list[float | None]]) -> list[float | None]:
    """The mean of the rows, column by column, leaving out absent classes' rows."""
    kept = [row for row in rows if None not in row]
    if not kept:
        return [None] * len(rows[0])
    return [sum(column) / len(kept) for column in zip(*kept)]


class SEExcitations(Probe):
    """Mean SE excitation per class and channel at the first and last SE block."""

    name: ClassVar[str] = "se_excitations"
    when: ClassVar[When] = "end"

    blocks: Literal["first_last", "all"] = "first_last"
    """Which SE blocks: the first and the last (Hu et al. compare depths), or every one."""

    def applies_to(self, spec: Any, analysis: Any) -> str | None:
        if se_nodes(spec, analysis):
            return None
        return "needs an SE block (an `se` node or a residual's `se:`): the spec has none"

    def measure(self, context: ProbeContext) -> dict[str, ProbeValue]:
        target = class_targets(context.target, self.name)
        names = se_nodes(context.spec, context.analysis)
        if self.blocks == "first_last":
            names = list(dict.fromkeys([names[0], names[-1]]))
        model = scratch_copy(context.model, training=False)
        gates: dict[str, torch.Tensor] = {}

        def keeper(name: str):
            def keep(module, args, output):
                gates.setdefault(name, output.detach().flatten(1).double())
            return keep

        handles = [model.get_submodule(f"{name}.gate").register_forward_hook(keeper(name)) for name in names]
        try:
            with torch.no_grad():
                logits = first_output(model(context.inputs))
        finally:
            for handle in handles:
                handle.remove()
        classes = class_count(context.classes, logits) or int(target.max()) + 1
        target = target.to(logits.device)
        per_class = {name: per_class_means(gates[name], target, classes) for name in names}
        return {"blocks": per_class, "mean": {name: mean_of_rows(rows) for name, rows in per_class.items()},
                "classes": list(range(classes)),
                "counts": [int((target == label).sum()) for label in range(classes)]}
