"""Graph check: unknown inputs, cycles, unused nodes, shape inference and its messages."""

from __future__ import annotations

import pytest
import torch

import compiler
from compiler import SpecError
from compiler.graph import check


def make(nodes: str, outputs: str = "") -> str:
    return f"blockgraph: 1\nname: g\ninputs: {{x: [3, 32, 32]}}\nnodes:\n{nodes}{outputs}"


def check_errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        compiler.analyze(compiler.load(text))
    return [str(e) for e in info.value.errors]


def test_cycle_lists_the_loop():
    (msg,) = check_errors(make("  - {id: a, op: conv, out: 3, in: c}\n  - {id: b, op: conv, out: 3}\n"
                               "  - {id: c, op: conv, out: 3}\n"))
    assert "cycle" in msg and ("a -> b -> c -> a" in msg or "b -> c -> a -> b" in msg or "c -> a -> b -> c" in msg)


def test_self_loop():
    (msg,) = check_errors(make("  - {id: a, op: add, in: [x, a]}\n"))
    assert "node 'a' reads its own output" in msg and msg.startswith("<string>:5:30: nodes[0].in:")


def test_unknown_input_suggests_a_name():
    (msg,) = check_errors(make("  - {id: stem, op: conv, out: 3}\n  - {id: b, op: conv, in: stme, out: 3}\n"))
    assert msg.startswith("<string>:6:27: nodes[1].in:") and "did you mean 'stem'?" in msg


def test_unused_nodes_are_warnings():
    spec = compiler.load(make("  - {id: a, op: conv, out: 3}\n  - {id: dead, op: conv, in: x, out: 3, repeat: 2}\n"
                              "  - {id: b, op: conv, in: a, out: 3}\n"))
    warnings = [str(w) for w in compiler.analyze(spec).warnings]
    assert warnings == ["<string>:6:5: warning: nodes[1]: node 'dead' (conv) is not used by any output"]


def test_add_mismatch_names_both_inputs_and_suggests_projection():
    (msg,) = check_errors(make("  - {id: stem, op: conv, out: 64}\n  - {id: conv3, op: conv, out: 256}\n"
                               "  - {id: add1, op: add, in: [conv3, stem]}\n"))
    assert msg == ("<string>:7:5: nodes[2]: node 'add1' (add): input shapes differ: conv3 gives [256, 32, 32], "
                   "stem gives [64, 32, 32]; a 1x1 conv projection on one of them would fix this")


def test_concat_spatial_mismatch():
    (msg,) = check_errors(make("  - {id: a, op: conv, out: 4}\n  - {id: b, op: maxpool, k: 2}\n"
                               "  - {id: c, op: concat, in: [a, b]}\n"))
    assert "a gives [4, 32, 32], b gives [4, 16, 16]" in msg


def test_shapes_shrink_to_nothing():
    (msg,) = check_errors(make("  - {op: maxpool, k: 2, repeat: 6}\n"))
    assert "maxpool1.5" in msg and "does not fit the 1x1 input" in msg


def test_errors_downstream_of_a_failure_are_not_repeated():
    msgs = check_errors(make("  - {id: a, op: linear, out: 4}\n  - {id: b, op: linear, out: 4}\n"))
    assert len(msgs) == 1 and "add {op: flatten}" in msgs[0]


def test_arity():
    (msg,) = check_errors(make("  - {id: a, op: add}\n"))
    assert "takes at least 2 input(s), got 1" in msg


def test_stacked_3x3_receptive_fields():
    spec = compiler.load(make("  - {id: c, op: conv, out: 4, k: 3, repeat: 3}\n  - {id: p, op: maxpool, k: 2}\n"
                              "  - {id: d, op: conv, out: 4, k: 3}\n"))
    rows = {n.id: (n.rf, n.jump) for n in compiler.analyze(spec).nodes}
    assert rows["c.0"] == (3, 1) and rows["c.1"] == (5, 1) and rows["c.2"] == (7, 1)
    assert rows["p"] == (8, 2) and rows["d"] == (12, 2)


