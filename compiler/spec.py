"""Located tree -> `Spec`: top-level keys checked, vars resolved, nodes validated and expanded.

The document's top level is a pydantic model (`SpecDocument`); each node is validated by the
class its `op` names (a discriminated union over the block registry). Before validation,
expressions (`$width * 2`) are evaluated, the spec's `defaults:` for the op are merged under
the node's own arguments, and `repeat:` is unrolled. Every problem becomes a located
`Problem`: a pydantic error's `loc` is a path under the node, and the located tree knows the
line and column of every path.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import expr
from .blocks import Block, registry
from .blocks.base import Shape
from .errors import Collector, Loc, Problem, SpecError, format_path
from .init import InitPolicy, Rule
from .source import Document, parse

FORMAT_VERSION = 1
NODE_KEYS = ("op", "id", "in", "repeat", "init")
"""Keys every node may carry besides its op's own arguments."""
ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_REPEAT = 10_000
MAX_NODES = 100_000


class SpecDocument(BaseModel):
    """The top level of a spec file. Node contents are validated per op (see blocks/)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    blockgraph: Literal[1]
    """Format version of the spec language (1)."""
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=100)
    """Name of the architecture; also the class name of the generated module."""
    reference: str | None = None
    """The implementation this spec reproduces, e.g. torchvision.models.vgg16."""
    description: str | None = None
    """Free text shown in summaries."""
    inputs: dict[str, list[int | str]] = Field(min_length=1)
    """Named per-sample input shapes, channels first; the batch dimension is implicit."""
    vars: dict[str, int | float | bool | str] = {}
    """Named values usable as $name in any argument; `load(vars=...)` overrides them."""
    defaults: dict[str, dict[str, Any]] = {}
    """Default arguments per op, e.g. {conv: {norm: batch, act: relu}}."""
    init: InitPolicy = InitPolicy()
    """Weight and bias initialisation policies per op family."""
    nodes: list[Any] = Field(min_length=1)
    """The graph, in order: each node reads the previous one unless it names `in`."""
    outputs: list[str] | str | None = None
    """Node ids returned by the module (default: the last node)."""


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
    init: Rule | None = None
    group: tuple[str, ...] = ()
    """Enclosing repeat groups / composite blocks, outermost first (for summaries and renders)."""

    @property
    def op(self) -> str:
        return self.block.op


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

    def node(self, node_id: str) -> Node:
        return self._by_id[node_id]

    @property
    def _by_id(self) -> dict[str, Node]:
        cached = self.__dict__.get("_by_id_cache")
        if cached is None or len(cached) != len(self.nodes):
            cached = self.__dict__["_by_id_cache"] = {n.id: n for n in self.nodes}
        return cached


# -- messages ------------------------------------------------------------------------------

def did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


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
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_describe(got)}"
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
            or p.startswith(("constrained-", "function-", "lax-", "json-or-python", "union[")))))
        err = {**err, "loc": loc}
        prev = seen.get(loc)
        # prefer a bound violation of the scalar member over "expected a list" of the tuple member
        if prev is None or (prev["type"] in ("tuple_type", "list_type", "literal_error", "none_required")
                            and err["type"] not in ("tuple_type", "list_type", "none_required")):
            seen[loc] = err
    return list(seen.values())


# -- the loader ----------------------------------------------------------------------------

class _Vars:
    """Spec vars with overrides, evaluated lazily so vars may use other vars."""

    def __init__(self, raw: dict, doc: Document, overrides: dict, out: Collector):
        self.raw, self.doc, self.out = dict(raw), doc, out
        self.values: dict[str, Any] = {}
        self.active: list[str] = []
        for name, value in overrides.items():
            if name not in self.raw:
                out.error(Loc("<vars>", 1, 1), f"override of unknown var {name!r}{did_you_mean(name, self.raw)}"
                          + (f" (the spec defines: {', '.join(self.raw)})" if self.raw else " (the spec defines no vars)"))
                continue
            self.raw[name] = value
            self.values.pop(name, None)
        self.overridden = set(overrides)

    def get(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
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
            except expr.ExprError as exc:
                loc = Loc("<vars>", 1, 1) if name in self.overridden else self.doc.loc(("vars", name))
                self.out.error(loc, f"{self.raw[name]!r}: {exc}", f"vars.{name}")
        return dict(self.values)


_WHOLE_VAR = re.compile(r"\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*")


def _evaluate(text: str, scope) -> Any:
    whole = _WHOLE_VAR.fullmatch(text)
    if whole:  # `$name` alone stands for the var's value, whatever its type
        return scope.get(whole.group(1))
    return expr.evaluate(text, scope.get)


class _Loader:
    def __init__(self, doc: Document, overrides: dict | None):
        self.doc = doc
        self.out = Collector()
        self.overrides = overrides or {}

    # located errors
    def error(self, path: tuple, message: str, at_key: bool = False) -> None:
        loc = self.doc.key_loc(path) if at_key else self.doc.loc(path)
        self.out.error(loc, message, format_path(path))

    def validate(self, model: type[BaseModel], data: Any, base: tuple, owner: str,
                 origins: dict[str, tuple] | None = None) -> BaseModel | None:
        """Validate `data` with `model`; translate errors to located problems.
        `origins` maps a top-level key to the path it came from (defaults live elsewhere)."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            fields = [f for f in model.model_fields if f != "op"]
            for err in _union_collapsed(exc.errors(include_url=False)):
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
                self.error(path, pydantic_message(err, sub_owner, sub_fields),
                           at_key=err["type"] == "extra_forbidden")
            return None

    def resolve(self, value: Any, path: tuple, scope) -> Any:
        """Evaluate every expression inside `value`; report failures at their path."""
        if isinstance(value, str) and "$" in value:
            try:
                return _evaluate(value, scope)
            except expr.ExprError as exc:
                hint = ""
                if value.count("(") > value.count(")"):
                    hint = ('; inside a {...} map a comma ends the value: quote expressions that '
                            'contain commas, as in "max($a, 2)"')
                self.error(path, f"{value!r}: {exc}{hint}")
                return _Failed
        if isinstance(value, list):
            return [self.resolve(v, path + (i,), scope) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.resolve(v, path + (k,), scope) for k, v in value.items()}
        return value

    def load(self) -> Spec:
        doc = self.doc
        data = doc.data
        if not isinstance(data, dict):
            self.error((), f"a spec is a map with blockgraph, name, inputs and nodes; got {_describe(data)}")
            self.out.raise_if_errors()
        header = self.validate(SpecDocument, data, (), "a spec", None)
        self.out.raise_if_errors()
        assert isinstance(header, SpecDocument)
        scope = _Vars(header.vars, doc, self.overrides, self.out)
        values = scope.resolve_all()
        inputs, input_locs = self._inputs(header, scope)
        defaults = self._defaults(header)
        nodes, aliases = self._nodes(header.nodes, defaults, scope, inputs)
        outputs, output_locs = self._outputs(header, nodes, aliases)
        self.out.raise_if_errors()
        return Spec(name=header.name, inputs=inputs, nodes=nodes, outputs=outputs, output_locs=output_locs,
                    aliases=aliases, vars=values, init=header.init, reference=header.reference,
                    description=header.description, file=doc.file, text=doc.text, input_locs=input_locs,
                    warnings=self.out.warnings, document=doc)

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
                    self.error(path + (i,), f"expected a positive integer size, got {_describe(d)}")
                else:
                    shape.append(d)
            if not dims:
                self.error(path, "an input shape lists at least one size, e.g. [3, 224, 224]")
            inputs[name] = tuple(shape)
        return inputs, locs

    def _defaults(self, header: SpecDocument) -> dict[str, dict[str, tuple[Any, tuple]]]:
        """op -> {key: (raw value, path)}; keys are checked against the op's fields now."""
        out: dict[str, dict[str, tuple[Any, tuple]]] = {}
        for op, args in header.defaults.items():
            path = ("defaults", op)
            cls = registry.get(op)
            if cls is None:
                self.error(path, f"unknown op {op!r}{did_you_mean(op, registry.names())}", True)
                continue
            fields = [f for f in cls.model_fields if f != "op"]
            for key, value in args.items():
                if key not in fields:
                    self.error(path + (key,), f"unknown key {key!r} for op {op!r}{did_you_mean(key, fields)} "
                               f"(allowed: {', '.join(fields)})", True)
                else:
                    out.setdefault(op, {})[key] = (value, path + (key,))
        return out

    def _nodes(self, raw_nodes: list, defaults, scope, inputs) -> tuple[list[Node], dict[str, str]]:
        explicit = {n.get("id") for n in raw_nodes if isinstance(n, dict) and isinstance(n.get("id"), str)}
        taken = set(explicit) | set(inputs)
        counters: dict[str, int] = {}
        nodes: list[Node] = []
        aliases: dict[str, str] = {}
        seen_ids: dict[str, tuple] = {name: ("inputs", name) for name in inputs}
        previous = next(iter(inputs)) if len(inputs) == 1 else None
        for index, raw in enumerate(raw_nodes):
            path = ("nodes", index)
            if not isinstance(raw, dict):
                self.error(path, f"a node is a map such as {{op: conv, out: 64}}; got {_describe(raw)}")
                continue
            parsed = self._node(raw, path, defaults, scope)
            if parsed is None:
                previous = raw.get("id") if isinstance(raw.get("id"), str) else previous
                continue
            block, node_id, refs, ref_locs, repeat, init_rule = parsed
            if node_id is None:
                node_id = self._generated_id(block.op, counters, taken)
            elif node_id in seen_ids:
                first = self.doc.loc(seen_ids[node_id])
                self.error(path + ("id",), f"duplicate id {node_id!r} (first used at line {first.line})")
                continue
            seen_ids[node_id] = path + ("id",)
            if refs is None:
                if previous is None:
                    self.error(path, "this node has no input: name one with `in:`"
                               + (f" (inputs: {', '.join(inputs)})" if len(inputs) > 1 else ""))
                    continue
                refs, ref_locs = [previous], [self.doc.loc(path)]
            loc = self.doc.loc(path)
            if repeat == 0:
                if len(refs) != 1:
                    self.error(path + ("repeat",), "repeat: 0 makes a node pass its input through, "
                               "so it needs exactly one input")
                    continue
                aliases[node_id] = refs[0]
            elif repeat == 1 and not nodes_are_grouped(raw):
                nodes.append(Node(node_id, block, refs, loc, format_path(path), ref_locs, init_rule))
            else:
                prev_ref, prev_locs = refs, ref_locs
                for k in range(repeat):
                    copy_id = f"{node_id}.{k}"
                    nodes.append(Node(copy_id, block, prev_ref, loc, format_path(path), prev_locs,
                                      init_rule, group=(node_id,)))
                    prev_ref, prev_locs = [copy_id], [loc]
                aliases[node_id] = f"{node_id}.{repeat - 1}"
            previous = node_id
            if len(nodes) > MAX_NODES:
                self.error(path, f"the spec expands to more than {MAX_NODES:,} nodes")
                break
        return nodes, aliases

    def _node(self, raw: dict, path: tuple, defaults, scope):
        op = raw.get("op")
        if "op" not in raw:
            self.error(path, "missing key 'op': every node names its op, e.g. {op: conv, out: 64}")
            return None
        if not isinstance(op, str):
            self.error(path + ("op",), f"op must be a name such as conv, got {_describe(op)}")
            return None
        cls = registry.get(op)
        if cls is None:
            self.error(path + ("op",), f"unknown op {op!r}{did_you_mean(op, registry.names())}")
            return None
        ok = True
        node_id = raw.get("id")
        if node_id is not None and (not isinstance(node_id, str) or not ID_PATTERN.fullmatch(node_id)):
            self.error(path + ("id",), f"an id is letters, digits and _ (not starting with a digit), got {_describe(node_id)}")
            ok = False
        refs, ref_locs = None, None
        if "in" in raw:
            value = raw["in"]
            items = value if isinstance(value, list) else [value]
            if not items or not all(isinstance(v, str) and v for v in items):
                self.error(path + ("in",), f"`in` names a node or input, or a list of them; got {_describe(value)}")
                ok = False
            else:
                refs = list(items)
                ref_locs = [self.doc.loc(path + ("in",) + ((i,) if isinstance(value, list) else ()))
                            for i in range(len(items))]
        repeat = 1
        if "repeat" in raw:
            repeat = self.resolve(raw["repeat"], path + ("repeat",), scope)
            if isinstance(repeat, float) and repeat.is_integer():
                repeat = int(repeat)
            if repeat is _Failed:
                ok = False
            elif isinstance(repeat, bool) or not isinstance(repeat, int) or not 0 <= repeat <= MAX_REPEAT:
                self.error(path + ("repeat",), f"expected a whole number of copies from 0 to {MAX_REPEAT:,}, "
                           f"got {_describe(repeat)}")
                ok = False
        init_rule = None
        if "init" in raw:
            init_rule = self.validate(Rule, raw["init"], path + ("init",), "a node's init")
            ok = ok and init_rule is not None
        args: dict[str, Any] = {"op": op}
        origins: dict[str, tuple] = {}
        for key, (value, where) in defaults.get(op, {}).items():
            args[key], origins[key] = self.resolve(value, where, scope), where
        for key, value in raw.items():
            if key in NODE_KEYS:
                continue
            args[key], origins[key] = self.resolve(value, path + (key,), scope), path + (key,)
        if any(v is _Failed for v in args.values()) or _contains_failed(args):
            return None
        block = self.validate(cls, args, path, f"op {op!r}", origins)
        if block is None or not ok:
            return None
        return block, node_id, refs, ref_locs, repeat, init_rule

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

    def _outputs(self, header: SpecDocument, nodes: list[Node], aliases) -> tuple[list[str], list[Loc]]:
        if header.outputs is None:
            if not nodes:
                return [], []
            last = nodes[-1]
            out = last.group[0] if last.group and aliases.get(last.group[0]) == last.id else last.id
            return [out], [last.loc]
        names = [header.outputs] if isinstance(header.outputs, str) else list(header.outputs)
        if not names:
            self.error(("outputs",), "outputs lists at least one node id")
        locs = [self.doc.loc(("outputs",) + ((i,) if isinstance(header.outputs, list) else ()))
                for i in range(len(names))]
        return names, locs


