"""The gallery (studies/*.yaml): every study loads in both forms, validates against the shipped
JSON Schema, and its quick form runs and reports; the schema file is in sync with the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compiler.study import load_study
from compiler.study.schema import dumps, study_schema

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))
jsonschema = pytest.importorskip("jsonschema")


def test_the_shipped_schema_is_in_sync():
    shipped = ROOT / "studies" / "blockgraph-study.schema.json"
    assert shipped.read_text() == dumps(), "run: blockgraph study schema -o studies/blockgraph-study.schema.json"
    jsonschema.Draft202012Validator.check_schema(study_schema())


def test_the_schema_refuses_a_mistake():
    validator = jsonschema.Draft202012Validator(study_schema())
    bad = {"blockgraph_study": 1, "name": "x", "specs": "a.yaml", "seedz": 2}
    assert any("seedz" in e.message for e in validator.iter_errors(bad))


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_every_gallery_study_loads_and_validates(path):
    assert jsonschema.Draft202012Validator(study_schema()).is_valid(yaml.safe_load(path.read_text()))
    for quick in (False, True):
        study = load_study(path, quick=quick)
        assert study.cells and study.document.about and study.document.plots


def test_stacked_3x3_quick_runs_and_reports(tmp_path):
    path = ROOT / "studies" / "stacked_3x3.yaml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "compiler", "study", "run", str(path), "--quick", "--quiet",
                          "--runs", str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    report = subprocess.run([sys.executable, "-m", "compiler", "study", "report", str(path), "--quick", "--runs",
                             str(tmp_path), "-o", str(tmp_path / "report")], capture_output=True, text=True,
                            env=env, timeout=600)
    assert report.returncode == 0, report.stderr
    summary = json.loads((tmp_path / "report" / "results.json").read_text())["summary"]
    params = {row["filter"]: row["params"] for row in summary}
    # counted by hand: stage 1, 16 -> 16 -> 16 (3x3 pair) against 16 -> 16 (5x5); stage 2,
    # 16 -> 32 -> 32 against 16 -> 32; the removed convs' batch norms (2 per channel) go too
    stage1 = 25 * 16 * 16 - (9 * 16 * 16 + 9 * 16 * 16)
    stage2 = 25 * 16 * 32 - (9 * 16 * 32 + 9 * 32 * 32)
    assert params["5x5"] - params["3x3+3x3"] == stage1 + stage2 - 2 * 16 - 2 * 32
    assert sorted((tmp_path / "report" / "plots").glob("*.png"))
