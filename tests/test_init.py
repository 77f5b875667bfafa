"""Init policies: each kind gives the distribution its paper defines, per family and per node."""

from __future__ import annotations

import math

import pytest
import torch

import compiler


def spec(init: str, node_init: str = "") -> str:
    return f"""
blockgraph: 1
name: init_check
inputs: {{x: [64, 8, 8]}}
init: {init}
nodes:
  - {{id: c, op: conv, out: 256, k: 3, norm: batch{node_init}}}
  - {{id: d, op: conv, out: 128, k: 1}}
  - {{op: gap}}
  - {{id: fc, op: linear, out: 512}}
"""


def weights(text: str, seed: int = 0):
    return compiler.build(text, seed=seed).state_dict()


def test_he_normal_fan_in_and_out():
    w = weights(spec("{conv: he_normal}"))["d.conv.weight"]  # fan_in 256, fan_out 128
    assert w.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    w = weights(spec("{conv: {weight: {kind: he_normal, mode: fan_out}}}"))["d.conv.weight"]
    assert w.std().item() == pytest.approx(math.sqrt(2 / 128), rel=0.05)


def test_he_uniform_bounds():
    w = weights(spec("{conv: he_uniform}"))["d.conv.weight"]
    bound = math.sqrt(6 / 256)
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.95 * bound


def test_xavier_normal_and_uniform():
    w = weights(spec("{linear: xavier_normal}"))["fc.linear.weight"]  # fan_in 128, fan_out 512
    assert w.std().item() == pytest.approx(math.sqrt(2 / (128 + 512)), rel=0.05)
    w = weights(spec("{linear: xavier_uniform}"))["fc.linear.weight"]
    bound = math.sqrt(6 / (128 + 512))
    assert 0.95 * bound < w.abs().max().item() <= bound


def test_small_uniform_and_normal():
    w = weights(spec("{conv: uniform}"))["c.conv.weight"]
    assert w.abs().max().item() <= 0.01 and w.std().item() == pytest.approx(0.01 / math.sqrt(3), rel=0.05)
    w = weights(spec("{linear: {weight: {kind: normal, std: 0.02}}}"))["fc.linear.weight"]
    assert w.std().item() == pytest.approx(0.02, rel=0.05)


def test_a_map_with_kind_is_the_weights_rule_and_a_typo_names_the_rules_keys():
    w = weights(spec("{conv: {kind: uniform, a: 0.05}}"))["c.conv.weight"]  # = {weight: {kind: ...}}
    assert 0.045 < w.abs().max().item() <= 0.05
    with pytest.raises(compiler.SpecError) as caught:
        compiler.load(spec("{conv: {wieght: he_normal}}"))
    assert "unknown key 'wieght' in conv; did you mean 'weight'? (allowed: weight, bias)" in str(caught.value)


def test_bias_policies():
    sd = weights(spec("{bias: {kind: constant, value: 0.1}}"))
    assert torch.all(sd["d.conv.bias"] == 0.1) and torch.all(sd["fc.linear.bias"] == 0.1)
    sd = weights(spec("{bias: zeros}"))
    assert torch.all(sd["d.conv.bias"] == 0) and torch.all(sd["fc.linear.bias"] == 0)
    # a family's own bias rule wins over the spec-wide one
    sd = weights(spec("{bias: zeros, linear: {bias: {kind: constant, value: 0.5}}}"))
    assert torch.all(sd["d.conv.bias"] == 0) and torch.all(sd["fc.linear.bias"] == 0.5)


def test_node_override_wins():
    sd = weights(spec("{conv: he_normal}", ", init: {weight: zeros}"))
    assert torch.all(sd["c.conv.weight"] == 0)
    assert sd["d.conv.weight"].std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.05)


def test_norm_family_and_defaults():
    sd = weights(spec("{norm: {weight: {kind: constant, value: 0.5}}}"))
    assert torch.all(sd["c.norm.weight"] == 0.5) and torch.all(sd["c.norm.bias"] == 0)
    assert torch.all(sd["c.norm.running_var"] == 1)
    # no policy: PyTorch's default (kaiming_uniform with a=sqrt(5)) -> bound 1/sqrt(fan_in)
    w = weights(spec("{}"))["d.conv.weight"]
    assert w.abs().max().item() <= 1 / math.sqrt(256)


