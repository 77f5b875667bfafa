"""The shapes dataset's batched items and its preload: what the trainer relies on to keep data
work off its timed loop gives exactly the items one index at a time gives."""

from __future__ import annotations

import torch

from compiler.data import build_dataset, preload
from compiler.data.shapes import MEAN_RGB, STD_RGB, ShapesDataset


def _by_hand(dataset: ShapesDataset, index: int) -> torch.Tensor:
    """(pixel / 255 - mean) / std per channel, from the raw uint8 image."""
    image, _ = dataset.raw(index)
    mean = torch.tensor(MEAN_RGB).view(3, 1, 1)
    std = torch.tensor(STD_RGB).view(3, 1, 1)
    return (image.float() / 255.0 - mean) / std


def test_batched_items_equal_single_items_and_the_formula():
    dataset = ShapesDataset("train", 50, seed=2, precompute=True, progress=False)
    indices = [7, 0, 49, 7, -1]
    batch = dataset.__getitems__(indices)
    assert len(batch) == len(indices)
    for index, (image, label) in zip(indices, batch):
        single_image, single_label = dataset[index]
        assert torch.equal(image, single_image) and label == single_label and isinstance(label, int)
        torch.testing.assert_close(image, _by_hand(dataset, index), rtol=1e-6, atol=1e-6)


def test_data_loader_batches_are_the_same_with_and_without_the_batched_path():
    dataset = ShapesDataset("train", 40, seed=1, precompute=True, progress=False)

    class OneByOne(torch.utils.data.Dataset):
        def __len__(self):
            return len(dataset)

        def __getitem__(self, index):
            return dataset[index]

    order = [3, 9, 1, 0, 39, 20, 5, 6]
    fast = list(torch.utils.data.DataLoader(dataset, batch_size=4, sampler=order))
    slow = list(torch.utils.data.DataLoader(OneByOne(), batch_size=4, sampler=order))
    assert len(fast) == len(slow) == 2
    for (x, y), (x0, y0) in zip(fast, slow):
        assert x.shape == (4, 3, 32, 32) and torch.equal(x, x0) and torch.equal(y, y0)


def test_batched_items_of_a_lazy_split_and_of_detection_scenes_go_one_by_one():
    lazy = ShapesDataset("train", 30, seed=0, precompute=False)
    batch = lazy.__getitems__([4, 2])
    assert lazy.images is None  # precompute=False never keeps the split
    assert torch.equal(batch[1][0], lazy[2][0]) and batch[1][1] == lazy[2][1]
    scenes = ShapesDataset("train", 10, seed=0, objects=(1, 2), detection=True, precompute=True, progress=False)
    image, target = scenes.__getitems__([3])[0]
    assert torch.equal(image, scenes[3][0]) and torch.equal(target["boxes"], scenes[3][1]["boxes"])


def test_preload_renders_a_split_that_would_be_kept_and_leaves_a_lazy_one():
    kept, _ = build_dataset("shapes", "train", train_size=20, progress=False)
    assert kept.images is None  # rendered on first use...
    preload(kept)
    assert kept.images is not None and kept.images.shape == (20, 3, 32, 32)  # ...or when preloaded
    lazy, _ = build_dataset("shapes", "train", train_size=20, precompute=False, progress=False)
    preload(lazy)
    assert lazy.images is None


def test_preload_reaches_through_subsets_and_ignores_other_datasets():
    inner = ShapesDataset("val", 12, progress=False)
    preload(torch.utils.data.Subset(torch.utils.data.Subset(inner, [1, 2, 3]), [0]))
    assert inner.images is not None
    preload(torch.utils.data.TensorDataset(torch.zeros(3, 1)))  # nothing to do, no error
