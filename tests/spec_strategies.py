"""Specs drawn from the op registry, and the property "a spec that passes the check always
runs" (tests/test_check_means_runs.py; `benchmarks/fuzz.py --property N` runs it long).

The property (`check_runs`): when `compiler.analyze` accepts a spec, `compiler.build` on the
CPU succeeds, a forward pass runs in train mode (and its backward) and in eval mode, every
output's shape is the static one (batch prepended; R rows per image after a region op), and
the module holds the parameters and buffers the analysis counts. When the check refuses, the
error is a `SpecError` whose problems are all located (FILE:LINE:COL).

Why from the registry: each built-in op's pydantic model gives its fields, their types and
their bounds (`annotated_types` metadata), so a new block is drawn without touching this file
(a field type the walker does not know raises, so it is noticed). An op's arguments are one of
its `examples` with up to two fields redrawn, or every field drawn from the model. In a spec
drawn "bad" (1 in 5) a number may sit just outside its bounds (0 for `int > 0`, 1.0 for
`number < 1`, an empty list for `at least 1 item`); elsewhere values stay inside them. Sizes
stay tiny (sizes and channels 1-9) so that a build and a forward take milliseconds.

Generated:
- an input `x` of rank 1, 2 or 3 ([F], [C, L], [C, H, W]; channels 1-8, sizes 1-9 with 1 drawn
  more often, since one-pixel maps are where shape rules break), now and then a second input
  `y`, new inputs of the shapes one of the op's examples takes (sometimes with smaller sizes),
  and a boxes input `rois: [R, 4]` (R = 1-3) as soon as a region op (a block with
  `regions_input`: roi_align, roi_pool, crop_regions) is drawn; at run time the boxes are
  valid boxes inside the image;
- 1-5 nodes: chains (reading the previous node), branches (reading any earlier value), merges
  (ops with no input limit: add, mul, concat, over 2-3 earlier values) and two-input ops
  (interpolate, crop, shortcut); composites (residual, inception, sequence, dense, dualpath ...)
  whose bodies, branches and node lists are chains drawn the same way; a user block under
  `blocks:` with a `$w` parameter, used as an op; outputs: the last node, sometimes an earlier
  one too;
- each node is steered by the ops' own shape rules: ops whose `ranks` take the input are
  preferred, and up to 4 candidates are drawn until one passes the rule (called directly for a
  primitive, through a one-node spec for a composite or a user block). Most specs therefore
  pass the check and reach the build; the oracle is the run, not the rule.

An op that reads token ids (`embedding`) reads a new int64 input of its own
(`{shape: [T], dtype: int64}`, named `<node>_ids`), fed random ids below its `vocab`; no other
op is given such an input, and chains (composite bodies, user blocks) hold only value ops.

Not generated: `vars` expressions, `defaults`, `repeat`, `scaling`, `init` policies, `when`
(tests/test_fuzz.py fuzzes those for crashes); plugin ops (built-in ops only, so the examples
do not depend on what a test session registered); inputs of rank 4 or more; composites inside
composites; batch sizes other than 2 (batch norm in training needs more than one value per
channel: a batch of 1 on [C] is PyTorch's run-time error, which no static check can know).
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Any

import annotated_types as at
import yaml
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import compiler
from compiler import ShapeError, SpecError
from compiler.blocks import REGISTRY, Composite
from compiler.blocks.registry import is_built_in
from fuzz_strategies import located

OPS = sorted(op for op, cls in REGISTRY.items() if is_built_in(cls))
ID_READERS = [op for op in OPS if getattr(REGISTRY[op], "index_bound_field", None)]
"""Ops that read token ids (`embedding`): drawn reading a new int64 input of their own."""
IDS_SUFFIX = "_ids"
"""The name ending of a drawn int64 input, which no value-reading op is given."""
SIMPLE = [op for op in OPS if not issubclass(REGISTRY[op], Composite) and REGISTRY[op].max_inputs == 1
          and op not in ID_READERS]  # chains run on values (inside composites, user blocks too)
MERGES = [op for op in OPS if not issubclass(REGISTRY[op], Composite) and REGISTRY[op].max_inputs is None]
BATCH = 2
CANDIDATES = 4
FLOATS = (-1.0, 0.0, 0.001, 0.1, 0.25, 0.5, 0.9, 1.0, 1.5, 2.0, 16.0)


def dump(data: Any) -> str:
    return yaml.safe_dump(data, default_flow_style=None, sort_keys=False)


def accepts(op: str, rank: int) -> bool:
    ranks = getattr(REGISTRY[op], "ranks", None)
    return ranks is None or rank in ranks


# -- values from a field's type and bounds -------------------------------------------------------

def _limits(metadata) -> dict:
    out = {"lo": None, "lo_open": False, "hi": None, "hi_open": False, "min_len": 0}
    for m in metadata:
        if isinstance(m, at.Gt):
            out.update(lo=m.gt, lo_open=True)
        elif isinstance(m, at.Ge):
            out.update(lo=m.ge)
        elif isinstance(m, at.Lt):
            out.update(hi=m.lt, hi_open=True)
        elif isinstance(m, at.Le):
            out.update(hi=m.le)
        elif isinstance(m, at.MinLen):
            out.update(min_len=m.min_length)
    return out


def _number(draw, kind: type, lim: dict, bad: bool):
    lo, hi = lim["lo"], lim["hi"]
    if bad and draw(st.integers(0, 3)) == 0:  # just outside a bound
        outside = []
        if lo is not None:
            outside.append(lo if lim["lo_open"] else lo - (1 if kind is int else 0.5))
        if hi is not None:
            outside.append(hi if lim["hi_open"] else hi + (1 if kind is int else 0.5))
        if outside:
            return kind(draw(st.sampled_from(outside)))
    if kind is int:
        first = -3 if lo is None else lo + 1 if lim["lo_open"] else lo
        last = first + 8 if hi is None else hi - 1 if lim["hi_open"] else hi
        if last <= 64 and draw(st.integers(0, 7)) == 7:
            return last  # the upper bound itself, where it is small enough to build
        return draw(st.integers(first, min(last, first + 8)))
    values = [v for v in FLOATS + tuple(b for b in (lo, hi) if b is not None)
              if (lo is None or v > lo or (v == lo and not lim["lo_open"]))
              and (hi is None or v < hi or (v == hi and not lim["hi_open"]))]
    return float(draw(st.sampled_from(sorted(set(values)))))


def _is_nodes(annotation) -> bool:
    """dict[str, Any]: one node, as a composite's body takes it."""
    return typing.get_origin(annotation) is dict