class _FailedType:
    def __repr__(self) -> str:
        return "<failed>"


_Failed = _FailedType()


def _contains_failed(value: Any) -> bool:
    if value is _Failed:
        return True
    if isinstance(value, list):
        return any(_contains_failed(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_failed(v) for v in value.values())
    return False


def nodes_are_grouped(raw: dict) -> bool:
    """A node written with `repeat:` keeps hierarchical ids (`id.0`) even when repeated once."""
    return "repeat" in raw


def _nested_model(annotation) -> type[BaseModel] | None:
    import typing

    for arg in (typing.get_args(annotation) or (annotation,)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _is_path_like(source: Any) -> bool:
    if isinstance(source, os.PathLike):
        return True
    return isinstance(source, str) and "\n" not in source and (
        source.endswith((".yaml", ".yml")) or (len(source) < 4096 and os.path.isfile(source)))


def load(source: str | os.PathLike | bytes, vars: dict[str, Any] | None = None) -> Spec:
    """Load a spec from a path or from YAML text; `vars` override the spec's vars.

    Raises `SpecError` listing every located problem found before the graph check.
    """
    if _is_path_like(source):
        doc = parse(Path(source))
    else:
        doc = parse(source)
    return _Loader(doc, vars).load()


__all__ = ["FORMAT_VERSION", "Node", "Spec", "SpecDocument", "SpecError", "load", "did_you_mean"]
