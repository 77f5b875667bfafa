"""Hypothesis strategies and the property for fuzzing specs (tests/test_fuzz.py and the long
campaign in benchmarks/fuzz.py).

The property (`check`): `compiler.load`, `compiler.analyze` and `compiler.build(...,
device="meta")` on any input either succeed or raise `SpecError` whose problems all have a
location (a file, a line and a column >= 1). Anything else (another exception, a problem
without a place) is a bug.

Inputs:
- `yaml_documents`: random nested maps / lists / scalars dumped with yaml.safe_dump; keys and
  values are drawn partly from the spec language (ops, keys, `$vars`, shapes), so many
  documents get past the loader into the graph check and the build.
- `raw_inputs`: random text and bytes.
- `zoo_mutations`: small zoo specs with random edits at random paths (drop, duplicate,
  retype, rename keys and items, swap values), plus line-level edits of the text (duplicate,
  drop or cut a line: duplicate keys, broken indentation).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

import compiler
from compiler import Loc, SpecError
from compiler.blocks import names as op_names

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
# small, quick zoo specs (self-contained or extending a sibling), each built in ~10 ms
ZOO = ["resnet20_cifar.yaml", "nin_cifar10.yaml", "unet_small_shapes.yaml", "yolov1_shapes.yaml",
       "vgg11_cifar.yaml", "default.yaml", "resnet18.yaml", "googlenet.yaml", "rcnn_shapes.yaml",
       "mask_rcnn_shapes.yaml", "fast_rcnn_shapes.yaml"]
ZOO_TEXT = {name: (SPECS / name).read_text() for name in ZOO}
ZOO_DATA = {name: yaml.safe_load(text) for name, text in ZOO_TEXT.items()}

OPS = sorted(op_names())
KEYS = ["blockgraph", "name", "extends", "inputs", "outputs", "vars", "nodes", "blocks", "defaults", "init",
        "train", "id", "op", "in", "out", "k", "stride", "padding", "dilation", "groups", "bias", "norm", "act",
        "repeat", "first", "body", "p", "dim", "size", "scale", "mode", "params", "ceil", "seed", "kind", "std",
        "lr", "epochs", "batch_size", "dataset", "optimizer", "reference", "image", "classes", "x", "y",
        "self", "torch", "def", "None", "class"]  # names Python reserves (found: an input named `in`)
VARS = ["$classes", "$n", "$c", "$n * 2", "$c // 0", "2 ** 70", "$x + 1", "min($n, 3)", "$n1", "$"]


def _scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(-3, 300), st.sampled_from([0, 1, 2, 3, 64, 2**31, 2**63, 10**30, -(2**40)]),
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.5, 1e-3, 1e300, -0.0]),
        st.booleans(), st.none(),
        st.sampled_from(OPS), st.sampled_from(KEYS), st.sampled_from(VARS),
        st.sampled_from(["1e-3", "3x3", "relu", "batch", "same", "valid", "nearest", "he_normal", "zeros", "yes",
                         "~", "!!python/object:os.system", "*a", "&a x", "", " ", "\t", "é", "\x85", "\ufeff"]),
        st.text(max_size=12),
    )


def _values(depth: int = 3) -> st.SearchStrategy[Any]:
    return st.recursive(
        _scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=6),
            st.lists(st.integers(-2, 64), min_size=0, max_size=4),  # shape-like lists
        ),
        max_leaves=25,
    )


# plausible values for node keys, so that many nodes pass validation and reach the graph check
NODE_VALUES = {
    "out": st.one_of(st.integers(1, 32), st.sampled_from(["$classes", "$c", 0, -4, 2.5, [8, 8]])),
    "k": st.one_of(st.integers(1, 7), st.sampled_from([0, 40, [3, 1], "3"])),
    "stride": st.one_of(st.integers(1, 3), st.sampled_from([0, [2, 1]])),
    "padding": st.one_of(st.integers(0, 3), st.sampled_from(["same", "valid", -1])),
    "groups": st.sampled_from([1, 2, 3, 4, 0]), "dilation": st.sampled_from([1, 2, 0]),
    "repeat": st.sampled_from([0, 1, 2, 3, -1, "$n"]), "bias": st.booleans(),
    "norm": st.sampled_from(["batch", "layer", "group", "instance", None, "nope"]),
    "act": st.sampled_from(["relu", "gelu", "silu", "leaky_relu", None, "nope"]),
    "p": st.sampled_from([0.0, 0.5, 1.0, 1.5, float("nan")]), "dim": st.integers(-3, 3),
    "size": st.sampled_from([1, 2, 4, [2, 2], 0]), "scale": st.sampled_from([1, 2, 0.5, 0]),
    "in": st.sampled_from(["image", "n0", "n1", ["n0", "n1"], ["image", "image"], "nope", []]),
    "ceil": st.booleans(),
}


# nodes that are valid on a feature map as they are; edits of them then reach the graph check
GOOD_NODES = [
    {"op": "conv", "out": 8}, {"op": "conv", "out": 8, "k": 3, "stride": 2, "norm": "batch", "act": "relu"},
    {"op": "maxpool"}, {"op": "avgpool", "k": 2}, {"op": "dropout", "p": 0.1}, {"op": "identity"},
    {"op": "residual", "body": "basic", "out": 8}, {"op": "upsample", "scale": 2}, {"op": "act", "kind": "relu"},
    {"op": "norm", "kind": "batch"}, {"op": "add", "in": ["n0", "n1"]}, {"op": "concat", "in": ["n0", "n1"]},
    {"op": "gap"}, {"op": "flatten"}, {"op": "linear", "out": 10},
]


@st.composite
def spec_like(draw) -> dict[str, Any]:
    """A document shaped like a spec: version, name, an input, a few nodes of real ops with
    mostly plausible parameters, and now and then something wrong."""
    def often(p: int = 9) -> bool:
        return draw(st.integers(0, p)) < p  # the simplest draw (0) is the plausible case

    doc: dict[str, Any] = {}
    doc["blockgraph"] = 1 if often() else draw(st.sampled_from([2, "1", None, 1.5]))
    doc["name"] = "net" if often() else draw(st.sampled_from(["", "a b", 3, "x" * 300]))
    c, hw = (3, 16) if often(3) else (draw(st.integers(-1, 8)), draw(st.integers(-1, 40)))
    shape = [c, hw, hw] if often(5) else draw(st.sampled_from([[c], [c, hw], [], [c, hw, hw, hw]]))
    doc["inputs"] = {"image" if often(3) else draw(st.sampled_from(["in", "self", "torch", "x", "def_"])): shape}
    if draw(st.booleans()):
        doc["vars"] = {"classes": 10, "n": 2, "c": 8} if often() else \
            draw(st.dictionaries(st.sampled_from(["classes", "n", "c", "x"]), _scalars(), max_size=3))
    nodes = []
    for i in range(draw(st.integers(1, 6)) if often() else 0):
        node: dict[str, Any] = {"id": f"n{i}"} if often(3) else \
            {"id": draw(st.sampled_from(["in", "def", "self", "torch", "n0", "image", "x"]))} if often(1) else {}
        if often(2):
            node.update(copy.deepcopy(draw(st.sampled_from(GOOD_NODES))))
        else:
            node["op"] = draw(st.sampled_from(OPS))
        for key in draw(st.lists(st.sampled_from(sorted(NODE_VALUES)), max_size=4 if often(1) else 0, unique=True)):
            node[key] = draw(NODE_VALUES[key]) if often(5) else draw(_scalars())
        if not often(5):
            node[draw(st.sampled_from(KEYS))] = draw(_values())
        nodes.append(node)
    if often():
        doc["nodes"] = nodes
    for key in draw(st.lists(st.sampled_from(["outputs", "blocks", "defaults", "init", "train", "extends"]),
                             max_size=2 if not often(3) else 0)):
        doc[key] = draw(_values())
    return doc


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, default_flow_style=None, allow_unicode=True, sort_keys=False)


def yaml_documents() -> st.SearchStrategy[str]:
    """Random YAML text: spec-shaped documents and arbitrary nested data."""
    return st.one_of(spec_like(), spec_like(), spec_like(), _values()).map(_dump)


def raw_inputs() -> st.SearchStrategy[str | bytes]:
    """Arbitrary text (with a newline, so it is never taken for a path) and bytes."""
    return st.one_of(st.text(max_size=200).map(lambda s: s + "\n"), st.binary(max_size=200))


# -- mutations of zoo specs ------------------------------------------------------------------

def _containers(data: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every map and list in `data`."""
    found = []
    if isinstance(data, (dict, list)):
        found.append(path)
        items = data.items() if isinstance(data, dict) else enumerate(data)
        for key, value in items:
            found.extend(_containers(value, path + (key,)))
    return found


