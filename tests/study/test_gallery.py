"""The gallery (studies/*.yaml): every study loads in both forms, validates against the shipped
JSON Schema, and its quick form runs and reports; the schema file is in sync with the model."""

from __future__ import annotations

import json
import os
import re
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


ALWAYS = {"stacked_3x3.yaml", "depth_residual.yaml"}
"""The quick forms run on every `-m "not slow"` run too; the others are marked slow (CI runs all)."""


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """study file -> the folder its quick form ran in, each study run once for the module."""
    done: dict[Path, Path] = {}

    def run(path: Path) -> Path:
        if path not in done:
            runs = tmp_path_factory.mktemp(path.stem)
            _run_quick(path, runs)
            done[path] = runs
        return done[path]
    return run


def _run_quick(path: Path, runs: Path) -> None:
    """`study run --quick` then `study report --quick` through the CLI (the report in runs/report)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in (["run", str(path), "--quick", "--quiet", "--runs", str(runs)],
                    ["report", str(path), "--quick", "--runs", str(runs), "-o", str(runs / "report")]):
        done = subprocess.run([sys.executable, "-m", "compiler", "study", *command], capture_output=True, text=True,
                              env=env, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name, marks=[] if p.name in ALWAYS else [pytest.mark.slow])
                                  for p in STUDIES])
def test_every_quick_form_runs_and_reports(path, quick_runs):
    study = load_study(path, quick=True)
    runs = quick_runs(path)
    rows = json.loads((runs / "report" / "results.json").read_text())["trials"]
    assert sorted(row["key"] for row in rows) == sorted(cell.key for cell in study.cells)
    # a quick form may show a failure the study is about (a run that diverges), never a refusal
    assert {row["state"] for row in rows} <= {"complete", "failed"}
    assert any(row["state"] == "complete" for row in rows)
    drawn = sorted(p.stem for p in (runs / "report" / "plots").glob("*.png"))
    assert len(drawn) == len(study.document.plots), drawn
    records = [json.loads(line) for line in (runs / study.out_dir.name / "results.jsonl").open()]
    for record in records:
        if record["state"] == "complete":
            wanted = {setup.label for setup in study.cell(record["key"]).probes}
            assert set(record["probes"]) == wanted, record["key"]


def test_stacked_3x3_counts_the_weights_it_saves(quick_runs):
    runs = quick_runs(ROOT / "studies" / "stacked_3x3.yaml")
    summary = json.loads((runs / "report" / "results.json").read_text())["summary"]
    params = {row["filter"]: row["params"] for row in summary}
    # counted by hand: stage 1, 16 -> 16 -> 16 (3x3 pair) against 16 -> 16 (5x5); stage 2,
    # 16 -> 32 -> 32 against 16 -> 32; the removed convs' batch norms (2 per channel) go too
    stage1 = 25 * 16 * 16 - (9 * 16 * 16 + 9 * 16 * 16)
    stage2 = 25 * 16 * 32 - (9 * 16 * 32 + 9 * 32 * 32)
    assert params["5x5"] - params["3x3+3x3"] == stage1 + stage2 - 2 * 16 - 2 * 32


def test_claims_page_has_a_section_for_every_study_and_its_images_exist():
    page = (ROOT / "docs" / "claims.md").read_text(encoding="utf-8")
    for path in STUDIES:
        assert f"`studies/{path.name}`" in page, f"docs/claims.md has no protocol naming studies/{path.name}"
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    assert images and all((ROOT / "docs" / image).is_file() for image in images), images
