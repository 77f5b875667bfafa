"""What a classifier's batch says, for the probes that read a trained model's answers (lesion,
se_excitations, class_maps): its logits, its top-1 error, and the classes to group by.

One home for "is this a classification batch": targets are class indices [N] (an integer
tensor) and the model's first output is logits [N, classes]. A regression run has neither, and
a probe that groups by class says so instead of grouping by rounded values.
"""

from __future__ import annotations

from typing import Any

import torch


def first_output(outputs: Any) -> torch.Tensor:
    """The model's first output (a spec with several `outputs:` returns a tuple)."""
    while isinstance(outputs, (tuple, list)):
        outputs = outputs[0]
    return outputs


def _class_indices(target: Any) -> bool:
    return (isinstance(target, torch.Tensor) and target.dim() == 1 and not target.is_floating_point()
            and not target.is_complex())


def is_classification(logits: torch.Tensor, target: Any) -> bool:
    """Targets are class indices, one per row of 2-D logits (a detection run's targets, a
    list of boxes per image, are not)."""
    return logits.dim() == 2 and _class_indices(target) and target.shape[0] == logits.shape[0]


def top1_error(logits: torch.Tensor, target: Any) -> float | None:
    """1 - top-1 accuracy of the batch (None when the batch is not a classification one)."""
    if not is_classification(logits, target):
        return None
    return 1.0 - (logits.argmax(dim=1) == target.to(logits.device)).double().mean().item()


def class_count(classes: int | None, logits: torch.Tensor) -> int:
    """How many classes: the run's own number, else the logits' width."""
    if classes:
        return int(classes)
    return int(logits.shape[1]) if logits.dim() == 2 else 0


def class_targets(target: Any, probe: str) -> torch.Tensor:
    """The targets as class indices, or a ValueError naming the probe that needs them."""
    if not _class_indices(target):
        what = f"{target.dtype} {list(target.shape)}" if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"{probe} groups samples by class: the targets must be class indices [N], not {what}")
    return target
