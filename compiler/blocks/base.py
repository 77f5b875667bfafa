"""The contract every block kind keeps: a pydantic schema, a shape rule, a builder, a cost.

A block kind is one class in one file (``blocks/conv.py`` ...), registered under its YAML
``op`` name. The rest of blockgraph never branches on the kind: the spec stage validates a
node's arguments with the class, the graph stage calls `out_shape`, `macs` and `window`, and
the compiler calls `build` and `emit`. YAML never states input channels: `build` receives the
inferred input shapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Strict

from ..errors import ShapeError

if TYPE_CHECKING:  # torch is imported lazily so `validate` stays fast
    import torch.fx
    from torch import nn

Shape = tuple[int, ...]
Flag = Annotated[bool, Strict()]
"""A boolean field: true or false only (not 'yes', 1 or 'on', which YAML 1.2 reads as text)."""


def fmt(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


class Emitter(Protocol):
    """What a block sees of the fx graph under construction (implemented in compiler.fx)."""

    module: "nn.Module | None"

    def call_module(self, args: list, child: str | None = None, name: str | None = None) -> "torch.fx.Node": ...

    def call_function(self, fn: Any, args: tuple, kwargs: dict | None = None,
                      name: str | None = None) -> "torch.fx.Node": ...


class Block(BaseModel):
    """Base class of every block kind; subclasses declare `op: Literal["name"]` and fields."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True,
                              use_attribute_docstrings=True)

    family: ClassVar[str] = "other"
    """Op family: picks the init policy and the colour in renderings."""
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    examples: ClassVar[list[tuple[dict, list[Shape]]]] = []
    """Valid (arguments, input shapes) pairs: the registry test runs every block on them."""
    width_fields: ClassVar[tuple[str, ...]] = ()
    """Channel-count fields that `scaling.width` multiplies (a classifier's `out` is not one)."""
    shape_only_inputs: ClassVar[tuple[int, ...]] = ()
    """Positions of inputs read for their shape only (a shortcut's target)."""
    names_inputs: ClassVar[bool] = False
    """`out_shape` takes `names=` (the input node ids) to word its errors."""
    ranks: ClassVar[tuple[int, ...] | None] = None
    """Ranks of the per-sample input the shape rule accepts (1 = [F], 2 = [C, L], 3 = [C, H, W]),
    or None for any. The rule checks it with `check_rank`, and docs/blocks.md's **Input** line is
    generated from it, so the docs, the check and the module agree (a region op's boxes input
    is checked apart)."""
    sequence_input: ClassVar[bool] = False
    """A rank-2 input is read as a sequence [T, F] (time first, features last: `lstm`, `gru`,
    `linear` per step, `time_pool`) rather than channels first [C, L]; only the wording of the
    rank error and of the docs' **Input** line depends on it."""
    index_bound_field: ClassVar[str | None] = None
    """The field bounding the integer ids the input holds (`embedding`: `vocab`), for a block
    that reads token ids rather than values. Setting it makes the op an id reader: the graph
    check lets it read only an int64 input (and no other op read one), and example inputs
    (compiler/sample_inputs.py) draw ids in 0..bound-1."""
    regions_input: ClassVar[int | None] = None
    """Position of a boxes input ([R, 4] per sample) when the op reads regions of its other
    input (roi_align, roi_pool, crop_regions): the output holds one row per box, so the batch
    axis becomes the region axis (B images -> B*R rows) and the nodes after it count per
    region (`Graph.regions`)."""

    # -- shape and cost -------------------------------------------------------------------
    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        """The per-sample output shape, or a ShapeError that says what is wrong."""
        raise NotImplementedError

    def macs(self, in_shapes: list[Shape], out_shape: Shape) -> int:
        """Multiply-accumulates of one sample (conv and linear work; cheap ops count 0)."""
        return 0

    def window(self, in_shapes: list[Shape]) -> tuple[int, int]:
        """(kernel extent, stride) along a spatial axis, for receptive fields."""
        return 1, 1

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int] | None:
        """(trainable parameters, buffer values) in closed form, or None to count them on a
        meta-device build. Optional: the registry test checks any closed form against the
        built module."""
        if type(self).build is Block.build:  # stateless: nothing to count
            return 0, 0
        return None

    def allocates(self, in_shapes: list[Shape]) -> bool:
        """False when the output is a view of an input (no new activation memory)."""
        return True

    # -- modules --------------------------------------------------------------------------
    def build(self, in_shapes: list[Shape]) -> "nn.Module | None":
        """The module holding this node's weights, or None for a stateless op."""
        return None

    def emit(self, em: Emitter, args: list) -> "torch.fx.Node":
        """Add this node's computation to the fx graph. Default: call the built module,
        inlining the children of a named `nn.Sequential` so the generated code shows them."""
        from torch import nn

        if isinstance(em.module, nn.Sequential):
            value = args[0]
            names = [n for n, _ in em.module.named_children()]
            for i, child in enumerate(names):
                last = i == len(names) - 1
                value = em.call_module([value], child=child, name=None if last else child)
            return value
        return em.call_module(args)

    # -- helpers for subclasses ------------------------------------------------------------
    @classmethod
    def op_name(cls) -> str:
        return cls.model_fields["op"].default

    def args(self) -> dict[str, Any]:
        """The arguments as a user would write them (no defaults, no `op`)."""
        return self.model_dump(exclude={"op"}, exclude_defaults=True, mode="json")

    def check_rank(self, shape: Shape, hint: str = "") -> None:
        """A ShapeError (with `hint`, the fix) unless `shape` has one of the `ranks` declared."""
        if self.ranks is not None:
            expect_rank(self.op, shape, self.ranks, hint, sequence=self.sequence_input)