def value(draw, annotation, metadata=(), *, bad: bool, shape: tuple | None, depth: int):
    """A value for a field of this type; nodes (composite bodies) are chains drawn on `shape`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    kw = {"bad": bad, "shape": shape, "depth": depth}
    if origin is typing.Annotated:
        return value(draw, args[0], [*args[1:], *metadata], **kw)
    if origin in (typing.Union, types.UnionType):
        return value(draw, draw(st.sampled_from(args)), metadata, **kw)
    if annotation is type(None):
        return None
    if origin is typing.Literal:
        return draw(st.sampled_from(args))
    if annotation is bool:
        return draw(st.booleans())
    if annotation in (int, float):
        return _number(draw, annotation, _limits(metadata), bad)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return [value(draw, a, **kw) for a in args]
    if origin in (tuple, list):
        item, least = args[0], _limits(metadata)["min_len"]
        if _is_nodes(item):  # a list of nodes: a chain
            return chain(draw, shape, draw(st.integers(max(least, 1), 2)), depth=depth + 1)
        if typing.get_origin(item) is list:  # branches: chains on the same input
            return [value(draw, item, **kw) for _ in range(draw(st.integers(max(least, 1), 3)))]
        n = draw(st.integers(max(least - (1 if bad else 0), 0), max(least, 1) + 2))
        return [value(draw, item, **kw) for _ in range(n)]
    if _is_nodes(annotation):
        return chain(draw, shape, 1, depth=depth + 1)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_args(draw, annotation, **kw)
    raise TypeError(f"spec_strategies cannot draw a value of type {annotation!r}: teach `value` this type")


def model_args(draw, cls: type[BaseModel], *, bad: bool, shape, depth: int):
    """Every required field and about a third of the others; a nested option model with only
    its `kind` (act, norm) is written by name now and then, as specs do (`norm: batch`)."""
    args = {}
    for name, field in cls.model_fields.items():
        if name != "op" and (field.is_required() or draw(st.integers(0, 2)) == 0):
            args[name] = value(draw, field.annotation, field.metadata, bad=bad, shape=shape, depth=depth)
    if "op" not in cls.model_fields and list(args) == ["kind"] and draw(st.booleans()):
        return args["kind"]
    return args


def op_args(draw, op: str, *, bad: bool, shape, depth: int = 0) -> dict:
    """An example's arguments with up to two fields redrawn (2 in 3), or all drawn afresh."""
    cls = REGISTRY[op]
    fields = [n for n in cls.model_fields if n != "op"]
    if cls.examples and draw(st.integers(0, 2)):
        args = copy.deepcopy(draw(st.sampled_from(cls.examples))[0])
        for name in draw(st.lists(st.sampled_from(fields), max_size=2, unique=True)) if fields else []:
            field = cls.model_fields[name]
            args[name] = value(draw, field.annotation, field.metadata, bad=bad, shape=shape, depth=depth)
        return args
    return model_args(draw, cls, bad=bad, shape=shape, depth=depth)


