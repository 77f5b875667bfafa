"""`deconv`: a 2-D transposed convolution (ConvTranspose2d), optionally fused with a norm and an
activation like `conv`: the learned upsampling of decoders.

Zeiler et al. 2010 named it; Long, Shelhamer & Darrell 2015 (FCN) and Ronneberger et al. 2015
(U-Net's 2x2 "up-convolution") upsample with it. It is the gradient of a strided conv, so
the output size is (H - 1)·stride - 2·pad + dilation·(k - 1) + output_padding + 1. A strided
conv maps `stride` neighbouring input sizes to one output size, so its transpose cannot tell
which one you want: `output_padding` (0 to stride - 1) picks it, or `size` states it and the
padding is derived (PyTorch's `output_size`).

```yaml
- {op: deconv, out: 64}                                     # k 2, stride 2: doubles H and W
- {op: deconv, out: 64, k: 3, stride: 2, pad: 1, output_padding: 1, norm: batch, act: relu}
- {op: deconv, out: 32, k: 3, stride: 2, pad: 1, size: [32, 32]}   # output_padding 1 derived
```
"""

from __future__ import annotations

from collections import OrderedDict
from fractions import Fraction
from typing import Literal

from pydantic import NonNegativeInt, PositiveInt

from ..errors import ShapeError
from .base import Block, Flag, Shape, fmt, pair
from .common import Act, Norm
from .registry import register

IntPair = PositiveInt | tuple[PositiveInt, PositiveInt]
NonNegPair = NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt]


def deconv_out(size: int, k: int, stride: int, pad: int, dilation: int = 1, output_padding: int = 0) -> int:
    return (size - 1) * stride - 2 * pad + dilation * (k - 1) + output_padding + 1


