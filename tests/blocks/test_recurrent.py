"""Recurrent ops and sequences (issue 20): the two shipped sequence specs equal hand-written
PyTorch models (parameter count, and outputs after loading the reference's weights, to 1e-6),
the layer-normalised LSTM equals Ba et al.'s equations written out here with F.layer_norm,
MACs and parameters equal the paper formulas computed by hand, the per-step ops (`linear`,
layer `norm`, `time_pool`) equal PyTorch applied step by step, and summary, render and export
work for both specs. The registry harness runs every example of `lstm`, `gru`, `embedding`
and `time_pool` (shapes, FLOP counter, parameters, gradients)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import compiler
from compiler import SpecError
from compiler.cli import main

ROOT = Path(__file__).resolve().parents[2]
LSTM_ADDING = ROOT / "specs" / "lstm_adding.yaml"
GRU_ROWS = ROOT / "specs" / "gru_shapes_rows.yaml"


class AddingReference(nn.Module):
    """The adding problem's model as one writes it in PyTorch."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(2, 128, batch_first=True)
        self.fc = nn.Linear(128, 1)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.fc(h[-1])


class RowsReference(nn.Module):
    """A GRU reading a [3, 32, 32] image row by row, classifying from its last state."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.gru = nn.GRU(96, 128, batch_first=True)
        self.fc = nn.Linear(128, classes)

    def forward(self, image):
        rows = image.permute(0, 2, 1, 3).reshape(image.shape[0], 32, 96)  # [N, H, C*W]
        _, h = self.gru(rows)
        return self.fc(h[-1])


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _transfer(reference: nn.Module, model: nn.Module, names: dict[str, str]) -> None:
    """Load the reference's weights into the compiled model (strict: every tensor, no other)."""
    state = {}
    for key, value in reference.state_dict().items():
        prefix, rest = key.split(".", 1)
        state[f"{names[prefix]}.{rest}"] = value
    model.load_state_dict(state, strict=True)


def test_lstm_adding_is_nn_lstm_plus_linear():
    torch.manual_seed(0)
    reference = AddingReference().eval()
    assert _params(reference) == 67_713
    analysis = compiler.analyze(compiler.load(LSTM_ADDING))
    assert analysis.params == 67_713
    model = compiler.build(LSTM_ADDING, seed=0).eval()
    _transfer(reference, model, {"lstm": "rnn.lstm", "fc": "head.linear"})
    x = torch.randn(4, 100, 2)
    torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-6)
    # 100 steps of the four gates' matmuls, then the head
    assert analysis.macs == 100 * 4 * (2 * 128 + 128 * 128) + 128


def test_gru_rows_is_nn_gru_plus_linear():
    torch.manual_seed(0)
    reference = RowsReference().eval()
    analysis = compiler.analyze(compiler.load(GRU_ROWS))
    assert analysis.params == _params(reference) == 3 * (128 * 96 + 128 * 128 + 2 * 128) + 128 * 10 + 10
    model = compiler.build(GRU_ROWS, seed=0).eval()
    _transfer(reference, model, {"gru": "rnn.gru", "fc": "classifier.linear"})
    image = torch.randn(3, 3, 32, 32)
    rows = image.permute(0, 2, 1, 3).reshape(3, 32, 96)
    torch.testing.assert_close(model(rows), reference(image), rtol=0, atol=1e-6)
    assert analysis.macs == 32 * 3 * (96 * 128 + 128 * 128) + 128 * 10


def test_gru_rows_classes_come_from_the_dataset_var():
    spec = compiler.load(GRU_ROWS, vars={"classes": 7})
    assert compiler.analyze(spec).graph.shapes["classifier"] == (7,)


def _one_node(node: str, shape: list[int]) -> str:
    return f"blockgraph: 1\nname: t\ninputs:\n  x: {shape}\nnodes:\n  - {node}\n"


