"""The compiler's output: a GraphModule with readable code, id-based state_dict keys, that runs
on CPU and the meta device, in other dtypes, under TorchScript, torch.export and torch.compile."""

from __future__ import annotations

import math

import pytest
import torch

import compiler

BRANCHY = """
blockgraph: 1
name: two-heads
inputs:
  image: [3, 16, 16]
  extra: [8]
nodes:
  - {id: stem, op: conv, in: image, out: 8, k: 3, norm: batch, act: relu}
  - {id: left, op: conv, in: stem, out: 8, k: 1}
  - {id: right, op: conv, in: stem, out: 8, k: 3, act: relu}
  - {id: joined, op: add, in: [left, right]}
  - {id: cat, op: concat, in: [joined, stem]}
  - {id: pool, op: gap}
  - {id: both, op: concat, in: [pool, extra]}
  - {id: logits, op: linear, out: 5}
  - {id: probs, op: act, kind: softmax}
outputs: [logits, probs]
"""


def test_state_dict_keys_come_from_node_ids():
    model = compiler.build(BRANCHY, seed=0)
    keys = list(model.state_dict())
    assert keys[:2] == ["stem.conv.weight", "stem.norm.weight"]
    assert "left.conv.weight" in keys and "left.conv.bias" in keys
    assert "logits.linear.weight" in keys
    assert model.stem.conv.in_channels == 3 and model.logits.linear.in_features == 16 + 8


def test_generated_code_reads_like_pytorch():
    code = compiler.build(BRANCHY).code
    assert "def forward(self, image, extra):" in code
    assert "stem_conv = self.stem.conv(image)" in code
    assert "joined = left.add_(right)" in code  # a fresh, single-use conv output: summed in place
    assert "torch.cat([joined, stem], 1)" in code
    assert "torch.softmax(logits, dim = 1)" in code
    assert "return (logits, probs)" in code


def test_multiple_inputs_and_outputs_run():
    model = compiler.build(BRANCHY, seed=0).eval()
    logits, probs = model(torch.randn(4, 3, 16, 16), torch.randn(4, 8))
    assert logits.shape == (4, 5)
    torch.testing.assert_close(probs, torch.softmax(logits, 1))


def test_meta_device_allocates_nothing():
    model = compiler.build("specs/vgg16.yaml", device="meta")
    assert all(p.device.type == "meta" for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 138_357_544
    out = model(torch.empty(2, 3, 224, 224, device="meta"))
    assert out.shape == (2, 1000) and out.device.type == "meta"


def test_dtype_and_device_are_honoured():
    model = compiler.build(BRANCHY, device="cpu", dtype=torch.float64, seed=0)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    logits, _ = model(torch.randn(2, 3, 16, 16, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64))
    assert logits.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device():
    model = compiler.build(BRANCHY, device="cuda", seed=0)
    assert all(p.is_cuda for p in model.parameters())
    logits, _ = model(torch.randn(2, 3, 16, 16, device="cuda"), torch.randn(2, 8, device="cuda"))
    assert logits.is_cuda


def test_same_seed_same_weights_other_seed_other_weights():
    a = compiler.build(BRANCHY, seed=1).state_dict()
    b = compiler.build(BRANCHY, seed=1).state_dict()
    c = compiler.build(BRANCHY, seed=2).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["stem.conv.weight"], c["stem.conv.weight"])


def test_torchscript_matches_eager():
    model = compiler.build(BRANCHY, seed=0).eval()
    scripted = torch.jit.script(model)
    x, e = torch.randn(2, 3, 16, 16), torch.randn(2, 8)
    for got, want in zip(scripted(x, e), model(x, e)):
        torch.testing.assert_close(got, want)


def test_torch_export_with_dynamic_batch():
    model = compiler.build("specs/default.yaml", seed=0).eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (torch.randn(2, 3, 32, 32),), dynamic_shapes=({0: batch},))
    x = torch.randn(5, 3, 32, 32)
    torch.testing.assert_close(program.module()(x), model(x))


def test_torch_compile_matches_eager():
    model = compiler.build("specs/default.yaml", seed=0).eval()
    compiled = torch.compile(model)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def test_fx_nodes_remember_their_spec_line():
    model = compiler.build(BRANCHY)
    right = next(n for n in model.graph.nodes if n.name == "right_conv")
    assert right.meta["blockgraph_node"] == "right"
    line = BRANCHY.splitlines().index(next(l for l in BRANCHY.splitlines() if "id: right" in l)) + 1
    assert right.meta["blockgraph_loc"].endswith(f":{line}:5")


def test_channels_last_and_autocast_run():
    model = compiler.build("specs/default.yaml", seed=0).eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.shape == (2, 10) and math.isfinite(out.float().sum().item())


def test_build_reports_the_seconds_of_each_stage():
    import time

    from compiler.fx import StageTimes, build

    times = StageTimes()
    start = time.perf_counter()
    build("specs/resnet18.yaml", times=times)
    elapsed = time.perf_counter() - start
    assert all(getattr(times, stage) > 0 for stage in ("load", "analyze", "construct", "emit"))
    assert times.total == times.load + times.analyze + times.construct + times.emit <= elapsed
