"""compiler.draws: every tensor is drawn once (by the init policy where a rule sets it, else by
PyTorch's default), beside the building thread, and the values depend on the seed alone."""

from __future__ import annotations

import math
import threading

import pytest
import torch
from torch import nn

import compiler
from compiler import draws as draws_module
from compiler.draws import Draws, Recorder

from blocks.test_registry_harness import CASES, spec_text


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


@pytest.fixture()
def random_fills(monkeypatch) -> list[tuple[str, tuple[int, ...]]]:
    """Every in-place random fill of a tensor, from any thread: (method, shape). The torch.nn.init
    functions all end in a tensor's uniform_ or normal_, and a build's uniform draws in
    draws.Source.uniform_ (numpy's generator writing into the tensor, counted once)."""
    fills: list[tuple[str, tuple[int, ...]]] = []
    lock = threading.Lock()
    inside = threading.local()

    def count(method: str, tensor: torch.Tensor) -> None:
        if tensor.device.type != "meta" and not getattr(inside, "source", False):
            with lock:
                fills.append((method, tuple(tensor.shape)))

    for method in ("uniform_", "normal_"):
        real = getattr(torch.Tensor, method)

        def counting(tensor, *args, _real=real, _method=method, **kwargs):
            count(_method, tensor)
            return _real(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counting)
    real_source = draws_module.Source.uniform_

    def counting_source(source, tensor, low, high):
        count("uniform_", tensor)
        inside.source = True
        try:
            return real_source(source, tensor, low, high)
        finally:
            inside.source = False

    monkeypatch.setattr(draws_module.Source, "uniform_", counting_source)
    return fills


BIG = """
blockgraph: 1
name: big
inputs: {{x: [256, 8, 8]}}
init: {init}
nodes:
  - {{id: plain, op: conv, out: 256, k: 3}}                 # 590k weights + a bias
  - {{id: normed, op: conv, out: 256, k: 3, norm: batch}}   # and a norm with running statistics
  - {{id: small, op: conv, out: 8, k: 1}}                   # 2k weights + a bias
"""


def test_a_policy_sets_weights_once_and_every_other_tensor_keeps_its_default(
        random_fills, uninitialised_memory_is_nan):
    model = compiler.build(BIG.format(init="{conv: he_normal}"), seed=0)
    # he_normal draws each conv weight once; PyTorch's default (uniform) weights are never drawn
    assert sorted(shape for kind, shape in random_fills if kind == "normal_") == \
        sorted([(256, 256, 3, 3), (256, 256, 3, 3), (8, 256, 1, 1)])
    # no rule sets a conv's bias: PyTorch's default, uniform within 1/sqrt(fan_in), drawn once each
    assert sorted(shape for kind, shape in random_fills if kind == "uniform_") == sorted([(256,), (8,)])
    sd = model.state_dict()
    for key, tensor in sd.items():
        assert not (tensor.is_floating_point() and tensor.isnan().any()), f"{key} left uninitialised"
    assert sd["plain.conv.weight"].std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.02)
    bias = sd["plain.conv.bias"]
    assert 0 < bias.abs().max().item() <= 1 / math.sqrt(256 * 9) and bias.unique().numel() == 256
    # the norm: gamma 1, beta 0, running mean 0, variance 1, no batches yet
    assert torch.equal(sd["normed.norm.weight"], torch.ones(256)) and torch.equal(sd["normed.norm.bias"], torch.zeros(256))
    assert torch.equal(sd["normed.norm.running_mean"], torch.zeros(256))
    assert torch.equal(sd["normed.norm.running_var"], torch.ones(256))
    assert sd["normed.norm.num_batches_tracked"].item() == 0


