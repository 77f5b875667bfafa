"""`gap`: global average pooling, one number per channel (Lin et al., *Network In Network*).

Replaces fully connected classifiers: with as many channels as classes, each map becomes
one class score.

```yaml
- {op: gap}                 # [C, H, W] -> [C]
- {op: gap, keepdim: true}  # [C, H, W] -> [C, 1, 1]
```
"""

from __future__ import annotations

from typing import Literal

from .base import Flag, Block, Shape
from .registry import register


@register
class GlobalAvgPool(Block):
    op: Literal["gap"] = "gap"
    keepdim: Flag = False
    """Keep the 1x1 spatial dims ([C, 1, 1]) instead of returning a vector [C]."""
    family = "pool"
    ranks = (3,)
    examples = [({}, [(5, 4, 3)]), ({"keepdim": True}, [(2, 6, 6)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        self.check_rank(in_shapes[0])
        c = in_shapes[0][0]
        return (c, 1, 1) if self.keepdim else (c,)

    def window(self, in_shapes: list[Shape]) -> tuple[int, int]:
        return max(in_shapes[0][1:]), 1  # one window over the whole map

    def emit(self, em, args):
        import torch

        kwargs = {"keepdim": True} if self.keepdim else {}
        return em.call_function(torch.mean, (args[0], (2, 3)), kwargs)