def test_bidirectional_stacked_lstm_returns_and_costs():
    """`last` of a bidirectional net is the forward state after the last step and the backward
    state after step 0 (nn.LSTM's output at those steps); `all` is nn.LSTM's output."""
    torch.manual_seed(0)
    h, f, t = 5, 3, 7
    reference = nn.LSTM(f, h, num_layers=2, bidirectional=True, batch_first=True).eval()
    x = torch.randn(2, t, f)
    expected, _ = reference(x)
    for returns, want in (("all", expected), ("last", torch.cat([expected[:, -1, :h], expected[:, 0, h:]], 1))):
        text = _one_node(f"{{id: rnn, op: lstm, hidden: {h}, layers: 2, bidirectional: true, returns: {returns}}}",
                         [t, f])
        model = compiler.build(compiler.load(text), seed=0).eval()
        model.rnn.lstm.load_state_dict(reference.state_dict())
        torch.testing.assert_close(model(x), want, rtol=0, atol=1e-6)
    analysis = compiler.analyze(compiler.load(text))
    # layer 1 reads F, layer 2 reads both directions (2H); each direction: 4 gates
    assert analysis.macs == t * 2 * (4 * (f * h + h * h) + 4 * (2 * h * h + h * h))
    assert analysis.params == _params(reference) == 2 * (4 * (h * f + h * h + 2 * h) + 4 * (h * 2 * h + h * h + 2 * h))


def _ln_lstm_by_hand(x, cell, reverse=False):
    """Ba et al. 2016's layer-normalised LSTM: gates = LN(W_x x) + LN(W_h h) + b,
    c = s(f) c + s(i) tanh(g), h = s(o) tanh(LN(c)); the gains and shift read from the module's
    parameters."""
    n, t, _ = x.shape
    hidden = cell.hidden
    h, c = x.new_zeros(n, hidden), x.new_zeros(n, hidden)
    out = [None] * t
    for step in (reversed(range(t)) if reverse else range(t)):
        gates = (F.layer_norm(x[:, step] @ cell.weight_ih.T, (4 * hidden,), cell.norm_ih.weight)
                 + F.layer_norm(h @ cell.weight_hh.T, (4 * hidden,), cell.norm_hh.weight) + cell.bias)
        i, f, g, o = gates.split(hidden, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, (hidden,), cell.norm_cell.weight, cell.norm_cell.bias))
        out[step] = h
    return torch.stack(out, 1), h


def test_layer_norm_lstm_follows_the_paper():
    torch.manual_seed(0)
    text = _one_node("{id: rnn, op: lstm, hidden: 4, layer_norm: true, bidirectional: true}", [6, 3])
    model = compiler.build(compiler.load(text), seed=0).eval().double()  # float64: the sums' order is not
    with torch.no_grad():  # gains and shifts away from 1 and 0, so that using them is tested
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    forward, _ = _ln_lstm_by_hand(x, model.rnn.cells[0])
    backward, _ = _ln_lstm_by_hand(x, model.rnn.cells[1], reverse=True)
    torch.testing.assert_close(model(x), torch.cat([forward, backward], 2), rtol=0, atol=1e-6)
    h, f = 4, 3
    assert compiler.analyze(compiler.load(text)).params == 2 * (4 * (h * f + h * h) + 14 * h)


def test_linear_time_pool_and_layer_norm_act_per_step():
    torch.manual_seed(0)
    text = ("blockgraph: 1\nname: t\ninputs:\n  x: [5, 4]\nnodes:\n"
            "  - {id: fc, op: linear, out: 3}\n  - {id: ln, op: norm, kind: layer}\n"
            "  - {id: pool, op: time_pool, mode: max}\n")
    analysis = compiler.analyze(compiler.load(text))
    assert analysis.graph.shapes["fc"] == (5, 3) and analysis.graph.shapes["pool"] == (3,)
    assert analysis.macs == 5 * 4 * 3 and analysis.params == 4 * 3 + 3 + 2 * 3
    model = compiler.build(compiler.load(text), seed=0).eval()
    x = torch.randn(2, 5, 4)
    steps = [F.layer_norm(F.linear(x[:, s], model.fc.linear.weight, model.fc.linear.bias), (3,)) for s in range(5)]
    torch.testing.assert_close(model(x), torch.stack(steps, 1).max(dim=1).values)