# -- shapes: the ops' own rules, to steer the draws ----------------------------------------------

def infer(node: dict, in_shapes: list[tuple], names: list[str], blocks: dict) -> tuple | None:
    """The node's output shape by its op's rule, or None where the rule refuses it."""
    cls = REGISTRY.get(node["op"])
    if cls is None or issubclass(cls, Composite):
        return probe(node, in_shapes, blocks)
    args = {k: v for k, v in node.items() if k not in ("id", "in", "op")}
    n = len(in_shapes)
    if n < cls.min_inputs or (cls.max_inputs is not None and n > cls.max_inputs):
        return None
    try:
        block = cls.model_validate(args)
        shape = block.out_shape(in_shapes, names=names) if cls.names_inputs else block.out_shape(in_shapes)
    except (ValidationError, ShapeError, ValueError, TypeError, ArithmeticError):
        return None
    return tuple(shape) if all(d > 0 for d in shape) else None


def probe(node: dict, in_shapes: list[tuple], blocks: dict) -> tuple | None:
    """The output shape of a composite or user block: a one-node spec through the compiler."""
    inputs = {f"i{k}": list(s) for k, s in enumerate(in_shapes)}
    doc = {"blockgraph": 1, "name": "probe", "inputs": inputs, **({"blocks": blocks} if blocks else {}),
           "nodes": [{**node, "id": "probe", "in": list(inputs)}]}
    try:
        graph = compiler.analyze(compiler.load(dump(doc))).graph
    except SpecError:
        return None
    return graph.shapes[graph.outputs[0]]


def chain(draw, shape: tuple | None, length: int, depth: int) -> list[dict]:
    """Nodes of single-input primitives, each reading the one before, steered to valid."""
    nodes = []
    for _ in range(length):
        for _ in range(CANDIDATES):
            rank_ok = [op for op in SIMPLE if shape is None or accepts(op, len(shape))]
            op = draw(st.sampled_from(rank_ok or SIMPLE))
            node = {"op": op, **op_args(draw, op, bad=False, shape=shape, depth=depth)}
            out = infer(node, [shape], ["x"], {}) if shape is not None else None
            if out is not None:
                break
        nodes.append(node)
        shape = out
    return nodes


def user_block(draw, shape: tuple) -> dict:
    """A `blocks:` entry with a parameter `w`: a chain whose first integer `out` becomes `$w`."""
    nodes = chain(draw, shape, draw(st.integers(1, 2)), depth=1)
    w = 4
    for node in nodes:
        if isinstance(node.get("out"), int):
            w, node["out"] = node["out"], "$w"
            break
    return {"params": {"w": w}, "nodes": nodes}


# -- whole specs -------------------------------------------------------------------------------

def _size(draw) -> int:
    """1 to 9, and 1 a quarter of the time more: one-pixel maps are where shape rules break."""
    return 1 if draw(st.integers(0, 3)) == 3 else draw(st.integers(1, 9))


def _shape(draw, rank: int) -> list[int]:
    return [draw(st.integers(1, 8))] + [_size(draw) for _ in range(rank - 1)]


