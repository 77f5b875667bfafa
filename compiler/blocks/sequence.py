"""`sequence`: a list of nodes used as one node (a branch, a stem, a classifier head).

Its nodes get hierarchical ids (`head.fc1`) and read the sequence's input by default.

```yaml
- id: head
  op: sequence
  nodes:
    - {op: gap}
    - {id: fc, op: linear, out: 10}
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import Composite
from .registry import register


@register
class Sequence(Composite):
    op: Literal["sequence"] = "sequence"
    nodes: list[dict[str, Any]] = Field(min_length=1)
    """The nodes, as under a spec's `nodes:`; the first reads the input, as `x`."""
    ranks = None
    examples = [({"nodes": [{"op": "conv", "out": 4}, {"id": "pool", "op": "maxpool"}]}, [(3, 8, 8)])]

    def expand(self) -> list[dict[str, Any]]:
        return [dict(n) for n in self.nodes]
