"""`linear`: a fully connected layer on a flat feature vector, optionally with norm and act.

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

from .base import Flag, Block, Shape
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
    ranks = (1,)
    examples = [
        ({"out": 5}, [(7,)]),
        ({"out": 6, "bias": False, "norm": "batch", "act": "gelu"}, [(3,)]),
        ({"out": 4, "norm": "layer", "act": "tanh"}, [(9,)]),
    ]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        self.check_rank(in_shapes[0], "add {op: flatten} or {op: gap} before it")
        if self.norm is not None:
            self.norm.check((self.out,))
        return (self.out,)

    def macs(self, in_shapes: list[Shape], out_shape: Shape) -> int:
        return in_shapes[0][0] * self.out

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        params, buffers = in_shapes[0][0] * self.out + (self.out if self.bias else 0), 0
        if self.norm is not None:
            p, b = self.norm.param_count((self.out,))
            params, buffers = params + p, buffers + b
        return params, buffers

    def build(self, in_shapes: list[Shape]):
        from torch import nn

        parts: OrderedDict[str, nn.Module] = OrderedDict(linear=nn.Linear(in_shapes[0][0], self.out, self.bias))
        if self.norm is not None:
            parts["norm"] = self.norm.module((self.out,))
        if self.act is not None:
            parts["act"] = self.act.module(inplace=True)
        return nn.Sequential(parts)
