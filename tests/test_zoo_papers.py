"""Zoo specs against their papers' own descriptions (not only parameter totals)."""

from __future__ import annotations

from pathlib import Path

import pytest

import compiler

SPECS = Path(__file__).resolve().parents[1] / "specs"

# Huang et al. 2016, Table 1: layers per dense block and growth rate; stem of 2k channels.
DENSENET_TABLE = {
    "densenet121": ((6, 12, 24, 16), 32),
    "densenet169": ((6, 12, 32, 32), 32),
    "densenet201": ((6, 12, 48, 32), 32),
    "densenet161": ((6, 12, 36, 24), 48),
}


@pytest.mark.parametrize("name", sorted(DENSENET_TABLE))
def test_densenet_channels_per_block_follow_the_paper(name):
    blocks, k = DENSENET_TABLE[name]
    shapes = compiler.analyze(compiler.load(SPECS / f"{name}.yaml")).graph.shapes
    resolve = compiler.load(SPECS / f"{name}.yaml").aliases
    channels = 2 * k  # the stem
    for i, layers in enumerate(blocks, start=1):
        channels += layers * k
        out = shapes[_follow(resolve, f"denseblock{i}")]
        assert out[0] == channels, f"denseblock{i}"
        if i < len(blocks):
            channels //= 2  # transition, compression 0.5
            assert shapes[f"transition{i}"][0] == channels
    assert shapes["classifier"] == (1000,)


def _follow(aliases, name):
    while name in aliases:
        name = aliases[name]
    return name


def test_densenet_bc_100_has_the_papers_depth_and_size():
    spec = compiler.load(SPECS / "densenet_bc_100_cifar.yaml")
    convs = [n for n in spec.nodes if n.op == "conv"]
    linears = [n for n in spec.nodes if n.op == "linear"]
    transition_convs = sum(1 for n in spec.nodes if n.op == "transition")
    assert len(convs) + transition_convs + len(linears) == 100  # L = 100 weighted layers
    assert round(compiler.analyze(spec).params / 1e6, 1) == 0.8  # "0.8M" in Table 2


def test_nin_is_mlpconv_stacks_and_global_average_pooling():
    spec = compiler.load(SPECS / "nin_cifar10.yaml")
    analysis = compiler.analyze(spec)
    assert not any(n.op in ("linear", "flatten") for n in spec.nodes)  # no fully connected layer
    assert [g.op for g in spec.groups.values()] == ["mlpconv"] * 3
    last_conv = [n for n in spec.nodes if n.op == "conv"][-1]
    assert analysis.graph.shapes[last_conv.id] == (10, 8, 8)  # one map per class
    assert spec.nodes[-1].op == "gap" and analysis.graph.shapes[spec.nodes[-1].id] == (10,)
    one_by_one = [n for n in spec.nodes if n.op == "conv" and n.block.k == 1]
    assert len(one_by_one) == 6  # cccp1..cccp6


def test_googlenet_aux_heads_are_extra_outputs():
    model = compiler.build(SPECS / "googlenet_aux.yaml", device="meta")
    import torch

    outs = model(torch.empty(1, 3, 224, 224, device="meta"))
    assert [tuple(o.shape) for o in outs] == [(1, 1000)] * 3


def test_stacked_3x3_convs_of_vgg_have_the_papers_receptive_fields():
    rows = {n.id: n.rf for n in compiler.analyze(compiler.load(SPECS / "vgg16.yaml")).nodes}
    assert rows["conv1.0"] == 3 and rows["conv1.1"] == 5  # two 3x3 convs see 5x5
    assert rows["conv3.2"] == 40
