"""TrainConfig: defaults, the three sources (spec train:, --config file, options) and located
messages for every mistake."""

from __future__ import annotations

import pytest

import compiler
from compiler import SpecError
from compiler.train import TrainConfig
from compiler.train.config import cli_source, file_source, resolve_config, spec_source


def _spec(train_yaml: str):
    return compiler.load(f"""\
blockgraph: 1
name: t
inputs: {{image: [3, 16, 16]}}
nodes:
  - {{op: conv, out: 4, k: 3}}
  - {{op: gap}}
  - {{op: linear, out: 6}}
{train_yaml}""")


def _messages(exc: SpecError) -> list[str]:
    return [str(p) for p in exc.errors]


def test_defaults_depend_on_the_optimizer():
    sgd = TrainConfig()
    assert (sgd.dataset, sgd.epochs, sgd.optimizer, sgd.lr, sgd.weight_decay, sgd.amp) == \
        ("shapes", 10, "sgd", 0.1, 5e-4, "off")
    adamw = TrainConfig(optimizer="adamw", epochs=9)
    assert (adamw.lr, adamw.weight_decay, adamw.step_size) == (1e-3, 0.05, 3)


def test_spec_section_errors_are_located_at_their_keys():
    spec = _spec("train:\n  epochs: 3\n  learning_rate: 0.1\n  optimizer: adam\n  lr: -1\n  amp: fp32\n")
    with pytest.raises(SpecError) as info:
        resolve_config([spec_source(spec)])
    text = "\n".join(_messages(info.value))
    assert "<string>:10:3: train.learning_rate: unknown key 'learning_rate' in train; did you mean 'lr'?" in text
    assert "<string>:11:14: train.optimizer: expected one of 'sgd' or 'adamw', got 'adam'; did you mean 'adamw'?" \
        in text
    assert "<string>:12:7: train.lr: expected a number greater than 0, got -1" in text
    assert "<string>:13:8: train.amp: expected one of 'off', 'bf16' or 'fp16', got 'fp32'" in text
    lines = [p.loc.line for p in info.value.errors]
    assert lines == sorted(lines)


def test_the_section_must_be_a_map():
    with pytest.raises(SpecError) as info:
        _spec("train: 5\n")
    assert "train" in str(info.value)


def test_cross_checks_name_the_key():
    spec = _spec("train:\n  epochs: 2\n  warmup_epochs: 2\n  nesterov: true\n  momentum: 0\n")
    with pytest.raises(SpecError) as info:
        resolve_config([spec_source(spec)])
    text = "\n".join(_messages(info.value))
    assert "train.warmup_epochs: the warm-up (2 epochs) must be shorter than the run (epochs: 2)" in text
    assert "train.nesterov: Nesterov momentum needs momentum > 0" in text


def test_sources_override_key_by_key(tmp_path):
    spec = _spec("train:\n  epochs: 3\n  lr: 0.5\n  batch_size: 16\n  dataset_options: {objects: 1}\n")
    config = tmp_path / "fast.yaml"
    config.write_text("train:\n  lr: 0.2\n  schedule: step\n  dataset_options: {precompute: true}\n")
    cfg = resolve_config([spec_source(spec), file_source(config), cli_source({"epochs": 7})])
    assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.schedule) == (7, 0.2, 16, "step")
    assert cfg.dataset_options == {"objects": 1, "precompute": True}


def test_config_file_and_command_line_errors_point_at_their_source(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("epochs: 2\nbatch_size: many\n")
    spec = _spec("")
    with pytest.raises(SpecError) as info:
        resolve_config([spec_source(spec), file_source(config),
                        cli_source({"lr": 0, "workers": -1}, {"lr": "--lr", "workers": "--set workers"})])
    text = _messages(info.value)
    assert text == [f"{config}:2:13: train.batch_size: expected an integer, got 'many'",
                    "<command line>:1:1: --set workers: expected a number at least 0, got -1",
                    "<command line>:1:1: --lr: expected a number greater than 0, got 0"]


def test_unknown_device_pattern():
    with pytest.raises(SpecError, match="train.device"):
        resolve_config([spec_source(_spec("train: {device: gpu0}\n"))])
    assert resolve_config([spec_source(_spec("train: {device: 'cuda:1'}\n"))]).device == "cuda:1"


def test_values_may_use_the_specs_vars():
    spec = compiler.load("""\
blockgraph: 1
name: t
inputs: {image: [3, 16, 16]}
vars: {epochs: 3, base_lr: 0.05}
nodes: [{op: gap}, {op: linear, out: 6}]
train: {epochs: $epochs, lr: $base_lr * 2}
""")
    cfg = resolve_config([spec_source(spec)])
    assert (cfg.epochs, cfg.lr) == (3, 0.1)
    bad = compiler.load(spec.text.replace("$base_lr * 2", "$base * 2"))
    with pytest.raises(SpecError, match=r"<string>:6:30: train.lr: '\$base \* 2': .*base"):
        resolve_config([spec_source(bad)])
