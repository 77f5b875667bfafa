"""Custom Python blocks: loaded only when named, shape measured when the block has no rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import compiler

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
SPEC = """
blockgraph: 1
name: with_cbam
plugins: [cbam_plugin]
inputs: {x: [32, 8, 8]}
nodes:
  - {id: conv, op: conv, out: 32, k: 3}
  - {id: attention, op: cbam, reduction: 8}
  - {op: gap}
"""


@pytest.fixture()
def cbam(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return compiler.load_plugins(["cbam_plugin"])


def test_naming_a_plugin_in_a_spec_does_not_import_it(tmp_path):
    spec_file = tmp_path / "with_cbam.yaml"
    spec_file.write_text(SPEC)
    env = {"PYTHONPATH": str(EXAMPLES), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "compiler", "validate", str(spec_file)],
                            capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 1
    assert "this spec needs plugin 'cbam_plugin': load it with --plugin cbam_plugin" in result.stderr
    result = subprocess.run([sys.executable, "-m", "compiler", "--plugin", "cbam_plugin", "summary",
                             str(spec_file)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    assert "32x8x8*" in result.stdout and "trial run on the meta device" in result.stdout


def test_plugin_block_builds_and_its_measured_numbers_are_right(cbam):
    assert cbam == {"cbam_plugin": ["cbam"]}
    analysis = compiler.analyze(compiler.load(SPEC))
    row = analysis.node("attention")
    assert row.measured and row.shape == (32, 8, 8)
    # MLP 32->4->32 twice (avg and max) on 1x1 maps + a 2->1 7x7 conv on 8x8
    assert row.macs == 2 * (32 * 4 + 4 * 32) + 8 * 8 * 2 * 49
    assert row.params == 32 * 4 * 2 + 2 * 49
    model = compiler.build(SPEC, seed=0)
    assert model(torch.randn(2, 32, 8, 8)).shape == (2, 32)


def test_unimportable_plugin_is_a_clear_usage_error():
    result = subprocess.run([sys.executable, "-m", "compiler", "--plugin", "no_such_plugin_mod", "validate",
                             "specs/default.yaml"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "cannot import plugin 'no_such_plugin_mod'" in result.stderr
    assert "Traceback" not in result.stderr
