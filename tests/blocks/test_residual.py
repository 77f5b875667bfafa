"""Residual blocks: the sum, the scaling and the shortcut, checked numerically."""

from __future__ import annotations

import torch

import compiler

SPEC = """
blockgraph: 1
name: res
inputs: {{x: [8, 6, 6]}}
nodes:
  - {{id: block, op: residual, body: {body}, out: {out}, stride: {stride}, scale: {scale}{extra}}}
"""


def build(body="basic", out=8, stride=1, scale=1.0, extra=""):
    text = SPEC.format(body=body, out=out, stride=stride, scale=scale, extra=extra)
    return compiler.build(text, seed=0).eval(), compiler.load(text)


def test_zeroed_body_gives_the_input_back():
    model, _ = build(extra=", act: identity")
    with torch.no_grad():
        model.get_submodule("block.conv2.norm").weight.zero_()  # the body's last layer
        model.get_submodule("block.conv2.norm").bias.zero_()
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(model(x), x)


def test_zero_init_last_starts_as_identity_before_the_final_relu():
    model, _ = build(extra=", zero_init_last: true")
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(model(x), torch.relu(x))


def test_scale_weights_the_branch_exactly():
    scaled, spec = build(scale=0.2, extra=", act: identity")
    plain, _ = build(scale=1.0, extra=", act: identity")
    plain.load_state_dict(scaled.state_dict())
    x = torch.randn(2, 8, 6, 6)
    branch = plain(x) - x  # F(x) with scale 1
    torch.testing.assert_close(scaled(x), x + 0.2 * branch, rtol=1e-5, atol=1e-6)


def test_projection_is_added_only_when_the_shape_changes():
    same, spec = build()
    assert not hasattr(same.block, "shortcut")
    strided, spec = build(out=16, stride=2)
    proj = strided.block.shortcut
    assert proj.conv.stride == (2, 2) and proj.conv.out_channels == 16 and proj.conv.bias is None
    shapes = compiler.analyze(spec).graph.shapes
    assert shapes["block.act"] == (16, 3, 3)


def test_bottleneck_width_follows_torchvision():
    _, spec = build(body="bottleneck", out=256, extra=", groups: 32, base_width: 4")
    convs = {n.id: n.block for n in spec.nodes if n.op == "conv"}
    assert convs["block.conv1"].out == 128 and convs["block.conv2"].groups == 32 and convs["block.conv3"].out == 256


def test_preactivation_unit_has_no_activation_after_the_sum():
    model, spec = build(extra=", preact: true")
    ids = [n.id for n in spec.nodes]
    assert ids[-1] == "block.add" and spec.node("block.conv1").block.order == "norm-act-conv"
    x = torch.randn(2, 8, 6, 6)
    assert (model(x) < 0).any()  # no final ReLU
