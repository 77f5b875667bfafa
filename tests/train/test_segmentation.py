"""Segmentation: the U-Net of the zoo against a hand-written one, the shapes masks, and the
trainer learning per-pixel classes from a spec whose output is [classes, H, W] (pixel-wise
cross-entropy, mIoU checked against a confusion matrix counted here with numpy)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import compiler
from compiler.data import DatasetInfo, build_dataset
from compiler.train.predictions import validation_predictions
from compiler.train.tasks import ClassificationTask, SegmentationTask, task_class
from support import copy_by_order

ROOT = Path(__file__).resolve().parents[2]
UNET = ROOT / "specs" / "unet_small_shapes.yaml"

TINY_SEG = """\
blockgraph: 1
name: tiny_seg
inputs:
  image: [3, 16, 16]
vars: {classes: 7, width: 16}
defaults:
  conv: {k: 3, norm: batch, act: relu}
nodes:
  - {id: enc, op: conv, out: $width}
  - {id: down, op: maxpool}
  - {id: mid, op: conv, out: $width * 2}
  - {id: mid2, op: conv, out: $width * 2, dilation: 2}
  - {id: up, op: deconv, out: $width}
  - {id: cat, op: concat, in: [enc, up]}
  - {id: dec, op: conv, out: $width}
  - {id: logits, op: conv, out: $classes, k: 1, norm: null, act: null}
train:
  train_size: 512
  val_size: 128
  batch_size: 32
  epochs: 4
  optimizer: adamw
  lr: 0.003
  weight_decay: 0.0001
  schedule: onecycle
  device: cpu
"""


# -- the zoo spec against an independent module --------------------------------------------------

class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class HandUNet(nn.Module):
    """Ronneberger et al.'s U-Net with padded convs, 3 poolings, 2x2 up-convolutions, skip concats."""

    def __init__(self, channels: int = 3, classes: int = 7, w: int = 16):
        super().__init__()
        self.enc1, self.enc2, self.enc3 = DoubleConv(channels, w), DoubleConv(w, 2 * w), DoubleConv(2 * w, 4 * w)
        self.bottom = DoubleConv(4 * w, 8 * w)
        self.up3, self.dec3 = nn.ConvTranspose2d(8 * w, 4 * w, 2, 2), DoubleConv(8 * w, 4 * w)
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, 2), DoubleConv(4 * w, 2 * w)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * w, w, 2, 2), DoubleConv(2 * w, w)
        self.head = nn.Conv2d(w, classes, 1)

    def forward(self, x):
        pool = nn.functional.max_pool2d
        e1 = self.enc1(x)
        e2 = self.enc2(pool(e1, 2))
        e3 = self.enc3(pool(e2, 2))
        b = self.bottom(pool(e3, 2))
        d3 = self.dec3(torch.cat([e3, self.up3(b)], 1))
        d2 = self.dec2(torch.cat([e2, self.up2(d3)], 1))
        d1 = self.dec1(torch.cat([e1, self.up1(d2)], 1))
        return self.head(d1)


def test_unet_small_shapes_is_a_unet():
    spec = compiler.load(UNET)
    analysis = compiler.analyze(spec)
    reference = HandUNet()
    assert analysis.params == sum(p.numel() for p in reference.parameters()) == 482_839
    assert analysis.graph.shapes["logits"] == (7, 64, 64)
    assert task_class(spec, analysis) is SegmentationTask
    ours = compiler.build(spec, seed=0)
    copy_by_order(ours, reference)
    x = torch.randn(2, 3, 64, 64)
    ours.eval(), reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)
    assert "U-Net" in UNET.read_text().split("blockgraph:")[0]  # the header comment explains the idea


def test_classification_specs_stay_classification():
    spec = compiler.load(ROOT / "specs" / "default.yaml")
    assert task_class(spec, compiler.analyze(spec)) is ClassificationTask


# -- the masks ---------------------------------------------------------------------------------------

def test_shapes_segmentation_masks_are_the_object_masks():
    seg, info = build_dataset("shapes", "val", size=32, val_size=8, objects=[1, 3], task="segmentation", seed=3)
    det, _ = build_dataset("shapes", "val", size=32, val_size=8, objects=[1, 3], task="detection", seed=3)
    assert info.task == "segmentation" and info.num_classes == 7 and info.classes[0] == "background"
    for i in range(8):
        x, mask = seg[i]
        x_det, target = det[i]
        assert torch.equal(x, x_det) and mask.shape == (32, 32) and mask.dtype == torch.int64
        expected = np.zeros((32, 32), np.int64)
        for label, m in zip(target["labels"].numpy(), target["masks"].numpy()):
            expected[m.astype(bool)] = label + 1
        assert np.array_equal(mask.numpy(), expected)
        assert (mask > 0).any() and (mask == 0).any()


def test_a_dataset_without_masks_is_refused_for_segmentation():
    mnist = DatasetInfo("mnist", 10, (1, 28, 28), [str(i) for i in range(10)])
    assert "dataset 'mnist' has no per-pixel masks" in SegmentationTask.dataset_problem(mnist)
    assert ClassificationTask.dataset_problem(mnist) is None


