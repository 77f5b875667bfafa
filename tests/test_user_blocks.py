"""User-defined blocks, repeats with `first:`, `when:` and `extends:`."""

from __future__ import annotations

import pytest

import compiler
from compiler import SpecError

HEADER = "blockgraph: 1\nname: t\ninputs: {x: [3, 16, 16]}\n"

STAGE = HEADER + """blocks:
  unit:
    params: {out: int, stride: 1}
    nodes:
      - {id: conv1, op: conv, out: $out, stride: $stride, norm: batch, act: relu}
      - {id: conv2, op: conv, out: $out}
  stage:
    params: {out: int, n: int, stride: 2}
    nodes:
      - {op: unit, out: $out, repeat: $n, first: {stride: $stride}}
nodes:
  - {id: layer1, op: stage, out: 8, n: 2, stride: 1}
  - {id: layer2, op: stage, out: 16, n: 3}
"""


def errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        compiler.analyze(compiler.load(text))
    return [str(e) for e in info.value.errors]


def test_hierarchical_ids_and_first_arguments():
    spec = compiler.load(STAGE)
    ids = [n.id for n in spec.nodes]
    assert ids[:4] == ["layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "layer1.1.conv2"]
    assert spec.node("layer2.0.conv1").block.stride == 2 and spec.node("layer2.1.conv1").block.stride == 1
    shapes = compiler.analyze(spec).graph.shapes
    assert shapes["layer2.2.conv2"] == (16, 8, 8)
    keys = compiler.build(spec, device="meta").state_dict()
    assert "layer2.1.conv1.conv.weight" in keys and "layer2.1.conv1.norm.running_var" in keys
    assert spec.groups["layer2"].kind == "user" and spec.groups["layer2.0"].kind == "user"


def test_recursion_is_an_error_with_the_chain():
    text = HEADER + "blocks:\n  a:\n    nodes: [{op: b}]\n  b:\n    nodes: [{op: a}]\nnodes:\n  - {op: a}\n"
    msgs = errors(text)
    assert any("block 'a' uses itself: a -> b -> a" in m for m in msgs)


def test_parameter_checks():
    text = STAGE.replace("out: 8, n: 2, stride: 1}", "out: 8.5, n: 2, strde: 1}")
    msgs = errors(text)
    assert any("unknown parameter 'strde' of block 'stage'; did you mean 'stride'?" in m for m in msgs)
    assert any("parameter 'out' of block 'stage' expects int, got 8.5" in m for m in msgs)
    msgs = errors(STAGE.replace("out: 16, n: 3}", "n: 3}"))
    assert any("block 'stage' needs parameter 'out' (int)" in m for m in msgs)


def test_errors_inside_a_block_point_into_the_block():
    text = STAGE.replace("- {id: conv2, op: conv, out: $out}", "- {id: conv2, op: conv, out: $out, k: $kk}")
    msgs = errors(text)
    assert msgs and len(msgs) == 1 and msgs[0].startswith("<string>:9:45: blocks.unit.nodes[1].k:") and "unknown variable $kk" in msgs[0]


def test_unknown_name_inside_a_block():
    text = STAGE.replace("- {id: conv2, op: conv, out: $out}", "- {id: conv2, op: add, in: [conv1, conv]}")
    msgs = errors(text)
    assert msgs == ["<string>:9:34: blocks.unit.nodes[1].in: 'conv' is not a node or input of this block; "
                    "did you mean 'conv2'? (known here: conv1, conv2, x)"]


def test_when_leaves_nodes_out():
    text = HEADER + ("vars: {extra: false}\nnodes:\n  - {id: a, op: conv, out: 4}\n"
                     "  - {id: side, op: conv, in: a, out: 4, when: $extra}\n  - {id: b, op: conv, in: a, out: 4}\n")
    assert [n.id for n in compiler.load(text).nodes] == ["a", "b"]
    assert [n.id for n in compiler.load(text, vars={"extra": True}).nodes] == ["a", "side", "b"]
    msgs = errors(text + "outputs: [b, side]\n")
    assert any("output 'side' is left out by its `when:`" in m for m in msgs)


def test_extends_merges_vars_and_locates_errors_in_the_parent(tmp_path):
    (tmp_path / "base.yaml").write_text(HEADER + "vars: {width: 8, k: 3}\nnodes:\n  - {op: conv, out: $width, k: $k}\n")
    (tmp_path / "child.yaml").write_text("blockgraph: 1\nextends: base.yaml\nname: child\nvars: {width: 4}\n")
    spec = compiler.load(tmp_path / "child.yaml")
    assert spec.name == "child" and spec.nodes[0].block.out == 4 and spec.nodes[0].block.k == 3
    (tmp_path / "child.yaml").write_text("blockgraph: 1\nextends: base.yaml\nname: child\nvars: {width: -1}\n")
    with pytest.raises(SpecError) as info:
        compiler.load(tmp_path / "child.yaml")
    assert str(info.value).endswith("base.yaml:6:21: nodes[0].out: '$width' is -1: expected a positive integer")


def test_extends_loop_and_missing_file(tmp_path):
    (tmp_path / "a.yaml").write_text("blockgraph: 1\nextends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("blockgraph: 1\nextends: a.yaml\nname: b\n")
    with pytest.raises(SpecError) as info:
        compiler.load(tmp_path / "a.yaml")
    assert "loop" in str(info.value)
    (tmp_path / "c.yaml").write_text("blockgraph: 1\nextends: nope.yaml\nname: c\n")
    with pytest.raises(SpecError) as info:
        compiler.load(tmp_path / "c.yaml")
    assert "c.yaml:2:10: extends: no such spec file 'nope.yaml'" in str(info.value)
