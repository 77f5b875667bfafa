"""nn.Module classes of the recurrent blocks (`lstm`, `gru`), imported by `build` only, so
loading a spec never imports torch.

`Recurrent` wraps PyTorch's own `nn.LSTM` / `nn.GRU` (child `lstm` or `gru`, so the weights
keep PyTorch's names: `rnn.lstm.weight_ih_l0`) and picks what the node returns: every step's
output or the last state. `LayerNormLSTM` is the layer-normalised LSTM of Ba, Kiros & Hinton
(2016), which PyTorch does not ship; it runs the time loop in Python, so it cannot use
cuDNN's fused kernel (benchmarks/lstm_layer_norm.py measures what that costs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def last_state(h_n: torch.Tensor, directions: int) -> torch.Tensor:
    """[N, H*dirs]: the top layer's final hidden state of each direction, forward first.

    Not `output[:, -1]`: for a bidirectional net the backward direction's final state is
    the one after reading the whole sequence backwards, i.e. at step 0 of `output`."""
    if directions == 1:
        return h_n[-1]
    return torch.cat([h_n[-2], h_n[-1]], dim=1)


class Recurrent(nn.Module):
    """An nn.LSTM or nn.GRU (batch first) returning `all` steps [N, T, H*dirs] or the `last`
    state [N, H*dirs], instead of PyTorch's (output, state) tuple."""

    def __init__(self, rnn: nn.LSTM | nn.GRU, returns: str):
        super().__init__()
        self.kind = "lstm" if isinstance(rnn, nn.LSTM) else "gru"
        self.add_module(self.kind, rnn)
        self.returns = returns
        self.directions = 2 if rnn.bidirectional else 1

    def forward(self, x):
        result = getattr(self, self.kind)(x)  # indexed, not unpacked: torch.fx traces this
        if self.returns == "all":
            return result[0]
        h_n = result[1][0] if self.kind == "lstm" else result[1]
        return last_state(h_n, self.directions)

    def extra_repr(self) -> str:
        return f"returns={self.returns!r}"


class LayerNormLSTMCell(nn.Module):
    """One direction of one layer of Ba et al. 2016's layer-normalised LSTM: the input and the
    recurrent projections are each layer-normalised (gain only: the single bias `bias` shifts
    them), and so is the cell state before the output tanh (gain and shift)."""

    def __init__(self, features: int, hidden: int, eps: float = 1e-5):
        super().__init__()
        self.hidden = hidden
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden, features))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden, hidden))
        self.bias = nn.Parameter(torch.zeros(4 * hidden))
        self.norm_ih = nn.LayerNorm(4 * hidden, eps=eps, bias=False)
        self.norm_hh = nn.LayerNorm(4 * hidden, eps=eps, bias=False)
        self.norm_cell = nn.LayerNorm(hidden, eps=eps)
        bound = hidden ** -0.5  # nn.LSTM's default: U(-1/sqrt(H), 1/sqrt(H))
        nn.init.uniform_(self.weight_ih, -bound, bound)
        nn.init.uniform_(self.weight_hh, -bound, bound)

    def forward(self, x, steps: int, reverse: bool = False):
        """x: [N, T, F] -> every step's hidden state [N, T, H] and the last one [N, H]."""
        projected = self.norm_ih(F.linear(x, self.weight_ih))  # all steps at once: one matmul
        h = torch.zeros_like(projected[:, 0, :self.hidden])  # [N, H], no shape read: fx traces it
        c = torch.zeros_like(h)
        outputs = [h] * steps
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            gates = projected[:, t] + self.norm_hh(F.linear(h, self.weight_hh)) + self.bias
            i, f, g, o = gates.chunk(4, dim=1)  # PyTorch's gate order
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(self.norm_cell(c))
            outputs[t] = h
        return torch.stack(outputs, dim=1), h


class LayerNormLSTM(nn.Module):
    """A stack of layer-normalised LSTM layers (optionally bidirectional), with dropout between
    layers as nn.LSTM has; returns like `Recurrent`. `steps` (T) is fixed at build time, from
    the spec's static shape, so torch.fx and the exporters see a plain unrolled loop."""

    def __init__(self, features: int, hidden: int, layers: int, bidirectional: bool, dropout: float,
                 returns: str, steps: int):
        super().__init__()
        self.directions = 2 if bidirectional else 1
        self.returns, self.steps = returns, steps
        cells = []
        for layer in range(layers):
            width = features if layer == 0 else hidden * self.directions
            cells.extend(LayerNormLSTMCell(width, hidden) for _ in range(self.directions))
        self.cells = nn.ModuleList(cells)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        last = []
        for layer in range(len(self.cells) // self.directions):
            if layer:
                x = self.dropout(x)
            runs = [self.cells[layer * self.directions + d](x, self.steps, reverse=d == 1)
                    for d in range(self.directions)]
            x = runs[0][0] if self.directions == 1 else torch.cat([runs[0][0], runs[1][0]], dim=2)
            last = [run[1] for run in runs]
        if self.returns == "all":
            return x
        return last[0] if self.directions == 1 else torch.cat(last, dim=1)

    def extra_repr(self) -> str:
        return f"returns={self.returns!r}, steps={self.steps}"
