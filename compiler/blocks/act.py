"""`act`: an activation function as its own node (stateless: no weights).

```yaml
- {op: act, kind: relu}
- {op: act, kind: leaky_relu, slope: 0.1}
- {op: act, kind: softmax}            # over channels / classes
```
Takes the same options as the `act:` of `conv` and `linear`.
"""

from __future__ import annotations

from typing import Literal

from .base import Block, Shape
from .common import Act
from .registry import register


@register
class ActOp(Block, Act):
    op: Literal["act"] = "act"
    family = "act"
    ranks = None
    examples = [({"kind": k}, [(3, 4, 4)]) for k in
                ("relu", "relu6", "elu", "gelu", "silu", "sigmoid", "tanh", "softmax", "hardswish", "mish", "identity")
                ] + [({"kind": "leaky_relu", "slope": 0.1}, [(6,)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        return in_shapes[0]

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        return 0, 0

    def build(self, in_shapes: list[Shape]):
        return None if self.function() or self.kind == "identity" else self.module()

    def emit(self, em, args):
        if self.kind == "identity":
            return args[0]
        fn, kwargs = self.function()
        return em.call_function(fn, (args[0],), kwargs)
