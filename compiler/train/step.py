"""The training step, and nothing else on its critical path: the forward pass and loss
(`forward`), then the backward pass and the optimizer and schedule step (`update`). The loop
reads the loss once between the two (one host sync a step: nan/inf stops the run before the
weights are touched); everything else (logging, hooks, checkpoints) is the loop's."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from .model_setup import Training
from .tasks import Task


@dataclass
class StepResult:
    """A batch's loss (averaged over it) and accuracy counts (summed), still on the device."""

    loss: torch.Tensor
    correct1: torch.Tensor
    correct5: torch.Tensor


def autocast(amp: str, device: torch.device):
    """The mixed-precision context of `amp` ("off", "bf16", "fp16")."""
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


class TrainStep:
    def __init__(self, *, training: Training, task: Task, amp: str, device: torch.device, grad_clip: float):
        self.training, self.task = training, task
        self.amp, self.device, self.grad_clip = amp, device, grad_clip

    def forward(self, images: torch.Tensor, target: Any) -> StepResult:
        with autocast(self.amp, self.device):
            outputs = self.task.forward(self.training.forward, images, target, train=True)
        loss = self.task.train_loss(outputs, target, self.training.criterion)
        with torch.no_grad():
            c1, c5 = self.task.correct(outputs, target)
        return StepResult(loss, c1, c5)

    def update(self, loss: torch.Tensor) -> None:
        t = self.training
        t.optimizer.zero_grad(set_to_none=True)
        if t.scaler is not None:
            t.scaler.scale(loss).backward()
            if self.grad_clip:
                t.scaler.unscale_(t.optimizer)
                torch.nn.utils.clip_grad_norm_(t.model.parameters(), self.grad_clip)
            t.scaler.step(t.optimizer)
            t.scaler.update()
            with warnings.catch_warnings():  # the scaler skips the optimizer step of an inf gradient
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
                t.scheduler.step()
            return
        loss.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(t.model.parameters(), self.grad_clip)
        t.optimizer.step()
        t.scheduler.step()
