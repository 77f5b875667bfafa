"""Located tree -> `Spec`: top-level keys checked, vars resolved, nodes validated and expanded.

The document's top level is a pydantic model (`SpecDocument`); each node is validated by the
class its `op` names (a discriminated union over the block registry). Before validation,
expressions (`$width * 2`) are evaluated, the spec's `defaults:` for the op are merged under
the node's own arguments, and `repeat:` is unrolled. Every problem becomes a located
`Problem`: a pydantic error's `loc` is a path under the node, and the located tree knows the
line and column of every path.
"""

from __future__ import annotations

import keyword
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import expr, suggest
from .blocks import Block, registry
from .blocks.base import GENERATED, Composite
from .blocks.base import Shape
from .errors import Collector, Loc, Problem, SpecError, format_path
from .init import InitPolicy, NodeInit
from .quoted import QUOTED, quoted_fields, quoted_values, unquote_hint
from .source import Document, parse

FORMAT_VERSION = 1
NODE_KEYS = ("op", "id", "in", "repeat", "first", "init", "when", "scalable")
"""Keys every node may carry besides its op's own arguments."""
ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_REPEAT = 10_000
MAX_NODES = 100_000
WRITTEN_AT = "__written_at__"
"""Key marking a node dict the user wrote inside a composite's arguments (a residual's `body`,
an inception's `branches`) with its YAML path, so that it, and what it expands to, is located
at its own line rather than at the composite's. Composites pass the key on with the dict."""


class Scaling(BaseModel):
    """Width and depth multipliers for a whole spec (EfficientNet's compound scaling,
    Ultralytics' n/s/m/l/x scales)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    width: float = Field(1.0, gt=0, le=64)
    """Multiplies every channel count a node states (conv/residual/inception/mlpconv widths,
    growth rates); not `linear` outputs, so the number of classes stays."""
    depth: float = Field(1.0, gt=0, le=64)
    """Multiplies every `repeat` count and dense-block `layers` (rounded up)."""
    divisor: int = Field(8, gt=0)
    """Scaled channel counts are rounded to a multiple of this (never below it)."""


DATASET_FACTS = {"classes": "the number of classes the dataset gives the task (a segmentation dataset "
                              "counts its background class)"}
"""What a var may be bound to (`{dataset: FACT, default: N}`), with what each means."""


class DatasetVar(BaseModel):
    """A var whose value the dataset a run trains on gives (`classes: {dataset: classes,
    default: 10}`): the trainer sets it from the dataset, everything else (validate, summary,
    build, the designer's graph) uses `default`. An override (`--var classes=...`) fixes it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    dataset: Literal["classes"]
    """The dataset's fact the var takes when training: `classes`."""
    default: int = Field(gt=0)
    """The value when no dataset is given (validate, summary, build, export)."""


class SpecDocument(BaseModel):
    """The top level of a spec file. Node contents are validated per op (see blocks/)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    blockgraph: Literal[1]
    """Format version of the spec language (1)."""
    extends: str | None = None
    """Another spec file (relative to this one) whose keys this spec inherits: vars, blocks and
    defaults merge key by key, every other key given here replaces the parent's."""
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=100)
    """Name of the architecture; also the class name of the generated module."""
    reference: str | None = None
    """The implementation this spec reproduces, e.g. torchvision.models.vgg16."""
    description: str | None = None
    """Free text shown in summaries."""
    inputs: dict[str, list[int | str]] = Field(min_length=1)
    """Named per-sample input shapes, channels first; the batch dimension is implicit."""
    vars: dict[str, int | float | bool | str | None | DatasetVar] = {}
    """Named values usable as $name in any argument; `load(vars=...)` overrides them. A var may
    be bound to the training dataset: `classes: {dataset: classes, default: 10}`."""
    defaults: dict[str, dict[str, Any]] = {}
    """Default arguments per op, e.g. {conv: {norm: batch, act: relu}}."""
    blocks: dict[str, Any] = {}
    """User-defined blocks: name -> {params, inputs, nodes, output}; used as `op: name`."""
    init: InitPolicy = InitPolicy()
    """Weight and bias initialisation policies per op family."""
    nodes: list[Any] = Field(min_length=1)
    """The graph, in order: each node reads the previous one unless it names `in`."""
    outputs: list[str] | str | None = None
    """Node ids returned by the module (default: the last node)."""
    scaling: dict[str, Any] = {}
    """Width and depth multipliers for the whole spec ({width, depth, divisor}, see Scaling;
    values may be $vars); nodes with `scalable: false` keep theirs."""
    plugins: list[str] = []
    """Plugin modules whose blocks this spec uses. Only checked, never imported: load them with
    `--plugin NAME`, $BLOCKGRAPH_PLUGINS or compiler.load_plugins."""
    train: dict[str, Any] = {}
    """How `blockgraph train` / compiler.train trains this spec (dataset, epochs, optimizer, lr,
    ...); checked by compiler.train.TrainConfig when training, see docs/training.md."""


@dataclass
class Node:
    """One node of the expanded graph."""

    id: str
    block: Block
    inputs: list[str]
    """References as written (node ids, repeat group ids or input names)."""
    loc: Loc
    """Where the node starts in the YAML text."""
    path: str
    """Its YAML path, e.g. nodes[3]."""
    input_locs: list[Loc]
    init: NodeInit | None = None
    group: tuple[str, ...] = ()
    """Enclosing repeat groups / composite blocks, outermost first (for summaries and renders)."""
    owner: str = ""
    """For a node a composite made itself (`stage1.0.res_in`), the user's node it belongs to
    (`stage1.0`), so errors speak of what the user wrote; '' for the user's own nodes."""
    implicit_input: bool = False
    """It reads the node before it by default (it has no `in:`), which a cycle message names."""

    @property
    def op(self) -> str:
        return self.block.op


@dataclass
class Group:
    """A node that stands for several: a repeat, a composite block or a user block."""

    id: str
    op: str
    kind: Literal["repeat", "composite", "user"]
    loc: Loc
    block: Any = None
    """The validated composite (kind composite) or the bound parameters (kind user)."""


