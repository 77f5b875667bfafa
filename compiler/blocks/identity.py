"""`identity`: passes its input through unchanged (a named junction, or a placeholder).

```yaml
- {id: features, op: identity}
```
"""

from __future__ import annotations

from typing import Literal

from .base import Block, Shape
from .registry import register


@register
class Identity(Block):
    op: Literal["identity"] = "identity"
    family = "reshape"
    ranks = None
    examples = [({}, [(3, 2, 2)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        return in_shapes[0]

    def emit(self, em, args):
        return args[0]

    def allocates(self, in_shapes: list[Shape]) -> bool:
        return False
