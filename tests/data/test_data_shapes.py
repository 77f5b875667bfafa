"""The built-in `shapes` dataset: deterministic, disjoint splits, balanced, drawable, consistent targets."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from compiler.data import DatasetError, build_dataset, dataset_names, detection_collate
from compiler.data import shapes
from compiler.data.shapes import CLASSES, ShapesDataset, render


def small(split="train", **options):
    options.setdefault("train_size", 120)
    options.setdefault("val_size", 60)
    return build_dataset("shapes", split, progress=False, **options)


def digest(array) -> str:
    return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_names():
    assert dataset_names() == ["shapes", "adding", "mnist", "fashionmnist", "cifar10", "cifar100", "folder"]


def test_info_and_items():
    dataset, info = small()
    assert info.name == "shapes" and info.num_classes == 6 and info.classes == list(CLASSES)
    assert info.shape == (3, 32, 32) and info.task == "classification"
    assert len(dataset) == 120 and len(small("val")[0]) == 60
    x, label = dataset[7]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and isinstance(label, int)
    assert dataset[-1][1] == dataset[119][1]
    with pytest.raises(IndexError):
        dataset[120]


def test_defaults():
    dataset, _ = build_dataset("shapes", "train", precompute=False)
    assert len(dataset) == 10_000 and dataset.images is None
    assert len(build_dataset("shapes", "val", precompute=False)[0]) == 2_000


def test_same_index_same_image_in_any_order():
    a = [render(3, "train", i).image for i in (5, 9, 5)]
    assert np.array_equal(a[0], a[2])
    assert not np.array_equal(a[0], a[1])
    lazy = ShapesDataset("train", 40, seed=3, precompute=False)
    eager = ShapesDataset("train", 40, seed=3, precompute=True, progress=False)
    for i in (39, 0, 17):
        torch.testing.assert_close(lazy[i][0], eager[i][0], rtol=0, atol=0)
        assert lazy[i][1] == eager[i][1]


def test_seed_changes_the_images():
    assert not np.array_equal(render(0, "train", 4).image, render(1, "train", 4).image)


def test_train_and_val_are_disjoint():
    train = {digest(render(0, "train", i).image) for i in range(300)}
    val = {digest(render(0, "val", i).image) for i in range(300)}
    assert len(train) == 300 and len(val) == 300 and not train & val


def test_classes_are_balanced():
    dataset, _ = small(train_size=600)
    counts = np.bincount([dataset[i][1] for i in range(600)], minlength=6)
    assert counts.min() >= 90 and counts.max() <= 110
    scenes = [render(0, "train", i, 48, 48, objects=(1, 3)) for i in range(200)]
    labels = np.concatenate([s.labels for s in scenes])
    counts = np.bincount(labels, minlength=6)
    assert counts.min() > len(labels) / 6 * 0.6, counts


def test_normalised():
    dataset, info = small(train_size=300)
    x = torch.stack([dataset[i][0] for i in range(300)])
    assert x.mean().abs() < 0.15 and 0.85 < x.std() < 1.15
    assert info.mean == shapes.MEAN_RGB and info.std == shapes.STD_RGB
    back = x[0] * torch.tensor(info.std).view(3, 1, 1) + torch.tensor(info.mean).view(3, 1, 1)
    torch.testing.assert_close(back, dataset.raw(0)[0].float() / 255, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [32, 224])
def test_every_class_is_drawn(size):
    for label, name in enumerate(CLASSES):
        scene = render(0, "val", label, size, size)  # single objects: label = index % 6
        assert scene.labels.tolist() == [label], name
        assert scene.image.shape == (size, size, 3) and scene.image.dtype == np.uint8
        mask = scene.masks[0]
        area = mask.mean()
        assert 0.04 < area < 0.7, (name, area)
        inside = scene.image[mask].astype(float) @ shapes.LUMA
        outside = scene.image[~mask].astype(float) @ shapes.LUMA
        assert abs(inside.mean() - outside.mean()) > 0.15 * 255, name  # the shape stands out


def test_ring_has_a_hole_and_the_cross_arms():
    ring = render(0, "train", CLASSES.index("ring"), 64, 64).masks[0]
    x0, y0, x1, y1 = shapes.boxes_of(ring[None])[0].astype(int)
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    assert not ring[cy, cx] and ring.any()
    circle = render(0, "train", CLASSES.index("circle"), 64, 64).masks[0]
    x0, y0, x1, y1 = shapes.boxes_of(circle[None])[0].astype(int)
    assert circle[(y0 + y1) // 2, (x0 + x1) // 2]


def _mask_box(mask: torch.Tensor) -> list[float]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


@pytest.mark.parametrize("size", [32, 64])
def test_single_object_box_is_the_mask_extent(size):
    for i in range(30):
        scene = render(0, "train", i, size, size)
        assert scene.masks.shape == (1, size, size) and scene.masks[0].any()
        assert scene.boxes[0].tolist() == _mask_box(torch.from_numpy(scene.masks[0]))


def test_multi_object_scenes():
    dataset, info = small(size=64, objects=[2, 4], train_size=40)
    assert info.task == "detection" and info.shape == (3, 64, 64)
    counts = set()
    for i in range(len(dataset)):
        x, target = dataset[i]
        boxes, labels, masks = target["boxes"], target["labels"], target["masks"]
        n = len(labels)
        counts.add(n)
        assert 2 <= n <= 4
        assert x.shape == (3, 64, 64)
        assert boxes.dtype == torch.float32 and boxes.shape == (n, 4)
        assert labels.dtype == torch.int64 and ((labels >= 0) & (labels < 6)).all()
        assert masks.dtype == torch.uint8 and masks.shape == (n, 64, 64)
        assert (masks.sum(0) <= 1).all()  # visible parts: later objects cover earlier ones
        for box, mask in zip(boxes, masks):
            assert mask.sum() > 4
            assert box.tolist() == _mask_box(mask)
            assert box[2] > box[0] and box[3] > box[1]
    assert counts == {2, 3, 4}
    images, targets = detection_collate([dataset[0], dataset[1]])
    assert images.shape == (2, 3, 64, 64) and len(targets) == 2


def test_objects_mostly_apart():
    for i in range(30):
        scene = render(0, "train", i, 96, 96, objects=3)
        for mask in scene.masks:
            assert mask.sum() > 20


def test_one_object_detection():
    dataset, info = small(task="detection", train_size=10)
    x, target = dataset[3]
    assert info.task == "detection" and target["labels"].tolist() == [3 % 6]


def test_grayscale_and_non_square():
    dataset, info = small(channels=1, size=(24, 40))
    assert info.shape == (1, 24, 40) and len(info.mean) == 1
    assert dataset[0][0].shape == (1, 24, 40)
    rgb = render(0, "train", 0, 24, 40, channels=3).image.astype(float) @ shapes.LUMA
    grey = render(0, "train", 0, 24, 40, channels=1).image[..., 0].astype(float)
    assert np.abs(rgb - grey).mean() < 12  # the same scene, noise aside


def test_cache_round_trip(tmp_path, monkeypatch):
    first, _ = small(cache=tmp_path, train_size=50)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and "train" in files[0].name and not list(tmp_path.glob("*.tmp*"))
    expected = [first[i] for i in range(50)]

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered although the cache holds the split")

    monkeypatch.setattr(ShapesDataset, "render", no_rendering)
    second, _ = small(cache=tmp_path, train_size=50)
    for (a, la), (b, lb) in zip(expected, (second[i] for i in range(50))):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert la == lb
    monkeypatch.undo()
    # another size is another file; a damaged file is rendered again and replaced
    small(cache=tmp_path, train_size=50, size=40)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    files[0].write_bytes(b"garbage")
    third, _ = small(cache=tmp_path, train_size=50)
    torch.testing.assert_close(third[7][0], expected[7][0], rtol=0, atol=0)
    assert np.load(files[0])["images"].shape == (50, 32, 32, 3)


def test_detection_cache_round_trip(tmp_path):
    a, _ = small(cache=tmp_path, objects=3, size=48, train_size=12)
    b, _ = small(cache=tmp_path, objects=3, size=48, train_size=12)
    for i in range(12):
        ta, tb = a[i][1], b[i][1]
        for key in ("boxes", "labels", "masks"):
            torch.testing.assert_close(ta[key], tb[key], rtol=0, atol=0)


def test_dataloader_workers_give_the_same_batches():
    order = [int(i) for i in torch.randperm(96, generator=torch.Generator().manual_seed(1))]

    def batches(num_workers):
        dataset, _ = small(train_size=96)
        loader = torch.utils.data.DataLoader(dataset, batch_size=16, sampler=order, num_workers=num_workers)
        return list(loader), dataset

    main, main_dataset = batches(0)
    workers, worker_dataset = batches(2)
    assert main_dataset.images is not None  # the main process kept the split in memory
    assert worker_dataset.images is None  # the workers rendered their items themselves
    assert len(main) == len(workers) == 6
    for (xa, ya), (xb, yb) in zip(main, workers):
        torch.testing.assert_close(xa, xb, rtol=0, atol=0)
        assert torch.equal(ya, yb)


def test_option_errors():
    with pytest.raises(DatasetError, match="no option 'colour'"):
        build_dataset("shapes", "train", colour="red")
    with pytest.raises(DatasetError, match="did you mean 'train_size'"):
        build_dataset("shapes", "train", trainsize=10)
    with pytest.raises(DatasetError, match="needs task='detection'"):
        build_dataset("shapes", "train", objects=2, task="classification")
    with pytest.raises(DatasetError, match="objects"):
        build_dataset("shapes", "train", objects=0)
    with pytest.raises(DatasetError, match="size"):
        build_dataset("shapes", "train", size=4)
    with pytest.raises(DatasetError, match="train_size"):
        build_dataset("shapes", "train", train_size=0)


def test_render_speed_is_reported():
    """Not a benchmark: just that 32x32 rendering is in the right range (thousands per second)."""
    rate = shapes._benchmark(32, 200)
    assert rate > 300, rate
