"""Spec -> checked graph: networkx wiring, cycles, unused nodes, static shapes.

Nothing here allocates a weight: shapes come from each block's `out_shape` rule, evaluated
in topological order, so a mismatch deep in a network is found in milliseconds, with the
node, its inputs and their shapes in the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from .blocks import REGISTRY
from .blocks.base import Block, Shape, fmt
from .errors import Collector, Loc, Problem, ShapeError, SpecError
from .reserved import GRAPH_MODULE_ATTRIBUTES, clash
from .spec import Node, Spec, did_you_mean


@dataclass
class Graph:
    """The checked graph of a spec: wiring, order and the shape of every node's output."""

    spec: Spec
    dag: nx.DiGraph
    order: list[str]
    """Node ids in a topological order (inputs excluded)."""
    inputs: dict[str, list[str]]
    """Node id -> the ids (or input names) it reads, aliases resolved."""
    shapes: dict[str, Shape]
    """Input names and node ids -> per-sample output shape."""
    outputs: list[str]
    """Output node ids, aliases resolved."""
    warnings: list[Problem] = field(default_factory=list)
    trials: dict[str, int] = field(default_factory=dict)
    """Nodes whose shape came from a meta-device trial run (plugin blocks without a shape
    rule) -> the MACs counted during that run."""
    regions: dict[str, int] = field(default_factory=dict)
    """Input names and node ids -> rows per image: 1, or the declared number of boxes R for
    a node after a region op (roi_align ...), whose batch axis holds B*R regions."""
    boxes: list[str] = field(default_factory=list)
    """Inputs read as boxes ([R, 4] per sample, x0, y0, x1, y1) by a region op."""

    def in_shapes(self, node_id: str) -> list[Shape]:
        return [self.shapes[r] for r in self.inputs[node_id]]


def resolve_ref(spec: Spec, ref: str) -> str:
    seen = set()
    while ref in spec.aliases and ref not in seen:
        seen.add(ref)
        ref = spec.aliases[ref]
    return ref


def check(spec: Spec) -> Graph:
    """Wire and shape-check `spec`; raise SpecError with every located problem."""
    out = Collector(list(spec.warnings))
    dag = nx.DiGraph()
    known = set(spec.inputs)
    for name in spec.inputs:
        dag.add_node(name, kind="input")
    by_id: dict[str, Node] = {}
    for node in spec.nodes:
        by_id[node.id] = node
        dag.add_node(node.id, kind="node")
        _check_module_name(node, out)
    known |= set(by_id) | set(spec.aliases)
    inputs: dict[str, list[str]] = {}
    for node in spec.nodes:
        resolved = []
        for ref, loc in zip(node.inputs, node.input_locs):
            target = resolve_ref(spec, ref)
            if target not in spec.inputs and target not in by_id:
                out.error(loc, f"node {node.id!r} reads {ref!r}, which is neither a node nor an input"
                          f"{did_you_mean(ref, sorted(known))}", node.path + ".in")
                continue
            resolved.append(target)
            dag.add_edge(target, node.id)
        inputs[node.id] = resolved
    outputs = []
    for name, loc in zip(spec.outputs, spec.output_locs):
        target = resolve_ref(spec, name)
        if target not in by_id and target not in spec.inputs:
            out.error(loc, f"output {name!r} is not a node{did_you_mean(name, sorted(known))}", "outputs")
        else:
            outputs.append(target)
    _report_cycles(dag, by_id, out)
    out.raise_if_errors()
    # ties broken by spec order, so modules, state_dict keys and summaries follow the file
    position = {name: i for i, name in enumerate(list(spec.inputs) + [n.id for n in spec.nodes])}
    order = [n for n in nx.lexicographical_topological_sort(dag, key=position.__getitem__) if n in by_id]
    _report_unused(dag, spec, by_id, outputs, out)
    for node_id in order:
        _check_token_ids(by_id[node_id], inputs[node_id], spec, out)
    shapes = dict(spec.inputs)
    trials: dict[str, int] = {}
    regions: dict[str, int] = {name: 1 for name in spec.inputs}
    boxes: set[str] = set()
    for node_id in order:
        node = by_id[node_id]
        if len(inputs[node_id]) != len(node.inputs):
            continue  # an unknown input was reported already
        if any(r not in shapes for r in inputs[node_id]):
            continue  # an upstream shape error was reported already
        shape = _infer(node, inputs[node_id], shapes, out, trials, spec)
        if shape is not None:
            shapes[node_id] = shape
            _count_regions(node, inputs[node_id], shapes, regions, boxes, out)
    out.raise_if_errors()
    return Graph(spec, dag, order, inputs, shapes, outputs, out.warnings, trials, regions,
                 [b for b in spec.inputs if b in boxes])


