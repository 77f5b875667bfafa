"""Probes lesion, dense_weights, se_excitations and class_maps against hand computations on tiny
nets.

Every expected value comes from an independent route: a copy of the model with a block's branch
zeroed through its weights (lesion), the model's layers called by hand in the wiring the spec
describes, weights set by hand so the expected matrix is known (dense_weights), and explicit
einsums and sigmoid gates written here (class_maps, se_excitations), never the probes' helpers.
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from test_probes_a import assert_untouched, untouched_state

import compiler
from compiler.study.probes import ProbeContext, probe_class


def context(text: str, inputs, target, classes: int, model=None, seed: int = 0) -> ProbeContext:
    spec = compiler.load(text)
    return ProbeContext(model=model if model is not None else compiler.build(text, seed=0), inputs=inputs,
                        target=target, loss=F.cross_entropy, spec=spec, analysis=compiler.analyze(spec), lr=0.1,
                        seed=seed, classes=classes)


def trained_looking(model):
    """Batch norms with running statistics of their own (as after training), so eval mode is not
    the identity and a wrong lesion shows."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=generator) * 0.2)
    return model


def error_and_loss(model, inputs, target):
    with torch.no_grad():
        logits = model.eval()(inputs)
    return 1.0 - (logits.argmax(1) == target).double().mean().item(), F.cross_entropy(logits, target).item()


RESIDUAL = """
blockgraph: 1
name: tiny_resnet
inputs: {x: [3, 8, 8]}
nodes:
  - {id: stem, op: conv, out: 4, k: 3, norm: batch, act: relu}
  - {id: b1, op: residual, out: 4}
  - {id: b2, op: residual, out: 6, stride: 2, se: 2}
  - {id: b3, op: residual, out: 6, scale: 0.5}
  - {op: gap}
  - {id: fc, op: linear, out: 3}
"""


def residual_batch():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(64, 3, 8, 8, generator=generator), torch.randint(0, 3, (64,), generator=generator)


def zero_branches(model, blocks):
    """A copy whose residual branches in `blocks` output 0: their last norm's scale and shift
    set to zero (the SE of b2 then gates zeros; b3's scale multiplies zeros)."""
    reference = copy.deepcopy(model)
    for block in blocks:
        norm = reference.get_submodule(f"{block}.conv2.norm")
        norm.weight.data.zero_()
        norm.bias.data.zero_()
    return reference


def test_lesion_of_each_residual_block_is_its_branch_set_to_zero():
    model = trained_looking(compiler.build(RESIDUAL, seed=0))
    inputs, target = residual_batch()
    ctx = context(RESIDUAL, inputs, target, classes=3, model=model)
    before = untouched_state(model)
    result = probe_class("lesion")(mode="each").measure(ctx)
    assert_untouched(model, before)
    intact = error_and_loss(model, inputs, target)
    assert result["intact_error"] == pytest.approx(intact[0]) and result["intact_loss"] == pytest.approx(intact[1])
    assert [d["block"] for d in result["deleted"]] == ["b1", "b2", "b3"]
    assert [d["stride"] for d in result["deleted"]] == [1, 2, 1]  # b2 downsamples 8x8 -> 4x4
    for deleted in result["deleted"]:
        expected = error_and_loss(zero_branches(model, [deleted["block"]]), inputs, target)
        assert deleted["error"] == pytest.approx(expected[0])
        assert deleted["loss"] == pytest.approx(expected[1], rel=1e-5)
        assert deleted["loss"] != pytest.approx(intact[1], rel=1e-5)  # the deletion changed the net
    assert result["skipped"] == []


