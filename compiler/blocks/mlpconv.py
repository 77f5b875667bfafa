"""`mlpconv`: Network in Network's micro network (Lin, Chen, Yan 2013): a conv followed by
1x1 convs ("cccp" layers), each with an activation — a small MLP slid over every pixel.
The 1x1 convs mix channels and can cut the number of feature maps cheaply.

```yaml
- {id: mlpconv1, op: mlpconv, out: [192, 160, 96], k: 5}    # conv 5x5 -> cccp 1x1 -> cccp 1x1
- {op: mlpconv, out: [192, 192, 10], k: 3, last_act: false}
```
Sub-node ids: `conv`, `cccp1`, `cccp2`, ...
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt

from .base import Flag, Composite, generated
from .common import Act, Norm
from .registry import register


@register
class MlpConv(Composite):
    op: Literal["mlpconv"] = "mlpconv"
    out: list[PositiveInt] = Field(min_length=1)
    """Channels of the conv, then of each 1x1 conv."""
    k: PositiveInt = 3
    """Kernel of the first conv."""
    stride: PositiveInt = 1
    """Stride of the first conv."""
    pad: NonNegativeInt | Literal["auto", "valid"] = "auto"
    """Padding of the first conv (auto keeps the size at stride 1)."""
    act: Act = Act(kind="relu")
    """Activation after every conv."""
    norm: Norm | None = None
    """Norm after every conv (the paper has none)."""
    last_act: Flag = True
    """Activation after the last 1x1 conv too."""
    family = "composite"
    ranks = (3,)
    width_fields = ("out",)
    examples = [({"out": [6, 5, 4], "k": 5}, [(3, 8, 8)]), ({"out": [4, 3], "stride": 2, "last_act": False}, [(2, 7, 7)])]

    def expand(self) -> list[dict[str, Any]]:
        nodes = []
        for i, width in enumerate(self.out):
            node: dict[str, Any] = {"id": "conv" if i == 0 else f"cccp{i}", "op": "conv", "out": width,
                                    "k": self.k if i == 0 else 1}
            if i == 0:
                node.update(stride=self.stride, pad=self.pad)
            if self.norm is not None:
                node["norm"] = self.norm.model_dump()
            if self.last_act or i < len(self.out) - 1:
                node["act"] = self.act.model_dump()
            nodes.append(node)
        return [generated(n) for n in nodes]
