"""`permute`: reorder the per-sample axes (the batch dimension stays first).

`dims` lists the input axes in their new order, counting from 0 = the first axis after the
batch: `[1, 2, 0]` turns a feature map [C, H, W] into [H, W, C] (channels last, as a
detection head's per-cell predictions are read), and with `reshape` it makes ShuffleNet's
channel shuffle (Zhang et al. 2017).

```yaml
- {op: permute, dims: [1, 2, 0]}          # [C, H, W] -> [H, W, C]
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, model_validator

from ..errors import ShapeError
from .base import Block, Shape, fmt
from .registry import register


@register
class Permute(Block):
    op: Literal["permute"] = "permute"
    dims: tuple[NonNegativeInt, ...] = Field(min_length=1)
    """The per-sample axes in their new order (0 = the first axis after the batch)."""
    family = "reshape"
    ranks = None
    examples = [({"dims": [1, 2, 0]}, [(2, 3, 4)]), ({"dims": [0, 2, 1]}, [(3, 4, 5)]), ({"dims": [1, 0]}, [(6, 4)])]

    @model_validator(mode="after")
    def _is_permutation(self):
        if sorted(self.dims) != list(range(len(self.dims))):
            raise ValueError(f"dims must list every axis 0..{len(self.dims) - 1} once. Received: {list(self.dims)}")
        return self

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        (shape,) = in_shapes
        if len(shape) != len(self.dims):
            raise ShapeError(f"permute dims {list(self.dims)} name {len(self.dims)} axes; the input {fmt(shape)} has "
                             f"{len(shape)} (the batch axis is not counted)")
        return tuple(shape[d] for d in self.dims)

    def allocates(self, in_shapes: list[Shape]) -> bool:
        return False  # a view with other strides

    def emit(self, em, args):
        import torch

        return em.call_function(torch.permute, (args[0], (0, *(d + 1 for d in self.dims))))
