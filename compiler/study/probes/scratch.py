"""What a probe that runs the model works on: a scratch copy, and the same random draws each time.

A probe must leave the model as it found it (weights, grads, buffers, train/eval mode). Running
a net in train mode moves its batch-norm running statistics and stepping along the gradient
moves its weights, so such probes run a `scratch_copy` instead: a deep copy, in the mode asked
for, without the original's grads. Dropout draws masks from the global generator; `same_draws`
forks it (CPU and the model's CUDA device) and seeds it, so two forward passes under the same
seed draw the same masks — a loss difference along a line is then the weights' doing, not the
masks' — and the training run's own random stream is left exactly where it was.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import torch
from torch import nn


def scratch_copy(model: nn.Module, training: bool) -> nn.Module:
    """A deep copy of `model` in train (`training`) or eval mode, its parameters' grads cleared."""
    clone = copy.deepcopy(model)
    clone.train(training)
    for parameter in clone.parameters():
        parameter.grad = None
    return clone


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with neither)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def same_draws(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block on a forked global generator seeded with `seed` (restored after)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
