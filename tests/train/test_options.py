"""Settings that change how a run trains (precision, memory format, optimizer, schedule,
workers), a dataset of fewer than 5 classes (top-5 is null), and --config files."""

from __future__ import annotations

import json
import math

import pytest
import torch

import compiler
import compiler.data
from compiler.cli import main
from compiler.train.schedule import lr_lambda
from compiler.train import TrainConfig
from train_support import TINY

SMALL = dict(epochs=2, train_size=128, val_size=64, quiet=True)


@pytest.mark.parametrize("settings", [
    {"amp": "bf16"},
    {"channels_last": True},
    {"optimizer": "adamw", "schedule": "onecycle"},
    {"schedule": "step", "step_size": 1, "warmup_epochs": 0.5, "label_smoothing": 0.1, "grad_clip": 1.0,
     "nesterov": True},
    {"workers": 2},
    {"deterministic": True, "schedule": "constant"},
], ids=lambda s: ",".join(s))
def test_settings_train(settings, tmp_path):
    result = compiler.train(TINY, run_dir=str(tmp_path / "r"), **SMALL, **settings)
    assert len(result.history) == 2
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in result.history)
    assert result.config.model_dump(include=set(settings)) == settings


def test_schedules():
    cfg = TrainConfig(epochs=4, lr=1.0, schedule="cosine", warmup_epochs=1)
    f = lr_lambda(cfg, 10)
    assert [round(f(s), 3) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]  # linear warm-up
    assert f(10) == pytest.approx(1.0) and f(25) == pytest.approx(0.5) and f(40) == pytest.approx(0.0)
    step = lr_lambda(TrainConfig(epochs=6, lr=1.0, schedule="step", step_size=2, gamma=0.5), 10)
    assert [step(s) for s in (0, 19, 20, 45)] == [1.0, 1.0, 0.5, 0.25]
    one = lr_lambda(TrainConfig(epochs=10, lr=1.0, schedule="onecycle"), 10)
    assert one(0) == pytest.approx(0.04) and one(30) == pytest.approx(1.0) and one(100) < 1e-5
    assert lr_lambda(TrainConfig(schedule="constant", lr=0.3), 5)(17) == 1.0


class _FourClasses(torch.utils.data.Dataset):
    def __init__(self, n: int):
        g = torch.Generator().manual_seed(n)
        self.labels = torch.randint(0, 4, (n,), generator=g)
        self.images = torch.randn(n, 3, 16, 16, generator=g) * 0.1
        self.images[:, :, :4, :4] += self.labels[:, None, None, None].float()  # learnable

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


def test_under_5_classes_top5_is_null(tmp_path, monkeypatch):
    def build_dataset(name, split, *, size=None, seed=0, **options):
        info = compiler.data.DatasetInfo("four", 4, (3, 16, 16), ["a", "b", "c", "d"])
        return _FourClasses(options.get(f"{split}_size", 64)), info

    monkeypatch.setattr(compiler.data, "build_dataset", build_dataset)
    result = compiler.train(TINY, vars={"classes": 4}, run_dir=str(tmp_path / "r"), dataset="four", **SMALL)
    assert all(r["train_top5"] is None and r["val_top5"] is None for r in result.history)
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val_top5"] is None
    assert (tmp_path / "r" / "metrics.csv").read_text().splitlines()[1].split(",")[8] == ""


def test_config_file_sets_and_locates(tiny_spec, tmp_path, capsys):
    good = tmp_path / "fast.yaml"
    good.write_text("train:\n  epochs: 1\n  train_size: 64\n  val_size: 32\n")
    assert main(["train", str(tiny_spec), "--config", str(good), "--run-dir", str(tmp_path / "r"), "-q"]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["epochs"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 1\nschedule: linear\n")
    assert main(["train", str(tiny_spec), "--config", str(bad), "--run-dir", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:11: train.schedule: expected one of 'constant', 'cosine', 'step' or 'onecycle', got " \
           f"'linear'" in err


def test_one_input_one_output(tmp_path):
    with pytest.raises(compiler.SpecError, match="training takes a spec with one input \\(the images\\); this one "
                                                 "has 2: a, b"):
        compiler.train("blockgraph: 1\nname: x\ninputs: {a: [3, 16, 16], b: [3, 16, 16]}\n"
                       "nodes: [{op: add, in: [a, b]}, {op: gap}, {op: linear, out: 6}]\n",
                       run_dir=str(tmp_path / "x"), quiet=True)
