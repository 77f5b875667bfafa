"""`dualpath`: one block of a Dual Path Network (Chen et al., *Dual Path Networks*, 2017).

A DPN block runs one bottleneck (1x1 -> grouped 3x3 -> 1x1, ResNeXt-style) and splits its
output in two: the first `out` channels are ADDED to a residual path (ResNet: features are
re-used), the last `inc` channels are CONCATENATED to a dense path (DenseNet: new features
are explored), so the dense path grows by `inc` channels per block.

Representation: the two paths travel as ONE tensor, the channel concatenation
``[residual (out channels) | dense (D channels)]``, so a block consumes and produces a single
tensor and chains like any other node. Inside, `slice` nodes take the paths back apart:

    x ──(proj: BN-act-1x1, only for type proj/down)──┬─ res_in   = [:out]
                                                     └─ dense_in = [out:]
    x ── conv1 (1x1, r) ── conv2 (3x3, r, groups, stride) ── conv3 (1x1, out + inc)
                                                     ┬─ res_out   = [:out]
                                                     └─ dense_out = [out:]
    y = concat(res_in + res_out, dense_in, dense_out)     # [out | D + inc]

Block `type`: `proj` (first block of a network's first stage) and `down` (first block of
the later stages, stride 2) replace the input by a 1x1 projection to out + 2*inc channels,
which starts the residual path and a dense path of 2*inc; `normal` reads the input's paths
as they are (the input must have more than `out` channels). Every conv is pre-activation,
BN -> act -> conv without bias, as timm's / MXNet's `BnActConv2d`. The `b` variant (DPN-b)
ends the body with BN -> act and two separate 1x1 convs for the residual and the dense part
instead of one 1x1 conv that is sliced.

```yaml
- {op: dualpath, r: 96, out: 256, inc: 16, groups: 32, type: proj}   # DPN-92 conv2_1
- {op: dualpath, r: 96, out: 256, inc: 16, groups: 32}               # conv2_2: [288] -> [304]
- {op: dualpath, r: 96, out: 256, inc: 16, groups: 32, repeat: 3, first: {type: proj}}
```
Sub-node ids (timm's names in brackets): `proj` [c1x1_w_s1 / c1x1_w_s2], `res_in`,
`dense_in`, `conv1` [c1x1_a], `conv2` [c3x3_b], `conv3` [c1x1_c], `res_out`, `dense_out`;
with `b`: `norm3` and `act3` [c1x1_c], `res_out` [c1x1_c1] and `dense_out` [c1x1_c2] are
convs; then `add` and `concat`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import PositiveInt

from .base import Flag, Composite, Shape, generated
from .common import Act, Norm
from .registry import register


@register
class DualPath(Composite):
    op: Literal["dualpath"] = "dualpath"
    r: PositiveInt
    """Width of the bottleneck: channels of the 1x1 and the grouped 3x3 conv."""
    out: PositiveInt
    """Channels of the residual path (the first `out` channels of input and output)."""
    inc: PositiveInt
    """Dense increment: channels this block appends to the dense path."""
    groups: PositiveInt = 1
    """Groups of the 3x3 conv (cardinality, 32 in DPN-68/92)."""
    type: Literal["normal", "proj", "down"] = "normal"
    """normal: read the input's two paths; proj: project the input to out + 2*inc channels
    first; down: the same with stride 2 (first block of a stage)."""
    b: Flag = False
    """DPN-b: BN-act then separate 1x1 convs for the residual and the dense output."""
    norm: Norm = Norm(kind="batch", eps=0.001)
    """Norm before every conv (DPN's MXNet weights use BN with eps 0.001)."""
    act: Act = Act(kind="relu")
    """Activation after every norm."""
    family = "composite"
    ranks = (3,)
    examples = [
        ({"r": 4, "out": 6, "inc": 2, "groups": 2, "type": "proj"}, [(5, 5, 5)]),
        ({"r": 4, "out": 6, "inc": 2, "groups": 2}, [(10, 5, 5)]),
        ({"r": 4, "out": 6, "inc": 3, "type": "down", "b": True, "act": "silu"}, [(5, 6, 6)]),
    ]

    def _conv(self, node_id: str, out: int, k: int, stride: int = 1, groups: int = 1,
              source: str | None = None) -> dict[str, Any]:
        """BN -> act -> conv without bias (timm's BnActConv2d); reads `source` or the previous node."""
        node: dict[str, Any] = {"id": node_id, "op": "conv", "out": out, "k": k, "stride": stride,
                                "groups": groups, "bias": False, "norm": self.norm.model_dump(),
                                "act": self.act.model_dump(), "order": "norm-act-conv"}
        if source is not None:
            node["in"] = source
        return node

    def expand(self) -> list[dict[str, Any]]:
        stride = 2 if self.type == "down" else 1
        nodes: list[dict[str, Any]] = []
        paths = "x"
        if self.type != "normal":
            nodes.append(self._conv("proj", self.out + 2 * self.inc, 1, stride, source="x"))
            paths = "proj"
        nodes += [
            {"id": "res_in", "op": "slice", "in": paths, "end": self.out},
            {"id": "dense_in", "op": "slice", "in": paths, "start": self.out},
            self._conv("conv1", self.r, 1, source="x"),
            self._conv("conv2", self.r, 3, stride, self.groups),
        ]
        if self.b:
            nodes += [
                {"id": "norm3", "op": "norm", **self.norm.model_dump()},
                {"id": "act3", "op": "act", **self.act.model_dump()},
                {"id": "res_out", "op": "conv", "in": "act3", "out": self.out, "k": 1, "bias": False},
                {"id": "dense_out", "op": "conv", "in": "act3", "out": self.inc, "k": 1, "bias": False},
            ]
        else:
            nodes += [
                self._conv("conv3", self.out + self.inc, 1),
                {"id": "res_out", "op": "slice", "in": "conv3", "end": self.out},
                {"id": "dense_out", "op": "slice", "in": "conv3", "start": self.out},
            ]
        nodes += [
            {"id": "add", "op": "add", "in": ["res_in", "res_out"]},
            {"id": "concat", "op": "concat", "in": ["add", "dense_in", "dense_out"]},
        ]
        return [generated(n) for n in nodes]

    def explain(self, part: str, in_shapes: list[Shape]) -> str | None:
        """A `normal` block whose input is not two paths yet: the first block of a stage."""
        if self.type != "normal" or part not in ("res_in", "dense_in") or len(in_shapes[0]) != 3:
            return None
        channels = in_shapes[0][0]
        if channels > self.out:
            return None
        return (f"a dualpath block of type normal reads its input as two paths, [residual ({self.out} channels) | "
                f"dense], so it needs more than out={self.out} input channels, got {channels}; the first block "
                f"of a stage needs `type: proj` (or `down`, with stride 2) to project its input to "
                f"out + 2*inc = {self.out + 2 * self.inc} channels: with `repeat`, write `first: {{type: proj}}`")