@st.composite
def specs(draw, first: str | None = None) -> str:
    """A spec's YAML text (see the module docstring); `first` fixes the op of the first node
    (an op name, or `ub` for a user block), so that every op can be covered on purpose."""
    bad = draw(st.integers(0, 4)) == 4  # not 0: the simplest draw is the plausible spec
    inputs = {"x": _shape(draw, draw(st.sampled_from([3, 3, 2, 1])))}
    if draw(st.integers(0, 3)) == 0:
        inputs["y"] = list(inputs["x"]) if draw(st.booleans()) else _shape(draw, draw(st.integers(1, 3)))
    values = {name: (tuple(s), False) for name, s in inputs.items()}  # name -> (shape, per region)
    blocks = {"ub": user_block(draw, values["x"][0])} if first == "ub" or draw(st.integers(0, 5)) == 0 else {}
    nodes: list[dict] = []
    last = "x"
    for i in range(draw(st.integers(1, 5))):
        op = first if i == 0 else None
        for attempt in range(CANDIDATES):
            form = "example" if op in REGISTRY and attempt == CANDIDATES - 1 else None  # the op's own inputs
            node, ins, shape, new = _node(draw, f"n{i}", op, last, values, blocks, bad, form)
            if shape is not None or bad:
                break
        else:
            continue  # no candidate passed: leave the node out
        for name, s in new.items():
            inputs[name], values[name] = s, (tuple(s["shape"] if isinstance(s, dict) else s), False)
        cls = REGISTRY.get(node["op"])
        regions = getattr(cls, "regions_input", None) is not None or any(values[n][1] for n in ins)
        nodes.append(node)
        values[node["id"]], last = (shape, regions), node["id"]
        if shape is None:
            break  # a refused node ends the spec
    if not nodes:
        nodes.append({"id": "n0", "op": "identity", "in": "x"})
    doc: dict[str, Any] = {"blockgraph": 1, "name": "drawn", "inputs": inputs}
    if blocks:
        doc["blocks"] = blocks
    doc["nodes"] = nodes
    if len(nodes) > 1 and draw(st.integers(0, 3)) == 0:
        doc["outputs"] = [nodes[-1]["id"], draw(st.sampled_from([n["id"] for n in nodes[:-1]]))]
    return dump(doc)


def _node(draw, node_id: str, op: str | None, last: str, values: dict, blocks: dict, bad: bool,
          form: str | None = None):
    """One candidate: (node, its inputs, its shape or None, new spec inputs it reads). The op
    reads the last value (a chain), any earlier one (a branch), or new inputs of the shapes one
    of its examples takes (so that ops with narrow inputs, yolo_head's S*S*(5B+C), are run)."""
    names = [n for n in values if n != "rois" and not n.endswith(IDS_SUFFIX)]
    form = form or draw(st.sampled_from(["chain", "chain", "chain", "branch", "example"]))
    source = last if form == "chain" else draw(st.sampled_from(names))
    shape = values[source][0]
    if op is None:
        pick = draw(st.integers(0, 9))
        pool = OPS + list(blocks)
        fitting = [o for o in pool if o in blocks or shape is None or accepts(o, len(shape))]
        op = draw(st.sampled_from(MERGES if pick == 0 else pool if pick == 1 else fitting))
    cls = REGISTRY.get(op)
    if cls is None:  # the user block
        args = {"w": _number(draw, int, {"lo": 0, "lo_open": True, "hi": None, "hi_open": False}, bad)}
        return _wired(node_id, op, [source], last, args, values, blocks, {})
    if op in ID_READERS:  # token ids: a new int64 input of an example's shape (or smaller)
        args, shapes = copy.deepcopy(draw(st.sampled_from(cls.examples)))
        if draw(st.integers(0, 2)) == 0:
            args = op_args(draw, op, bad=bad, shape=shapes[0])
        new = {f"{node_id}{IDS_SUFFIX}": {"shape": [min(d, _size(draw)) if draw(st.booleans()) else d
                                                     for d in shapes[0]], "dtype": "int64"}}
        return _wired(node_id, op, list(new), last, args,
                      {**values, **{n: (tuple(s["shape"]), False) for n, s in new.items()}}, blocks, new)
    if form == "example":
        args, shapes = copy.deepcopy(draw(st.sampled_from(cls.examples)))
        if draw(st.integers(0, 2)) == 0:  # smaller sizes than the example's, down to 1 (edge cases)
            shapes = [s if k == getattr(cls, "regions_input", None) else
                      tuple(min(d, _size(draw)) if draw(st.booleans()) else d for d in s)
                      for k, s in enumerate(shapes)]
        fields = [n for n in cls.model_fields if n != "op"]
        if fields and (bad or draw(st.integers(0, 2)) == 0):
            name = draw(st.sampled_from(fields))
            field = cls.model_fields[name]
            args[name] = value(draw, field.annotation, field.metadata, bad=bad, shape=shapes[0], depth=0)
        new = {f"{node_id}_in{k}": list(s) for k, s in enumerate(shapes)}
        return _wired(node_id, op, list(new), last, args, {**values, **{n: (tuple(s), False) for n, s in new.items()}},
                      blocks, new)
    ins = [source]
    if getattr(cls, "max_inputs", 1) is None:  # a merge: values of the same shape, mostly
        alike = [n for n in names if n != source and values[n] == values[source]]
        ins += draw(st.lists(st.sampled_from(alike or names), min_size=1, max_size=2))
    elif getattr(cls, "regions_input", None) is not None:
        new = {} if "rois" in values else {"rois": [draw(st.integers(1, 3)), 4]}
        args = op_args(draw, op, bad=bad, shape=shape)
        return _wired(node_id, op, [source, "rois"], last, args,
                      {**values, **{n: (tuple(s), False) for n, s in new.items()}}, blocks, new)
    elif getattr(cls, "min_inputs", 1) == 2:
        ins.append(draw(st.sampled_from(names)))
    return _wired(node_id, op, ins, last, op_args(draw, op, bad=bad, shape=shape), values, blocks, {})


