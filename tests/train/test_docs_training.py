"""docs/training.md documents every setting, and its YAML examples are valid settings."""

from __future__ import annotations

import re

import compiler
from compiler.train import TrainConfig
from compiler.train.config import resolve_config, spec_source
from train_support import ROOT

DOC = ROOT / "docs" / "training.md"


def test_every_setting_has_a_row():
    text = DOC.read_text()
    for key in TrainConfig.model_fields:
        assert f"| `{key}` |" in text, f"train key {key!r} is not in the table of docs/training.md"


def test_yaml_examples_are_valid_settings():
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    for block in blocks:
        spec = compiler.load(block)
        resolve_config([spec_source(spec)])
