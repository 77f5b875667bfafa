"""`se`: squeeze-and-excitation (Hu, Shen, Sun, *Squeeze-and-Excitation Networks*, 2017).

Global average pooling squeezes each channel to one number; a bottleneck of two 1x1 convs
(reduction r) and a sigmoid turn them into per-channel gates that rescale the input. Adds
about 2C^2/r weights per block for a consistent gain (SE-ResNet-50).

```yaml
- {op: se}                                 # reduction 16
- {op: se, reduction: 8, divisor: 8}       # squeeze width rounded to a multiple of 8 (timm)
- {op: se, channels: 32, gate: hardsigmoid}
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from ..errors import ShapeError
from ..expr import round_half_away
from .base import Block, Shape, fmt
from .common import Act
from .registry import register


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round to the nearest multiple of `divisor` (never below it), as timm and torchvision do:
    ties away from zero (36 to a multiple of 8 is 40), the rule of `round()` in expressions."""
    min_value = min_value or divisor
    return max(min_value, round_half_away(value / divisor) * divisor)


@register
class SqueezeExcite(Block):
    op: Literal["se"] = "se"
    reduction: float = Field(16, gt=0)
    """The squeeze width is channels / reduction."""
    channels: PositiveInt | None = None
    """The squeeze width itself (overrides reduction)."""
    divisor: PositiveInt = 1
    """Round the squeeze width to a multiple of this (timm uses 8)."""
    act: Act = Act(kind="relu")
    """Activation between the two 1x1 convs."""
    gate: Act = Act(kind="sigmoid")
    """Activation of the gates (sigmoid; hardswish-style nets use hardsigmoid-like gates)."""
    family = "attention"
    ranks = (3,)
    examples = [({}, [(32, 4, 4)]), ({"reduction": 4, "divisor": 8}, [(40, 3, 3)]),
                ({"channels": 3, "act": "silu", "gate": "tanh"}, [(6, 5, 5)])]

    def hidden(self, channels: int) -> int:
        if self.channels is not None:
            return self.channels
        return make_divisible(channels / self.reduction, self.divisor)

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        (shape,) = in_shapes
        self.check_rank(shape)
        if self.hidden(shape[0]) < 1:
            raise ShapeError(f"se squeezes {shape[0]} channels to nothing. Received: input {fmt(shape)}, "
                             f"reduction={self.reduction}")
        return shape

    def macs(self, in_shapes: list[Shape], out_shape: Shape) -> int:
        c = in_shapes[0][0]
        return 2 * c * self.hidden(c)

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        c = in_shapes[0][0]
        h = self.hidden(c)
        return 2 * c * h + h + c, 0

    def build(self, in_shapes: list[Shape]):
        c = in_shapes[0][0]
        from ..modules import SqueezeExcite as Module

        return Module(c, self.hidden(c), self.act.module(), self.gate.module())

    def emit(self, em, args):
        import operator

        import torch

        x = args[0]
        squeezed = em.call_function(torch.mean, (x, (2, 3)), {"keepdim": True}, name="squeeze")
        value = em.call_module([squeezed], child="fc1", name="fc1")
        value = em.call_module([value], child="act", name="act")
        value = em.call_module([value], child="fc2", name="fc2")
        gates = em.call_module([value], child="gate", name="gate")
        return em.call_function(operator.mul, (x, gates))
