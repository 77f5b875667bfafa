"""`pixel_shuffle`: trade channels for resolution, [C·r², H, W] -> [C, H·r, W·r].

Shi et al. 2016 (ESPCN) compute a super-resolved image at low resolution with r² times the
channels and rearrange them into an r-times larger map: an upsampling that is learned (by the
conv before it) yet free of the checkerboard artefacts of a strided transposed conv.
`pixel_unshuffle` is the inverse.

```yaml
- {op: conv, out: 48, k: 3}          # 3 colours x 4 x 4
- {op: pixel_shuffle, factor: 4}     # [3, 4H, 4W]
```
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

from pydantic import PositiveInt

from ..errors import ShapeError
from .base import Block, Shape, fmt
from .registry import register


@register
class PixelShuffle(Block):
    op: Literal["pixel_shuffle"] = "pixel_shuffle"
    factor: PositiveInt = 2
    """Upscale factor r: the channels must be divisible by r²."""
    family = "reshape"
    ranks = (3,)
    examples = [({}, [(8, 3, 4)]), ({"factor": 3}, [(18, 2, 2)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        (shape,) = in_shapes
        self.check_rank(shape)
        c, h, w = shape
        r2 = self.factor ** 2
        if c % r2:
            raise ShapeError(f"pixel_shuffle with factor {self.factor} needs channels divisible by "
                             f"{self.factor}² = {r2}. Received: input shape {fmt(shape)}; give the conv before it "
                             f"out: {max(1, c // r2) * r2} (a multiple of {r2})")
        return c // r2, h * self.factor, w * self.factor

    def window(self, in_shapes: list[Shape]) -> tuple[int, Fraction]:
        """Each output pixel is one input pixel's channel; r outputs per input pixel along an axis,
        so neighbouring outputs are 1/r input pixels apart (the jump divides by r)."""
        return 1, Fraction(1, self.factor)

    def emit(self, em, args):
        import torch.nn.functional as F

        return em.call_function(F.pixel_shuffle, (args[0], self.factor))
