"""The optimizer (weight decay on weights, none on biases and norms) and the learning-rate
schedule (cosine, step, constant or one-cycle, with warm-up), from a run's settings."""

from __future__ import annotations

import math
from typing import Callable

import torch

from .config import TrainConfig


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The lr factor after `step` optimizer steps (LambdaLR calls it once per step)."""
    epochs, lr = cfg.epochs, float(cfg.lr)
    warm = float(cfg.warmup_epochs)
    floor = min(cfg.min_lr / lr, 1.0)

    def factor(step: int) -> float:
        e = step / steps_per_epoch
        if cfg.schedule == "onecycle":
            rise = warm if warm > 0 else 0.3 * epochs
            if e < rise:
                return 1 / 25 + (1 - 1 / 25) * e / rise
            t = min((e - rise) / max(epochs - rise, 1e-9), 1.0)
            end = 1 / 25 / 1e4
            return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))
        if warm > 0 and e < warm:
            return (step + 1) / (warm * steps_per_epoch)
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "step":
            return cfg.gamma ** int(e // cfg.step_size)
        t = min((e - warm) / max(epochs - warm, 1e-9), 1.0)  # cosine
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    return factor


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [g for g in ({"params": decay, "weight_decay": cfg.weight_decay},
                          {"params": other, "weight_decay": 0.0}) if g["params"]]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