def _check_module_name(node: Node, out: Collector) -> None:
    """A node with weights becomes an attribute of the built module, so its id (each part of
    a dotted one) must not be a name torch.nn.Module already uses (found by fuzzing: `id:
    double` failed only when building)."""
    if type(node.block).build is Block.build:
        return  # stateless: no module is installed under its id
    taken = clash(node.id)
    if taken is not None:
        where = "torch.fx.GraphModule" if taken in GRAPH_MODULE_ATTRIBUTES else "torch.nn.Module"
        out.error(node.loc, f"id {taken!r} is the name of a {where} attribute ({where.split('.')[-1]}.{taken}), "
                  f"so the built module cannot hold a node of that name; choose another id, e.g. "
                  f"{taken.strip('_') or 'node'}_", node.path)


def _count_regions(node: Node, refs: list[str], shapes: dict[str, Shape], regions: dict[str, int],
                   boxes: set[str], out: Collector) -> None:
    """Rows per image of a node's output: a region op gives R (its boxes input's first axis);
    any other node keeps its inputs' count, which must agree (per-image and per-region tensors
    have different batch sizes at run time)."""
    block = node.block
    skip = set(getattr(block, "shape_only_inputs", ()))
    at = getattr(block, "regions_input", None)
    counts = {r: regions.get(r, 1) for i, r in enumerate(refs) if i not in skip and i != at}
    if at is not None:
        box_ref = refs[at]
        boxes.add(box_ref)
        if any(c != 1 for c in counts.values()) or regions.get(box_ref, 1) != 1:
            out.error(node.loc, f"node {node.id!r} ({block.op}) reads regions of a per-image feature map, but "
                      f"its input is already per region ({', '.join(f'{r}: {c} per image' for r, c in counts.items())}"
                      f"); give it the backbone's map, before any roi_align / roi_pool / crop_regions", node.path)
        regions[node.id] = shapes[box_ref][0]
        return
    distinct = sorted(set(counts.values()))
    if len(distinct) > 1:
        what = ", ".join(f"{r} is {'per image' if c == 1 else f'per region ({c} per image)'}"
                         for r, c in counts.items())
        out.error(node.loc, f"node {node.id!r} ({block.op}) mixes per-image and per-region inputs ({what}); "
                  f"their batch sizes differ at run time (B against B*R)", node.path)
    regions[node.id] = distinct[-1] if distinct else 1


def reads_token_ids(block: Block) -> bool:
    """Whether the op reads integer token ids rather than values (`embedding`: its
    `index_bound_field` bounds them)."""
    return getattr(block, "index_bound_field", None) is not None


