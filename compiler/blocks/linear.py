"""`linear`: a fully connected layer on a flat feature vector, optionally with norm and act.

On a sequence [T, F] it acts on the last axis, the same weights at every step ([T, F] ->
[T, out], as nn.Linear does): a per-step projection or tagger after `lstm`/`gru` with
`returns: all`. Its fused norm then normalises each step's features (layer norm only), and
softmax runs over the features. A feature map [C, H, W] is refused: flatten or pool it first.

```yaml
- {op: flatten}
- {id: fc6, op: linear, out: 4096, act: relu}
- {id: fc8, op: linear, out: $classes}
```
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from pydantic import PositiveInt

from ..errors import ShapeError
from .base import Flag, Block, Shape, fmt
from .common import Act, Norm
from .registry import register


@register
class Linear(Block):
    op: Literal["linear"] = "linear"
    out: PositiveInt
    """Output features."""
    bias: Flag = True
    """Add a learned bias."""
    norm: Norm | None = None
    """Normalisation fused after the layer (batch norm over features, or layer norm)."""
    act: Act | None = None
    """Activation fused after the layer (after the norm)."""

    family = "linear"
    ranks = (1, 2)
    sequence_input = True
    examples = [
        ({"out": 5}, [(7,)]),
        ({"out": 6, "bias": False, "norm": "batch", "act": "gelu"}, [(3,)]),
        ({"out": 4, "norm": "layer", "act": "tanh"}, [(9,)]),
        ({"out": 3}, [(5, 4)]),
        ({"out": 4, "norm": "layer", "act": "softmax"}, [(3, 6)]),
    ]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        self.check_rank(in_shapes[0], "add {op: flatten} or {op: gap} before it")
        out_shape = (*in_shapes[0][:-1], self.out)
        if self.norm is not None:
            if len(out_shape) == 2 and self.norm.kind != "layer":
                raise ShapeError(f"linear on a sequence [T, F] takes only norm: layer (each step's features "
                                 f"normalised). Received: input shape {fmt(in_shapes[0])}, norm: {self.norm.kind}; "
                                 f"{self.norm.kind} norm would treat the time steps as channels")
            self.norm.check(out_shape)
        return out_shape

    def macs(self, in_shapes: list[Shape], out_shape: Shape) -> int:
        steps = in_shapes[0][0] if len(in_shapes[0]) == 2 else 1
        return steps * in_shapes[0][-1] * self.out

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        params, buffers = in_shapes[0][-1] * self.out + (self.out if self.bias else 0), 0
        if self.norm is not None:
            p, b = self.norm.param_count((*in_shapes[0][:-1], self.out))
            params, buffers = params + p, buffers + b
        return params, buffers

    def build(self, in_shapes: list[Shape]):
        from torch import nn

        parts: OrderedDict[str, nn.Module] = OrderedDict(linear=nn.Linear(in_shapes[0][-1], self.out, self.bias))
        if self.norm is not None:
            parts["norm"] = self.norm.module((*in_shapes[0][:-1], self.out))
        if self.act is not None:  # softmax over the features, of a vector or of each step
            parts["act"] = nn.Softmax(dim=-1) if self.act.kind == "softmax" else self.act.module(inplace=True)
        return nn.Sequential(parts)
