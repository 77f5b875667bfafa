"""`maxpool`: the maximum over each k x k window (stride defaults to k).

```yaml
- {op: maxpool, k: 2}                       # halves height and width
- {op: maxpool, k: 3, stride: 2, pad: 1}    # ResNet's stem pool
- {op: maxpool, k: 3, stride: 2, ceil: true}  # GoogLeNet / Caffe rounding
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt, PositiveInt

from .base import Flag, Block, Shape, pair
from .pooling import pooled_shape
from .registry import register

IntPair = PositiveInt | tuple[PositiveInt, PositiveInt]


@register
class MaxPool(Block):
    op: Literal["maxpool"] = "maxpool"
    k: IntPair = 2
    """Window size: one number or [height, width]."""
    stride: IntPair | None = None
    """Step between windows; defaults to k (non-overlapping windows)."""
    pad: NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt] = 0
    """Implicit padding (with -inf) on each side; at most k // 2."""
    dilation: IntPair = 1
    """Spacing between window taps."""
    ceil: Flag = False
    """Round the output size up instead of down (Caffe's convention)."""
    family = "pool"
    ranks = (3,)
    examples = [({}, [(3, 8, 8)]), ({"k": 3, "stride": 2, "pad": 1}, [(2, 9, 9)]),
                ({"k": 3, "stride": 2, "ceil": True}, [(2, 10, 10)]), ({"k": [2, 3], "dilation": 2}, [(1, 9, 9)])]

    def _stride(self):
        return self.k if self.stride is None else self.stride

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        self.check_rank(in_shapes[0])
        return pooled_shape("maxpool", in_shapes[0], self.k, self._stride(), self.pad, self.dilation, self.ceil)

    def window(self, in_shapes: list[Shape]) -> tuple[int, int]:
        k, d = pair(self.k), pair(self.dilation)
        return max(d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1), max(pair(self._stride()))

    def emit(self, em, args):
        import torch.nn.functional as F

        kwargs = {"kernel_size": pair(self.k), "stride": pair(self._stride())}
        if self.pad:
            kwargs["padding"] = pair(self.pad)
        if self.dilation != 1:
            kwargs["dilation"] = pair(self.dilation)
        if self.ceil:
            kwargs["ceil_mode"] = True
        return em.call_function(F.max_pool2d, (args[0],), kwargs)
