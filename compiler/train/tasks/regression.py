"""Regression: a spec whose output is one number per sample (`[1]`), trained with the mean-squared
error against float targets (the adding problem of compiler.data). A classifier needs at least two
classes, so an output of one unit can only mean a regression; there is no accuracy to count."""

from __future__ import annotations

import torch

from .base import HEAD_COLUMNS, TAIL_COLUMNS, Task


class RegressionTask(Task):
    """Predictions [B, 1] against targets [B, 1]; the loss (train and val) is the MSE."""

    kind = "regression"
    dataset_task = "regression"
    columns = {**HEAD_COLUMNS, "val_loss": "val loss", **TAIL_COLUMNS}
    has_accuracy = False

    @classmethod
    def matches(cls, spec, analysis) -> bool:
        outputs = analysis.graph.outputs
        return len(outputs) == 1 and tuple(analysis.graph.shapes[outputs[0]]) == (1,)

    @classmethod
    def wrong_dataset(cls, info) -> str:
        return (f"dataset {info.name!r} is a {info.task} dataset, and a spec whose output is [1] (one number) is a "
                "regression: train it on a regression dataset (dataset: adding), or give its output a unit per class")

    def criterion(self, label_smoothing: float = 0.0) -> torch.nn.Module:
        return torch.nn.MSELoss()

    def train_loss(self, outputs, target, criterion: torch.nn.Module) -> torch.Tensor:
        return criterion(outputs.float(), target.float())

    def loss_sum(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Squared errors summed over the batch (and the targets of a sample): divided by the
        number of samples, the per-sample MSE of a one-target regression."""
        return torch.nn.functional.mse_loss(outputs.float(), target.float(), reduction="sum")

    def correct(self, outputs, target) -> tuple[torch.Tensor, torch.Tensor]:
        zero = torch.zeros((), device=outputs.device)
        return zero, zero
