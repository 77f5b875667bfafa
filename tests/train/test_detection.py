"""Detection training: the trainer learns YOLO v1 from a spec ending in `yolo_head` (its loss,
mAP from torchmetrics over the validation split), reports located errors when the spec and the
dataset disagree, and gives a UI the boxes a trained run predicts."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

import compiler
from compiler.data import DatasetInfo, build_dataset
from compiler.detection import yolo
from compiler.train.predictions import validation_predictions
from compiler.train.tasks import DetectionPredictions, YoloTask, task_class

ROOT = Path(__file__).resolve().parents[2]
YOLO = ROOT / "specs" / "yolov1_shapes.yaml"
SMALL = {"width": 8}  # the zoo's architecture at a quarter of its width: seconds on a CPU


def test_a_spec_ending_in_yolo_head_learns_detection():
    spec = compiler.load(YOLO)
    assert task_class(spec, compiler.analyze(spec)) is YoloTask


def test_a_dataset_without_boxes_is_refused_with_the_option_that_gives_them():
    mnist = DatasetInfo("mnist", 10, (1, 28, 28), [str(i) for i in range(10)], "classification")
    problem = YoloTask.dataset_problem(mnist)
    assert "dataset 'mnist' has no boxes" in problem and "task: detection" in problem


def _perfect(targets, layout) -> torch.Tensor:
    t = yolo.encode(targets, layout)
    pred = torch.zeros(len(targets), layout.grid, layout.grid, layout.depth)
    pred[..., 0:5] = t[..., 0:5]
    pred[..., 5 * layout.boxes:] = t[..., 5:]
    return pred


def test_validation_map_is_one_for_perfect_predictions_and_falls_for_shifted_boxes():
    """The task's evaluation path (decode at a low threshold, torchmetrics over the split) on
    real scenes: the encoded truth scores 1; boxes moved by half their width miss IoU 0.5."""
    spec = compiler.load(YOLO)
    task = YoloTask(6, spec, compiler.analyze(spec))
    data, _ = build_dataset("shapes", "val", size=64, val_size=16, task="detection", objects=[1, 3], progress=False)
    targets = [data[i][1] for i in range(16)]
    # one object per cell: YOLO v1 can only predict one, so keep scenes whose objects fall apart
    cells = [{(int((b[0] + b[2]) / 32), int((b[1] + b[3]) / 32)) for b in t["boxes"].tolist()} for t in targets]
    targets = [t for t, c in zip(targets, cells) if len(c) == len(t["boxes"])]
    assert len(targets) >= 8
    task.evaluate_start(torch.device("cpu"))
    task.evaluate_update(_perfect(targets, task.layout), targets)
    perfect = task.evaluate_finish()
    assert perfect["map50"] == pytest.approx(1.0) and perfect["map"] > 0.9

    shifted = [{"boxes": t["boxes"] + torch.stack([(t["boxes"][:, 2] - t["boxes"][:, 0]) * 0.6,
                                                   torch.zeros(len(t["boxes"]))] * 2, dim=1),
                "labels": t["labels"]} for t in targets]
    task.evaluate_start(torch.device("cpu"))
    task.evaluate_update(_perfect(shifted, task.layout), targets)
    assert task.evaluate_finish()["map50"] < 0.2


def test_a_yolo_run_trains_reports_map_and_gives_boxes_to_draw(tmp_path):
    result = compiler.train(YOLO, quiet=True, vars=SMALL, epochs=1, train_size=64, val_size=24, batch_size=16,
                            optimizer="adamw", lr=1e-3, run_dir=tmp_path / "run")
    row = result.final
    assert 0.0 <= row["val_map50"] <= 1.0 and 0.0 <= row["val_map"] <= row["val_map50"]
    assert row["train_top1"] is None and row["val_top1"] is None and row["val_miou"] is None
    assert row["train_loss"] > 0 and row["val_loss"] > 0
    with open(tmp_path / "run" / "metrics.csv") as fh:
        header = next(csv.reader(fh))
    assert "val_map50" in header and "val_mask_map50" in header

    preds = validation_predictions(tmp_path / "run", n=5)
    assert isinstance(preds, DetectionPredictions)
    assert preds.images.shape == (5, 3, 64, 64) and preds.images.dtype == torch.uint8
    assert len(preds.targets) == len(preds.predictions) == 5 and preds.classes[0] == "circle"
    for found in preds.predictions:
        boxes = found["boxes"]
        assert boxes.shape[1:] == (4,) and len(found["scores"]) == len(found["labels"]) == len(boxes)
        assert (boxes >= 0).all() and (boxes <= 64).all() and (found["scores"] >= 0.3).all()


def test_yolo_head_classes_that_differ_from_the_dataset_are_reported_at_the_var(tmp_path):
    with pytest.raises(compiler.SpecError) as err:
        compiler.train(YOLO, quiet=True, vars={"classes": 5, **SMALL}, epochs=1, train_size=32, val_size=8,
                       batch_size=16, run_dir=tmp_path / "run")
    problem = err.value.first
    assert "predicts 5 classes" in problem.message and "has 6" in problem.message
    assert "the override --var classes=5 sets it: set it to 6 or leave it out" in problem.message
    text = YOLO.read_text().splitlines()
    assert text[problem.loc.line - 1].strip().startswith("classes:")
