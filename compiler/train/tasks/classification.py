"""Image classification: a spec whose output is `[classes]`; cross-entropy over the classes,
top-1 and (from 5 classes) top-5 accuracy. The task of every spec no other task claims."""

from __future__ import annotations

import torch

from .base import HEAD_COLUMNS, TAIL_COLUMNS, Task


class ClassificationTask(Task):
    """Logits [B, classes] against labels [B]."""

    kind = "classification"
    dataset_task = "classification"
    columns = {**HEAD_COLUMNS, "train_top1": "train top-1", "train_top5": "train top-5", "val_loss": "val loss",
               "val_top1": "val top-1", "val_top5": "val top-5", **TAIL_COLUMNS}

    @classmethod
    def matches(cls, spec, analysis) -> bool:
        return True  # last of TASKS: shape problems are check_compatible's to report

    @classmethod
    def wrong_dataset(cls, info) -> str:
        return f"dataset {info.name!r} is a {info.task} dataset; a spec whose output is [classes] classifies images"

    @property
    def top5(self) -> bool:
        return self.num_classes >= 5

    def correct(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        top = logits.topk(5 if self.top5 else 1, dim=1).indices
        hit = top == target[:, None]
        c1 = hit[:, 0].sum()
        c5 = hit.any(dim=1).sum() if self.top5 else torch.zeros((), dtype=c1.dtype, device=c1.device)
        return c1, c5

    def loss_sum(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits.float(), target, reduction="sum")
