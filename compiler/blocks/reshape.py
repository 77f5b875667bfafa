"""`reshape`: give the per-sample tensor another shape with the same number of values (the batch
dimension is left alone). One entry may be -1: it takes whatever size makes the count work.

Between a fully connected layer and a conv decoder (DCGAN's generator, Radford et al. 2015,
projects a vector and reshapes it into a 4x4 map), or to split channels into groups for a
channel shuffle (ShuffleNet, Zhang et al. 2017, with `permute`).

```yaml
# fragment: input [64]
- {op: reshape, shape: [4, 4, 4]}        # [64] -> [4, 4, 4]
- {op: reshape, shape: [2, -1]}          # -> [2, 32]
```
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from ..errors import ShapeError
from .base import Block, Shape, fmt
from .registry import register


@register
class Reshape(Block):
    op: Literal["reshape"] = "reshape"
    shape: tuple[int, ...] = Field(min_length=1)
    """The new per-sample shape (no batch dimension); one entry may be -1 (inferred)."""
    family = "reshape"
    ranks = None
    examples = [({"shape": [4, 3, 5]}, [(6, 10)]), ({"shape": [-1]}, [(2, 3, 4)]),
                ({"shape": [2, -1, 4]}, [(16, 2, 2)]), ({"shape": [3, 2, 2]}, [(12,)])]

    @model_validator(mode="after")
    def _entries(self):
        free = [d for d in self.shape if d == -1]
        if len(free) > 1:
            raise ValueError(f"only one entry of shape may be -1 (inferred); {list(self.shape)} has {len(free)}")
        if any(d == 0 or d < -1 for d in self.shape):
            raise ValueError(f"shape entries are positive sizes, or -1 once. Received: {list(self.shape)}")
        return self

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        (shape,) = in_shapes
        total, known = math.prod(shape), math.prod(d for d in self.shape if d != -1)
        if -1 in self.shape:
            if total % known:
                raise ShapeError(f"reshape cannot infer the -1 of {list(self.shape)}: the input {fmt(shape)} has "
                                 f"{total} values, not a multiple of {known}")
            return tuple(total // known if d == -1 else d for d in self.shape)
        if known != total:
            raise ShapeError(f"reshape to {list(self.shape)} needs {known} values per sample; the input {fmt(shape)} "
                             f"has {total}; use -1 for the size to infer")
        return tuple(self.shape)

    def emit(self, em, args):
        """flatten + unflatten: the batch dimension is kept as it is, whatever its size."""
        import torch

        flat = em.call_function(torch.flatten, (args[0], 1), name="flat")
        return em.call_function(torch.unflatten, (flat, 1, tuple(self.shape)))
