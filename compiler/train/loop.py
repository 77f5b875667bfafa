"""The training loop: `train(spec, ...)` builds the model from a spec, trains it on a dataset of
compiler.data, evaluates it every epoch, and keeps metrics, plots and checkpoints in a run
directory. One process, or several under torchrun with DistributedDataParallel.

Exactness of `--resume`: the data order of an epoch is a pure function of (seed, epoch)
(DistributedSampler with the run's seed, set_epoch), data-loader workers are seeded from a
generator reset to (seed, epoch) every epoch, and a checkpoint holds every random state
(torch, CUDA, numpy, python; one set per process), so a run resumed from the checkpoint of
epoch k trains epoch k+1 exactly as the uninterrupted run did.

For tests only: $BLOCKGRAPH_TRAIN_STEP_DELAY (seconds) sleeps after every training step and
$BLOCKGRAPH_TRAIN_TRACE (a file) gets a line "EPOCH STEP" after every step of rank 0, so a test
can kill a run at a known point.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..errors import Loc, Problem, SpecError
from . import checkpoint as ckpt
from .config import Source, TrainConfig, cli_source, config_problem, file_source, resolve_config, \
    spec_source
from ..formatting import human_bytes
from .device import estimate_bytes, free_memory, pick_device
from ..budget import explicit_budget
from .distributed import Dist, detect, init
from .metrics import MetricsLog
from .tasks import boxes_input, dataset_problem, image_input, make_task, task_of


# -- outcomes --------------------------------------------------------------------------------

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
        """The row key that says how good an epoch is: mask mAP@0.5 for instance masks, box
        mAP@0.5 for detection, mIoU for segmentation, else val top-1."""
        for key in ("val_mask_map50", "val_map50", "val_miou"):
            if any(r.get(key) is not None for r in self.history):
                return key
        return "val_top1"

    @property
    def best(self) -> dict[str, Any] | None:
        key = self.metric
        rows = [r for r in self.history if r.get(key) is not None]
        return max(rows, key=lambda r: r[key]) if rows else None


# -- helpers ---------------------------------------------------------------------------------

def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _process_seed(seed: int, rank: int) -> int:
    """Each process its own stream (dropout masks differ between ranks); rank 0 uses `seed`."""
    return (seed + 1_000_003 * rank) % 2**63


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**63


class _EpochSampler(torch.utils.data.Sampler):
    """A DistributedSampler (with num_replicas=1 in a single process, so one process and N
    processes see the same global order) that can skip the batches a resumed epoch already did."""

    def __init__(self, inner: torch.utils.data.DistributedSampler):
        self.inner, self.skip = inner, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices = list(self.inner)
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return len(self.inner) - self.skip


class _Shard(torch.utils.data.Sampler):
    """Validation: every `world`-th sample from `rank`, no padding (sums are all-reduced)."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class _StopRequest:
    """Ctrl-C / SIGTERM: the first asks to stop after the current step (a checkpoint is written
    there), the second stops at once. `external` (a callable, e.g. a threading.Event's is_set)
    is polled every step and asks the same way: how a UI thread stops a run it started."""

    def __init__(self, say: Callable[[str], None], external: Callable[[], bool] | None = None):
        self.requested = False
        self.signum: int | None = signal.SIGINT
        self.say = say
        self.external = external
        self.previous: dict[int, Any] = {}

    def poll(self) -> bool:
        if not self.requested and self.external is not None and self.external():
            self.requested, self.signum = True, None
        return self.requested

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            # SIGHUP too (the terminal closed): otherwise the process dies at once and its
            # data-loader workers linger until they notice (up to 5 s), with no checkpoint
            for sig in (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])):
                try:
                    self.previous[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):  # pragma: no cover
                    pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum
        self.say("stopping after this step to write a checkpoint (press Ctrl-C again to stop at once)")

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)


def _lr_lambda(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
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


def _optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [g for g in ({"params": decay, "weight_decay": cfg.weight_decay},
                          {"params": other, "weight_decay": 0.0}) if g["params"]]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)