def test_random_lesions_average_every_pair_or_draw_seeded_blocks():
    model = trained_looking(compiler.build(RESIDUAL, seed=0))
    inputs, target = residual_batch()
    ctx = context(RESIDUAL, inputs, target, classes=3, model=model)
    result = probe_class("lesion")(mode="random", k=[2, 3, 4], repeats=5).measure(ctx)
    pairs = [error_and_loss(zero_branches(model, pair), inputs, target)
             for pair in itertools.combinations(["b1", "b2", "b3"], 2)]  # 3 pairs <= 5 repeats: each once
    everything = error_and_loss(zero_branches(model, ["b1", "b2", "b3"]), inputs, target)
    assert result["random"]["k"] == [2, 3]
    assert result["random"]["mean_error"] == pytest.approx([sum(p[0] for p in pairs) / 3, everything[0]])
    assert result["random"]["mean_loss"] == pytest.approx([sum(p[1] for p in pairs) / 3, everything[1]], rel=1e-5)
    assert "k=4" in result["random"]["notes"][0]
    assert "deleted" not in result

    singles = {b: error_and_loss(zero_branches(model, [b]), inputs, target)[1] for b in ("b1", "b2", "b3")}
    drawn = probe_class("lesion")(mode="random", k=[1], repeats=2).measure(ctx)["random"]
    again = probe_class("lesion")(mode="random", k=[1], repeats=2).measure(ctx)["random"]
    assert drawn == again  # seeded by the trial's seed
    assert len(drawn["errors"][0]) == 2
    assert any(drawn["mean_loss"][0] == pytest.approx((singles[a] + singles[b]) / 2, rel=1e-5)
               for a, b in itertools.product(singles, repeat=2))


PLAIN = """
blockgraph: 1
name: tiny_plain
inputs: {x: [3, 8, 8]}
nodes:
  - {id: c, op: conv, out: 4, k: 3, norm: batch, act: relu, repeat: 3}
  - {id: down, op: conv, out: 4, k: 3, stride: 2, act: relu}
  - {op: gap}
  - {id: fc, op: linear, out: 3}
"""


def plain_forward(model, x, skip: str | None):
    """The plain net called layer by layer, leaving out layer `skip` (its input passed on)."""
    with torch.no_grad():
        for name in ("c.0", "c.1", "c.2", "down"):
            if name != skip:
                x = model.get_submodule(name)(x)
        return model.get_submodule("fc")(x.mean((2, 3)))


def test_lesion_of_a_plain_layer_passes_its_input_on_and_skips_layers_that_change_the_shape():
    model = trained_looking(compiler.build(PLAIN, seed=0)).eval()
    inputs, target = residual_batch()
    ctx = context(PLAIN, inputs, target, classes=3, model=model)
    before = untouched_state(model)
    result = probe_class("lesion")().measure(ctx)
    assert_untouched(model, before)
    assert result["block_kind"] == "layer"
    assert [d["block"] for d in result["deleted"]] == ["c.1", "c.2"]
    assert [s["block"] for s in result["skipped"]] == ["c.0", "down"]
    assert "[4, 8, 8]" in result["skipped"][0]["reason"] and "[3, 8, 8]" in result["skipped"][0]["reason"]
    for deleted in result["deleted"]:
        logits = plain_forward(model, inputs, skip=deleted["block"])
        assert deleted["loss"] == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-5)
        assert deleted["error"] == pytest.approx(1 - (logits.argmax(1) == target).double().mean().item())
    intact = plain_forward(model, inputs, skip=None)
    assert result["intact_loss"] == pytest.approx(F.cross_entropy(intact, target).item(), rel=1e-5)


def test_lesion_applies_to_specs_with_a_deletable_block():
    lesion = probe_class("lesion")
    shrinking = """
blockgraph: 1
name: shrinking
inputs: {x: [3, 8, 8]}
nodes:
  - {op: conv, out: 4, k: 3, stride: 2}
  - {op: gap}
  - {op: linear, out: 2}
"""
    spec = compiler.load(shrinking)
    message = lesion().applies_to(spec, compiler.analyze(spec))
    assert "needs a residual block or a conv layer" in message and "change the shape" in message
    spec = compiler.load(PLAIN)
    assert lesion(blocks="residual").applies_to(spec, compiler.analyze(spec)) == \
        "needs a residual block to delete: the spec has none"
    assert lesion().applies_to(spec, compiler.analyze(spec)) is None
    spec = compiler.load(RESIDUAL)
    assert lesion(blocks="auto").applies_to(spec, compiler.analyze(spec)) is None


