"""YAML text -> located tree: plain Python values plus the line and column of every value.

Safety is the point of this module. PyYAML's composer (libyaml when present) builds a node
graph; we turn it into dicts, lists and scalars ourselves, so we decide what is allowed:
only the YAML core types (no ``!!python/...``, no custom tags, no timestamps), no duplicate
keys, a bounded file size, bounded nesting and a bounded number of values after alias
expansion (a "billion laughs" document stops at the limit instead of eating memory).
Scalars follow YAML 1.2's core schema, so ``1e-3`` is the number a user meant and ``no`` is
a string, not ``False``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from .errors import Loc, Problem, SpecError, format_path

MAX_BYTES = 2_000_000
MAX_VALUES = 200_000
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_CORE_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}


class CoreResolver(BaseResolver):
    """YAML 1.2 core-schema resolution of plain scalars (plus `1_000` style ints)."""

    yaml_implicit_resolvers: dict = {}


def _add(tag: str, pattern: str, first: str) -> None:
    CoreResolver.add_implicit_resolver(_TAG + tag, re.compile(pattern, re.X), list(first))


_add("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
_add("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""])
_add("int", r"^(?:[-+]?[0-9][0-9_]*|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789")
_add(
    "float",
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
    "-+0123456789.",
)
_add("merge", r"^(?:<<)$", "<")

try:  # libyaml is much faster; the pure-Python parser is the same grammar
    _Parser = yaml.CParser  # type: ignore[attr-defined]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Parser = None


class _PyLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
                yaml.composer.Composer, CoreResolver):
    def __init__(self, stream):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        CoreResolver.__init__(self)


if _Parser is not None:
    class _CLoader(_Parser, CoreResolver):  # type: ignore[misc, valid-type]
        def __init__(self, stream):
            _Parser.__init__(self, stream)
            CoreResolver.__init__(self)


@dataclass
class Document:
    """The located tree of one YAML document."""

    data: Any
    file: str
    text: str
    marks: dict[tuple, Loc] = field(default_factory=dict)
    key_marks: dict[tuple, Loc] = field(default_factory=dict)

    def loc(self, path: tuple) -> Loc:
        """Location of the value at `path`, or of its nearest located parent."""
        path = tuple(path)
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, Loc(self.file, 1, 1))

    def key_loc(self, path: tuple) -> Loc:
        """Location of the key that holds `path` (falls back to the value's location)."""
        return self.key_marks.get(tuple(path)) or self.loc(path)


def _loc_of(mark, file: str) -> Loc:
    return Loc(file, mark.line + 1, mark.column + 1)


def _fail(file: str, line: int, col: int, message: str, path: tuple = ()) -> SpecError:
    return SpecError(Problem(Loc(file, line, col), message, format_path(path)))


def _decode(raw: bytes, file: str) -> str:
    if len(raw) > MAX_BYTES:
        raise _fail(file, 1, 1, f"file is {len(raw):,} bytes; the limit is {MAX_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(file, line, col, f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be decoded") from None
    return text


def _check_flow_depth(text: str, file: str) -> None:
    """Refuse deeply nested [ { before the parser recurses into them."""
    depth, line, col = 0, 1, 0
    quote = None
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
            quote = None if quote == "#" else quote
            continue
        if quote:
            if ch == quote or (quote == "#" and False):
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "#":
            quote = "#"
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise _fail(file, line, col, f"nesting deeper than {MAX_DEPTH} levels")
        elif ch in "]}":
            depth = max(0, depth - 1)


def _scalar(node: ScalarNode, tag: str) -> Any:
    value = node.value
    if tag == _TAG + "str":
        return value
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        return value.lower() == "true"
    if tag == _TAG + "int":
        v = value.replace("_", "")
        if v.startswith(("0o", "0x")):
            return int(v, 0)
        return int(v)
    if tag == _TAG + "float":
        v = value.replace("_", "").lower()
        if v.endswith("inf"):
            return float("-inf") if v.startswith("-") else float("inf")
        if v.endswith("nan"):
            return float("nan")
        return float(v)
    return value


class _Builder:
    """Turns a composed node graph into plain values, recording where each value came from."""

    def __init__(self, file: str):
        self.file = file
        self.marks: dict[tuple, Loc] = {}
        self.key_marks: dict[tuple, Loc] = {}
        self.count = 0
        self.active: set[int] = set()

    def error(self, node, message: str, path: tuple) -> SpecError:
        loc = _loc_of(node.start_mark, self.file)
        return SpecError(Problem(loc, message, format_path(path)))

    def build(self, node, path: tuple = ()) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise self.error(node, f"document expands to more than {MAX_VALUES:,} values "
                             "(aliases repeat what they refer to)", path)
        if len(path) > MAX_DEPTH:
            raise self.error(node, f"nesting deeper than {MAX_DEPTH} levels", path)
        if node.tag not in _CORE_TAGS:
            raise self.error(node, f"tag {node.tag!r} is not allowed: blockgraph reads plain YAML "
                             "(maps, lists, strings, numbers, booleans, null)", path)
        if id(node) in self.active:
            raise self.error(node, "an alias refers to the value that contains it", path)
        self.marks[path] = _loc_of(node.start_mark, self.file)
        if isinstance(node, ScalarNode):
            return _scalar(node, node.tag)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(child, path + (i,)) for i, child in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, path: tuple) -> dict:
        out: dict[str, Any] = {}
        merged: list[MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged.extend(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, ScalarNode):
                raise self.error(key_node, "a key must be a plain name, not a list or map", path)
            key = key_node.value
            if key in out:
                first = self.key_marks[path + (key,)]
                raise self.error(key_node, f"duplicate key {key!r} (first defined at line {first.line})",
                                 path + (key,))
            self.key_marks[path + (key,)] = _loc_of(key_node.start_mark, self.file)
            out[key] = self.build(value_node, path + (key,))
        for source in merged:  # explicit keys win over merged ones, as YAML's merge key says
            for key_node, value_node in source.value:
                key = getattr(key_node, "value", None)
                if isinstance(key, str) and key not in out:
                    self.key_marks[path + (key,)] = _loc_of(key_node.start_mark, self.file)
                    out[key] = self.build(value_node, path + (key,))
        return out

    def _merge_sources(self, value_node, path: tuple) -> list[MappingNode]:
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for s in sources:
            if not isinstance(s, MappingNode):
                raise self.error(s, "a merge key '<<' takes a map or a list of maps", path)
        return sources


def parse(source: str | bytes | Path, file: str | None = None) -> Document:
    """Read YAML text (or a path) into a located `Document`; raise `SpecError` on any problem."""
    if isinstance(source, Path):
        file = file or str(source)
        try:
            raw = source.read_bytes() if source.stat().st_size <= MAX_BYTES else b"x" * (MAX_BYTES + 1)
        except OSError as exc:
            raise _fail(file, 1, 1, f"cannot read file: {exc.strerror or exc}") from None
        text = _decode(raw, file)
    elif isinstance(source, bytes):
        file = file or "<string>"
        text = _decode(source, file)
    else:
        file = file or "<string>"
        if len(source) > MAX_BYTES:
            raise _fail(file, 1, 1, f"text is {len(source):,} characters; the limit is {MAX_BYTES:,}")
        text = source
    if "\x00" in text:
        before = text[: text.index("\x00")]
        raise _fail(file, before.count("\n") + 1, len(before) - before.rfind("\n"),
                    "binary data (a NUL byte) in a YAML file")
    _check_flow_depth(text, file)
    loader = (_CLoader if _Parser is not None else _PyLoader)(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p) or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise _fail(file, line, col, f"invalid YAML: {msg}") from None
    except yaml.YAMLError as exc:
        raise _fail(file, 1, 1, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise _fail(file, 1, 1, "invalid YAML: nesting too deep") from None
    finally:
        dispose = getattr(loader, "dispose", None)
        if dispose:
            dispose()
    if root is None:
        raise _fail(file, 1, 1, "the file is empty: a spec is a map with blockgraph, name, inputs "
                    "and nodes")
    builder = _Builder(file)
    data = builder.build(root)
    return Document(data, file, text, builder.marks, builder.key_marks)
