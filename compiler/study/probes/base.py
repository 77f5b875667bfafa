"""What every probe is: a small measurement of a model, named in a study file's `probes:` list.

A probe says when it runs (`when`): on the model as built, before any step (`init`); on the
model during training, at the global steps its options name (`steps`); or on the trained model
(`end`). It says which specs it applies to (`applies_to` returns why not, so a study file that
asks for a dense-block probe on a plain net gets a located error before anything trains), and
it measures (`measure`) from a `ProbeContext`. Results are plain numbers and lists of numbers
(JSON), so they go into Optuna's storage and the study's results file as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict

When = Literal["init", "steps", "end"]
ProbeValue = float | int | list[Any] | dict[str, Any]
"""A probe's result values: numbers, lists (per layer, per step) and maps of them; JSON only."""


@dataclass
class ProbeContext:
    """What a probe measures: a model, one fixed batch and the loss the run trains with."""

    model: torch.nn.Module
    """The compiled spec (a torch.fx.GraphModule). A probe must leave it as it found it
    (weights, grads, train/eval mode): measure a copy (`copy.deepcopy`) when it changes it."""
    inputs: torch.Tensor
    """One batch of the run's inputs [N, ...] (a `steps` probe gets the step's own batch)."""
    target: torch.Tensor
    """The batch's targets (class indices for classification, values for regression)."""
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    """loss(outputs, target) -> the mean loss of the run's task (cross-entropy, MSE...)."""
    spec: Any
    """The loaded compiler.Spec the model was built from (nodes, groups, vars)."""
    analysis: Any
    """compiler.analyze(spec): the checked graph with every node's shape."""
    lr: float
    """The run's learning rate at this point (the landscape probe's step sizes scale with it)."""
    seed: int
    """The trial's seed (a probe that draws, such as lesioning k random blocks, seeds from it)."""
    step: int = 0
    """The global step (0 for `init` and the last step for `end`)."""
    classes: int | None = None
    """Number of classes of a classification task (None otherwise)."""


class Probe(BaseModel):
    """A probe's options are its pydantic fields (written in the study file next to `probe:`);
    subclasses set `name`, `when` and implement `measure` (and `applies_to` when they need a
    particular block)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: ClassVar[str]
    when: ClassVar[When]

    def applies_to(self, spec: Any, analysis: Any) -> str | None:
        """None when the probe can measure this spec, else why not ("needs a dense block: the
        spec has none"). Checked before training."""
        return None

    def steps(self, total_steps: int) -> list[int]:
        """The global steps (1-based) a `steps` probe runs at, in a run of `total_steps`."""
        return []

    def measure(self, context: ProbeContext) -> dict[str, ProbeValue]:
        raise NotImplementedError

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, ProbeValue]:
        """A `steps` probe's results over its probed steps as the one result a trial records
        (each result holds its `step`): by default the steps and each step's result."""
        ordered = sorted(results, key=lambda result: result.get("step", 0))
        return {"steps": [result.get("step") for result in ordered], "per_step": ordered}
