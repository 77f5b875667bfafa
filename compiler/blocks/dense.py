"""`dense` and `dense_layer`: DenseNet's block (Huang et al., *Densely Connected Convolutional
Networks*, 2016). Each layer reads the concatenation of the block's input and every earlier
layer's output and adds `growth` (k) new channels; a 1x1 bottleneck of `bottleneck` * k
channels before each 3x3 conv (DenseNet-B) keeps it cheap. A block of L layers turns C input
channels into C + L*k.

```yaml
- {id: denseblock1, op: dense, layers: 6, growth: 32}         # DenseNet-121's first block
- {op: dense, layers: 16, growth: 12, bottleneck: 4, dropout: 0.2}
- {op: dense_layer, growth: 32}                               # one layer: [C] -> [32] new maps
```
Sub-node ids: `layer1` ... `layerL` (each `conv1`, `conv2`, `dropout`), `cat1` ... `catL`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt

from .base import Composite, generated
from .common import Act, Norm
from .registry import register


class _DenseOptions(Composite):
    ranks = (3,)
    width_fields = ("growth",)
    depth_fields = ("layers",)
    growth: PositiveInt
    """Growth rate k: new channels per layer."""
    bottleneck: NonNegativeInt = 4
    """Channels of the 1x1 conv as a multiple of k (0: no bottleneck conv)."""
    dropout: float = Field(0, ge=0, lt=1)
    """Dropout after each layer's 3x3 conv."""
    norm: Norm | None = Norm(kind="batch")
    """Norm before each conv (pre-activation order, as in the paper)."""
    act: Act = Act(kind="relu")
    """Activation before each conv."""

    def _conv(self, node_id: str, out: int, k: int) -> dict[str, Any]:
        node: dict[str, Any] = {"id": node_id, "op": "conv", "out": out, "k": k, "act": self.act.model_dump(),
                                "order": "norm-act-conv", "bias": False}
        if self.norm is not None:
            node["norm"] = self.norm.model_dump()
        return node

    def layer_nodes(self) -> list[dict[str, Any]]:
        nodes = []
        if self.bottleneck:
            nodes.append(self._conv("conv1", self.bottleneck * self.growth, 1))
        nodes.append(self._conv("conv2", self.growth, 3))
        if self.dropout:
            nodes.append({"id": "dropout", "op": "dropout", "p": self.dropout})
        return [generated(n) for n in nodes]


@register
class DenseLayer(_DenseOptions):
    op: Literal["dense_layer"] = "dense_layer"
    examples = [({"growth": 4}, [(6, 5, 5)]), ({"growth": 3, "bottleneck": 0, "dropout": 0.1}, [(2, 4, 4)])]

    def expand(self) -> list[dict[str, Any]]:
        return self.layer_nodes()


@register
class Dense(_DenseOptions):
    op: Literal["dense"] = "dense"
    layers: PositiveInt
    """Number of layers L."""
    examples = [({"layers": 3, "growth": 4}, [(6, 5, 5)]), ({"layers": 2, "growth": 2, "bottleneck": 0}, [(3, 4, 4)])]

    def expand(self) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = []
        features = "x"
        options = self.model_dump(exclude={"op", "layers"})
        for i in range(1, self.layers + 1):
            nodes.append({"id": f"layer{i}", "op": "dense_layer", "in": features, **options})
            nodes.append({"id": f"cat{i}", "op": "concat", "in": [features, f"layer{i}"]})
            features = f"cat{i}"
        return [generated(n) for n in nodes]
