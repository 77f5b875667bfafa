"""`flatten`: a feature map [C, H, W] becomes one vector [C*H*W] (per sample; the batch stays).

```yaml
- {op: flatten}
```
"""

from __future__ import annotations

import math
from typing import Literal

from .base import Block, Shape
from .registry import register


@register
class Flatten(Block):
    op: Literal["flatten"] = "flatten"
    family = "reshape"
    ranks = None
    examples = [({}, [(3, 4, 5)]), ({}, [(6,)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        return (math.prod(in_shapes[0]),)

    def emit(self, em, args):
        import torch

        return em.call_function(torch.flatten, (args[0], 1))
