"""The training loop: `train(spec, ...)` builds the model from a spec, trains it on a dataset of
compiler.data, evaluates it every epoch, and keeps metrics, plots and checkpoints in a run
directory. One process, or several under torchrun with DistributedDataParallel.

A run is set up by the functions of `setup`, `data_setup` and `model_setup` (spec and settings
-> task -> dataset -> model -> loaders), then trained here epoch by epoch; each step is
`step.TrainStep` (forward and loss, one read of the loss, backward and optimizer step).
Programs that watch or steer a run (the designer, tests that kill a run at a known step) pass
hooks: `train(..., on_start=, on_step=, on_epoch=, should_stop=)`.

Exactness of `--resume`: the data order of an epoch is a pure function of (seed, epoch)
(DistributedSampler with the run's seed, set_epoch), data-loader workers are seeded from a
generator reset to (seed, epoch) every epoch, and a checkpoint holds every random state
(torch, CUDA, numpy, python; one set per process), so a run resumed from the checkpoint of
epoch k trains epoch k+1 exactly as the uninterrupted run did.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import SpecError
from . import checkpoint as ckpt
from .config import TrainConfig, config_problem, resolve_config
from .data_setup import bind_dataset_vars, build_data
from .device import pick_device
from .distributed import Dist, detect, init
from .metrics import MetricsLog
from .model_setup import build_loaders, build_training, checkpoint_state, restore_position, steps_per_epoch
from .outcomes import TrainError, TrainingDiverged, TrainingInterrupted, TrainResult, diverged, interrupted
from .report import epoch_line, epoch_row, progress_bar, setup_lines, summary_line
from .sampling import epoch_seed
from .setup import Request, changed_settings, check_memory, config_sources, document_text, load_resumed_state, \
    load_spec, make_run_dir
from .step import TrainStep, autocast
from .stopping import StopRequest
from .tasks import Task, task_class

__all__ = ["TrainError", "TrainResult", "TrainingDiverged", "TrainingInterrupted", "train"]

SUMS = ("loss", "correct1", "correct5", "count")
"""What an epoch adds up (the loss and accuracy counts are per-sample sums)."""


@dataclass
class Hooks:
    """Callbacks of a program that drives the run, called in rank 0 only (see `train`)."""

    on_start: Callable[[dict[str, Any]], None] | None = None
    on_step: Callable[[dict[str, Any]], None] | None = None
    on_epoch: Callable[[dict[str, Any]], None] | None = None
    should_stop: Callable[[], bool] | None = None


class _Run:
    def __init__(self, request: Request, hooks: Hooks, quiet: bool):
        self.request, self.hooks, self.quiet = request, hooks, quiet
        self.dist: Dist = detect()
        self.state: dict[str, Any] | None = None
        self.cfg: TrainConfig | None = None
        self.bar = None

    # -- output ------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        if self.dist.main and not self.quiet:
            if self.bar is not None and not self.bar.disable:
                self.bar.write(text, file=sys.stdout)
            else:
                print(text, flush=True)

    def note(self, text: str) -> None:
        """A notice for the user (on standard error, also when quiet)."""
        if self.dist.main:
            print(f"note: {text}", file=sys.stderr, flush=True)

    def _agree(self, step: Callable[[], None]) -> None:
        """Run `step`, which may fail on one process only; every process raises if any failed."""
        error: BaseException | None = None
        try:
            step()
        except (SpecError, TrainError) as exc:
            error = exc
        if self.dist.any(error is not None, self.device):
            raise error if error is not None else TrainError("another process could not start (see rank 0)")

    # -- setup: config -> task -> dataset -> model -------------------------------------------
    def setup(self) -> None:
        from ..analysis import analyze

        request, d = self.request, self.dist
        if request.resume is not None:
            self.state = load_resumed_state(request.resume, self.note)
        spec = self.spec = load_spec(request, self.state)
        sources = self.sources = config_sources(request, spec, self.state)
        cfg = self.cfg = resolve_config(sources)
        changed = changed_settings(self.state, cfg) if self.state is not None else []
        if changed:
            self.note("resuming with changed settings: " + ", ".join(changed))
        try:
            device = self.device = pick_device(cfg.device, d.local_rank, d.enabled)
        except ValueError as exc:
            raise config_problem(sources, "device", str(exc)) from None
        if cfg.amp == "fp16" and device.type == "cpu":
            raise config_problem(sources, "amp", "amp fp16 needs a GPU (CUDA or MPS); on the CPU use amp: bf16")
        if cfg.batch_size % d.world_size:
            raise config_problem(sources, "batch_size",
                                 f"batch_size {cfg.batch_size} is the global batch: it must divide by the "
                                 f"{d.world_size} processes (each takes batch_size / {d.world_size})")
        self.batch = cfg.batch_size // d.world_size
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        self.analysis = analyze(spec, batch=self.batch)
        task_type = task_class(spec, self.analysis)
        problem = task_type.signature_problem(spec)
        if problem is not None:
            raise SpecError(problem)
        init(d, device)
        self.stamp = d.broadcast(datetime.now().strftime("%Y%m%d-%H%M%S"))  # one run name for all processes
        self._agree(lambda: check_memory(spec=spec, analysis=self.analysis, cfg=cfg, device=device,
                                         batch=self.batch, local_world_size=d.local_world_size))
        self._agree(lambda: self._data(task_type))
        self._model()

    def _data(self, task_type: type[Task]) -> None:
        from ..data import check_compatible

        progress = self.dist.main and not self.quiet and sys.stderr.isatty()
        self.data = build_data(cfg=self.cfg, spec=self.spec, task=task_type, sources=self.sources, progress=progress)
        info = self.data.info
        bound = bind_dataset_vars(spec=self.spec, analysis=self.analysis, info=info, batch=self.batch)
        if bound.values:
            self.say("from the dataset: " + ", ".join(f"{k} = {v}" for k, v in bound.values.items()))
        self.spec, self.analysis = bound.spec, bound.analysis
        self.task = task_type(info.num_classes, self.spec, self.analysis)
        check_compatible(self.spec, info)
        self.task.check(self.spec, self.analysis, info)
        self.run_dir = make_run_dir(cfg=self.cfg, spec_name=self.spec.name, stamp=self.stamp,
                                    resume=self.request.resume, main=self.dist.main)

    def _model(self) -> None:
        cfg, d = self.cfg, self.dist
        steps = steps_per_epoch(self.data, d, self.batch)
        self.training = build_training(spec=self.spec, cfg=cfg, dist=d, device=self.device, task=self.task,
                                       steps=steps, state=self.state)
        self.position = restore_position(cfg=cfg, dist=d, state=self.state, note=self.note)
        self.loaders = build_loaders(data=self.data, cfg=cfg, dist=d, device=self.device, batch=self.batch,
                                     task=self.task, sources=self.sources)
        self.step = TrainStep(training=self.training, task=self.task, amp=cfg.amp, device=self.device,
                              grad_clip=cfg.grad_clip)

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, partial: dict[str, Any] | None = None) -> None:
        """All processes call it (random states are gathered); rank 0 writes."""
        d = self.dist
        d.barrier()
        state = checkpoint_state(position=self.position, training=self.training, spec=self.spec,
                                 document=self.document, cfg=self.cfg, run_dir=self.run_dir,
                                 rngs=d.gather(ckpt.rng_state()), world_size=d.world_size, partial=partial)
        if d.main:
            ckpt.save(self.run_dir, self.training.model, state)
        d.barrier()
        self.saved_epoch = self.position.epoch

    # -- the loop ----------------------------------------------------------------------------
    def _to(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.cfg.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _sums(self, local: dict[str, float]) -> list[float]:
        return self.dist.sum([local[k] for k in SUMS], self.device)

    def train_epoch(self, epoch: int, stop: StopRequest) -> dict[str, float]:
        """One epoch of training (from the step a resumed run saved); returns its sums over all
        processes. A stop request in the middle saves the partial epoch and raises."""
        cfg, d, device, pos, loaders = self.cfg, self.dist, self.device, self.position, self.loaders
        skip = pos.step_in_epoch
        loaders.sampler.set_epoch(epoch, skip * self.batch)
        loaders.generator.manual_seed(epoch_seed(cfg.seed, epoch))
        p = pos.partial or {}
        sums = {k: float(p.get(k, 0.0)) for k in SUMS}
        local = dict.fromkeys(SUMS, 0.0)
        seconds_before = float(p.get("seconds", 0.0))
        pos.partial = {}
        self.training.forward.train()
        bar = self.bar = progress_bar(total=loaders.steps_per_epoch, initial=skip, desc=f"epoch {epoch}/{cfg.epochs}",
                                      shown=d.main and not self.quiet)
        start = time.perf_counter()
        step = skip
        try:
            for images, target in loaders.train:
                images, target = self._to(images), self.task.to_device(target, device)
                result = self.step.forward(images, target)
                # the step's one host sync: nan/inf stops the run before the weights change
                loss_v, c1_v, c5_v = torch.stack([result.loss.detach().float(), result.correct1.float(),
                                                  result.correct5.float()]).tolist()
                step += 1
                bad, stopping = d.flags([not math.isfinite(loss_v), stop.poll()], device)
                if bad:
                    raise diverged(epoch=epoch, step=step, value=loss_v, cfg=cfg, saved_epoch=self.saved_epoch,
                                   run_dir=self.run_dir)
                self.step.update(result.loss)
                pos.global_step += 1
                pos.step_in_epoch = step
                n = images.shape[0]
                for key, value in zip(SUMS, (loss_v * n, c1_v, c5_v, n)):
                    local[key] += value
                self._after_step(epoch, step, loss_v, local, batch=(images, target))
                if stopping:
                    if step < loaders.steps_per_epoch:
                        partial = {k: sums[k] + v for k, v in zip(SUMS, self._sums(local))}
                        partial["seconds"] = seconds_before + time.perf_counter() - start
                        self.save(partial)
                        raise interrupted(signum=stop.signum, epoch=epoch, step=step, run_dir=self.run_dir, saved=True)
                    stop.requested = True  # the epoch is done anyway: stop at its end
        finally:
            bar.close()
            self.bar = None
        seconds = time.perf_counter() - start
        totals = self._sums(local)
        for k, v in zip(SUMS, totals):
            sums[k] += v
        sums.update(seconds=seconds_before + seconds, new_images=totals[3], train_seconds=seconds)
        return sums

    def _after_step(self, epoch: int, step: int, loss: float, local: dict[str, float], batch: tuple) -> None:
        """The progress bar and the `on_step` hook (rank 0)."""
        count = max(local["count"], 1)
        self.bar.update(1)
        if not self.bar.disable:
            self.bar.set_postfix(loss=f"{local['loss'] / count:.4f}", top1=f"{100 * local['correct1'] / count:.1f}%",
                                 refresh=False)
        if self.hooks.on_step is not None and self.dist.main:
            self.hooks.on_step({"epoch": epoch, "step": step, "steps": self.loaders.steps_per_epoch,
                                "global_step": self.position.global_step, "loss": loss,
                                "lr": self.training.optimizer.param_groups[0]["lr"],
                                "train_loss": local["loss"] / count, "train_top1": local["correct1"] / count,
                                "model": self.training.model, "inputs": batch[0], "target": batch[1]})

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        d, device, task, model = self.dist, self.device, self.task, self.training.eval_model
        d.sync_buffers(self.training.model)
        model.eval()
        parts: list[torch.Tensor] = []  # per batch: loss sum, top-1 and top-5 hits (read once, at the end)
        count = 0
        task.evaluate_start(device)
        for images, target in self.loaders.val:
            images, target = self._to(images), task.to_device(target, device)
            with autocast(self.cfg.amp, device):
                outputs = task.forward(model, images, target, train=False)
            c1, c5 = task.correct(outputs, target)
            task.evaluate_update(outputs, target)
            parts.append(torch.stack([task.loss_sum(outputs, target).float(), c1.float(), c5.float()]))
            count += images.shape[0]
        self.training.forward.train()
        totals = torch.stack(parts).cpu().double().sum(dim=0).tolist() if parts else [0.0, 0.0, 0.0]
        loss_sum, c1_sum, c5_sum, count = d.sum([*totals, count], device)
        extra = task.evaluate_finish()  # e.g. mIoU (torchmetrics syncs its state across processes)
        return {"loss": loss_sum, "correct1": c1_sum, "correct5": c5_sum, "count": count, **extra}

    def _open_run_dir(self) -> None:
        """A new run: spec.yaml, config.json and the epoch-0 checkpoint; a resumed one: its
        metrics up to the checkpoint (and no temporary files of a save cut short)."""
        cfg, d, pos = self.cfg, self.dist, self.position
        self.document = self.state["spec"]["document"] if self.state is not None else document_text(self.spec)
        if self.state is not None:
            if d.main:
                for stale in self.run_dir.glob(".*.tmp"):
                    with contextlib.suppress(OSError):
                        stale.unlink()
            self.log = MetricsLog.resume(self.run_dir, pos.epoch) if d.main else MetricsLog(self.run_dir)
            self.saved_epoch = pos.epoch
            where = f"epoch {pos.epoch + 1}" + (f", step {pos.step_in_epoch + 1}" if pos.step_in_epoch else "")
            self.say(f"resuming {self.run_dir} at {where}")
            return
        self.log = MetricsLog(self.run_dir)
        if d.main:
            ckpt.atomic_write_text(self.run_dir / "spec.yaml", self.document)
            ckpt.atomic_write_text(self.run_dir / "config.json",
                                   json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")
        self.save()  # epoch 0: the initial weights, the first "last good" checkpoint
        self.say(f"run: {self.run_dir}")

    def _announce(self) -> None:
        cfg, d = self.cfg, self.dist
        params = sum(p.numel() for p in self.training.model.parameters())
        for line in setup_lines(data=self.data, spec_name=self.spec.name, params=params, device=self.device,
                                cfg=cfg, processes=d.world_size if d.enabled else 0):
            self.say(line)
        if self.hooks.on_start is not None and d.main:
            info = self.data.info
            self.hooks.on_start({"run_dir": self.run_dir, "epoch": self.position.epoch, "epochs": cfg.epochs,
                                 "steps": self.loaders.steps_per_epoch, "params": params, "device": str(self.device),
                                 "dataset": info.name, "classes": info.num_classes, "task": self.task.kind,
                                 "history": list(self.log.rows), "model": self.training.model,
                                 "val_loader": self.loaders.val, "loss": self._loss})

    def _loss(self, outputs, target) -> torch.Tensor:
        """The run's training loss of `outputs` (what a study's probes measure against)."""
        return self.task.train_loss(outputs, target, self.training.criterion)

    def run(self) -> TrainResult:
        cfg, d, pos = self.cfg, self.dist, self.position
        self._open_run_dir()
        self._announce()
        with StopRequest(self.say, self.hooks.should_stop) as stop:
            try:
                while pos.epoch < cfg.epochs:
                    self._epoch(pos.epoch + 1, stop)
            except KeyboardInterrupt as exc:
                if isinstance(exc, TrainingInterrupted):
                    raise
                raise interrupted(signum=signal.SIGINT, epoch=pos.epoch, step=0, run_dir=self.run_dir,
                                  saved=False, saved_epoch=self.saved_epoch) from None
        result = TrainResult(self.run_dir, cfg, list(self.log.rows), pos.epoch)
        line = summary_line(result, str(self.run_dir / ckpt.MODEL_FILE))
        if line is not None:
            self.say(line)
        return result

    def _epoch(self, epoch: int, stop: StopRequest) -> None:
        """Train, validate, checkpoint (every checkpoint_every epochs, at the end, on a stop),
        log and report epoch `epoch`."""
        cfg, d, pos = self.cfg, self.dist, self.position
        sums = self.train_epoch(epoch, stop)
        started = time.perf_counter()
        val = self.evaluate()
        val["seconds"] = time.perf_counter() - started
        if not math.isfinite(val["loss"]):
            raise diverged(epoch=epoch, step=pos.step_in_epoch, value=val["loss"], cfg=cfg,
                           saved_epoch=self.saved_epoch, run_dir=self.run_dir)
        pos.epoch, pos.step_in_epoch = epoch, 0
        row = epoch_row(task=self.task, epoch=epoch, step=pos.global_step,
                        lr=self.training.optimizer.param_groups[0]["lr"], sums=sums, val=val)
        last = epoch == cfg.epochs
        stop.requested = d.any(stop.poll(), self.device)
        if epoch % cfg.checkpoint_every == 0 or last or stop.requested:
            self.save()
        if d.main:
            self.log.append(row)
        self.say(epoch_line(row, cfg.epochs))
        if self.hooks.on_epoch is not None and d.main:
            self.hooks.on_epoch(dict(row))
        if stop.requested and not last:
            raise interrupted(signum=stop.signum, epoch=epoch, step=0, run_dir=self.run_dir, saved=True)

    def close(self) -> None:
        if self.cfg is not None and self.cfg.deterministic:
            torch.use_deterministic_algorithms(False)
        self.dist.close()


def train(spec=None, config: TrainConfig | dict | str | os.PathLike | None = None, *,
          vars: dict[str, Any] | None = None, resume: str | os.PathLike | None = None, quiet: bool = False,
          on_start: Callable[[dict[str, Any]], None] | None = None,
          on_step: Callable[[dict[str, Any]], None] | None = None,
          on_epoch: Callable[[dict[str, Any]], None] | None = None,
          should_stop: Callable[[], bool] | None = None,
          _names: dict[str, str] | None = None, _where: str = "<arguments>", **options: Any) -> TrainResult:
    """Train a spec (a path, YAML text or a loaded Spec) on a dataset of compiler.data.

    Settings come from the spec's `train:` section, then `config` (a TrainConfig, a map, or a
    YAML file), then keyword `options` (epochs=3, lr=0.05, ...), later ones winning; see
    TrainConfig. `resume` continues the run saved in that directory (its spec and settings come
    from the checkpoint; options still override). Under torchrun every process calls this.

    Hooks for a program that drives the run (the designer's background thread), called in the
    training process (rank 0 only): `on_start(info)` once the run directory exists (run_dir,
    epoch, epochs, steps per epoch, params, device, dataset, classes, the history so far when
    resuming; and for a study's probes the model, the validation loader, the loss function and the
    device); `on_step(info)` after every step (epoch, step, steps, global_step, loss, lr, the
    epoch's running train_loss/train_top1, and the model with the step's inputs and target); `on_epoch(row)` with each epoch's metrics row, after
    its checkpoint; `should_stop()`, polled every step: once it returns true the run stops like
    on a first Ctrl-C, after that step, writing a checkpoint to resume from.

    Raises SpecError (located problems in the spec or the settings), TrainError (cannot start;
    TrainingDiverged: the loss became nan/inf) or TrainingInterrupted (Ctrl-C/SIGTERM or
    should_stop, after writing a checkpoint). Returns a TrainResult.
    """
    request = Request(spec=spec, config=config, vars=vars, resume=Path(resume) if resume is not None else None,
                      overrides=options, names=_names, where=_where)
    hooks = Hooks(on_start=on_start, on_step=on_step, on_epoch=on_epoch, should_stop=should_stop)
    run = _Run(request, hooks, quiet=quiet)
    try:
        run.setup()
        return run.run()
    finally:
        run.close()