def _at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def _tree_edit(draw, data: Any) -> Any:
    data = copy.deepcopy(data)
    target = _at(data, draw(st.sampled_from(_containers(data))))
    if not target:
        if isinstance(target, dict):
            target[draw(st.sampled_from(KEYS))] = draw(_scalars())
        else:
            target.append(draw(_values()))
        return data
    kind = draw(st.sampled_from(["drop", "duplicate", "retype", "rename", "swap", "insert"]))
    if isinstance(target, dict):
        key = draw(st.sampled_from(list(target)))
        if kind == "drop":
            del target[key]
        elif kind == "duplicate":  # the same value under another key, or the key's value twice
            target[draw(st.sampled_from(KEYS))] = copy.deepcopy(target[key])
        elif kind == "retype":
            target[key] = draw(_values())
        elif kind == "rename":
            new = draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.just(key.upper() if isinstance(key, str) else key)))
            target[new] = target.pop(key)
        elif kind == "swap":
            other = draw(st.sampled_from(list(target)))
            target[key], target[other] = target[other], target[key]
        else:
            target[draw(st.sampled_from(KEYS))] = draw(_values())
    else:
        i = draw(st.integers(0, len(target) - 1))
        if kind == "drop":
            del target[i]
        elif kind == "duplicate":
            target.insert(i, copy.deepcopy(target[i]))
        elif kind in ("retype", "rename"):
            target[i] = draw(_values())
        elif kind == "swap":
            j = draw(st.integers(0, len(target) - 1))
            target[i], target[j] = target[j], target[i]
        else:
            target.insert(i, draw(_values()))
    return data


