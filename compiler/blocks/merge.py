"""Shared checks of the element-wise merges (`add`, `mul`)."""

from __future__ import annotations

from ..errors import ShapeError
from .base import Shape, fmt


def broadcast(op: str, in_shapes: list[Shape], names: list[str] | None = None) -> Shape:
    """Per-sample broadcasting as PyTorch does it, but only between equal ranks."""
    names = names or [f"input {i}" for i in range(len(in_shapes))]
    out = list(in_shapes[0])
    for shape in in_shapes[1:]:
        ok = len(shape) == len(out) and all(a == b or a == 1 or b == 1 for a, b in zip(out, shape))
        if not ok:
            raise ShapeError(mismatch(op, in_shapes, names))
        out = [max(a, b) for a, b in zip(out, shape)]
    return tuple(out)


def mismatch(op: str, in_shapes: list[Shape], names: list[str]) -> str:
    gives = ", ".join(f"{n} gives {fmt(s)}" for n, s in zip(names, in_shapes))
    hint = ""
    if all(len(s) == 3 for s in in_shapes):
        chans = {s[0] for s in in_shapes}
        sizes = {s[1:] for s in in_shapes}
        if len(chans) > 1 and len(sizes) == 1:
            hint = "; a 1x1 conv projection on one of them would fix this"
        elif len(sizes) > 1:
            hint = "; a strided conv or a pool on the larger one (or upsampling the smaller) would fix this"
    return f"input shapes differ: {gives}{hint}"
