"""The in-place rewrite of generated code (compiler.inplace): where it applies, where it must
not, and that outputs and gradients are those of the out-of-place graph."""

from __future__ import annotations

import operator

import pytest
import torch

import compiler
from compiler import inplace


def _calls(model) -> dict[str, int]:
    counts = {"add_": 0, "add": 0, "relu_": 0, "relu": 0}
    for n in model.graph.nodes:
        if n.op == "call_method" and n.target == "add_":
            counts["add_"] += 1
        elif n.op == "call_function" and n.target is operator.add:
            counts["add"] += 1
        elif n.op == "call_function" and n.target is torch.relu_:
            counts["relu_"] += 1
        elif n.op == "call_function" and n.target is torch.relu:
            counts["relu"] += 1
    return counts


def _out_of_place(monkeypatch, text_or_path, **kwargs):
    monkeypatch.setattr("compiler.fx.make_inplace", lambda graph, root: 0)
    return compiler.build(text_or_path, **kwargs)


def test_resnet_shortcuts_add_into_the_branch_and_relu_in_place():
    model = compiler.build("specs/resnet18.yaml", device="meta")
    # 8 basic blocks: `branch.add_(shortcut)` then `relu_`, as torchvision's `out += identity`
    assert _calls(model) == {"add_": 8, "add": 0, "relu_": 8, "relu": 0}
    assert "layer1_0_add = layer1_0_conv2.add_(maxpool)" in model.code
    # a projection shortcut too is summed into the branch, computed after it as torchvision does
    # (`identity = self.downsample(x)` after the body): inductor then schedules the two convs in
    # that order, keeping the shortcut in cache for the sum
    assert "layer2_0_add = layer2_0_conv2.add_(layer2_0_shortcut)" in model.code
    code = model.code
    assert code.index("layer2_0_conv2_conv = ") < code.index("layer2_0_shortcut_conv = ")


UNSAFE = """\
blockgraph: 1
name: unsafe
inputs: {x: [4, 6, 6]}
nodes:
  - {id: c1, op: conv, out: 4, k: 3}            # a plain conv output: fresh
  - {id: r1, op: act, kind: relu}               # relu's backward reads its output: never written over
  - {id: s1, op: add, in: [r1, x]}              # r1 is not fresh, x is the graph input: stays a + b
  - {id: c2, op: conv, out: 4, k: 3, in: s1}
  - {id: twice, op: add, in: [c2, c2]}          # the same tensor twice: stays
  - {id: c3, op: conv, out: 4, k: 3, in: twice}
  - {id: sg, op: act, kind: sigmoid, in: c3}
  - {id: s3, op: add, in: [c3, sg]}             # c3 is read twice (sigmoid and here): stays
  - {id: h0, op: slice, end: 2, in: s3}
  - {id: h1, op: slice, start: 2, in: s3}
  - {id: v0, op: add, in: [h0, h1]}             # views of s3: never written over
  - {id: v, op: concat, in: [v0, v0]}
  - {id: c5, op: conv, out: 4, k: 1, in: v}
  - {id: c6, op: conv, out: 4, k: 1, in: v}
  - {id: ok, op: add, in: [c5, c6]}             # two fresh single-use convs: c5.add_(c6)
  - {id: r2, op: act, kind: relu, in: ok}       # relu_ on the sum
outputs: [r2, s3]
"""


def test_unsafe_cases_stay_out_of_place():
    model = compiler.build(UNSAFE, device="meta")
    code = model.code
    assert "s1 = r1 + x" in code
    assert "twice = c2 + c2" in code
    assert "s3 = c3 + sg" in code
    assert "v0 = h0 + h1" in code
    assert "ok = c5.add_(c6)" in code
    assert "r2 = torch.relu_(ok)" in code
    assert "r1 = torch.relu_(c1)" in code  # a conv's output read once: relu in place is fine


@pytest.mark.parametrize("text", [UNSAFE, "specs/resnet18.yaml"])
def test_outputs_and_gradients_equal_the_out_of_place_graph(text, monkeypatch):
    ours = compiler.build(text, seed=0, vars={"classes": 10} if text.endswith("resnet18.yaml") else None)
    shape = (2, 4, 6, 6) if text is UNSAFE else (2, 3, 64, 64)
    plain = _out_of_place(monkeypatch, text, seed=0, vars={"classes": 10} if text is not UNSAFE else None)
    assert ours.code != plain.code
    x = torch.randn(shape)
    for model in (ours, plain):
        model.train()
    outs = [model(x) for model in (ours, plain)]
    outs = [o if isinstance(o, tuple) else (o,) for o in outs]
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for model, out in zip((ours, plain), outs):
        sum(o.square().sum() for o in out).backward()
    for (name, p), q in zip(ours.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-7, msg=name)


def test_graph_inputs_are_never_written_over():
    graph = torch.fx.Graph()
    x = graph.placeholder("x")
    y = graph.placeholder("y")
    for node in (x, y):
        node.meta[inplace.SHAPE] = (3,)
    total = graph.call_function(operator.add, (x, y))
    graph.output(total)
    assert inplace.make_inplace(graph, torch.nn.Module()) == 0  # graph inputs belong to the caller


PREACT = """\
blockgraph: 1
name: preact
inputs: {x: [4, 6, 6]}
nodes:
  - {id: c0, op: conv, out: 4, k: 1}
  - {id: with_norm, op: conv, out: 4, k: 3, norm: batch, act: relu, order: norm-act-conv, in: c0}
  - {id: no_norm, op: conv, out: 4, k: 3, act: relu, order: norm-act-conv, in: c0}
  - {id: s, op: add, in: [with_norm, no_norm]}
  - {id: both, op: add, in: [s, c0]}
"""


def test_pre_activation_relu_is_in_place_only_on_the_norms_output():
    model = compiler.build(PREACT, seed=0)
    assert model.with_norm.act.inplace  # overwrites the norm's output, private to the unit
    assert not model.no_norm.act.inplace  # would overwrite c0, which `both` reads too
    x = torch.randn(2, 4, 6, 6)
    c0 = model.c0(x).detach()
    expected = (model.with_norm.conv(torch.relu(model.with_norm.norm(c0))) + model.no_norm.conv(torch.relu(c0)) + c0)
    out = model(x)
    torch.testing.assert_close(out, expected)
    out.sum().backward()  # no in-place modification of a tensor autograd saved