def _check_token_ids(node: Node, refs: list[str], spec: Spec, out: Collector) -> None:
    """An int64 input holds token ids, which only an id-reading op takes, and such an op takes
    nothing else: PyTorch would fail at run time (an index of floats), or compute on ids as
    if they were values (a linear over token numbers), neither of which a shape shows."""
    block = node.block
    skip = set(getattr(block, "shape_only_inputs", ()))
    for i, ref in enumerate(refs):
        if i in skip:
            continue
        is_ids = ref in spec.inputs and spec.dtype(ref) == "int64"
        if reads_token_ids(block) and not is_ids:
            what = (f"a float32 input: {block.op} reads integer token ids; declare it "
                    f"`{ref}: {{shape: {list(spec.inputs[ref])}, dtype: int64}}`" if ref in spec.inputs else
                    f"a node's float32 output: {block.op} reads integer token ids straight from an input; "
                    f"declare one, e.g. `tokens: {{shape: [T], dtype: int64}}`, and give it to {node.id!r}")
            out.error(node.loc, f"{who(node, spec)} reads {ref!r}, {what}", node.path)
        elif is_ids and not reads_token_ids(block):
            readers = sorted(op for op, cls in REGISTRY.items() if reads_token_ids(cls))
            out.error(node.loc, f"{who(node, spec)} reads {ref!r}, an int64 input of token ids: only "
                      f"{' or '.join(readers)} reads ids (start with `op: {readers[0]}`), or declare "
                      f"{ref!r} as a shape list (float32 values)", node.path)


def trial_run(block, in_shapes: list[Shape]) -> tuple[Shape, int]:
    """Shape and MACs of a block without a shape rule, from running its module on the meta
    device (no memory, no arithmetic) under PyTorch's FLOP counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        module = block.build(list(in_shapes))
        xs = [torch.empty(1, *s) for s in in_shapes]
        with FlopCounterMode(display=False) as counter:
            y = module(*xs) if module is not None else xs[0]
    return tuple(int(d) for d in y.shape[1:]), counter.get_total_flops() // 2


def who(node: Node, spec: Spec) -> str:
    """How a message names `node`: "node 'conv1' (conv)" for the user's own nodes; for a node a
    composite made, the user's node first and then the part ("node 'stage1.0' (dualpath), its
    part 'res_in' (slice)"), since the user wrote the first and never saw the second."""
    if not node.owner:
        return f"node {node.id!r} ({node.op})"
    group = spec.groups.get(node.owner)
    part = node.id[len(node.owner) + 1:] if node.id.startswith(node.owner + ".") else node.id
    return f"node {node.owner!r} ({group.op if group else 'composite'}), its part {part!r} ({node.op})"


def _explained(node: Node, spec: Spec, in_shapes: list[Shape]) -> str | None:
    """The owning composite's own account of why a part it made cannot take its inputs."""
    group = spec.groups.get(node.owner) if node.owner else None
    explain = getattr(group.block, "explain", None) if group is not None else None
    if explain is None:
        return None
    text = explain(node.id[len(node.owner) + 1:], in_shapes)
    return f"node {node.owner!r} ({group.op}): {text}" if text else None


def _infer(node: Node, refs: list[str], shapes: dict[str, Shape], out: Collector,
           trials: dict[str, int], spec: Spec) -> Shape | None:
    block = node.block
    in_shapes = [shapes[r] for r in refs]
    name = who(node, spec)
    n, lo, hi = len(refs), block.min_inputs, block.max_inputs
    if n < lo or (hi is not None and n > hi):
        want = f"exactly {lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
        out.error(node.loc, f"{name} takes {want} input(s), got {n}: "
                  f"{', '.join(refs) or 'none'}", node.path)
        return None
    try:
        if block.names_inputs:
            shape = block.out_shape(in_shapes, names=refs)
        else:
            shape = block.out_shape(in_shapes)
    except NotImplementedError:  # a plugin block without a shape rule: measure it
        try:
            shape, trials[node.id] = trial_run(block, in_shapes)
        except Exception as exc:  # the plugin's module failed on these inputs
            gives = ", ".join(f"{r} gives {fmt(s)}" for r, s in zip(refs, in_shapes))
            out.error(node.loc, f"{name} has no shape rule and its trial run on "
                      f"the meta device failed ({gives}): {type(exc).__name__}: {exc}", node.path)
            return None
    except ShapeError as exc:
        out.error(node.loc, _explained(node, spec, in_shapes) or f"{name}: {exc}", node.path)
        return None
    except (ValueError, TypeError, ArithmeticError) as exc:
        gives = ", ".join(f"{r} gives {fmt(s)}" for r, s in zip(refs, in_shapes))
        out.error(node.loc, _explained(node, spec, in_shapes) or f"{name} cannot take its input ({gives}): {exc}",
                  node.path)
        return None
    if any(d <= 0 for d in shape):
        out.error(node.loc, f"{name}: output shape {fmt(shape)} has an empty dimension; "
                  f"input {fmt(in_shapes[0])}", node.path)
        return None
    return tuple(int(d) for d in shape)


