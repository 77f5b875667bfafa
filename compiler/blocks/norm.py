"""`norm`: batch, layer, instance or group normalisation as its own node.

Batch norm (Ioffe & Szegedy 2015) standardises each channel over the batch; layer, instance
and group norm (Ba et al. 2016; Ulyanov et al. 2016; Wu & He 2018) use statistics of one
sample, so they do not depend on the batch size. On a [C, H, W] map, `layer` normalises over
C, H and W with a per-channel scale and shift.

```yaml
- {op: norm, kind: batch}
- {op: norm, kind: group, groups: 8}
```
"""

from __future__ import annotations

from typing import Literal

from .base import Block, Shape
from .common import Norm
from .registry import register


@register
class NormOp(Block, Norm):
    op: Literal["norm"] = "norm"
    family = "norm"
    ranks = (1, 2, 3)
    examples = [({"kind": "batch"}, [(4, 5, 5)]), ({"kind": "batch"}, [(6,)]), ({"kind": "layer"}, [(4, 3, 3)]),
                ({"kind": "layer"}, [(8,)]), ({"kind": "instance"}, [(3, 4, 4)]), ({"kind": "group", "groups": 2}, [(4, 3, 3)]),
                ({"kind": "batch"}, [(4, 7)]), ({"kind": "layer"}, [(16, 5)]), ({"kind": "group", "groups": 3}, [(6, 2)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        self.check_rank(in_shapes[0])
        self.check(in_shapes[0])
        return in_shapes[0]

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        return Norm.param_count(self, in_shapes[0])

    def build(self, in_shapes: list[Shape]):
        return self.module(in_shapes[0])