@dataclass
class Spec:
    """A validated, expanded spec: ready for the graph check (`compiler.analyze`)."""

    name: str
    inputs: dict[str, Shape]
    nodes: list[Node]
    outputs: list[str]
    output_locs: list[Loc]
    aliases: dict[str, str]
    """Group ids to the node that gives their output (a repeated node's last copy)."""
    vars: dict[str, Any]
    init: InitPolicy
    reference: str | None = None
    description: str | None = None
    file: str = "<string>"
    text: str = ""
    input_locs: dict[str, Loc] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)
    document: Document | None = None
    blocks: dict[str, "BlockDef"] = field(default_factory=dict)
    """The spec's user-defined blocks."""
    groups: dict[str, Group] = field(default_factory=dict)
    """Ids that stand for several nodes (repeats, composite and user blocks), outermost first."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """The vars given to `load` (they replace the text's values)."""
    dataset_vars: dict[str, str] = field(default_factory=dict)
    """Vars bound to the training dataset, name -> fact (`classes`): not overridden, so
    `vars` holds their defaults until `with_vars` sets them from a dataset."""

    def node(self, node_id: str) -> Node:
        return self._by_id[node_id]

    @property
    def _by_id(self) -> dict[str, Node]:
        cached = self.__dict__.get("_by_id_cache")
        if cached is None or len(cached) != len(self.nodes):
            cached = self.__dict__["_by_id_cache"] = {n.id: n for n in self.nodes}
        return cached


# -- messages ------------------------------------------------------------------------------

SYNONYMS = {
    "k": ("kernel", "kernal", "kernel_size", "ksize", "kernelsize", "filter_size", "size_k"),
    "out": ("filters", "out_channels", "channels", "features", "out_features", "units", "outputs", "num_output"),
    "pad": ("padding", "pads"),
    "stride": ("strides", "step"),
    "act": ("activation", "nonlinearity", "relu"),
    "norm": ("normalization", "normalisation", "bn", "batchnorm", "batch_norm"),
    "p": ("rate", "drop_rate", "dropout", "prob"),
    "dilation": ("dilation_rate", "dilate"),
    "groups": ("group", "cardinality"),
    "in": ("input", "inputs", "from", "bottom"),
    "nodes": ("layers", "node", "graph"),
    "repeat": ("repeats", "times", "number"),
    "layers": ("num_layers", "n_layers"),
    "he_normal": ("kaiming", "msra"),
    "xavier_uniform": ("xavier", "glorot"),
}
"""Names other frameworks use (Keras, PyTorch, Caffe, Ultralytics) for blockgraph's keys."""


def suggestion(word: str, options) -> str | None:
    """The option a user most likely meant by `word` (a synonym from another framework, or a
    close spelling: the one rule of compiler/suggest.py), or None."""
    return suggest.closest(word, options, SYNONYMS)


def did_you_mean(word: str, options) -> str:
    return suggest.did_you_mean(word, options, SYNONYMS)


def _describe(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    if isinstance(value, str):
        return repr(value) if len(value) < 60 else repr(value[:57] + "...")
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def pydantic_message(err: dict, owner: str, fields) -> str:
    """A pydantic error, reworded as blockgraph's messages are: what was expected, what came."""
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    key = err["loc"][-1] if err["loc"] else ""
    if kind == "extra_forbidden":
        where = f"in {owner}" if owner.isidentifier() else f"for {owner}"
        return f"unknown key {key!r} {where}{did_you_mean(key, fields)} (allowed: {', '.join(fields)})"
    if kind == "missing":
        return f"missing required key {key!r} for {owner}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter(ctx.values()), "?")
        if kind == "greater_than" and bound == 0 and (isinstance(got, int) or float(got).is_integer()):
            return f"expected a positive integer, got {_describe(got)}"
        words = {"greater_than": "greater than", "greater_than_equal": "at least",
                 "less_than": "less than", "less_than_equal": "at most"}[kind]
        return f"expected a number {words} {bound}, got {_describe(got)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {_describe(got)}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {_describe(got)}"
    if kind == "finite_number":
        return f"expected a finite number, got {_describe(got)}"
    if kind in QUOTED:
        return f'expected {QUOTED[kind]}, got the text "{got}": write {ctx["fix"]} without quotes'
    if kind in ("bool_type", "bool_parsing"):
        if isinstance(got, str) and got.strip().lower() in ("true", "false"):
            return f'expected true or false, got the text "{got}": write {got.strip().lower()} without quotes'
        if isinstance(got, str) and got.strip().lower() in ("yes", "no", "on", "off", "y", "n"):
            return (f"expected true or false, got {_describe(got)} (YAML 1.2 reads yes/no/on/off as text): "
                    "write true or false")
        return f"expected true or false, got {_describe(got)}"
    if kind == "literal_error" and key == "blockgraph":
        return (f"spec format version {_describe(got)} is not supported: this blockgraph reads version 1 "
                "(blockgraph: 1)")
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = re.findall(r"'([^']*)'", expected)
        return f"expected one of {expected}, got {_describe(got)}{did_you_mean(got, options) if isinstance(got, str) else ''}"
    if kind in ("string_type",):
        return f"expected text, got {_describe(got)}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {_describe(got)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a map, got {_describe(got)}"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"expected at most {ctx.get('max_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        return f"expected a name of letters, digits, _ and - starting with a letter, got {_describe(got)}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    msg = err["msg"]
    return f"{msg[0].lower()}{msg[1:]}, got {_describe(got)}"


def _union_collapsed(errors: list[dict]) -> list[dict]:
    """`int | tuple[int, int]` fails once per member; report the most specific member only.
    Union members appear in pydantic's loc as type names ('int', 'tuple[int,int]',
    'literal[...]'): we drop those segments and keep one error per path."""
    seen: dict[tuple, dict] = {}
    for err in errors:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in (
            "int", "float", "str", "bool", "none", "function-after", "function-before", "function-wrap")
            or p.startswith(("constrained-", "function-", "lax-", "json-or-python", "union["))
            or p in _UNION_MODELS)))
        err = {**err, "loc": loc}
        prev = seen.get(loc)
        # prefer a bound violation of the scalar member over "expected a list" of the tuple member
        if prev is None or (prev["type"] in ("tuple_type", "list_type", "literal_error", "none_required")
                            and err["type"] not in ("tuple_type", "list_type", "none_required")):
            seen[loc] = err
    # a member that took the value apart (a map's key is wrong) is the one the user meant: its
    # errors below the path replace the other members' "expected an integer, got a map"
    return [e for loc, e in seen.items() if not any(len(o) > len(loc) and o[:len(loc)] == loc for o in seen)]


_UNION_MODELS = {"DatasetVar"}
"""Models that are members of a union: pydantic names them in an error's path."""


