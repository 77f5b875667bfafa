"""Probes signal_std, filter_similarity and landscape against hand computations on tiny nets.

Every expected value is computed here with explicit torch code (matrix products, closed-form
gradients of a quadratic, cosines pair by pair), never by calling the probe's own helpers.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import compiler
from compiler.study.probes import ProbeContext, probe_class


def context(text: str, inputs, target, loss, lr: float = 0.1, step: int = 0, model=None) -> ProbeContext:
    spec = compiler.load(text)
    return ProbeContext(model=model if model is not None else compiler.build(text, seed=0), inputs=inputs,
                        target=target, loss=loss, spec=spec, analysis=compiler.analyze(spec), lr=lr, seed=0,
                        step=step)


def mse(outputs, target):
    return ((outputs - target) ** 2).mean()


def pop_std(tensor) -> float:
    return math.sqrt(((tensor - tensor.mean()) ** 2).mean().item())


TWO_LINEAR = """
blockgraph: 1
name: two_linear
inputs: {x: [4]}
init: {bias: {kind: constant, value: 0.1}}
nodes:
  - {id: fc1, op: linear, out: 3, bias: false, act: relu}
  - {id: fc2, op: linear, out: 2}
"""

CONV_BN = """
blockgraph: 1
name: conv_bn
inputs: {x: [3, 8, 8]}
nodes:
  - {id: c, op: conv, out: 4, k: 3, norm: batch, act: relu, repeat: 2}
  - {op: dropout, p: 0.5}
  - {op: gap}
  - {id: fc, op: linear, out: 3}
"""


def deep_relu_stack(init: str, depth: int = 8, width: int = 256) -> str:
    return f"""
blockgraph: 1
name: deep
inputs: {{x: [{width}]}}
init: {{linear: {init}, bias: zeros}}
nodes:
  - {{id: fc, op: linear, out: {width}, act: relu, repeat: {depth}}}
"""


def untouched_state(model):
    """Everything a probe must leave as found: weights, buffers, grads, mode."""
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
            [m.training for m in model.modules()])


def assert_untouched(model, before):
    weights, grads, modes = untouched_state(model)
    assert weights.keys() == before[0].keys()
    assert all(torch.equal(weights[k], before[0][k]) for k in weights)
    assert all((grads[n] is None and before[1][n] is None) or torch.equal(grads[n], before[1][n]) for n in grads)
    assert modes == before[2]


def conv_bn_context(model=None, lr: float = 0.1, step: int = 0):
    torch.manual_seed(1)
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    return context(CONV_BN, x, y, F.cross_entropy, lr=lr, step=step, model=model)


def with_some_grads(model, mode_train: bool):
    """The model as a run may hand it over: a grad from a previous step, a chosen mode."""
    for parameter in model.parameters():
        parameter.grad = torch.full_like(parameter, 0.25)
    model.train(mode_train)
    return model


# ---------------------------------------------------------------- signal_std


def test_signal_std_matches_hand_computed_activations_and_gradients():
    torch.manual_seed(0)
    x, t = torch.randn(8, 4), torch.randn(8, 2)
    ctx = context(TWO_LINEAR, x, t, mse)
    w1, w2, b2 = (ctx.model.state_dict()[k] for k in ("fc1.linear.weight", "fc2.linear.weight", "fc2.linear.bias"))
    y1 = x @ w1.T
    y2 = torch.relu(y1) @ w2.T + b2
    dy2 = 2 * (y2 - t) / y2.numel()  # d mean((y2 - t)^2) / d y2
    dy1 = (dy2 @ w2) * (y1 > 0)

    result = probe_class("signal_std")().measure(ctx)

    assert result["layers"] == ["fc1.linear", "fc2.linear"]
    assert result["activation_std"] == pytest.approx([pop_std(y1), pop_std(y2)], rel=1e-6)
    assert result["gradient_std"] == pytest.approx([pop_std(dy1), pop_std(dy2)], rel=1e-6)


def test_signal_std_shows_xavier_shrinking_and_he_keeping_the_variance():
    """He et al. 2015: through ReLU layers of fan-in n, weights of variance 1/n (Xavier on a
    square layer) halve the response's variance per layer, 2/n (He) keep it."""
    torch.manual_seed(0)
    x = torch.randn(512, 256)
    stds = {}
    for init in ("xavier_normal", "he_normal"):
        ctx = context(deep_relu_stack(init), x, torch.zeros(512, 256), mse)
        stds[init] = probe_class("signal_std")(layers="linear").measure(ctx)["activation_std"]
    layers = 7  # from the first layer's response to the eighth's
    assert stds["xavier_normal"][-1] / stds["xavier_normal"][0] == pytest.approx(0.5 ** (layers / 2), rel=0.25)
    assert stds["he_normal"][-1] / stds["he_normal"][0] == pytest.approx(1.0, rel=0.25)
    zero = context(deep_relu_stack("zeros", depth=3), x, torch.zeros(512, 256), mse)
    assert probe_class("signal_std")().measure(zero)["activation_std"] == [0.0, 0.0, 0.0]