def test_seed_in_spec_is_used_and_build_seed_overrides():
    text = spec("{seed: 7, conv: he_normal}")
    a, b = weights(text, seed=None), compiler.build(text).state_dict()
    assert torch.equal(a["c.conv.weight"], b["c.conv.weight"])
    c = weights(text, seed=8)
    assert not torch.equal(a["c.conv.weight"], c["c.conv.weight"])


def test_vector_init_on_matrix_kind_is_a_located_error_at_load():
    with pytest.raises(compiler.SpecError) as err:
        compiler.load(spec("{bias: he_normal}"))
    assert str(err.value).startswith("<string>:5:14: init.bias: he_normal needs a weight matrix")
    with pytest.raises(compiler.SpecError) as err:
        compiler.load(spec("{norm: xavier_uniform}"))
    assert "norm's scale (gamma) is a vector" in str(err.value)


def test_pytorch_and_keras_names_are_aliases():
    a = weights(spec("{conv: kaiming_normal}"))["d.conv.weight"]
    b = weights(spec("{conv: he_normal}"))["d.conv.weight"]
    assert torch.equal(a, b)


def test_trunc_normal_cuts_at_two_std_or_the_given_bounds():
    w = weights(spec("{conv: {weight: {kind: trunc_normal, std: 0.02}}}"))["c.conv.weight"]
    assert w.abs().max().item() <= 0.04 and w.abs().max().item() > 0.035  # cut at 2 std, reached
    # torchvision's GoogLeNet: trunc_normal_(std=0.01, a=-2, b=2), no cut in practice
    w = weights(spec("{conv: {weight: {kind: trunc_normal, std: 0.01, low: -2, high: 2}}}"))["c.conv.weight"]
    assert w.abs().max().item() > 0.03 and w.std().item() == pytest.approx(0.01, rel=0.05)
    w = weights(spec("{conv: {weight: {kind: trunc_normal, std: 0.01, low: 0, high: 0.005}}}"))["c.conv.weight"]
    assert w.min().item() >= 0 and w.max().item() <= 0.005


def test_trunc_normal_bounds_out_of_order_are_a_located_error():
    with pytest.raises(compiler.SpecError) as err:
        compiler.load(spec("{conv: {weight: {kind: trunc_normal, low: 1, high: 0.5}}}"))
    assert str(err.value).startswith("<string>:5:")
    assert "trunc_normal needs low < high, got low 1 and high 0.5" in str(err.value)


def test_build_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    compiler.build(spec("{seed: 1, conv: he_normal}"))
    assert torch.equal(torch.rand(3), expected)


def test_same_seed_same_weights_on_every_tensor():
    a, b = weights(spec("{}"), seed=3), weights(spec("{}"), seed=3)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_he_uniform_with_a_leaky_relu_and_xavier_with_a_gain_follow_their_formulas():
    # He et al.: gain sqrt(2 / (1 + slope^2)), bound gain * sqrt(3 / fan_in); d's fan_in is 256
    w = weights(spec("{conv: {weight: {kind: he_uniform, nonlinearity: leaky_relu, slope: 0.2}}}"))["d.conv.weight"]
    bound = math.sqrt(2 / (1 + 0.2**2)) * math.sqrt(3 / 256)
    assert 0.95 * bound < w.abs().max().item() <= bound
    # Glorot & Bengio: std gain * sqrt(2 / (fan_in + fan_out)); fc: fan_in 128, fan_out 512
    w = weights(spec("{linear: {weight: {kind: xavier_normal, gain: 3}}}"))["fc.linear.weight"]
    assert w.std().item() == pytest.approx(3 * math.sqrt(2 / (128 + 512)), rel=0.05)


def test_orthogonal_rows_are_orthonormal_times_the_gain():
    w = weights(spec("{linear: {weight: {kind: orthogonal, gain: 2}}}"))["fc.linear.weight"]  # 512 x 128
    assert torch.allclose(w.T @ w, 4 * torch.eye(128), atol=1e-4)


def test_norm_ones_and_zeros_and_a_node_rule_for_one_family_inside_it():
    sd = weights(spec("{norm: {weight: zeros, bias: ones}}"))
    assert torch.all(sd["c.norm.weight"] == 0) and torch.all(sd["c.norm.bias"] == 1)
    sd = weights(spec("{}", ", init: {norm: {weight: {kind: constant, value: 0.25}}}"))
    assert torch.all(sd["c.norm.weight"] == 0.25)
    assert not torch.all(sd["c.conv.weight"] == 0.25)  # the node's conv keeps its default
