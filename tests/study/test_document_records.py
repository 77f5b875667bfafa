"""The study file's model and the trial records file (compiler.study.document, .records)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from compiler.study.document import StudyDocument
from compiler.study.records import TrialRecord, append_record, read_records


def test_a_number_of_seeds_means_seeds_0_to_n_minus_1():
    doc = StudyDocument.model_validate({"blockgraph_study": 1, "name": "s", "specs": "a.yaml", "seeds": 3})
    assert doc.seeds == [0, 1, 2]


@pytest.mark.parametrize("seeds", [[], [1, 1], [-1]])
def test_seeds_must_be_distinct_and_not_negative(seeds):
    with pytest.raises(ValidationError, match="seed"):
        StudyDocument.model_validate({"blockgraph_study": 1, "name": "s", "specs": "a.yaml", "seeds": seeds})


def test_levels_and_patches_are_checked_keys():
    data = {"blockgraph_study": 1, "name": "s", "specs": "a.yaml",
            "factors": {"norm": [{"label": "none", "patch": [{"nodes": {"has": "norm"}, "sett": {"norm": None}}]}]}}
    with pytest.raises(ValidationError) as info:
        StudyDocument.model_validate(data)
    assert any(e["loc"][-1] == "sett" and e["type"] == "extra_forbidden" for e in info.value.errors())
    data["factors"]["norm"][0]["patch"][0] = {"nodes": {"has": "norm"}, "set": {"norm": None}}
    level = StudyDocument.model_validate(data).factors["norm"][0]
    assert level.patch[0].nodes.has == "norm" and level.patch[0].set == {"norm": None}


def _record(key: str, value: float) -> TrialRecord:
    return TrialRecord(study="s", trial=0, key=key, levels={"depth": key}, seed=0, state="complete", value=value)


def test_the_last_record_of_a_key_wins_and_a_torn_line_is_skipped(tmp_path):
    path = tmp_path / "results.jsonl"
    append_record(path, _record("a", 0.5))
    append_record(path, _record("b", 0.7))
    append_record(path, _record("a", 0.9))  # the cell trained again after its worker died
    with open(path, "a") as fh:
        fh.write('{"study": "s", "trial": 3, "ke')  # killed in the middle of a write
    records = {r.key: r for r in read_records(path)}
    assert {k: r.value for k, r in records.items()} == {"a": 0.9, "b": 0.7}
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["levels"] == {"depth": "a"} and len(lines) == 4


def test_no_file_means_no_records(tmp_path):
    assert read_records(tmp_path / "missing.jsonl") == []
