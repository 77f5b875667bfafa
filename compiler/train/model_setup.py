"""A run's model and what trains it: the built model (its weights restored when resuming), the
DDP / torch.compile wrappers, the optimizer, schedule and gradient scaler, the position in the
run (epoch, step) and random streams, and the data loaders."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from . import checkpoint as ckpt
from .config import TrainConfig, config_problem
from .data_setup import Data
from .distributed import Dist
from .sampling import EpochSampler, Shard, process_seed, seed_everything
from .schedule import lr_lambda, make_optimizer
from .tasks import Task


@dataclass
class Training:
    """The model and its optimisation."""

    model: torch.nn.Module
    """The built GraphModule: its weights are what a checkpoint saves."""
    forward: torch.nn.Module
    """What the training step calls: the model, wrapped in DDP and/or torch.compile."""
    eval_model: torch.nn.Module
    """What validation calls (no DDP: each process evaluates its own shard)."""
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: Any
    """A GradScaler under amp fp16 on a GPU, else None."""
    criterion: torch.nn.Module


@dataclass
class Position:
    """Where the run is: epochs done, steps done in the current epoch and in all, and the sums of
    the current epoch so far when it was saved in the middle (`partial`)."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    partial: dict[str, float] = field(default_factory=dict)


@dataclass
class Loaders:
    train: torch.utils.data.DataLoader
    val: torch.utils.data.DataLoader
    sampler: EpochSampler
    """Sets each epoch's order (and the batches a resumed epoch skips)."""
    generator: torch.Generator
    """Seeds the workers; reset to (seed, epoch) every epoch."""
    steps_per_epoch: int


def steps_per_epoch(data: Data, dist: Dist, batch: int) -> int:
    return math.ceil(len(data.train_set) / dist.world_size) // batch


def build_training(*, spec, cfg: TrainConfig, dist: Dist, device: torch.device, task: Task, steps: int,
                   state: dict[str, Any] | None) -> Training:
    from ..fx import build

    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = build(spec, device=device, seed=cfg.seed)
    if state is not None:
        model.load_state_dict(state["model"])
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, steps))
    scaler = None
    if cfg.amp == "fp16" and device.type in ("cuda", "mps"):
        with contextlib.suppress(Exception):
            scaler = torch.amp.GradScaler(device.type)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
    forward: torch.nn.Module = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        forward = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    eval_model: torch.nn.Module = model
    if cfg.compile:
        forward = torch.compile(forward)
        eval_model = forward if not dist.enabled else torch.compile(model)
    return Training(model, forward, eval_model, optimizer, scheduler, scaler, task.criterion(cfg.label_smoothing))


def restore_position(*, cfg: TrainConfig, dist: Dist, state: dict[str, Any] | None, note) -> Position:
    """Where a resumed run goes on (and its random streams as saved, one set per process), or
    the start of a new run (streams seeded from the seed and the rank)."""
    if state is None:
        seed_everything(process_seed(cfg.seed, dist.rank))
        return Position()
    position = Position(int(state["epoch"]), int(state.get("step_in_epoch", 0)), int(state["global_step"]),
                        dict(state.get("partial") or {}) if dist.main else {})
    rngs = state.get("rng") or []
    if len(rngs) == dist.world_size:
        ckpt.set_rng_state(rngs[dist.rank])
    else:
        if rngs:
            note(f"the run was saved by {len(rngs)} process(es), it goes on with {dist.world_size}: "
                 "random streams restart from the seed")
        seed_everything(process_seed(cfg.seed * 7919 + position.epoch, dist.rank))
    return position


def build_loaders(*, data: Data, cfg: TrainConfig, dist: Dist, device: torch.device, batch: int, task: Task,
                  sources) -> Loaders:
    """Training: every process its part of one global order per epoch, full batches only;
    validation: every process a shard of the split, in order. The splits are rendered (or read)
    now, after every check, not inside the first epoch's clock (`compiler.data.preload`)."""
    from ..data import preload

    for dataset in (data.train_set, data.val_set):
        preload(dataset)
    pin = device.type == "cuda"
    inner = torch.utils.data.DistributedSampler(data.train_set, num_replicas=dist.world_size, rank=dist.rank,
                                                shuffle=True, seed=cfg.seed, drop_last=False)
    sampler = EpochSampler(inner)
    generator = torch.Generator()
    train = torch.utils.data.DataLoader(
        data.train_set, batch_size=batch, sampler=sampler, num_workers=cfg.workers, drop_last=True,
        pin_memory=pin, generator=generator, collate_fn=task.collate)
    val = torch.utils.data.DataLoader(
        data.val_set, batch_size=batch, sampler=Shard(len(data.val_set), dist.rank, dist.world_size),
        num_workers=cfg.workers, pin_memory=pin, generator=torch.Generator().manual_seed(cfg.seed),
        collate_fn=task.collate)
    steps = steps_per_epoch(data, dist, batch)
    if steps < 1:
        raise config_problem(sources, "batch_size", f"batch_size {cfg.batch_size} leaves no full batch")
    return Loaders(train, val, sampler, generator, steps)


def checkpoint_state(*, position: Position, training: Training, spec, document: str, cfg: TrainConfig, run_dir,
                     rngs: list[dict[str, Any]], world_size: int, partial: dict[str, Any] | None) -> dict[str, Any]:
    """What a checkpoint holds besides the weights (`restore_position` and `build_training` read
    it back): the position, optimizer, schedule and scaler states, every process's random
    states, the sums of a partial epoch, the spec (its self-contained `document`) and settings."""
    return {
        "epoch": position.epoch, "step_in_epoch": position.step_in_epoch, "global_step": position.global_step,
        "optimizer": training.optimizer.state_dict(), "scheduler": training.scheduler.state_dict(),
        "scaler": training.scaler.state_dict() if training.scaler is not None else {},
        "rng": rngs, "partial": dict(partial or {}),
        "spec": {"name": spec.name, "file": str(spec.file), "text": spec.text, "document": document,
                 "vars": dict(spec.vars)},
        "config": cfg.model_dump(mode="python") | {"run_dir": str(run_dir)},
        "world_size": world_size,
    }