def _report_cycles(dag: nx.DiGraph, by_id: dict[str, Node], out: Collector) -> None:
    if nx.is_directed_acyclic_graph(dag):
        return
    reported: set[frozenset] = set()
    for component in nx.strongly_connected_components(dag):
        if len(component) == 1:
            (only,) = component
            if not dag.has_edge(only, only):
                continue
            node = by_id[only]
            loc = next((l for r, l in zip(node.inputs, node.input_locs) if r == only), node.loc)
            out.error(loc, f"node {only!r} reads its own output (a cycle of one)", node.path + ".in")
            continue
        key = frozenset(component)
        if key in reported:
            continue
        reported.add(key)
        # start the loop at the node written first, and point at its `in:` entry that closes it
        position = {n: i for i, n in enumerate(by_id)}
        start = min(component, key=lambda n: position.get(n, -1))
        cycle = nx.find_cycle(dag.subgraph(component), source=start)
        names = [u for u, _ in cycle] + [cycle[0][0]]
        closing = cycle[-1][0]  # the node `start` reads
        node = by_id[start]
        loc = next((l for r, l in zip(node.inputs, node.input_locs) if r == closing or
                    r.split(".")[0] == closing.split(".")[0]), node.loc)
        out.error(loc, "the graph has a cycle: " + " -> ".join(names)
                  + (_implicit_edges(cycle, by_id) or "; a node may only read nodes that do not depend on it"),
                  node.path + ".in")


def _implicit_edges(cycle: list[tuple[str, str]], by_id: dict[str, Node]) -> str:
    """The edges of a cycle that no `in:` states: a node without `in:` reads the node written
    before it, which closes a loop the user cannot see in the text (`head` reads `later`, and
    `later`, written next and with no `in:`, reads `head`)."""
    notes = []
    for source, target in cycle:
        node = by_id.get(target)
        if node is not None and node.implicit_input and not node.owner:
            before = by_id[source].owner if source in by_id and by_id[source].owner else source
            notes.append(f"; the edge {before} -> {target} is implicit: {target!r} has no `in:`, so it reads "
                         f"the node written before it, {before!r}; give {target!r} an `in:` naming what it reads")
    return "".join(notes)


def _report_unused(dag: nx.DiGraph, spec: Spec, by_id: dict[str, Node], outputs: list[str],
                   out: Collector) -> None:
    needed: set[str] = set(outputs)
    stack = list(outputs)
    while stack:  # everything the outputs read, directly or not
        for parent in dag.predecessors(stack.pop()):
            if parent not in needed:
                needed.add(parent)
                stack.append(parent)
    reported_groups: set[str] = set()
    for node_id, node in by_id.items():
        if node_id in needed:
            continue
        if node.group:
            if node.group[0] in reported_groups:
                continue
            reported_groups.add(node.group[0])
            node_id = node.group[0]
        out.warn(node.loc, f"node {node_id!r} ({node.op}) is not used by any output", node.path)
    for name, loc in spec.input_locs.items():
        if name not in needed:
            out.warn(loc, f"input {name!r} is not used by any output", f"inputs.{name}")


__all__ = ["Graph", "check", "SpecError", "Loc"]