# -- the loader ----------------------------------------------------------------------------

class _Reported(expr.ExprError):
    """An expression used a var whose own error was already reported: say nothing more."""


class _Vars:
    """Spec vars with overrides, evaluated lazily so vars may use other vars."""

    def __init__(self, raw: dict, doc: Document, overrides: dict, out: Collector):
        self.raw, self.doc, self.out = dict(raw), doc, out
        self.values: dict[str, Any] = {}
        self.active: list[str] = []
        self.bound: dict[str, str] = {}
        for name, value in list(self.raw.items()):
            if isinstance(value, DatasetVar):
                self.raw[name] = value.default
                if name not in overrides:
                    self.bound[name] = value.dataset
        for name, value in overrides.items():
            if name not in self.raw:
                out.error(doc.loc(("vars",)) if "vars" in getattr(doc, "data", {}) else Loc(doc.file, 1, 1),
                          f"override of unknown var {name!r}{did_you_mean(name, self.raw)}"
                          + (f" (the spec defines: {', '.join(self.raw)})" if self.raw else " (the spec defines no vars)"))
                continue
            self.raw[name] = value
            self.values.pop(name, None)
        self.overridden = set(overrides)
        self.failed: set[str] = set()

    def get(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name in self.failed:
            raise _Reported(f"${name} is invalid (reported at its definition)")
        if name not in self.raw:
            raise expr.ExprError(f"unknown variable ${name}{did_you_mean(name, self.raw)}")
        if name in self.active:
            chain = " -> ".join(f"${n}" for n in self.active[self.active.index(name):] + [name])
            raise expr.ExprError(f"vars refer to each other in a loop: {chain}")
        self.active.append(name)
        try:
            value = self.raw[name]
            if expr.is_expression(value):
                value = _evaluate(value, self)
            self.values[name] = value
            return value
        finally:
            self.active.pop()

    def resolve_all(self) -> dict[str, Any]:
        for name in self.raw:
            try:
                self.get(name)
            except _Reported:
                self.failed.add(name)
            except expr.ExprError as exc:
                self.failed.add(name)
                loc = self.doc.loc(("vars", name))
                if name in self.overridden:
                    exc = expr.ExprError(f"{exc} (the value comes from an override)")
                self.out.error(loc, f"{self.raw[name]!r}: {exc}", f"vars.{name}")
        return dict(self.values)


_WHOLE_VAR = re.compile(r"\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*")


def _evaluate(text: str, scope) -> Any:
    whole = _WHOLE_VAR.fullmatch(text)
    if whole:  # `$name` alone stands for the var's value, whatever its type
        return scope.get(whole.group(1))
    return expr.evaluate(text, scope.get)


class BlockDef(BaseModel):
    """A user-defined block under `blocks:`: a sub-graph with parameters, used like an op."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    params: dict[str, Any] = {}
    """Parameters: `name: int` (required, of that type: int, float, bool, str, any) or
    `name: 64` (optional, with that default)."""
    inputs: list[str] = Field(["x"], min_length=1)
    """Names the body uses for the block's inputs (default one input, `x`)."""
    nodes: list[Any] = Field(min_length=1)
    """The body: nodes as under the spec's `nodes:`; `$param` refers to a parameter."""
    output: str | None = None
    """The body node whose output is the block's output (default: the last node)."""
    description: str | None = None
    """What the block computes (shown in the designer's palette)."""


_PARAM_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "any": object, "list": list}


@dataclass
class _Scope:
    """Where a list of nodes is being expanded: the top level, a user block or a composite."""

    prefix: str
    """Prepended to local ids: '' at the top level, 'layer2.0.' inside a block."""
    group: tuple[str, ...]
    inputs: dict[str, str]
    """Local input names -> the global references they stand for."""
    values: Any
    """Looks up $names: block parameters first, then the spec's vars."""
    path: tuple
    """YAML path of this node list (locations of the nodes come from it)."""
    anchor: Loc | None = None
    """Nodes a built-in composite generated are located at the composite's node."""
    anchor_path: str = ""
    stack: tuple[str, ...] = ()
    """User blocks being expanded, outermost first (to refuse recursion)."""
    init: Any = None
    """The `init:` of the enclosing block node, for nodes inside that give none."""
    owner: str = ""
    """The user's node whose composite generated the nodes of this list ('' for the user's own)."""