def test_without_a_policy_every_tensor_gets_pytorchs_default_once(random_fills, uninitialised_memory_is_nan):
    model = compiler.build(BIG.format(init="{bias: default}"), seed=0)
    assert sorted(random_fills) == sorted([("uniform_", (256, 256, 3, 3)), ("uniform_", (256,)),
                                           ("uniform_", (256, 256, 3, 3)),
                                           ("uniform_", (8, 256, 1, 1)), ("uniform_", (8,))])
    bound = 1 / math.sqrt(256 * 9)  # kaiming_uniform_(a=sqrt(5)) on fan_in 2304: PyTorch's conv default
    for weight in (model.plain.conv.weight, model.normed.conv.weight):
        assert 0.99 * bound < weight.abs().max().item() <= bound
        assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.01)  # uniform's std
    assert 0.9 / 16 < model.small.conv.weight.abs().max().item() <= 1 / 16  # fan_in 256
    assert not model.normed.conv.weight.isnan().any()


def test_the_values_depend_on_the_seed_alone_not_on_the_number_of_helpers(monkeypatch):
    """Each tensor has its own generator: which thread draws it, and when, changes nothing."""
    text = BIG.format(init="{conv: he_normal}")  # normal weights (torch), uniform biases (numpy)
    built = {}
    for helpers in (0, 1, 2, draws_module.MAX_HELPERS):
        monkeypatch.setattr(draws_module, "_helpers_for", lambda device, n=helpers: n)
        built[helpers] = compiler.build(text, seed=3).state_dict()
    real_init = Draws.__init__

    def inline(self, *args, **kwargs):  # as on an accelerator: each tensor drawn when queued
        real_init(self, *args, **kwargs)
        self.inline, self.helpers = True, 0

    monkeypatch.setattr(Draws, "__init__", inline)
    built["inline"] = compiler.build(text, seed=3).state_dict()
    first = built[0]
    for helpers, sd in built.items():
        assert all(torch.equal(first[k], sd[k]) for k in first), f"{helpers} helpers drew other values"
    monkeypatch.undo()
    other = compiler.build(text, seed=4).state_dict()
    assert not torch.equal(first["plain.conv.weight"], other["plain.conv.weight"])
    assert not torch.equal(first["plain.conv.bias"], other["plain.conv.bias"])


def test_tensors_of_a_build_draw_from_distinct_generators(monkeypatch):
    """mt19937 keeps 32 bits of a seed: tensor seeds are hashed, and one whose low 32 bits repeat
    an earlier tensor's is hashed again, so no two tensors of a build repeat each other."""
    seeds = iter([2**32 + 7, 7, 9])  # the second collides with the first in mt19937's 32 bits
    monkeypatch.setattr(draws_module, "_tensor_seed", lambda base, index: next(seeds))
    draws = Draws(torch.device("cpu"), 0)
    tensors = [torch.empty(1000) for _ in range(2)]
    for t in tensors:
        draws._submit(t, lambda source, t=t: t.normal_(generator=source.generator))
    draws.close()
    assert not torch.equal(tensors[0], tensors[1])
    monkeypatch.undo()
    draws = Draws(torch.device("cpu"), 2**32)
    tensors = [torch.empty(1000) for _ in range(8)]
    for i, t in enumerate(tensors):
        if i % 2:
            draws._submit(t, lambda source, t=t: source.uniform_(t, -1.0, 1.0))
        else:
            draws._submit(t, lambda source, t=t: t.uniform_(-1.0, 1.0, generator=source.generator))
    draws.close()
    assert len({tuple(t[:5].tolist()) for t in tensors}) == len(tensors)


@pytest.mark.parametrize("make", [lambda: torch.empty(200_000),                      # numpy, in place
                                  lambda: torch.empty(200_000, dtype=torch.float64),
                                  lambda: torch.empty(400, 500).t(),                 # not contiguous
                                  lambda: torch.empty(200_000, dtype=torch.bfloat16)],
                         ids=["float32", "float64", "transposed", "bfloat16"])
def test_a_sources_uniform_draws_fill_the_range_evenly(make):
    tensor = make()
    tensor.fill_(float("nan"))
    draws_module.Source(12345, torch.device("cpu")).uniform_(tensor, -0.5, 1.5)
    values = tensor.double()
    assert not values.isnan().any()
    assert -0.5 <= values.min().item() < -0.49 and 1.49 < values.max().item() <= 1.5
    assert values.mean().item() == pytest.approx(0.5, abs=0.01)
    assert values.std().item() == pytest.approx(2 / math.sqrt(12), rel=0.01)  # a uniform's spread
    again = make()
    draws_module.Source(12345, torch.device("cpu")).uniform_(again, -0.5, 1.5)
    assert torch.equal(tensor, again)  # the seed decides


