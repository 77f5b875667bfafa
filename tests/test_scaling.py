"""`scaling:` — width and depth multipliers for a whole spec."""

from __future__ import annotations

from pathlib import Path

import compiler

SPECS = Path(__file__).resolve().parents[1] / "specs"


def scaled(path: Path, scaling: str) -> compiler.Spec:
    text = path.read_text().replace("blockgraph: 1\n", f"blockgraph: 1\nscaling: {scaling}\n", 1)
    return compiler.load(text.replace("extends: ", "extends: " + str(path.parent) + "/"))


def test_width_rounds_to_the_divisor_and_keeps_the_classes():
    spec = scaled(SPECS / "resnet50.yaml", "{width: 0.5}")
    analysis = compiler.analyze(spec)
    assert spec.node("conv1").block.out == 32
    assert analysis.graph.shapes["layer4.2.act"] == (1024, 7, 7)  # 2048 * 0.5
    assert analysis.graph.shapes["fc"] == (1000,)
    spec = scaled(SPECS / "resnet50.yaml", "{width: 0.3, divisor: 8}")
    assert spec.node("conv1").block.out == 16  # 64 * 0.3 = 19.2 -> nearest multiple of 8


def test_divisor_and_round_share_one_rule_ties_away_from_zero():
    """36 channels to a multiple of 8: 36 / 8 = 4.5, a tie, goes up to 5 -> 40, whether the
    width multiplier makes the 36 (72 at width 0.5) or an expression rounds it; ties to even
    would give 32."""
    text = ("blockgraph: 1\nname: s\nvars: {c: 36}\nscaling: {width: 0.5, divisor: 8}\ninputs: {x: [3, 8, 8]}\nnodes:\n"
            "  - {id: scaled, op: conv, out: 72}\n"
            "  - {id: rounded, op: conv, out: \"round($c / 8) * 8\", scalable: false}\n"
            "  - {id: below, op: conv, out: 68}\n")  # 34 / 8 = 4.25 -> 4 -> 32
    spec = compiler.load(text)
    assert [spec.node(n).block.out for n in ("scaled", "rounded", "below")] == [40, 40, 32]


def test_depth_multiplies_repeats_and_dense_layers_rounding_up():
    spec = scaled(SPECS / "resnet50.yaml", "{depth: 0.5}")
    blocks = {g for g in spec.groups if g.count(".") == 1 and g.startswith("layer")}
    per_stage = [sum(1 for g in blocks if g.startswith(f"layer{i}.")) for i in range(1, 5)]
    assert per_stage == [2, 2, 3, 2]  # ceil(3/2), ceil(4/2), ceil(6/2), ceil(3/2)
    spec = scaled(SPECS / "densenet121.yaml", "{depth: 2}")
    assert compiler.analyze(spec).graph.shapes["transition1"][0] == (64 + 12 * 32) // 2


def test_scalable_false_keeps_a_node_as_written():
    text = ("blockgraph: 1\nname: s\nscaling: {width: 2}\ninputs: {x: [3, 8, 8]}\nnodes:\n"
            "  - {id: a, op: conv, out: 16}\n  - {id: b, op: conv, out: 10, scalable: false}\n")
    spec = compiler.load(text)
    assert spec.node("a").block.out == 32 and spec.node("b").block.out == 10


def test_compound_scaling_through_vars():
    text = ("blockgraph: 1\nname: s\nvars: {w: 1.0}\nscaling: {width: $w}\ninputs: {x: [3, 8, 8]}\n"
            "nodes:\n  - {id: a, op: conv, out: 64}\n")
    assert compiler.load(text, vars={"w": 1.5}).node("a").block.out == 96