# -- training -------------------------------------------------------------------------------------

def mean_iou(preds) -> float:
    """The mean over classes (those present or predicted) of TP / (TP + FP + FN), from a
    confusion matrix of every pixel."""
    confusion = np.zeros((7, 7), np.int64)
    np.add.at(confusion, (preds.masks.numpy().ravel(), preds.predictions.numpy().ravel()), 1)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    return float((tp[union > 0] / union[union > 0]).mean())


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("seg") / "out"
    lines: list[str] = []

    result = compiler.train(TINY_SEG, run_dir=str(run_dir), quiet=True, on_epoch=lambda row: lines.append(row))
    return result, lines


def test_a_short_segmentation_run_learns_and_reports_miou(seg_run):
    result, epochs = seg_run
    rows = result.history
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] - 0.5
    assert all(r["val_top5"] is None and r["train_top5"] is None for r in rows)
    # calling every pixel background scores that class's IoU (its pixel share) over 7 classes
    val, _ = build_dataset("shapes", "val", size=16, val_size=128, task="segmentation")
    background = float(torch.stack([m for _, m in val]).eq(0).float().mean())
    assert rows[-1]["val_miou"] > background / 7 + 0.02  # measured 0.152 vs 0.112 (the U-Net: benchmarks/)
    assert 0 < rows[-1]["val_top1"] <= 1  # pixel accuracy
    assert result.best["val_miou"] == max(r["val_miou"] for r in rows)
    with open(result.run_dir / "metrics.csv") as fh:
        table = list(csv.DictReader(fh))
    assert float(table[-1]["val_miou"]) == pytest.approx(rows[-1]["val_miou"])
    assert [e["val_miou"] for e in epochs] == [r["val_miou"] for r in rows]


def test_val_miou_is_the_mean_iou_of_the_saved_model(seg_run):
    """validation_predictions (for the designer) gives every validation image's predicted mask;
    a confusion matrix counted here gives the mIoU the run reported."""
    result, _ = seg_run
    preds = validation_predictions(result.run_dir, n=128)
    assert preds.images.shape == (128, 3, 16, 16) and preds.images.dtype == torch.uint8
    assert preds.predictions.shape == preds.masks.shape == (128, 16, 16)
    assert preds.classes[0] == "background" and len(preds.classes) == 7
    assert mean_iou(preds) == pytest.approx(result.final["val_miou"], abs=1e-5)
    pixel_acc = float((preds.masks == preds.predictions).float().mean())
    assert pixel_acc == pytest.approx(result.final["val_top1"], abs=1e-5)


def test_the_progress_line_shows_miou(tmp_path, capsys):
    compiler.train(TINY_SEG, run_dir=str(tmp_path / "r"), epochs=1, train_size=64, val_size=32)
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("epoch 1/1"))
    assert " mIoU " in line and "top5 -" in line
    assert "done: 1 epochs; val mIoU " in out


def test_a_wrong_class_count_points_at_the_var(tmp_path):
    path = tmp_path / "seg.yaml"
    path.write_text(TINY_SEG.replace("classes: 7", "classes: 6"))
    with pytest.raises(compiler.SpecError) as info:
        compiler.train(path, run_dir=str(tmp_path / "r"), quiet=True, epochs=1, train_size=64, val_size=32)
    problem = info.value.first
    assert problem.loc.line == 5 and problem.path == "vars.classes"
    assert "the spec's output has 6 classes per pixel, the dataset 'shapes' has 7 (background, circle" in problem.message
    assert "set vars.classes to 7" in problem.message


def test_unet_small_shapes_one_epoch_smoke(tmp_path):
    """CI's smoke run of the zoo U-Net: one epoch on a few images (the full run is
    benchmarks/train_unet.py)."""
    result = compiler.train(UNET, run_dir=str(tmp_path / "unet"), quiet=True, epochs=1, train_size=64, val_size=16,
                            batch_size=16, optimizer="adamw", lr=0.003, device="cpu")
    row = result.final
    assert row["epoch"] == 1 and row["step"] == 4
    assert 0 <= row["val_miou"] <= 1 and np.isfinite(row["train_loss"])


def test_two_processes_report_the_miou_of_the_whole_validation_split(tmp_path):
    """Under torchrun each process validates half the images; the reported mIoU must be the
    one of all of them (torchmetrics combines the processes' counts), i.e. what the saved model
    scores on the whole split counted here."""
    import json
    import subprocess
    import sys

    from train_support import env, free_port

    spec = tmp_path / "seg.yaml"
    spec.write_text(TINY_SEG)
    run_dir = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
               str(free_port()), "-m", "compiler", "train", str(spec), "--epochs", "1", "--batch-size", "32",
               "--set", "train_size=128", "--set", "val_size=96", "--run-dir", str(run_dir)]
    done = subprocess.run(command, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr
    assert "(2 processes x 16)" in done.stdout and " mIoU " in done.stdout
    row = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    preds = validation_predictions(run_dir, n=96)
    assert row["val_miou"] == pytest.approx(mean_iou(preds), abs=1e-5)
