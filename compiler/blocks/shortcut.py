"""`shortcut`: the skip path of a residual block, identity or a projection chosen by shape.

It reads two inputs, the block's input `x` and the residual branch's output, and gives `x` in
the branch's shape: unchanged when the shapes agree, else through a 1x1 conv (with the stride
that maps the spatial size) and a norm, as in He et al., *Deep Residual Learning*, 2015
(option B). `residual` adds one automatically; use it directly in hand-wired blocks.

```yaml
- {id: proj, op: shortcut, in: [x, conv3]}                  # identity or 1x1 conv + BN
- {id: proj, op: shortcut, in: [x, conv2], mode: projection, norm: null}
```
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from ..errors import ShapeError
from .base import Block, Shape, conv_out, fmt
from .common import Norm
from .registry import register


@register
class Shortcut(Block):
    op: Literal["shortcut"] = "shortcut"
    mode: Literal["auto", "identity", "projection"] = "auto"
    """auto: identity when the shapes agree, else a projection; or force either."""
    norm: Norm | None = Norm(kind="batch")
    """Norm after the projection conv (null for none)."""
    family = "conv"
    ranks = None
    min_inputs = 2
    max_inputs = 2
    shape_only_inputs = (1,)
    examples = [({}, [(4, 6, 6), (4, 6, 6)]), ({}, [(4, 8, 8), (8, 4, 4)]),
                ({"mode": "projection", "norm": None}, [(3, 5, 5), (3, 5, 5)]), ({}, [(2, 7, 7), (6, 4, 4)])]

    def _stride(self, in_shapes: list[Shape]) -> int | None:
        """None for identity, else the projection's stride."""
        x, y = in_shapes
        if self.mode == "identity" or (self.mode == "auto" and x == y):
            if x != y:
                raise ShapeError(f"an identity shortcut needs the branch to keep the shape. Received: input "
                                 f"{fmt(x)}, branch {fmt(y)}; use mode: auto or projection")
            return None
        if len(x) != 3 or len(y) != 3:
            raise ShapeError(f"a projection shortcut needs feature maps [C, H, W]. Received: {fmt(x)} and {fmt(y)}")
        for s in range(1, max(x[1], x[2]) + 1):
            if conv_out(x[1], 1, s, 0) == y[1] and conv_out(x[2], 1, s, 0) == y[2]:
                return s
        raise ShapeError(f"no strided 1x1 projection maps the input {fmt(x)} to the branch's {fmt(y)}: "
                         "the branch must shrink height and width by the same stride")

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        if self._stride(in_shapes) is not None and self.norm is not None:
            self.norm.check(in_shapes[1])
        return in_shapes[1]

    def macs(self, in_shapes: list[Shape], out_shape: Shape) -> int:
        if self._stride(in_shapes) is None:
            return 0
        return out_shape[0] * out_shape[1] * out_shape[2] * in_shapes[0][0]

    def window(self, in_shapes: list[Shape]) -> tuple[int, int]:
        return 1, self._stride(in_shapes) or 1

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        if self._stride(in_shapes) is None:
            return 0, 0
        c_in, c_out = in_shapes[0][0], in_shapes[1][0]
        if self.norm is None:
            return c_in * c_out + c_out, 0
        p, b = self.norm.param_count(in_shapes[1])
        return c_in * c_out + p, b

    def build(self, in_shapes: list[Shape]):
        from torch import nn

        stride = self._stride(in_shapes)
        if stride is None:
            return None
        out = in_shapes[1][0]
        parts = OrderedDict(conv=nn.Conv2d(in_shapes[0][0], out, 1, stride, bias=self.norm is None))
        if self.norm is not None:
            parts["norm"] = self.norm.module(in_shapes[1])
        return nn.Sequential(parts)

    def emit(self, em, args):
        if em.module is None:
            return args[0]
        return super().emit(em, args[:1])

    def allocates(self, in_shapes: list[Shape]) -> bool:
        return self._stride(in_shapes) is not None