DENSE = """
blockgraph: 1
name: tiny_densenet
inputs: {x: [3, 6, 6]}
nodes:
  - {id: conv0, op: conv, out: 2, k: 3, bias: false}
  - {id: D, op: dense, layers: 3, growth: 2, bottleneck: 0}
  - {id: T, op: transition, out: 4}
  - {id: E, op: dense, layers: 2, growth: 1, bottleneck: 2}
  - {op: gap}
  - {id: fc, op: linear, out: 3}
"""


def set_by_input_channel(conv, values):
    """Every weight reading input channel j set to values[j] (all outputs, all kernel taps)."""
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(values, dtype=conv.weight.dtype)[None, :, None, None].expand_as(conv.weight))


def assert_rows(actual, expected, **tolerance):
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got == pytest.approx(want, **tolerance)


def test_dense_weights_are_mean_magnitudes_per_source_layer():
    model = compiler.build(DENSE, seed=0)
    # D: input 2 channels (source 0), then 2 per layer; layer l reads 2 + 2(l-1) channels
    set_by_input_channel(model.D.layer1.conv2.conv, [1.0, -3.0])
    set_by_input_channel(model.D.layer2.conv2.conv, [2.0, 2.0, -4.0, 0.0])
    set_by_input_channel(model.D.layer3.conv2.conv, [1.0, 1.0, 0.5, -0.5, 6.0, -2.0])
    set_by_input_channel(model.T.conv, [0.0, 1.0, 1.0, 1.0, 2.0, 2.0, -8.0, 0.0])
    # E (bottleneck): the first conv is the 1x1 conv1; input 4 channels, then 1 per layer
    set_by_input_channel(model.E.layer1.conv1.conv, [1.0, 1.0, 1.0, 1.0])
    set_by_input_channel(model.E.layer2.conv1.conv, [0.5, 0.5, -0.5, 0.5, 3.0])
    inputs = torch.randn(4, 3, 6, 6)
    ctx = context(DENSE, inputs, torch.zeros(4, dtype=torch.long), classes=3, model=model)
    before = untouched_state(model)
    result = probe_class("dense_weights")().measure(ctx)
    assert_untouched(model, before)
    expected_d = [[2.0], [2.0, 2.0], [1.0, 0.5, 4.0], [0.5, 1.0, 2.0, 4.0]]  # last row: T
    expected_e = [[1.0], [0.5, 3.0]]  # no transition after E
    assert_rows(result["mean_abs"]["D"], expected_d)
    assert_rows(result["mean_abs"]["E"], expected_e)
    assert_rows(result["blocks"]["D"], [[1.0], [1.0, 1.0], [0.25, 0.125, 1.0], [0.125, 0.25, 0.5, 1.0]])
    assert_rows(result["blocks"]["E"], [[1.0], [1 / 6, 1.0]])
    assert result["transitions"] == {"D": "T"}


def test_dense_sources_follow_the_blocks_concat_order():
    """The source slices the probe assumes are where the block puts each layer's channels."""
    model = compiler.build(DENSE, seed=0).eval()
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        block_input = model.conv0(x)
        first = model.D.layer1.conv2(block_input)
        second = model.D.layer2.conv2(torch.cat([block_input, first], 1))
    captured = {}
    handle = model.D.layer3.conv2.norm.register_forward_pre_hook(  # norm-act-conv: the norm reads it
        lambda module, args: captured.setdefault("in", args[0].clone()))
    with torch.no_grad():
        model(x)
    handle.remove()
    assert torch.allclose(captured["in"][:, :2], block_input)  # source 0: the block's input
    assert torch.allclose(captured["in"][:, 2:4], first)       # source 1: layer 1's growth channels
    assert torch.allclose(captured["in"][:, 4:6], second)      # source 2: layer 2's


