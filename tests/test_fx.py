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


# -- each tensor initialised once ---------------------------------------------------------

@pytest.fixture()
def uninitialised_memory_is_nan():
    """torch.empty fills floats with NaN (and integers with their maximum), so a tensor the build
    forgot to initialise shows."""
    import torch.utils.deterministic

    before = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    yield
    torch.use_deterministic_algorithms(before[0])
    torch.utils.deterministic.fill_uninitialized_memory = before[1]


BIG = """
blockgraph: 1
name: big
inputs: {{x: [256, 8, 8]}}
init: {init}
nodes:
  - {{id: plain, op: conv, out: 256, k: 3}}                 # 590k weights + a bias
  - {{id: normed, op: conv, out: 256, k: 3, norm: batch}}   # and a norm with running statistics
  - {{id: small, op: conv, out: 8, k: 1}}                   # 2k weights: built as usual
"""


def _default_init_calls(monkeypatch) -> list[tuple[int, ...]]:
    """Shapes of the tensors given PyTorch's default conv/linear init (kaiming_uniform_)."""
    calls: list[tuple[int, ...]] = []
    real = torch.nn.init.kaiming_uniform_

    def counting(tensor, *args, **kwargs):
        if tensor.device.type != "meta":
            calls.append(tuple(tensor.shape))
        return real(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", counting)
    return calls


def test_a_policy_sets_big_weights_once_and_every_other_tensor_keeps_its_default(
        monkeypatch, uninitialised_memory_is_nan):
    calls = _default_init_calls(monkeypatch)
    model = compiler.build(BIG.format(init="{conv: he_normal}"), seed=0)
    # the two big convs never drew PyTorch's default weights that he_normal overwrites
    assert calls == [(8, 256, 1, 1)]
    sd = model.state_dict()
    for key, tensor in sd.items():
        assert not (tensor.is_floating_point() and tensor.isnan().any()), f"{key} left uninitialised"
    assert sd["plain.conv.weight"].std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.02)
    # no rule sets the conv's bias: PyTorch's default, uniform within 1/sqrt(fan_in)
    bias = sd["plain.conv.bias"]
    assert 0 < bias.abs().max().item() <= 1 / math.sqrt(256 * 9) and bias.unique().numel() == 256
    # the norm: gamma 1, beta 0, running mean 0, variance 1, no batches yet
    assert torch.equal(sd["normed.norm.weight"], torch.ones(256)) and torch.equal(sd["normed.norm.bias"], torch.zeros(256))
    assert torch.equal(sd["normed.norm.running_mean"], torch.zeros(256))
    assert torch.equal(sd["normed.norm.running_var"], torch.ones(256))
    assert sd["normed.norm.num_batches_tracked"].item() == 0


def test_without_a_policy_every_tensor_gets_the_default_as_before(monkeypatch, uninitialised_memory_is_nan):
    calls = _default_init_calls(monkeypatch)
    model = compiler.build(BIG.format(init="{bias: default}"), seed=0)
    assert sorted(calls) == sorted([(256, 256, 3, 3), (256, 256, 3, 3), (8, 256, 1, 1)])
    bound = 1 / math.sqrt(256 * 9)  # kaiming_uniform_(a=sqrt(5)) on fan_in 2304
    assert 0.95 * bound < model.plain.conv.weight.abs().max().item() <= bound


def test_the_same_seed_gives_the_same_weights_when_defaults_are_skipped():
    text = BIG.format(init="{conv: he_normal}")
    a, b = compiler.build(text, seed=3).state_dict(), compiler.build(text, seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = compiler.build(text, seed=4).state_dict()
    assert not torch.equal(a["plain.conv.weight"], c["plain.conv.weight"])


def test_zoo_models_have_no_uninitialised_tensor(uninitialised_memory_is_nan):
    for name in ("resnet50", "densenet121", "googlenet"):
        for key, tensor in compiler.build(f"specs/{name}.yaml", seed=0).state_dict().items():
            assert not (tensor.is_floating_point() and tensor.isnan().any()), f"{name}: {key} left uninitialised"


LAYER_SCALE_PLUGIN = '''
from typing import Literal
import torch
from torch import nn
import compiler


class ScaledConv(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.gamma = nn.Parameter(torch.full((c, 1, 1), 1e-6))   # a tensor no init policy knows

    def forward(self, x):
        return x + self.gamma * self.conv(x)


@compiler.register
class LayerScaleConv(compiler.Block):
    op: Literal["layer_scale_conv"] = "layer_scale_conv"
    family = "conv"

    def param_count(self, in_shapes):
        c = in_shapes[0][0]
        return c * c * 9 + c + c, 0

    def build(self, in_shapes):
        return ScaledConv(in_shapes[0][0])
'''


def test_a_module_with_tensors_no_policy_knows_is_built_as_written(tmp_path, monkeypatch,
                                                                   uninitialised_memory_is_nan):
    (tmp_path / "layer_scale_plugin.py").write_text(LAYER_SCALE_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    compiler.load_plugins(["layer_scale_plugin"])
    model = compiler.build("""
blockgraph: 1
name: scaled
plugins: [layer_scale_plugin]
inputs: {x: [256, 4, 4]}
init: {conv: he_normal}
nodes:
  - {id: block, op: layer_scale_conv}
""", seed=0)
    assert torch.equal(model.block.gamma, torch.full((256, 1, 1), 1e-6))
    assert model.block.conv.weight.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.02)
    assert not model.block.conv.bias.isnan().any()
