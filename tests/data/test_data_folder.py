"""Image folders: one sub-folder per class, split by val_fraction or by train/ and val/."""

from __future__ import annotations

import pytest
import torch

from compiler.data import DatasetError, build_dataset

from data_fakes import FOLDER_COLOURS, make_folder

CLASSES = sorted(FOLDER_COLOURS)


def _colour(x: torch.Tensor, info) -> list[int]:
    """The mean colour of an item, back in 0..255."""
    back = x * torch.tensor(info.std).view(-1, 1, 1) + torch.tensor(info.mean).view(-1, 1, 1)
    return [round(v) for v in (back.mean((1, 2)) * 255).tolist()]


def test_one_folder_split_by_fraction(image_folder):
    train, info = build_dataset("folder", "train", root=image_folder)
    val, _ = build_dataset("folder", "val", root=image_folder)
    assert info.classes == CLASSES and info.num_classes == 3 and info.shape == (3, 20, 24)
    assert len(train) == 12 and len(val) == 3  # one of five per class
    train_files = {train.dataset.samples[i][0] for i in train.indices}
    val_files = {val.dataset.samples[i][0] for i in val.indices}
    assert not train_files & val_files and len(train_files | val_files) == 15
    assert sorted(val[i][1] for i in range(3)) == [0, 1, 2]  # stratified
    for i in range(len(train)):
        x, label = train[i]
        assert x.shape == (3, 20, 24)
        expected = FOLDER_COLOURS[CLASSES[label]]
        assert all(abs(a - b) <= 6 for a, b in zip(_colour(x, info), expected))


def test_split_is_deterministic_and_seeded(image_folder):
    def files(seed, fraction=0.4):
        dataset, _ = build_dataset("folder", "val", root=image_folder, seed=seed, val_fraction=fraction)
        return [dataset.dataset.samples[i][0] for i in dataset.indices]

    assert files(0) == files(0)
    assert len(files(0)) == 6
    assert any(files(s) != files(0) for s in range(1, 6))


def test_train_and_val_folders(tmp_path):
    make_folder(tmp_path / "train", per_class=4)
    make_folder(tmp_path / "val", per_class=2)
    (tmp_path / "val" / "red").rename(tmp_path / "red_gone")  # val lacks a class: labels keep train's numbers
    train, info = build_dataset("folder", "train", root=tmp_path)
    val, _ = build_dataset("folder", "val", root=tmp_path)
    assert len(train) == 12 and len(val) == 4 and info.classes == CLASSES
    assert sorted({val[i][1] for i in range(4)}) == [CLASSES.index("blue"), CLASSES.index("green")]


def test_size_and_channels(image_folder):
    dataset, info = build_dataset("folder", "train", root=image_folder, size=16, channels=1)
    assert info.shape == (1, 16, 16) and len(info.mean) == 1
    assert dataset[0][0].shape == (1, 16, 16)


def test_workers_can_load_it(image_folder):
    dataset, _ = build_dataset("folder", "train", root=image_folder, size=8)
    a = torch.cat([x for x, _ in torch.utils.data.DataLoader(dataset, batch_size=4)])
    b = torch.cat([x for x, _ in torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2)])
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="needs root="):
        build_dataset("folder", "train")
    with pytest.raises(DatasetError, match="does not exist"):
        build_dataset("folder", "train", root=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class sub-folders"):
        build_dataset("folder", "train", root=tmp_path / "empty")
    (tmp_path / "no_images" / "cat").mkdir(parents=True)
    (tmp_path / "no_images" / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match="has no images"):
        build_dataset("folder", "train", root=tmp_path / "no_images")
    with pytest.raises(DatasetError, match="val_fraction"):
        build_dataset("folder", "val", root=tmp_path / "empty", val_fraction=1.5)
