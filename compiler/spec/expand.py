"""Node expansion: a list of raw nodes becomes `Node`s with hierarchical ids.

In order, per node: `when:` leaves it out, its own keys are read (`heads.NodeReader`), an id
is generated when it gives none (`{op}{n}`), `in:` is resolved within its list, `repeat:` and
`first:` are unrolled into `id.0 ... id.N-1`, and each copy's arguments are validated by the
op's block class. A copy that is a composite or a user block is a `Subgraph` whose body is
expanded in its own `Scope` (recursively), and `groups` / `aliases` remember what its id
stands for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..blocks import Block, registry
from ..blocks.base import GENERATED, Composite
from ..errors import Loc
from ..init import NodeInit
from ..quoted import unquote_hint
from .checking import Checker, Scope
from .heads import WRITTEN_AT, Definitions, NodeHead, NodeReader
from .messages import describe, did_you_mean
from .results import Group, Node
from .subgraphs import CompositeUse, Site, Subgraph, bind_user_block, unmarked
from .values import FAILED

MAX_NODES = 100_000


@dataclass
class Placement:
    """One node, read and wired, ready to be validated and added (with its copies)."""

    raw: dict
    head: NodeHead
    path: tuple
    scope: Scope
    global_id: str
    refs: list[str]
    ref_locs: list[Loc]
    init: NodeInit | None
    """The node's `init:`, else its enclosing block node's."""
    implicit: bool
    """It reads the node before it (it has no `in:`)."""


class Expander:
    """Expands node lists into `nodes`, recording `groups`, `aliases` and left-out ids."""

    def __init__(self, checker: Checker, definitions: Definitions):
        self.checker, self.definitions = checker, definitions
        self.reader = NodeReader(checker, definitions)
        self.nodes: list[Node] = []
        self.aliases: dict[str, str] = {}
        self.groups: dict[str, Group] = {}
        self.disabled: dict[str, Loc] = {}
        """Ids left out by `when:` -> where."""
        self.marks = 0
        """Node maps `_mark` has marked with their YAML path so far."""

    def expand(self, raw_nodes: list, scope: Scope) -> str | None:
        """Expand a node list into self.nodes; return the global reference of its last node."""
        checker = self.checker
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
                checker.error(path, f"the spec expands to more than {MAX_NODES:,} nodes", scope=scope)
                return previous
            if not isinstance(raw, dict):
                checker.error(path, f"a node is a map such as {{op: conv, out: 64}}; got {describe(raw)}",
                              scope=scope)
                continue
            if WRITTEN_AT in raw:  # the user's own node inside a composite's arguments: its own line
                path, scope = raw[WRITTEN_AT], replace(outer, anchor=None, anchor_path="", owner="")
            if "when" in raw and not self._enabled(raw, path, scope):
                continue
            if isinstance(raw.get("scalable"), str):  # `scalable: $flag`
                raw = {**raw, "scalable": checker.resolve(raw["scalable"], path + ("scalable",), scope.values)}
            head = self.reader.head(raw, path, scope)
            if head is None:
                if isinstance(raw.get("id"), str):
                    previous = local[raw["id"]] = scope.prefix + raw["id"]
                continue
            local_id = head.id
            if bool(scope.prefix) and len(raw_nodes) == 1 and local_id is None:
                local_id = ""  # a block of one unnamed node adds no level: layer2.0.conv1
            elif local_id is None:
                local_id = _generated_id(head.op, counters, taken)
            elif local_id in first_use or local_id in scope.inputs:
                where = checker.doc.loc(first_use[local_id]) if local_id in first_use else None
                checker.error(path + ("id",), f"duplicate id {local_id!r}"
                              + (f" (first used at line {where.line})" if where else " (it names an input)"),
                              scope=scope)
                continue
            first_use[local_id] = path + ("id",)
            global_id = scope.prefix + local_id if local_id else scope.prefix[:-1]
            if head.refs is None:
                if previous is None:
                    names = ", ".join(scope.inputs)
                    checker.error(path, "this node has no input: name one with `in:`"
                                  + (f" (inputs: {names})" if len(scope.inputs) > 1 else ""), scope=scope)
                    continue
                refs, ref_locs = [previous], [checker.loc(path, scope)]
            else:
                refs, ref_locs = self._global_refs(head, local, explicit, scope, path), head.ref_locs
                if refs is None:
                    continue
            self._place(Placement(raw=raw, head=head, path=path, scope=scope, global_id=global_id, refs=refs,
                                  ref_locs=ref_locs, init=head.init or scope.init, implicit=head.refs is None))
            local[local_id] = global_id
            previous = global_id
        return previous

    def _enabled(self, raw: dict, path: tuple, scope: Scope) -> bool:
        """`when: $flag` leaves a node out (with its id) when the value is false."""
        value = self.checker.resolve(raw["when"], path + ("when",), scope.values)
        if value is FAILED:
            return False
        if isinstance(value, bool) or value in (0, 1):
            if not value and isinstance(raw.get("id"), str):
                self.disabled[scope.prefix + raw["id"]] = self.checker.loc(path + ("when",), scope)
            return bool(value)
        self.checker.error(path + ("when",), f"`when` needs true or false, got {describe(value)}"
                           + unquote_hint(value, bool), scope=scope)
        return False

    def _global_refs(self, head: NodeHead, local: dict[str, str], explicit: list[str], scope: Scope,
                     path: tuple) -> list[str] | None:
        out = []
        for ref in head.refs:
            if ref in local:
                out.append(local[ref])
            elif scope.prefix + ref in self.disabled:
                where = self.disabled[scope.prefix + ref]
                self.checker.error(path + ("in",), f"{ref!r} is left out by its `when:` (line {where.line})",
                                   scope=scope)
                return None
            elif ref in explicit:  # a later node of this list (a cycle, if anything): let the graph say
                out.append(scope.prefix + ref)
            elif not scope.prefix:  # top level: the graph check reports unknown names with context
                out.append(ref)
            else:
                options = sorted(set(local) | set(explicit))
                self.checker.error(path + ("in",), f"{ref!r} is not a node or input of this block"
                                   f"{did_you_mean(ref, options)} (known here: {', '.join(options)})", scope=scope)
                return None
        return out

    def _place(self, at: Placement) -> None:
        """Validate the node's arguments and add it (or its copies, or its expansion)."""
        raw, head, path, scope, global_id = at.raw, at.head, at.path, at.scope, at.global_id
        op, checker = head.op, self.checker
        loc = checker.loc(path, scope)
        if head.repeat == 0:
            if len(at.refs) != 1:
                checker.error(path + ("repeat",), "repeat: 0 makes a node pass its input through, "
                              "so it needs exactly one input", scope=scope)
                return
            self.aliases[global_id] = at.refs[0]
            return
        grouped = "repeat" in raw
        args = self.reader.arguments(raw, op, path, scope)
        if args.values is None:
            return
        values, origins = args.values, args.origins
        cls = registry.get(op)
        user_composite = not raw.get(GENERATED) and isinstance(cls, type) and issubclass(cls, Composite)
        marks = self.marks
        if user_composite:
            values = {k: self._mark(v, origins[k]) for k, v in values.items()}
        first_values = None
        if head.first is not None:
            first_values = dict(values)
            failures = checker.failures
            for key, value in head.first.items():
                first_values[key] = checker.resolve(value, path + ("first", key), scope.values)
                origins = {**origins, key: path + ("first", key)}
                if user_composite:
                    first_values[key] = self._mark(first_values[key], origins[key])
            if checker.failures != failures:
                return
            if not raw.get(GENERATED) and raw.get("scalable", True) is not False:
                first_values = self.reader.scaled(op, first_values)
        copies = head.repeat if grouped else 1
        if grouped and global_id not in self.groups:
            self.groups[global_id] = Group(global_id, op, "repeat", loc)
        prev_refs, prev_locs = at.refs, at.ref_locs
        made: dict[bool, Block | Subgraph | None] = {}  # per "is the first copy's arguments"
        for k in range(copies):
            copy_id = f"{global_id}.{k}" if grouped else global_id
            group = scope.group + ((global_id,) if grouped and scope.group[-1:] != (global_id,) else ())
            is_first = k == 0 and first_values is not None
            if is_first not in made:
                these = first_values if is_first else values
                made[is_first] = self._instance(op, these, path, scope, origins, marked=self.marks != marks)
            instance = made[is_first]
            if instance is None:
                return
            if isinstance(instance, Block):
                self.nodes.append(Node(copy_id, instance, prev_refs, loc, checker.path_str(path, scope), prev_locs,
                                       at.init, group=group, owner=scope.owner, implicit_input=at.implicit and k == 0))
            else:
                self.groups[copy_id] = Group(copy_id, op, instance.kind, loc, instance.shown)
                site = Site(op=op, copy_id=copy_id, group=group, refs=prev_refs, path=path, scope=scope, loc=loc)
                out = self._expand_subgraph(instance, site, at.init)
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
        written = self.checker.written(path)
        if isinstance(value, dict) and isinstance(written, dict) and "op" in value and WRITTEN_AT not in value:
            self.marks += 1
            return {**value, WRITTEN_AT: path}
        if isinstance(value, list) and isinstance(written, list) and len(value) == len(written):
            return [self._mark(v, path + (i,)) for i, v in enumerate(value)]
        return value

    def _instance(self, op: str, args: dict, path: tuple, scope: Scope, origins: dict[str, tuple],
                  marked: bool) -> Block | Subgraph | None:
        """A validated primitive block, or a subgraph: a composite (`marked`: shown without the
        marks its arguments carry) or a user block with its parameters bound."""
        cls = registry.get(op)
        if cls is None:
            definition = self.definitions.user_blocks[op]
            return bind_user_block(self.checker, definition, op, args, path, scope, origins)
        validated = self.checker.validate(cls, {"op": op, **args}, path, f"op {op!r}", origins, scope)
        if isinstance(validated, Composite):
            return CompositeUse(validated, unmarked(validated) if marked else validated)
        return validated

    def _expand_subgraph(self, subgraph: Subgraph, site: Site, init_rule: NodeInit | None) -> str | None:
        """Expand a composite's or a user block's body in its own scope; the reference of its output."""
        body = subgraph.body(site, self.checker)
        if body is None:
            return None
        scope, names = site.scope, body.input_names
        if len(names) != len(site.refs):
            self.checker.error(site.path + ("in",), f"{site.op} takes {len(names)} input(s) ({', '.join(names)}), "
                               f"got {len(site.refs)}", scope=scope)
            return None
        anchor, anchor_path = body.anchor, body.anchor_path
        if anchor is None and scope.anchor is not None:  # a user block inside a composite
            anchor, anchor_path = scope.anchor, scope.anchor_path
        group = site.group + ((site.copy_id,) if site.group[-1:] != (site.copy_id,) else ())
        inner = Scope(prefix=site.copy_id + ".", group=group, inputs=dict(zip(names, site.refs)), values=body.values,
                      path=body.path, anchor=anchor, anchor_path=anchor_path, stack=body.stack, init=init_rule,
                      owner=body.owner)
        output = self.expand(body.nodes, inner)
        if body.output is not None:
            output = site.copy_id + "." + body.output
        return output


def _generated_id(op: str, counters: dict[str, int], taken: set[str]) -> str:
    """`{op}{n}` with the next n that no id of the list takes."""
    n = counters.get(op, 0)
    while True:
        n += 1
        candidate = f"{op}{n}"
        if candidate not in taken:
            counters[op] = n
            taken.add(candidate)
            return candidate
