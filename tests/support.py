"""Helpers shared by the tests: weight transfer by order, non-trivial batch-norm state,
output comparison, recording what every spec node outputs during a forward pass (the zoo
tests), and the `inputs:` a one-op spec declares (the block harness, the rank tests)."""

from __future__ import annotations

import torch
import torch.fx


def copy_by_order(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    """Copy parameters, then buffers, pairing them by registration order; shapes must agree."""
    with torch.no_grad():
        for kind in ("named_parameters", "named_buffers"):
            mine = list(getattr(ours, kind)())
            ref = list(getattr(theirs, kind)())
            assert len(mine) == len(ref), (kind, [n for n, _ in mine][:5], [n for n, _ in ref][:5])
            for (n1, t1), (n2, t2) in zip(mine, ref):
                assert t1.shape == t2.shape, f"{kind}: {n1} {tuple(t1.shape)} vs {n2} {tuple(t2.shape)}"
                assert t1.dtype == t2.dtype, (n1, n2, t1.dtype, t2.dtype)
                t1.copy_(t2)


def randomise_batchnorm(model: torch.nn.Module, gen: torch.Generator) -> int:
    """Non-trivial BN scales, shifts and running statistics, so eps and order matter."""
    count = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.num_batches_tracked.fill_(7)
                count += 1
    return count


def assert_same_outputs(ours: torch.nn.Module, theirs: torch.nn.Module, x: torch.Tensor, rtol: float) -> None:
    """Eval-mode outputs equal to `rtol` relative (and rtol * max|reference| absolute)."""
    ours.eval()
    theirs.eval()
    with torch.inference_mode():
        expected = theirs(x)
        got = ours(x)
    assert got.shape == expected.shape
    scale = expected.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(got, expected, rtol=rtol, atol=rtol * scale)


class OutputRecorder(torch.fx.Interpreter):
    """Runs a compiled spec node by node and keeps, per spec node, the output of its last fx
    node (its result). Nodes that emit no fx node (identity-like) are absent."""

    def __init__(self, gm: torch.fx.GraphModule):
        super().__init__(gm)
        self.outputs: dict[str, torch.Tensor] = {}

    def run_node(self, n: torch.fx.Node):
        result = super().run_node(n)
        node_id = n.meta.get("blockgraph_node")
        if node_id is not None:
            assert isinstance(result, torch.Tensor), (n.name, type(result))
            self.outputs[node_id] = result
        for also in n.meta.get("blockgraph_also", []):  # a slice read straight from its part (slices.py)
            self.outputs[also] = result
        return result

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in self.outputs.items()}


def declared_inputs(op: str, shapes: list) -> dict:
    """A one-op spec's `inputs:` for `shapes`, as a user declares them: an op that reads token
    ids (an `index_bound_field`, e.g. `embedding`) gets int64 inputs, any other op shape lists."""
    from compiler.blocks import REGISTRY

    reads_ids = getattr(REGISTRY[op], "index_bound_field", None) is not None
    return {f"x{i}": {"shape": list(s), "dtype": "int64"} if reads_ids else list(s) for i, s in enumerate(shapes)}
