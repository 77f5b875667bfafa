"""Specs that reproduce timm models: DPN-68, DPN-92 and Inception-ResNet-v2.

For each: the parameter count equals the timm model's own (built here, never typed in) and
`compiler.analyze`'s; copying timm's parameters and buffers into the built module in
registration order (shapes checked pair by pair) gives the same outputs in eval mode; and
for DPN-68 the statically inferred shape of every node equals its run-time shape.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import compiler
from support import OutputRecorder, assert_same_outputs, copy_by_order, randomise_batchnorm

timm = pytest.importorskip("timm")

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["dpn68", "dpn92", "inception_resnet_v2"]


def _spec(name: str):
    return compiler.load(ROOT / "specs" / f"{name}.yaml")


def _timm(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False)


# -- parameter counts -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_matches_timm(name):
    spec = _spec(name)
    assert spec.reference == f"timm {name}"
    with torch.device("meta"):
        theirs = timm.create_model(name, pretrained=False)
    expected = sum(p.numel() for p in theirs.parameters())
    assert compiler.analyze(spec).params == expected
    ours = compiler.build(spec, device="meta")
    assert sum(p.numel() for p in ours.parameters()) == expected
    assert sum(b.numel() for b in ours.buffers()) == sum(b.numel() for b in theirs.buffers())


@pytest.mark.parametrize("name", MODELS)
def test_input_size_is_timms_default(name):
    with torch.device("meta"):
        theirs = timm.create_model(name, pretrained=False)
    assert _spec(name).inputs["image"] == tuple(theirs.pretrained_cfg["input_size"])


# -- numerical parity ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_matches_timm_numerically(name):
    theirs = _timm(name)
    gen = torch.Generator().manual_seed(1)
    assert randomise_batchnorm(theirs, gen) > 0
    spec = _spec(name)
    ours = compiler.build(spec, seed=0)
    copy_by_order(ours, theirs)
    assert_same_outputs(ours, theirs, torch.randn(1, *spec.inputs["image"], generator=gen), rtol=1e-4)


# -- static shapes equal run-time shapes -------------------------------------------------------------

def test_dpn68_static_shapes_equal_runtime_shapes():
    spec = _spec("dpn68")
    graph = compiler.analyze(spec).graph
    gm = compiler.build(spec, seed=0).eval()
    x = torch.randn(1, *spec.inputs["image"], generator=torch.Generator().manual_seed(0))
    recorder = OutputRecorder(gm)
    with torch.inference_mode():
        out = recorder.run(x)
    runtime: dict[str, tuple[int, ...]] = {"image": tuple(x.shape)}
    passthrough = []
    for node_id in graph.order:
        if node_id not in recorder.shapes:  # identity-like: emits no fx node and owns no module
            assert spec.node(node_id).block.build(graph.in_shapes(node_id)) is None, node_id
            passthrough.append(node_id)
            runtime[node_id] = runtime[graph.inputs[node_id][0]]
        else:
            runtime[node_id] = recorder.shapes[node_id]
        assert runtime[node_id] == (1, *graph.shapes[node_id]), (node_id, runtime[node_id], graph.shapes[node_id])
    assert len(recorder.shapes) > 0.9 * len(graph.order), passthrough
    assert tuple(out.shape) == (1, 1000)
    # the dual path tensor: [residual | dense] grows by inc channels per block
    assert graph.shapes["conv2.0.concat"] == (64 + 3 * 16, 56, 56)
    assert graph.shapes["conv2.2.concat"] == (64 + 5 * 16, 56, 56)
    assert graph.shapes["conv5.2.concat"] == (512 + 5 * 64, 7, 7)


def test_dpn_b_variant_matches_timm_dpn68b():
    """`b: true` on dpn68.yaml is timm's dpn68b: separate 1x1 convs for the two paths."""
    spec = compiler.load(ROOT / "specs" / "dpn68.yaml", vars={"b": True})
    theirs = _timm("dpn68b")
    gen = torch.Generator().manual_seed(2)
    randomise_batchnorm(theirs, gen)
    ours = compiler.build(spec, seed=0)
    assert compiler.analyze(spec).params == sum(p.numel() for p in theirs.parameters())
    copy_by_order(ours, theirs)
    assert_same_outputs(ours, theirs, torch.randn(1, *spec.inputs["image"], generator=gen), rtol=1e-4)