def test_embedding_feeds_a_gru():
    text = ("blockgraph: 1\nname: t\ninputs:\n  tokens: {shape: [9], dtype: int64}\nnodes:\n"
            "  - {id: embed, op: embedding, vocab: 50, dim: 8}\n  - {id: rnn, op: gru, hidden: 6, returns: last}\n")
    analysis = compiler.analyze(compiler.load(text))
    assert analysis.graph.shapes["embed"] == (9, 8)
    assert analysis.params == 50 * 8 + 3 * (6 * 8 + 6 * 6 + 2 * 6)
    model = compiler.build(compiler.load(text), seed=0).eval()
    ids = torch.randint(0, 50, (2, 9))
    _, h = model.rnn.gru(F.embedding(ids, model.embed.weight))
    torch.testing.assert_close(model(ids), h[-1])


@pytest.mark.parametrize("node, shape, fragments", [
    ("{op: lstm, hidden: 8}", [3, 32, 32], ["lstm expects a sequence [time, features]", "[3, 32, 32]",
                                            "reshape or permute it to [T, F]"]),
    ("{op: gru, hidden: 8, dropout: 0.2}", [5, 4], ["dropout acts between stacked layers", "layers: 2"]),
    ("{op: lstm, hidden: 8, returns: banana}", [5, 4], ["'all' or 'last'", "banana"]),
    ("{op: linear, out: 3, norm: batch}", [5, 4], ["takes only norm: layer", "[5, 4]"]),
    ("{op: time_pool}", [4, 5, 5], ["time_pool expects a sequence [time, features]"]),
])
def test_bad_recurrent_input_is_a_located_error(node, shape, fragments):
    with pytest.raises(SpecError) as info:
        compiler.analyze(compiler.load(_one_node(node, shape)))
    problem = info.value.first
    assert problem.loc.line == 6, problem
    for fragment in fragments:
        assert fragment in problem.message, problem.message


@pytest.mark.parametrize("path", [LSTM_ADDING, GRU_ROWS], ids=lambda p: p.stem)
def test_summary_render_and_export(path, tmp_path, capsys):
    assert main(["summary", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["params"] == compiler.analyze(compiler.load(path)).params
    svg = tmp_path / "graph.svg"
    assert main(["render", str(path), "-o", str(svg)]) == 0
    ids = {element.get("id") for element in ET.parse(svg).getroot().iter()}
    assert {"node-rnn"} <= ids
    # the standalone file rebuilds nn.LSTM / nn.GRU from their arguments (ONNX: the test below)
    assert main(["export", str(path), "--format", "python", "-o", str(tmp_path / "m.py")]) == 0


@pytest.mark.parametrize("path", [LSTM_ADDING, GRU_ROWS], ids=lambda p: p.stem)
def test_onnx_runs_in_onnxruntime_with_a_dynamic_batch(path, tmp_path):
    import onnxruntime as ort

    from compiler.export import export

    reference = compiler.build(path, seed=0).eval()
    out = export(reference, "onnx", tmp_path / "m.onnx", verify=False)  # checked here instead
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    shape = compiler.load(path).inputs[session.get_inputs()[0].name]
    for batch in (1, 5):
        x = torch.randn(batch, *shape)
        got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
        with torch.no_grad():
            torch.testing.assert_close(got, reference(x), rtol=1e-4, atol=1e-5)


def test_layer_norm_lstm_exports_as_an_unrolled_loop(tmp_path):
    """Its Python time loop runs T times, T fixed by the spec: torch.fx, TorchScript and the
    standalone file see plain ops (each format is reloaded and compared by `export`)."""
    from compiler.export import export

    text = _one_node("{id: rnn, op: lstm, hidden: 4, layers: 2, layer_norm: true, returns: last}", [6, 3])
    model = compiler.build(compiler.load(text), seed=0)
    for fmt, suffix in (("python", ".py"), ("torchscript", ".pt")):
        assert export(model, fmt, tmp_path / f"m{suffix}", inputs=[(6, 3)]).is_file()
