"""`inception`: parallel branches concatenated along channels (Szegedy et al., *Going Deeper
with Convolutions*, 2014).

The fixed form is GoogLeNet's module: a 1x1 branch; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5;
3x3 max pool -> 1x1 projection. The 1x1 reductions keep the 3x3 and 5x5 convs cheap. The
general form takes any branches, each a list of nodes reading the module's input.

```yaml
- {id: inception3a, op: inception, b1: 64, b3: [96, 128], b5: [16, 32], pool: 32}
- id: mixed
  op: inception
  branches:
    - [{op: conv, out: 32, k: 1}]
    - [{op: conv, out: 32, k: 1}, {op: conv, out: 48, k: 3}]
```
Sub-node ids: `branch1` ... `branchN` (sequences: in the fixed form `branch1.conv`,
`branch2.reduce` and `branch2.conv`, `branch4.pool` and `branch4.proj`; in the general form the
ids the branch's nodes give), `concat`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from .base import Flag, Composite, generated
from .common import Act, Norm
from .registry import register

Pair = tuple[PositiveInt, PositiveInt]


@register
class Inception(Composite):
    op: Literal["inception"] = "inception"
    b1: NonNegativeInt | None = None
    """Channels of the 1x1 branch (0 leaves the branch out)."""
    b3: Pair | None = None
    """[reduce, out] channels of the 1x1 -> 3x3 branch."""
    b5: Pair | None = None
    """[reduce, out] channels of the 1x1 -> 5x5 branch."""
    pool: NonNegativeInt | None = None
    """Channels of the 1x1 projection after the 3x3 max pool (0: the pool alone, unprojected)."""
    k5: PositiveInt = 5
    """Kernel of the '5x5' branch (torchvision's GoogLeNet uses 3 there, kept for its weights)."""
    pool_ceil: Flag = True
    """Round the branch pool's size up (torchvision); with padding 1 the size is kept either way."""
    norm: Norm | None = None
    """Norm after every conv (GoogLeNet as published has none; torchvision's uses batch norm)."""
    act: Act | None = Act(kind="relu")
    """Activation after every conv."""
    branches: list[list[dict[str, Any]]] | None = Field(None, min_length=2)
    """General form: each branch a list of nodes; instead of b1/b3/b5/pool."""
    family = "composite"
    ranks = None  # the fixed form: [C, H, W]; branches: what they take
    width_fields = ("b1", "b3", "b5", "pool")
    examples = [
        ({"b1": 4, "b3": [3, 5], "b5": [2, 3], "pool": 2}, [(6, 7, 7)]),
        ({"b1": 2, "b3": [2, 3], "b5": [1, 2], "pool": 1, "k5": 3, "norm": "batch"}, [(3, 5, 5)]),
        ({"branches": [[{"op": "conv", "out": 3, "k": 1}], [{"op": "maxpool", "k": 3, "stride": 1, "pad": 1}]]},
         [(2, 6, 6)]),
    ]

    @model_validator(mode="after")
    def _one_form(self):
        fixed = [v for v in (self.b1, self.b3, self.b5, self.pool) if v is not None]
        if self.branches is None and not fixed:
            raise ValueError("inception needs b1/b3/b5/pool widths or a list of branches")
        if self.branches is not None and fixed:
            raise ValueError("give either b1/b3/b5/pool or branches, not both")
        if self.branches is not None:
            ignored = [name for name in ("k5", "pool_ceil", "norm", "act") if name in self.model_fields_set]
            if ignored:
                raise ValueError(f"{', '.join(ignored)} shape(s) the fixed b1/b3/b5/pool form only; with branches, "
                                 "give each branch's nodes their own arguments (or use defaults:)")
        return self

    def _conv(self, node_id: str, out: int, k: int) -> dict[str, Any]:
        node: dict[str, Any] = generated({"id": node_id, "op": "conv", "out": out, "k": k})
        if self.norm is not None:
            node["norm"] = self.norm.model_dump()
        if self.act is not None:
            node["act"] = self.act.model_dump()
        return node

    def _fixed_branches(self) -> list[list[dict[str, Any]]]:
        branches = []
        if self.b1:
            branches.append([self._conv("conv", self.b1, 1)])
        if self.b3:
            branches.append([self._conv("reduce", self.b3[0], 1), self._conv("conv", self.b3[1], 3)])
        if self.b5:
            branches.append([self._conv("reduce", self.b5[0], 1), self._conv("conv", self.b5[1], self.k5)])
        if self.pool is not None:
            pool = [generated({"id": "pool", "op": "maxpool", "k": 3, "stride": 1, "pad": 1, "ceil": self.pool_ceil})]
            branches.append(pool + ([self._conv("proj", self.pool, 1)] if self.pool else []))
        return branches

    def expand(self) -> list[dict[str, Any]]:
        branches = self.branches if self.branches is not None else self._fixed_branches()
        nodes = [generated({"id": f"branch{i}", "op": "sequence", "in": "x", "nodes": list(b)})
                 for i, b in enumerate(branches, start=1)]
        nodes.append(generated({"id": "concat", "op": "concat", "in": [n["id"] for n in nodes]}))
        return nodes
