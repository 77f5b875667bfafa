"""MNIST, FashionMNIST, CIFAR-10 and CIFAR-100 from tiny local copies in torchvision's formats."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
import torch

from compiler.data import DatasetError, build_dataset

from data_fakes import CIFAR10_CLASSES, CIFAR100_CLASSES, SIZES, level, make_mnist

CASES = [  # name, native shape, classes
    ("mnist", (1, 28, 28), 10),
    ("fashionmnist", (1, 28, 28), 10),
    ("cifar10", (3, 32, 32), 10),
    ("cifar100", (3, 32, 32), 100),
]


def _denormalise(x: torch.Tensor, info) -> torch.Tensor:
    return x * torch.tensor(info.std).view(-1, 1, 1) + torch.tensor(info.mean).view(-1, 1, 1)


@pytest.mark.parametrize("name, shape, classes", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("split", ["train", "val"])
def test_reads_the_torchvision_format(tiny_data, name, shape, classes, split):
    dataset, info = build_dataset(name, split, root=tiny_data, download=False)
    assert len(dataset) == SIZES[split]
    assert info.name == name and info.shape == shape and info.num_classes == classes == len(info.classes)
    assert info.task == "classification"
    for i in (0, 1, len(dataset) - 1):
        x, label = dataset[i]
        assert x.dtype == torch.float32 and tuple(x.shape) == shape
        assert isinstance(label, int) and label == i % classes
        torch.testing.assert_close(_denormalise(x, info), torch.full(shape, level(i) / 255), atol=1e-5, rtol=0)


def test_class_names(tiny_data):
    assert build_dataset("cifar10", "val", root=tiny_data, download=False)[1].classes == CIFAR10_CLASSES
    assert build_dataset("cifar100", "val", root=tiny_data, download=False)[1].classes == CIFAR100_CLASSES
    assert build_dataset("mnist", "val", root=tiny_data, download=False)[1].classes[3] == "3 - three"


def test_mnist_idx_files_gzipped_or_not(tmp_path):
    make_mnist(tmp_path / "plain")
    make_mnist(tmp_path / "packed", gz=True)
    a, _ = build_dataset("mnist", "train", root=tmp_path / "plain", download=False)
    b, _ = build_dataset("mnist", "train", root=tmp_path / "packed", download=False)
    torch.testing.assert_close(a[5][0], b[5][0])


def test_size_and_channels_convert(tiny_data):
    dataset, info = build_dataset("mnist", "train", root=tiny_data, download=False, size=32, channels=3)
    assert info.shape == (3, 32, 32) and len(info.mean) == 3
    x, _ = dataset[4]
    assert x.shape == (3, 32, 32)
    torch.testing.assert_close(_denormalise(x, info), torch.full((3, 32, 32), level(4) / 255), atol=1e-4, rtol=0)
    dataset, info = build_dataset("cifar10", "val", root=tiny_data, download=False, size=(16, 24), channels=1)
    assert info.shape == (1, 16, 24) and dataset[0][0].shape == (1, 16, 24)
    torch.testing.assert_close(_denormalise(dataset[2][0], info), torch.full((1, 16, 24), level(2) / 255),
                               atol=1e-4, rtol=0)


def test_env_var_is_the_default_root(tiny_data, monkeypatch):
    monkeypatch.setenv("BLOCKGRAPH_DATA", str(tiny_data))
    dataset, _ = build_dataset("fashionmnist", "val", download=False)
    assert len(dataset) == SIZES["val"]


def test_transform_option(tiny_data):
    plain, _ = build_dataset("cifar10", "train", root=tiny_data, download=False)
    flipped, _ = build_dataset("cifar10", "train", root=tiny_data, download=False, transform=_flip)
    torch.testing.assert_close(flipped[3][0], plain[3][0].flip(-1))


def _flip(x):
    return x.flip(-1)


def test_missing_files_without_download(tmp_path):
    with pytest.raises(DatasetError) as err:
        build_dataset("cifar10", "train", root=tmp_path, download=False)
    message = str(err.value)
    assert "'cifar10'" in message and str(tmp_path / "cifar-10-batches-py") in message
    assert "download=False" in message and "cifar-10-python.tar.gz" in message


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST/raw"), ("cifar100", "cifar-100-python")])
def test_offline_download_says_so(tmp_path, monkeypatch, name, folder):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DatasetError) as err:
        build_dataset(name, "train", root=tmp_path / "data", download=True)
    message = str(err.value)
    assert f"{name!r}" in message and "offline" in message
    assert str(tmp_path / "data" / folder) in message
    assert "BLOCKGRAPH_DATA" in message


def test_altered_files_are_reported(tiny_data):
    (tiny_data / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="altered"):
        build_dataset("cifar10", "val", root=tiny_data, download=False)


def test_unknown_names_and_options(tiny_data):
    with pytest.raises(DatasetError, match="did you mean 'cifar10'"):
        build_dataset("cifar", "train")
    with pytest.raises(DatasetError, match="no option 'val_fraction'"):
        build_dataset("mnist", "train", root=tiny_data, download=False, val_fraction=0.1)
    with pytest.raises(DatasetError, match="split"):
        build_dataset("mnist", "test", root=tiny_data, download=False)
    with pytest.raises(DatasetError, match="channels"):
        build_dataset("mnist", "train", root=tiny_data, download=False, channels=2)


def test_train_and_val_size_take_a_seeded_subset(tiny_data):
    full, _ = build_dataset("mnist", "train", root=tiny_data, download=False)
    part, _ = build_dataset("mnist", "train", root=tiny_data, download=False, train_size=10, val_size=5)
    again, _ = build_dataset("mnist", "train", root=tiny_data, download=False, train_size=10, seed=0)
    other, _ = build_dataset("mnist", "train", root=tiny_data, download=False, train_size=10, seed=1)
    assert len(part) == 10 and part.indices == again.indices != other.indices
    assert part.indices == sorted(part.indices)
    torch.testing.assert_close(part[0][0], full[part.indices[0]][0])
    assert len(build_dataset("mnist", "val", root=tiny_data, download=False, val_size=5)[0]) == 5
    with pytest.raises(DatasetError, match="train_size 31 is more than the 30 images"):
        build_dataset("mnist", "train", root=tiny_data, download=False, train_size=31)
