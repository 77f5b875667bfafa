"""A run's dataset: its train and validation splits, built with the options the run's task needs
(`Task.dataset_options`), checked against the task (`Task.dataset_problem`) and the batch size;
and the spec's vars bound to the dataset (`classes: {dataset: classes}`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import TrainConfig, config_problem
from .tasks import Task, image_input


@dataclass
class Data:
    """The splits of a run and what the dataset says about itself."""

    train_set: Any
    val_set: Any
    info: Any
    """compiler.data.DatasetInfo: name, task, classes, shape."""


@dataclass
class BoundSpec:
    """The spec again, with the vars the dataset gave (`values`, empty when none)."""

    spec: Any
    analysis: Any
    values: dict[str, int]


def build_data(*, cfg: TrainConfig, spec, task: type[Task], sources, progress: bool) -> Data:
    """The train and validation splits of the run's dataset; a located problem (in the setting
    that caused it) when the dataset cannot be built or cannot serve `task`."""
    from ..data import DatasetError, build_dataset, input_options

    options: dict[str, Any] = {**task.dataset_options(cfg.dataset), **cfg.dataset_options}
    implied = input_options(cfg.dataset, spec.inputs[image_input(spec)], options)
    implied_size = implied.pop("size", None)
    size = implied_size if cfg.size is None else cfg.size
    options = {**implied, **options}
    for key in ("train_size", "val_size"):
        if getattr(cfg, key) is not None:
            options[key] = getattr(cfg, key)
    if cfg.root is not None:
        options["root"] = cfg.root
    if cfg.dataset.lower() == "shapes" and "progress" not in options:
        options["progress"] = progress
    try:
        train_set, info = build_dataset(cfg.dataset, "train", size=size, seed=cfg.seed, **options)
        val_set, _ = build_dataset(cfg.dataset, "val", size=size, seed=cfg.seed, **options)
    except DatasetError as exc:
        text, key = str(exc), "dataset"
        for k in ("train_size", "val_size", "size", "root"):
            if k in text and any(k in s.values for s in sources if isinstance(s.values, dict)):
                key = k
                break
        raise config_problem(sources, key, f"dataset {cfg.dataset!r}: {text}") from None
    except (TypeError, ValueError) as exc:
        raise config_problem(sources, "dataset_options", f"dataset {cfg.dataset!r}: {exc}") from None
    problem = task.dataset_problem(info)
    if problem is not None:
        raise config_problem(sources, "dataset", problem)
    if len(train_set) < cfg.batch_size:
        raise config_problem(sources, "batch_size",
                             f"batch_size {cfg.batch_size} is larger than the training set ({len(train_set)} images)")
    return Data(train_set, val_set, info)


def bind_dataset_vars(*, spec, analysis, info, batch: int) -> BoundSpec:
    """Vars bound to the dataset (`classes: {dataset: classes, default: 10}`) take the
    dataset's values: the spec is loaded again with them and analysed."""
    from ..analysis import analyze
    from ..data.compat import dataset_values
    from ..spec import with_vars

    values = dataset_values(spec, info)
    if not values:
        return BoundSpec(spec, analysis, {})
    spec = with_vars(spec, values)
    return BoundSpec(spec, analyze(spec, batch=batch), values)
