"""compiler.detection.proposals on hand-computed boxes and IoUs, and the box coder against
torchvision's BoxCoder."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection._utils import BoxCoder

from compiler.detection.proposals import (box_targets, class_deltas, decode_boxes, jitter_boxes, random_boxes,
                                          recall, sample_rois, sliding_windows)


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_sliding_windows_grid_by_hand():
    # centres (4, 4), (12, 4), (4, 12), (12, 12) on a 16x16 image, 8x8 boxes
    assert torch.equal(sliding_windows(16, sizes=(8,), ratios=(1.0,), stride=8),
                       t([[0, 0, 8, 8], [8, 0, 16, 8], [0, 8, 8, 16], [8, 8, 16, 16]]))
    # ratio 4 (h / w): h = 8 * 2 = 16, w = 8 / 2 = 4; clipped at the border
    tall = sliding_windows((16, 16), sizes=(8,), ratios=(4.0,), stride=8)
    assert torch.equal(tall[0], t([2, 0, 6, 12]))
    assert torch.equal(sliding_windows((16, 16), sizes=(8,), ratios=(4.0,), stride=8, clip=False)[0], t([2, -4, 6, 12]))


def test_sliding_windows_counts_and_duplicates():
    # unclipped: 3 sizes x 3 ratios x an 8x8 grid of centres on 64x64 at stride 8
    assert sliding_windows(64, (16, 32, 48), (0.5, 1, 2), 8, clip=False).shape == (9 * 64, 4)
    # a 32-pixel box on a 16x16 image is the whole image wherever it is centred: one box left
    assert torch.equal(sliding_windows(16, sizes=(32,), ratios=(1.0,), stride=4), t([[0, 0, 16, 16]]))
    # non-rectangular image: rows follow the height, columns the width
    boxes = sliding_windows((8, 24), sizes=(8,), ratios=(1.0,), stride=8)
    assert boxes[:, 0].tolist() == [0, 8, 16] and boxes[:, 1].tolist() == [0, 0, 0]
    with pytest.raises(ValueError):
        sliding_windows(16, sizes=(8,), ratios=(1.0,), stride=0)


def test_recall_by_hand():
    gt = t([[0, 0, 10, 10], [20, 20, 30, 30]])
    proposals = t([[0, 0, 10, 5], [25, 20, 35, 30]])  # IoU 0.5 with the first; 50/150 with the second
    assert recall(proposals, gt, 0.5) == 0.5
    assert recall(proposals, gt, 0.3) == 1.0


def test_sample_rois_fast_rcnn_rule_by_hand():
    gt, labels = t([[0, 0, 10, 10]]), torch.tensor([2])
    proposals = t([[0, 0, 10, 10],     # IoU 1         -> foreground
                   [0, 0, 10, 5],      # IoU 50/100    -> foreground (>= 0.5)
                   [5, 0, 15, 10],     # IoU 50/150    -> background band [0.1, 0.5)
                   [0, 0, 2, 2],       # IoU 4/100     -> below 0.1: not used
                   [20, 20, 30, 30]])  # IoU 0         -> not used
    gen = torch.Generator().manual_seed(0)
    rois, lab, matched = sample_rois(proposals, gt, labels, count=4, fg_fraction=0.5, add_gt=False, generator=gen)
    assert lab.tolist() == [3, 3, 0, 0]           # class 2 -> label 3; 0 is background
    assert matched.tolist() == [0, 0, -1, -1]
    assert sorted(map(tuple, rois[:2].tolist())) == [(0, 0, 10, 5), (0, 0, 10, 10)]
    assert rois[2:].tolist() == [[5, 0, 15, 10]] * 2   # the only background, repeated
    # a quarter foreground of 8: 2 of the 2 positives, 6 background
    _, lab, _ = sample_rois(proposals, gt, labels, count=8, add_gt=False, generator=gen)
    assert lab.tolist() == [3, 3] + [0] * 6


def test_sample_rois_background_fallback_and_gt():
    gt, labels = t([[0, 0, 10, 10]]), torch.tensor([0])
    far = t([[20, 20, 30, 30], [40, 40, 50, 50]])  # IoU 0: nothing in [0.1, 0.5)
    rois, lab, matched = sample_rois(far, gt, labels, count=4, generator=torch.Generator().manual_seed(0))
    # the ground-truth box itself is the only positive (add_gt); background falls back to IoU < 0.5
    assert lab.tolist() == [1, 0, 0, 0] and matched.tolist() == [0, -1, -1, -1]
    assert rois[0].tolist() == [0, 0, 10, 10]
    assert {tuple(r) for r in rois[1:].tolist()} <= {(20, 20, 30, 30), (40, 40, 50, 50)}
    # no ground truth at all: everything is background
    _, lab, matched = sample_rois(far, t([]).reshape(0, 4), torch.tensor([], dtype=torch.long), count=3)
    assert lab.tolist() == [0, 0, 0] and matched.tolist() == [-1, -1, -1]


def test_sample_rois_jittered_gt_gives_positives():
    gt, labels = t([[10, 10, 30, 30], [40, 5, 60, 25]]), torch.tensor([4, 1])
    gen = torch.Generator().manual_seed(0)
    rois, lab, matched = sample_rois(sliding_windows(64, (8,), (1.0,), 16), gt, labels, count=16, add_gt=False,
                                     jitter=8, jitter_scale=0.1, image_size=64, generator=gen)
    assert (lab[:4] > 0).all()  # round(0.25 * 16) positives, all from the jittered copies
    assert set(lab[:4].tolist()) <= {5, 2}
    for roi, label, m in zip(rois[:4], lab[:4], matched[:4]):
        assert label == labels[m] + 1
        assert float(torch.tensor(_iou(roi, gt[m]))) >= 0.5


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return float(inter / (area(a) + area(b) - inter))


def test_jitter_boxes_bounds():
    box = t([[10, 20, 30, 60]])  # w 20, h 40, centre (20, 40)
    out = jitter_boxes(box, copies=200, scale=0.1, generator=torch.Generator().manual_seed(0))
    w, h = out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]
    cx, cy = (out[:, 0] + out[:, 2]) / 2, (out[:, 1] + out[:, 3]) / 2
    assert out.shape == (200, 4)
    assert ((cx - 20).abs() <= 2 + 1e-4).all() and ((cy - 40).abs() <= 4 + 1e-4).all()
    assert ((w >= 18 - 1e-4) & (w <= 22 + 1e-4)).all() and ((h >= 36 - 1e-4) & (h <= 44 + 1e-4)).all()
    assert torch.equal(jitter_boxes(box, copies=3, scale=0.0), box.repeat(3, 1))


def test_box_targets_by_hand():
    roi, gt = t([[0, 0, 10, 10]]), t([[2, 0, 12, 20]])
    # centres (5, 5) -> (7, 10); sizes 10x10 -> 10x20
    expected = t([[10 * 2 / 10, 10 * 5 / 10, 5 * math.log(1.0), 5 * math.log(2.0)]])
    torch.testing.assert_close(box_targets(roi, gt), expected)
    torch.testing.assert_close(box_targets(roi, gt, weights=(1, 1, 1, 1)), t([[0.2, 0.5, 0.0, math.log(2.0)]]))


def test_box_coder_matches_torchvision():
    gen = torch.Generator().manual_seed(0)
    rois = random_boxes(1, 50, 64, generator=gen, min_size=2)[0]
    gt = random_boxes(1, 50, 64, generator=gen, min_size=2)[0]
    coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    torch.testing.assert_close(box_targets(rois, gt), coder.encode_single(gt, rois))
    deltas = torch.randn(50, 4, generator=gen)
    torch.testing.assert_close(decode_boxes(deltas, rois), coder.decode_single(deltas, rois))
    torch.testing.assert_close(decode_boxes(box_targets(rois, gt), rois), gt, rtol=1e-4, atol=1e-4)


def test_class_deltas_picks_the_labelled_class():
    out = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 12)  # 2 rois, 3 classes incl. background
    assert class_deltas(out, torch.tensor([2, 0])).tolist() == [[8, 9, 10, 11], [12, 13, 14, 15]]


def test_random_boxes_are_valid():
    b = random_boxes(3, 100, (3, 20, 40), generator=torch.Generator().manual_seed(0), min_size=2)
    assert b.shape == (3, 100, 4)
    assert (b[..., 2] - b[..., 0] >= 2 - 1e-5).all() and (b[..., 3] - b[..., 1] >= 2 - 1e-5).all()
    assert (b[..., 0] >= 0).all() and (b[..., 2] <= 40 + 1e-4).all() and (b[..., 3] <= 20 + 1e-4).all()


def test_default_windows_recall_on_shapes_scenes():
    """docs/detection.md's claim (0.92 at IoU 0.5 on 200 scenes), on the first 50 scenes."""
    from compiler.data import build_dataset

    dataset, _ = build_dataset("shapes", "val", size=64, task="detection", objects=(1, 4), val_size=50)
    gts = [dataset[i][1]["boxes"] for i in range(50)]
    windows = sliding_windows(64)
    assert len(windows) == 572
    found = sum(recall(windows, g, 0.5) * len(g) for g in gts) / sum(len(g) for g in gts)
    assert 0.85 <= found < 1.0
