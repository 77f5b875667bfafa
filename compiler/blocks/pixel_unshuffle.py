"""`pixel_unshuffle`: the inverse of `pixel_shuffle`, [C, H·r, W·r] -> [C·r², H, W].

A downsampling that loses nothing: every pixel of each r x r block becomes a channel (the
space-to-depth of Shi et al. 2016's ESPCN read backwards; YOLOv2's passthrough layer, Redmon
& Farhadi 2016, and the stems of some efficient networks stack neighbouring pixels this way).

```yaml
- {op: pixel_unshuffle, factor: 2}   # [3, 32, 32] -> [12, 16, 16]
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from ..errors import ShapeError
from .base import Block, Shape, fmt
from .registry import register


@register
class PixelUnshuffle(Block):
    op: Literal["pixel_unshuffle"] = "pixel_unshuffle"
    factor: PositiveInt = 2
    """Downscale factor r: the height and width must be divisible by r."""
    family = "reshape"
    ranks = (3,)
    examples = [({}, [(2, 4, 6)]), ({"factor": 3}, [(1, 6, 9)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        (shape,) = in_shapes
        self.check_rank(shape)
        c, h, w = shape
        r = self.factor
        if h % r or w % r:
            raise ShapeError(f"pixel_unshuffle with factor {r} needs a height and width divisible by {r}. "
                             f"Received: input shape {fmt(shape)}; pad or crop the map first")
        return c * r * r, h // r, w // r

    def window(self, in_shapes: list[Shape]) -> tuple[int, int]:
        """An output pixel holds an r x r block of input pixels (as a conv with k = stride = r)."""
        return self.factor, self.factor

    def emit(self, em, args):
        import torch.nn.functional as F

        return em.call_function(F.pixel_unshuffle, (args[0], self.factor))
