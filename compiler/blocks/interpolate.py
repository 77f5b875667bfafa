"""`interpolate`: resize a feature map to the height and width of another node's output.

Two inputs: the map to resize and a reference read for its shape only. Where `upsample` needs
the factor written down, `interpolate` follows the reference, so a decoder stays aligned with
its skip connection whatever the input size (FPN's top-down pathway, Lin et al. 2017, resizes
each coarser level to the next lateral map this way).

```yaml
- {id: up, op: interpolate, in: [coarse, skip]}                   # nearest, to skip's H x W
- {id: up2, op: interpolate, in: [coarse, skip], mode: bilinear}
```
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

from pydantic import model_validator

from .base import Block, Flag, Shape, expect_rank
from .registry import register
from .upsample import Mode, check_align, resize_kwargs, resize_window


@register
class Interpolate(Block):
    op: Literal["interpolate"] = "interpolate"
    mode: Mode = "nearest"
    """Resampling: nearest (copies pixels), bilinear or bicubic (interpolate neighbours)."""
    align_corners: Flag | None = None
    """bilinear/bicubic only: map the corner pixels of input and output onto each other; null means
    false, PyTorch's default."""
    family = "pool"
    ranks = (3,)
    min_inputs = 2
    max_inputs = 2
    shape_only_inputs = (1,)
    examples = [({}, [(3, 4, 5), (7, 8, 10)]), ({"mode": "bilinear"}, [(2, 5, 5), (1, 16, 11)]),
                ({"mode": "bicubic", "align_corners": True}, [(2, 9, 9), (4, 4, 4)])]

    @model_validator(mode="after")
    def _align(self):
        check_align(self.mode, self.align_corners)
        return self

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        x, ref = in_shapes
        self.check_rank(x, "it resizes the height and width of a feature map")
        expect_rank("interpolate", ref, 3, "its second input gives the height and width to resize to")
        return x[0], ref[1], ref[2]

    def window(self, in_shapes: list[Shape]) -> tuple[int, Fraction]:
        """As `upsample`'s, with the steps of this resize: the map's height and width over the
        reference's (1/2 when the reference is twice as large)."""
        (_, h, w), (_, rh, rw) = in_shapes
        return resize_window(self.mode, (Fraction(h, rh), Fraction(w, rw)))

    def emit(self, em, args):
        """`F.interpolate(x, size=ref.shape[-2:])`: the size is read from the reference tensor, so
        the generated code says where it comes from."""
        import operator

        import torch.nn.functional as F

        shape = em.call_function(getattr, (args[1], "shape"), name="shape")
        size = em.call_function(operator.getitem, (shape, slice(-2, None)), name="size")
        return em.call_function(F.interpolate, (args[0],), {"size": size, **resize_kwargs(self.mode, self.align_corners)})
