"""Generated code that reuses memory as hand-written models do: `x += shortcut`, `relu_(x)`.

torchvision's ResNet writes `out += identity; out = self.relu(out)` with `ReLU(inplace=True)`:
in eager mode each in-place step saves allocating, filling and later freeing a whole
activation (3 % of ResNet-18's time at batch 32 on a CPU). The compiler's graph, built from
independent blocks, would compute `a + b` and `torch.relu(s)` into new tensors; this pass
rewrites them in place where that is provably invisible:

- the tensor written over is *fresh*: made by a convolution, a norm, a linear layer, an
  addition, a product or a concatenation, none of which keeps its own output for the
  backward pass (so autograd never sees a saved tensor change, and no view aliases it);
- it has no other reader in the graph (nor is it a graph output);
- for `add`, both operands have the same static shape (no broadcasting into the target).

Everything else (a graph input, an activation's output, a view from `split` or `flatten`) is
left out of place. `torch.compile`, `torch.export` and ONNX see through in-place ops, so this
matters to eager mode only; under autocast the in-place sum keeps the target's dtype, as
torchvision's `out += identity` does.
"""

from __future__ import annotations

import operator

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

SHAPE = "blockgraph_shape"
"""fx node meta key: the per-sample output shape of a node that ends a block."""

_FRESH_MODULES = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.Linear, nn.GroupNorm, nn.LayerNorm)
_FRESH_FUNCTIONS = {operator.add, operator.mul, torch.add, torch.mul, torch.cat}
_INPLACE_ACTIVATIONS = {torch.relu: (torch.relu_, {}), F.relu: (torch.relu_, {}),
                        F.relu6: (F.relu6, {"inplace": True}), F.leaky_relu: (F.leaky_relu, {"inplace": True})}


def _fresh(node: torch.fx.Node, root: nn.Module) -> bool:
    """Made by an op whose backward does not read its own output, into a new tensor."""
    if node.op == "call_module":
        return isinstance(root.get_submodule(node.target), _FRESH_MODULES)
    if node.op == "call_function":
        return node.target in _FRESH_FUNCTIONS
    return node.op == "call_method" and node.target == "add_"  # an earlier rewrite: still a fresh tensor


def _writable(node, root: nn.Module) -> bool:
    return isinstance(node, torch.fx.Node) and len(node.users) == 1 and _fresh(node, root)


def make_inplace(graph: torch.fx.Graph, root: nn.Module) -> int:
    """Rewrite the safe additions and activations of `graph` in place; returns how many."""
    rewritten = 0
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        if node.target is operator.add and len(node.args) == 2 and not node.kwargs:
            a, b = node.args
            shapes = [getattr(x, "meta", {}).get(SHAPE) for x in (a, b)]
            if shapes[0] is None or shapes[0] != shapes[1]:
                continue
            node.meta[SHAPE] = shapes[0]
            target, other = (a, b) if _writable(a, root) else (b, a) if _writable(b, root) else (None, None)
            if target is None or other is target:
                continue
            node.op, node.target, node.args = "call_method", "add_", (target, other)
            rewritten += 1
        elif node.target in _INPLACE_ACTIVATIONS and node.args and _writable(node.args[0], root):
            if node.target is F.leaky_relu and len(node.args) > 2 or node.target is F.relu6 and len(node.args) > 1:
                continue  # an `inplace` given positionally: leave as written
            fn, extra = _INPLACE_ACTIVATIONS[node.target]
            node.target, node.kwargs = fn, {**node.kwargs, **extra}
            rewritten += 1
    return rewritten
