"""`time_pool`: pool a sequence [T, F] over time into one vector [F] (the mean or the maximum
of each feature over the steps), a classification head's summary of a recurrent layer's
`returns: all` output, as gap is for a feature map.

Max over time is the pooling of Collobert et al., *Natural Language Processing (Almost) from
Scratch*, 2011; the mean weighs every step alike, where `returns: last` trusts the final
state to have kept what matters.

```yaml
# fragment: input [32, 96]
- {op: gru, hidden: 64}                  # [32, 96] -> [32, 64]
- {op: time_pool, mode: mean}            # -> [64]
```
"""

from __future__ import annotations

from typing import Literal

from .base import Block, Shape
from .registry import register


@register
class TimePool(Block):
    op: Literal["time_pool"] = "time_pool"
    mode: Literal["mean", "max"] = "mean"
    """mean or max of each feature over the time steps."""
    family = "pool"
    ranks = (2,)
    sequence_input = True
    examples = [({}, [(5, 3)]), ({"mode": "max"}, [(4, 6)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        self.check_rank(in_shapes[0], "time_pool reads a sequence [T, F], e.g. an lstm with returns: all")
        return (in_shapes[0][1],)

    def emit(self, em, args):
        import torch

        fn = torch.mean if self.mode == "mean" else torch.amax
        return em.call_function(fn, (args[0], 1))
