"""Checked graph -> per-node numbers: parameters, MACs, receptive field, activation memory.

Parameters are counted by building each node's module on PyTorch's meta device, which
allocates no memory, so the counts are exactly what `build` will create. Identical nodes
(repeats) are counted once and reused.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from .blocks.base import Shape
from .errors import Problem
from .graph import Graph, check, resolve_ref
from .spec import Spec

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass
class NodeStats:
    id: str
    op: str
    inputs: list[str]
    shape: Shape
    params: int
    """Trainable parameters."""
    buffers: int
    """Non-trainable state (batch-norm running statistics)."""
    macs: int
    rf: int
    """Receptive field: input pixels (along one axis) that can affect one output value. Past an
    upsampling it is rounded up from exact fractions and is an estimate (the arithmetic assumes
    evenly spaced outputs, which a deconv with k > stride does not give)."""
    jump: int | float
    """Effective stride: input pixels between neighbouring outputs. It grows with strides and
    shrinks with upsampling (upsample, deconv, pixel_shuffle, interpolate divide it by their scale), so a
    decoder back at full resolution has jump 1 again; a fraction (0.5) only for maps larger
    than the input."""
    activation_bytes: int
    """Bytes of this node's output for the analysis batch size and dtype."""
    group: tuple[str, ...] = ()
    line: int = 0
    measured: bool = False
    """The shape and MACs come from a meta-device trial run (a plugin without a shape rule)."""
    regions: int = 1
    """Rows per image: R after a region op (roi_align ...), whose `shape` is then per region;
    `macs` and `activation_bytes` already count all R regions of an image."""


@dataclass
class Analysis:
    """What `compiler.analyze` returns: the checked graph and its numbers."""

    spec: Spec
    graph: Graph
    nodes: list[NodeStats]
    batch: int = 1
    dtype: str = "float32"
    warnings: list[Problem] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def buffers(self) -> int:
        return sum(n.buffers for n in self.nodes)

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes)

    @property
    def weight_bytes(self) -> int:
        return (self.params + self.buffers) * DTYPE_BYTES[self.dtype]

    @property
    def activation_bytes(self) -> int:
        return sum(n.activation_bytes for n in self.nodes)

    def node(self, node_id: str) -> NodeStats:
        return next(n for n in self.nodes if n.id == node_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "description": self.spec.description,
            "reference": self.spec.reference,
            "inputs": {k: list(v) for k, v in self.spec.inputs.items()},
            "input_dtypes": {k: self.spec.dtype(k) for k in self.spec.inputs},
            "outputs": {o: list(self.graph.shapes[o]) for o in self.graph.outputs},
            "batch": self.batch,
            "dtype": self.dtype,
            "nodes": [{**asdict(n), "shape": list(n.shape), "group": list(n.group)} for n in self.nodes],
            "totals": {"params": self.params, "buffers": self.buffers, "macs": self.macs,
                       "weight_bytes": self.weight_bytes, "activation_bytes": self.activation_bytes},
            "warnings": [str(w) for w in self.warnings],
        }


_COUNTS: dict = {}
"""Counts of (block, input shapes) pairs seen in this process: blocks are immutable."""


def count_parameters(block, in_shapes: list[Shape], cache: dict = _COUNTS) -> tuple[int, int]:
    """(trainable parameters, buffer values): the block's closed form, else a meta build."""
    closed = block.param_count(list(in_shapes))
    if closed is not None:
        return closed
    key = (block, tuple(in_shapes))
    hit = cache.get(key)
    if hit is None:
        import torch

        with torch.device("meta"):
            module = block.build(list(in_shapes))
        if module is None:
            hit = (0, 0)
        else:
            params = sum(p.numel() for p in module.parameters() if p.requires_grad)
            buffers = sum(b.numel() for b in module.buffers() if b.dtype.is_floating_point)
            hit = (params, buffers)
        cache[key] = hit
    return hit


