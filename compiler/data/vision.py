"""torchvision's MNIST, FashionMNIST, CIFAR-10 and CIFAR-100, and image folders.

torchvision reads (and, when allowed, downloads) the files; the images are then served from
its in-memory arrays by `ArrayDataset`, which converts channels, resizes and normalises with
tensor operations (no PIL per item). Image folders go through torchvision's ImageFolder.
"""

from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from .info import DatasetError, DatasetInfo

LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Source:
    cls: str
    folder: str
    """Where torchvision looks, under root."""
    files: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    urls: tuple[str, ...]
    archive: str = ""
    """For CIFAR: the .tar.gz that holds `folder`."""


SOURCES = {
    "mnist": Source("MNIST", "MNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
                    (0.1307,), (0.3081,), ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                                           "http://yann.lecun.com/exdb/mnist/")),
    "fashionmnist": Source("FashionMNIST", "FashionMNIST/raw",
                           ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte"),
                           (0.2860,), (0.3530,), ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)),
    "cifar10": Source("CIFAR10", "cifar-10-batches-py",
                      ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                       "batches.meta"),
                      (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                      ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",), "cifar-10-python.tar.gz"),
    "cifar100": Source("CIFAR100", "cifar-100-python", ("train", "test", "meta"),
                       (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
                       ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",), "cifar-100-python.tar.gz"),
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _stats(mean: tuple, std: tuple, channels: int) -> tuple[tuple, tuple]:
    """Normalisation for `channels` from a dataset's own: grey -> RGB repeats it, RGB -> grey
    weighs it like the luminance (an approximation for the std)."""
    if len(mean) == channels:
        return tuple(mean), tuple(std)
    if channels == 3:
        return tuple(mean) * 3, tuple(std) * 3
    return (round(sum(w * m for w, m in zip(LUMA, mean)), 4),), (round(sum(w * s for w, s in zip(LUMA, std)), 4),)


class ArrayDataset(torch.utils.data.Dataset):
    """Items (normalised float image [C, H, W], label) from uint8 images held in memory."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, *, channels: int,
                 size: tuple[int, int] | None, mean: tuple, std: tuple, transform=None):
        if images.ndim == 3:
            images = images.unsqueeze(-1)  # [N, H, W] -> [N, H, W, 1]
        self.images = images  # uint8 [N, H, W, C], as torchvision keeps them
        self.targets = targets.long()
        self.channels = channels
        self.size = size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        x = self.images[index].permute(2, 0, 1).float().div_(255.0)
        if x.shape[0] != self.channels:
            if self.channels == 3:
                x = x.expand(3, -1, -1)
            else:
                x = (x * torch.tensor(LUMA).view(3, 1, 1)).sum(0, keepdim=True)
        if self.size is not None and tuple(x.shape[1:]) != self.size:
            x = F.interpolate(x[None], size=self.size, mode="bilinear", align_corners=False, antialias=True)[0]
        x = (x - self.mean) / self.std
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[index])


def build_torchvision(name: str, split: str, root: Path, size, channels, download: bool,
                      transform=None) -> tuple[torch.utils.data.Dataset, DatasetInfo]:
    import torchvision.datasets as tvd

    src = SOURCES[name]
    cls = getattr(tvd, src.cls)
    folder = root / src.folder
    if src.cls in ("MNIST", "FashionMNIST"):
        _gunzip(folder, src.files)
    try:
        raw = cls(str(root), train=split == "train", download=download)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ValueError...
        raise DatasetError(_missing(name, src, root, download, exc)) from exc
    images = raw.data if isinstance(raw.data, torch.Tensor) else torch.from_numpy(np.asarray(raw.data))
    targets = torch.as_tensor(raw.targets)
    native = 1 if images.ndim == 3 else images.shape[-1]
    channels = channels or native
    mean, std = _stats(src.mean, src.std, channels)
    shape = (channels,) + (size or tuple(images.shape[1:3]))
    dataset = ArrayDataset(images, targets, channels=channels, size=size, mean=mean, std=std, transform=transform)
    classes = [str(c) for c in raw.classes]
    return dataset, DatasetInfo(name, len(classes), shape, classes, "classification", mean, std)


def _gunzip(folder: Path, files: tuple[str, ...]) -> None:
    """torchvision's MNIST reads the uncompressed idx files: unpack X.gz when only it is there."""
    for file in files:
        target, packed = folder / file, folder / f"{file}.gz"
        if not target.exists() and packed.is_file():
            tmp = target.with_name(f".{file}.{os.getpid()}.tmp")
            try:
                with gzip.open(packed, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(tmp, target)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise DatasetError(f"cannot unpack {packed}: {exc}") from exc


def _offline(exc: BaseException) -> bool:
    import socket
    import urllib.error

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (urllib.error.URLError, socket.timeout, ConnectionError, socket.gaierror)):
            return True
        if isinstance(exc, RuntimeError) and "Error downloading" in str(exc):
            return True  # MNIST gathers each mirror's failure into one RuntimeError
        exc = exc.__cause__ or exc.__context__
    return False


def _missing(name: str, src: Source, root: Path, download: bool, exc: BaseException) -> str:
    folder = root / src.folder
    present = [f for f in src.files if (folder / f).is_file() or (folder / f"{f}.gz").is_file()]
    where = f"{folder}{os.sep} (looked for {', '.join(src.files)})"
    if src.archive:
        manual = (f"download {src.urls[0]} on a machine with internet access and unpack it into {root} "
                  f"(`tar xzf {src.archive} -C {root}`), so that {folder}{os.sep}{src.files[0]} exists")
    else:
        manual = (f"download {', '.join(f + '.gz' for f in src.files)} from {src.urls[0]} on a machine with "
                  f"internet access and put them (gzipped or not) into {folder}{os.sep}")
    manual += "; or point root= / $BLOCKGRAPH_DATA at a folder that holds them"
    if len(present) == len(src.files):
        return (f"cannot read dataset {name!r} from {folder}: {type(exc).__name__}: {exc}. The files are there but "
                f"incomplete or altered (torchvision checks their size/md5); delete them and download again, "
                f"or {manual}")
    missing = ", ".join(f for f in src.files if f not in present)
    if not download:
        return (f"dataset {name!r} is not in {where}; missing: {missing}. Downloading is off (download=False): "
                f"{manual}")
    if _offline(exc):
        return (f"dataset {name!r} is not in {where} and downloading it failed: this machine seems to be offline "
                f"({_short(exc)}). To use it offline, {manual}")
    return (f"dataset {name!r} is not in {where} and downloading it failed ({_short(exc)}). "
            f"{manual[0].upper()}{manual[1:]}")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


# -- image folders --------------------------------------------------------------------------

class PrepareImage:
    """PIL image -> normalised float tensor [C, H, W] of a fixed size (picklable, for workers)."""

    def __init__(self, size: tuple[int, int], channels: int, mean: tuple, std: tuple, transform=None):
        self.size, self.channels, self.transform = size, channels, transform
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, image):
        from PIL import Image

        image = image.convert("L" if self.channels == 1 else "RGB")
        if image.size != (self.size[1], self.size[0]):
            image = image.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
        if array.ndim == 2:
            array = array[..., None]
        x = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)
        x = (x - self.mean) / self.std
        if self.transform is not None:
            x = self.transform(x)
        return x


VAL_NAMES = ("val", "valid", "validation")


class ClassFolder(ImageFolder):
    """An ImageFolder with a fixed list of classes, so that a val/ folder missing a class keeps the
    label numbers of train/."""

    def __init__(self, root, classes: list[str], transform=None):
        self.fixed_classes = list(classes)
        super().__init__(str(root), transform=transform, allow_empty=True)

    def find_classes(self, directory):
        return list(self.fixed_classes), {c: i for i, c in enumerate(self.fixed_classes)}


def _class_dirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def build_folder(split: str, root, size, channels, seed: int, val_fraction: float = 0.2, mean=None, std=None,
                 transform=None) -> tuple[torch.utils.data.Dataset, DatasetInfo]:
    from PIL import Image

    if root is None:
        raise DatasetError("dataset 'folder' needs root=: a folder with one sub-folder of images per class "
                           "(optionally inside train/ and val/)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist" if not root.exists() else
                           f"image folder {root} is not a folder")
    if not (isinstance(val_fraction, (int, float)) and 0 <= val_fraction < 1):
        raise DatasetError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    val_dir = next((root / v for v in VAL_NAMES if (root / v).is_dir()), None)
    train_dir = root / "train" if (root / "train").is_dir() else root
    separate = train_dir != root and val_dir is not None
    classes = _class_dirs(train_dir)
    if not classes:
        raise DatasetError(f"image folder {train_dir} has no class sub-folders: put the images of each class "
                           f"into their own folder, e.g. {train_dir / 'cat'}{os.sep}1.png and {train_dir / 'dog'}"
                           f"{os.sep}1.png")
    if separate:
        extra = sorted(set(_class_dirs(val_dir)) - set(classes))
        if extra:
            raise DatasetError(f"{val_dir} has classes that {train_dir} lacks: {', '.join(extra)}")
    folder = val_dir if separate and split == "val" else train_dir
    try:
        dataset = ClassFolder(folder, classes)
    except OSError as exc:
        raise DatasetError(f"cannot list image folder {folder}: {exc}") from exc
    samples = dataset.samples
    if not samples:
        raise DatasetError(f"image folder {folder} has no images in its class folders ({', '.join(classes[:5])}"
                           f"{', ...' if len(classes) > 5 else ''}); readable files end in "
                           f"{', '.join(IMG_EXTENSIONS)}")
    if size is None:
        try:
            with Image.open(samples[0][0]) as first:
                size = (first.height, first.width)
        except OSError as exc:
            raise DatasetError(f"cannot read image {samples[0][0]}: {exc}") from exc
    channels = channels or 3
    if mean is None or std is None:
        mean, std = _stats(IMAGENET_MEAN, IMAGENET_STD, channels)
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != channels or len(std) != channels:
        raise DatasetError(f"mean and std need {channels} values (one per channel), got {mean} and {std}")
    dataset.transform = PrepareImage(size, channels, mean, std, transform)
    if not separate:
        indices = _split(dataset.targets, split, val_fraction, seed)
        if not indices:
            raise DatasetError(f"the {split} split of image folder {folder} is empty (val_fraction={val_fraction}, "
                               f"{len(samples)} images)")
        dataset = torch.utils.data.Subset(dataset, indices)
    info = DatasetInfo("folder", len(classes), (channels, *size), classes, "classification", mean, std)
    return dataset, info


def _split(targets: list[int], split: str, fraction: float, seed: int) -> list[int]:
    """A deterministic split stratified by class: each class gives round(n * fraction) images
    to val (at least one when it has two or more and fraction > 0)."""
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(t, []).append(i)
    chosen = []
    for label, items in sorted(by_class.items()):
        order = np.random.default_rng([int(seed) & 0xFFFFFFFF, label]).permutation(len(items))
        n_val = int(round(len(items) * fraction))
        if fraction > 0 and n_val == 0 and len(items) >= 2:
            n_val = 1
        picked = order[:n_val] if split == "val" else order[n_val:]
        chosen.extend(items[i] for i in picked)
    return sorted(chosen)
