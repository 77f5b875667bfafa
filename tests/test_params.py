"""compiler.params, the one reader of block parameters, against the blocks' source (the field
declarations of conv.py, dropout.py and common.py, read by hand), and the three readers it
serves (JSON Schema, reference tables, palette) against each other."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from compiler import params
from compiler.blocks import registry
from compiler.blocks.common import Norm
from compiler.schema import json_schema

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import gen_reference  # noqa: E402


def by_name(model) -> dict[str, params.Param]:
    return {p.name: p for p in params.parameters(model)}


def test_conv_as_declared():
    conv = by_name(registry.get("conv"))
    assert list(conv) == ["out", "k", "stride", "pad", "dilation", "groups", "bias", "norm", "act", "order"]
    out = conv["out"]  # out: PositiveInt, no default
    assert (out.required, out.default, out.json_type, out.nullable, out.minimum) == (True, None, "integer", False, 1)
    assert out.description == "Output channels."
    assert out.example == 8  # conv's first registry example
    assert conv["groups"].minimum == 1 and conv["groups"].default == 1 and not conv["groups"].required
    bias = conv["bias"]  # Flag | Literal["auto"] = "auto"
    assert (bias.json_type, bias.choices, bias.default) == (None, (True, False, "auto"), "auto")
    norm = conv["norm"]  # Norm | None = None: the options model's kind names
    assert norm.nullable and norm.default is None and norm.choices == ("batch", "layer", "instance", "group")
    assert conv["order"].choices == ("conv-norm-act", "conv-act-norm", "norm-act-conv")
    pad = conv["pad"]  # int | [int, int] | Literal: neither one type nor a closed set
    assert (pad.json_type, pad.choices, pad.default) == (None, (), "auto")


def test_bounds_and_floats():
    p = by_name(registry.get("dropout"))["p"]  # Field(0.5, ge=0, lt=1)
    assert (p.json_type, p.default, p.minimum, p.exclusive_maximum, p.maximum) == ("number", 0.5, 0, 1, None)
    norm = by_name(Norm)
    assert norm["eps"].exclusive_minimum == 0 and norm["eps"].minimum is None  # gt=0 on a float
    assert norm["momentum"].maximum == 1  # le=1
    assert norm["groups"].minimum == 1  # gt=0 on an int: at least 1
    assert norm["affine"].json_type == "boolean" and norm["affine"].choices == ()
    assert norm["kind"].example is params.NO_EXAMPLE  # an options model has no registry examples


@pytest.mark.parametrize("op", [op for op in registry.names() if registry.is_built_in(op)])
def test_schema_docs_and_palette_list_the_same_parameters(op):
    from ui import designer

    cls = registry.get(op)
    names = [p.name for p in params.parameters(cls)]
    properties = json_schema()["$defs"][f"op_{op}"]["properties"]
    common = {"op", "id", "in", "repeat", "first", "init", "when", "scalable"}
    assert set(properties) - common == set(names) - common
    rows = gen_reference.table(cls).splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == names
    assert [f.name for f in designer.palette_fields(op)] == names
