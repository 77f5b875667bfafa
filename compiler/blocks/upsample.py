"""`upsample`: grow a feature map by a scale factor or to a fixed size (nearest or bilinear).

The decoder half of an encoder-decoder: U-Net (Ronneberger et al. 2015) and FPN (Lin et al.
2017) upsample coarse, semantically strong maps back to the resolution of the skip
connections they are joined with. No weights: `F.interpolate` in the generated code.

```yaml
- {op: upsample, scale: 2}                                   # nearest, 16x16 -> 32x32
- {op: upsample, scale: 2, mode: bilinear, align_corners: false}
- {op: upsample, size: [56, 56], mode: bilinear}
```
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal

from pydantic import PositiveFloat, PositiveInt, model_validator

from ..errors import ShapeError
from .base import Block, Flag, Shape, fmt
from .registry import register

Mode = Literal["nearest", "bilinear", "bicubic"]


def resize_kwargs(mode: str, align_corners: bool | None) -> dict:
    """The `F.interpolate` options shared by `upsample` and `interpolate`."""
    kwargs: dict = {"mode": mode}
    if mode != "nearest":
        kwargs["align_corners"] = bool(align_corners)
    return kwargs


TAPS = {"nearest": 1, "bilinear": 2, "bicubic": 4}
"""Input pixels per axis that one output pixel of a resize reads (its receptive-field extent)."""


def resize_window(mode: str, steps) -> tuple[int, Fraction]:
    """(extent, stride) of a resize for receptive fields: the mode's taps, and the input pixels
    between neighbouring outputs, `steps` per axis (1/scale; in/out for a given size): 1/2 after
    an upsample by 2, so the jump of a decoder shrinks back as its maps grow. The larger axis
    step is kept, as conv keeps its larger stride."""
    return TAPS[mode], max(Fraction(s).limit_denominator(10**6) for s in steps)


def check_align(mode: str, align_corners: bool | None) -> None:
    if align_corners is not None and mode == "nearest":
        raise ValueError("align_corners applies to bilinear and bicubic resizing only (nearest has no "
                         "corners to align): remove it or use mode: bilinear")


@register
class Upsample(Block):
    op: Literal["upsample"] = "upsample"
    scale: PositiveFloat | tuple[PositiveFloat, PositiveFloat] | None = None
    """Factor for height and width (one number or [h, w]); the new size is floor(size * scale)."""
    size: tuple[PositiveInt, PositiveInt] | None = None
    """Target [height, width] instead of a scale (give one of the two)."""
    mode: Mode = "nearest"
    """Resampling: nearest (copies pixels), bilinear or bicubic (interpolate neighbours)."""
    align_corners: Flag | None = None
    """bilinear/bicubic only: map the corner pixels of input and output onto each other (the
    pre-2018 PyTorch default); null means false, PyTorch's current default."""
    family = "pool"
    ranks = (3,)
    examples = [({"scale": 2}, [(3, 5, 6)]), ({"scale": [2, 3], "mode": "bilinear"}, [(2, 4, 4)]),
                ({"size": [9, 7], "mode": "bilinear", "align_corners": True}, [(2, 4, 5)]),
                ({"scale": 1.5, "mode": "bicubic"}, [(1, 6, 6)])]

    @model_validator(mode="after")
    def _one_target(self):
        if (self.scale is None) == (self.size is None):
            raise ValueError("upsample takes either scale (e.g. scale: 2) or size (e.g. size: [64, 64]), "
                             "not both and not neither")
        check_align(self.mode, self.align_corners)
        return self

    def _scales(self) -> tuple[float, float]:
        s = self.scale
        return (float(s[0]), float(s[1])) if isinstance(s, tuple) else (float(s), float(s))

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        (shape,) = in_shapes
        self.check_rank(shape, "upsampling resizes the height and width of a feature map")
        c, h, w = shape
        if self.size is not None:
            return c, self.size[0], self.size[1]
        sh, sw = self._scales()
        oh, ow = math.floor(h * sh), math.floor(w * sw)
        if oh < 1 or ow < 1:
            raise ShapeError(f"upsample scale {self.scale} leaves no pixel of the input {fmt(shape)}")
        return c, oh, ow

    def window(self, in_shapes: list[Shape]) -> tuple[int, Fraction]:
        """One output pixel reads 1 (nearest), 2 (bilinear) or 4 (bicubic) input pixels per axis;
        neighbouring outputs are 1/scale input pixels apart (h / size for a given size)."""
        _, h, w = in_shapes[0]
        steps = (Fraction(h, self.size[0]), Fraction(w, self.size[1])) if self.size is not None else \
            tuple(1 / Fraction(s).limit_denominator(10**6) for s in self._scales())
        return resize_window(self.mode, steps)

    def emit(self, em, args):
        import torch.nn.functional as F

        kwargs = resize_kwargs(self.mode, self.align_corners)
        if self.size is not None:
            kwargs["size"] = tuple(self.size)
        else:
            sh, sw = self._scales()
            kwargs["scale_factor"] = (sh, sw)
        return em.call_function(F.interpolate, (args[0],), kwargs)


