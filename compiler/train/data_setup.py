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


def image_size(spec) -> int | list[int] | None:
    """The size the dataset's images take by default: the spec's image input's (H, W)."""
    shape = spec.inputs[image_input(spec)]
    if len(shape) != 3:
        return None
    return shape[1] if shape[1] == shape[2] else [shape[1], shape[2]]


def sequence_options(spec, dataset: str, options: dict[str, Any]) -> dict[str, Any]:
    """What a sequence input `[T, F]` says of the data when the run does not: the adding problem's
    length (`steps: T`), or that the shapes' images are read row by row (`layout: rows`, `size`
    [T, F / channels]), so a recurrent spec trains on them with no dataset option."""
    shape = spec.inputs[image_input(spec)]
    if len(shape) != 2:
        return {}
    name = dataset.lower()
    if name == "adding":
        return {"steps": shape[0]}
    if name == "shapes" and options.get("layout", "rows") == "rows":
        channels = options.get("channels", 3)
        found: dict[str, Any] = {"layout": "rows"}
        if isinstance(channels, int) and channels > 0 and shape[1] % channels == 0:
            found["size"] = [shape[0], shape[1] // channels]
        return found
    return {}


def build_data(*, cfg: TrainConfig, spec, task: type[Task], sources, progress: bool) -> Data:
    """The train and validation splits of the run's dataset; a located problem (in the setting
    that caused it) when the dataset cannot be built or cannot serve `task`."""
    from ..data import DatasetError, build_dataset

    options: dict[str, Any] = {**task.dataset_options(cfg.dataset), **cfg.dataset_options}
    implied = sequence_options(spec, cfg.dataset, options)
    size = cfg.size if cfg.size is not None else implied.pop("size", None) or image_size(spec)
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
