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
                if len(shape) == len(first) == 3 and self.dim == 0:
                    hint = ("; the spatial sizes must match: pool or stride the larger map "
                            "(or upsample / crop to match)")
                raise ShapeError(f"concat needs every dimension but dim {self.dim} to match: {gives}{hint}")
        size = sum(s[self.dim] for s in in_shapes)
        return first[: self.dim] + (size,) + first[self.dim + 1:]

    def emit(self, em, args):
        import torch

        return em.call_function(torch.cat, (list(args), self.dim + 1))
