"""`lstm` and `gru`: recurrent layers over a sequence [T, F] (time first, features last).

LSTM: Hochreiter & Schmidhuber, *Long Short-Term Memory*, 1997 (with the forget gate of
Gers et al. 2000, as PyTorch's nn.LSTM); GRU: Cho et al., *Learning Phrase Representations
using RNN Encoder-Decoder*, 2014. `layer_norm: true` makes the LSTM the layer-normalised one
of Ba, Kiros & Hinton, *Layer Normalization*, 2016.

Each reads [T, F] and returns every step's hidden state [T, H*dirs] (`returns: all`, to stack
another recurrent layer or a per-step `linear`) or the top layer's final state [H*dirs]
(`returns: last`, for a classification head); dirs is 2 when `bidirectional`.

```yaml
- {id: rnn, op: lstm, hidden: 128, returns: last}               # [100, 2] -> [128]
- {op: gru, hidden: 64, layers: 2, dropout: 0.1, bidirectional: true}   # [T, F] -> [T, 128]
- {op: lstm, hidden: 32, layer_norm: true, returns: last}
```

Parameters per layer and direction, with F the layer's input features (F for the first
layer, H*dirs above it): LSTM 4*(H*F + H*H + 2H) (PyTorch keeps two biases), GRU
3*(H*F + H*H + 2H), layer-normalised LSTM 4*(H*F + H*H) + 14H (one bias, two gains of 4H,
the cell norm's gain and shift). MACs per step and direction: the gate matmuls, 4*(F*H + H*H)
for an LSTM and 3*(F*H + H*H) for a GRU, times T steps, summed over layers.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt, model_validator

from .base import Block, Flag, Shape
from .registry import register


def sequence_hint(shape: Shape) -> str:
    """The fix for a non-sequence input: for a map [C, H, W], the two nodes reading it row by row."""
    text = "reshape or permute it to [T, F] first"
    if len(shape) == 3:
        c, h, w = shape
        text += (f", e.g. row by row ({h} steps of {c}*{w} features): {{op: permute, dims: [1, 0, 2]}} then "
                 f"{{op: reshape, shape: [{h}, {c * w}]}}")
    return text + "; a vector [F] is one step: {op: reshape, shape: [1, F]}" if len(shape) == 1 else text


class _Recurrent(Block):
    """What `lstm` and `gru` share: the schema, the shape rule and the cost."""

    hidden: PositiveInt
    """Hidden state size H of each direction."""
    layers: PositiveInt = 1
    """Stacked recurrent layers; each above the first reads the one below's every step."""
    bidirectional: Flag = False
    """Also run the sequence backwards and concatenate both directions (2H features)."""
    dropout: float = Field(0, ge=0, lt=1)
    """Dropout on the outputs of every layer but the last, while training (needs layers > 1)."""
    returns: Literal["all", "last"] = "all"
    """all: every step's hidden state [T, H*dirs]; last: the top layer's final state [H*dirs]
    (of each direction: the backward one has read the whole sequence too)."""

    family = "recurrent"
    ranks = (2,)
    sequence_input = True
    width_fields = ("hidden",)
    gates: ClassVar[int] = 1
    """Gate blocks of one step: 4 for an LSTM (input, forget, cell, output), 3 for a GRU."""

    @model_validator(mode="after")
    def _dropout_needs_layers(self):
        if self.dropout and self.layers == 1:
            raise ValueError(f"dropout acts between stacked layers, and there is one (layers: 1): "
                             f"set layers: 2 or more, or add {{op: dropout, p: {self.dropout}}} after this node")
        return self

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        shape = in_shapes[0]
        self.check_rank(shape, sequence_hint(shape))
        width = self.hidden * self.directions
        return (shape[0], width) if self.returns == "all" else (width,)

    def layer_inputs(self, features: int) -> list[int]:
        """The input features of each layer: F, then H*dirs."""
        return [features] + [self.hidden * self.directions] * (self.layers - 1)

    def macs(self, in_shapes: list[Shape], out_shape: Shape) -> int:
        steps, features = in_shapes[0]
        per_step = sum(self.gates * (f * self.hidden + self.hidden * self.hidden) for f in self.layer_inputs(features))
        return steps * self.directions * per_step

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        h = self.hidden
        per_direction = sum(self.gates * (h * f + h * h + 2 * h) for f in self.layer_inputs(in_shapes[0][1]))
        return self.directions * per_direction, 0

    def torch_rnn(self, features: int):
        from torch import nn

        cls = nn.LSTM if self.gates == 4 else nn.GRU
        return cls(features, self.hidden, num_layers=self.layers, batch_first=True,
                   bidirectional=self.bidirectional, dropout=self.dropout)

    def build(self, in_shapes: list[Shape]):
        from .recurrent_modules import Recurrent

        return Recurrent(self.torch_rnn(in_shapes[0][1]), self.returns)


@register
class LSTM(_Recurrent):
    op: Literal["lstm"] = "lstm"
    layer_norm: Flag = False
    """Layer-normalise the gate pre-activations and the cell state (Ba et al. 2016); runs a
    Python time loop instead of PyTorch's fused kernel (slower: see docs/benchmarks.md)."""
    gates = 4
    examples = [
        ({"hidden": 5}, [(7, 3)]),
        ({"hidden": 4, "returns": "last"}, [(6, 2)]),
        ({"hidden": 3, "layers": 2, "bidirectional": True, "dropout": 0.2}, [(5, 4)]),
        ({"hidden": 3, "layers": 2, "bidirectional": True, "returns": "last"}, [(4, 2)]),
        ({"hidden": 4, "layer_norm": True, "returns": "last"}, [(5, 3)]),
        ({"hidden": 3, "layers": 2, "bidirectional": True, "layer_norm": True}, [(4, 2)]),
    ]

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        if not self.layer_norm:
            return super().param_count(in_shapes)
        h = self.hidden
        per_direction = sum(4 * (h * f + h * h) + 14 * h for f in self.layer_inputs(in_shapes[0][1]))
        return self.directions * per_direction, 0

    def build(self, in_shapes: list[Shape]):
        if not self.layer_norm:
            return super().build(in_shapes)
        from .recurrent_modules import LayerNormLSTM

        steps, features = in_shapes[0]
        return LayerNormLSTM(features, self.hidden, self.layers, self.bidirectional, self.dropout,
                             self.returns, steps)


@register
class GRU(_Recurrent):
    op: Literal["gru"] = "gru"
    gates = 3
    examples = [
        ({"hidden": 5}, [(7, 3)]),
        ({"hidden": 4, "returns": "last"}, [(6, 2)]),
        ({"hidden": 3, "layers": 2, "bidirectional": True, "dropout": 0.1, "returns": "last"}, [(5, 4)]),
    ]