@st.composite
def _line_edit(draw, text: str) -> str:
    lines = text.splitlines(keepends=True)
    i = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["duplicate", "drop", "cut", "indent", "insert"]))
    if kind == "duplicate":  # a duplicate key (or a duplicate node when the line is a list item)
        lines.insert(i, lines[i])
    elif kind == "drop":
        del lines[i]
    elif kind == "cut":
        lines[i] = lines[i][: draw(st.integers(0, max(0, len(lines[i]) - 1)))] + "\n"
    elif kind == "indent":
        lines[i] = draw(st.sampled_from([" ", "  ", "\t", "- "])) + lines[i]
    else:
        lines.insert(i, draw(st.sampled_from(KEYS)) + ": " + _dump(draw(_scalars())).split("\n")[0] + "\n")
    return "".join(lines)


@st.composite
def zoo_mutations(draw) -> tuple[str, str]:
    """(file name in specs/, mutated YAML text): 1-3 tree edits, or 1-2 line edits of the text."""
    name = draw(st.sampled_from(ZOO))
    if draw(st.integers(0, 3)):
        data = ZOO_DATA[name]
        for _ in range(draw(st.integers(1, 3))):
            data = draw(_tree_edit(data))
        return name, _dump(data)
    text = ZOO_TEXT[name]
    for _ in range(draw(st.integers(1, 2))):
        text = draw(_line_edit(text))
    return name, text


# -- the property ----------------------------------------------------------------------------

def located(exc: SpecError) -> None:
    """Every problem of `exc` has a file, a line and a column >= 1, and a message."""
    assert exc.errors, f"SpecError without problems: {exc!r}"
    for problem in exc.errors:
        loc = problem.loc
        assert isinstance(loc, Loc) and loc.file and loc.line >= 1 and loc.col >= 1, \
            f"problem without a location: {problem!r}"
        assert problem.message, f"problem without a message: {problem!r}"


def check_deeper(source: str | bytes, file: str | Path = "fuzz.yaml") -> str:
    """Also what `blockgraph summary` prints (table at several depths, JSON) and a real build
    on the CPU (weights initialised by the spec's init policies) under a 32 MB budget."""
    import json

    from compiler.cli import format_summary

    try:
        spec = compiler.load(source, file=file)
        analysis = compiler.analyze(spec, batch=2)
        for depth in (None, 0, 1):
            format_summary(analysis, depth)
        json.dumps(analysis.to_dict())
        compiler.build(spec, max_memory="32M", seed=0)
    except SpecError as exc:
        located(exc)
        return "error"
    return "ok"


def check(source: str | bytes, file: str | Path = "fuzz.yaml") -> str:
    """load + analyze + build on the meta device: succeed, or raise SpecError with every
    problem located. Returns "ok" or "error" (anything else propagates: a bug)."""
    try:
        spec = compiler.load(source, file=file)
        compiler.analyze(spec)
        compiler.build(spec, device="meta")
    except SpecError as exc:
        located(exc)
        return "error"
    return "ok"