@register
class Deconv(Block):
    op: Literal["deconv"] = "deconv"
    out: PositiveInt
    """Output channels."""
    k: IntPair = 2
    """Kernel size: one number or [height, width]."""
    stride: IntPair = 2
    """Upsampling factor: 2 doubles the height and width (with k: 2, or k: 4 and pad: 1)."""
    pad: NonNegPair = 0
    """Rows and columns removed from each side of the full transposed output (the `padding` of the conv
    this deconv is the transpose of)."""
    output_padding: NonNegPair | None = None
    """Rows and columns added at the bottom and right (less than stride or dilation) to pick among the
    sizes a stride can give; null: 0, or whatever `size` needs."""
    size: tuple[PositiveInt, PositiveInt] | None = None
    """The wanted output [height, width]: checked, and used to derive output_padding."""
    dilation: IntPair = 1
    """Spacing between kernel taps."""
    groups: PositiveInt = 1
    """Split channels into groups convolved separately; in and out channels must divide."""
    bias: Flag | Literal["auto"] = "auto"
    """Add a learned bias; `auto` = yes unless a norm follows (it would cancel it)."""
    norm: Norm | None = None
    """Normalisation fused after the deconv (or before it, see `order`)."""
    act: Act | None = None
    """Activation fused after the deconv (or before it, see `order`)."""
    order: Literal["conv-norm-act", "conv-act-norm", "norm-act-conv"] = "conv-norm-act"
    """Order of the fused parts (`conv` is the deconv), as for `conv`."""

    family = "conv"
    ranks = (3,)
    width_fields = ("out",)
    examples = [
        ({"out": 4}, [(6, 5, 5)]),
        ({"out": 6, "k": 3, "stride": 2, "pad": 1, "output_padding": 1, "norm": "batch", "act": "relu"}, [(4, 4, 5)]),
        ({"out": 4, "k": [3, 4], "stride": [2, 3], "pad": [1, 0], "size": [8, 14], "groups": 2}, [(2, 4, 4)]),
        ({"out": 3, "k": 3, "stride": 1, "dilation": 2, "bias": False, "act": "silu"}, [(2, 4, 4)]),
        ({"out": 4, "k": 4, "stride": 2, "pad": 1, "norm": "batch", "act": "relu", "order": "norm-act-conv"},
         [(6, 3, 3)]),
    ]

    def _has_bias(self) -> bool:
        if self.bias != "auto":
            return self.bias
        return self.norm is None or self.order == "norm-act-conv"

    def _base(self, h: int, w: int) -> tuple[int, int]:
        """The output size with output_padding 0."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = pair(self.k), pair(self.stride), pair(self.pad), pair(self.dilation)
        return deconv_out(h, kh, sh, ph, dh), deconv_out(w, kw, sw, pw, dw)

    def _limits(self) -> tuple[int, int]:
        """output_padding must stay below these (PyTorch: below stride or dilation)."""
        (sh, sw), (dh, dw) = pair(self.stride), pair(self.dilation)
        return max(sh, dh), max(sw, dw)

    def output_padding_for(self, shape: Shape) -> tuple[int, int]:
        """The output_padding used on an input of `shape`: the given one, or derived from `size`."""
        c, h, w = shape
        base, limits = self._base(h, w), self._limits()
        given = pair(self.output_padding) if self.output_padding is not None else None
        if given is not None and (given[0] >= limits[0] or given[1] >= limits[1]):
            raise ShapeError(f"deconv output_padding must be less than stride or dilation (here below "
                             f"{limits[0]}x{limits[1]}). Received: output_padding={list(given)}")
        if self.size is None:
            return given or (0, 0)
        want = tuple(self.size)
        needed = (want[0] - base[0], want[1] - base[1])
        reachable = all(0 <= n < lim for n, lim in zip(needed, limits))
        if not reachable:
            spans = [f"{b}" if lim == 1 else f"{b} to {b + lim - 1}" for b, lim in zip(base, limits)]
            raise ShapeError(f"deconv cannot give size {want[0]}x{want[1]} from the input {fmt(shape)}: with "
                             f"k: {_yaml_pair(pair(self.k))}, stride: {_yaml_pair(pair(self.stride))}, pad: "
                             f"{_yaml_pair(pair(self.pad))} its height can be {spans[0]} and its width {spans[1]} "
                             f"(output_padding 0 to {_yaml_pair((limits[0] - 1, limits[1] - 1))}); change pad or k, "
                             "or the size wanted")
        if given is not None and given != needed:
            got = deconv_out(h, pair(self.k)[0], pair(self.stride)[0], pair(self.pad)[0], pair(self.dilation)[0], given[0])
            got_w = deconv_out(w, pair(self.k)[1], pair(self.stride)[1], pair(self.pad)[1], pair(self.dilation)[1],
                               given[1])
            raise ShapeError(f"deconv output_padding {_yaml_pair(given)} gives {got}x{got_w}, not the size {want[0]}x{want[1]} "
                             f"asked for: output_padding: {_yaml_pair(needed)} gives {want[0]}x{want[1]} (or leave "
                             "output_padding out and let size pick it)")
        return needed

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        (shape,) = in_shapes
        self.check_rank(shape)
        c, h, w = shape
        if c % self.groups or self.out % self.groups:
            raise ShapeError(f"deconv needs input and output channels divisible by groups. Received: "
                             f"{c} input channels, out={self.out}, groups={self.groups}")
        op = self.output_padding_for(shape)
        base = self._base(h, w)
        oh, ow = base[0] + op[0], base[1] + op[1]
        if oh < 1 or ow < 1:
            raise ShapeError(f"deconv with pad={self.pad} removes more than the {base[0] + 2 * pair(self.pad)[0]}x"
                             f"{base[1] + 2 * pair(self.pad)[1]} it produces from the input {fmt(shape)}; pad less")
        if self.norm is not None:
            self.norm.check(shape if self.order == "norm-act-conv" else (self.out, oh, ow))
        return self.out, oh, ow

    def macs(self, in_shapes: list[Shape], out_shape: Shape) -> int:
        """Every input pixel is multiplied by every tap of its (out / groups) kernels."""
        c, h, w = in_shapes[0]
        kh, kw = pair(self.k)
        return c * h * w * (self.out // self.groups) * kh * kw

    def window(self, in_shapes: list[Shape]) -> tuple[int, Fraction]:
        """A stride-s transposed conv spreads each input pixel over s outputs per axis, so
        neighbouring outputs are 1/s input pixels apart, and one output sums the input pixels
        i with 0 <= o + pad - s*i <= d(k-1): at most d(k-1)//s + 1 of them (k 2, stride 2: one;
        k 4, stride 2: two; stride 1: k, as a conv)."""
        k, d, s = pair(self.k), pair(self.dilation), pair(self.stride)
        return max(d[i] * (k[i] - 1) // s[i] + 1 for i in (0, 1)), Fraction(1, min(s))

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        kh, kw = pair(self.k)
        c = in_shapes[0][0]
        params, buffers = c * (self.out // self.groups) * kh * kw + (self.out if self._has_bias() else 0), 0
        if self.norm is not None:
            p, b = self.norm.param_count(in_shapes[0] if self.order == "norm-act-conv" else (self.out,))
            params, buffers = params + p, buffers + b
        return params, buffers

    def build(self, in_shapes: list[Shape]):
        from torch import nn

        (shape,) = in_shapes
        deconv = nn.ConvTranspose2d(shape[0], self.out, pair(self.k), pair(self.stride), pair(self.pad),
                                    self.output_padding_for(shape), self.groups, bias=self._has_bias(),
                                    dilation=pair(self.dilation))
        parts: OrderedDict[str, nn.Module] = OrderedDict()
        for part in self.order.split("-"):
            if part == "conv":
                parts["deconv"] = deconv
            elif part == "norm" and self.norm is not None:
                pre = self.order == "norm-act-conv"
                parts["norm"] = self.norm.module(shape if pre else self.out_shape(in_shapes))
            elif part == "act" and self.act is not None:
                parts["act"] = self.act.module(inplace=self.order != "norm-act-conv" or self.norm is not None)
        return nn.Sequential(parts)


def _yaml_pair(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"[{p[0]}, {p[1]}]"
