"""Fixtures of the data tests: tiny torchvision datasets and an image folder (see data_fakes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_fakes import make_cifar10, make_cifar100, make_folder, make_mnist, patch_cifar_md5


@pytest.fixture
def tiny_data(tmp_path, monkeypatch) -> Path:
    """A data root holding all four torchvision datasets (MNIST gzipped, the others plain)."""
    root = tmp_path / "datasets"
    make_mnist(root, "MNIST", gz=True)
    make_mnist(root, "FashionMNIST")
    make_cifar10(root)
    make_cifar100(root)
    patch_cifar_md5(monkeypatch, root)
    return root


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return make_folder(tmp_path / "images")
