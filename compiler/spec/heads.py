"""Reading one node: its own keys (`NodeKeys`: op, id, in, repeat, first, init, scalable) into
a `NodeHead`, and its op's arguments, with the spec's `defaults:` under them, expressions
evaluated and `scaling:` applied.

`Definitions` is what the spec's header defines that every node reads: its user blocks, its
defaults per op and its scaling.
"""

from __future__ import annotations

import keyword
import math
from dataclasses import dataclass, field
from typing import Any

from ..blocks import registry
from ..blocks.base import GENERATED
from ..errors import Loc
from ..init import NodeInit
from ..quoted import unquote_hint
from .checking import Checker, Scope
from .document import ID_PATTERN, BlockDef, Scaling
from .messages import describe, did_you_mean, unknown_key
from .node_keys import MAX_REPEAT, NODE_KEYS
from .values import FAILED, may_hold_expressions, root_values

WRITTEN_AT = "__written_at__"
"""Key marking a node dict the user wrote inside a composite's arguments (a residual's `body`,
an inception's `branches`) with its YAML path, so that it, and what it expands to, is located
at its own line rather than at the composite's. Composites pass the key on with the dict."""


@dataclass
class Default:
    """One entry of `defaults:` (`conv: {norm: batch}`): the value as written and where."""

    value: Any
    """Before expressions (each node that takes it evaluates it)."""
    path: tuple


@dataclass
class Definitions:
    """What the spec's header defines that its nodes use."""

    user_blocks: dict[str, BlockDef] = field(default_factory=dict)
    defaults: dict[str, dict[str, Default]] = field(default_factory=dict)
    """op -> {key: its default}."""
    scaling: Scaling = field(default_factory=Scaling)

    def fields(self, op: str) -> list[str] | None:
        """The arguments `op` takes (a user block's parameters), or None for an unknown op."""
        cls = registry.get(op)
        if cls is not None:
            return [f for f in cls.model_fields if f != "op"]
        if op in self.user_blocks:
            return list(self.user_blocks[op].params)
        return None

    def op_names(self) -> list[str]:
        return registry.names() + sorted(self.user_blocks)


@dataclass
class NodeHead:
    """A node's own keys, checked (see NodeKeys)."""

    op: str
    id: str | None
    """The id as written; None when the node gives none."""
    refs: list[str] | None
    """`in:` as written; None when the node reads the previous one."""
    ref_locs: list[Loc] | None
    repeat: int
    """Copies to make, `scaling:`'s depth applied (1 without `repeat:`)."""
    init: NodeInit | None
    first: dict | None


@dataclass
class Arguments:
    """A node's op arguments, ready to validate, and where each was written."""

    values: dict[str, Any] | None
    """None when an expression among them failed (its error is reported)."""
    origins: dict[str, tuple]
    """Argument -> its YAML path (a default's is under `defaults:`)."""


