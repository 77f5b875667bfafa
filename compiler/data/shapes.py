"""The built-in `shapes` dataset: coloured shapes drawn procedurally, nothing to download.

Every image is a pure function of (seed, split, index): `render` derives its own numpy
Generator from those three numbers, so the same index gives the same pixels in any process,
in any order, with no shared random state (DataLoader workers render independently). The
train and val splits differ in the split id of the seed, so they never share an image.

A scene is a textured background (flat, gradient, stripes or smooth noise between two close
colours), one or more shapes in a colour whose luminance contrasts with the background
(so the grayscale variant stays readable), and mild pixel noise. Shapes are drawn with
PIL.ImageDraw on a supersampled 'L' image: its downsampled copy is the object's
anti-aliased alpha (used to composite the colour), its threshold the binary mask, and the
mask's extent the box.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "star", "cross", "ring")
SPLIT_IDS = {"train": 0, "val": 1}
VERSION = 1
"""Bump when the drawing changes, so that caches written by an older version are not reused."""

# Per-channel statistics of the normalisation, measured once over 4,000 train images of
# 32x32 (seed 0; `python -m compiler.data.shapes --stats`). They hardly depend on the size.
MEAN_RGB = (0.5045, 0.4998, 0.4940)
STD_RGB = (0.2936, 0.3028, 0.2879)
MEAN_GRAY = (0.5005,)
STD_GRAY = (0.2167,)

SIZE_RANGE = (0.4, 0.8)
"""Diameter of a single shape's circumscribed circle, as a fraction of the image's shorter side."""
MIN_CONTRAST = 0.3
"""Least luminance difference between a shape's colour and either background colour."""
BACKGROUNDS = ("flat", "gradient", "stripes", "noise")
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class Scene:
    """One rendered image and what is in it."""

    image: np.ndarray
    """uint8 [H, W, C]."""
    labels: np.ndarray
    """int64 [N]: class index of each object."""
    masks: np.ndarray
    """bool [N, H, W]: the visible pixels of each object (later objects cover earlier ones)."""
    boxes: np.ndarray
    """float32 [N, 4]: x0, y0, x1, y1 of each mask's pixels, in pixel-edge coordinates (a
    one-pixel object at column 3 spans x 3..4)."""


# -- drawing ------------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates scaled to [0, 1] along the shorter side."""
    side = min(height, width)
    ys = (np.arange(height, dtype=np.float32) + 0.5) / side
    xs = (np.arange(width, dtype=np.float32) + 0.5) / side
    return ys[:, None], xs[None, :]


def _supersampling(height: int, width: int) -> int:
    side = max(height, width)
    return 4 if side <= 64 else 2 if side <= 256 else 1


def _luma(colours: np.ndarray) -> np.ndarray:
    return colours @ LUMA


