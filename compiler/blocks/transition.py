"""`transition`: DenseNet's layer between dense blocks (Huang et al. 2016): norm, activation,
a 1x1 conv that compresses the channels by `compression` (theta), then 2x2 average pooling.

```yaml
- {op: transition}                     # theta = 0.5, as in DenseNet-BC
- {op: transition, out: 128, pool: max}
```
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from pydantic import Field, PositiveInt

from ..errors import ShapeError
from .base import Block, Shape, fmt
from .common import Act, Norm
from .pooling import pooled_shape
from .registry import register


@register
class Transition(Block):
    op: Literal["transition"] = "transition"
    compression: float = Field(0.5, gt=0, le=1)
    """Output channels = floor(input channels * compression)."""
    out: PositiveInt | None = None
    """Output channels, instead of a compression factor."""
    pool: Literal["avg", "max", "none"] = "avg"
    """Pooling after the conv (2x2, stride 2)."""
    norm: Norm | None = Norm(kind="batch")
    """Norm before the conv."""
    act: Act | None = Act(kind="relu")
    """Activation before the conv."""
    family = "conv"
    ranks = (3,)
    width_fields = ("out",)
    examples = [({}, [(8, 6, 6)]), ({"out": 3, "pool": "max", "norm": None}, [(5, 4, 4)]),
                ({"compression": 1.0, "pool": "none"}, [(4, 3, 3)])]

    def channels(self, c: int) -> int:
        return self.out if self.out is not None else int(c * self.compression)

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        (shape,) = in_shapes
        self.check_rank(shape)
        if self.norm is not None:
            self.norm.check(shape)
        out = self.channels(shape[0])
        if out < 1:
            raise ShapeError(f"transition compresses {shape[0]} channels to none. Received: input {fmt(shape)}, "
                             f"compression={self.compression}")
        if self.pool == "none":
            return (out, *shape[1:])
        return pooled_shape("transition", (out, *shape[1:]), 2, 2, 0)

    def macs(self, in_shapes: list[Shape], out_shape: Shape) -> int:
        c, h, w = in_shapes[0]
        return c * self.channels(c) * h * w

    def window(self, in_shapes: list[Shape]) -> tuple[int, int]:
        return (1, 1) if self.pool == "none" else (2, 2)

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        c = in_shapes[0][0]
        conv = c * self.channels(c) + (0 if self.norm is not None else self.channels(c))  # bias without a norm
        if self.norm is None:
            return conv, 0
        p, b = self.norm.param_count(in_shapes[0])
        return conv + p, b

    def build(self, in_shapes: list[Shape]):
        from torch import nn

        shape = in_shapes[0]
        parts: OrderedDict[str, nn.Module] = OrderedDict()
        if self.norm is not None:
            parts["norm"] = self.norm.module(shape)
        if self.act is not None:  # in place only on the norm's private output
            parts["act"] = self.act.module(inplace=self.norm is not None)
        parts["conv"] = nn.Conv2d(shape[0], self.channels(shape[0]), 1, bias=self.norm is None)
        if self.pool != "none":
            parts["pool"] = (nn.AvgPool2d if self.pool == "avg" else nn.MaxPool2d)(2, 2)
        return nn.Sequential(parts)