class NodeReader:
    """Reads nodes for the expansion, reporting through `checker`."""

    def __init__(self, checker: Checker, definitions: Definitions):
        self.checker, self.definitions = checker, definitions

    def head(self, raw: dict, path: tuple, scope: Scope) -> NodeHead | None:
        """The keys every node has: op, id, in, repeat, first, init (None after an error)."""
        error, defs = self.checker.error, self.definitions
        op = raw.get("op")
        if "op" not in raw:
            error(path, "missing key 'op': every node names its op, e.g. {op: conv, out: 64}", scope=scope)
            return None
        if not isinstance(op, str):
            error(path + ("op",), f"op must be a name such as conv, got {describe(op)}", scope=scope)
            return None
        if registry.get(op) is None and op not in defs.user_blocks:
            error(path + ("op",), f"unknown op {op!r}{did_you_mean(op, defs.op_names())}", scope=scope)
            return None
        ok = self._id_ok(raw.get("id"), path, scope)
        refs, ref_locs = None, None
        if "in" in raw:
            value = raw["in"]
            items = value if isinstance(value, list) else [value]
            if not items or not all(isinstance(v, str) and v for v in items):
                error(path + ("in",), f"`in` names a node or input, or a list of them; got {describe(value)}",
                      scope=scope)
                ok = False
            else:
                refs = list(items)
                ref_locs = [self.checker.loc(path + ("in",) + ((i,) if isinstance(value, list) else ()), scope)
                            for i in range(len(items))]
        repeat = self._repeat(raw, path, scope)
        ok = ok and repeat is not None
        if "scalable" in raw and not isinstance(raw["scalable"], bool):
            error(path + ("scalable",), f"`scalable` is true or false, got {describe(raw['scalable'])}"
                  + unquote_hint(raw["scalable"], bool), scope=scope)
            ok = False
        first = raw.get("first")
        if "first" in raw:
            ok = self._first_ok(raw, op, path, scope) and ok
        init_rule = None
        if "init" in raw:
            init_rule = self.checker.validate(NodeInit, raw["init"], path + ("init",), "a node's init", scope=scope)
            ok = ok and init_rule is not None
        if not ok:
            return None
        return NodeHead(op=op, id=raw.get("id"), refs=refs, ref_locs=ref_locs, repeat=repeat, init=init_rule,
                        first=first)

    def _id_ok(self, node_id: Any, path: tuple, scope: Scope) -> bool:
        if node_id is not None and (not isinstance(node_id, str) or not ID_PATTERN.fullmatch(node_id)):
            self.checker.error(path + ("id",), "an id is letters, digits and _ (not starting with a digit), "
                               f"got {describe(node_id)}", scope=scope)
            return False
        if node_id is not None and keyword.iskeyword(node_id):
            self.checker.error(path + ("id",), f"id {node_id!r} is a Python keyword, which cannot name the "
                               f"module's attribute (model.{node_id}); choose another, e.g. {node_id}_", scope=scope)
            return False
        return True

    def _repeat(self, raw: dict, path: tuple, scope: Scope) -> int | None:
        if "repeat" not in raw:
            return 1
        repeat = self.checker.resolve(raw["repeat"], path + ("repeat",), scope.values)
        if isinstance(repeat, float) and repeat.is_integer():
            repeat = int(repeat)
        if repeat is FAILED:
            return None
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 0 <= repeat <= MAX_REPEAT:
            self.checker.error(path + ("repeat",), f"expected a whole number of copies from 0 to {MAX_REPEAT:,}, "
                               f"got {describe(repeat)}{unquote_hint(repeat, int)}", scope=scope)
            return None
        depth = self.definitions.scaling.depth
        if repeat > 0 and depth != 1 and not raw.get(GENERATED) and raw.get("scalable", True):
            repeat = min(MAX_REPEAT, math.ceil(repeat * depth))
        return repeat

    def _first_ok(self, raw: dict, op: str, path: tuple, scope: Scope) -> bool:
        first, error = raw["first"], self.checker.error
        if not isinstance(first, dict):
            error(path + ("first",), "`first` is a map of arguments for the first copy, "
                  "e.g. first: {stride: 2}", scope=scope)
            return False
        if "repeat" not in raw:
            error(path + ("first",), "`first` only applies to a node with `repeat`", at_key=True, scope=scope)
            return False
        ok = True
        fields = self.definitions.fields(op) or []
        for key in first:
            if key not in fields:
                error(path + ("first", key), unknown_key(key, f"for op {op!r}", fields), at_key=True, scope=scope)
                ok = False
        return ok

    def arguments(self, raw: dict, op: str, path: tuple, scope: Scope) -> Arguments:
        """The op's arguments: its defaults under the node's own, evaluated and scaled."""
        values: dict[str, Any] = {}
        origins: dict[str, tuple] = {}
        checker = self.checker
        failures = checker.failures
        own_defaults = {} if raw.get(GENERATED) else self.definitions.defaults.get(op, {})  # composites set theirs
        for key, default in own_defaults.items():
            values[key] = checker.resolve(default.value, default.path, root_values(scope.values))
            origins[key] = default.path
        for key, value in raw.items():
            if key in NODE_KEYS or key == GENERATED or key == WRITTEN_AT:
                continue
            if may_hold_expressions(value):
                value = checker.resolve(value, path + (key,), scope.values)
            values[key], origins[key] = value, path + (key,)
        if checker.failures != failures:
            return Arguments(None, origins)
        if not raw.get(GENERATED) and raw.get("scalable", True) is not False:
            values = self.scaled(op, values)
        return Arguments(values, origins)

    def scaled(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Apply `scaling:` to the channel and layer counts the node states."""
        from ..blocks.se import make_divisible

        cls = registry.get(op)
        scaling = self.definitions.scaling
        width, depth = scaling.width, scaling.depth
        if cls is None or (width == 1 and depth == 1):
            return args

        def channels(v):
            if isinstance(v, list):
                return [channels(x) for x in v]
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return make_divisible(v * width, scaling.divisor)
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
