"""The JSON Schema for editors: in sync with the code, accepts every zoo spec, refuses mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from compiler.cli import main
from compiler.schema import dumps, json_schema

jsonschema = pytest.importorskip("jsonschema")
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "specs" / "blockgraph.schema.json"
VALIDATOR = jsonschema.Draft202012Validator(json_schema())


def errors(document) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(document)]


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_shipped_schema_is_in_sync():
    assert SHIPPED.read_text() == dumps(), "specs/blockgraph.schema.json is stale: run blockgraph schema -o " \
                                           "specs/blockgraph.schema.json"


def test_cli_prints_the_schema(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["$id"] == json_schema()["$id"]


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_zoo_spec_validates(path):
    assert errors(yaml.safe_load(path.read_text())) == []


BASE = {"blockgraph": 1, "name": "n", "inputs": {"x": [3, 8, 8]}}
INVALID = {
    "unknown key of an op": {**BASE, "nodes": [{"op": "conv", "out": 8, "kernal": 3}]},
    "negative channels": {**BASE, "nodes": [{"op": "conv", "out": -8}]},
    "negative repeat": {**BASE, "nodes": [{"op": "gap", "repeat": -1}]},
    "unknown top-level key": {**BASE, "node": [{"op": "gap"}], "nodes": [{"op": "gap"}]},
    "wrong type": {**BASE, "nodes": [{"op": "maxpool", "ceil": "sometimes"}]},
    "node without op": {**BASE, "nodes": [{"out": 3}]},
    "bad activation": {**BASE, "nodes": [{"op": "conv", "out": 8, "act": "relux"}]},
    "missing nodes": dict(BASE),
    "unknown input dtype": {**BASE, "inputs": {"t": {"shape": [5], "dtype": "int46"}},
                            "nodes": [{"op": "embedding", "vocab": 9, "dim": 2}]},
    "unknown key of an input": {**BASE, "inputs": {"t": {"shape": [5], "dtyp": "int64"}},
                                "nodes": [{"op": "embedding", "vocab": 9, "dim": 2}]},
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_mistakes_are_refused(name):
    assert errors(INVALID[name])


def test_a_typed_token_input_is_accepted():
    assert errors({**BASE, "vars": {"T": 5}, "inputs": {"t": {"shape": ["$T"], "dtype": "int64"}, "v": {"shape": [3]}},
                   "nodes": [{"op": "embedding", "in": "t", "vocab": 9, "dim": 2}]}) == []


def test_expressions_user_blocks_and_extends_are_accepted():
    assert errors({**BASE, "vars": {"w": 8}, "nodes": [{"op": "conv", "out": "$w * 2", "when": "$flag"}]}) == []
    assert errors({**BASE, "blocks": {"unit": {"params": {"out": "int"}, "nodes": [{"op": "conv", "out": "$out"}]}},
                   "nodes": [{"op": "unit", "out": 4}]}) == []
    assert errors({"blockgraph": 1, "extends": "resnet50.yaml", "name": "r", "vars": {"depth3": 23}}) == []
    assert errors({**BASE, "nodes": [{"op": "conv", "out": 4, "norm": "batch", "act": {"kind": "leaky_relu"}}],
                   "init": {"conv": "he_normal", "bias": {"kind": "constant", "value": 0.1}}}) == []
