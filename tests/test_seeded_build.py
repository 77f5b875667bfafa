"""A build draws its weights as hand-written code does: each layer's PyTorch default as it is
constructed, under `torch.manual_seed(seed)`, then the init policy's rules over them in module
order; the caller's random state is left alone, and a tensor is never left uninitialised."""

from __future__ import annotations

import math
import threading

import pytest
import torch
from torch import nn

import compiler

SMALL = """
blockgraph: 1
name: small
inputs: {{x: [3, 8, 8]}}
init: {init}
nodes:
  - {{id: c, op: conv, out: 16, k: 3}}
  - {{id: n, op: conv, out: 8, k: 1, norm: batch}}
  - {{op: gap}}
  - {{id: fc, op: linear, out: 5}}
"""


def _hand_written(seed: int) -> dict[str, nn.Module]:
    """The layers of SMALL as a hand-written model's `__init__` creates them, in the same order."""
    torch.manual_seed(seed)
    return {"c": nn.Conv2d(3, 16, 3, padding=1), "n": nn.Conv2d(16, 8, 1, bias=False), "bn": nn.BatchNorm2d(8),
            "fc": nn.Linear(8, 5)}


def test_without_a_policy_a_seed_gives_the_hand_written_constructors_weights():
    model = compiler.build(SMALL.format(init="{}"), seed=5)
    layers = _hand_written(5)
    assert torch.equal(model.c.conv.weight, layers["c"].weight) and torch.equal(model.c.conv.bias, layers["c"].bias)
    assert torch.equal(model.n.conv.weight, layers["n"].weight)
    assert torch.equal(model.fc.linear.weight, layers["fc"].weight)
    assert torch.equal(model.fc.linear.bias, layers["fc"].bias)


def test_the_policy_draws_after_every_layer_is_built_in_module_order():
    """torchvision's pattern: build the layers (defaults drawn), then loop over the modules."""
    model = compiler.build(SMALL.format(init="{conv: {weight: {kind: he_normal, mode: fan_out}}, bias: zeros}"),
                           seed=5)
    layers = _hand_written(5)
    for conv in (layers["c"], layers["n"]):
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    assert torch.equal(model.c.conv.weight, layers["c"].weight)
    assert torch.equal(model.n.conv.weight, layers["n"].weight)
    assert torch.equal(model.fc.linear.weight, layers["fc"].weight)  # no rule: its default
    assert torch.equal(model.c.conv.bias, torch.zeros(16)) and torch.equal(model.fc.linear.bias, torch.zeros(5))


def test_same_seed_same_weights_and_different_seeds_differ():
    text = SMALL.format(init="{conv: he_uniform, linear: xavier_normal}")
    a, b, c = (compiler.build(text, seed=s).state_dict() for s in (1, 1, 2))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not any(torch.equal(a[k], c[k]) for k in ("c.conv.weight", "c.conv.bias", "fc.linear.weight"))


def test_without_a_seed_the_global_random_state_decides():
    text = SMALL.format(init="{}")
    torch.manual_seed(7)
    a = compiler.build(text).state_dict()
    torch.manual_seed(7)
    b = compiler.build(text).state_dict()
    c = compiler.build(text).state_dict()  # the global state moved on
    assert torch.equal(a["c.conv.weight"], b["c.conv.weight"])
    assert not torch.equal(b["c.conv.weight"], c["c.conv.weight"])
    torch.manual_seed(7)
    assert torch.equal(a["c.conv.weight"], nn.Conv2d(3, 16, 3, padding=1).weight)  # as hand-written code draws


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
"""


def test_a_policy_sets_what_it_names_and_every_other_tensor_keeps_its_default(uninitialised_memory_is_nan):
    sd = compiler.build(BIG.format(init="{conv: he_normal}"), seed=0).state_dict()
    for key, tensor in sd.items():
        assert not (tensor.is_floating_point() and tensor.isnan().any()), f"{key} left uninitialised"
    fan_in = 256 * 3 * 3
    assert sd["plain.conv.weight"].std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    # no rule sets a conv's bias: PyTorch's default, uniform within 1/sqrt(fan_in)
    bias = sd["plain.conv.bias"]
    assert 0 < bias.abs().max().item() <= 1 / math.sqrt(fan_in) and bias.unique().numel() == 256
    # the norm: gamma 1, beta 0, running mean 0, variance 1, no batches yet
    assert torch.equal(sd["normed.norm.weight"], torch.ones(256)) and torch.equal(sd["normed.norm.bias"], torch.zeros(256))
    assert torch.equal(sd["normed.norm.running_mean"], torch.zeros(256))
    assert torch.equal(sd["normed.norm.running_var"], torch.ones(256))
    assert sd["normed.norm.num_batches_tracked"].item() == 0


def test_zoo_models_have_no_uninitialised_tensor(uninitialised_memory_is_nan):
    for name in ("resnet50", "densenet121", "googlenet", "dpn68"):
        for key, tensor in compiler.build(f"specs/{name}.yaml", seed=0).state_dict().items():
            assert not (tensor.is_floating_point() and tensor.isnan().any()), f"{name}: {key} left uninitialised"


def test_zoo_defaults_have_pytorchs_distribution():
    """dpn68 keeps PyTorch's defaults (timm's DPN sets none): each conv weight is uniform within
    1/sqrt(fan_in) (kaiming_uniform_ with a = sqrt(5)), as nn.Conv2d draws it, and fills that range."""
    model = compiler.build("specs/dpn68.yaml", seed=0)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 72
    for conv in convs:
        out_channels, in_per_group, kh, kw = conv.weight.shape
        bound = 1 / math.sqrt(in_per_group * kh * kw)
        top = conv.weight.abs().max().item()
        assert top <= bound and (conv.weight.numel() < 500 or top > 0.95 * bound)


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


def test_a_plugin_block_is_built_as_written_and_then_given_the_policy(tmp_path, monkeypatch,
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


def test_seeded_builds_in_several_threads_at_once_give_what_each_gives_alone():
    """The global generator is one per process: seeded builds take turns (the designer builds
    in each browser session's thread)."""
    text = BIG.format(init="{conv: he_normal}")
    alone = {seed: compiler.build(text, seed=seed).state_dict() for seed in (1, 2)}
    together: dict[int, dict] = {}
    threads = [threading.Thread(target=lambda s=seed: together.__setitem__(s, compiler.build(text, seed=s).state_dict()))
               for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed in (1, 2):
        assert all(torch.equal(alone[seed][k], together[seed][k]) for k in alone[seed])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_build_draws_on_the_device_under_the_seed_and_leaves_its_random_state_alone():
    text = SMALL.format(init="{conv: he_normal}")
    state = torch.cuda.get_rng_state()
    a, b = (compiler.build(text, device="cuda", seed=3) for _ in range(2))
    assert torch.equal(torch.cuda.get_rng_state(), state)
    assert {p.device.type for p in a.parameters()} == {"cuda"}
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with torch.random.fork_rng(devices=[0]):
        torch.manual_seed(3)
        with torch.device("cuda"):
            layers = {"c": nn.Conv2d(3, 16, 3, padding=1), "n": nn.Conv2d(16, 8, 1, bias=False)}
            nn.init.kaiming_normal_(layers["c"].weight, nonlinearity="relu")
    assert torch.equal(a.c.conv.weight, layers["c"].weight)
    assert a(torch.randn(2, 3, 8, 8, device="cuda")).shape == (2, 5)
