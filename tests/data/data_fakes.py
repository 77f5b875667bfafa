"""Tiny copies of MNIST, FashionMNIST, CIFAR-10 and CIFAR-100 in the exact on-disk formats
torchvision reads, and small image folders: the data tests never download anything.

Image i of a split is a constant grey level `level(i)` (so a test can tell which image it got)
with label i % classes. torchvision checks the md5 of every CIFAR file against the real
archives; `patch_cifar_md5` points the classes' md5 tables at the tiny files (monkeypatched,
for one test only).
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
SIZES = {"train": 30, "val": 12}  # per split (CIFAR-10: train spread over five batches of 6)


def level(i: int) -> int:
    return (i * 37 + 11) % 256


def _grey(count: int, h: int, w: int, c: int | None = None) -> np.ndarray:
    shape = (count, h, w) if c is None else (count, h, w, c)
    return np.stack([np.full(shape[1:], level(i), dtype=np.uint8) for i in range(count)])


def _idx(array: np.ndarray) -> bytes:
    """The idx ("SN3 Pascal Vincent") format: magic 0x0000 08 <ndim>, big-endian dims, uint8 data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_mnist(root: Path, folder: str = "MNIST", gz: bool = False) -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in MNIST_FILES.items():
        n = SIZES[split]
        for name, array in ((images, _grey(n, 28, 28)), (labels, np.arange(n) % 10)):
            data = _idx(np.asarray(array))
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (raw / name).write_bytes(data)
    return raw


def _pickle(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """[N, 32, 32, 3] -> CIFAR's rows: [N, 3072], the red plane, then green, then blue."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), -1)


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR100_CLASSES = [f"class{i:02d}" for i in range(100)]


def make_cifar10(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train = _grey(SIZES["train"], 32, 32, 3)
    per = SIZES["train"] // 5
    for b in range(5):
        rows = range(b * per, (b + 1) * per)
        _pickle(folder / f"data_batch_{b + 1}", {"batch_label": f"training batch {b + 1} of 5",
                                                  "labels": [i % 10 for i in rows],
                                                  "data": _cifar_rows(train[rows.start:rows.stop])})
    val = _grey(SIZES["val"], 32, 32, 3)
    _pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": [i % 10 for i in range(len(val))],
                                    "data": _cifar_rows(val)})
    _pickle(folder / "batches.meta", {"label_names": CIFAR10_CLASSES, "num_vis": 3072, "num_cases_per_batch": per})
    return folder


def make_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, split in (("train", "train"), ("test", "val")):
        n = SIZES[split]
        _pickle(folder / name, {"data": _cifar_rows(_grey(n, 32, 32, 3)), "fine_labels": [i % 100 for i in range(n)],
                                "coarse_labels": [i % 20 for i in range(n)]})
    _pickle(folder / "meta", {"fine_label_names": CIFAR100_CLASSES, "coarse_label_names": [f"c{i}" for i in range(20)]})
    return folder


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def patch_cifar_md5(monkeypatch, root: Path) -> None:
    """Point torchvision's md5 tables at the tiny files (torchvision itself is not changed)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    for cls in (CIFAR10, CIFAR100):
        folder = root / cls.base_folder
        if not folder.is_dir():
            continue
        for attr in ("train_list", "test_list"):
            monkeypatch.setattr(cls, attr, [[name, _md5(folder / name)] for name, _ in getattr(cls, attr)])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(folder / cls.meta["filename"])})


FOLDER_COLOURS = {"blue": (20, 40, 220), "green": (30, 200, 40), "red": (220, 30, 30)}


def make_folder(root: Path, per_class: int = 5, size: tuple[int, int] = (24, 20)) -> Path:
    """root/<colour>/<i>.png: images of one colour per class, `size` = (width, height)."""
    for name, colour in FOLDER_COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.empty((size[1], size[0], 3), dtype=np.uint8)
            pixels[:] = colour
            pixels[0, 0] = (i * 10, i * 10, i * 10)  # every file differs
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root
