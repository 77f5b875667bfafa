"""Datasets for training: the built-in `shapes` and `adding`, torchvision's MNIST/FashionMNIST/CIFAR and
image folders.

`build_dataset(name, split)` returns a `torch.utils.data.Dataset` and a `DatasetInfo`
(class names, per-sample shape, task). Classification items are
``(image float tensor [C, H, W], normalised, label int)``; detection items (the shapes
dataset with several objects) are ``(image, {"boxes", "labels", "masks"})``; sequence items are
``(sequence float [T, F], label)`` (shapes with layout "rows") or ``(sequence, target float [1])``
(the adding problem, a regression).
`check_compatible(spec, info)` says, located in the spec's YAML, when a spec's input shape or
class count does not fit a dataset. See docs/datasets.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..spec.messages import did_you_mean, suggestion
from .info import DatasetError, DatasetInfo

__all__ = ["DatasetError", "DatasetInfo", "build_dataset", "check_compatible", "data_root", "dataset_names",
           "detection_collate", "input_options", "preload"]


NAMES = ("shapes", "adding", "mnist", "fashionmnist", "cifar10", "cifar100", "folder")
ALIASES = {"fashion-mnist": "fashionmnist", "fashion_mnist": "fashionmnist", "cifar-10": "cifar10",
           "cifar-100": "cifar100", "imagefolder": "folder"}
SPLITS = ("train", "val")


def dataset_names() -> list[str]:
    """The names `build_dataset` accepts ("shapes" is the built-in default)."""
    return list(NAMES)


def data_root() -> Path:
    """Where datasets are looked for and downloaded to: $BLOCKGRAPH_DATA, else
    ~/.cache/blockgraph/datasets."""
    env = os.environ.get("BLOCKGRAPH_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "blockgraph" / "datasets"


def build_dataset(name: str, split: str, *, size: int | tuple[int, int] | None = None,
                  root: str | os.PathLike | None = None, seed: int = 0, download: bool = True,
                  **options: Any) -> tuple[torch.utils.data.Dataset, DatasetInfo]:
    """One split ("train" or "val") of a dataset, and what it gives.

    size: the side of the square images (or (height, width)) the dataset should give; None keeps
    the dataset's own (32 for shapes). root: where the files are (torchvision datasets: default
    `data_root()`; folder: required). seed: the shapes' drawing and a folder's train/val split.
    download: whether torchvision datasets may be downloaded when missing.
    options, per dataset (an unknown one is an error):
      every dataset: channels (1 or 3: convert), transform (a callable applied to each
        normalised image tensor, e.g. an augmentation), train_size and val_size (the number
        of images of each split; for datasets on disk a seeded random subset);
      shapes: train_size (default 10,000), val_size (2,000), objects (1; an int or a (min, max)
        range; more than one makes it a detection dataset), task ("classification",
        "detection" or "segmentation": per-pixel masks, background = class 0), cache (a directory, or True for <root or data_root()>/shapes),
        precompute (None: keep a split in memory after first use when it fits; True: render
        it now; False: always render on demand), progress (show a bar for long renders);
        layout ("image": items [C, H, W]; "rows": classification items read row by row as a
        sequence [H, C*W], for recurrent nets);
      adding (the adding problem, a regression on sequences [steps, 2]; no size or channels):
        steps (the sequence length T, default 100), train_size (10,000), val_size (2,000);
      folder: val_fraction (0.2), mean and std (normalisation, default ImageNet's).
    """
    key = str(name).lower()
    key = ALIASES.get(key, key)
    if key not in NAMES:
        close = suggestion(key, NAMES + tuple(ALIASES), synonyms=None)
        hint = f"; did you mean {ALIASES.get(close, close)!r}?" if close else ""
        raise DatasetError(f"unknown dataset {name!r}{hint} (known: {', '.join(NAMES)})")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r} of dataset {key!r}: use 'train' or 'val'")
    if key == "adding":
        return _adding(split, size, seed, options)
    hw = _size(size)
    channels = options.pop("channels", None)
    if channels is not None and channels not in (1, 3):
        raise DatasetError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if key == "shapes":
        return _shapes(split, hw, root, seed, channels, options)
    limits = {k: options.pop(k) for k in ("train_size", "val_size") if k in options}
    _check_sizes(limits)
    if key == "folder":
        from .vision import build_folder

        _only(key, options, ("val_fraction", "mean", "std", "transform"), ("train_size", "val_size"))
        dataset, info = build_folder(split, root, hw, channels, seed, **options)
    else:
        from .vision import build_torchvision

        _only(key, options, ("transform",), ("train_size", "val_size"))
        dataset, info = build_torchvision(key, split, Path(root).expanduser() if root is not None else data_root(),
                                          hw, channels, download, **options)
    limit = limits.get(f"{split}_size")
    if limit is not None:
        dataset = _subset(dataset, limit, seed, split, key)
    return dataset, info


def input_options(name: str, shape, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a spec's input of per-sample `shape` asks of dataset `name` when a run does not say:
    an image's `size` (its [H, W]); for a sequence `[T, F]`, the adding problem's `steps` (T),
    or that the shapes are read row by row (`layout: rows`, `size` [T, F / channels]). `options`
    are those the run gives (`channels`, `layout`), which decide and win."""
    options = options or {}
    shape = tuple(shape)
    if len(shape) == 3:
        return {"size": shape[1] if shape[1] == shape[2] else [shape[1], shape[2]]}
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if len(shape) != 2:
        return {}
    if key == "adding":
        return {"steps": shape[0]}
    if key == "shapes" and options.get("layout", "rows") == "rows":
        channels = options.get("channels", 3)
        found: dict[str, Any] = {"layout": "rows"}
        if isinstance(channels, int) and channels > 0 and shape[1] % channels == 0:
            found["size"] = [shape[0], shape[1] // channels]
        return found
    return {}


def _check_sizes(options: dict) -> None:
    for key in ("train_size", "val_size"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise DatasetError(f"{key} must be a positive integer, got {value!r}")


def _subset(dataset, limit: int, seed: int, split: str, name: str) -> torch.utils.data.Dataset:
    """`limit` images of a split, chosen at random (seeded) and kept in their order."""
    import numpy as np

    if limit > len(dataset):
        raise DatasetError(f"{split}_size {limit} is more than the {len(dataset)} images of the {split} split of "
                           f"{name!r}")
    if limit == len(dataset):
        return dataset
    order = np.random.default_rng([int(seed) & 0xFFFFFFFF, SPLITS.index(split), 7]).permutation(len(dataset))
    return torch.utils.data.Subset(dataset, sorted(int(i) for i in order[:limit]))


def _size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise DatasetError(f"size is one side (32) or [height, width], got {size!r}") from None
    if h < 8 or w < 8 or h > 4096 or w > 4096:
        raise DatasetError(f"size must be between 8 and 4096 pixels, got {size!r}")
    return h, w


def _only(name: str, options: dict, allowed: tuple[str, ...], also: tuple[str, ...] = (),
          common: tuple[str, ...] = ("size", "channels")) -> None:
    for key in options:
        if key not in allowed:
            hint = did_you_mean(key, allowed + also, synonyms=None)
            takes = ", ".join(common + also + allowed)
            raise DatasetError(f"dataset {name!r} has no option {key!r}{hint} (it takes {takes})")


def _shapes(split, hw, root, seed, channels, options) -> tuple[torch.utils.data.Dataset, DatasetInfo]:
    from . import shapes

    _only("shapes", options, ("train_size", "val_size", "objects", "task", "cache", "precompute", "progress",
                              "transform", "layout"))
    _check_sizes(options)
    length = options.get(f"{split}_size") or (10_000 if split == "train" else 2_000)
    objects = options.get("objects", 1)
    if isinstance(objects, (list, tuple)):
        if len(objects) != 2 or not all(isinstance(o, int) for o in objects) or not 1 <= objects[0] <= objects[1]:
            raise DatasetError(f"objects is a count or a [min, max] range with 1 <= min <= max, got {objects!r}")
        objects = tuple(objects) if objects[0] != objects[1] else objects[0]
    elif isinstance(objects, bool) or not isinstance(objects, int) or objects < 1:
        raise DatasetError(f"objects must be a positive integer or a [min, max] range, got {objects!r}")
    several = isinstance(objects, tuple) or objects > 1
    task = options.get("task", "detection" if several else "classification")
    if task not in ("classification", "detection", "segmentation"):
        raise DatasetError(f"task must be 'classification', 'detection' or 'segmentation', got {task!r}")
    if task == "classification" and several:
        raise DatasetError(f"a classification item has one label: objects={objects!r} needs task='detection'")
    cache = options.get("cache")
    if cache is True:
        cache = Path(root).expanduser() / "shapes" if root is not None else data_root() / "shapes"
    elif cache is False:
        cache = None
    height, width = hw or (32, 32)
    channels = channels or 3
    dataset = shapes.ShapesDataset(split, length, height=height, width=width, seed=seed, objects=objects,
                                   channels=channels, detection=task == "detection",
                                   segmentation=task == "segmentation", cache=cache,
                                   precompute=options.get("precompute"), transform=options.get("transform"),
                                   progress=options.get("progress", True))
    mean, std = (shapes.MEAN_GRAY, shapes.STD_GRAY) if channels == 1 else (shapes.MEAN_RGB, shapes.STD_RGB)
    classes = list(shapes.CLASSES)
    if task == "segmentation":  # per-pixel labels: class 0 is the background
        classes = ["background", *classes]
    layout = options.get("layout", "image")
    if layout not in ("image", "rows"):
        raise DatasetError(f"layout must be 'image' or 'rows' (each image row a sequence step), got {layout!r}")
    if layout == "rows":
        if task != "classification":
            raise DatasetError(f"layout 'rows' reads classification images as sequences; task is {task!r}")
        from .sequences import RowSequences

        info = DatasetInfo("shapes", len(classes), (height, channels * width), classes, task, mean, std)
        return RowSequences(dataset), info
    info = DatasetInfo("shapes", len(classes), (channels, height, width), classes, task, mean, std)
    return dataset, info


def _adding(split, size, seed, options) -> tuple[torch.utils.data.Dataset, DatasetInfo]:
    from .sequences import AddingProblem

    if size is not None:
        raise DatasetError(f"the adding problem has no image size (got size={size!r}): its length is `steps`")
    _only("adding", options, ("train_size", "val_size", "steps"), common=())
    _check_sizes(options)
    steps = options.get("steps", 100)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= 100_000:
        raise DatasetError(f"steps is the sequence length, an integer from 2 to 100,000, got {steps!r}")
    length = options.get(f"{split}_size") or (10_000 if split == "train" else 2_000)
    dataset = AddingProblem(split, length, steps=steps, seed=seed)
    return dataset, DatasetInfo("adding", 0, (steps, 2), [], "regression")


def preload(dataset: torch.utils.data.Dataset) -> None:
    """Bring into memory now what `dataset` would otherwise render or read on its first items
    (the shapes dataset renders its split on first use): a trainer calls it before timing its
    first epoch. Datasets with nothing to preload (and Subsets of them) are left as they are."""
    while isinstance(dataset, torch.utils.data.Subset):
        dataset = dataset.dataset
    load = getattr(dataset, "preload", None)
    if callable(load):
        load()


def detection_collate(batch: list) -> tuple[torch.Tensor, list[dict]]:
    """collate_fn for detection items: images stacked [B, C, H, W], targets kept as a list."""
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def check_compatible(spec, info: DatasetInfo, input_name: str | None = None) -> None:
    """Raise `compiler.SpecError` with located problems when `spec` (a Spec, an Analysis, a path or
    YAML text) cannot take `info`'s images or has another number of classes."""
    from .compat import check_compatible as _check

    _check(spec, info, input_name)