def test_without_a_seed_the_global_random_state_decides(monkeypatch):
    text = BIG.format(init="{}")
    torch.manual_seed(7)
    a = compiler.build(text).state_dict()
    torch.manual_seed(7)
    b = compiler.build(text).state_dict()
    c = compiler.build(text).state_dict()  # the global state moved on
    assert torch.equal(a["plain.conv.weight"], b["plain.conv.weight"])
    assert not torch.equal(b["plain.conv.weight"], c["plain.conv.weight"])


def test_zoo_models_have_no_uninitialised_tensor(uninitialised_memory_is_nan):
    for name in ("resnet50", "densenet121", "googlenet", "dpn68"):
        for key, tensor in compiler.build(f"specs/{name}.yaml", seed=0).state_dict().items():
            assert not (tensor.is_floating_point() and tensor.isnan().any()), f"{name}: {key} left uninitialised"


def test_zoo_defaults_have_pytorchs_distribution():
    """dpn68 keeps PyTorch's defaults (timm's DPN sets none): each conv weight is uniform within
    1/sqrt(fan_in), as nn.Conv2d draws it, and fills that range."""
    model = compiler.build("specs/dpn68.yaml", seed=0)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 72
    for conv in convs:
        bound = 1 / math.sqrt(compiler.init.fan_in(conv.weight))
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


# -- the recorder ---------------------------------------------------------------------------

def test_a_recorded_draw_is_made_before_the_tensor_is_used():
    weight, other = torch.zeros(4, 3), torch.zeros(4, 3)
    with Recorder() as recorder:
        nn.init.uniform_(weight, 1.0, 2.0)
        nn.init.kaiming_uniform_(other)
        assert weight.dim() == 2 and weight[0][0].numel() == 1  # a shape is no use of the values
        assert list(recorder.pending) == [id(weight), id(other)]  # recorded, not drawn
        weight.mul_(10)  # a use: drawn first, then scaled
    assert ((weight >= 10) & (weight <= 20)).all()
    assert list(recorder.pending) == [id(other)] and torch.equal(other, torch.zeros(4, 3))


def test_a_use_of_a_view_of_a_recorded_tensor_is_a_use_of_the_tensor():
    weight = torch.zeros(4, 3)
    with Recorder() as recorder:
        nn.init.uniform_(weight, 1.0, 2.0)
        row = weight[0]
        assert row[0].numel() == 1 and id(weight) in recorder.pending  # views, shapes: not yet
        row.fill_(-1.0)  # a write through the view: the draw comes first, then the write
    assert not recorder.pending
    assert torch.equal(weight[0], torch.full((3,), -1.0)) and ((weight[1:] >= 1) & (weight[1:] <= 2)).all()


def test_a_later_draw_of_the_same_tensor_replaces_the_recorded_one():
    weight = torch.zeros(100)
    with Recorder() as recorder:
        nn.init.uniform_(weight, 0.0, 1.0)
        nn.init.normal_(weight, 5.0, 0.1)
    (tensor, func, args, kwargs), = recorder.pending.values()
    assert tensor is weight and func is nn.init.normal_
    func(tensor, *args, **kwargs)
    assert weight.mean().item() == pytest.approx(5.0, abs=0.05)


def test_a_draw_with_its_own_generator_is_made_on_the_spot():
    weight = torch.zeros(10)
    with Recorder() as recorder:
        nn.init.uniform_(weight, 1.0, 2.0, generator=torch.Generator().manual_seed(0))
    assert not recorder.pending and (weight >= 1).all()


# -- the call recorder (what a build uses) -----------------------------------------------------

