"""Example inputs for a spec's module: random float32 values for a value input, random token
ids for an int64 input, below the smallest `vocab` of the ops that read it (an id at or above
it would index past the table). Export traces and verifies with them; the tests' property
checks feed the same kind of batch.

One home for "a batch this module accepts", so no caller feeds `torch.randn` to an embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .blocks.base import Shape


@dataclass(frozen=True)
class SampleInput:
    """What one input of the module takes, per sample."""

    shape: Shape
    id_bound: int | None = None
    """For an int64 input of token ids: ids are drawn in 0..id_bound-1; None for float32 values."""

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32 if self.id_bound is None else torch.int64


def sample_inputs(spec) -> list[SampleInput]:
    """One SampleInput per spec input, in `forward()` order."""
    return [SampleInput(shape=tuple(shape), id_bound=id_bound(spec, name) if spec.dtype(name) == "int64" else None)
            for name, shape in spec.inputs.items()]


def id_bound(spec, input_name: str) -> int:
    """The smallest id bound (`vocab`) among the nodes that read `input_name` (1 when no node
    reads it: every id is then 0)."""
    bounds = [getattr(node.block, node.block.index_bound_field) for node in spec.nodes
              if input_name in node.inputs and getattr(node.block, "index_bound_field", None)]
    return min(bounds, default=1)


def sample_batch(inputs: list[SampleInput], batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A batch of `batch` samples for each input, reproducible from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, *x.shape, generator=generator) if x.id_bound is None
                 else torch.randint(0, x.id_bound, (batch, *x.shape), generator=generator) for x in inputs)


def meta_batch(inputs: list[SampleInput], batch: int) -> tuple[torch.Tensor, ...]:
    """Tensors of the batch's shapes and dtypes on the meta device (no memory), for a pass
    that only follows the modules (weight import's execution order): an embedding on the meta
    device still refuses float indices, so the dtype matters even there."""
    return tuple(torch.empty(batch, *x.shape, dtype=x.dtype, device="meta") for x in inputs)