def test_dense_weights_applies_to_dense_blocks_only():
    spec = compiler.load(PLAIN)
    assert probe_class("dense_weights")().applies_to(spec, compiler.analyze(spec)) == \
        "needs a dense block: the spec has none"
    spec = compiler.load(DENSE)
    assert probe_class("dense_weights")().applies_to(spec, compiler.analyze(spec)) is None


SE = """
blockgraph: 1
name: tiny_se
inputs: {x: [4, 5, 5]}
nodes:
  - {id: s1, op: se, reduction: 2}
  - {id: c, op: conv, out: 4, k: 3}
  - {id: s2, op: se, reduction: 2}
  - {id: b, op: residual, out: 4, se: 2}
  - {op: gap}
  - {id: fc, op: linear, out: 4}
"""


def hand_gate(x, se):
    """sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2), the SE gates of Hu et al., per sample [N, C]."""
    squeezed = x.mean((2, 3))
    w1, w2 = se.fc1.weight.flatten(1), se.fc2.weight.flatten(1)
    return torch.sigmoid(torch.relu(squeezed @ w1.T + se.fc1.bias) @ w2.T + se.fc2.bias)


def se_model():
    model = compiler.build(SE, seed=0)
    with torch.no_grad():  # live hidden units, so the gates differ from sample to sample
        for se in (model.s1, model.s2):
            se.fc1.bias.fill_(0.5)
    return model


def test_se_excitations_are_the_gates_averaged_per_class():
    model = se_model()
    x = torch.randn(12, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 1, 2] * 4)  # class 3: no sample
    ctx = context(SE, x, target, classes=4, model=model)
    before = untouched_state(model)
    result = probe_class("se_excitations")(blocks="all").measure(ctx)
    assert_untouched(model, before)
    with torch.no_grad():
        gate1 = hand_gate(x, model.s1)
        conv_out = F.conv2d(x * gate1[:, :, None, None], model.c.conv.weight, model.c.conv.bias, padding=1)
        gate2 = hand_gate(conv_out, model.s2)
    assert list(result["blocks"]) == ["s1", "s2", "b.se"]
    assert result["classes"] == [0, 1, 2, 3] and result["counts"] == [4, 4, 4, 0]
    for name, gate in (("s1", gate1), ("s2", gate2)):
        rows = result["blocks"][name]
        for label in range(3):
            expected = [gate[i].tolist() for i in range(12) if target[i] == label]
            assert rows[label] == pytest.approx([sum(col) / 4 for col in zip(*expected)], rel=1e-5)
        assert rows[3] == [None] * 4  # no sample of class 3: missing, not a number
        assert result["mean"][name] == pytest.approx([sum(col) / 3 for col in zip(*rows[:3])], rel=1e-5)
    assert all(0 < v < 1 for row in result["blocks"]["b.se"][:3] for v in row)
    assert len(result["blocks"]["b.se"][0]) == 4


def test_se_excitations_first_and_last_block_and_applies_to():
    model = se_model()
    x = torch.randn(6, 4, 5, 5)
    ctx = context(SE, x, torch.tensor([0, 1, 2, 3, 0, 1]), classes=4, model=model)
    assert list(probe_class("se_excitations")().measure(ctx)["blocks"]) == ["s1", "b.se"]
    spec = compiler.load(PLAIN)
    assert "needs an SE block" in probe_class("se_excitations")().applies_to(spec, compiler.analyze(spec))
    spec = compiler.load(RESIDUAL)  # a residual's `se:` option counts
    assert probe_class("se_excitations")().applies_to(spec, compiler.analyze(spec)) is None
    with pytest.raises(ValueError, match="class indices"):
        probe_class("se_excitations")().measure(context(SE, x, torch.randn(6), classes=4, model=model))


