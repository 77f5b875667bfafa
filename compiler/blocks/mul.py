"""`mul`: element-wise product, broadcasting 1-sized dims (a channel gate [C, 1, 1] times a
map [C, H, W], as in squeeze-and-excitation).

```yaml
- {id: gated, op: mul, in: [features, gate]}
```
"""

from __future__ import annotations

import operator
from typing import Literal

from .base import Block, Shape
from .merge import broadcast
from .registry import register


@register
class Mul(Block):
    op: Literal["mul"] = "mul"
    family = "merge"
    ranks = None
    examples = [({}, [(3, 4, 4), (3, 1, 1)]), ({}, [(5,), (5,)])]
    min_inputs = 2
    names_inputs = True
    max_inputs = None

    def out_shape(self, in_shapes: list[Shape], names: list[str] | None = None) -> Shape:
        return broadcast("mul", in_shapes, names)

    def emit(self, em, args):
        value = args[0]
        for i, other in enumerate(args[1:], start=1):
            value = em.call_function(operator.mul, (value, other), name=None if i == len(args) - 1 else f"prod{i}")
        return value
