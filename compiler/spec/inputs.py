"""One entry of `inputs:`: a shape list (float32 values) or `{shape: [...], dtype: ...}`, read
into an `Input` with its sizes evaluated and checked and its dtype named.

The dtype exists for token ids: an `embedding` reads int64 ids, every other op float32 values,
and the graph check (compiler/graph.py) holds each op to the dtype it reads. Everything that
makes an example batch (compiler/sample_inputs.py: export, weight import, the property tests)
reads `Spec.input_dtypes`, which the loader fills from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..blocks.base import Shape
from ..errors import Loc
from ..quoted import unquote_hint
from .checking import Checker
from .document import FLOAT32, ID_PATTERN, TypedInput
from .messages import describe
from .values import FAILED, Vars


@dataclass
class Input:
    """One entry of `inputs:` as read by `read_input`."""

    shape: Shape
    """Per-sample sizes, channels first; the sizes that failed are left out."""
    dtype: str
    """One of DTYPES (compiler/spec/document.py)."""
    loc: Loc
    """Where its name is written."""


def read_input(checker: Checker, name: str, written: list | TypedInput, values: Vars) -> Input:
    """One input: its name checked, its sizes evaluated and checked (positive integers), its
    dtype kept (the document model has already refused an unknown one)."""
    path = ("inputs", name)
    if not ID_PATTERN.fullmatch(name):
        checker.error(path, f"input name {name!r} must be letters, digits and _ (not starting with a digit)", True)
    dtype = FLOAT32
    sizes_path = path
    if isinstance(written, TypedInput):
        dtype, written, sizes_path = written.dtype, written.shape, path + ("shape",)
    shape = []
    for i, size in enumerate(checker.resolve(written, sizes_path, values)):
        if size is FAILED:
            continue
        if isinstance(size, float) and size.is_integer():
            size = int(size)
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            checker.error(sizes_path + (i,), f"expected a positive integer size, got {describe(size)}"
                          + unquote_hint(size, int))
        else:
            shape.append(size)
    if not written:
        checker.error(path, "an input shape lists at least one size, e.g. [3, 224, 224]")
    return Input(shape=tuple(shape), dtype=dtype, loc=checker.doc.key_loc(path))
