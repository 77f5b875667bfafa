"""`crop`: cut a feature map down to the height and width of another node's output.

Two inputs: the map to crop and a reference read for its shape only. The original U-Net
(Ronneberger, Fischer & Brox 2015) used unpadded convs, so the encoder's maps were larger
than the decoder's they were concatenated with: each skip connection was center-cropped to
the decoder's size first. `align: top-left` keeps the first rows and columns instead.

```yaml
- {id: skip, op: crop, in: [enc1, up1]}                  # enc1's center, at up1's H x W
- {id: merged, op: concat, in: [skip, up1]}
- {id: corner, op: crop, in: [enc1, up1], align: top-left}
```
"""

from __future__ import annotations

from typing import Literal

from ..errors import ShapeError
from .base import Block, Shape, expect_rank, fmt
from .registry import register


@register
class Crop(Block):
    op: Literal["crop"] = "crop"
    align: Literal["center", "top-left"] = "center"
    """Which part is kept: the center (an odd surplus leaves the extra row/column at the bottom/right)
    or the top-left corner."""
    family = "reshape"
    ranks = (3,)
    min_inputs = 2
    max_inputs = 2
    shape_only_inputs = (1,)
    names_inputs = True
    examples = [({}, [(3, 8, 8), (5, 4, 4)]), ({"align": "top-left"}, [(2, 7, 9), (1, 5, 4)]),
                ({}, [(2, 9, 6), (3, 4, 6)])]

    def box(self, in_shapes: list[Shape], names: list[str] | None = None) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the part kept."""
        x, ref = in_shapes
        self.check_rank(x, "it crops the height and width of a feature map")
        expect_rank("crop", ref, 3, "its second input gives the height and width to crop to")
        (h, w), (rh, rw) = x[1:], ref[1:]
        if rh > h or rw > w:
            a, b = names or ("the input", "the reference")
            raise ShapeError(f"crop cannot grow a map: {a} gives {fmt(x)}, {b} gives {fmt(ref)} "
                             f"({rh}x{rw} is larger than {h}x{w} along an axis); crop {b} to {a} instead, or "
                             f"use {{op: interpolate, in: [{a}, {b}]}} or {{op: pad}} to grow it")
        if self.align == "top-left":
            return 0, 0, rh, rw
        return (h - rh) // 2, (w - rw) // 2, rh, rw

    def out_shape(self, in_shapes: list[Shape], names: list[str] | None = None) -> Shape:
        _, _, h, w = self.box(in_shapes, names)
        return in_shapes[0][0], h, w

    def allocates(self, in_shapes: list[Shape]) -> bool:
        return False  # a view of its input

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        return 0, 0

    def build(self, in_shapes: list[Shape]):
        from .spatial_modules import Crop as Module

        return Module(*self.box(in_shapes))

    def emit(self, em, args):
        return em.call_module(args[:1])
