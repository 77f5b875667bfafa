"""`slice`: a contiguous range of channels (or of another per-sample axis) of one input.

The inverse of `concat`: where a network carries several paths in one tensor, a slice takes
one of them back out. Dual Path Networks (Chen et al., *Dual Path Networks*, 2017) carry the
residual path and the densely connected path as one concatenated tensor and split it with a
slice in every block (see `dualpath`); channel-split blocks (ShuffleNet v2, Ma et al. 2018)
do the same. The result is a view (no copy, no weights); ranges follow Python's slicing, a
negative index counts from the end, but a range that falls outside the axis or is empty is
an error rather than silently clamped.

```yaml
- {id: residual, op: slice, end: 256}            # channels [0, 256)
- {id: dense, op: slice, in: features, start: 256}  # channels [256, C)
- {op: slice, start: -32}                        # the last 32 channels
- {op: slice, dim: 1, start: 2, end: 6}          # rows 2..5 of a [C, H, W] map
```
"""

from __future__ import annotations

import operator
from typing import Literal

from pydantic import NonNegativeInt, model_validator

from ..errors import ShapeError
from .base import Block, Shape, fmt
from .registry import register


@register
class Slice(Block):
    op: Literal["slice"] = "slice"
    start: int = 0
    """First index taken along `dim` (negative counts from the end)."""
    end: int | None = None
    """One past the last index taken; null takes everything from `start` on (negative counts
    from the end)."""
    dim: NonNegativeInt = 0
    """Per-sample axis to slice: 0 = channels (or features)."""
    family = "reshape"
    ranks = None
    examples = [({"end": 3}, [(5, 4, 4)]), ({"start": 3}, [(5, 4, 4)]), ({"start": -4, "end": -1}, [(6,)]),
                ({"dim": 1, "start": 1, "end": 3}, [(2, 5, 4)])]

    @model_validator(mode="after")
    def _ordered(self):
        if self.end is not None and (self.start >= 0) == (self.end >= 0) and self.end <= self.start:
            raise ValueError(f"slice end ({self.end}) must come after start ({self.start})")
        return self

    def bounds(self, size: int) -> tuple[int, int]:
        """The absolute [start, end) range for an axis of `size`, or a ShapeError."""
        for name, value in (("start", self.start), ("end", self.end)):
            if value is not None and not -size <= value <= size:
                raise ShapeError(f"slice {name} {value} is outside an axis of {size}")
        start = self.start + size if self.start < 0 else self.start
        end = size if self.end is None else self.end + size if self.end < 0 else self.end
        if end <= start:
            raise ShapeError(f"slice [{self.start}:{'' if self.end is None else self.end}] of an axis of {size} "
                             "is empty")
        return start, end

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        (shape,) = in_shapes
        if self.dim >= len(shape):
            raise ShapeError(f"slice dim {self.dim} is out of range for a per-sample shape {fmt(shape)}")
        try:
            start, end = self.bounds(shape[self.dim])
        except ShapeError as exc:
            raise ShapeError(f"{exc}. Received: input {fmt(shape)}, dim={self.dim}") from None
        return shape[: self.dim] + (end - start,) + shape[self.dim + 1:]

    def emit(self, em, args):
        index = (slice(None),) * (self.dim + 1) + (slice(self.start, self.end),)
        return em.call_function(operator.getitem, (args[0], index))

    def allocates(self, in_shapes: list[Shape]) -> bool:
        return False
