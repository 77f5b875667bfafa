"""`avgpool`: the mean over each k x k window, or adaptive pooling to a fixed output size.

```yaml
- {op: avgpool, k: 2}                 # stride defaults to k
- {op: avgpool, k: 3, stride: 1, pad: 1, count_pad: false}
- {op: avgpool, size: [7, 7]}         # adaptive: any input -> 7x7 (VGG's classifier input)
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt, PositiveInt, model_validator

from ..errors import ShapeError
from .base import Flag, Block, Shape, fmt, pair
from .pooling import pooled_shape
from .registry import register

IntPair = PositiveInt | tuple[PositiveInt, PositiveInt]


@register
class AvgPool(Block):
    op: Literal["avgpool"] = "avgpool"
    k: IntPair | None = None
    """Window size (give either k or size)."""
    stride: IntPair | None = None
    """Step between windows; defaults to k."""
    pad: NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt] = 0
    """Implicit zero padding on each side; at most k // 2."""
    ceil: Flag = False
    """Round the output size up instead of down."""
    count_pad: Flag = True
    """Count padded zeros in the mean (PyTorch's count_include_pad)."""
    size: IntPair | None = None
    """Adaptive pooling: the output height and width, whatever the input size."""
    family = "pool"
    ranks = (3,)
    examples = [({"k": 2}, [(3, 8, 8)]), ({"k": 3, "stride": 1, "pad": 1, "count_pad": False}, [(2, 5, 5)]),
                ({"k": 3, "stride": 2, "ceil": True}, [(2, 10, 10)]), ({"size": [2, 3]}, [(4, 7, 9)])]

    @model_validator(mode="after")
    def _k_or_size(self):
        if (self.k is None) == (self.size is None):
            raise ValueError("avgpool takes either k (a window) or size (adaptive output size)")
        return self

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        shape = in_shapes[0]
        self.check_rank(shape)
        if self.size is not None:
            oh, ow = pair(self.size)
            if oh > shape[1] or ow > shape[2]:
                raise ShapeError(f"adaptive avgpool cannot grow a map. Received: input {fmt(shape)}, size={self.size}")
            return shape[0], oh, ow
        return pooled_shape("avgpool", shape, self.k, self.stride or self.k, self.pad, 1, self.ceil)

    def window(self, in_shapes: list[Shape]) -> tuple[int, int]:
        if self.k is None:  # adaptive: windows of about input/size, stepping by as much
            h, (oh, _) = in_shapes[0][1], pair(self.size)
            return -(-h // oh), max(1, h // oh)
        return max(pair(self.k)), max(pair(self.stride or self.k))

    def emit(self, em, args):
        import torch.nn.functional as F

        if self.size is not None:
            return em.call_function(F.adaptive_avg_pool2d, (args[0], pair(self.size)))
        kwargs = {"kernel_size": pair(self.k), "stride": pair(self.stride or self.k)}
        if self.pad:
            kwargs["padding"] = pair(self.pad)
        if self.ceil:
            kwargs["ceil_mode"] = True
        if not self.count_pad:
            kwargs["count_include_pad"] = False
        return em.call_function(F.avg_pool2d, (args[0],), kwargs)