def test_reserved_names_are_those_of_the_installed_torch():
    """compiler.reserved writes torch's attribute names out (validation does not import torch);
    they must cover what this torch uses, or a clash would surface only when building."""
    import re

    import torch.fx
    from torch import nn

    from compiler.reserved import GRAPH_MODULE_ATTRIBUTES, MODULE_ATTRIBUTES

    def names(*sources):
        found = set().union(*(set(dir(s)) | set(vars(s)) for s in sources))
        return {n for n in found if re.fullmatch(r"[A-Za-z_]\w*", n) and not (n.startswith("__") and n.endswith("__"))
                and not n.startswith("___")}  # torch.compile patches nn.Module with ___needs_generation_tag_patch

    module = names(nn.Module, nn.Module())
    assert module <= MODULE_ATTRIBUTES, f"add to MODULE_ATTRIBUTES: {sorted(module - MODULE_ATTRIBUTES)}"
    graph_module = names(torch.fx.GraphModule, torch.fx.GraphModule(nn.Module(), torch.fx.Graph())) - module
    assert graph_module <= GRAPH_MODULE_ATTRIBUTES, f"add: {sorted(graph_module - GRAPH_MODULE_ATTRIBUTES)}"


@pytest.mark.parametrize("node_id, taken, where", [
    ("double", "double", "torch.nn.Module"),  # found by fuzzing: raised KeyError when building
    ("training", "training", "torch.nn.Module"), ("graph", "graph", "torch.fx.GraphModule"),
    ("meta", "meta", "torch.fx.GraphModule"), ("_modules", "_modules", "torch.nn.Module"),
])
def test_a_weighted_node_named_like_a_module_attribute_fails_validation(node_id, taken, where):
    text = f"""\
blockgraph: 1
name: attrs
inputs: {{image: [3, 8, 8]}}
nodes:
  - {{id: {node_id}, op: conv, out: 4}}
  - {{op: gap}}
"""
    with pytest.raises(compiler.SpecError) as info:
        check(compiler.load(text))
    problem = info.value.first
    assert (problem.loc.line, problem.loc.col) == (5, 5)
    assert f"id {taken!r} is the name of a {where} attribute" in problem.message
    with pytest.raises(compiler.SpecError):
        compiler.build(text, device="meta")  # build refuses it too (it checks the graph first)
    assert compiler.build(text.replace(f"id: {node_id},", f"id: {node_id}_,"), device="meta") is not None


def test_module_attribute_names_are_fine_for_stateless_nodes():
    text = """\
blockgraph: 1
name: attrs
inputs: {image: [3, 8, 8]}
nodes:
  - {id: c, op: conv, out: 4}
  - {id: train, op: gap}
  - {id: graph, op: flatten}
"""
    model = compiler.build(text)
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 4)


def test_a_cycle_through_the_sequential_default_names_the_implicit_edge():
    (msg,) = check_errors(make("  - {id: head, op: conv, out: 3, in: later}\n  - {id: later, op: conv, out: 3}\n"
                               "  - {op: gap}\n"))
    assert msg == ("<string>:5:38: nodes[0].in: the graph has a cycle: head -> later -> head; the edge head -> later "
                   "is implicit: 'later' has no `in:`, so it reads the node written before it, 'head'; give 'later' "
                   "an `in:` naming what it reads")
    # every edge written out: nothing implicit to name
    (msg,) = check_errors(make("  - {id: a, op: conv, out: 3, in: b}\n  - {id: b, op: conv, out: 3, in: a}\n"))
    assert "implicit" not in msg and msg.endswith("a node may only read nodes that do not depend on it")


def test_errors_of_a_generated_part_name_the_users_node_first():
    text = "blockgraph: 1\nname: g\ninputs: {x: [16]}\nnodes:\n  - {id: block, op: residual, out: 8}\n"
    (msg,) = check_errors(text)
    assert msg == ("<string>:5:5: nodes[0]: node 'block' (residual), its part 'conv1' (conv): conv expects a feature "
                   "map [channels, height, width]. Received: input shape [16]")
    spec = compiler.load(text.replace("[16]", "[3, 8, 8]"))
    assert {n.id: n.owner for n in spec.nodes}["block.conv1"] == "block"
    assert all(n.owner == "block" for n in spec.nodes)


def test_a_dualpath_stage_without_proj_says_so():
    text = ("blockgraph: 1\nname: g\ninputs: {x: [16, 8, 8]}\nnodes:\n"
            "  - {id: s, op: dualpath, r: 8, out: 16, inc: 4, repeat: 2}\n")
    (msg,) = check_errors(text)  # res_in and dense_in both fail: one message for the user's node
    assert msg.startswith("<string>:5:5: nodes[0]: node 's.0' (dualpath): a dualpath block of type normal reads its "
                          "input as two paths, [residual (16 channels) | dense], so it needs more than out=16 input "
                          "channels, got 16; the first block of a stage needs `type: proj`")
    assert msg.endswith("out + 2*inc = 24 channels: with `repeat`, write `first: {type: proj}`")
    compiler.analyze(compiler.load(text.replace("repeat: 2}", "repeat: 2, first: {type: proj}}")))
