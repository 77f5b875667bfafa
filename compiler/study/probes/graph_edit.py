"""Reading a compiled spec's fx graph by spec node, and running edited copies of it.

compiler.fx tags every fx node it emits with the spec node it belongs to
(`meta["blockgraph_node"]`: `b1.conv1`, `b1.add`, `gap1`), and the node that gives a spec
node's value (what later nodes read) is its last tagged one, which also carries the node's
per-sample shape (`meta["blockgraph_shape"]`). A probe that must change what the model
computes (lesion: a residual branch set to zero; class_maps: the last feature map returned
too) edits a *copy* of the graph and runs it over the same modules, so compiler/fx.py needs no
probe-specific hook and the model itself is never rewritten.
"""

from __future__ import annotations

import copy

import torch
import torch.fx

from compiler.inplace import SHAPE

NODE = "blockgraph_node"
"""fx node meta key: the spec node id an fx node was emitted for."""


def tagged(graph: torch.fx.Graph, node_id: str) -> list[torch.fx.Node]:
    """The fx nodes emitted for spec node `node_id`, in graph order."""
    return [node for node in graph.nodes if node.meta.get(NODE) == node_id]


def value_node(graph: torch.fx.Graph, node_id: str) -> torch.fx.Node | None:
    """The fx node whose value is spec node `node_id`'s output (None when it emitted none: an
    identity shortcut or an `identity` node passes its input on)."""
    nodes = tagged(graph, node_id)
    shaped = [node for node in nodes if SHAPE in node.meta]
    return (shaped or nodes or [None])[-1]


def input_node(graph: torch.fx.Graph, node_id: str) -> torch.fx.Node | None:
    """The fx value a single-input spec node reads: the first argument of its first fx node."""
    nodes = tagged(graph, node_id)
    if not nodes or not nodes[0].args or not isinstance(nodes[0].args[0], torch.fx.Node):
        return None
    return nodes[0].args[0]


def graph_copy(model: torch.fx.GraphModule) -> torch.fx.Graph:
    """A copy of the model's graph (nodes and their meta) that can be edited freely."""
    return copy.deepcopy(model.graph)


def module_over(model: torch.fx.GraphModule, graph: torch.fx.Graph) -> torch.fx.GraphModule:
    """A GraphModule running `graph` over `model`'s own modules (shared, not copied)."""
    graph.lint()
    return torch.fx.GraphModule(model, graph, class_name=type(model).__name__)
