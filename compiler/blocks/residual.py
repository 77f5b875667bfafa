"""`residual`: y = act(shortcut(x) + scale * F(x)) — He et al., *Deep Residual Learning*, 2015.

The body F is `basic` (two 3x3 convs), `bottleneck` (1x1 reduce, 3x3, 1x1 expand; with
`groups` and `base_width` it is ResNeXt's or a wide ResNet's block), or any node or list of
nodes (a user block, an inception module). The shortcut is the identity, or a 1x1 conv + norm
added automatically when the body changes the shape (option B). `preact` gives the
pre-activation unit of *Identity Mappings in Deep Residual Networks* (2016); `scale` the
residual scaling of Inception-ResNet (Szegedy et al. 2016); `zero_init_last` starts the
block as the identity (Goyal et al. 2017); `se` adds squeeze-and-excitation to the body.

```yaml
- {id: block, op: residual, body: basic, out: 64}
- {id: down, op: residual, body: bottleneck, out: 512, stride: 2}
- {op: residual, body: bottleneck, out: 256, groups: 32, base_width: 4, se: 16}  # SE-ResNeXt
- {op: residual, body: {op: my_block, width: 32}, scale: 0.2}
```
Sub-node ids: `conv1`, `conv2`(, `conv3`), `se`, `shortcut`, `add`, `act`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, PositiveInt, model_validator

from .base import Flag, Composite, generated
from .common import Act, Norm
from .registry import register


class SEOptions(BaseModel):
    """Squeeze-and-excitation inside a residual body."""

    model_config = Composite.model_config

    reduction: float = Field(16, gt=0)
    """Squeeze width = channels / reduction."""
    divisor: PositiveInt = 1
    """Round the squeeze width to a multiple of this."""

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, value):
        return {"reduction": value} if isinstance(value, (int, float)) and not isinstance(value, bool) else value


@register
class Residual(Composite):
    op: Literal["residual"] = "residual"
    body: Literal["basic", "bottleneck"] | dict[str, Any] | list[dict[str, Any]] = "basic"
    """basic, bottleneck, one node ({op: ..., ...}) or a list of nodes (they read `x`)."""
    out: PositiveInt | None = None
    """Output channels (needed by basic and bottleneck)."""
    stride: PositiveInt = 1
    """Stride of the body (on the 3x3 conv, as torchvision's ResNet v1.5)."""
    groups: PositiveInt = 1
    """Grouped 3x3 conv of the bottleneck (ResNeXt's cardinality)."""
    base_width: PositiveInt = 64
    """Bottleneck width per group at 64: width = out / expansion * base_width / 64 * groups."""
    expansion: PositiveInt = 4
    """Bottleneck: output channels / inner channels."""
    norm: Norm | None = Norm(kind="batch")
    """Norm after every conv of the body and of the projection."""
    act: Act = Act(kind="relu")
    """Activation inside the body and after the sum."""
    preact: Flag = False
    """Pre-activation unit: norm and act before each conv, nothing after the sum."""
    shortcut: Literal["auto", "identity", "projection"] = "auto"
    """auto: a projection only when the body changes the shape."""
    scale: float = 1.0
    """Multiply the body's output before the sum (0.1-0.3 in Inception-ResNet)."""
    zero_init_last: Flag = False
    """Initialise the body's last norm scale (or last conv) to zero: the block starts as identity."""
    se: SEOptions | None = None
    """Squeeze-and-excitation after the body: a reduction (16) or {reduction, divisor}."""
    family = "composite"
    ranks = None  # basic and bottleneck: [C, H, W]; a custom body: what it takes
    width_fields = ("out",)
    examples = [
        ({"out": 4}, [(4, 6, 6)]),
        ({"out": 8, "stride": 2}, [(4, 6, 6)]),
        ({"body": "bottleneck", "out": 16, "groups": 2, "base_width": 32, "se": {"reduction": 4}}, [(8, 5, 5)]),
        ({"out": 4, "preact": True, "zero_init_last": True}, [(4, 4, 4)]),
        ({"body": [{"op": "conv", "out": 6, "k": 1}], "scale": 0.2, "shortcut": "projection"}, [(3, 4, 4)]),
    ]

    @model_validator(mode="after")
    def _needs_out(self):
        if isinstance(self.body, list) and not self.body:
            raise ValueError("a residual body lists at least one node, e.g. body: [{op: conv, out: 64}]")
        if self.body in ("basic", "bottleneck") and self.out is None:
            raise ValueError(f"a {self.body} residual block needs `out` (its output channels)")
        if self.body not in ("basic", "bottleneck"):
            ignored = [n for n in ("groups", "base_width", "expansion", "out", "stride", "preact", "zero_init_last")
                       if n in self.model_fields_set]
            if ignored:
                raise ValueError(f"{', '.join(ignored)} apply to the basic and bottleneck bodies only; a custom body "
                                 "sets its own (norm, act, scale, se and shortcut still apply)")
        if self.body == "bottleneck" and self.width() < 1:
            raise ValueError(f"the bottleneck width out/expansion*base_width/64*groups is 0 (out={self.out}, "
                             f"expansion={self.expansion}, base_width={self.base_width}, groups={self.groups})")
        return self

    def width(self) -> int:
        """Channels of the bottleneck's inner convs (torchvision's formula)."""
        return int(self.out // self.expansion * self.base_width / 64) * self.groups

    def _conv(self, node_id: str, out: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> dict:
        node: dict[str, Any] = {"id": node_id, "op": "conv", "out": out, "k": k, "stride": stride}
        if groups != 1:
            node["groups"] = groups
        if self.norm is not None:
            node["norm"] = self.norm.model_dump()
        if self.preact:
            node["order"] = "norm-act-conv"
            node["act"] = self.act.model_dump()
            if self.norm is None:
                node["order"] = "conv-norm-act"
                node.pop("act")
        elif act:
            node["act"] = self.act.model_dump()
        return node

    def _body(self) -> list[dict[str, Any]]:
        if self.body == "basic":
            nodes = [generated(self._conv("conv1", self.out, 3, self.stride)),
                     generated(self._conv("conv2", self.out, 3, act=False))]
        elif self.body == "bottleneck":
            width = self.width()
            nodes = [generated(self._conv("conv1", width, 1)),
                     generated(self._conv("conv2", width, 3, self.stride, self.groups)),
                     generated(self._conv("conv3", self.out, 1, act=False))]
        elif isinstance(self.body, dict):
            nodes = [{"id": "body", **self.body}]
        else:
            nodes = [dict(n) for n in self.body]
        nodes[0].setdefault("in", "x")
        if self.zero_init_last and self.body in ("basic", "bottleneck"):
            family = "conv" if self.preact or self.norm is None else "norm"
            nodes[-1]["init"] = {family: {"weight": "zeros"}}
        return nodes

    def expand(self) -> list[dict[str, Any]]:
        nodes = self._body()
        last = nodes[-1].get("id") or "body_out"
        nodes[-1].setdefault("id", last)
        if self.se is not None:
            nodes.append(generated({"id": "se", "op": "se", "reduction": self.se.reduction,
                                    "divisor": self.se.divisor}))
            last = "se"
        shortcut: dict[str, Any] = {"id": "shortcut", "op": "shortcut", "in": ["x", last], "mode": self.shortcut,
                                    "norm": None if self.norm is None or self.preact else self.norm.model_dump()}
        # The branch comes first, as in torchvision's `out += identity`: inductor schedules a
        # sum's inputs in argument order, and computing the shortcut last keeps it in cache for
        # the sum (ResNet-50 compiled at batch 1 on a CPU: 0.90 -> 0.99 of torchvision's speed).
        add: dict[str, Any] = {"id": "add", "op": "add", "in": [last, "shortcut"]}
        if self.scale != 1:
            add["weights"] = [self.scale, 1.0]
        nodes += [generated(shortcut), generated(add)]
        if not self.preact:
            nodes.append(generated({"id": "act", "op": "act", **self.act.model_dump()}))
        return nodes
