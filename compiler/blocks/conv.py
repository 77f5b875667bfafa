"""`conv`: a 2-D convolution, optionally fused with a norm and an activation.

The workhorse of every CNN since LeCun et al. 1989; VGG (Simonyan & Zisserman, 2014) showed
that stacks of 3x3 convs cover large receptive fields with fewer weights.

```yaml
- {id: conv1, op: conv, out: 64, k: 3}                       # 3x3, padding 1 (auto), bias
- {op: conv, out: 128, k: 3, stride: 2, norm: batch, act: relu}
- {op: conv, out: 256, k: 3, groups: 32, norm: {kind: group, groups: 32}, act: silu}
- {op: conv, out: 64, k: 3, norm: batch, act: relu, order: norm-act-conv}   # pre-activation
```
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt

from ..errors import ShapeError
from .base import Flag, Block, Shape, conv_out, fmt, pair
from .common import Act, Norm
from .registry import register

IntPair = PositiveInt | tuple[PositiveInt, PositiveInt]


@register
class Conv(Block):
    op: Literal["conv"] = "conv"
    out: PositiveInt
    """Output channels."""
    k: IntPair = 3
    """Kernel size: one number or [height, width]."""
    stride: IntPair = 1
    """Step between windows; 2 halves the height and width."""
    pad: NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt] | Literal["auto", "same", "valid"] = "auto"
    """Zero padding: a number, [h, w], `auto` (dilation*(k-1)//2, which keeps the size at stride 1
    for odd kernels), `same` (output size = input size; stride 1 only) or `valid` (0)."""
    dilation: IntPair = 1
    """Spacing between kernel taps (atrous convolution)."""
    groups: PositiveInt = 1
    """Split channels into groups convolved separately (ResNeXt); in and out channels must divide."""
    bias: Flag | Literal["auto"] = "auto"
    """Add a learned bias; `auto` = yes unless a norm follows the conv (it would cancel it)."""
    norm: Norm | None = None
    """Normalisation fused after the conv (or before it, see `order`)."""
    act: Act | None = None
    """Activation fused after the conv (or before it, see `order`)."""
    order: Literal["conv-norm-act", "conv-act-norm", "norm-act-conv"] = "conv-norm-act"
    """Order of the fused parts; `norm-act-conv` is the pre-activation unit of He et al. 2016."""

    family = "conv"
    ranks = (3,)
    width_fields = ("out",)
    examples = [
        ({"out": 8}, [(4, 10, 10)]),
        ({"out": 8, "k": [3, 5], "stride": 2, "pad": [1, 0], "groups": 2, "norm": "batch", "act": "relu"}, [(4, 9, 11)]),
        ({"out": 6, "k": 3, "pad": "same", "dilation": 2, "norm": {"kind": "group", "groups": 3}, "act": "silu"}, [(3, 8, 8)]),
        ({"out": 4, "k": 1, "pad": "valid", "norm": "batch", "act": {"kind": "leaky_relu", "slope": 0.2}, "order": "norm-act-conv"}, [(6, 5, 5)]),
        ({"out": 4, "k": 2, "stride": 2, "norm": "instance", "act": "elu", "order": "conv-act-norm", "bias": False}, [(2, 6, 7)]),
    ]

    def _padding(self) -> tuple[int, int] | str:
        k, d = pair(self.k), pair(self.dilation)
        if self.pad == "auto":
            return d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2
        if self.pad == "valid":
            return 0, 0
        if self.pad == "same":
            if pair(self.stride) != (1, 1):
                raise ShapeError(f"pad: same needs stride 1 (PyTorch cannot pad a strided conv to "
                                 f"keep its size). Received: stride={self.stride}; use pad: auto")
            return "same"
        return pair(self.pad)

    def _has_bias(self) -> bool:
        if self.bias != "auto":
            return self.bias
        return self.norm is None or self.order == "norm-act-conv"

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        (shape,) = in_shapes
        self.check_rank(shape)
        c = shape[0]
        if c % self.groups or self.out % self.groups:
            raise ShapeError(f"conv needs input and output channels divisible by groups. Received: "
                             f"{c} input channels, out={self.out}, groups={self.groups}")
        out = self._spatial(shape)
        if self.norm is not None:  # on the conv's input (pre-activation) or on its output
            self.norm.check(shape if self.order == "norm-act-conv" else out)
        return out

    def _spatial(self, shape: Shape) -> Shape:
        """The conv's own output shape (before any fused norm is checked on it)."""
        _, h, w = shape
        padding = self._padding()
        if padding == "same":
            return self.out, h, w
        (kh, kw), (sh, sw), (dh, dw) = pair(self.k), pair(self.stride), pair(self.dilation)
        oh, ow = conv_out(h, kh, sh, padding[0], dh), conv_out(w, kw, sw, padding[1], dw)
        if oh < 1 or ow < 1:
            span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
            raise ShapeError(f"conv kernel {kh}x{kw} (dilation {self.dilation}) spans {span[0]}x{span[1]} pixels, "
                             f"more than the {h + 2 * padding[0]}x{w + 2 * padding[1]} padded input. Received: "
                             f"input shape {fmt(shape)}, padding {padding[0]}x{padding[1]}; pool less before it, "
                             "or pad more")
        return self.out, oh, ow

    def macs(self, in_shapes: list[Shape], out_shape: Shape) -> int:
        kh, kw = pair(self.k)
        return out_shape[0] * out_shape[1] * out_shape[2] * (in_shapes[0][0] // self.groups) * kh * kw

    def window(self, in_shapes: list[Shape]) -> tuple[int, int]:
        k, d = pair(self.k), pair(self.dilation)
        return max(d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1), max(pair(self.stride))

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        kh, kw = pair(self.k)
        c = in_shapes[0][0]
        params, buffers = self.out * c // self.groups * kh * kw + (self.out if self._has_bias() else 0), 0
        if self.norm is not None:
            p, b = self.norm.param_count(in_shapes[0] if self.order == "norm-act-conv" else (self.out,))
            params, buffers = params + p, buffers + b
        return params, buffers

    def build(self, in_shapes: list[Shape]):
        from torch import nn

        (shape,) = in_shapes
        conv = nn.Conv2d(shape[0], self.out, pair(self.k), pair(self.stride), self._padding(),
                         pair(self.dilation), self.groups, bias=self._has_bias())
        parts: OrderedDict[str, nn.Module] = OrderedDict()
        for part in self.order.split("-"):
            if part == "conv":
                parts["conv"] = conv
            elif part == "norm" and self.norm is not None:
                pre = self.order == "norm-act-conv"
                parts["norm"] = self.norm.module(shape if pre else self.out_shape(in_shapes))
            elif part == "act" and self.act is not None:
                # In place is safe only where the tensor it overwrites is private to this unit: the
                # conv's or the norm's output, not the unit's input (pre-activation without a norm).
                parts["act"] = self.act.module(inplace=self.order != "norm-act-conv" or self.norm is not None)
        return nn.Sequential(parts)