def _background(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A float32 [H, W, 3] texture in [0, 1] and its two colours [2, 3]."""
    c1 = rng.uniform(0.0, 1.0, 3).astype(np.float32)
    c2 = np.clip(c1 + rng.uniform(-0.25, 0.25, 3), 0.0, 1.0).astype(np.float32)
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    ys, xs = _grid(height, width)
    if kind == "flat":
        return np.broadcast_to(c1, (height, width, 3)).copy(), np.stack([c1, c1])
    if kind in ("gradient", "stripes"):
        angle = rng.uniform(0.0, 2 * math.pi)
        along = xs * math.cos(angle) + ys * math.sin(angle)
        if kind == "gradient":
            t = along - along.min()
            t /= max(float(t.max()), 1e-6)
        else:
            period = rng.uniform(0.12, 0.35)
            t = 0.5 + 0.5 * np.sin(along * (2 * math.pi / period) + rng.uniform(0.0, 2 * math.pi))
    else:  # smooth noise: a coarse random grid, upsampled bicubically
        cells = int(rng.integers(3, 7))
        coarse = rng.uniform(0.0, 1.0, (cells, cells)).astype(np.float32)
        t = np.asarray(Image.fromarray(coarse, mode="F").resize((width, height), Image.Resampling.BICUBIC))
        t = np.clip(t, 0.0, 1.0)
    t = t.astype(np.float32)[..., None]
    return c1 + (c2 - c1) * t, np.stack([c1, c2])


def _colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A colour whose luminance differs from both background colours by MIN_CONTRAST."""
    candidates = rng.uniform(0.0, 1.0, (16, 3)).astype(np.float32)
    contrast = np.abs(_luma(candidates)[:, None] - _luma(background)[None, :]).min(axis=1)
    good = np.flatnonzero(contrast >= MIN_CONTRAST)
    if len(good):
        return candidates[good[0]]
    # background of middling luminance and unlucky draws: black or white, whichever is farther
    dark = float(_luma(background).mean()) > 0.5
    return np.full(3, 0.05 if dark else 0.95, dtype=np.float32)


def _polygon(kind: str, rng: np.random.Generator, cx: float, cy: float, r: float, angle: float) -> list:
    if kind == "square":
        points = [(r, a) for a in (math.pi / 4 + k * math.pi / 2 for k in range(4))]
    elif kind == "triangle":
        points = [(r, k * 2 * math.pi / 3) for k in range(3)]
    elif kind == "star":
        inner = r * rng.uniform(0.38, 0.5)
        points = [(r if k % 2 == 0 else inner, k * math.pi / 5) for k in range(10)]
    elif kind == "cross":
        w = r * rng.uniform(0.26, 0.36)
        corners = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r),
                   (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
        points = [(math.hypot(x, y), math.atan2(y, x)) for x, y in corners]
    else:
        raise ValueError(kind)
    return [(cx + d * math.cos(a + angle), cy + d * math.sin(a + angle)) for d, a in points]


def _alpha(kind: str, rng: np.random.Generator, cx: float, cy: float, r: float, angle: float,
           height: int, width: int) -> np.ndarray:
    """The shape's anti-aliased coverage, float32 [H, W] in [0, 1]."""
    ss = _supersampling(height, width)
    canvas = Image.new("L", (width * ss, height * ss), 0)
    draw = ImageDraw.Draw(canvas)
    X, Y, R = cx * ss, cy * ss, r * ss
    if kind == "circle":
        draw.ellipse((X - R, Y - R, X + R, Y + R), fill=255)
    elif kind == "ring":
        inner = R * rng.uniform(0.5, 0.65)
        draw.ellipse((X - R, Y - R, X + R, Y + R), fill=255)
        draw.ellipse((X - inner, Y - inner, X + inner, Y + inner), fill=0)
    else:
        draw.polygon(_polygon(kind, rng, X, Y, R, angle), fill=255)
    if ss > 1:
        canvas = canvas.resize((width, height), Image.Resampling.BOX)
    return np.asarray(canvas, dtype=np.float32) * (1.0 / 255.0)


def _place(rng: np.random.Generator, count: int, height: int, width: int) -> list[tuple[float, float, float]]:
    """(cx, cy, r) of `count` shapes inside the image; several shapes keep mostly apart (their
    circumscribed circles overlap by at most 15% of the sum of their radii)."""
    side = min(height, width)
    low, high = SIZE_RANGE
    if count > 1:
        low, high = max(0.16, low / math.sqrt(count)), max(0.22, high / math.sqrt(count))
    placed: list[tuple[float, float, float]] = []
    for _ in range(count):
        scale = 1.0
        candidate = None
        for attempt in range(60):
            if attempt and attempt % 20 == 0:
                scale *= 0.8
            r = max(1.5, rng.uniform(low, high) * side * scale / 2)
            cx = rng.uniform(r, max(r, width - r))
            cy = rng.uniform(r, max(r, height - r))
            candidate = (cx, cy, r)
            if all(math.hypot(cx - x, cy - y) >= 0.85 * (r + q) for x, y, q in placed):
                break
        placed.append(candidate)
    return placed


def render(seed: int, split: str, index: int, height: int = 32, width: int = 32, objects: int | tuple = 1,
           channels: int = 3) -> Scene:
    """Draw image `index` of a split: a pure function of its arguments."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, SPLIT_IDS[split], int(index)])
    if isinstance(objects, tuple):
        count = int(rng.integers(objects[0], objects[1] + 1))
        labels = rng.integers(0, len(CLASSES), count)
    elif objects == 1:
        count = 1
        labels = np.array([index % len(CLASSES)])  # exactly balanced classes
    else:
        count = int(objects)
        labels = rng.integers(0, len(CLASSES), count)
    image, bg_colours = _background(rng, height, width)
    masks = []
    for label, (cx, cy, r) in zip(labels, _place(rng, count, height, width)):
        kind = CLASSES[label]
        if kind == "triangle":
            r *= 1.1  # the thinnest shape: a little larger, corners may touch the border
        alpha = _alpha(kind, rng, cx, cy, r, rng.uniform(0.0, 2 * math.pi), height, width)
        colour = _colour(rng, bg_colours)
        image += alpha[..., None] * (colour - image)
        mask = alpha >= 0.5
        for earlier in masks:
            earlier &= ~mask
        masks.append(mask)
    sigma = rng.uniform(0.0, 0.05)
    if channels == 1:
        image = (image @ LUMA)[..., None]
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    image += noise * np.float32(sigma)
    pixels = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    keep = [i for i, m in enumerate(masks) if m.any()]
    masks_arr = np.stack([masks[i] for i in keep]) if keep else np.zeros((0, height, width), bool)
    return Scene(pixels, np.asarray(labels, dtype=np.int64)[keep], masks_arr, boxes_of(masks_arr))


def boxes_of(masks: np.ndarray) -> np.ndarray:
    """float32 [N, 4] pixel-edge boxes (x0, y0, x1, y1) of bool masks [N, H, W]."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if len(rows):
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


# -- the dataset --------------------------------------------------------------------------

MATERIALIZE_LIMIT = 768 * 2**20
"""A split whose uint8 pixels fit in this many bytes is kept in memory after its first use."""


class ShapesDataset(torch.utils.data.Dataset):
    """A split of the shapes dataset. Items are (image, label) for classification,
    (image, {"boxes", "labels", "masks"}) for detection and (image, mask) for segmentation (mask:
    int64 [H, W], 0 = background, 1 + class elsewhere); images are normalised float CHW.

    Images are rendered on demand. In the main process, the first item asked for renders the
    whole split into one uint8 tensor (when it fits in MATERIALIZE_LIMIT, or `precompute=True`)
    so later epochs only index memory; DataLoader workers never do that on their own (each
    would render everything), they render their items or use the copy the main process made
    before they started. Both give the same tensors.
    """

    def __init__(self, split: str, length: int, *, height: int = 32, width: int = 32, seed: int = 0,
                 objects: int | tuple = 1, channels: int = 3, detection: bool = False, segmentation: bool = False,
                 cache: str | os.PathLike | None = None, precompute: bool | None = None, transform=None,
                 progress: bool = True):
        if split not in SPLIT_IDS:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.split, self.length, self.seed = split, int(length), int(seed)
        self.height, self.width, self.channels = int(height), int(width), int(channels)
        self.objects = objects
        self.segmentation = bool(segmentation)
        self.detection = bool(detection) or self.segmentation  # a segmentation mask is drawn from the object masks
        self.transform = transform
        self.progress = progress
        mean, std = (MEAN_GRAY, STD_GRAY) if channels == 1 else (MEAN_RGB, STD_RGB)
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        self.images: torch.Tensor | None = None  # uint8 [N, C, H, W] once materialised
        self.targets: list | None = None  # per image (labels, boxes, masks) once materialised
        self.labels: torch.Tensor | None = None
        nbytes = self.length * self.channels * self.height * self.width
        self.precompute = nbytes <= MATERIALIZE_LIMIT if precompute is None else bool(precompute)
        self.cache_file = Path(cache) / self.cache_name() if cache is not None else None
        if self.cache_file is not None or precompute:
            self.materialize()

    def __len__(self) -> int:
        return self.length

    def cache_name(self) -> str:
        objects = f"{self.objects[0]}-{self.objects[1]}" if isinstance(self.objects, tuple) else self.objects
        return (f"shapes-v{VERSION}-{self.split}-seed{self.seed}-n{self.length}-{self.height}x{self.width}"
                f"-c{self.channels}-o{objects}{'-det' if self.detection else ''}.npz")

    def render(self, index: int) -> Scene:
        return render(self.seed, self.split, index, self.height, self.width, self.objects, self.channels)

    # -- whole split in memory --

    def materialize(self) -> "ShapesDataset":
        """Render the whole split into memory (or load it from the cache file); idempotent."""
        if self.images is not None:
            return self
        if self.cache_file is not None and self.cache_file.exists():
            try:
                self._load(self.cache_file)
                return self
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                pass  # a damaged or foreign file: render again and replace it
        images = np.empty((self.length, self.height, self.width, self.channels), dtype=np.uint8)
        labels, boxes, masks, counts = [], [], [], []
        start = time.perf_counter()
        with _progress(self.length, f"rendering shapes/{self.split}", self.progress) as bar:
            for i in range(self.length):
                scene = self.render(i)
                images[i] = scene.image
                labels.append(scene.labels)
                counts.append(len(scene.labels))
                if self.detection:
                    boxes.append(scene.boxes)
                    masks.append(scene.masks)
                bar.update(1)
        self.render_seconds = time.perf_counter() - start
        arrays = {"images": images, "labels": np.concatenate(labels), "counts": np.asarray(counts, np.int64)}
        if self.detection:
            arrays["boxes"] = np.concatenate(boxes)
            arrays["masks"] = np.concatenate(masks)
        self._adopt(arrays)
        if self.cache_file is not None:
            _save_atomic(self.cache_file, arrays)
        return self

    def _load(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        expected = (self.length, self.height, self.width, self.channels)
        if arrays["images"].shape != expected or arrays["counts"].shape != (self.length,):
            raise ValueError(f"{path}: holds {arrays['images'].shape}, expected {expected}")
        if self.detection and "masks" not in arrays:
            raise ValueError(f"{path}: no masks")
        self._adopt(arrays)

    def _adopt(self, arrays: dict[str, np.ndarray]) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(arrays["images"].transpose(0, 3, 1, 2)))
        counts = arrays["counts"]
        if not self.detection:
            self.labels = torch.from_numpy(arrays["labels"].astype(np.int64))
            return
        offsets = np.concatenate([[0], np.cumsum(counts)])
        labels = torch.from_numpy(arrays["labels"].astype(np.int64))
        boxes = torch.from_numpy(arrays["boxes"].astype(np.float32))
        masks = torch.from_numpy(arrays["masks"].astype(np.uint8))
        self.targets = [(labels[a:b], boxes[a:b], masks[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]

    # -- items --

    def preload(self) -> None:
        """Render the split now (or load its cache) when it would be kept in memory anyway: a
        trainer calls it before its clock starts, so the first epoch does not render (2,048
        images of 32x32: 0.9 s of CPU, a tenth of specs/default.yaml's first epoch on one
        thread) and data-loader workers started later share the main process's copy instead of
        rendering their items."""
        if self.precompute and torch.utils.data.get_worker_info() is None:
            self.materialize()

    def _raw(self, index: int):
        if self.images is None and self.precompute and torch.utils.data.get_worker_info() is None:
            self.materialize()
        if self.images is not None:
            image = self.images[index]
            if not self.detection:
                return image, int(self.labels[index])
            labels, boxes, masks = self.targets[index]
            return image, {"boxes": boxes.clone(), "labels": labels.clone(), "masks": masks.clone()}
        scene = self.render(index)
        image = torch.from_numpy(scene.image).permute(2, 0, 1)
        if not self.detection:
            return image, int(scene.labels[0])
        return image, {"boxes": torch.from_numpy(scene.boxes), "labels": torch.from_numpy(scene.labels),
                       "masks": torch.from_numpy(scene.masks.astype(np.uint8))}

    def _item(self, index: int):
        image, target = self._raw(index)
        if self.segmentation:
            target = semantic_mask(target["labels"], target["masks"], self.height, self.width)
        return image, target

    def raw(self, index: int):
        """The item with its uint8 CHW image (not normalised), e.g. to show it."""
        return self._item(_check_index(index, self.length))

    def __getitem__(self, index: int):
        image, target = self._item(_check_index(index, self.length))
        x = self._normalise(image.float())
        if self.transform is not None:
            x = self.transform(x)
        return x, target

    def __getitems__(self, indices: list[int]) -> list:
        """A batch's items at once (the DataLoader asks for them so): for a classification split
        in memory, one gather and one normalisation for the batch instead of one per image
        (the same pixels, element by element); otherwise item by item."""
        if self.images is None and self.precompute and torch.utils.data.get_worker_info() is None:
            self.materialize()
        if self.images is None or self.detection or self.transform is not None:
            return [self[i] for i in indices]
        index = torch.tensor([_check_index(i, self.length) for i in indices], dtype=torch.int64)
        images = self._normalise(self.images[index].float())
        return list(zip(images.unbind(0), self.labels[index].tolist()))

    def _normalise(self, image: torch.Tensor) -> torch.Tensor:
        """float pixels in [0, 255] -> (x / 255 - mean) / std, in place; [C, H, W] or [N, C, H, W]."""
        return image.div_(255.0).sub_(self.mean).div_(self.std)


def semantic_mask(labels: torch.Tensor, masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """int64 [H, W]: 0 where no object is, 1 + the class of the object covering a pixel elsewhere
    (the object masks do not overlap: later objects were cut out of earlier ones)."""
    out = torch.zeros(height, width, dtype=torch.int64)
    for label, mask in zip(labels.tolist(), masks):
        out[mask.bool()] = label + 1
    return out


def _check_index(index, length: int) -> int:
    index = int(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} is out of range for a split of {length} images")
    return index


class _progress:
    """A tqdm bar that appears only when the work takes more than a second."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="img", delay=1.0, leave=False)

    def __enter__(self):
        return self

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the .npz next to its final name, then rename: readers see all of it or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp.npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _stats(count: int = 4000, size: int = 32) -> None:
    for channels in (3, 1):
        images = np.stack([render(0, "train", i, size, size, 1, channels).image for i in range(count)])
        pixels = images.reshape(-1, channels).astype(np.float64) / 255.0
        print(f"channels={channels}: mean={tuple(np.round(pixels.mean(0), 4))} std={tuple(np.round(pixels.std(0), 4))}")


def _benchmark(size: int = 32, count: int = 2000) -> float:
    start = time.perf_counter()
    for i in range(count):
        render(0, "train", i, size, size)
    return count / (time.perf_counter() - start)


if __name__ == "__main__":
    import sys

    if "--stats" in sys.argv:
        _stats()
    else:
        for size in (32, 64, 224):
            print(f"{size}x{size}: {_benchmark(size, 2000 if size <= 64 else 300):,.0f} images/s")