def test_the_call_recorder_defers_only_this_threads_init_calls_while_a_build_runs():
    draws = Draws(torch.device("cpu"), 0)  # a build under way: torch.nn.init's draws are wrapped
    try:
        assert nn.init.uniform_ is not draws_module._ORIGINALS["uniform_"]
        with draws.recording() as recorder:
            layer = nn.Linear(30, 20)
            elsewhere = torch.zeros(1000)
            thread = threading.Thread(target=nn.init.uniform_, args=(elsewhere, 1.0, 2.0))
            thread.start()
            thread.join()
        assert set(recorder.pending) == {id(layer.weight), id(layer.bias)}  # recorded, not drawn
        assert ((elsewhere >= 1) & (elsewhere <= 2)).all()  # another thread's call: made at once
        own = torch.zeros(10)
        nn.init.uniform_(own, 1.0, 2.0)  # outside a node's construction: made at once
        assert (own >= 1).all()
    finally:
        draws.close()
    for name, func in draws_module._ORIGINALS.items():  # and the functions are torch's again
        assert getattr(nn.init, name) is func


def test_the_call_recorder_sees_a_recorded_tensor_written_afterwards():
    draws = Draws(torch.device("cpu"), 0)
    try:
        with draws.recording() as recorder:
            layer = nn.Linear(3, 4)
            assert not recorder.disturbed()
            with torch.no_grad():
                layer.weight[0].zero_()  # through a view: the tensor's version counter moves too
        assert recorder.disturbed()
        with draws.recording() as recorder:
            weight = torch.zeros(4, 3)
            nn.init.uniform_(weight, 1.0, 2.0)
            nn.init.uniform_(weight[0], -2.0, -1.0)  # a draw into a view: the tensor's comes first
        assert not recorder.pending and (weight[0] <= -1).all() and (weight[1:] >= 1).all()
    finally:
        draws.close()


def test_a_block_that_writes_into_a_deferred_tensor_is_built_again_exactly(monkeypatch):
    from compiler.blocks.linear import Linear

    real = Linear.build

    def build_then_zero_a_row(self, in_shapes):
        module = real(self, in_shapes)
        with torch.no_grad():
            module.linear.weight[0].zero_()
        return module

    monkeypatch.setattr(Linear, "build", build_then_zero_a_row)
    model = compiler.build("""
blockgraph: 1
name: writes
inputs: {x: [64]}
nodes:
  - {id: head, op: linear, out: 16}
""", seed=0)
    weight = model.head.linear.weight
    assert torch.equal(weight[0], torch.zeros(64))  # the block's own write stands
    assert (weight[1:] != 0).all() and weight[1:].abs().max().item() <= 1 / 8  # the default drawn first


@pytest.mark.parametrize("op, args, shapes", CASES)
def test_every_built_in_block_gets_the_same_weights_from_either_recorder(op, args, shapes, monkeypatch):
    """The call recorder cannot see a constructor read a deferred tensor: no built-in block may
    (each is built under both recorders, and the weights compared)."""
    text = spec_text(op, args, shapes)
    quick = compiler.build(text, seed=5).state_dict()
    monkeypatch.setattr(draws_module.CallRecorder, "disturbed", lambda self: True)  # always exactly
    exact = compiler.build(text, seed=5).state_dict()
    assert quick.keys() == exact.keys()
    for key in quick:
        assert torch.equal(quick[key], exact[key]), key


def test_a_draws_error_reaches_the_caller():
    draws = Draws(torch.device("cpu"), 0)

    def failing(generator):
        raise RuntimeError("the draw failed")

    draws._submit(torch.empty(3), failing)
    draws.start()
    with pytest.raises(RuntimeError, match="the draw failed"):
        draws.close()


def test_a_failed_build_leaves_no_thread_behind(monkeypatch):
    from compiler.blocks.linear import Linear

    def failing(self, in_shapes):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(Linear, "build", failing)
    before = threading.active_count()
    with pytest.raises(compiler.SpecError, match="node 'head' \\(linear\\) cannot be built: out of memory"):
        compiler.build("""
blockgraph: 1
name: fails-late
inputs: {x: [8, 4, 4]}
nodes:
  - {id: body, op: conv, out: 64, k: 3}
  - {op: gap}
  - {id: head, op: linear, out: 10}
""")
    assert threading.active_count() == before


def test_builds_in_several_threads_at_once_draw_what_they_draw_alone():
    """Each build has its own generators and helpers: two at once (the designer builds while a
    user trains) give the weights each gives alone."""
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
