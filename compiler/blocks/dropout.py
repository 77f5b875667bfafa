"""`dropout`: zero a random fraction `p` of activations while training (Srivastava et al. 2014).

```yaml
- {op: dropout, p: 0.5}
- {op: dropout, p: 0.1, spatial: true}     # drop whole channels of a feature map
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..errors import ShapeError
from .base import Flag, Block, Shape, fmt
from .registry import register


@register
class Dropout(Block):
    op: Literal["dropout"] = "dropout"
    p: float = Field(0.5, ge=0, lt=1)
    """Probability of zeroing each activation (or channel)."""
    spatial: Flag = False
    """Drop whole channels of a [C, H, W] map (Dropout2d) instead of single values."""
    family = "regularizer"
    ranks = None
    examples = [({"p": 0.3}, [(5,)]), ({"p": 0.2, "spatial": True}, [(4, 3, 3)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        if self.spatial and len(in_shapes[0]) != 3:
            raise ShapeError(f"spatial dropout needs a feature map [C, H, W]. Received: {fmt(in_shapes[0])}")
        return in_shapes[0]

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        return 0, 0

    def build(self, in_shapes: list[Shape]):
        from torch import nn

        return nn.Dropout2d(self.p) if self.spatial else nn.Dropout(self.p)
