"""Regression and sequences: a spec whose output is [1] trains with the MSE on the adding problem
(the val loss checked against the MSE computed here from the saved weights), the data follows the
spec's sequence input (steps; shapes read row by row), and the mismatches are located errors."""

from __future__ import annotations

import pytest
import torch

import compiler
from compiler.data import build_dataset
from compiler.errors import SpecError
from compiler.train.tasks import ClassificationTask, RegressionTask, task_class

MLP_ADDING = """\
blockgraph: 1
name: mlp_adding
inputs:
  seq: [8, 2]
nodes:
  - {op: flatten}
  - {op: linear, out: 32, act: relu}
  - {id: head, op: linear, out: 1}
train:
  dataset: adding
  train_size: 2000
  val_size: 400
  epochs: 3
  batch_size: 50
  optimizer: adamw
  lr: 0.003
  device: cpu
"""

ROWS = """\
blockgraph: 1
name: rows
inputs:
  seq: [16, 48]
vars:
  classes: {dataset: classes, default: 10}
nodes:
  - {op: flatten}
  - {id: head, op: linear, out: $classes}
train:
  train_size: 256
  val_size: 64
  epochs: 1
  batch_size: 32
  device: cpu
"""


def test_the_task_of_a_one_number_output_is_regression():
    spec = compiler.load(MLP_ADDING)
    assert task_class(spec, compiler.analyze(spec)) is RegressionTask
    spec = compiler.load(MLP_ADDING.replace("out: 1}", "out: 2}"))
    assert task_class(spec, compiler.analyze(spec)) is ClassificationTask


def test_a_regression_trains_with_the_mse(tmp_path):
    result = compiler.train(MLP_ADDING, quiet=True, run_dir=tmp_path / "run")
    rows = result.history
    assert len(rows) == 3 and all(r["train_top1"] is None and r["val_top1"] is None for r in rows)
    assert result.metric == "val_loss" and result.best == min(rows, key=lambda r: r["val_loss"])
    # The val loss is the MSE of the saved model on the val split, computed here.
    model = compiler.build(MLP_ADDING)
    model.load_state_dict(compiler.train.load_checkpoint(tmp_path / "run")["model"])
    model.eval()
    val, info = build_dataset("adding", "val", val_size=400, steps=8)
    assert info.shape == (8, 2)
    with torch.no_grad():
        x = torch.stack([val[i][0] for i in range(len(val))])
        y = torch.stack([val[i][1] for i in range(len(val))])
        mse = torch.mean((model(x) - y) ** 2).item()
    assert rows[-1]["val_loss"] == pytest.approx(mse, rel=1e-5)
    assert mse < 2 / 12, "beats always predicting the mean sum (MSE 2/12)"


def test_the_adding_problem_takes_its_length_from_the_spec(tmp_path):
    spec = MLP_ADDING.replace("seq: [8, 2]", "seq: [5, 2]").replace("epochs: 3", "epochs: 1")
    seen = {}
    compiler.train(spec, quiet=True, run_dir=tmp_path / "run", on_start=seen.update)
    assert seen["task"] == "regression"
    with pytest.raises(SpecError, match=r"gives \[9, 2\], the spec takes \[5, 2\].*steps=5"):
        compiler.train(spec, quiet=True, run_dir=tmp_path / "run2", dataset_options={"steps": 9})


def test_a_sequence_spec_reads_the_shapes_row_by_row(tmp_path):
    # [16, 48]: 16 steps of 3 channels x 16 pixels, i.e. shapes at 16x16 read row by row
    result = compiler.train(ROWS, quiet=True, run_dir=tmp_path / "run")
    assert result.history[-1]["val_top1"] is not None
    assert compiler.train.load_checkpoint(tmp_path / "run")["spec"]["vars"] == {"classes": 6}


def test_a_one_number_output_on_a_classification_dataset_is_told_why(tmp_path):
    spec = MLP_ADDING.replace("dataset: adding", "dataset: shapes").replace("seq: [8, 2]", "seq: [3, 16, 16]")
    with pytest.raises(SpecError) as caught:
        compiler.train(spec, quiet=True, run_dir=tmp_path / "run")
    problem = caught.value.errors[0]
    assert problem.loc.line == 10 and "regression" in problem.message and "dataset: adding" in problem.message


def test_a_regression_resumes_exactly(tmp_path):
    # a constant schedule: the cosine one depends on the number of epochs asked for
    spec = MLP_ADDING.replace("train_size: 2000", "train_size: 400").replace("device: cpu", "device: cpu\n  schedule: constant")
    whole = compiler.train(spec, epochs=2, quiet=True, run_dir=tmp_path / "whole")
    compiler.train(spec, epochs=1, quiet=True, run_dir=tmp_path / "part")
    resumed = compiler.train(resume=tmp_path / "part", epochs=2, quiet=True)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in whole.history]


def test_a_size_given_to_the_run_wins_over_the_one_the_input_implies(tmp_path):
    # [16, 48] implies shapes at 16x16 read row by row; the run's size 16 says the same, once
    result = compiler.train(ROWS, quiet=True, run_dir=tmp_path / "run", size=16)
    assert result.history[-1]["val_top1"] is not None