def test_signal_std_measures_a_recurrent_layer_by_its_node_id():
    text = """
blockgraph: 1
name: rnn
inputs: {seq: [5, 2]}
nodes:
  - {id: rnn, op: lstm, hidden: 3, returns: last}
  - {id: head, op: linear, out: 1}
"""
    torch.manual_seed(0)
    x = torch.randn(4, 5, 2)
    ctx = context(text, x, torch.zeros(4, 1), mse)
    reference = torch.nn.LSTM(2, 3, batch_first=True)
    reference.load_state_dict({k.removeprefix("rnn.lstm."): v for k, v in ctx.model.state_dict().items()
                               if k.startswith("rnn.lstm.")})
    last = reference(x)[1][0][-1]
    result = probe_class("signal_std")().measure(ctx)
    assert result["layers"] == ["rnn", "head.linear"]
    assert result["activation_std"][0] == pytest.approx(pop_std(last.detach()), rel=1e-5)
    assert probe_class("signal_std")(layers="recurrent").measure(ctx)["layers"] == ["rnn"]


def test_signal_std_leaves_the_model_as_found():
    for training in (True, False):
        model = with_some_grads(compiler.build(CONV_BN, seed=0), training)
        before = untouched_state(model)
        ctx = conv_bn_context(model)
        rng = torch.get_rng_state()
        result = probe_class("signal_std")().measure(ctx)
        assert result["layers"] == ["c.0.conv", "c.1.conv", "fc.linear"]
        assert all(v > 0 for v in result["activation_std"] + result["gradient_std"])
        assert_untouched(model, before)
        assert torch.equal(torch.get_rng_state(), rng)


def test_signal_std_applies_to_specs_with_the_layers_it_measures():
    spec = compiler.load(TWO_LINEAR)
    analysis = compiler.analyze(spec)
    assert probe_class("signal_std")().applies_to(spec, analysis) is None
    assert probe_class("signal_std")(layers="linear").applies_to(spec, analysis) is None
    assert "needs a recurrent layer" in probe_class("signal_std")(layers="recurrent").applies_to(spec, analysis)
    assert "needs a conv layer" in probe_class("signal_std")(layers="conv").applies_to(spec, analysis)


# ---------------------------------------------------------------- filter_similarity


def hand_similarities(filters: list[torch.Tensor]) -> list[float]:
    return [F.cosine_similarity(a.flatten(), b.flatten(), dim=0).item() for a, b in itertools.combinations(filters, 2)]


