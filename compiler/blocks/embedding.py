"""`embedding`: a learned vector per token id, for sequences of integer tokens (a lookup table,
as in Bengio et al., *A Neural Probabilistic Language Model*, 2003).

Reads token ids [T] (integers in 0..vocab-1, from an input declared `{shape: [T], dtype:
int64}`: the graph check holds it to that, see compiler/graph.py) and returns one `dim`-vector per step, [T, dim],
the sequence a `lstm` or `gru` reads. It has vocab*dim parameters and no multiply-accumulates
(a lookup, not a matmul).

```yaml
# fragment: inputs {x: {shape: [12], dtype: int64}}
- {op: embedding, vocab: 1000, dim: 64}     # [12] -> [12, 64]
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from .base import Block, Shape
from .registry import register


@register
class Embedding(Block):
    op: Literal["embedding"] = "embedding"
    vocab: PositiveInt
    """Number of distinct token ids (ids run 0..vocab-1)."""
    dim: PositiveInt
    """Features of each token's vector."""
    family = "embedding"
    ranks = (1,)
    sequence_input = True
    width_fields = ("dim",)
    index_bound_field = "vocab"
    examples = [({"vocab": 11, "dim": 4}, [(6,)]), ({"vocab": 3, "dim": 2}, [(1,)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        self.check_rank(in_shapes[0], "embedding reads a sequence of token ids [T]")
        return (in_shapes[0][0], self.dim)

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        return self.vocab * self.dim, 0

    def build(self, in_shapes: list[Shape]):
        from torch import nn

        return nn.Embedding(self.vocab, self.dim)
