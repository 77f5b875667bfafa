"""`pad`: add rows and columns around a feature map: zeros (or a constant), a mirror image of
the border (reflect), copies of the border pixels (replicate) or the opposite edge (circular).

Padding is how a network keeps or fixes spatial sizes outside its convs: before a concat whose
inputs differ by a pixel (U-Net implementations pad the upsampled map to the skip's size),
before a conv with `pad: valid` when the border should be mirrored rather than black (the
reflection padding of Johnson et al. 2016's style-transfer network and of CycleGAN).

```yaml
- {op: pad, pad: 1}                                 # one zero row/column on every side
- {op: pad, pad: [0, 1, 0, 1]}                      # [top, bottom, left, right]: bottom and right only
- {op: pad, pad: 3, mode: reflect}
- {op: pad, pad: [2, 1], mode: constant, value: -1}   # [rows, columns] on both sides
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt, model_validator

from ..errors import ShapeError
from .base import Block, Shape, fmt
from .registry import register


@register
class Pad(Block):
    op: Literal["pad"] = "pad"
    pad: (NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt]
          | tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt])
    """Pixels added: one number for every side, [rows, columns] (top and bottom, left and right), or
    [top, bottom, left, right]."""
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant"
    """constant (`value`), reflect (mirror without repeating the border), replicate (repeat the border
    pixel) or circular (wrap around)."""
    value: float = 0.0
    """The fill of `constant` padding."""
    family = "reshape"
    ranks = (3,)
    examples = [({"pad": 1}, [(2, 4, 5)]), ({"pad": [0, 1, 2, 3]}, [(3, 4, 4)]),
                ({"pad": [2, 1], "mode": "reflect"}, [(2, 5, 5)]), ({"pad": 2, "mode": "replicate"}, [(1, 3, 3)]),
                ({"pad": [1, 0, 0, 2], "mode": "circular"}, [(2, 4, 4)]), ({"pad": 1, "value": -2.5}, [(1, 2, 2)])]

    @model_validator(mode="after")
    def _value_only_constant(self):
        if self.value != 0 and self.mode != "constant":
            raise ValueError(f"value is the fill of constant padding; mode {self.mode} takes its pixels from "
                             "the map: remove value or use mode: constant")
        return self

    def sides(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right)."""
        p = self.pad
        if isinstance(p, int):
            return p, p, p, p
        if len(p) == 2:
            return p[0], p[0], p[1], p[1]
        return tuple(p)

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        (shape,) = in_shapes
        self.check_rank(shape, "it pads the height and width of a feature map")
        c, h, w = shape
        top, bottom, left, right = self.sides()
        if self.mode in ("reflect", "circular"):
            limit = (h - 1, w - 1) if self.mode == "reflect" else (h, w)
            if max(top, bottom) > limit[0] or max(left, right) > limit[1]:
                need = "less than the size" if self.mode == "reflect" else "at most the size"
                raise ShapeError(f"{self.mode} padding must be {need} along each axis: input {fmt(shape)}, "
                                 f"pad [top {top}, bottom {bottom}, left {left}, right {right}]; pad less, or "
                                 "use mode: replicate")
        return c, h + top + bottom, w + left + right

    def emit(self, em, args):
        import torch.nn.functional as F

        top, bottom, left, right = self.sides()
        kwargs = {"mode": self.mode}
        if self.mode == "constant" and self.value != 0:
            kwargs["value"] = self.value
        return em.call_function(F.pad, (args[0], (left, right, top, bottom)), kwargs)