def test_zero_init_filters_are_identical_and_orthogonal_ones_are_not_alike():
    text = """
blockgraph: 1
name: sym
inputs: {x: [2, 6, 6]}
nodes:
  - {id: c, op: conv, out: 4, k: 3, init: {weight: zeros}}
  - {op: gap}
  - {id: fc, op: linear, out: 5}
"""
    model = compiler.build(text, seed=0)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        model.fc.linear.weight.zero_()
        model.fc.linear.weight[:4] = q.T  # 4 orthonormal rows and one zero row
    ctx = context(text, torch.randn(2, 2, 6, 6), torch.zeros(2, 5), mse, model=model)
    result = probe_class("filter_similarity")().measure(ctx)
    assert result["layers"] == ["c.conv", "fc.linear"]
    assert result["mean_similarity"][0] == pytest.approx(1.0, abs=1e-6)
    assert result["max_similarity"][0] == pytest.approx(1.0, abs=1e-6)
    # orthonormal rows: cosine 0; the zero row against a non-zero one: 0 by definition
    assert result["mean_similarity"][1] == pytest.approx(0.0, abs=1e-6)
    assert result["max_similarity"][1] == pytest.approx(0.0, abs=1e-6)


def test_filter_similarity_matches_cosines_pair_by_pair():
    text = """
blockgraph: 1
name: cos
inputs: {x: [4, 6, 6]}
nodes:
  - {id: c, op: conv, out: 4, k: 3}
  - {id: up, op: deconv, out: 6, k: 2, stride: 2, groups: 2}
  - {op: gap}
  - {id: fc, op: linear, out: 3}
  - {id: one, op: linear, out: 1}
"""
    model = compiler.build(text, seed=0)
    with torch.no_grad():
        model.fc.linear.weight.copy_(torch.tensor([[1.0, 0, 0, 0, 0, 0], [1.0, 1, 0, 0, 0, 0], [-1.0, 0, 0, 0, 0, 0]]))
    conv = model.c.conv.weight.detach()
    # [in 4, out/groups 3, 2, 2]: output channel j is in group j // 3, which reads 2 input channels
    deconv = model.up.deconv.weight.detach()
    deconv_filters = [deconv[2 * (j // 3): 2 * (j // 3) + 2, j % 3] for j in range(6)]
    ctx = context(text, torch.randn(2, 4, 6, 6), torch.zeros(2, 1), mse, model=model)
    result = probe_class("filter_similarity")().measure(ctx)
    # `one` has a single filter: no pair, so it is not listed
    assert result["layers"] == ["c.conv", "up.deconv", "fc.linear"]
    for index, filters in enumerate([list(conv), deconv_filters]):
        expected = hand_similarities(filters)
        assert result["mean_similarity"][index] == pytest.approx(sum(expected) / len(expected), abs=1e-6)
        assert result["max_similarity"][index] == pytest.approx(max(expected), abs=1e-6)
    assert result["mean_similarity"][2] == pytest.approx((1 / math.sqrt(2) - 1 - 1 / math.sqrt(2)) / 3, abs=1e-6)
    assert result["max_similarity"][2] == pytest.approx(1 / math.sqrt(2), abs=1e-6)


def test_filter_similarity_runs_when_its_option_says_and_applies_to_layers_with_two_units():
    assert probe_class("filter_similarity")().when == "init"
    assert probe_class("filter_similarity")(at="end").when == "end"
    spec = compiler.load("""
blockgraph: 1
name: single
inputs: {x: [4]}
nodes:
  - {id: fc, op: linear, out: 1}
""")
    analysis = compiler.analyze(spec)
    assert "at least 2 output units" in probe_class("filter_similarity")().applies_to(spec, analysis)
    two = compiler.load(TWO_LINEAR)
    assert probe_class("filter_similarity")().applies_to(two, compiler.analyze(two)) is None
    conv_only = probe_class("filter_similarity")(layers="conv")
    assert "needs a conv layer" in conv_only.applies_to(two, compiler.analyze(two))


def test_filter_similarity_leaves_the_model_as_found():
    model = with_some_grads(compiler.build(CONV_BN, seed=0), True)
    before = untouched_state(model)
    probe_class("filter_similarity")().measure(conv_bn_context(model))
    assert_untouched(model, before)


# ---------------------------------------------------------------- landscape

REGRESSION = """
blockgraph: 1
name: quadratic
inputs: {x: [3]}
nodes:
  - {id: fc, op: linear, out: 1, bias: false}
"""


def regression_loss(outputs, target):
    return ((outputs[:, 0] - target) ** 2).mean()


def test_landscape_on_linear_regression_follows_the_quadratic_in_closed_form():
    """L(w) = mean((Xw - t)^2): g = 2/N X^T r, H = 2/N X^T X, and a step a along -g gives
    g' = g - a H g and L(w') = L(w) - a g.g + a^2/2 g.H.g exactly."""
    torch.manual_seed(0)
    x, t = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    model = compiler.build(REGRESSION, seed=0).double()
    lr = 0.05
    ctx = context(REGRESSION, x, t, regression_loss, lr=lr, step=7, model=model)
    w = model.fc.linear.weight.detach()[0]
    n = x.shape[0]
    g = 2 / n * x.T @ (x @ w - t)
    hessian = 2 / n * x.T @ x
    loss_here = ((x @ w - t) ** 2).mean().item()
    factors = [0.5, 1.0, 2.0, 4.0]

    result = probe_class("landscape")(factors=factors).measure(ctx)

    sizes = [c * lr for c in factors]
    expected_losses = [loss_here - a * (g @ g).item() + a * a / 2 * (g @ hessian @ g).item() for a in sizes]
    assert result["step"] == 7 and result["loss"] == pytest.approx(loss_here, rel=1e-9)
    assert result["losses"] == pytest.approx(expected_losses, rel=1e-9)
    assert result["grad_distances"] == pytest.approx([a * (hessian @ g).norm().item() for a in sizes], rel=1e-9)
    assert result["beta"] == pytest.approx(((hessian @ g).norm() / g.norm()).item(), rel=1e-9)
    assert result["loss_range"] == pytest.approx(max(expected_losses) - min(expected_losses), rel=1e-9)
    assert result["grad_distance_max"] == pytest.approx(4 * lr * (hessian @ g).norm().item(), rel=1e-9)


def test_landscape_beta_of_an_isotropic_quadratic_is_its_curvature():
    """X^T X = s^2 I with N = 4: the Hessian is (2/N) s^2 I, so beta = s^2 / 2 along any g."""
    x = 2.0 * torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=torch.float64)
    t = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    model = compiler.build(REGRESSION, seed=0).double()
    result = probe_class("landscape")().measure(context(REGRESSION, x, t, regression_loss, lr=0.01, model=model))
    assert result["factors"] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    assert result["beta"] == pytest.approx(2.0, rel=1e-9)


def test_landscape_steps_and_summary():
    assert probe_class("landscape")(every=10).steps(35) == [10, 20, 30]
    assert probe_class("landscape")(at=[50, 5, 1, 5]).steps(40) == [1, 5]
    probe = probe_class("landscape")()
    results = [{"step": 20, "loss_range": 0.2, "grad_distance_max": 2.0, "beta": 20.0},
               {"step": 10, "loss_range": 0.1, "grad_distance_max": 1.0, "beta": 10.0}]
    summary = probe.summarize(results)
    assert summary["steps"] == [10, 20]
    assert summary["loss_range"] == [0.1, 0.2] and summary["grad_distance_max"] == [1.0, 2.0]
    assert summary["beta"] == [10.0, 20.0] and [r["step"] for r in summary["per_step"]] == [10, 20]
    with pytest.raises(ValueError):
        probe_class("landscape")(factors=[])
    with pytest.raises(ValueError):
        probe_class("landscape")(every=0)


def test_landscape_leaves_the_model_and_the_random_stream_as_found_and_repeats_itself():
    for training in (True, False):
        model = with_some_grads(compiler.build(CONV_BN, seed=0), training)
        before = untouched_state(model)
        ctx = conv_bn_context(model, step=3)
        rng = torch.get_rng_state()
        first = probe_class("landscape")().measure(ctx)
        assert_untouched(model, before)
        assert torch.equal(torch.get_rng_state(), rng)
        # the same dropout masks at every evaluation: measuring again gives the same numbers
        assert probe_class("landscape")().measure(ctx) == first
        assert all(math.isfinite(v) for v in first["losses"] + first["grad_distances"]) and first["beta"] > 0
