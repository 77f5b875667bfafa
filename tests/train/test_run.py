"""A short run on the tiny spec: it learns, and leaves metrics, curves and a checkpoint that
loads with weights_only=True. Also: NaN stops, the memory check, and the CLI's exit codes."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

import compiler
from compiler.cli import main
from compiler.train import TrainError, TrainingDiverged, load_checkpoint


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from train_support import TINY

    run_dir = tmp_path_factory.mktemp("run") / "out"
    result = compiler.train(TINY, run_dir=str(run_dir), quiet=True)
    return result


def test_a_short_run_learns(run):
    rows = run.history
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4] and run.epochs == 4
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] - 0.2
    assert rows[-1]["val_top1"] > 0.3 > 1 / 6  # chance is 1/6; measured 0.44
    assert all(r["val_top5"] is not None and r["images_per_s"] > 0 for r in rows)  # 6 classes: top-5 reported
    assert rows[-1]["step"] == 4 * (1024 // 32)


def test_the_run_directory_holds_metrics_curves_and_a_checkpoint(run):
    d = run.run_dir
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert rows == run.history
    with open(d / "metrics.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in table] == [1, 2, 3, 4]
    assert float(table[-1]["val_top1"]) == pytest.approx(rows[-1]["val_top1"])
    assert (d / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in d.iterdir()} == {"metrics.jsonl", "metrics.csv", "curves.png", "model.safetensors",
                                             "state.pt", "spec.yaml", "config.json"}  # no temp files left


def test_the_checkpoint_loads_with_weights_only(run):
    state = torch.load(run.run_dir / "state.pt", weights_only=True)
    assert state["epoch"] == 4 and state["global_step"] == 128 and state["step_in_epoch"] == 0
    assert set(state) >= {"optimizer", "scheduler", "scaler", "rng", "spec", "config"}
    rng = state["rng"][0]
    assert isinstance(rng["torch"], torch.Tensor) and len(rng["python"]["state"]) == 625
    assert state["spec"]["vars"] == {"classes": 6, "width": 8} and "name: tiny" in state["spec"]["text"]
    assert state["config"]["epochs"] == 4 and state["config"]["lr"] == 0.1
    weights = load_file(str(run.run_dir / "model.safetensors"))
    model = compiler.build(compiler.load(state["spec"]["document"]))
    model.load_state_dict(weights)  # strict: every key, every shape
    both = load_checkpoint(run.run_dir)
    assert both["model"].keys() == weights.keys()


def test_loss_nan_stops_and_keeps_the_last_good_checkpoint(tiny_spec, tmp_path):
    # epoch 1 trains at lr 0.1; the step schedule multiplies it by 1e9 for epoch 2
    run_dir = tmp_path / "nan"
    with pytest.raises(TrainingDiverged) as info:
        compiler.train(tiny_spec, run_dir=str(run_dir), quiet=True, epochs=3, schedule="step", step_size=1,
                       gamma=1e9, train_size=256, val_size=64)
    message = str(info.value)
    assert message.startswith("loss became nan at epoch 2, step ") or message.startswith("loss became inf at epoch 2")
    assert f"lower the learning rate (lr=0.1) or enable grad_clip; the last good checkpoint (epoch 1) is kept in " \
           f"{run_dir}" in message
    assert info.value.epoch == 2
    state = load_checkpoint(run_dir)
    assert state["epoch"] == 1 and all(torch.isfinite(t).all() for t in state["model"].values())
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1


def test_cli_reports_nan_with_exit_1(tiny_spec, tmp_path, capsys):
    code = main(["train", str(tiny_spec), "--lr", "1e9", "--run-dir", str(tmp_path / "r"), "--epochs", "1", "-q",
                 "--set", "train_size=128", "--set", "val_size=32"])
    err = capsys.readouterr().err
    assert code == 1
    assert "blockgraph train: error: loss became" in err and "at epoch 1, step" in err
    assert "lower the learning rate (lr=1e+09)" in err and "the last good checkpoint (epoch 0)" in err
    assert "Traceback" not in err
    assert load_checkpoint(tmp_path / "r")["epoch"] == 0


def test_memory_estimate_over_the_budget_is_refused_before_building(tiny_spec, tmp_path, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("built the model")

    import compiler.fx

    monkeypatch.setattr(compiler.fx, "build", no_build)  # what the trainer builds with
    run_dir = tmp_path / "mem"
    with pytest.raises(TrainError) as info:
        compiler.train(tiny_spec, run_dir=str(run_dir), quiet=True, memory_budget=1e-9)
    message = str(info.value)
    assert message.startswith("tiny needs about ") and "to train at batch 32" in message
    assert "more than memory_budget 1e-09 x " in message and "lower batch_size" in message
    assert not run_dir.exists()


def test_memory_check_uses_the_devices_free_memory(tiny_spec, tmp_path, monkeypatch):
    from compiler.train import setup

    monkeypatch.setattr(setup, "free_memory", lambda device: (1000, "a test"))
    with pytest.raises(TrainError, match=r"x 1000 B \(a test\) = 800 B on cpu"):
        compiler.train(tiny_spec, run_dir=str(tmp_path / "m"), quiet=True)


@pytest.mark.parametrize("args, code, expected", [
    (["train"], 2, "give a SPEC file to train, or --resume RUN_DIR"),
    (["train", "SPEC", "--amp", "fp32"], 2, "invalid choice: 'fp32'"),
    (["train", "SPEC", "--epochs", "two"], 2, "invalid int value: 'two'"),
    (["train", "SPEC", "--set", "lr"], 2, "expected NAME=VALUE"),
    (["train", "SPEC", "--epochs", "0", "--set", "optimiser=adamw"], 1,
     "<command line>:1:1: --set optimiser: unknown key 'optimiser' in train; did you mean 'optimizer'?"),
    (["train", "SPEC", "--amp", "fp16", "--device", "cpu"], 1,
     "<command line>:1:1: --amp: amp fp16 needs a GPU (CUDA or MPS); on the CPU use amp: bf16"),
    (["train", "SPEC", "--batch-size", "5000"], 1,
     "<command line>:1:1: --batch-size: batch_size 5000 is larger than the training set (1024 images)"),
    (["train", "SPEC", "--dataset", "cifar11"], 1, "--dataset: dataset 'cifar11': unknown dataset 'cifar11'"),
    (["train", "SPEC", "-D", "classes=10"], 1, "vars.classes: the spec's output has 10 classes, the dataset "
                                               "'shapes' has 6"),
    (["train", "--resume", "nosuch"], 1, "blockgraph train: error: nosuch holds no checkpoint"),
    (["train", "nosuch.yaml"], 1, "nosuch.yaml:1:1: cannot read file"),
])
def test_cli_exit_codes(args, code, expected, tiny_spec, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        result = main([str(tiny_spec) if a == "SPEC" else a for a in args])
    except SystemExit as exc:  # argparse's bad usage
        result = exc.code
    err = capsys.readouterr().err
    assert result == code, err
    assert expected in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_cli_prints_the_run_epochs_and_result(tiny_spec, tmp_path, capsys):
    code = main(["train", str(tiny_spec), "--run-dir", str(tmp_path / "r"), "--epochs", "1",
                 "--set", "train_size=128", "--set", "val_size=64", "--batch-size", "64"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"run: {tmp_path / 'r'}" in out
    assert "epoch 1/1  train loss " in out and " val loss " in out and " top5 " in out and " img/s " in out
    assert "done: 1 epochs; val top-1 " in out


def test_a_run_directory_is_not_overwritten(tiny_spec, run, capsys):
    code = main(["train", str(tiny_spec), "--run-dir", str(run.run_dir)])
    assert code == 1
    assert f"{run.run_dir} already holds a run: continue it with --resume" in capsys.readouterr().err


