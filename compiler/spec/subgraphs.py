"""The one interface through which a node that stands for several expands: a built-in
composite (`residual`, `inception`, ...) and a user block under `blocks:` are both a
`Subgraph`, which says what its `Group` records and gives the `Body` to expand at a `Site`.

The two differ only in where the body comes from and how it is located: a composite's nodes
are generated, so their problems are shown at the composite's node and belong to it; a user
block's nodes are written under `blocks:`, are located there, and see the block's parameters
in front of the spec's vars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..blocks.base import Composite
from ..errors import Loc
from ..quoted import unquote_hint
from .checking import Checker, Scope
from .document import PARAM_TYPES, BlockDef
from .heads import WRITTEN_AT
from .messages import describe, did_you_mean
from .values import Params, root_values

MAX_BLOCK_DEPTH = 16


@dataclass
class Site:
    """Where a subgraph is used: one copy of the node that names it."""

    op: str
    copy_id: str
    """The id its nodes are prefixed with (`stage1.0`)."""
    group: tuple[str, ...]
    """The enclosing groups of that copy, outermost first."""
    refs: list[str]
    """The global references the copy reads."""
    path: tuple
    scope: Scope
    loc: Loc


@dataclass
class Body:
    """The nodes a subgraph expands to and how to read them."""

    input_names: tuple[str, ...]
    nodes: list
    path: tuple
    """The YAML path the nodes are located under."""
    values: Any
    """What `$names` in the nodes look up."""
    stack: tuple[str, ...]
    """User blocks being expanded, outermost first."""
    anchor: Loc | None = None
    """Where the nodes' problems are shown, if not at their own lines."""
    anchor_path: str = ""
    owner: str = ""
    """The user's node the generated nodes belong to ('' for nodes the user wrote)."""
    output: str | None = None
    """The local id of the node giving the output (None: the last node)."""


class Subgraph(Protocol):
    kind: Literal["composite", "user"]

    @property
    def shown(self) -> Any:
        """What `Group.block` records: the composite as written, or the bound parameters."""

    def body(self, site: Site, checker: Checker) -> Body | None:
        """The nodes to expand at `site`, or None after reporting why they cannot be."""


@dataclass
class CompositeUse:
    """A validated built-in composite."""

    composite: Composite
    shown: Composite
    """The composite without the marks `WRITTEN_AT` added to its arguments."""
    kind: Literal["composite"] = "composite"

    def body(self, site: Site, checker: Checker) -> Body:
        scope = site.scope
        return Body(input_names=tuple(self.composite.input_names), nodes=self.composite.expand(), path=site.path,
                    values=scope.values, stack=scope.stack, anchor=site.loc,
                    anchor_path=checker.path_str(site.path, scope), owner=scope.owner or site.copy_id)


@dataclass
class UserBlockUse:
    """A user block with its parameters bound."""

    name: str
    params: dict[str, Any]
    definition: BlockDef
    kind: Literal["user"] = "user"

    @property
    def shown(self) -> dict[str, Any]:
        return self.params

    def body(self, site: Site, checker: Checker) -> Body | None:
        scope, name = site.scope, self.name
        if name in scope.stack:
            chain = " -> ".join(scope.stack[scope.stack.index(name):] + (name,))
            checker.error(site.path + ("op",), f"block {name!r} uses itself: {chain}", scope=scope)
            return None
        if len(scope.stack) >= MAX_BLOCK_DEPTH:
            checker.error(site.path + ("op",), f"blocks nest deeper than {MAX_BLOCK_DEPTH} levels", scope=scope)
            return None
        return Body(input_names=tuple(self.definition.inputs), nodes=self.definition.nodes,
                    path=("blocks", name, "nodes"), values=Params(self.params, root_values(scope.values)),
                    stack=scope.stack + (name,), owner=scope.owner, output=self.definition.output)


def bind_user_block(checker: Checker, definition: BlockDef, name: str, args: dict, path: tuple, scope: Scope,
                    origins: dict[str, tuple]) -> UserBlockUse | None:
    """The block's parameters from a node's arguments: each checked against its declared type
    (a whole float is an int, an int a float), defaults filled in; None after an error."""
    bound, ok = {}, True
    for key in args:
        if key not in definition.params:
            checker.error(origins.get(key, path + (key,)), f"unknown parameter {key!r} of block {name!r}"
                          f"{did_you_mean(key, definition.params)} (parameters: "
                          f"{', '.join(definition.params) or 'none'})", at_key=True, scope=scope)
            ok = False
    for pname, declared in definition.params.items():
        required = isinstance(declared, str) and declared in PARAM_TYPES
        if pname not in args:
            if required:
                checker.error(path, f"block {name!r} needs parameter {pname!r} ({declared})", scope=scope)
                ok = False
            else:
                bound[pname] = declared
            continue
        value, want = args[pname], PARAM_TYPES[declared] if required else type(declared)
        if want is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is not object and (not isinstance(value, want) or (want is int and isinstance(value, bool))):
            checker.error(origins.get(pname, path + (pname,)), f"parameter {pname!r} of block {name!r} expects "
                          f"{want.__name__}, got {describe(value)}{unquote_hint(value, want)}", scope=scope)
            ok = False
            continue
        bound[pname] = value
    return UserBlockUse(name, bound, definition) if ok else None


def unmarked(value: Any) -> Any:
    """`value` without WRITTEN_AT marks: a composite's arguments as diffs and summaries show them.
    Marks sit where the expansion puts them: on a node map given as an argument or in (nested) lists."""
    if isinstance(value, Composite):
        fields = {name: getattr(value, name) for name in type(value).model_fields}
        changed = {name: unmarked(v) for name, v in fields.items() if isinstance(v, (dict, list))}
        changed = {name: v for name, v in changed.items() if v != fields[name]}
        return value.model_copy(update=changed) if changed else value
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != WRITTEN_AT} if WRITTEN_AT in value else value
    if isinstance(value, list):
        return [unmarked(v) for v in value]
    return value
