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
import torch.fx

import compiler

timm = pytest.importorskip("timm")

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["dpn68", "dpn92", "inception_resnet_v2"]


def _spec(name: str):
    return compiler.load(ROOT / "specs" / f"{name}.yaml")


def _timm(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False)


def _copy_by_order(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    """Copy parameters, then buffers, pairing them by registration order; shapes must agree."""
    with torch.no_grad():
        for kind in ("named_parameters", "named_buffers"):
            mine = list(getattr(ours, kind)())
            ref = list(getattr(theirs, kind)())
            assert len(mine) == len(ref), (kind, len(mine), len(ref))
            for (n1, t1), (n2, t2) in zip(mine, ref):
                assert t1.shape == t2.shape, f"{kind}: {n1} {tuple(t1.shape)} vs {n2} {tuple(t2.shape)}"
                assert t1.dtype == t2.dtype, (n1, n2, t1.dtype, t2.dtype)
                t1.copy_(t2)


def _randomise_batchnorm(model: torch.nn.Module, gen: torch.Generator) -> int:
    """Non-trivial BN scales, shifts and running statistics, so eps and order matter."""
    count = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.num_batches_tracked.fill_(7)
                count += 1
    return count


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
    assert _randomise_batchnorm(theirs, gen) > 0
    spec = _spec(name)
    ours = compiler.build(spec, seed=0)
    _copy_by_order(ours, theirs)
    ours.eval()
    theirs.eval()
    x = torch.randn(1, *spec.inputs["image"], generator=gen)
    with torch.inference_mode():
        expected = theirs(x)
        got = ours(x)
    del ours, theirs
    assert got.shape == expected.shape == (1, 1000)
    scale = expected.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * scale)


# -- static shapes equal run-time shapes -------------------------------------------------------------

class _ShapeRecorder(torch.fx.Interpreter):
    """Runs the graph node by node, keeping per spec node the shape of its last fx node."""

    def __init__(self, gm: torch.fx.GraphModule):
        super().__init__(gm)
        self.shapes: dict[str, tuple[int, ...]] = {}

    def run_node(self, n: torch.fx.Node):
        result = super().run_node(n)
        node_id = n.meta.get("blockgraph_node")
        if node_id is not None:
            self.shapes[node_id] = tuple(result.shape)
        return result


def test_dpn68_static_shapes_equal_runtime_shapes():
    spec = _spec("dpn68")
    graph = compiler.analyze(spec).graph
    gm = compiler.build(spec, seed=0).eval()
    x = torch.randn(1, *spec.inputs["image"], generator=torch.Generator().manual_seed(0))
    recorder = _ShapeRecorder(gm)
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
    _randomise_batchnorm(theirs, gen)
    ours = compiler.build(spec, seed=0)
    assert compiler.analyze(spec).params == sum(p.numel() for p in theirs.parameters())
    _copy_by_order(ours, theirs)
    ours.eval()
    theirs.eval()
    x = torch.randn(1, *spec.inputs["image"], generator=gen)
    with torch.inference_mode():
        expected = theirs(x)
        got = ours(x)
    scale = expected.abs().max().item()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * scale)
