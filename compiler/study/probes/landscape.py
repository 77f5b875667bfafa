"""`landscape`: the loss landscape and gradient predictiveness along the gradient direction.

Santurkar et al. 2018 ("How does batch normalization help optimization?", App. A.2.2): at a
probed training step, on that step's batch, take the gradient g of the loss at the current
weights w and, for each step size c * lr (c in `factors`, across [0.5, 4] by default), go to
w' = w - c * lr * g and measure there

- the loss L(w'): the spread of these losses (max - min, `loss_range`) is the "loss landscape"
  band: how much the loss changes along the direction the optimizer follows;
- the gradient g' and its l2 distance ||g - g'|| ("gradient predictiveness": how well the
  gradient here predicts the gradient a step away);
- the effective beta-smoothness max over c of ||g - g'|| / ||w - w'||: the largest change of the
  gradient per unit of distance moved (for a quadratic, its curvature along g).

Norms are over all trainable parameters together. The probe works on a scratch copy of the
model (compiler.study.probes.scratch), so the model, its grads and the optimizer's state are as
they were; the run's random stream too.

**Train mode, on purpose.** The measurements are of the function the optimizer descends: the
training loss of this batch, with batch norm normalising by the batch's own statistics (the
paper measures in train mode, on the same batch). In eval mode a batch-norm net would be
measured through its running statistics, a different, fixed affine map per layer, and the
smoothing the paper attributes to batch norm (the batch statistics move with w) would not be
seen. Every evaluation draws the same dropout masks (seeded by the trial's seed and the step),
so the losses along the line differ by the weights alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field, PositiveFloat, PositiveInt

from .base import Probe, ProbeContext, ProbeValue, When
from .scratch import device_of, same_draws, scratch_copy

DEFAULT_FACTORS = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
"""Eight step sizes, in multiples of the learning rate, across the paper's [0.5, 4]."""

SUMMARY_KEYS = ("loss_range", "grad_distance_max", "beta")


def global_norm(tensors: list[torch.Tensor]) -> float:
    """The l2 norm of the tensors taken as one vector."""
    if not tensors:
        return 0.0
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.double()) for t in tensors])).item()


class Landscape(Probe):
    """Losses, gradient distances and effective beta-smoothness along the gradient."""

    name: ClassVar[str] = "landscape"
    when: ClassVar[When] = "steps"

    every: PositiveInt = 10
    """Probe every this many global steps (steps every, 2 * every, ...), unless `at` is given."""
    at: list[PositiveInt] | None = None
    """The global steps (1-based) to probe at, instead of `every`."""
    factors: list[PositiveFloat] = Field(default_factory=lambda: list(DEFAULT_FACTORS), min_length=1)
    """Step sizes along the gradient, in multiples of the run's learning rate."""

    def steps(self, total_steps: int) -> list[int]:
        if self.at is not None:
            return sorted({step for step in self.at if step <= total_steps})
        return list(range(self.every, total_steps + 1, self.every))

    def measure(self, context: ProbeContext) -> dict[str, ProbeValue]:
        model = scratch_copy(context.model, training=True)
        parameters = [p for p in model.parameters() if p.requires_grad]
        origin = [p.detach().clone() for p in parameters]
        seed = context.seed * 1_000_003 + context.step
        device = device_of(model)

        def loss_and_gradient() -> tuple[float, list[torch.Tensor]]:
            with torch.enable_grad(), same_draws(seed, device):
                loss = context.loss(model(context.inputs), context.target)
            grads = [None] * len(parameters)
            if loss.requires_grad:
                grads = torch.autograd.grad(loss, parameters, allow_unused=True)
            return loss.item(), [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(parameters, grads)]

        here, gradient = loss_and_gradient()
        gradient_norm = global_norm(gradient)
        losses, distances, betas = [], [], []
        for factor in self.factors:
            size = factor * context.lr
            with torch.no_grad():
                for parameter, start, grad in zip(parameters, origin, gradient):
                    parameter.copy_(start - size * grad)
            loss, there = loss_and_gradient()
            distance = global_norm([a - b for a, b in zip(gradient, there)])
            moved = size * gradient_norm
            losses.append(loss)
            distances.append(distance)
            betas.append(distance / moved if moved > 0 else 0.0)
        return {
            "step": context.step,
            "lr": context.lr,
            "factors": list(self.factors),
            "loss": here,
            "losses": losses,
            "grad_distances": distances,
            "loss_range": max(losses) - min(losses),
            "grad_distance_max": max(distances),
            "beta": max(betas),
        }

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, ProbeValue]:
        """The probed steps' results as the report plots them: one value per probed step of
        `loss_range`, `grad_distance_max` and `beta` (in step order), with `steps` and every
        step's full result under `per_step`."""
        ordered = sorted(results, key=lambda result: result["step"])
        summary: dict[str, ProbeValue] = {"steps": [result["step"] for result in ordered]}
        for key in SUMMARY_KEYS:
            summary[key] = [result[key] for result in ordered]
        summary["per_step"] = ordered
        return summary
