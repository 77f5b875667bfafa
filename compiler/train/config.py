"""The training configuration: `TrainConfig`, and where its values come from.

A run's settings are merged from three sources, later ones winning key by key:

1. the spec's own `train:` section,
2. a separate YAML file (`blockgraph train --config FILE`), either a map of these keys or a
   map with one `train:` key holding them,
3. the command line (`--epochs 3`, `--lr 0.1`, `--set key=value`, ...) or keyword arguments
   of `compiler.train(...)`.

The merged map is validated once by `TrainConfig`; every problem is reported as a located
`Problem` at the place the offending value came from (`FILE:LINE:COL: train.lr: ...` for the
spec, the config file's own line for `--config`, `<command line>` for options).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import Loc, Problem, SpecError, format_path

DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"
COMMAND_LINE = "<command line>"


class TrainConfig(BaseModel):
    """How to train a spec: data, optimisation, precision, devices and checkpoints."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    # -- data ------------------------------------------------------------------------------
    dataset: str = "shapes"
    """Name of the dataset (see `compiler.data.dataset_names()`)."""
    size: int | None = Field(None, gt=0, le=4096)
    """Image side in pixels; default: the height of the spec's input."""
    train_size: int | None = Field(None, gt=0)
    """Number of training images (default: the dataset's own)."""
    val_size: int | None = Field(None, gt=0)
    """Number of validation images (default: the dataset's own)."""
    root: str | None = None
    """Directory of the dataset's files, for datasets read from disk."""
    dataset_options: dict[str, Any] = {}
    """Further keyword arguments for the dataset (passed to `build_dataset` as they are)."""

    # -- the loop --------------------------------------------------------------------------
    epochs: int = Field(10, gt=0, le=100_000)
    """Number of passes over the training set."""
    batch_size: int = Field(128, gt=0)
    """Global batch size: with N processes each one takes batch_size / N (must divide)."""
    workers: int = Field(0, ge=0, le=256)
    """Data-loader worker processes per training process (0: load in the training process)."""

    # -- optimisation ----------------------------------------------------------------------
    optimizer: Literal["sgd", "adamw"] = "sgd"
    """`sgd` (with momentum, optionally Nesterov) or `adamw`."""
    lr: float | None = Field(None, gt=0)
    """Peak learning rate (default 0.1 for sgd, 0.001 for adamw)."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """SGD momentum."""
    nesterov: bool = False
    """Nesterov momentum for SGD (needs momentum > 0)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW's coefficients for the running averages of the gradient and its square."""
    weight_decay: float | None = Field(None, ge=0)
    """Weight decay of weight matrices and conv kernels (not of biases or norm scales);
    default 5e-4 for sgd, 0.05 for adamw (decoupled)."""
    schedule: Literal["constant", "cosine", "step", "onecycle"] = "cosine"
    """Learning-rate schedule over the run, stepped every batch."""
    warmup_epochs: float = Field(0, ge=0)
    """Linear warm-up from 0 to lr over this many epochs (fractions allowed) before the schedule;
    for onecycle it is the rising part (default 30% of the run)."""
    step_size: int | None = Field(None, gt=0)
    """schedule step: multiply the lr by gamma every step_size epochs (default epochs // 3)."""
    gamma: float = Field(0.1, gt=0)
    """schedule step: the factor applied every step_size epochs."""
    min_lr: float = Field(0.0, ge=0)
    """schedule cosine: the lr at the end of the run."""
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    """Cross-entropy label smoothing."""
    grad_clip: float | None = Field(None, gt=0)
    """Clip the global gradient norm to this value (default: no clipping)."""

    # -- precision and speed ---------------------------------------------------------------
    amp: Literal["off", "bf16", "fp16"] = "off"
    """Mixed precision: bf16 autocast (CPU, CUDA), fp16 autocast with gradient scaling (CUDA)."""
    channels_last: bool = False
    """Store activations and conv weights NHWC (faster convs with tensor cores)."""
    compile: bool = False
    """Compile the model with torch.compile (slow start, faster steps)."""

    # -- reproducibility and devices -------------------------------------------------------
    seed: int = Field(0, ge=0, lt=2**31)
    """Seeds weight initialisation, data, data order and dropout."""
    deterministic: bool = False
    """torch.use_deterministic_algorithms(True) and deterministic cuDNN (slower)."""
    device: str = Field("auto", pattern=DEVICE_PATTERN)
    """auto (cuda if available, else mps, else cpu), cpu, cuda, cuda:N or mps."""

    # -- outputs ---------------------------------------------------------------------------
    run_dir: str | None = None
    """Where metrics, plots and checkpoints go (default runs/<spec name>-<date>-<time>)."""
    checkpoint_every: int = Field(1, gt=0)
    """Write a checkpoint every N epochs (and always after the last one)."""
    memory_budget: float = Field(0.8, gt=0, le=1)
    """Refuse to start when the estimated memory exceeds this fraction of the device's free memory."""

    @field_validator("root", "run_dir", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        """A pathlib.Path from Python code is as good as the text a YAML file gives."""
        return str(value) if isinstance(value, os.PathLike) else value

    @model_validator(mode="after")
    def _defaults(self) -> "TrainConfig":
        if self.lr is None:
            self.lr = 0.1 if self.optimizer == "sgd" else 1e-3
        if self.weight_decay is None:
            self.weight_decay = 5e-4 if self.optimizer == "sgd" else 0.05
        if self.step_size is None:
            self.step_size = max(1, self.epochs // 3)
        return self


FIELDS = list(TrainConfig.model_fields)


@dataclass
class Source:
    """One place settings come from: the spec, a config file or the command line."""

    values: dict[str, Any]
    kind: Literal["spec", "file", "cli"]
    document: Any = None
    """The located document (spec or config file), if any."""
    base: tuple = ()
    """The path of the settings inside the document (('train',) for a spec)."""
    names: dict[str, str] = field(default_factory=dict)
    """cli: key -> the option that set it (--lr, --set lr)."""
    where: str = COMMAND_LINE
    """cli: the file name shown in messages (<command line>, <arguments>)."""
    problems: list[Problem] = field(default_factory=list)
    """Mistakes found while reading the source ($expressions that do not evaluate)."""

    def loc(self, path: tuple, at_key: bool = False) -> tuple[Loc, str]:
        if self.kind == "cli":
            key = path[0] if path else ""
            default = f"--set {format_path(path)}" if self.where == COMMAND_LINE else format_path(path)
            return Loc(self.where, 1, 1), self.names.get(key, default)
        full = self.base + tuple(path)
        if self.document is None:
            return Loc(), "train." + format_path(path)
        loc = self.document.key_loc(full) if at_key else self.document.loc(full)
        return loc, format_path(("train",) + tuple(path))


def spec_source(spec) -> Source:
    """The `train:` section of a loaded spec (an empty one when it has none). Top-level values
    may use the spec's vars like any argument: `epochs: $epochs`, `lr: $base_lr * 2`."""
    from .. import expr
    from ..spec import whole_var

    doc = getattr(spec, "document", None)
    data = doc.data.get("train", {}) if doc is not None and isinstance(doc.data, dict) else {}
    if data is None:
        data = {}
    src = Source(data, "spec", doc, ("train",))
    if isinstance(data, dict):
        values = dict(data)
        for key, value in data.items():
            if not expr.is_expression(value):
                continue
            try:
                name = whole_var(value)
                if name is not None:
                    if name not in spec.vars:
                        raise expr.ExprError(f"unknown variable ${name}"
                                             + (f" (the spec defines: {', '.join(spec.vars)})" if spec.vars else
                                                " (the spec defines no vars)"))
                    values[key] = spec.vars[name]
                else:
                    values[key] = expr.evaluate(value, dict(spec.vars))
            except expr.ExprError as exc:
                loc, path = src.loc((key,))
                src.problems.append(Problem(loc, f"{value!r}: {exc}", path))
        src.values = values
    return src


def file_source(path: str | Path) -> Source:
    """A YAML config file: a map of train keys, or a map with one `train:` key."""
    from ..source import parse

    doc = parse(Path(path))
    data, base = doc.data, ()
    if isinstance(data, dict) and set(data) == {"train"}:
        data, base = data["train"], ("train",)
    if data is None:
        data = {}
    return Source(data, "file", doc, base)


def cli_source(values: dict[str, Any], names: dict[str, str] | None = None, where: str = COMMAND_LINE) -> Source:
    """Settings from options; `names` maps a key to the option that set it, for messages."""
    return Source(dict(values), "cli", None, (), dict(names or {}), where)


def set_value(values: dict[str, Any], key: str, value: Any) -> None:
    """`--set dataset_options.noise=0.1` sets a nested key; plain keys set themselves."""
    head, _, rest = key.partition(".")
    if rest:
        inner = values.setdefault(head, {})
        if not isinstance(inner, dict):
            inner = values[head] = {}
        set_value(inner, rest, value)
    else:
        values[head] = value


def merge(sources: list[Source]) -> tuple[dict[str, Any], dict[str, Source], list[Problem]]:
    """Merge the sources (later wins per key; dataset_options merge key by key)."""
    merged: dict[str, Any] = {}
    origin: dict[str, Source] = {}
    problems: list[Problem] = []
    for src in sources:
        problems += src.problems
        if not isinstance(src.values, dict):
            loc, path = src.loc(())
            problems.append(Problem(loc, f"the train settings are a map of keys ({', '.join(FIELDS[:4])}, ...), "
                                         f"got {type(src.values).__name__}", path if src.kind != "spec" else "train"))
            continue
        for key, value in src.values.items():
            if key == "dataset_options" and isinstance(value, dict) and isinstance(merged.get(key), dict):
                value = {**merged[key], **value}
            merged[key] = value
            origin[key] = src
    return merged, origin, problems


SYNONYMS = {
    "lr": ("learning_rate", "learningrate", "base_lr", "max_lr", "eta"),
    "batch_size": ("batch", "batchsize", "bs", "train_batch_size", "per_device_train_batch_size"),
    "epochs": ("epoch", "max_epochs", "num_epochs", "n_epochs", "num_train_epochs"),
    "workers": ("num_workers", "n_workers", "dataloader_workers", "jobs"),
    "optimizer": ("optim", "opt", "solver"),
    "schedule": ("scheduler", "lr_scheduler", "lr_schedule", "sched", "policy"),
    "weight_decay": ("wd", "decay", "l2"),
    "warmup_epochs": ("warmup", "warm_up", "warmup_steps"),
    "grad_clip": ("clip_grad", "clip_grad_norm", "max_grad_norm", "gradient_clip_val", "clip"),
    "amp": ("mixed_precision", "precision", "fp16", "bf16", "half"),
    "seed": ("random_seed", "manual_seed"),
    "run_dir": ("output_dir", "out_dir", "log_dir", "logdir", "save_dir", "checkpoint_dir"),
    "label_smoothing": ("smoothing", "label_smooth"),
    "dataset": ("data", "dataset_name"),
    "device": ("gpu", "gpus", "accelerator"),
}
"""Names other trainers use (PyTorch Lightning, Hugging Face, timm, Caffe) for these keys."""


def suggest(key: str) -> str:
    """'; did you mean ...?' for a close train key (the message catalogue's rule), else ''."""
    from ..spec.messages import did_you_mean

    return did_you_mean(key, FIELDS, SYNONYMS)


def _message(err: dict) -> str:
    from ..spec.messages import pydantic_message, unknown_key

    if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
        return unknown_key(err["loc"][-1], "in train", FIELDS, SYNONYMS)
    if err["type"] == "greater_than" and len(err["loc"]) == 1:
        annotation = str(TrainConfig.model_fields[err["loc"][0]].annotation)
        if "float" in annotation:
            bound = next(iter((err.get("ctx") or {}).values()), 0)
            return f"expected a number greater than {float(bound):g}, got {err.get('input')!r}"
    return pydantic_message(err, "train", FIELDS)


def resolve_config(sources: list[Source]) -> TrainConfig:
    """Validate the merged settings; raise `SpecError` with every located problem."""
    merged, origin, problems = merge(sources)
    cfg = None
    if not problems:
        try:
            cfg = TrainConfig.model_validate(merged)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = tuple(err["loc"])
                src = origin.get(loc[0]) if loc else None
                if src is None:
                    src = sources[-1] if sources else Source({}, "spec")
                where, path = src.loc(loc, at_key=err["type"] == "extra_forbidden")
                problems.append(Problem(where, _message(err), path))
    if cfg is not None:
        problems += _cross_checks(cfg, origin)
    if problems:
        problems.sort(key=lambda p: (p.loc.file.startswith("<"), p.loc.file, p.loc.line, p.loc.col))
        raise SpecError(problems)
    assert cfg is not None
    return cfg


def _cross_checks(cfg: TrainConfig, origin: dict[str, Source]) -> list[Problem]:
    out: list[Problem] = []

    def error(key: str, message: str) -> None:
        src = origin.get(key)
        if src is None:
            out.append(Problem(Loc(COMMAND_LINE, 1, 1), message, key))
        else:
            loc, path = src.loc((key,))
            out.append(Problem(loc, message, path))

    if cfg.nesterov and cfg.optimizer == "sgd" and cfg.momentum == 0:
        error("nesterov", "Nesterov momentum needs momentum > 0 (e.g. momentum: 0.9)")
    if cfg.warmup_epochs >= cfg.epochs and cfg.warmup_epochs > 0:
        error("warmup_epochs", f"the warm-up ({cfg.warmup_epochs:g} epochs) must be shorter than the run "
                               f"(epochs: {cfg.epochs})")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", cfg.dataset):
        error("dataset", f"expected a dataset name, got {cfg.dataset!r}")
    for name in ("betas",):
        if any(not 0 <= b < 1 for b in cfg.betas):
            error(name, f"expected two numbers in [0, 1), got {list(cfg.betas)}")
    return out


def config_problem(origin_sources: list[Source], key: str, message: str) -> SpecError:
    """A located error about one key, placed where its value came from (the last source that
    set it, else the spec's train section)."""
    src = next((s for s in reversed(origin_sources) if isinstance(s.values, dict) and key in s.values), None)
    if src is None:
        src = next((s for s in origin_sources if s.kind == "spec"), None) or Source({}, "cli")
        if src.kind == "spec":
            loc = src.document.loc(("train",)) if src.document is not None else Loc()
            return SpecError(Problem(loc, message, f"train.{key}"))
    loc, path = src.loc((key,))
    return SpecError(Problem(loc, message, path))
