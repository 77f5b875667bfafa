"""`add`: element-wise sum of two or more inputs of the same shape (a residual join).

```yaml
- {id: sum, op: add, in: [conv2, shortcut]}
```
"""

from __future__ import annotations

import operator
from typing import Literal

from .base import Block, Shape
from ..errors import ShapeError
from .merge import broadcast, mismatch
from .registry import register


@register
class Add(Block):
    op: Literal["add"] = "add"
    family = "merge"
    examples = [({}, [(3, 4, 4), (3, 4, 4)]), ({}, [(5,), (5,), (5,)])]
    min_inputs = 2
    names_inputs = True
    max_inputs = None

    def out_shape(self, in_shapes: list[Shape], names: list[str] | None = None) -> Shape:
        out = broadcast("add", in_shapes, names)
        if any(s != out for s in in_shapes):
            raise ShapeError(mismatch("add", in_shapes, names or [f"input {i}" for i in range(len(in_shapes))]))
        return out

    def emit(self, em, args):
        value = args[0]
        for i, other in enumerate(args[1:], start=1):
            value = em.call_function(operator.add, (value, other), name=None if i == len(args) - 1 else f"sum{i}")
        return value
