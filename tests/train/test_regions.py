"""The region task (R-CNN, Fast R-CNN, Mask R-CNN specs): regions sampled and labelled by their
overlap with the shapes scenes' objects, Fast R-CNN's multi-task loss checked against a
hand-written one, detections of an oracle scoring mAP 1, and short training runs of the zoo's
three specs (at a fraction of their width) that report accuracy, box and mask mAP."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F
from torchvision.ops import box_iou

import compiler
from compiler.data import build_dataset, detection_collate
from compiler.detection.proposals import box_targets
from compiler.train.predictions import validation_predictions
from compiler.train.tasks import DetectionPredictions, RegionTask, task_class

ROOT = Path(__file__).resolve().parents[2]
SPECS = {name: ROOT / "specs" / f"{name}.yaml" for name in ("rcnn_shapes", "fast_rcnn_shapes", "mask_rcnn_shapes")}
SMALL = {"width": 8, "fc": 32, "rois": 16}  # seconds on a CPU
SMALL_MASK = {**SMALL, "mask_width": 8, "mask_convs": 1}


def _task(name: str, vars=None) -> RegionTask:
    spec = compiler.load(SPECS[name], vars=vars)
    return RegionTask(6, spec, compiler.analyze(spec))


def _scenes(n: int = 8):
    data, _ = build_dataset("shapes", "val", size=64, val_size=n, task="detection", objects=[1, 3], progress=False)
    return detection_collate([data[i] for i in range(n)])


@pytest.mark.parametrize("name", list(SPECS))
def test_specs_that_take_boxes_learn_regions(name):
    spec = compiler.load(SPECS[name])
    assert task_class(spec, compiler.analyze(spec)) is RegionTask


def test_sampled_regions_are_labelled_by_their_overlap_with_the_objects():
    task = _task("fast_rcnn_shapes")
    images, targets = _scenes()
    batch = task._sample(targets, images.device, torch.Generator().manual_seed(0))
    assert batch["rois"].shape == (8, task.count, 4) and batch["labels"].shape == (8 * task.count,)
    for i, t in enumerate(targets):
        rois = batch["rois"][i]
        labels = batch["labels"][i * task.count:(i + 1) * task.count]
        iou = box_iou(rois, t["boxes"])  # [R, objects]
        best, which = iou.max(dim=1)
        fg = labels > 0
        assert fg.any() and (~fg).any()
        assert (best[fg] >= 0.5).all() and (best[~fg] < 0.5).all()
        assert torch.equal(labels[fg], t["labels"][which[fg]] + 1)
        assert torch.equal(batch["gt_boxes"][i * task.count:(i + 1) * task.count][fg], t["boxes"][which[fg]])


def test_the_loss_is_fast_rcnns_multi_task_loss():
    task = _task("fast_rcnn_shapes", {"rois": 8})
    images, targets = _scenes(2)
    batch = task._sample(targets, images.device, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    cls, box = torch.randn(16, 7, generator=g), torch.randn(16, 28, generator=g)
    batch["outputs"] = (cls, box)
    labels = batch["labels"]
    expected = F.cross_entropy(cls, labels)
    rois = batch["rois"].reshape(-1, 4)
    smooth = 0.0
    for row in range(16):  # by hand: the true class's 4 deltas of each foreground row
        k = int(labels[row])
        if k == 0:
            continue
        goal = box_targets(rois[row:row + 1], batch["gt_boxes"][row:row + 1])[0]
        diff = (box[row, 4 * k:4 * k + 4] - goal).abs()
        beta = 1 / 9
        smooth += torch.where(diff < beta, 0.5 * diff ** 2 / beta, diff - 0.5 * beta).sum()
    expected = expected + smooth / 16
    assert task.train_loss(batch, targets, None).item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_mask_target_is_the_objects_mask_cut_to_the_region():
    task = _task("mask_rcnn_shapes", {"rois": 8})
    images, targets = _scenes(4)
    batch = task._sample(targets, images.device, torch.Generator().manual_seed(3))
    fg = torch.nonzero(batch["labels"] > 0).flatten()
    goal = task._mask_targets(batch, fg, torch.zeros(len(fg), 28, 28))
    assert goal.shape == (len(fg), 28, 28) and goal.min() >= 0 and goal.max() <= 1
    for j, row in enumerate(fg.tolist()):  # against a crop + resize done here with interpolate
        x0, y0, x1, y1 = batch["rois"].reshape(-1, 4)[row].tolist()
        mask = batch["gt_masks"][row]
        ix0, iy0, ix1, iy1 = int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))
        if ix1 - ix0 < 8 or iy1 - iy0 < 8 or min(ix0, iy0) < 0 or max(ix1, iy1) > 64:
            continue
        crop = F.interpolate(mask[iy0:iy1, ix0:ix1][None, None], size=(28, 28), mode="bilinear")[0, 0]
        inter = ((crop > 0.5) & (goal[j] > 0.5)).sum()
        union = ((crop > 0.5) | (goal[j] > 0.5)).sum()
        assert union == 0 or inter / union > 0.8


class _Oracle(torch.nn.Module):
    """A 'model' that knows the answer: the true class (score 1) and the exact deltas for every
    proposal overlapping an object by IoU >= 0.5, background for the rest."""

    def __init__(self, targets):
        super().__init__()
        self.targets = targets

    def forward(self, images, rois):
        cls_rows, box_rows = [], []
        for i, r in enumerate(rois):
            t = self.targets[i]
            best, which = box_iou(r, t["boxes"]).max(dim=1)
            k = torch.where(best >= 0.5, t["labels"][which] + 1, 0)
            cls = torch.full((len(r), 7), -20.0)
            cls[torch.arange(len(r)), k] = 20.0
            box = torch.zeros(len(r), 7, 4)
            box[torch.arange(len(r)), k] = box_targets(r, t["boxes"][which])
            cls_rows.append(cls)
            box_rows.append(box.reshape(len(r), 28))
        return torch.cat(cls_rows), torch.cat(box_rows)


def test_detections_of_an_oracle_score_map_one_and_nms_keeps_one_box_per_object():
    task = _task("fast_rcnn_shapes")
    images, targets = _scenes(6)
    found = task.detect(_Oracle(targets), images)
    for f, t in zip(found, targets):
        assert len(f["boxes"]) == len(t["boxes"])  # every proposal on an object gives its box: NMS keeps one
    task.evaluate_start(torch.device("cpu"))
    task.evaluate_update({"detections": found, "labels": torch.zeros(1)}, targets)
    assert task.evaluate_finish()["map50"] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["rcnn_shapes", "fast_rcnn_shapes"])
def test_a_region_run_reports_accuracy_and_map(name, tmp_path):
    result = compiler.train(SPECS[name], quiet=True, vars=SMALL, epochs=1, train_size=32, val_size=8,
                            batch_size=8, optimizer="adamw", lr=1e-3, run_dir=tmp_path / "run")
    row = result.final
    assert 0 <= row["val_top1"] <= 1 and 0 <= row["train_top1"] <= 1
    assert 0 <= row["val_map50"] <= 1 and row["val_mask_map50"] is None


def test_a_mask_rcnn_run_reports_mask_map_and_gives_masks_to_draw(tmp_path):
    result = compiler.train(SPECS["mask_rcnn_shapes"], quiet=True, vars=SMALL_MASK, epochs=1, train_size=32,
                            val_size=8, batch_size=8, optimizer="adamw", lr=1e-3, run_dir=tmp_path / "run")
    assert 0 <= result.final["val_mask_map50"] <= 1 and 0 <= result.final["val_mask_map"] <= 1
    preds = validation_predictions(tmp_path / "run", n=3)
    assert isinstance(preds, DetectionPredictions) and preds.images.shape == (3, 3, 64, 64)
    for found in preds.predictions:
        assert found["masks"].dtype == torch.bool and found["masks"].shape[1:] == (64, 64)
        assert len(found["masks"]) == len(found["boxes"])


def test_class_outputs_that_do_not_fit_the_dataset_are_reported_at_the_var(tmp_path):
    with pytest.raises(compiler.SpecError) as err:
        compiler.train(SPECS["fast_rcnn_shapes"], quiet=True, vars={**SMALL, "classes": 4}, epochs=1,
                       train_size=16, val_size=8, batch_size=8, run_dir=tmp_path / "run")
    problem = err.value.first
    assert "output 'cls'" in problem.message and "[5]" in problem.message
    assert "the override --var classes=4 sets it: set it to 6 or leave it out" in problem.message
    line = SPECS["fast_rcnn_shapes"].read_text().splitlines()[problem.loc.line - 1]
    assert line.strip().startswith("classes:")
