"""Text edits of the palette: a new node goes into the YAML as one ``- {op: ..., ...}`` line
after a chosen node, and every other line of the text is kept as it was (comments, layout),
which a load-and-dump round trip would not do.

- `node_entries(text)`: the top-level nodes as written (id, op, line), for "insert after".
- `flow_line(op, args, id)`: a node as one YAML flow mapping; `insert_node` puts it in place.
- `read_value(text)`: one YAML value typed in a form, read as spec files are read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from compiler import SpecError
from ui.designer.caching import parse_document


class InsertError(ValueError):
    """The text has no block-style `nodes:` list to insert into."""


@dataclass
class NodeEntry:
    index: int
    """Position in the top-level `nodes:` list."""
    id: str
    op: str
    line: int

    @property
    def label(self) -> str:
        return f"{self.id} ({self.op}, line {self.line})"


def node_entries(text: str) -> list[NodeEntry]:
    """The top-level nodes written in `text` (empty when it does not parse or has no
    `nodes:` of its own, e.g. a spec that inherits them with `extends:`)."""
    try:
        doc = parse_document(text)
    except SpecError:
        return []
    nodes = doc.data.get("nodes") if isinstance(doc.data, dict) else None
    if not isinstance(nodes, list):
        return []
    entries, counts = [], {}
    used = {n.get("id") for n in nodes if isinstance(n, dict)}
    for i, node in enumerate(nodes):
        op = str(node.get("op", "?")) if isinstance(node, dict) else "?"
        node_id = node.get("id") if isinstance(node, dict) else None
        if not isinstance(node_id, str):  # generated id: {op}{n}, skipping explicit ones
            n = counts.get(op, 0)
            while True:
                n += 1
                if f"{op}{n}" not in used:
                    break
            counts[op] = n
            node_id = f"{op}{n}"
        entries.append(NodeEntry(i, node_id, op, doc.loc(("nodes", i)).line))
    return entries


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def insert_node(text: str, after: int | None, line: str) -> tuple[str, int]:
    """Insert `line` (one `{...}` flow mapping) as an item of the top-level `nodes:` list,
    after item `after` (None: before the first item). Returns the new text and the 1-based
    line number of the inserted item. Every other line is kept as it was."""
    doc = parse_document(text)
    nodes = doc.data.get("nodes") if isinstance(doc.data, dict) else None
    if not isinstance(nodes, list) or not nodes:
        raise InsertError("the text has no `nodes:` list of its own (a spec that `extends` another "
                          "inherits its nodes): add a `nodes:` list to insert into")
    lines = text.splitlines(keepends=True)
    seq = doc.loc(("nodes",))
    seq_line = lines[seq.line - 1]
    if seq_line[seq.col - 1: seq.col] != "-":
        raise InsertError("`nodes:` is written as a flow list ([...]): write it one `- ` item per "
                          "line to insert blocks")
    dash = seq.col - 1  # indentation of the items' dashes
    if after is None:
        at = seq.line - 1  # 0-based index of the line to insert before
    else:
        if not 0 <= after < len(nodes):
            raise InsertError(f"there is no node {after} (the list has {len(nodes)})")
        start = doc.loc(("nodes", after)).line - 1
        stop = doc.loc(("nodes", after + 1)).line - 1 if after + 1 < len(nodes) else len(lines)
        end = start
        for i in range(start + 1, stop):
            stripped = lines[i].strip()
            if not stripped or stripped.startswith("#"):
                continue
            if _indent(lines[i]) > dash:
                end = i  # a continuation of the item (block mapping, wrapped flow mapping)
            else:
                break
        at = end + 1
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines.insert(at, " " * dash + "- " + line + "\n")
    return "".join(lines), at + 1


_PLAIN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_.$ *+/()\-]*$")


def yaml_scalar(value: Any) -> str:
    """A value as YAML flow text: plain where that reads back the same, else JSON-quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        reserved = value.lower() in ("null", "true", "false", "yes", "no", "on", "off", "~", "")
        if _PLAIN.match(value) and not reserved and not value.endswith(" "):
            return value
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_scalar(k)}: {yaml_scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def flow_line(op: str, args: dict[str, Any], node_id: str | None = None) -> str:
    """`{id: x, op: conv, out: 64, k: 3}`: a node as one YAML flow mapping."""
    head = {"id": node_id} if node_id else {}
    return yaml_scalar({**head, "op": op, **args})


def unique_id(text: str, op: str) -> str:
    """An id for a new node of `op` that no top-level node of `text` uses yet."""
    used = {e.id for e in node_entries(text)}
    n = 1
    while f"{op}{n}" in used:
        n += 1
    return f"{op}{n}"


def read_value(text: str) -> Any:
    """One YAML value typed in a form, read as the compiler reads spec files (YAML 1.2
    core: `yes` is text, `1e-5` a float); SpecError on a syntax error."""
    from compiler.source import parse

    return parse(f"v: {text}").data["v"]
