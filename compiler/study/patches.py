"""A level's patches applied to a spec: the spec language changing itself.

A patch selects nodes (`nodes: {op, id, has}`) at any depth of the spec as written (top-level
nodes, user blocks' bodies, a residual's `body:` nodes) and sets, unsets, replaces or removes
them, or sets top-level keys (`spec:`). Patches work on the spec's data *as written* (after
`extends:` is merged), so the patched spec is checked by the ordinary loader like any spec, and
its text is what the trial's run directory keeps (`spec.yaml`): a trial can be trained again
from its run directory alone.

What cannot work is said before anything trains: a patch that selects no node, a dotted key
that runs into a value that is not a map. A patch that makes the spec invalid is reported by
the loader (compiler/study/loader.py) with the level that caused it.
"""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Iterator

import yaml

from ..blocks import registry
from .document import NodeSelector, Patch

KEPT_BY_REPLACE = ("id", "in", "repeat", "init", "when")
"""What a replaced node keeps of itself: where it sits in the graph and how often."""


@dataclass
class LevelPatches:
    """The patches of one level of one factor, and where the level's `patch:` list is."""

    factor: str
    label: str
    patches: list[Patch]
    path: tuple
    """The YAML path of the level's `patch:` list in the study file."""


@dataclass
class PatchProblem:
    """A patch that cannot apply to a spec: located at the patch in the study file."""

    path: tuple
    message: str


@dataclass
class Patched:
    """A spec's data after a cell's patches, and what went wrong."""

    data: dict[str, Any]
    problems: list[PatchProblem] = field(default_factory=list)

    def text(self, header: str) -> str:
        """The patched spec as YAML text, `header` as its first comment line."""
        body = yaml.safe_dump(self.data, sort_keys=False, allow_unicode=True, width=120)
        return f"# {header}\n{body}"


def apply_patches(data: dict[str, Any], levels: list[LevelPatches], spec_label: str) -> Patched:
    """A copy of the spec's data with every level's patches applied, in order."""
    out = Patched(copy.deepcopy(data))
    for level in levels:
        for i, patch in enumerate(level.patches):
            problem = _apply(out.data, patch)
            if problem:
                out.problems.append(PatchProblem(level.path + (i,), f"{problem} (spec {spec_label!r})"))
    return out


def _apply(data: dict[str, Any], patch: Patch) -> str | None:
    """Apply one patch in place; the reason it cannot apply, or None."""
    if patch.spec is not None:
        for dotted, value in patch.spec.items():
            problem = _set_dotted(data, dotted, value)
            if problem:
                return problem
    if patch.nodes is None:
        return None
    selected = list(select(data, patch.nodes))
    if not selected:
        return f"selects no node ({_describe(patch.nodes)})"
    for node in selected:
        _change(node, patch)
    return None


def _change(node: dict[str, Any], patch: Patch) -> None:
    if patch.remove:
        kept = {k: node[k] for k in ("id", "in", "when") if k in node}
        node.clear()
        node.update(kept, op="identity")
        return
    if patch.replace is not None:
        kept = {k: node[k] for k in KEPT_BY_REPLACE if k in node}
        node.clear()
        node.update(kept)
        node.update(patch.replace)
    for key in patch.unset or []:
        node.pop(key, None)
        first = node.get("first")
        if isinstance(first, dict):
            first.pop(key, None)
    for key, value in (patch.set or {}).items():
        node[key] = copy.deepcopy(value)


def select(data: dict[str, Any], selector: NodeSelector) -> Iterator[dict[str, Any]]:
    """Every node of the spec (at any depth) that matches all the selector's keys."""
    defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
    blocks = data.get("blocks") if isinstance(data.get("blocks"), dict) else {}
    ops = [selector.op] if isinstance(selector.op, str) else selector.op
    for node in nodes_of(data):
        op = node.get("op")
        if ops is not None and op not in ops:
            continue
        if selector.id is not None and not fnmatch.fnmatchcase(str(node.get("id", "")), selector.id):
            continue
        if selector.has is not None and not has_argument(node, selector.has, defaults, blocks):
            continue
        yield node


def nodes_of(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node written in the spec: top-level ones, user blocks' and nested ones (`body:`)."""
    lists = [data.get("nodes")]
    blocks = data.get("blocks")
    if isinstance(blocks, dict):
        lists += [b.get("nodes") for b in blocks.values() if isinstance(b, dict)]
    for nodes in lists:
        if isinstance(nodes, list):
            yield from _nodes_in(nodes)


def _nodes_in(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            yield from _nodes_in(item)
    elif isinstance(value, dict):
        if isinstance(value.get("op"), str):
            yield value
        for key, inner in value.items():
            if key != "op" and isinstance(inner, (dict, list)):
                yield from _nodes_in(inner)


def has_argument(node: dict[str, Any], arg: str, defaults: dict, blocks: dict) -> bool:
    """Whether the node's `arg` is set to something other than null: as written on the node, else
    in the spec's `defaults:` for its op, else the op's own default."""
    if arg in node:
        return node[arg] is not None
    op = node.get("op")
    op_defaults = defaults.get(op) if isinstance(defaults.get(op), dict) else {}
    if arg in op_defaults:
        return op_defaults[arg] is not None
    block = registry.get(op) if isinstance(op, str) else None
    if block is not None:
        info = block.model_fields.get(arg)
        return info is not None and not info.is_required() and info.get_default() is not None
    params = blocks.get(op, {}).get("params") if isinstance(blocks.get(op), dict) else None
    if isinstance(params, dict) and arg in params:
        return params[arg] is not None
    return False


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> str | None:
    parts = dotted.split(".")
    target = data
    for i, part in enumerate(parts[:-1]):
        inner = target.get(part)
        if inner is None:
            inner = target[part] = {}
        if not isinstance(inner, dict):
            return f"spec key {'.'.join(parts[:i + 1])!r} is not a map, so {dotted!r} cannot be set inside it"
        target = inner
    target[parts[-1]] = copy.deepcopy(value)
    return None


def _describe(selector: NodeSelector) -> str:
    said = selector.model_dump(exclude_none=True)
    return ", ".join(f"{k}: {v}" for k, v in said.items()) or "every node"