def analyze(spec: Spec, batch: int = 1, dtype: str = "float32") -> Analysis:
    """Check `spec` (raising SpecError on problems) and compute its per-node numbers."""
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPE_BYTES)}")
    graph = check(spec)
    rf: dict[str, tuple[Fraction, Fraction]] = {name: (Fraction(1), Fraction(1)) for name in spec.inputs}
    rows = []
    by_id = {n.id: n for n in spec.nodes}
    shapes = graph.shapes
    for node_id in graph.order:
        node = by_id[node_id]
        refs = graph.inputs[node_id]
        in_shapes = [shapes[r] for r in refs]
        shape = shapes[node_id]
        try:
            params, buffers = count_parameters(node.block, in_shapes)
        except (RuntimeError, OverflowError, TypeError) as exc:  # a tensor beyond 2**63 bytes on the meta device
            if isinstance(exc, TypeError) and "Overflow" not in str(exc):
                raise
            from .errors import SpecError

            raise SpecError(Problem(node.loc, f"node {node.id!r} ({node.op}) cannot be built: "
                                              f"{str(exc).splitlines()[0]}", node.path)) from None
        spatial = all(len(x) == 3 for x in in_shapes)
        k, s = node.block.window(in_shapes) if spatial else (1, 1)
        skip = getattr(node.block, "shape_only_inputs", ())
        seen = [r for i, r in enumerate(refs) if i not in skip] or refs  # a shortcut sees x, not the branch
        field_in = max(rf[r][0] for r in seen)
        jump_in = max(rf[r][1] for r in seen)
        rf[node_id] = (field_in + (k - 1) * jump_in, jump_in * Fraction(s))  # exact: strides of 1/2
        per = graph.regions.get(node_id, 1)  # the shape is per region after roi_align & co.
        rows.append(NodeStats(
            id=node_id, op=node.op, inputs=refs, shape=shape, params=params, buffers=buffers,
            macs=per * graph.trials.get(node_id, node.block.macs(in_shapes, shape)), rf=math.ceil(rf[node_id][0]),
            jump=_number(rf[node_id][1]),
            activation_bytes=(batch * per * math.prod(shape) * DTYPE_BYTES[dtype]
                              if node.block.allocates(in_shapes) else 0),
            group=node.group, line=node.loc.line, measured=node_id in graph.trials, regions=per))
    return Analysis(spec, graph, rows, batch, dtype, graph.warnings)


def _number(value: Fraction) -> int | float:
    """A jump as the summary shows it: an int when whole (the usual case), else a float."""
    return int(value) if value.denominator == 1 else round(float(value), 4)


@dataclass
class Unit:
    """A row of a collapsed view: one node, or a group (repeat, composite, user block) shown as
    one box with the totals of its members."""

    id: str
    op: str
    kind: str
    """"node", or the group's kind: "repeat", "composite" or "user"."""
    shape: Shape
    params: int
    buffers: int
    macs: int
    rf: int
    jump: int
    activation_bytes: int
    members: list[str]
    """The node ids it stands for (itself for a node)."""
    inputs: list[str]
    """Units (or spec inputs) it reads."""
    parents: tuple[str, ...] = ()
    """Enclosing groups that are expanded in this view (clusters in a rendering)."""
    regions: int = 1
    """Rows per image of its output (R after a region op; the shape is then per region)."""
    repeats: int = 1
    """Copies a repeat stands for (`repeat: 5` of a residual block: 5, of 11 nodes each)."""

    @property
    def caption(self) -> str:
        """The op as a rendering labels the box: `conv`, `residual (11 nodes)`, or for a
        repeat `residual ×5 (55 nodes)` (`conv ×2` when each copy is one node)."""
        if self.kind == "node":
            return self.op
        n = len(self.members)
        count = f" ×{self.repeats}" if self.kind == "repeat" else ""
        return f"{self.op}{count}" + ("" if self.kind == "repeat" and n == self.repeats else f" ({n} nodes)")


def collapse(analysis: Analysis, depth: int | None = None) -> list[Unit]:
    """The analysis with every group nested deeper than `depth` levels shown as one unit
    (depth 0: top-level ids only; None: every node)."""
    spec, graph = analysis.spec, analysis.graph
    stats = {n.id: n for n in analysis.nodes}

    def unit_of(node_id: str) -> str:
        group = spec.node(node_id).group
        return group[depth] if depth is not None and len(group) > depth else node_id

    order: list[str] = []
    members: dict[str, list[str]] = {}
    for n in analysis.nodes:
        u = unit_of(n.id)
        if u not in members:
            members[u] = []
            order.append(u)
        members[u].append(n.id)
    units = []
    for u in order:
        ids = members[u]
        if u in stats and ids == [u]:
            s = stats[u]
            kind, op, out = "node", s.op, u
        else:
            group = spec.groups[u]
            kind, op, out = group.kind, group.op, resolve_ref(spec, u)
            if out not in stats:  # a group whose output is its input (repeat 0 inside)
                out = ids[-1]
        inputs: list[str] = []
        for i in ids:
            for r in graph.inputs[i]:
                src = r if r in spec.inputs else unit_of(r)
                if src != u and src not in inputs:
                    inputs.append(src)
        group_path = spec.node(ids[0]).group
        level = group_path.index(u) if u in group_path else 0
        copies = {spec.node(i).group[level + 1] if len(spec.node(i).group) > level + 1 else i for i in ids}
        parents = tuple(g for g in group_path[: (depth if depth is not None else len(group_path))] if g != u)
        o = stats[out]
        units.append(Unit(
            id=u, op=op, kind=kind, shape=o.shape,
            params=sum(stats[i].params for i in ids), buffers=sum(stats[i].buffers for i in ids),
            macs=sum(stats[i].macs for i in ids), rf=o.rf, jump=o.jump,
            activation_bytes=sum(stats[i].activation_bytes for i in ids), members=ids, inputs=inputs,
            parents=parents, regions=o.regions, repeats=len(copies) if kind == "repeat" else 1))
    return units