def _wired(node_id, op, ins, last, args, values, blocks, new):
    """The node dict with its `in` (left out where it reads the previous node), and its shape."""
    wired = ins != [last] or last == "x"  # the first node names its input
    node = {"id": node_id, "op": op, **({"in": ins if len(ins) > 1 else ins[0]} if wired else {}), **args}
    in_shapes = [values[n][0] for n in ins]
    if any(s is None for s in in_shapes) or len({values[n][1] for n in ins}) > 1:
        return node, ins, None, new  # unknown input, or per-image mixed with per-region: refused
    return node, ins, infer(node, in_shapes, ins, blocks), new


# -- the property ------------------------------------------------------------------------------

def _inputs(spec, boxes: list[str]):
    import torch

    from compiler.detection.proposals import random_boxes

    from compiler.sample_inputs import sample_batch, sample_inputs

    gen = torch.Generator().manual_seed(0)
    maps = [s for n, s in spec.inputs.items() if n not in boxes and len(s) == 3]
    image = maps[0] if maps else (8, 8)
    samples = sample_inputs(spec)  # an int64 input: ids below the vocab of the ops that read it
    return [random_boxes(BATCH, shape[0], image, generator=gen) if name in boxes
            else torch.randn(BATCH, *shape, generator=gen) if sample.id_bound is None
            else sample_batch([sample], BATCH, seed=i)[0]
            for i, ((name, shape), sample) in enumerate(zip(spec.inputs.items(), samples))]


def check_runs(text: str, file: str = "property.yaml") -> str:
    """The property on one spec: "ok" (it passed the check, built and ran as analysed) or
    "error" (refused with located problems). Anything else raises: a bug in the compiler."""
    import torch

    try:
        spec = compiler.load(text, file=file)
        analysis = compiler.analyze(spec, batch=BATCH)
    except SpecError as exc:
        located(exc)
        return "error"
    model = compiler.build(spec, seed=0)
    graph = analysis.graph
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers() if b.dtype.is_floating_point)
    assert (params, buffers) == (analysis.params, analysis.buffers), \
        f"built module: {params} parameters, {buffers} buffer values; analysis: {analysis.params}, {analysis.buffers}"
    xs = _inputs(spec, graph.boxes)
    for training in (True, False):
        model.train(training)
        with torch.set_grad_enabled(training):
            out = model(*xs)
        outs = out if isinstance(out, tuple) else (out,)
        assert len(outs) == len(graph.outputs), f"{len(outs)} outputs, {len(graph.outputs)} declared"
        for tensor, node_id in zip(outs, graph.outputs):
            want = (BATCH * graph.regions[node_id], *graph.shapes[node_id])
            assert tuple(tensor.shape) == want, \
                f"{'train' if training else 'eval'} mode: output {node_id!r} is {tuple(tensor.shape)}, static {want}"
        if training and any(t.requires_grad for t in outs):
            sum(t.float().sum() for t in outs if t.requires_grad).backward()
    return "ok"
