"""`yolo_head`: YOLO v1's output tensor, S x S grid cells that each predict B boxes (x, y, w, h,
confidence) and C class probabilities (Redmon et al., *You Only Look Once*, 2016).

The head owns no weights: the layer before it predicts the S*S*(5B+C) numbers (the paper's last
fully connected layer, 1470 = 7*7*30 for S=7, B=2, C=20, or a 1x1 conv giving a [5B+C, S, S]
map), and `yolo_head` lays them out as the paper's [S, S, 5B+C] tensor that the loss and the
decoder (compiler.detection.yolo) read. Per cell the last axis is
``[x1, y1, w1, h1, c1, ..., xB, yB, wB, hB, cB, p1 ... pC]``: x, y are the box centre relative
to the cell, w, h the square roots of the size relative to the image, c the confidence.

```yaml
- {id: fc2, op: linear, out: 1470}
- {id: detect, op: yolo_head, grid: 7, boxes: 2, classes: 20}   # -> [7, 7, 30]
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..errors import ShapeError
from .base import Block, Shape, fmt
from .registry import register


@register
class YoloHead(Block):
    op: Literal["yolo_head"] = "yolo_head"
    family = "reshape"
    ranks = (1, 3)
    examples = [({"grid": 7, "boxes": 2, "classes": 20}, [(1470,)]),
                ({"grid": 4, "boxes": 1, "classes": 6}, [(11, 4, 4)])]

    grid: int = Field(7, ge=1, le=1024)
    """S: the image is divided into S x S cells; each is responsible for objects centred in it."""
    boxes: int = Field(2, ge=1, le=64)
    """B: boxes each cell predicts (x, y, w, h and a confidence each)."""
    classes: int = Field(20, ge=1, le=100_000)
    """C: class probabilities per cell (shared by its B boxes)."""

    @property
    def depth(self) -> int:
        """Numbers per cell: 5 per box plus the class scores."""
        return 5 * self.boxes + self.classes

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        s, k = self.grid, self.depth
        shape = in_shapes[0]
        self.check_rank(shape, f"here {s * s * k} features or a [{k}, {s}, {s}] map")
        if len(shape) == 1:
            if shape[0] != s * s * k:
                raise ShapeError(f"yolo_head needs {s}*{s}*(5*{self.boxes}+{self.classes}) = {s * s * k} features "
                                 f"(grid {s}, boxes {self.boxes}, classes {self.classes}); the input has {shape[0]}: "
                                 f"make the layer before it `out: {s * s * k}`")
            return (s, s, k)
        if shape != (k, s, s):  # a [C, H, W] map (check_rank allows ranks 1 and 3 only)
            raise ShapeError(f"yolo_head needs a map of {fmt((k, s, s))} (5*{self.boxes}+{self.classes} channels "
                             f"on the {s}x{s} grid); the input is {fmt(shape)}"
                             + (f": make the conv before it `out: {k}`" if shape[1:] == (s, s) else
                                f": the grid is {shape[1]}x{shape[2]}, so set `grid: {shape[1]}` or resize the map"
                                if shape[1] == shape[2] else ""))
        return (s, s, k)

    def emit(self, em, args):
        return em.call_function(yolo_layout, (args[0], self.grid, self.depth))


def yolo_layout(x, grid: int, depth: int):
    """[N, S*S*K] (the paper's FC output, cell-major) or [N, K, S, S] (a conv map) -> [N, S, S, K]."""
    if x.dim() == 4:
        return x.permute(0, 2, 3, 1)
    return x.reshape(x.shape[0], grid, grid, depth)