CAM = """
blockgraph: 1
name: tiny_cam
inputs: {x: [3, 5, 5]}
nodes:
  - {id: features, op: conv, out: 4, k: 3, act: relu}
  - {op: gap}
  - {op: dropout, p: 0.5}
  - {id: fc, op: linear, out: 3}
"""

NIN = """
blockgraph: 1
name: tiny_nin
inputs: {x: [3, 5, 5]}
nodes:
  - {id: features, op: conv, out: 3, k: 3, act: relu}
  - {id: pool, op: gap}
"""


def test_class_maps_weight_the_last_feature_map_by_the_predicted_class_row():
    model = compiler.build(CAM, seed=0)
    x = torch.randn(6, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    ctx = context(CAM, x, target, classes=3, model=model)
    before = untouched_state(model)
    result = probe_class("class_maps")(samples=4).measure(ctx)
    assert_untouched(model, before)
    with torch.no_grad():
        features = torch.relu(F.conv2d(x, model.features.conv.weight, model.features.conv.bias, padding=1))
        weight, bias = model.fc.linear.weight.detach(), model.fc.linear.bias.detach()
        logits = features.mean((2, 3)) @ weight.T + bias
    predicted = logits.argmax(1)
    expected = torch.einsum("nc,nchw->nhw", weight[predicted[:4]], features[:4])
    assert result["kind"] == "cam" and result["classes"] == [0, 1, 2]
    assert len(result["samples"]) == 4
    for i, sample in enumerate(result["samples"]):
        assert torch.allclose(torch.tensor(sample["map"], dtype=torch.float32), expected[i], atol=1e-5)
        assert sample["label"] == int(target[i]) and sample["prediction"] == int(predicted[i])
        # Zhou et al.: the map's mean plus the class bias is the class score
        score = torch.tensor(sample["map"]).mean().item() + bias[predicted[i]].item()
        assert score == pytest.approx(logits[i, predicted[i]].item(), abs=1e-5)


def test_class_maps_of_a_net_in_net_head_are_the_class_channels():
    model = compiler.build(NIN, seed=0)
    x = torch.randn(3, 3, 5, 5)
    ctx = context(NIN, x, torch.tensor([2, 0, 1]), classes=3, model=model)
    result = probe_class("class_maps")(samples=10).measure(ctx)
    with torch.no_grad():
        features = torch.relu(F.conv2d(x, model.features.conv.weight, model.features.conv.bias, padding=1))
    predicted = features.mean((2, 3)).argmax(1)
    assert result["kind"] == "channel" and len(result["samples"]) == 3  # the batch has 3 samples
    for i, sample in enumerate(result["samples"]):
        assert torch.allclose(torch.tensor(sample["map"], dtype=torch.float32), features[i, predicted[i]])
        assert sample["prediction"] == int(predicted[i])
        # the input kept for the plot: [H][W][C], the sample stretched to [0, 1]
        stretched = (x[i] - x[i].min()) / (x[i].max() - x[i].min())
        assert torch.allclose(torch.tensor(sample["image"], dtype=torch.float64), stretched.permute(1, 2, 0).double(), atol=1e-3)


def test_class_maps_applies_to_gap_classifiers_only():
    flattened = PLAIN.replace("{op: gap}", "{op: flatten}")
    two_linear = CAM.replace("{op: dropout, p: 0.5}", "{op: linear, out: 8, act: relu}")
    for text in (flattened, two_linear):
        spec = compiler.load(text)
        assert "needs a global-average-pooling classifier" in probe_class("class_maps")().applies_to(
            spec, compiler.analyze(spec))
    for text in (CAM, NIN, RESIDUAL):
        spec = compiler.load(text)
        assert probe_class("class_maps")().applies_to(spec, compiler.analyze(spec)) is None
