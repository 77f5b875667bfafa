"""The CLI as a user runs it: exit codes, FILE:LINE:COL messages, summary tables and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_validate_ok_and_error_exit_codes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("blockgraph: 1\nname: b\ninputs: {x: [3, 8, 8]}\nnodes:\n  - {op: conv, out: -1}\n")
    result = run("validate", "specs/vgg16.yaml", str(bad))
    assert result.returncode == 1
    assert "specs/vgg16.yaml: ok: 25 nodes; outputs: fc8 [1000]" in result.stdout
    assert result.stderr.strip() == f"{bad}:5:21: nodes[0].out: expected a positive integer, got -1"
    assert run("validate", "specs/vgg16.yaml").returncode == 0


def test_validate_says_which_outputs_are_per_region(capsys):
    assert main(["validate", "specs/mask_rcnn_shapes.yaml"]) == 0
    assert capsys.readouterr().out.strip() == ("specs/mask_rcnn_shapes.yaml: ok: 15 nodes; outputs: cls [7] per region, "
                                               "box [28] per region, mask [7, 28, 28] per region")


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["summary"])
    assert exit_info.value.code == 2
    assert main(["summary", "specs/default.yaml", "--batch", "0"]) == 2


def test_missing_file_is_a_located_error(capsys):
    assert main(["validate", "no/such.yaml"]) == 1
    assert capsys.readouterr().err.startswith("no/such.yaml:1:1: cannot read file")


def test_var_override(capsys):
    assert main(["validate", "specs/default.yaml", "--var", "classes=7", "-D", "width=8"]) == 0
    assert "classifier [7]" in capsys.readouterr().out
    assert main(["validate", "specs/default.yaml", "--var", "clases=7"]) == 1
    assert "did you mean 'classes'?" in capsys.readouterr().err


def test_summary_table_and_json(capsys):
    assert main(["summary", "specs/vgg16.yaml"]) == 0
    out = capsys.readouterr().out
    assert "conv1.1" in out and "parameters: 138,357,544 trainable" in out and "15.47G" in out
    assert main(["summary", "specs/vgg16.yaml", "--json", "--batch", "8"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["params"] == 138_357_544
    assert data["batch"] == 8
    node = next(n for n in data["nodes"] if n["id"] == "conv1.0")
    assert node["shape"] == [64, 224, 224] and node["activation_bytes"] == 8 * 64 * 224 * 224 * 4
    assert sum(n["params"] for n in data["nodes"]) == data["totals"]["params"]


def test_build_prints_code(capsys):
    assert main(["build", "specs/default.yaml", "--code"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("def forward(self, image):") and "return classifier" in out


def test_spec_error_never_prints_a_traceback(tmp_path):
    bad = tmp_path / "cycle.yaml"
    bad.write_text("blockgraph: 1\nname: c\ninputs: {x: [3]}\nnodes:\n  - {id: a, op: add, in: [x, b]}\n"
                   "  - {id: b, op: add, in: [x, a]}\n")
    for command in ("validate", "summary", "build"):
        result = run(command, str(bad))
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith(f"{bad}:5:30: nodes[0].in: the graph has a cycle: a -> b -> a")
