"""`lesion`: the trained model's error with blocks deleted at test time (Veit et al. 2016).

Veit et al. (*Residual Networks Behave Like Ensembles of Relatively Shallow Networks*, Fig. 3
and 5) delete one residual block of a trained ResNet and find the error barely moves, except
at the downsampling blocks, while deleting one layer of a VGG takes it to chance; deleting k
random blocks raises the error smoothly with k. This probe measures both on the run's
validation batch: the model in eval mode (batch norm with its running statistics, no
dropout), the error being 1 - top-1 (and the run's loss, so a regression run measures
something too). What counts as a block and how one is deleted is lesion_blocks.py's.

Each lesioned model is a GraphModule over the same modules of one scratch copy, running an
edited copy of its graph, so the model the run trains is left exactly as it was.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, PositiveInt

from .base import Probe, ProbeContext, ProbeValue, When
from .classification import first_output, top1_error
from .graph_edit import graph_copy, module_over
from .lesion_blocks import BlockChoice, LesionBlock, LesionError, delete_block, lesion_blocks
from .scratch import scratch_copy


@dataclass
class Score:
    error: float | None
    """1 - top-1 on the batch (None for a batch that is not a classification one)."""
    loss: float


def score(model: torch.nn.Module, context: ProbeContext) -> Score:
    with torch.no_grad():
        logits = first_output(model(context.inputs))
        return Score(error=top1_error(logits, context.target), loss=float(context.loss(logits, context.target)))


def lesioned_graph(model: torch.fx.GraphModule, blocks: list[LesionBlock]) -> torch.fx.Graph:
    """A copy of `model`'s graph with every block of `blocks` deleted (LesionError when one
    cannot be)."""
    graph = graph_copy(model)
    for block in blocks:
        delete_block(graph, block)
    return graph


def lesioned(model: torch.fx.GraphModule, blocks: list[LesionBlock]) -> torch.fx.GraphModule:
    """`model` with every block of `blocks` deleted, over its own modules."""
    return module_over(model, lesioned_graph(model, blocks))


def _mean(values: list[float | None]) -> float | None:
    numbers = [v for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else None


class Lesion(Probe):
    """Error of the trained model with one block, or k random blocks, deleted."""

    name: ClassVar[str] = "lesion"
    when: ClassVar[When] = "end"

    mode: Literal["each", "random", "both"] = "each"
    """each: delete every block on its own, one at a time; random: delete k random blocks at
    once, for each k of `k`; both: the two."""
    blocks: BlockChoice = "auto"
    """residual: the residual blocks; layers: the conv layers whose output has their input's
    shape (a plain net's); auto: residual blocks when the spec has any, else layers."""
    k: list[PositiveInt] = Field(default_factory=lambda: [1, 2, 3], min_length=1)
    """random mode: how many blocks to delete at once (each k in turn)."""
    repeats: PositiveInt = 10
    """random mode: draws per k (every combination once when there are no more than this)."""

    def applies_to(self, spec: Any, analysis: Any) -> str | None:
        candidates = lesion_blocks(spec, analysis.graph, self.blocks)
        if any(block.reason is None for block in candidates):
            return None
        what = {"residual": "a residual block",
                "layers": "a conv layer whose output has its input's shape",
                "auto": "a residual block or a conv layer whose output has its input's shape"}[self.blocks]
        if candidates:
            return f"needs {what} to delete: the spec's conv layers all change the shape"
        return f"needs {what} to delete: the spec has none"

    def measure(self, context: ProbeContext) -> dict[str, ProbeValue]:
        model = scratch_copy(context.model, training=False)
        candidates = lesion_blocks(context.spec, context.analysis.graph, self.blocks)
        intact = score(model, context)
        skipped, usable = [], []
        for block in candidates:
            try:
                lesioned_graph(model, [block])
            except LesionError as exc:
                skipped.append({"block": block.name, "reason": str(exc)})
            else:
                usable.append(block)
        result: dict[str, ProbeValue] = {
            "block_kind": candidates[0].kind if candidates else None,
            "intact_error": intact.error, "intact_loss": intact.loss, "skipped": skipped}
        if self.mode in ("each", "both"):
            result["deleted"] = [self._each(model, block, context) for block in usable]
        if self.mode in ("random", "both"):
            result["random"] = self._random(model, usable, context)
        return result

    def _each(self, model, block: LesionBlock, context: ProbeContext) -> dict[str, ProbeValue]:
        after = score(lesioned(model, [block]), context)
        return {"block": block.name, "kind": block.kind, "stride": block.stride, "error": after.error,
                "loss": after.loss}

    def _random(self, model, usable: list[LesionBlock], context: ProbeContext) -> dict[str, ProbeValue]:
        draw = random.Random(context.seed)
        ks, mean_error, mean_loss, errors, notes = [], [], [], [], []
        for k in self.k:
            if k > len(usable):
                notes.append(f"k={k}: the spec has only {len(usable)} blocks to delete")
                continue
            if math.comb(len(usable), k) <= self.repeats:
                subsets = [list(c) for c in itertools.combinations(usable, k)]
            else:
                subsets = [draw.sample(usable, k) for _ in range(self.repeats)]
            scores = [score(lesioned(model, subset), context) for subset in subsets]
            ks.append(k)
            errors.append([s.error for s in scores])
            mean_error.append(_mean([s.error for s in scores]))
            mean_loss.append(_mean([s.loss for s in scores]))
        return {"k": ks, "mean_error": mean_error, "mean_loss": mean_loss, "errors": errors, "notes": notes}
