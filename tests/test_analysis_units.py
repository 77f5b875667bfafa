"""Collapsed units say what they stand for: a repeat its copies and its nodes, a composite its
nodes (the graph's boxes and the designer's summary use these captions)."""

from __future__ import annotations

import compiler
from compiler.analysis import collapse

TEXT = """blockgraph: 1
name: r
inputs: {x: [3, 16, 16]}
nodes:
  - {id: stem, op: conv, out: 8}
  - {id: blocks, op: residual, out: 8, repeat: 5}
  - {id: one, op: residual, out: 8}
  - {id: pair, op: conv, out: 8, repeat: 2}
"""


def test_a_repeat_counts_its_copies_and_its_nodes():
    analysis = compiler.analyze(compiler.load(TEXT))
    ids = [n.id for n in analysis.nodes]
    per_block = sum(1 for i in ids if i.startswith("one."))  # one residual block's nodes
    units = {u.id: u for u in collapse(analysis, 0)}
    assert len(units["blocks"].members) == 5 * per_block == sum(1 for i in ids if i.startswith("blocks."))
    assert (units["blocks"].repeats, units["blocks"].caption) == (5, f"residual ×5 ({5 * per_block} nodes)")
    assert (units["one"].repeats, units["one"].caption) == (1, f"residual ({per_block} nodes)")
    assert (units["pair"].repeats, units["pair"].caption) == (2, "conv ×2")  # one node a copy
    assert units["stem"].caption == "conv"
    opened = {u.id: u for u in collapse(analysis, 1)}
    assert opened["blocks.3"].caption == f"residual ({per_block} nodes)" and opened["blocks.3"].repeats == 1


def test_the_graph_labels_a_repeated_block_with_both_numbers():
    from compiler.render import to_graphviz

    analysis = compiler.analyze(compiler.load(TEXT))
    per_block = sum(1 for n in analysis.nodes if n.id.startswith("one."))
    dot = to_graphviz(analysis, depth=0).source
    assert f"residual ×5 ({5 * per_block} nodes)" in dot and "conv ×2<" in dot
    assert f"×{5 * per_block} nodes" not in dot  # the old label, which hid the repeat
