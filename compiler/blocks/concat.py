"""`concat`: join inputs along the channel axis (Inception's branches, DenseNet's features),
or along another per-sample axis with `dim`. All other dimensions must agree.

```yaml
- {id: merged, op: concat, in: [branch1, branch2, branch3]}
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt

from ..errors import ShapeError
from .base import Block, Shape, fmt
from .registry import register


@register
class Concat(Block):
    op: Literal["concat"] = "concat"
    dim: NonNegativeInt = 0
    """Per-sample axis to join along: 0 = channels (or features)."""
    family = "merge"
    ranks = None
    examples = [({}, [(3, 4, 4), (5, 4, 4)]), ({}, [(2,), (3,), (4,)]), ({"dim": 1}, [(2, 3, 4), (2, 5, 4)])]
    min_inputs = 2
    names_inputs = True
    max_inputs = None

    def out_shape(self, in_shapes: list[Shape], names: list[str] | None = None) -> Shape:
        names = names or [f"input {i}" for i in range(len(in_shapes))]
        first = in_shapes[0]
        if self.dim >= len(first):
            raise ShapeError(f"concat dim {self.dim} is out of range for a per-sample shape {fmt(first)}")
        for name, shape in zip(names[1:], in_shapes[1:]):
            rest = lambda s: s[: self.dim] + s[self.dim + 1:]  # noqa: E731
            if len(shape) != len(first) or rest(shape) != rest(first):
                gives = ", ".join(f"{n} gives {fmt(s)}" for n, s in zip(names, in_shapes))
                hint = ""
                if len(shape) == len(first) == 3 and self.dim == 0 and shape[1:] != first[1:]:
                    hint = "; the spatial sizes must match, and " + spatial_hint(names[0], first, name, shape)
                raise ShapeError(f"concat needs every dimension but dim {self.dim} to match: {gives}{hint}")
        size = sum(s[self.dim] for s in in_shapes)
        return first[: self.dim] + (size,) + first[self.dim + 1:]

    def emit(self, em, args):
        import torch

        return em.call_function(torch.cat, (list(args), self.dim + 1))


def spatial_hint(a: str, a_shape: Shape, b: str, b_shape: Shape) -> str:
    """How to make two feature maps of different heights and widths meet: upsample the smaller
    (when a whole factor separates them), crop the larger, or fix a deconv's output_padding (when
    they are a pixel or two apart)."""
    (ha, wa), (hb, wb) = a_shape[1:], b_shape[1:]
    if ha >= hb and wa >= wb:
        big, small, big_hw, small_hw = a, b, (ha, wa), (hb, wb)
    elif hb >= ha and wb >= wa:
        big, small, big_hw, small_hw = b, a, (hb, wb), (ha, wa)
    else:  # one is taller, the other wider: only resizing helps
        return (f"the maps are {ha}x{wa} and {hb}x{wb}: resize one to the other's size with "
                f"{{op: interpolate, in: [{b}, {a}]}}")
    text = f"the maps are {big_hw[0]}x{big_hw[1]} ({big}) and {small_hw[0]}x{small_hw[1]} ({small}): "
    factors = {big_hw[0] / small_hw[0], big_hw[1] / small_hw[1]}
    ways = []
    if len(factors) == 1 and (f := factors.pop()).is_integer():
        ways.append(f"upsample {small} with {{op: upsample, in: {small}, scale: {int(f)}}} (or a deconv with stride {int(f)})")
    else:
        ways.append(f"resize {small} with {{op: interpolate, in: [{small}, {big}]}}")
    ways.append(f"crop {big} to {small}'s size with {{op: crop, in: [{big}, {small}]}}")
    gap = (big_hw[0] - small_hw[0], big_hw[1] - small_hw[1])
    if max(gap) <= 2 and max(gap) < min(small_hw):
        pad = str(gap[0]) if gap[0] == gap[1] else f"[{gap[0]}, {gap[1]}]"
        ways.insert(0, f"if {small} is a deconv, output_padding: {pad} (or size: [{big_hw[0]}, {big_hw[1]}]) makes it "
                    f"{big_hw[0]}x{big_hw[1]}")
    return text + "; or ".join(ways)