class _Params:
    """A user block's parameter values in front of the enclosing scope's values."""

    def __init__(self, params: dict[str, Any], parent: Any):
        self.params, self.parent = params, parent

    def get(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        return self.parent.get(name)


MAX_BLOCK_DEPTH = 16


class _Loader:
    def __init__(self, doc: Document, overrides: dict | None):
        self.doc = doc
        self.out = Collector()
        self.overrides = overrides or {}
        self.nodes: list[Node] = []
        self.aliases: dict[str, str] = {}
        self.user_blocks: dict[str, BlockDef] = {}
        self.defaults: dict[str, dict[str, tuple[Any, tuple]]] = {}
        self.groups: dict[str, Group] = {}
        self.disabled: dict[str, Loc] = {}
        self.scaling = Scaling()
        self.failures = 0
        """Expressions `resolve` could not evaluate so far."""
        self.marks = 0
        """Node maps `_mark` has marked with their YAML path so far."""

    # -- located errors -----------------------------------------------------------------
    def error(self, path: tuple, message: str, at_key: bool = False, scope: _Scope | None = None) -> None:
        if scope is not None and scope.anchor is not None:
            self.out.error(scope.anchor, message, scope.anchor_path)
            return
        loc = self.doc.key_loc(path) if at_key else self.doc.loc(path)
        self.out.error(loc, message, format_path(path))

    def loc(self, path: tuple, scope: _Scope) -> Loc:
        return scope.anchor if scope.anchor is not None else self.doc.loc(path)

    def validate(self, model: type[BaseModel], data: Any, base: tuple, owner: str,
                 origins: dict[str, tuple] | None = None, scope: _Scope | None = None) -> BaseModel | None:
        """Validate `data` with `model`; translate errors to located problems.
        `origins` maps a top-level key to the path it came from (defaults live elsewhere)."""
        try:
            made = model.model_validate(data)
        except ValidationError as exc:
            errors = _union_collapsed(exc.errors(include_url=False))
            errors += quoted_fields(model, data, {e["loc"][0] for e in errors if e["loc"]})
        else:
            errors = quoted_values(data, made)  # pydantic's lax mode read `out: "16"` as 16
            if not errors:
                return made
        fields = [f for f in model.model_fields if f != "op"]
        suggested = {suggestion(e["loc"][-1], fields) for e in errors
                     if e["type"] == "extra_forbidden" and e["loc"]}
        errors = [e for e in errors if not (e["type"] == "missing" and len(e["loc"]) == 1
                                             and e["loc"][0] in suggested)]
        for err in errors:
            loc = err["loc"]
            head = loc[0] if loc else None
            root = (origins or {}).get(head, base + ((head,) if head is not None else ()))
            path = root + tuple(loc[1:]) if head is not None else base
            sub_fields, sub_owner = fields, owner
            if len(loc) > 1:  # a nested model (norm: {...}): list its own keys
                sub = model.model_fields.get(head)
                nested = _nested_model(sub.annotation) if sub else None
                if nested is not None:
                    sub_fields, sub_owner = list(nested.model_fields), str(head)
            message = pydantic_message(err, sub_owner, sub_fields)
            written = self._written(path)
            if isinstance(written, str) and "$" in written and err["type"] != "extra_forbidden":
                message = f"{written!r} is {_describe(err.get('input'))}: {message.split(', got ')[0]}"
                if err["type"] == "int_from_float" and "/" in written.replace("//", ""):
                    message += " (// divides to a whole number)"
                if err["type"] in QUOTED:  # the value of a var, quoted
                    message += f'; write that value without quotes ({err["ctx"]["fix"]}, not "{err["input"]}")'
            if scope is not None and scope.anchor is not None:
                message = f"{format_path(path)}: {message}"
            self.error(path, message, at_key=err["type"] == "extra_forbidden", scope=scope)
        return None

    def _written(self, path: tuple) -> Any:
        """The value as written in the document at `path` (before expressions), if any."""
        value = self.doc.data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    def resolve(self, value: Any, path: tuple, scope) -> Any:
        """Evaluate every expression inside `value`; report failures at their path (and count
        them in `self.failures`, so a caller can tell without walking the result)."""
        if isinstance(value, str):
            return self._resolve_text(value, path, scope) if "$" in value else value
        if isinstance(value, list):
            if not any(map(_may_hold_expressions, value)):
                return list(value)  # plain numbers and names: nothing to evaluate (most arguments)
            return [self.resolve(v, path + (i,), scope) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.resolve(v, path + (k,), scope) if _may_hold_expressions(v) else v
                    for k, v in value.items()}
        return value

    def _resolve_text(self, value: str, path: tuple, scope) -> Any:
        try:
            return _evaluate(value, scope)
        except _Reported:
            self.failures += 1
            return _Failed
        except expr.ExprError as exc:
            hint = ""
            if value.count("(") > value.count(")"):
                hint = ('; inside a {...} map a comma ends the value: quote expressions that '
                        'contain commas, as in "max($a, 2)"')
            self.error(path, f"{value!r}: {exc}{hint}")
            self.failures += 1
            return _Failed

    # -- the document -------------------------------------------------------------------
    def load(self) -> Spec:
        doc = self.doc
        data = doc.data
        if not isinstance(data, dict):
            self.error((), f"a spec is a map with blockgraph, name, inputs and nodes; got {_describe(data)}")
            self.out.raise_if_errors()
        header = self.validate(SpecDocument, data, (), "a spec", None)
        self.out.raise_if_errors()
        assert isinstance(header, SpecDocument)
        values = _Vars(header.vars, doc, self.overrides, self.out)
        resolved_vars = values.resolve_all()
        inputs, input_locs = self._inputs(header, values)
        self._check_plugins(header)
        self.user_blocks = self._user_blocks(header)
        self.defaults = self._defaults(header)
        failures = self.failures
        scaling = self.resolve(header.scaling, ("scaling",), values)
        if self.failures == failures:
            self.scaling = self.validate(Scaling, scaling, ("scaling",), "scaling") or Scaling()
        top = _Scope(prefix="", group=(), inputs={n: n for n in inputs}, values=values, path=("nodes",))
        self._expand(header.nodes, top)
        if len(self.nodes) > MAX_NODES:
            self.out.problems = [p for p in self.out.problems if "more than" in p.message] or self.out.problems
        if not self.nodes and not self.out.errors:
            self.error(("nodes",), "no node is left: every node is left out by `when:` or has `repeat: 0`")
        outputs, output_locs = self._outputs(header)
        self.out.raise_if_errors()
        return Spec(name=header.name, inputs=inputs, nodes=self.nodes, outputs=outputs, output_locs=output_locs,
                    aliases=self.aliases, vars=resolved_vars, init=header.init, reference=header.reference,
                    description=header.description, file=doc.file, text=doc.text, input_locs=input_locs,
                    warnings=self.out.warnings, document=doc, blocks=self.user_blocks, groups=self.groups,
                    overrides=dict(self.overrides), dataset_vars=dict(values.bound))

    def _inputs(self, header: SpecDocument, scope) -> tuple[dict[str, Shape], dict[str, Loc]]:
        inputs, locs = {}, {}
        for name, dims in header.inputs.items():
            path = ("inputs", name)
            locs[name] = self.doc.key_loc(path)
            if not ID_PATTERN.fullmatch(name):
                self.error(path, f"input name {name!r} must be letters, digits and _ (not starting with a digit)", True)
            shape = []
            for i, d in enumerate(self.resolve(dims, path, scope)):
                if d is _Failed:
                    continue
                if isinstance(d, float) and d.is_integer():
                    d = int(d)
                if isinstance(d, bool) or not isinstance(d, int) or d <= 0:
                    self.error(path + (i,), f"expected a positive integer size, got {_describe(d)}"
                               + unquote_hint(d, int))
                else:
                    shape.append(d)
            if not dims:
                self.error(path, "an input shape lists at least one size, e.g. [3, 224, 224]")
            inputs[name] = tuple(shape)
        return inputs, locs

    def _check_plugins(self, header: SpecDocument) -> None:
        from .plugins import loaded

        for i, name in enumerate(header.plugins):
            if name not in loaded():
                self.error(("plugins", i), f"this spec needs plugin {name!r}: load it with --plugin {name} "
                           "(a spec naming a plugin never imports it, since importing runs code)")

    def _user_blocks(self, header: SpecDocument) -> dict[str, BlockDef]:
        blocks = {}
        for name, raw in header.blocks.items():
            path = ("blocks", name)
            if not ID_PATTERN.fullmatch(name):
                self.error(path, f"a block name is letters, digits and _, got {name!r}", True)
                continue
            if registry.get(name) is not None:
                self.error(path, f"block {name!r} has the name of a built-in op; choose another name", True)
                continue
            definition = self.validate(BlockDef, raw, path, f"block {name!r}")
            if definition is None:
                continue
            for pname, ptype in definition.params.items():
                if not ID_PATTERN.fullmatch(pname) or pname in NODE_KEYS:
                    self.error(path + ("params", pname), f"parameter name {pname!r} must be letters, digits and _ "
                               f"and not one of {', '.join(NODE_KEYS)}", True)
            blocks[name] = definition
        return blocks

    def _fields(self, op: str) -> list[str] | None:
        cls = registry.get(op)
        if cls is not None:
            return [f for f in cls.model_fields if f != "op"]
        if op in self.user_blocks:
            return list(self.user_blocks[op].params)
        return None

    def _op_names(self) -> list[str]:
        return registry.names() + sorted(self.user_blocks)

    def _defaults(self, header: SpecDocument) -> dict[str, dict[str, tuple[Any, tuple]]]:
        """op -> {key: (raw value, path)}; keys are checked against the op's fields now."""
        out: dict[str, dict[str, tuple[Any, tuple]]] = {}
        for op, args in header.defaults.items():
            path = ("defaults", op)
            fields = self._fields(op)
            if fields is None:
                self.error(path, f"unknown op {op!r}{did_you_mean(op, self._op_names())}", True)
                continue
            for key, value in args.items():
                if key not in fields:
                    self.error(path + (key,), f"unknown key {key!r} for op {op!r}{did_you_mean(key, fields)} "
                               f"(allowed: {', '.join(fields)})", True)
                else:
                    out.setdefault(op, {})[key] = (value, path + (key,))
        return out

    # -- nodes --------------------------------------------------------------------------
    def _expand(self, raw_nodes: list, scope: _Scope) -> str | None:
        """Expand a node list into self.nodes; return the global reference of its last node."""
        explicit = [n.get("id") for n in raw_nodes if isinstance(n, dict) and isinstance(n.get("id"), str)]
        taken = set(explicit) | set(scope.inputs)
        counters: dict[str, int] = {}
        local: dict[str, str] = dict(scope.inputs)
        first_use: dict[str, tuple] = {}
        previous = next(iter(scope.inputs.values())) if len(scope.inputs) == 1 else None
        outer = scope
        for index, raw in enumerate(raw_nodes):
            path, scope = outer.path + (index,), outer
            if len(self.nodes) > MAX_NODES:
                self.error(path, f"the spec expands to more than {MAX_NODES:,} nodes", scope=scope)
                return previous
            if not isinstance(raw, dict):
                self.error(path, f"a node is a map such as {{op: conv, out: 64}}; got {_describe(raw)}", scope=scope)
                continue
            if WRITTEN_AT in raw:  # the user's own node inside a composite's arguments: its own line
                path, scope = raw[WRITTEN_AT], replace(outer, anchor=None, anchor_path="", owner="")
            if "when" in raw and not self._enabled(raw, path, scope):
                continue
            if isinstance(raw.get("scalable"), str):  # `scalable: $flag`
                raw = {**raw, "scalable": self.resolve(raw["scalable"], path + ("scalable",), scope.values)}
            head = self._head(raw, path, scope)
            if head is None:
                if isinstance(raw.get("id"), str):
                    previous = local[raw["id"]] = scope.prefix + raw["id"]
                continue
            op, local_id, refs, ref_locs, repeat, init_rule, first = head
            transparent = bool(scope.prefix) and len(raw_nodes) == 1 and local_id is None
            if transparent:  # a block of one unnamed node adds no level: layer2.0.conv1
                local_id = ""
            elif local_id is None:
                local_id = self._generated_id(op, counters, taken)
            elif local_id in first_use or local_id in scope.inputs:
                where = self.doc.loc(first_use[local_id]) if local_id in first_use else None
                self.error(path + ("id",), f"duplicate id {local_id!r}"
                           + (f" (first used at line {where.line})" if where else " (it names an input)"), scope=scope)
                continue
            first_use[local_id] = path + ("id",)
            global_id = scope.prefix + local_id if local_id else scope.prefix[:-1]
            implicit = refs is None
            if refs is None:
                if previous is None:
                    names = ", ".join(scope.inputs)
                    self.error(path, "this node has no input: name one with `in:`"
                               + (f" (inputs: {names})" if len(scope.inputs) > 1 else ""), scope=scope)
                    continue
                refs, ref_locs = [previous], [self.loc(path, scope)]
            else:
                refs = self._global_refs(refs, ref_locs, local, explicit, scope, path)
                if refs is None:
                    continue
            self._place(raw, op, path, scope, global_id, refs, ref_locs, repeat, init_rule or scope.init, first,
                        implicit)
            local[local_id] = global_id
            previous = global_id
        return previous

    def _enabled(self, raw: dict, path: tuple, scope: _Scope) -> bool:
        """`when: $flag` leaves a node out (with its id) when the value is false."""
        value = self.resolve(raw["when"], path + ("when",), scope.values)
        if value is _Failed:
            return False
        if isinstance(value, bool) or value in (0, 1):
            if not value and isinstance(raw.get("id"), str):
                self.disabled[scope.prefix + raw["id"]] = self.loc(path + ("when",), scope)
            return bool(value)
        self.error(path + ("when",), f"`when` needs true or false, got {_describe(value)}"
                   + unquote_hint(value, bool), scope=scope)
        return False

    def _global_refs(self, refs, ref_locs, local, explicit, scope: _Scope, path) -> list[str] | None:
        out = []
        for ref, loc in zip(refs, ref_locs):
            if ref in local:
                out.append(local[ref])
            elif scope.prefix + ref in self.disabled:
                where = self.disabled[scope.prefix + ref]
                self.error(path + ("in",), f"{ref!r} is left out by its `when:` (line {where.line})", scope=scope)
                return None
            elif ref in explicit:  # a later node of this list (a cycle, if anything): let the graph say
                out.append(scope.prefix + ref)
            elif not scope.prefix:  # top level: the graph check reports unknown names with context
                out.append(ref)
            else:
                options = sorted(set(local) | set(explicit))
                self.error(path + ("in",), f"{ref!r} is not a node or input of this block"
                           f"{did_you_mean(ref, options)} (known here: {', '.join(options)})", scope=scope)
                return None
        return out

    def _place(self, raw, op, path, scope: _Scope, global_id, refs, ref_locs, repeat, init_rule, first,
               implicit: bool = False) -> None:
        """Validate the node's arguments and add it (or its copies, or its expansion)."""
        loc = self.loc(path, scope)
        if repeat == 0:
            if len(refs) != 1:
                self.error(path + ("repeat",), "repeat: 0 makes a node pass its input through, "
                           "so it needs exactly one input", scope=scope)
                return
            self.aliases[global_id] = refs[0]
            return
        grouped = "repeat" in raw
        args, origins = self._args(raw, op, path, scope)
        if args is None:
            return
        user_composite = not raw.get(GENERATED) and isinstance(registry.get(op), type) and issubclass(
            registry.get(op), Composite)
        marks, shown = self.marks, {}
        if user_composite:
            args = {k: self._mark(v, origins[k]) for k, v in args.items()}
        first_args = None
        if first is not None:
            first_args = dict(args)
            failures = self.failures
            for key, value in first.items():
                first_args[key] = self.resolve(value, path + ("first", key), scope.values)
                origins = {**origins, key: path + ("first", key)}
                if user_composite:
                    first_args[key] = self._mark(first_args[key], origins[key])
            if self.failures != failures:
                return
            if not raw.get(GENERATED) and raw.get("scalable", True) is not False:
                first_args = self._scaled(op, first_args)
        copies = repeat if grouped else 1
        if grouped and global_id not in self.groups:
            self.groups[global_id] = Group(global_id, op, "repeat", loc)
        prev_refs, prev_locs = refs, ref_locs
        cache: dict[int, Any] = {}
        for k in range(copies):
            copy_id = f"{global_id}.{k}" if grouped else global_id
            group = scope.group + ((global_id,) if grouped and scope.group[-1:] != (global_id,) else ())
            these = first_args if (k == 0 and first_args is not None) else args
            key = 0 if these is first_args and first_args is not None else 1
            if key not in cache:
                cache[key] = self._instance(op, these, path, scope, origins)
            made = cache[key]
            if made is None:
                return
            if isinstance(made, Block):
                self.nodes.append(Node(copy_id, made, prev_refs, loc, self._path_str(path, scope), prev_locs,
                                       init_rule, group=group, owner=scope.owner, implicit_input=implicit and k == 0))
            else:
                kind = "composite" if isinstance(made, Composite) else "user"
                if key not in shown:  # the arguments as written, without marks
                    shown[key] = _unmarked(made) if self.marks != marks else made
                self.groups[copy_id] = Group(copy_id, op, kind, loc, shown[key] if kind == "composite" else made[1])
                out = self._expand_composite(made, op, copy_id, group, prev_refs, path, scope, loc, init_rule)
                if out is None:
                    return
                if out != copy_id:
                    self.aliases[copy_id] = out
            prev_refs, prev_locs = [copy_id], [loc]
        if grouped:
            self.aliases[global_id] = f"{global_id}.{copies - 1}"

    def _mark(self, value: Any, path: tuple) -> Any:
        """`value` (a composite's argument, from `path`) with each node map the user wrote in it
        marked with its YAML path (WRITTEN_AT). Values that came from a `$parameter` are not in
        the document and stay unmarked: they are located at the composite."""
        written = self._written(path)
        if isinstance(value, dict) and isinstance(written, dict) and "op" in value and WRITTEN_AT not in value:
            self.marks += 1
            return {**value, WRITTEN_AT: path}
        if isinstance(value, list) and isinstance(written, list) and len(value) == len(written):
            return [self._mark(v, path + (i,)) for i, v in enumerate(value)]
        return value

    def _path_str(self, path: tuple, scope: _Scope) -> str:
        return scope.anchor_path if scope.anchor is not None else format_path(path)

    def _instance(self, op: str, args: dict, path, scope: _Scope, origins):
        """A validated block (primitive or composite) or bound user-block parameters."""
        cls = registry.get(op)
        if cls is not None:
            return self.validate(cls, {"op": op, **args}, path, f"op {op!r}", origins, scope)
        return self._bind(op, args, path, scope, origins)

    def _bind(self, name: str, args: dict, path, scope: _Scope, origins) -> tuple[str, dict] | None:
        definition = self.user_blocks[name]
        bound, ok = {}, True
        for key, value in args.items():
            if key not in definition.params:
                self.error(origins.get(key, path + (key,)), f"unknown parameter {key!r} of block {name!r}"
                           f"{did_you_mean(key, definition.params)} (parameters: {', '.join(definition.params) or 'none'})",
                           at_key=True, scope=scope)
                ok = False
        for pname, spec in definition.params.items():
            required = isinstance(spec, str) and spec in _PARAM_TYPES
            if pname not in args:
                if required:
                    self.error(path, f"block {name!r} needs parameter {pname!r} ({spec})", scope=scope)
                    ok = False
                else:
                    bound[pname] = spec
                continue
            value, want = args[pname], _PARAM_TYPES[spec] if required else type(spec)
            if want is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if want is not object and (not isinstance(value, want) or (want is int and isinstance(value, bool))):
                self.error(origins.get(pname, path + (pname,)), f"parameter {pname!r} of block {name!r} expects "
                           f"{want.__name__}, got {_describe(value)}{unquote_hint(value, want)}", scope=scope)
                ok = False
                continue
            bound[pname] = value
        return (name, bound) if ok else None

    def _expand_composite(self, made, op: str, copy_id: str, group: tuple, refs: list[str], path,
                          scope: _Scope, loc: Loc, init_rule=None) -> str | None:
        if isinstance(made, Composite):
            names = made.input_names
            body, inner_path, anchor, anchor_path = made.expand(), path, loc, self._path_str(path, scope)
            values, stack = scope.values, scope.stack
        else:
            name, params = made
            if name in scope.stack:
                chain = " -> ".join(scope.stack[scope.stack.index(name):] + (name,))
                self.error(path + ("op",), f"block {name!r} uses itself: {chain}", scope=scope)
                return None
            if len(scope.stack) >= MAX_BLOCK_DEPTH:
                self.error(path + ("op",), f"blocks nest deeper than {MAX_BLOCK_DEPTH} levels", scope=scope)
                return None
            definition = self.user_blocks[name]
            names, body = tuple(definition.inputs), definition.nodes
            inner_path, anchor, anchor_path = ("blocks", name, "nodes"), None, ""
            values, stack = _Params(params, _root_values(scope.values)), scope.stack + (name,)
        if len(names) != len(refs):
            self.error(path + ("in",), f"{op} takes {len(names)} input(s) ({', '.join(names)}), got {len(refs)}",
                       scope=scope)
            return None
        inner = _Scope(prefix=copy_id + ".", group=group + ((copy_id,) if group[-1:] != (copy_id,) else ()),
                       inputs=dict(zip(names, refs)), values=values, path=inner_path, anchor=anchor,
                       anchor_path=anchor_path, stack=stack, init=init_rule,
                       owner=scope.owner or (copy_id if isinstance(made, Composite) else ""))
        if anchor is None and scope.anchor is not None:
            inner.anchor, inner.anchor_path = scope.anchor, scope.anchor_path
        output = self._expand(body, inner)
        if not isinstance(made, Composite) and self.user_blocks[made[0]].output is not None:
            output = copy_id + "." + self.user_blocks[made[0]].output
        return output

    def _head(self, raw: dict, path: tuple, scope: _Scope):
        """The keys every node has: op, id, in, repeat, first, init."""
        op = raw.get("op")
        if "op" not in raw:
            self.error(path, "missing key 'op': every node names its op, e.g. {op: conv, out: 64}", scope=scope)
            return None
        if not isinstance(op, str):
            self.error(path + ("op",), f"op must be a name such as conv, got {_describe(op)}", scope=scope)
            return None
        if registry.get(op) is None and op not in self.user_blocks:
            self.error(path + ("op",), f"unknown op {op!r}{did_you_mean(op, self._op_names())}", scope=scope)
            return None
        ok = True
        node_id = raw.get("id")
        if node_id is not None and (not isinstance(node_id, str) or not ID_PATTERN.fullmatch(node_id)):
            self.error(path + ("id",), "an id is letters, digits and _ (not starting with a digit), "
                       f"got {_describe(node_id)}", scope=scope)
            ok = False
        elif node_id is not None and keyword.iskeyword(node_id):
            self.error(path + ("id",), f"id {node_id!r} is a Python keyword, which cannot name the module's "
                       f"attribute (model.{node_id}); choose another, e.g. {node_id}_", scope=scope)
            ok = False
        refs, ref_locs = None, None
        if "in" in raw:
            value = raw["in"]
            items = value if isinstance(value, list) else [value]
            if not items or not all(isinstance(v, str) and v for v in items):
                self.error(path + ("in",), f"`in` names a node or input, or a list of them; got {_describe(value)}",
                           scope=scope)
                ok = False
            else:
                refs = list(items)
                ref_locs = [self.loc(path + ("in",) + ((i,) if isinstance(value, list) else ()), scope)
                            for i in range(len(items))]
        repeat = 1
        if "repeat" in raw:
            repeat = self.resolve(raw["repeat"], path + ("repeat",), scope.values)
            if isinstance(repeat, float) and repeat.is_integer():
                repeat = int(repeat)
            if repeat is _Failed:
                ok = False
            elif isinstance(repeat, bool) or not isinstance(repeat, int) or not 0 <= repeat <= MAX_REPEAT:
                self.error(path + ("repeat",), f"expected a whole number of copies from 0 to {MAX_REPEAT:,}, "
                           f"got {_describe(repeat)}{unquote_hint(repeat, int)}", scope=scope)
                ok = False
            elif repeat > 0 and self.scaling.depth != 1 and not raw.get(GENERATED) and raw.get("scalable", True):
                repeat = min(MAX_REPEAT, math.ceil(repeat * self.scaling.depth))
        if "scalable" in raw and not isinstance(raw["scalable"], bool):
            self.error(path + ("scalable",), f"`scalable` is true or false, got {_describe(raw['scalable'])}"
                       + unquote_hint(raw["scalable"], bool), scope=scope)
            ok = False
        first = raw.get("first")
        if "first" in raw:
            if not isinstance(first, dict):
                self.error(path + ("first",), "`first` is a map of arguments for the first copy, "
                           "e.g. first: {stride: 2}", scope=scope)
                ok = False
            elif "repeat" not in raw:
                self.error(path + ("first",), "`first` only applies to a node with `repeat`", at_key=True, scope=scope)
                ok = False
            else:
                fields = self._fields(op) or []
                for key in first:
                    if key not in fields:
                        self.error(path + ("first", key), f"unknown key {key!r} for op {op!r}"
                                   f"{did_you_mean(key, fields)} (allowed: {', '.join(fields)})", True, scope)
                        ok = False
        init_rule = None
        if "init" in raw:
            init_rule = self.validate(NodeInit, raw["init"], path + ("init",), "a node's init", scope=scope)
            ok = ok and init_rule is not None
        if not ok:
            return None
        return op, node_id, refs, ref_locs, repeat, init_rule, first

    def _args(self, raw: dict, op: str, path: tuple, scope: _Scope):
        args: dict[str, Any] = {}
        origins: dict[str, tuple] = {}
        failures = self.failures
        own_defaults = {} if raw.get(GENERATED) else self.defaults.get(op, {})  # composites set their own
        for key, (value, where) in own_defaults.items():
            args[key], origins[key] = self.resolve(value, where, _root_values(scope.values)), where
        for key, value in raw.items():
            if key in NODE_KEYS or key == GENERATED or key == WRITTEN_AT:
                continue
            if _may_hold_expressions(value):
                value = self.resolve(value, path + (key,), scope.values)
            args[key], origins[key] = value, path + (key,)
        if self.failures != failures:
            return None, origins
        if not raw.get(GENERATED) and raw.get("scalable", True) is not False:
            args = self._scaled(op, args)
        return args, origins

    def _scaled(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Apply `scaling:` to the channel and layer counts the node states."""
        from .blocks.se import make_divisible

        cls = registry.get(op)
        width, depth = self.scaling.width, self.scaling.depth
        if cls is None or (width == 1 and depth == 1):
            return args

        def channels(v):
            if isinstance(v, list):
                return [channels(x) for x in v]
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return make_divisible(v * width, self.scaling.divisor)
            return v

        out = dict(args)
        for name in getattr(cls, "width_fields", ()):
            if name in out and width != 1:
                out[name] = channels(out[name])
        for name in getattr(cls, "depth_fields", ()):
            value = out.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0 and depth != 1:
                out[name] = math.ceil(value * depth)
        return out

    @staticmethod
    def _generated_id(op: str, counters: dict[str, int], taken: set[str]) -> str:
        n = counters.get(op, 0)
        while True:
            n += 1
            candidate = f"{op}{n}"
            if candidate not in taken:
                counters[op] = n
                taken.add(candidate)
                return candidate

    def _outputs(self, header: SpecDocument) -> tuple[list[str], list[Loc]]:
        if header.outputs is None:
            if not self.nodes:
                return [], []
            last = self.nodes[-1]
            top = last.group[0] if last.group else last.id
            return [top], [last.loc]
        names = [header.outputs] if isinstance(header.outputs, str) else list(header.outputs)
        if not names:
            self.error(("outputs",), "outputs lists at least one node id")
        locs = [self.doc.loc(("outputs",) + ((i,) if isinstance(header.outputs, list) else ()))
                for i in range(len(names))]
        for name, loc in zip(names, locs):
            if name in self.disabled:
                self.out.error(loc, f"output {name!r} is left out by its `when:` (line {self.disabled[name].line})",
                               "outputs")
        return names, locs


def _unmarked(value: Any) -> Any:
    """`value` without WRITTEN_AT marks: a composite's arguments as diffs and summaries show them.
    Marks sit where `_mark` puts them: on a node map given as an argument or in (nested) lists."""
    if isinstance(value, Composite):
        fields = {name: getattr(value, name) for name in type(value).model_fields}
        changed = {name: _unmarked(v) for name, v in fields.items() if isinstance(v, (dict, list))}
        changed = {name: v for name, v in changed.items() if v != fields[name]}
        return value.model_copy(update=changed) if changed else value
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != WRITTEN_AT} if WRITTEN_AT in value else value
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    return value


def _root_values(values: Any) -> Any:
    while isinstance(values, _Params):
        values = values.parent
    return values


class _FailedType:
    def __repr__(self) -> str:
        return "<failed>"


_Failed = _FailedType()


def _may_hold_expressions(value: Any) -> bool:
    return isinstance(value, (list, dict)) or (isinstance(value, str) and "$" in value)



def _nested_model(annotation) -> type[BaseModel] | None:
    import typing

    for arg in (typing.get_args(annotation) or (annotation,)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _nested_model(arg) if typing.get_args(arg) else None  # dict[str, A | Model]
        if inner is not None:
            return inner
    return None


def _is_path_like(source: Any) -> bool:
    if isinstance(source, os.PathLike):
        return True
    return isinstance(source, str) and "\n" not in source and (
        source.endswith((".yaml", ".yml")) or (len(source) < 4096 and os.path.isfile(source)))


MERGED_KEYS = ("vars", "blocks", "defaults")
MAX_EXTENDS = 8


def _extend(doc: Document, chain: tuple[str, ...] = ()) -> Document:
    """Resolve `extends:`: the parent's keys under this document's (see SpecDocument.extends)."""
    data = doc.data
    if not isinstance(data, dict) or "extends" not in data:
        return doc
    target = data["extends"]
    loc = doc.loc(("extends",))
    if not isinstance(target, str) or not target.strip():
        raise SpecError(Problem(loc, "extends names a spec file, e.g. extends: resnet50.yaml", "extends"))
    base_dir = Path(doc.file).parent if doc.file != "<string>" else Path.cwd()
    path = (base_dir / target).resolve()
    if str(path) in chain or len(chain) >= MAX_EXTENDS:
        cycle = " -> ".join(Path(c).name for c in chain + (str(path),))
        raise SpecError(Problem(loc, f"specs extend each other in a loop (or more than {MAX_EXTENDS} deep): {cycle}",
                                "extends"))
    if not path.is_file():
        raise SpecError(Problem(loc, f"no such spec file {target!r} (looked in {base_dir})", "extends"))
    shown = str(Path(doc.file).parent / target) if doc.file != "<string>" else str(path)
    parent = _extend(parse(path, file=os.path.normpath(shown)),
                     chain + (str(Path(doc.file).resolve()) if doc.file != "<string>" else "<string>", str(path)))
    if not isinstance(parent.data, dict):
        raise SpecError(Problem(parent.loc(()), "the extended spec is not a map of keys", ""))
    merged = {k: v for k, v in parent.data.items()}
    marks = {p: l for p, l in parent.marks.items() if p}
    key_marks = dict(parent.key_marks)

    def take(prefix: tuple) -> None:
        for table, own in ((marks, doc.marks), (key_marks, doc.key_marks)):
            for p in [p for p in table if p[: len(prefix)] == prefix]:
                del table[p]
            table.update({p: l for p, l in own.items() if p[: len(prefix)] == prefix})

    for key, value in data.items():
        if key == "extends":
            continue
        if key in MERGED_KEYS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
            for sub in value:
                take((key, sub))
        else:
            merged[key] = value
            take((key,))
    marks[()] = doc.loc(())
    return Document(merged, doc.file, doc.text, marks, key_marks)


def load(source: str | os.PathLike | bytes, vars: dict[str, Any] | None = None, *,
         file: str | os.PathLike | None = None) -> Spec:
    """Load a spec from a path or from YAML text; `vars` override the spec's vars.

    `file` names YAML text as if it were read from that path (an editor's buffer): problems
    are reported against it and `extends:` resolves next to it rather than in the working
    directory. Raises `SpecError` listing every located problem found before the graph check.
    """
    if _is_path_like(source):
        doc = parse(Path(source), file=str(file) if file is not None else None)
    else:
        doc = parse(source, file=str(file) if file is not None else None)
    return _Loader(_extend(doc), vars).load()


def with_vars(spec: Spec, values: dict[str, Any]) -> Spec:
    """`spec` loaded again from its document with `values` added to its overrides (how the
    trainer sets vars bound to the dataset). Raises SpecError like `load`."""
    if spec.document is None:
        raise ValueError("with_vars needs a spec loaded from text (this one has no document)")
    return _Loader(spec.document, {**spec.overrides, **values}).load()


def load_document(doc: Document, vars: dict[str, Any] | None = None) -> Spec:
    """A `Spec` from an already parsed, self-contained document (e.g. a checkpoint's saved
    spec, whose `extends:` is already merged)."""
    return _Loader(doc, vars).load()


__all__ = ["FORMAT_VERSION", "Node", "Spec", "SpecDocument", "SpecError", "load", "did_you_mean",
           "with_vars", "load_document", "DatasetVar", "DATASET_FACTS"]
