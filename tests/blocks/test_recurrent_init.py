"""init.lstm / init.gru against their definitions: the forget gate's bias is the *sum* of the
forget slices of b_ih and b_hh; `recurrent: orthogonal` makes each gate's [H, H] block Q
orthogonal (Q.T @ Q = I); `input` fills each gate's [H, F] block with its own fans."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import compiler

ROOT = Path(__file__).resolve().parents[2]

SPEC = """\
blockgraph: 1
name: rnn_init
inputs:
  seq: [12, 6]
init:
  lstm: {forget_bias: 1.0, recurrent: orthogonal, input: xavier_uniform}
  gru: {recurrent: orthogonal}
nodes:
  - {id: lstm, op: lstm, hidden: 8, layers: 2, bidirectional: true, returns: all}
  - {id: gru, op: gru, hidden: 5, layers: 2}
  - {id: ln, op: lstm, hidden: 4, layer_norm: true, returns: last}
"""


def _rnn(model, kind):
    return next(m for m in model.modules() if isinstance(m, kind))


def _by_direction(rnn):
    """(layer, suffix) of every layer and direction of an nn.LSTM / nn.GRU."""
    suffixes = ["", "_reverse"] if rnn.bidirectional else [""]
    return [(layer, s) for layer in range(rnn.num_layers) for s in suffixes]


def test_the_forget_gate_bias_is_the_sum_of_the_two_slices():
    model = compiler.build(ROOT / "specs" / "lstm_adding.yaml", seed=0)
    lstm = _rnn(model, torch.nn.LSTM)
    hidden = 128
    b_ih, b_hh = lstm.bias_ih_l0.detach(), lstm.bias_hh_l0.detach()
    assert torch.allclose(b_ih[hidden:2 * hidden] + b_hh[hidden:2 * hidden], torch.ones(hidden))
    # the other gates keep PyTorch's default, U(-1/sqrt(H), 1/sqrt(H)), and are not constant
    bound = 1 / math.sqrt(hidden)
    for b in (b_ih, b_hh):
        others = torch.cat([b[:hidden], b[2 * hidden:]])
        assert others.abs().max() <= bound and others.std() > bound / 4


def test_every_layer_and_direction_gets_the_rules():
    model = compiler.build(SPEC, seed=1)
    lstm, gru = _rnn(model, torch.nn.LSTM), _rnn(model, torch.nn.GRU)
    for rnn, gates, hidden in ((lstm, 4, 8), (gru, 3, 5)):
        for layer, s in _by_direction(rnn):
            w_hh = getattr(rnn, f"weight_hh_l{layer}{s}").detach()
            w_ih = getattr(rnn, f"weight_ih_l{layer}{s}").detach()
            for g in range(gates):
                q = w_hh[g * hidden:(g + 1) * hidden]
                assert torch.allclose(q.T @ q, torch.eye(hidden), atol=1e-5), (rnn, layer, s, g)
            if rnn is lstm:
                fan_in = w_ih.shape[1]  # 6 for layer 0, 2 * 8 after a bidirectional layer
                bound = math.sqrt(6 / (fan_in + hidden))  # xavier_uniform on each [H, F] gate block
                assert w_ih.abs().max() <= bound and w_ih.abs().max() > 0.8 * bound
                b_ih, b_hh = getattr(rnn, f"bias_ih_l{layer}{s}"), getattr(rnn, f"bias_hh_l{layer}{s}")
                assert torch.allclose(b_ih[hidden:2 * hidden] + b_hh[hidden:2 * hidden], torch.ones(hidden))


def test_the_layer_normalised_lstm_has_one_bias_whose_forget_slice_is_set():
    model = compiler.build(SPEC, seed=2)
    cell = next(m for m in model.modules() if type(m).__name__ == "LayerNormLSTMCell")
    assert torch.equal(cell.bias[4:8].detach(), torch.ones(4))
    q = cell.weight_hh.detach()[4:8]
    assert torch.allclose(q.T @ q, torch.eye(4), atol=1e-5)


def test_without_a_rule_pytorch_defaults_stay():
    plain = compiler.build(SPEC.replace("init:\n  lstm: {forget_bias: 1.0, recurrent: orthogonal, input: "
                                        "xavier_uniform}\n  gru: {recurrent: orthogonal}\n", ""), seed=1)
    lstm = _rnn(plain, torch.nn.LSTM)
    b = lstm.bias_ih_l0.detach() + lstm.bias_hh_l0.detach()
    assert not torch.allclose(b[8:16], torch.ones(8))
    q = lstm.weight_hh_l0.detach()[:8]
    assert not torch.allclose(q.T @ q, torch.eye(8), atol=1e-2)


def test_forget_bias_on_a_gru_says_why():
    with pytest.raises(compiler.SpecError, match="a GRU has no forget gate") as caught:
        compiler.load(SPEC.replace("gru: {recurrent: orthogonal}", "gru: {forget_bias: 1.0}"))
    assert caught.value.errors[0].loc.line == 7
