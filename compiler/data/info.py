"""What a dataset says about itself (`DatasetInfo`) and the error of one that cannot be built:
apart from compiler.data's builders so that the dataset modules (vision, shapes) can use them
without importing the package that imports them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset gives: its classes and the per-sample shape of its images."""

    name: str
    num_classes: int
    shape: tuple[int, ...]
    """Per-sample shape: an image's, channels first, e.g. (3, 32, 32), or a sequence's, time first,
    e.g. (100, 2)."""
    classes: list[str]
    task: str = "classification"
    """"classification" (items are (image, label)), "detection" (items are (image, target)),
    "segmentation" (items are (image, mask int64 [H, W]); class 0 is the background) or
    "regression" (items are (input, target float [outputs]); no classes)."""
    mean: tuple[float, ...] = field(default=(), compare=False)
    """Per-channel mean the images were normalised with: image * std + mean gives [0, 1] back."""
    std: tuple[float, ...] = field(default=(), compare=False)


class DatasetError(RuntimeError):
    """A dataset cannot be built: unknown name or option, files missing, an empty folder..."""
