"""Which blocks of a spec the lesion probe can delete, and how one is deleted from an fx graph.

Veit et al. 2016 (*Residual Networks Behave Like Ensembles of Relatively Shallow Networks*)
delete a residual block at test time by dropping its residual branch: y = act(shortcut(x) + F(x))
becomes act(shortcut(x)). Here that is exact on the compiled graph: the sum's branch-side
argument is replaced by `torch.zeros_like` of it, so the block computes act(shortcut(x) + 0),
with whatever activation follows the sum, and a downsampling block keeps its projection
shortcut (its 1x1 conv and norm), as in the paper. A residual `scale:` multiplies the branch in
a node of the block's sum (`b.add`), which is then the branch side zeroed.

A plain net has no shortcut to fall back on; deleting a layer of it (as Veit et al. do to
VGG) means letting its input pass in its place, which only exists when the layer's output has
its input's shape. A conv layer of another shape is listed with the reason it cannot be
deleted. Which blocks are candidates is read from the spec and its checked graph (shapes,
groups), so `applies_to` answers before anything is built; the fx-level edit may still refuse
a block whose branch and shortcut are one value (a residual of an identity body).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.fx

from compiler.blocks.base import fmt

from .graph_edit import NODE, input_node, tagged, value_node

BlockChoice = Literal["auto", "residual", "layers"]
"""The lesion probe's `blocks:` option: residual blocks, plain conv layers, or residual blocks
when the spec has any and plain conv layers otherwise."""


class LesionError(ValueError):
    """A block that cannot be deleted from the compiled graph, and why."""


@dataclass(frozen=True)
class LesionBlock:
    name: str
    """The spec's id of the block: a residual node (`stage2.0`) or a conv layer (`conv3.1`)."""
    kind: Literal["residual", "layer"]
    stride: int
    """How much the block shrinks the feature map (2 for a downsampling block, else 1)."""
    reason: str | None = None
    """Why it cannot be deleted (None: it can)."""


def _stride(before: tuple, after: tuple) -> int:
    if len(before) == 3 and len(after) == 3 and after[1] > 0:
        return max(1, round(before[1] / after[1]))
    return 1


def residual_blocks(spec: Any, graph: Any) -> list[LesionBlock]:
    """Every residual node of the spec (each copy of a repeated one), in graph order."""
    position = {node_id: i for i, node_id in enumerate(graph.order)}
    found = []
    for group in spec.groups.values():
        add, shortcut = f"{group.id}.add", f"{group.id}.shortcut"
        if group.kind != "composite" or group.op != "residual" or add not in position or shortcut not in position:
            continue
        found.append((position[add], LesionBlock(name=group.id, kind="residual",
                                                 stride=_stride(graph.in_shapes(shortcut)[0], graph.shapes[add]))))
    return [block for _, block in sorted(found, key=lambda pair: pair[0])]


def plain_layers(spec: Any, graph: Any) -> list[LesionBlock]:
    """Every conv node the user wrote (not one a composite block made), in graph order; those
    whose output shape is not their input's carry the reason they cannot be deleted."""
    found = []
    for node_id in graph.order:
        node = spec.node(node_id)
        if node.op != "conv" or node.owner or len(graph.inputs[node_id]) != 1:
            continue
        before, after = graph.in_shapes(node_id)[0], graph.shapes[node_id]
        reason = None if before == after else (f"its output {fmt(after)} is not its input's shape {fmt(before)}: "
                                               "no identity can stand in for it")
        found.append(LesionBlock(name=node_id, kind="layer", stride=_stride(before, after), reason=reason))
    return found


def lesion_blocks(spec: Any, graph: Any, choice: BlockChoice) -> list[LesionBlock]:
    """The candidate blocks `choice` names (with `auto`, residual blocks if the spec has any)."""
    if choice == "residual":
        return residual_blocks(spec, graph)
    if choice == "layers":
        return plain_layers(spec, graph)
    return residual_blocks(spec, graph) or plain_layers(spec, graph)


def _is_sum(node: torch.fx.Node) -> bool:
    if node.op == "call_function":
        return node.target in (operator.add, torch.add)
    return node.op == "call_method" and node.target in ("add", "add_")


def _delete_residual(graph: torch.fx.Graph, block: LesionBlock) -> None:
    sums = [node for node in tagged(graph, f"{block.name}.add") if _is_sum(node)]
    if not sums:
        raise LesionError(f"residual block {block.name!r} has no sum in the compiled graph")
    total = sums[-1]
    inside, shortcut = f"{block.name}.", f"{block.name}.shortcut"
    branch = [arg for arg in dict.fromkeys(total.args[:2]) if isinstance(arg, torch.fx.Node)
              and (arg.meta.get(NODE) or "").startswith(inside) and arg.meta.get(NODE) != shortcut]
    if len(branch) != 1:
        raise LesionError(f"residual block {block.name!r}: its branch is not a value of its own (an identity "
                          "body?), so there is nothing to set to zero")
    with graph.inserting_before(total):
        zeros = graph.call_function(torch.zeros_like, (branch[0],))
    total.replace_input_with(branch[0], zeros)


def _delete_layer(graph: torch.fx.Graph, block: LesionBlock) -> None:
    first, value, source = tagged(graph, block.name), value_node(graph, block.name), input_node(graph, block.name)
    if value is None or source is None:
        raise LesionError(f"layer {block.name!r} has no value of its own in the compiled graph")
    # the copy is taken before the layer runs: what the layer did to its input in place is not seen
    with graph.inserting_before(first[0]):
        passed = graph.call_function(torch.clone, (source,))
    value.replace_all_uses_with(passed)


def delete_block(graph: torch.fx.Graph, block: LesionBlock) -> None:
    """Delete `block` from `graph` (a copy: graph_edit.graph_copy), or raise LesionError."""
    if block.reason is not None:
        raise LesionError(block.reason)
    if block.kind == "residual":
        _delete_residual(graph, block)
    else:
        _delete_layer(graph, block)
