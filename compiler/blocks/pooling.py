"""Shared arithmetic of the windowed pools (`maxpool`, `avgpool`)."""

from __future__ import annotations

from ..errors import ShapeError
from .base import Shape, conv_out, expect_rank, fmt, pair


def pooled_shape(op: str, shape: Shape, k, stride, pad, dilation=1, ceil: bool = False) -> Shape:
    expect_rank(op, shape, 3)
    c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = pair(k), pair(stride), pair(pad), pair(dilation)
    if ph > kh // 2 or pw > kw // 2:
        raise ShapeError(f"{op} padding must be at most half the kernel. Received: k={k}, pad={pad}")
    oh, ow = conv_out(h, kh, sh, ph, dh, ceil), conv_out(w, kw, sw, pw, dw, ceil)
    if oh < 1 or ow < 1:
        raise ShapeError(f"{op} window {kh}x{kw} does not fit the {h}x{w} input. Received: input "
                         f"shape {fmt(shape)}; the spatial size would shrink to {oh}x{ow}")
    return c, oh, ow
