"""`add`: element-wise sum of two or more inputs of the same shape (a residual join).

```yaml
- {id: sum, op: add, in: [conv2, shortcut]}
- {id: scaled, op: add, in: [x, branch], weights: [1, 0.2]}   # x + 0.2 * branch (Inception-ResNet)
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
    weights: tuple[float, ...] | None = None
    """A multiplier per input (residual scaling: [1, 0.2] gives x + 0.2 * branch)."""
    family = "merge"
    ranks = None
    examples = [({}, [(3, 4, 4), (3, 4, 4)]), ({}, [(5,), (5,), (5,)]), ({"weights": [1, 0.2]}, [(2, 3, 3), (2, 3, 3)])]
    min_inputs = 2
    names_inputs = True
    max_inputs = None

    def out_shape(self, in_shapes: list[Shape], names: list[str] | None = None) -> Shape:
        if self.weights is not None and len(self.weights) != len(in_shapes):
            raise ShapeError(f"add has {len(in_shapes)} inputs but {len(self.weights)} weights")
        out = broadcast("add", in_shapes, names)
        if any(s != out for s in in_shapes):
            raise ShapeError(mismatch("add", in_shapes, names or [f"input {i}" for i in range(len(in_shapes))]))
        return out

    def emit(self, em, args):
        terms = list(args)
        for i, w in enumerate(self.weights or []):
            if w != 1:
                terms[i] = em.call_function(operator.mul, (terms[i], w), name=f"scaled{i}")
        value = terms[0]
        for i, other in enumerate(terms[1:], start=1):
            value = em.call_function(operator.add, (value, other), name=None if i == len(terms) - 1 else f"sum{i}")
        return value