def _document_text(spec) -> str:
    """The spec as one self-contained YAML document (`extends:` merged), for checkpoints."""
    import yaml

    from ..source import parse

    doc = getattr(spec, "document", None)
    if doc is None or not isinstance(doc.data, dict):
        return spec.text
    try:
        own = parse(spec.text).data
    except Exception:
        own = None
    if isinstance(own, dict) and "extends" not in own:
        return spec.text  # already self-contained: keep it as written (comments, lines)
    data = {k: v for k, v in doc.data.items() if k != "extends"}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def image_input_shape(spec) -> tuple:
    return tuple(spec.inputs[image_input(spec)])


def _fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


# -- the run ---------------------------------------------------------------------------------

class _Run:
    def __init__(self, spec, config, vars, resume, overrides, names, quiet, where, hooks=None):
        self.dist: Dist = detect()
        hooks = dict(hooks or {})
        self.on_start, self.on_step = hooks.get("on_start"), hooks.get("on_step")
        self.on_epoch, self.should_stop = hooks.get("on_epoch"), hooks.get("should_stop")
        self.quiet = quiet
        self.say = self._say
        self.resume_dir = Path(resume) if resume is not None else None
        self.state: dict[str, Any] | None = None
        self.spec_arg, self.config_arg, self.vars = spec, config, dict(vars or {})
        self.overrides, self.names, self.where = dict(overrides), dict(names), where

    # -- output ------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        if self.dist.main and not self.quiet:
            bar = getattr(self, "bar", None)
            if bar is not None and not bar.disable:
                bar.write(text, file=sys.stdout)
            else:
                print(text, flush=True)

    def note(self, text: str) -> None:
        """A notice for the user (on standard error, also when quiet)."""
        if self.dist.main:
            print(f"note: {text}", file=sys.stderr, flush=True)

    # -- setup -------------------------------------------------------------------------------
    def _load_spec(self):
        import compiler

        if self.resume_dir is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ckpt.CheckpointFallback)
                    self.state = ckpt.load_checkpoint(self.resume_dir)
            except ckpt.CheckpointError as exc:
                raise TrainError(str(exc)) from None
            if self.state.get("fallback"):
                self.note(self.state["fallback"])
            saved = self.state["spec"]
            from ..source import parse
            from ..spec import load_document

            doc = parse(saved["document"], file=str(self.resume_dir / "spec.yaml"))
            spec = load_document(doc, dict(saved.get("vars") or {}))
            if self.spec_arg is not None:
                given = self.spec_arg if isinstance(self.spec_arg, compiler.Spec) else \
                    compiler.load(self.spec_arg, vars=self.vars or None)
                if _document_text(given) != saved["document"] or (self.vars and given.vars != spec.vars):
                    raise TrainError(f"{given.file} is not the spec the run in {self.resume_dir} was started with "
                                     f"(that one is saved in the checkpoint): leave SPEC out to resume it")
            elif self.vars:
                raise TrainError("--var cannot change a resumed run's spec (its vars are saved in the checkpoint)")
            return spec
        if self.spec_arg is None:
            raise TrainError("no spec to train: give a spec file (or --resume RUN_DIR)")
        if isinstance(self.spec_arg, compiler.Spec):
            if self.vars:
                raise TrainError("vars= needs a path or YAML text, not a loaded Spec")
            return self.spec_arg
        return compiler.load(self.spec_arg, vars=self.vars or None)

    def _sources(self, spec) -> list[Source]:
        if self.state is not None:
            saved = {k: v for k, v in (self.state.get("config") or {}).items() if k in TrainConfig.model_fields}
            sources = [Source(saved, "file", None, ())]
        else:
            sources = [spec_source(spec)]
        if self.config_arg is not None:
            if isinstance(self.config_arg, TrainConfig):
                sources.append(cli_source(self.config_arg.model_dump(exclude_unset=True), where="<config>"))
            elif isinstance(self.config_arg, dict):
                sources.append(cli_source(self.config_arg, where="<config>"))
            else:
                sources.append(file_source(self.config_arg))
        sources.append(cli_source(self.overrides, self.names, self.where))
        return sources

    def setup(self) -> None:
        import compiler

        spec = self.spec = self._load_spec()
        sources = self.sources = self._sources(spec)
        cfg = self.cfg = resolve_config(sources)
        if self.state is not None:
            old = self.state.get("config") or {}
            changed = [f"{k} {old.get(k)!r} -> {v!r}" for k, v in cfg.model_dump().items()
                       if k in old and old[k] != v and k != "run_dir"]
            if changed:
                self.note("resuming with changed settings: " + ", ".join(changed))
        d = self.dist

        # the spec's shape: one input, one output (or an image and boxes in, per-region outputs)
        regions = len(spec.inputs) == 2 and boxes_input(spec) is not None and len(image_input_shape(spec)) == 3
        if len(spec.inputs) != 1 and not regions:
            raise SpecError(Problem(spec.document.loc(("inputs",)) if spec.document else Loc(spec.file),
                                    f"training takes a spec with one input (the images); this one has "
                                    f"{len(spec.inputs)}: {', '.join(spec.inputs)}", "inputs"))
        if len(spec.outputs) != 1 and not regions:
            loc = spec.output_locs[0] if spec.output_locs else Loc(spec.file)
            raise SpecError(Problem(loc, f"training takes a spec with one output (the class scores); this one has "
                                         f"{len(spec.outputs)}: {', '.join(spec.outputs)}", "outputs"))

        # device, precision, processes
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
        init(d, device)
        self.stamp = d.broadcast(datetime.now().strftime("%Y%m%d-%H%M%S"))  # one run name for all processes

        # everything below may fail on one process only: agree before going on
        error: BaseException | None = None
        try:
            self._check_memory()
        except (SpecError, TrainError) as exc:
            error = exc
        if d.any(error is not None, device):
            raise error if error is not None else TrainError("another process could not start (see rank 0)")
        try:
            self._data()
            spec = self._bind_dataset_vars()
            from compiler.data import check_compatible

            check_compatible(spec, self.info)
            self.task.check(spec, self.analysis, self.info)
            self._run_dir()
        except (SpecError, TrainError) as exc:
            error = exc
        if d.any(error is not None, device):
            raise error if error is not None else TrainError("another process could not start (see rank 0)")
        self._model()

    def _check_memory(self) -> None:
        import compiler

        cfg, d = self.cfg, self.dist
        analysis = self.analysis = compiler.analyze(self.spec, batch=self.batch)
        need, weights, acts = estimate_bytes(analysis)
        free, source = free_memory(self.device)
        try:  # --max-memory / $BLOCKGRAPH_MAX_MEMORY replace memory_budget x the free memory
            cap = explicit_budget()
        except ValueError as exc:
            raise TrainError(str(exc)) from None
        if free is None and cap is None:
            return
        sharing = d.local_world_size if self.device.type == "cpu" else 1
        budget = cap[0] if cap else free * cfg.memory_budget
        if need * sharing > budget:
            per = f" per process, x{sharing} processes" if sharing > 1 else ""
            limit = (f"the budget ({cap[1]})" if cap else
                     f"memory_budget {cfg.memory_budget:g} x {human_bytes(free)} ({source})")
            raise TrainError(
                f"{self.spec.name} needs about {human_bytes(need * sharing)} to train at batch {self.batch}{per} "
                f"(weights, gradients and optimizer state {human_bytes(weights)} + activations {human_bytes(acts)}), "
                f"more than {limit} = "
                f"{human_bytes(budget)} on {self.device}: lower batch_size, use a smaller spec or raise "
                + ("--max-memory / BLOCKGRAPH_MAX_MEMORY" if cap else "memory_budget"))

    def _data(self) -> None:
        from compiler.data import DatasetError, build_dataset

        cfg, spec = self.cfg, self.spec
        shape = spec.inputs[image_input(spec)]
        size = cfg.size
        if size is None and len(shape) == 3:
            size = shape[1] if shape[1] == shape[2] else [shape[1], shape[2]]
        options: dict[str, Any] = dict(cfg.dataset_options)
        for key in ("train_size", "val_size"):
            if getattr(cfg, key) is not None:
                options[key] = getattr(cfg, key)
        if cfg.root is not None:
            options["root"] = cfg.root
        if cfg.dataset.lower() == "shapes" and "progress" not in options:
            options["progress"] = self.dist.main and not self.quiet and sys.stderr.isatty()
        self.task_kind = task_of(spec, self.analysis)  # [classes] or [classes, H, W] per pixel
        if self.task_kind == "segmentation" and cfg.dataset.lower() == "shapes":
            options.setdefault("task", "segmentation")
        if self.task_kind in ("detection", "regions") and cfg.dataset.lower() == "shapes":
            options.setdefault("task", "detection")  # scenes of one to three objects unless said
            options.setdefault("objects", [1, 3])
        key = "dataset"
        try:
            self.train_set, self.info = build_dataset(cfg.dataset, "train", size=size, seed=cfg.seed, **options)
            self.val_set, _ = build_dataset(cfg.dataset, "val", size=size, seed=cfg.seed, **options)
        except DatasetError as exc:
            text = str(exc)
            for k in ("train_size", "val_size", "size", "root"):
                if k in text and any(k in s.values for s in self.sources if isinstance(s.values, dict)):
                    key = k
                    break
            raise config_problem(self.sources, key, f"dataset {cfg.dataset!r}: {text}") from None
        except (TypeError, ValueError) as exc:
            raise config_problem(self.sources, "dataset_options", f"dataset {cfg.dataset!r}: {exc}") from None
        problem = dataset_problem(self.task_kind, self.info)
        if problem is not None:
            raise config_problem(self.sources, "dataset", problem)
        self.task = make_task(self.task_kind, self.info.num_classes, spec, self.analysis)
        if len(self.train_set) < self.cfg.batch_size:
            raise config_problem(self.sources, "batch_size",
                                 f"batch_size {cfg.batch_size} is larger than the training set "
                                 f"({len(self.train_set)} images)")

    def _bind_dataset_vars(self):
        """Vars bound to the dataset (`classes: {dataset: classes, default: 10}`) take the
        dataset's values: the spec is loaded again with them, analysed, and its task remade."""
        import compiler
        from compiler.data.compat import dataset_values
        from compiler.spec import with_vars

        values = dataset_values(self.spec, self.info)
        if not values:
            return self.spec
        self.spec = with_vars(self.spec, values)
        self.analysis = compiler.analyze(self.spec, batch=self.batch)
        self.task = make_task(self.task_kind, self.info.num_classes, self.spec, self.analysis)
        self.say("from the dataset: " + ", ".join(f"{k} = {v}" for k, v in values.items()))
        return self.spec

    def _run_dir(self) -> None:
        cfg, d = self.cfg, self.dist
        if self.resume_dir is not None:
            self.run_dir = self.resume_dir
            return
        run_dir = Path(cfg.run_dir) if cfg.run_dir else Path("runs") / f"{self.spec.name}-{self.stamp}"
        if d.main:
            if (run_dir / ckpt.STATE_FILE).exists():
                raise TrainError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, "
                                 "or choose another --run-dir")
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TrainError(f"cannot create the run directory {run_dir}: {exc.strerror or exc}") from None
        self.run_dir = run_dir

    def _model(self) -> None:
        import compiler

        cfg, d, device = self.cfg, self.dist, self.device
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        model = compiler.build(self.spec, device=device, seed=cfg.seed)
        if self.state is not None:
            model.load_state_dict(self.state["model"])
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = _optimizer(cfg, model)
        self.steps_per_epoch = math.ceil(len(self.train_set) / d.world_size) // self.batch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _lr_lambda(cfg, self.steps_per_epoch))
        self.scaler = None
        if cfg.amp == "fp16" and device.type in ("cuda", "mps"):
            with contextlib.suppress(Exception):
                self.scaler = torch.amp.GradScaler(device.type)
        self.epoch, self.step_in_epoch, self.global_step, self.partial = 0, 0, 0, {}
        if self.state is not None:
            s = self.state
            self.optimizer.load_state_dict(s["optimizer"])
            self.scheduler.load_state_dict(s["scheduler"])
            if self.scaler is not None and s.get("scaler"):
                self.scaler.load_state_dict(s["scaler"])
            self.epoch, self.global_step = int(s["epoch"]), int(s["global_step"])
            self.step_in_epoch, self.partial = int(s.get("step_in_epoch", 0)), dict(s.get("partial") or {})
            if not d.main:
                self.partial = {}
            rngs = s.get("rng") or []
            if len(rngs) == d.world_size:
                ckpt.set_rng_state(rngs[d.rank])
            else:
                if rngs:
                    self.note(f"the run was saved by {len(rngs)} process(es), it goes on with {d.world_size}: "
                              "random streams restart from the seed")
                _seed_everything(_process_seed(cfg.seed * 7919 + self.epoch, d.rank))
        else:
            _seed_everything(_process_seed(cfg.seed, d.rank))

        forward: torch.nn.Module = model
        if d.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            forward = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        self.eval_model: torch.nn.Module = model
        if cfg.compile:
            forward = torch.compile(forward)
            self.eval_model = forward if not d.enabled else torch.compile(model)
        self.forward = forward
        self.criterion = self.task.criterion(cfg.label_smoothing)

        # loaders (the splits rendered now, after every check, not inside the first epoch's clock)
        from compiler.data import preload

        for dataset in (self.train_set, self.val_set):
            preload(dataset)
        pin = device.type == "cuda"
        sampler = torch.utils.data.DistributedSampler(self.train_set, num_replicas=d.world_size, rank=d.rank,
                                                      shuffle=True, seed=cfg.seed, drop_last=False)
        self.sampler = _EpochSampler(sampler)
        self.loader_gen = torch.Generator()
        self.train_loader = torch.utils.data.DataLoader(
            self.train_set, batch_size=self.batch, sampler=self.sampler, num_workers=cfg.workers, drop_last=True,
            pin_memory=pin, generator=self.loader_gen, collate_fn=self.task.collate)
        self.val_loader = torch.utils.data.DataLoader(
            self.val_set, batch_size=self.batch, sampler=_Shard(len(self.val_set), d.rank, d.world_size),
            num_workers=cfg.workers, pin_memory=pin, generator=torch.Generator().manual_seed(cfg.seed),
            collate_fn=self.task.collate)
        if self.steps_per_epoch < 1:
            raise config_problem(self.sources, "batch_size", f"batch_size {cfg.batch_size} leaves no full batch")

    # -- checkpoints -------------------------------------------------------------------------
    def _state(self, partial: dict[str, Any] | None = None) -> dict[str, Any]:
        spec = self.spec
        rngs = self.dist.gather(ckpt.rng_state())
        return {
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": rngs, "partial": dict(partial or {}),
            "spec": {"name": spec.name, "file": str(spec.file), "text": spec.text,
                     "document": self.document, "vars": dict(spec.vars)},
            "config": self.cfg.model_dump(mode="python") | {"run_dir": str(self.run_dir)},
            "world_size": self.dist.world_size,
        }

    def save(self, partial: dict[str, Any] | None = None) -> None:
        """All processes call it (random states are gathered); rank 0 writes."""
        d = self.dist
        d.barrier()
        state = self._state(partial)
        if d.main:
            ckpt.save(self.run_dir, self.model, state)
        d.barrier()
        self.saved_epoch = self.epoch

    # -- the loop ----------------------------------------------------------------------------
    def _batches(self, loader, total: int, initial: int, desc: str):
        from tqdm.auto import tqdm

        disable = self.quiet or not self.dist.main or not sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=initial, desc=desc, leave=False, disable=disable, dynamic_ncols=True,
                        unit="batch", file=sys.stderr)
        return self.bar

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.cfg.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self):
        amp = self.cfg.amp
        if amp == "off":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)

    def train_epoch(self, epoch: int, stop: _StopRequest) -> dict[str, float] | None:
        """One epoch of training; returns its sums, or None if stopped (after saving)."""
        cfg, d, device = self.cfg, self.dist, self.device
        skip = self.step_in_epoch
        self.sampler.set_epoch(epoch, skip * self.batch)
        self.loader_gen.manual_seed(_epoch_seed(cfg.seed, epoch))
        p = self.partial or {}
        sums = {"loss": float(p.get("loss", 0.0)), "correct1": float(p.get("correct1", 0)),
                "correct5": float(p.get("correct5", 0)), "count": float(p.get("count", 0))}
        local = {"loss": 0.0, "correct1": 0.0, "correct5": 0.0, "count": 0.0}
        seconds_before = float(p.get("seconds", 0.0))
        self.partial = {}
        self.forward.train()
        delay = float(os.environ.get("BLOCKGRAPH_TRAIN_STEP_DELAY", "0") or 0)
        trace = os.environ.get("BLOCKGRAPH_TRAIN_TRACE") if d.main else None
        bar = self._batches(self.train_loader, self.steps_per_epoch, skip, f"epoch {epoch}/{cfg.epochs}")
        start = time.perf_counter()
        step = skip
        try:
            for images, labels in self.train_loader:
                images, labels = self._to(images), self.task.to_device(labels, device)
                with self._autocast():
                    logits = self.task.forward(self.forward, images, labels, train=True)
                loss = self.task.train_loss(logits, labels, self.criterion)
                with torch.no_grad():
                    c1, c5 = self.task.correct(logits, labels)
                n = images.shape[0]
                loss_v, c1_v, c5_v = torch.stack([loss.detach().float(), c1.float(), c5.float()]).tolist()
                step += 1
                bad, stopping = d.flags([not math.isfinite(loss_v), stop.poll()], device)
                if bad:
                    raise self._diverged(epoch, step, loss_v)
                self.optimizer.zero_grad(set_to_none=True)
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                    if cfg.grad_clip:
                        self.scaler.unscale_(self.optimizer)
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    loss.backward()
                    if cfg.grad_clip:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                    self.optimizer.step()
                with _quiet_scheduler_warning():
                    self.scheduler.step()
                self.global_step += 1
                self.step_in_epoch = step
                local["loss"] += loss_v * n
                local["correct1"] += c1_v
                local["correct5"] += c5_v
                local["count"] += n
                bar.update(1)
                if local["count"]:
                    bar.set_postfix(loss=f"{local['loss'] / local['count']:.4f}",
                                    top1=f"{100 * local['correct1'] / local['count']:.1f}%", refresh=False)
                if self.on_step is not None and d.main:
                    self.on_step({"epoch": epoch, "step": step, "steps": self.steps_per_epoch,
                                  "global_step": self.global_step, "loss": loss_v,
                                  "lr": self.optimizer.param_groups[0]["lr"],
                                  "train_loss": local["loss"] / max(local["count"], 1),
                                  "train_top1": local["correct1"] / max(local["count"], 1)})
                if trace:
                    with open(trace, "a") as fh:
                        fh.write(f"{epoch} {step}\n")
                if delay:
                    time.sleep(delay)
                if stopping:
                    if step < self.steps_per_epoch:
                        totals = d.sum([local[k] for k in ("loss", "correct1", "correct5", "count")], device)
                        partial = {k: sums[k] + v for k, v in zip(("loss", "correct1", "correct5", "count"), totals)}
                        partial["seconds"] = seconds_before + time.perf_counter() - start
                        self.save(partial)
                        raise self._interrupted(stop, epoch, step, saved=True)
                    stop.requested = True  # the epoch is done anyway: stop at its end
        finally:
            bar.close()
            self.bar = None
        seconds = time.perf_counter() - start
        totals = d.sum([local[k] for k in ("loss", "correct1", "correct5", "count")], device)
        for k, v in zip(("loss", "correct1", "correct5", "count"), totals):
            sums[k] += v
        sums["seconds"] = seconds_before + seconds
        sums["new_images"] = totals[3]
        sums["train_seconds"] = seconds
        return sums

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        d, device = self.dist, self.device
        d.sync_buffers(self.model)
        self.eval_model.eval()
        loss_sum = c1_sum = c5_sum = count = 0.0
        self.task.evaluate_start(device)
        for images, labels in self.val_loader:
            images, labels = self._to(images), self.task.to_device(labels, device)
            with self._autocast():
                logits = self.task.forward(self.eval_model, images, labels, train=False)
            loss = self.task.loss_sum(logits, labels)
            c1, c5 = self.task.correct(logits, labels)
            self.task.evaluate_update(logits, labels)
            l, a, b = torch.stack([loss.float(), c1.float(), c5.float()]).tolist()
            loss_sum += l
            c1_sum += a
            c5_sum += b
            count += images.shape[0]
        self.forward.train()
        loss_sum, c1_sum, c5_sum, count = d.sum([loss_sum, c1_sum, c5_sum, count], device)
        extra = self.task.evaluate_finish()  # e.g. mIoU (torchmetrics syncs its state across processes)
        return {"loss": loss_sum, "correct1": c1_sum, "correct5": c5_sum, "count": count, **extra}

    def _diverged(self, epoch: int, step: int, value: float) -> TrainingDiverged:
        what = ("nan" if math.isnan(value) else "inf" if value == math.inf else "-inf" if value == -math.inf
                else "nan or inf (in another process)")
        hint = f"lower the learning rate (lr={self.cfg.lr:g})"
        hint += " or enable grad_clip" if not self.cfg.grad_clip else f" or lower grad_clip ({self.cfg.grad_clip:g})"
        if self.cfg.amp == "fp16":
            hint += ", or use amp: bf16"
        message = (f"loss became {what} at epoch {epoch}, step {step}: {hint}; the last good checkpoint "
                   f"(epoch {self.saved_epoch}) is kept in {self.run_dir}")
        return TrainingDiverged(message, epoch, step, self.run_dir)

    def _interrupted(self, stop: _StopRequest, epoch: int, step: int, saved: bool) -> TrainingInterrupted:
        name = ("stopped on request" if stop.signum is None else "interrupted" if stop.signum == signal.SIGINT
                else f"stopped by {signal.Signals(stop.signum).name}")
        where = f"epoch {epoch}, step {step}" if step else f"the end of epoch {epoch}"
        message = (f"{name} at {where}: checkpoint saved in {self.run_dir}; continue with: "
                   f"blockgraph train --resume {self.run_dir}")
        return TrainingInterrupted(message, self.run_dir, saved)

    def run(self) -> TrainResult:
        cfg, d = self.cfg, self.dist
        self.document = self.state["spec"]["document"] if self.state is not None else _document_text(self.spec)
        if self.state is not None:
            if d.main:  # temporary files of a save that a crash cut short
                for stale in self.run_dir.glob(".*.tmp"):
                    with contextlib.suppress(OSError):
                        stale.unlink()
            self.log = MetricsLog.resume(self.run_dir, self.epoch) if d.main else MetricsLog(self.run_dir)
            self.saved_epoch = self.epoch
            where = f"epoch {self.epoch + 1}" + (f", step {self.step_in_epoch + 1}" if self.step_in_epoch else "")
            self.say(f"resuming {self.run_dir} at {where}")
        else:
            self.log = MetricsLog(self.run_dir)
            if d.main:
                import json

                ckpt.atomic_write_text(self.run_dir / "spec.yaml", self.document)
                ckpt.atomic_write_text(self.run_dir / "config.json",
                                       json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")
            self.save()  # epoch 0: the initial weights, the first "last good" checkpoint
            self.say(f"run: {self.run_dir}")
        params = sum(p.numel() for p in self.model.parameters())
        procs = f" ({d.world_size} processes x {self.batch})" if d.enabled else ""
        self.say(f"data: {self.info.name}, {self.info.num_classes} classes, {'x'.join(map(str, self.info.shape))}, "
                 f"{len(self.train_set):,} train / {len(self.val_set):,} val images")
        self.say(f"model: {self.spec.name}, {params:,} parameters on {self.device}; {cfg.optimizer} lr {cfg.lr:g} "
                 f"{cfg.schedule}, batch {cfg.batch_size}{procs}, {cfg.epochs} epochs"
                 + (f", amp {cfg.amp}" if cfg.amp != "off" else ""))
        if self.on_start is not None and d.main:
            self.on_start({"run_dir": self.run_dir, "epoch": self.epoch, "epochs": cfg.epochs,
                           "steps": self.steps_per_epoch, "params": params, "device": str(self.device),
                           "dataset": self.info.name, "classes": self.info.num_classes, "task": self.task.kind,
                           "history": list(self.log.rows)})
        with _StopRequest(self.say, self.should_stop) as stop:
            try:
                while self.epoch < cfg.epochs:
                    epoch = self.epoch + 1
                    sums = self.train_epoch(epoch, stop)
                    started = time.perf_counter()
                    val = self.evaluate()
                    val["seconds"] = time.perf_counter() - started
                    if not math.isfinite(val["loss"]):
                        raise self._diverged(epoch, self.step_in_epoch, val["loss"])
                    self.epoch, self.step_in_epoch = epoch, 0
                    row = self._row(epoch, sums, val)
                    last = epoch == cfg.epochs
                    stop.requested = d.any(stop.poll(), self.device)
                    if epoch % cfg.checkpoint_every == 0 or last or stop.requested:
                        self.save()
                    if d.main:
                        self.log.append(row)
                    self._print(row)
                    if self.on_epoch is not None and d.main:
                        self.on_epoch(dict(row))
                    if stop.requested and not last:
                        raise self._interrupted(stop, epoch, 0, saved=True)
            except KeyboardInterrupt as exc:
                if isinstance(exc, TrainingInterrupted):
                    raise
                raise TrainingInterrupted(f"interrupted: the last checkpoint (epoch {self.saved_epoch}) is kept in "
                                          f"{self.run_dir}; continue with: blockgraph train --resume {self.run_dir}",
                                          self.run_dir, saved=False) from None
        result = TrainResult(self.run_dir, cfg, list(self.log.rows), self.epoch)
        best, final = result.best, result.final
        if final is not None:
            metric, key = (("mIoU", "val_miou") if final.get("val_miou") is not None
                           else ("mask mAP@0.5", "val_mask_map50") if final.get("val_mask_map50") is not None
                           else ("mAP@0.5", "val_map50") if final.get("val_map50") is not None
                           else ("top-1", "val_top1"))
            self.say(f"done: {self.epoch} epochs; val {metric} {_fmt_pct(final[key])}"
                     + (f" (best {_fmt_pct(best[key])} at epoch {best['epoch']})" if best else "")
                     + f"; weights in {self.run_dir / ckpt.MODEL_FILE}")
        return result

    def _row(self, epoch: int, sums: dict[str, float], val: dict[str, float]) -> dict[str, Any]:
        k5, k1 = self.task.top5, self.task.has_accuracy
        n, vn = max(sums["count"], 1), max(val["count"], 1)
        return {
            "epoch": epoch, "step": self.global_step, "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": sums["loss"] / n, "train_top1": sums["correct1"] / n if k1 else None,
            "train_top5": sums["correct5"] / n if k5 else None,
            "val_loss": val["loss"] / vn, "val_top1": val["correct1"] / vn if k1 else None,
            "val_top5": val["correct5"] / vn if k5 else None,
            "images_per_s": sums["new_images"] / max(sums["train_seconds"], 1e-9),
            "seconds": sums["seconds"] + val.get("seconds", 0.0),
            "val_miou": val.get("miou"),  # segmentation only (None when classifying)
            # detection only: box (and mask) mAP at IoU 0.5 and averaged over 0.5:0.95
            "val_map50": val.get("map50"), "val_map": val.get("map"),
            "val_mask_map50": val.get("mask_map50"), "val_mask_map": val.get("mask_map"),
        }

    def _print(self, r: dict[str, Any]) -> None:
        width = len(str(self.cfg.epochs))
        self.say(f"epoch {r['epoch']:>{width}}/{self.cfg.epochs}  "
                 f"train loss {r['train_loss']:.4f}"
                 + (f" top1 {_fmt_pct(r['train_top1'])}" if r.get("train_top1") is not None else "")
                 + f"  val loss {r['val_loss']:.4f}"
                 + (f" top1 {_fmt_pct(r['val_top1'])} top5 {_fmt_pct(r['val_top5'])}"
                    if r.get("val_top1") is not None else "") + "  "
                 + (f"mIoU {_fmt_pct(r['val_miou'])}  " if r.get("val_miou") is not None else "")
                 + (f"mAP@0.5 {_fmt_pct(r['val_map50'])} mAP {_fmt_pct(r['val_map'])}  "
                    if r.get("val_map50") is not None else "")
                 + (f"mask mAP@0.5 {_fmt_pct(r['val_mask_map50'])}  " if r.get("val_mask_map50") is not None
                    else "")
                 + f"{r['images_per_s']:,.0f} img/s  {r['seconds']:.1f} s")

    def close(self) -> None:
        if getattr(self, "cfg", None) is not None and self.cfg.deterministic:
            torch.use_deterministic_algorithms(False)
        self.dist.close()


@contextlib.contextmanager
def _quiet_scheduler_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
        yield


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
    resuming); `on_step(info)` after every step (epoch, step, steps, global_step, loss, lr and the
    epoch's running train_loss/train_top1); `on_epoch(row)` with each epoch's metrics row, after
    its checkpoint; `should_stop()`, polled every step: once it returns true the run stops like
    on a first Ctrl-C, after that step, writing a checkpoint to resume from.

    Raises SpecError (located problems in the spec or the settings), TrainError (cannot start;
    TrainingDiverged: the loss became nan/inf) or TrainingInterrupted (Ctrl-C/SIGTERM or
    should_stop, after writing a checkpoint). Returns a TrainResult.
    """
    names = dict(_names or {})
    hooks = {"on_start": on_start, "on_step": on_step, "on_epoch": on_epoch, "should_stop": should_stop}
    run = _Run(spec, config, vars, resume, options, names, quiet, _where, hooks)
    try:
        run.setup()
        return run.run()
    finally:
        run.close()
