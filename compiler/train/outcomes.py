"""What a training run ends with: a `TrainResult`, or one of the errors the loop raises
(`TrainError` and `TrainingDiverged`, `TrainingInterrupted` after Ctrl-C or a stop request)."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import signal
from pathlib import Path
from typing import Any

from .config import TrainConfig


class TrainError(Exception):
    """Training could not start or go on (not a mistake in the spec or its settings: those are
    `SpecError`s). The message says what happened and what to do."""


class TrainingDiverged(TrainError):
    """The loss became nan or inf; the last good checkpoint was kept."""

    def __init__(self, message: str, epoch: int, step: int, run_dir: Path):
        super().__init__(message)
        self.epoch, self.step, self.run_dir = epoch, step, run_dir


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM): a checkpoint was written at the last finished step (when `saved`)."""

    def __init__(self, message: str, run_dir: Path, saved: bool):
        super().__init__(message)
        self.message, self.run_dir, self.saved = message, run_dir, saved

    def __str__(self) -> str:
        return self.message


@dataclass
class TrainResult:
    """What a finished run left: its directory, per-epoch metrics and settings."""

    run_dir: Path
    config: TrainConfig
    history: list[dict[str, Any]] = field(default_factory=list)
    """metrics.jsonl's rows: epoch, step, lr, train_loss/top1/top5, val_loss/top1/top5,
    images_per_s, seconds (accuracies as fractions)."""
    epochs: int = 0
    """Epochs completed (including those of the runs this one resumed)."""

    @property
    def final(self) -> dict[str, Any] | None:
        return self.history[-1] if self.history else None

    @property
    def metric(self) -> str:
        """The row key that says how good an epoch is (see `measure_of`)."""
        return measure_of(self.history)

    @property
    def best(self) -> dict[str, Any] | None:
        return best_of(self.history)


MEASURES = ("val_mask_map50", "val_map50", "val_miou", "val_top1")
"""The keys of a metrics row that say how good an epoch is, most specific first."""


def measure_of(history: list[dict[str, Any]]) -> str:
    """The row key a run's epochs are compared by: mask mAP@0.5 for instance masks, box mAP@0.5
    for detection, mIoU for segmentation, val top-1 for classification, else (a regression) the
    val loss, where lower is better. The one rule of the trainer, the designer and sweeps."""
    for key in MEASURES:
        if any(r.get(key) is not None for r in history):
            return key
    return "val_loss" if history else "val_top1"


def best_of(history: list[dict[str, Any]], key: str | None = None) -> dict[str, Any] | None:
    """The best row of `history` by `key` (default `measure_of(history)`): the highest, or the
    lowest for the loss."""
    key = key or measure_of(history)
    rows = [r for r in history if r.get(key) is not None]
    if not rows:
        return None
    return min(rows, key=lambda r: r[key]) if key == "val_loss" else max(rows, key=lambda r: r[key])


def diverged(*, epoch: int, step: int, value: float, cfg: TrainConfig, saved_epoch: int,
             run_dir: Path) -> TrainingDiverged:
    """The error of a loss that became `value` (nan, inf; any other: it did in another process)."""
    what = ("nan" if math.isnan(value) else "inf" if value == math.inf else "-inf" if value == -math.inf
            else "nan or inf (in another process)")
    hint = f"lower the learning rate (lr={cfg.lr:g})"
    hint += " or enable grad_clip" if not cfg.grad_clip else f" or lower grad_clip ({cfg.grad_clip:g})"
    if cfg.amp == "fp16":
        hint += ", or use amp: bf16"
    message = (f"loss became {what} at epoch {epoch}, step {step}: {hint}; the last good checkpoint "
               f"(epoch {saved_epoch}) is kept in {run_dir}")
    return TrainingDiverged(message, epoch, step, run_dir)


def interrupted(*, signum: int | None, epoch: int, step: int, run_dir: Path, saved: bool,
                saved_epoch: int | None = None) -> TrainingInterrupted:
    """The stop of a run by signal `signum` (None: on request) at `step` of `epoch` (0: its end),
    after saving a checkpoint there (`saved`), or not (a second Ctrl-C: the last one is kept)."""
    resume = f"continue with: blockgraph train --resume {run_dir}"
    if not saved:
        return TrainingInterrupted(f"interrupted: the last checkpoint (epoch {saved_epoch}) is kept in {run_dir}; "
                                   f"{resume}", run_dir, saved=False)
    name = ("stopped on request" if signum is None else "interrupted" if signum == signal.SIGINT
            else f"stopped by {signal.Signals(signum).name}")
    where = f"epoch {epoch}, step {step}" if step else f"the end of epoch {epoch}"
    return TrainingInterrupted(f"{name} at {where}: checkpoint saved in {run_dir}; {resume}", run_dir, saved)
