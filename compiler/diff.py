"""Two analyses -> what changed: nodes added, removed and changed, with parameter and MAC deltas.

Nodes are matched by id (hierarchical ids make this meaningful across a family: resnet50 and
seresnet50 share every id but the SE nodes). A node changed when its op, its arguments, its
inputs or its output shape differ. With `depth`, blocks deeper than that are compared as
units (their totals).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .analysis import Analysis, collapse


@dataclass
class Change:
    id: str
    kind: str
    """added, removed or changed."""
    op: str
    params: int
    """Parameter change (B - A)."""
    macs: int
    what: list[str] = field(default_factory=list)
    """For a changed node: what differs."""


@dataclass
class Diff:
    a: str
    b: str
    changes: list[Change]
    params: tuple[int, int]
    macs: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "changes": [asdict(c) for c in self.changes],
                "params": {"a": self.params[0], "b": self.params[1], "delta": self.params[1] - self.params[0]},
                "macs": {"a": self.macs[0], "b": self.macs[1], "delta": self.macs[1] - self.macs[0]}}


def _rows(analysis: Analysis, depth: int | None) -> dict[str, dict[str, Any]]:
    spec = analysis.spec
    rows = {}
    for unit in collapse(analysis, depth):
        if unit.kind == "node":
            block = spec.node(unit.id).block
        else:
            group = spec.groups.get(unit.id)
            block = group.block if group else None
        if hasattr(block, "model_dump"):  # every argument, defaults included, so a switch shows
            args = block.model_dump(mode="json", exclude={"op"})
        else:
            args = dict(block) if isinstance(block, dict) else {}
        rows[unit.id] = {"op": unit.op, "args": args, "inputs": unit.inputs, "shape": unit.shape,
                         "params": unit.params, "macs": unit.macs, "members": len(unit.members)}
    return rows


def diff(a: Analysis, b: Analysis, depth: int | None = None) -> Diff:
    ra, rb = _rows(a, depth), _rows(b, depth)
    changes: list[Change] = []
    for node_id, row in ra.items():
        if node_id not in rb:
            changes.append(Change(node_id, "removed", row["op"], -row["params"], -row["macs"]))
    for node_id, row in rb.items():
        old = ra.get(node_id)
        if old is None:
            changes.append(Change(node_id, "added", row["op"], row["params"], row["macs"]))
            continue
        what = []
        if old["op"] != row["op"]:
            what.append(f"op {old['op']} -> {row['op']}")
        for key in sorted(set(old["args"]) | set(row["args"])):
            if old["args"].get(key) != row["args"].get(key):
                what.append(f"{key}: {old['args'].get(key)!r} -> {row['args'].get(key)!r}")
        if old["inputs"] != row["inputs"]:
            what.append(f"in: {', '.join(old['inputs'])} -> {', '.join(row['inputs'])}")
        if old["shape"] != row["shape"]:
            what.append(f"shape: {list(old['shape'])} -> {list(row['shape'])}")
        if old["members"] != row["members"]:
            what.append(f"nodes: {old['members']} -> {row['members']}")
        if what or old["params"] != row["params"] or old["macs"] != row["macs"]:
            changes.append(Change(node_id, "changed", row["op"], row["params"] - old["params"],
                                  row["macs"] - old["macs"], what))
    return Diff(a.spec.name, b.spec.name, changes, (a.params, b.params), (a.macs, b.macs))


def format_diff(d: Diff) -> str:
    def signed(n: int) -> str:
        return f"{n:+,}" if n else "0"

    marks = {"added": "+", "removed": "-", "changed": "~"}
    lines = [f"{d.a} -> {d.b}: {sum(c.kind == 'added' for c in d.changes)} added, "
             f"{sum(c.kind == 'removed' for c in d.changes)} removed, {sum(c.kind == 'changed' for c in d.changes)} changed"]
    for c in d.changes:
        detail = f" ({'; '.join(c.what)})" if c.what else ""
        lines.append(f"{marks[c.kind]} {c.id} [{c.op}] params {signed(c.params)}, MACs {signed(c.macs)}{detail}")
    pa, pb = d.params
    ma, mb = d.macs
    pct = lambda x, y: f" ({(y - x) / x:+.2%})" if x else ""  # noqa: E731
    lines.append(f"parameters: {pa:,} -> {pb:,} ({signed(pb - pa)}){pct(pa, pb)}")
    lines.append(f"MACs: {ma:,} -> {mb:,} ({signed(mb - ma)}){pct(ma, mb)}")
    return "\n".join(lines)