RANK_WORDS = {1: "a flat vector [features]", 2: "a [channels, length] tensor", 3: "a feature map [channels, height, width]"}
SEQUENCE_WORDS = {**RANK_WORDS, 2: "a sequence [time, features]"}


def expect_rank(op: str, shape: Shape, rank: int | tuple[int, ...], hint: str = "",
                sequence: bool = False) -> None:
    ranks = (rank,) if isinstance(rank, int) else tuple(rank)
    if len(shape) not in ranks:
        words = SEQUENCE_WORDS if sequence else RANK_WORDS
        what = " or ".join(words.get(r, f"a rank-{r} tensor") for r in ranks)
        raise ShapeError(f"{op} expects {what}. Received: input shape {fmt(shape)}" + (f"; {hint}" if hint else ""))


def pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def conv_out(size: int, k: int, stride: int, pad: int, dilation: int = 1, ceil: bool = False) -> int:
    span = size + 2 * pad - dilation * (k - 1) - 1
    if ceil:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + pad:  # PyTorch: the last window must start inside the input
            out -= 1
        return out
    return span // stride + 1


class Composite(BaseModel):
    """Base class of blocks made of other blocks (residual, inception, dense...).

    A composite is expanded when the spec is loaded into ordinary nodes with hierarchical ids
    (``layer2.0.conv1``), exactly as a user-defined block under ``blocks:`` is, so shapes,
    parameters, MACs, receptive fields and error messages come from the primitives inside.
    Decisions that need the input shape (a projection shortcut, a squeeze width) are left to
    shape-aware primitives (`shortcut`, `se`, `transition`).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True,
                              use_attribute_docstrings=True)

    family: ClassVar[str] = "composite"
    examples: ClassVar[list[tuple[dict, list[Shape]]]] = []
    input_names: ClassVar[tuple[str, ...]] = ("x",)
    """Names the expansion uses for its inputs (`in: x`)."""
    width_fields: ClassVar[tuple[str, ...]] = ()
    """Channel-count fields that `scaling.width` multiplies."""
    depth_fields: ClassVar[tuple[str, ...]] = ()
    """Layer-count fields that `scaling.depth` multiplies."""
    ranks: ClassVar[tuple[int, ...] | None] = None
    """Ranks of the input the expansion works on, for docs/blocks.md's **Input** line (None: any,
    or whatever the nodes given take); the primitives it expands to check them."""

    def expand(self) -> list[dict[str, Any]]:
        """Nodes in the spec's own YAML form (op, id, in, arguments). Nodes the composite
        makes itself are marked with `generated()`, so the spec's `defaults:` and `scaling:`
        leave them alone; nodes the user passed in (a body, branches) stay unmarked."""
        raise NotImplementedError

    def explain(self, part: str, in_shapes: list[Shape]) -> str | None:
        """What the user should change when `part` (the local id of a node this composite made,
        e.g. `res_in`) cannot take inputs of `in_shapes`, or None to report the part's own
        error. The user never wrote the part, so its shape error alone ("slice end 32 is
        outside an axis of 16") does not say which of the composite's arguments to fix."""
        return None

    @classmethod
    def op_name(cls) -> str:
        return cls.model_fields["op"].default

    def args(self) -> dict[str, Any]:
        return self.model_dump(exclude={"op"}, exclude_defaults=True, mode="json")


GENERATED = "__generated__"
"""Key marking a node dict that a composite made itself (see Composite.expand)."""


def generated(node: dict[str, Any]) -> dict[str, Any]:
    return {**node, GENERATED: True}
