"""compiler/slices.py: slices of a concatenation that take whole parts read the parts."""

from __future__ import annotations

import operator

import torch

import compiler

PARTS = """
blockgraph: 1
name: parts
inputs: {x: [3, 8, 8]}
nodes:
  - {id: a, op: conv, in: x, out: 4, k: 1}
  - {id: b, op: conv, in: x, out: 4, k: 1}
  - {id: c, op: conv, in: x, out: 2, k: 1}
  - {id: joined, op: concat, in: [a, b, c]}
  - {id: first, op: slice, in: joined, end: 4}               # exactly a
  - {id: last_two, op: slice, in: joined, start: -6}         # b and c: their own concatenation
  - {id: middle_cut, op: slice, in: joined, start: 2, end: 6}  # cuts a and b: stays a slice
  - {id: rows, op: slice, in: joined, dim: 1, start: 2, end: 6}  # another axis: stays
  - {id: p1, op: gap, in: first}
  - {id: p2, op: gap, in: last_two}
  - {id: p3, op: gap, in: middle_cut}
  - {id: p4, op: gap, in: rows}
  - {id: out, op: concat, in: [p1, p2, p3, p4]}
"""


def _slices_of_cat(model) -> list[str]:
    return [n.name for n in model.graph.nodes
            if n.op == "call_function" and n.target is operator.getitem
            and isinstance(n.args[0], torch.fx.Node) and n.args[0].target is torch.cat]


def _without_the_pass(monkeypatch, text_or_path, **kwargs):
    monkeypatch.setattr("compiler.fx.read_parts_directly", lambda graph: 0)
    return compiler.build(text_or_path, **kwargs)


def test_whole_parts_are_read_directly_and_cuts_stay_slices(monkeypatch):
    model = compiler.build(PARTS, seed=0)
    assert sorted(_slices_of_cat(model)) == ["middle_cut", "rows"]
    code = model.code
    assert "first = " not in code and "p1 = torch.mean(a, " in code
    assert "last_two_parts = torch.cat([b, c], 1)" in code
    x = torch.randn(2, 3, 8, 8)
    reference = _without_the_pass(monkeypatch, PARTS, seed=0)
    assert sorted(_slices_of_cat(reference)) == ["first", "last_two", "middle_cut", "rows"]
    assert torch.equal(model(x), reference(x))


def test_dpn_blocks_pass_their_paths_on_as_timm_does(monkeypatch):
    model = compiler.build("specs/dpn68.yaml", seed=0)
    # 22 dual-path blocks, 4 of them projecting: each of the other 18 took a residual and a
    # dense slice of the previous block's concatenation
    assert _slices_of_cat(model) == []
    assert model.code.count("_dense_in_parts = torch.cat(") == 18
    reference = _without_the_pass(monkeypatch, "specs/dpn68.yaml", seed=0)
    assert len(_slices_of_cat(reference)) == 36
    x = torch.randn(2, 3, 224, 224)
    model.train(), reference.train()
    out, ref_out = model(x), reference(x)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0)  # the same numbers, forward
    out.square().sum().backward()
    ref_out.square().sum().backward()
    grads = dict(reference.named_parameters())
    for name, p in model.named_parameters():  # gradients summed in another order: equal to rounding
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-4, atol=1e-6, msg=name)


def test_the_standalone_python_export_of_a_rewritten_graph_gives_the_same_outputs(tmp_path):
    from compiler.export import export

    export(PARTS, "python", tmp_path / "parts.py")  # builds the spec, then verifies the outputs
    assert "torch.cat([b, c], 1)" in (tmp_path / "parts.py").read_text()
