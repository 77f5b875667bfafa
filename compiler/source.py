"""YAML text -> located tree: plain Python values plus the line and column of every value.

Safety is the point of this module. PyYAML's parser (libyaml when present) only produces a
stream of events; we compose those events into values ourselves, so we decide what is
allowed: only the YAML core types (no ``!!python/...``, no custom tags, no timestamps), no
duplicate keys or anchors, one document, a bounded file size, bounded nesting (checked as the
events arrive, before anything recurses) and a bounded number of values repeated through
aliases (a "billion laughs" document stops at the limit instead of eating memory).
Scalars follow YAML 1.2's core schema, so ``1e-3`` is the number a user meant and ``no`` is
a string, not ``False``.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml import events as ev

from .errors import Loc, Problem, SpecError, format_path

MAX_BYTES = 2_000_000
"""Largest spec file (bytes) or text (characters) read."""
MAX_DEPTH = 64
"""Deepest nesting of lists and maps."""
MAX_ALIAS_VALUES = 100_000
"""Most values that aliases may repeat in one document (each *alias copies its &anchor)."""

_TAG = "tag:yaml.org,2002:"
_COLLECTION_TAGS = {None, "!", _TAG + "seq", _TAG + "map"}
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}

# YAML 1.2 core-schema resolution of plain scalars (plus `1_000` style ints), in order.
_IMPLICIT = [
    ("bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")),
    ("null", re.compile(r"^(?:~|null|Null|NULL|)$")),
    ("int", re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7]+|0x[0-9a-fA-F]+)$")),
    ("float", re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?
                             |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X)),
    ("merge", re.compile(r"^<<$")),
]
_FIRST_CHARS = {"bool": "tTfF", "null": "~nN", "int": "-+0123456789", "float": "-+0123456789.", "merge": "<"}
_BY_FIRST: dict[str, list[tuple[str, re.Pattern]]] = {}
for _kind, _rx in _IMPLICIT:
    for _c in _FIRST_CHARS[_kind]:
        _BY_FIRST.setdefault(_c, []).append((_kind, _rx))
del _kind, _rx, _c
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")

try:  # libyaml is much faster; the pure-Python parser reads the same grammar
    from yaml._yaml import CParser as _CParser  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the PyYAML build
    _CParser = None


class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    def __init__(self, stream):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


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


def _fail(file: str, line: int, col: int, message: str, path: tuple = ()) -> SpecError:
    return SpecError(Problem(Loc(file, line, col), message, format_path(path)))


def _at(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character index."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


# -- bytes -> text -------------------------------------------------------------------------

def _decode(raw: bytes, file: str) -> str:
    if len(raw) > MAX_BYTES:
        raise _fail(file, 1, 1, f"file is {len(raw):,} bytes; the limit is {MAX_BYTES:,} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        col = len(raw[line_start:exc.start].decode("utf-8", errors="replace")) + 1
        hint = "save the file as UTF-8"
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint = "the file looks like UTF-16: save it as UTF-8"
        raise _fail(file, line, col, f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be decoded; "
                    f"{hint}") from None


def _check_characters(text: str, file: str) -> None:
    bad = _NON_PRINTABLE.search(text)
    if bad is None:
        return
    line, col = _at(text, bad.start())
    if bad.group() == "\x00":
        raise _fail(file, line, col, "binary data (a NUL byte) in a YAML file")
    what = " (a control character)" if ord(bad.group()) < 0xA0 else ""
    raise _fail(file, line, col, f"character U+{ord(bad.group()):04X}{what} is not allowed in a YAML file")


# -- events -> nodes -----------------------------------------------------------------------

class _Node:
    """A composed value: kind is 'scalar', 'seq' or 'map'."""

    __slots__ = ("kind", "value", "raw", "tag", "mark", "anchor", "open")

    def __init__(self, kind: str, value: Any, mark, raw: str = "", tag: str = "", anchor: str | None = None):
        self.kind, self.value, self.raw, self.tag, self.mark, self.anchor = kind, value, raw, tag, mark, anchor
        self.open = kind != "scalar"


class _Alias:
    """A use of an anchor (`*name`): where it is written and what it repeats."""

    __slots__ = ("target", "mark", "name")

    def __init__(self, target: _Node, mark, name: str):
        self.target, self.mark, self.name = target, mark, name


def _where(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


class _Composer:
    """Builds the node tree from parser events without recursion, checking as it goes."""

    def __init__(self, parser, file: str):
        self.parser, self.file = parser, file
        self.anchors: dict[str, _Node] = {}
        self.stack: list[list] = []  # [collection node, pending key or None, key of the last value]

    def fail(self, mark, message: str, with_path: bool = True) -> SpecError:
        return _fail(self.file, mark.line + 1, mark.column + 1, message, self._path() if with_path else ())

    def _path(self) -> tuple:
        """The YAML path of the value being composed (for messages)."""
        path: list = []
        for depth, (node, pending, current) in enumerate(self.stack):
            last = depth == len(self.stack) - 1
            if node.kind == "seq":
                path.append(len(node.value) - (0 if last else 1))
                continue
            key = pending if last else current
            if key is not None:
                target = key.target if isinstance(key, _Alias) else key
                path.append(target.raw if target.kind == "scalar" else "?")
        return tuple(path)

    def compose(self) -> _Node | _Alias | None:
        root: _Node | _Alias | None = None
        documents = 0
        stack = self.stack
        get = self.parser.get_event
        scalar_event, end_events, skip_events = ev.ScalarEvent, (ev.SequenceEndEvent, ev.MappingEndEvent), (
            ev.StreamStartEvent, ev.DocumentEndEvent)
        while True:
            event = get()
            cls = event.__class__
            if cls is scalar_event and event.anchor is None:  # the common case, kept short
                node = _scalar(event, self)
            elif cls in end_events:
                stack.pop()[0].open = False
                continue
            elif cls is ev.StreamEndEvent:
                return root
            elif cls is ev.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise self.fail(event.start_mark, "a spec file holds one YAML document; a second one "
                                    "starts here (remove the '---' line or split the file)")
                continue
            elif cls in skip_events:
                continue
            else:
                node = self._node(event, len(stack))
            if stack:
                frame = stack[-1]
                parent = frame[0]
                if parent.kind == "seq":
                    parent.value.append(node)
                elif frame[1] is None:
                    frame[1] = node
                else:
                    parent.value.append((frame[1], node))
                    frame[2], frame[1] = frame[1], None
            else:
                root = node
            if node.__class__ is _Node and node.kind != "scalar":
                stack.append([node, None, None])

    def _node(self, event, depth: int) -> _Node | _Alias:
        mark = event.start_mark
        if isinstance(event, ev.AliasEvent):
            name = event.anchor
            target = self.anchors.get(name)
            if target is None:
                raise self.fail(mark, f"alias *{name} names no anchor: write &{name} on a value above it first")
            if target.open:
                raise self.fail(mark, f"alias *{name} refers to the value that contains it "
                                f"(&{name} at {_where(target.mark)})")
            return _Alias(target, mark, name)
        anchor = event.anchor
        if anchor is not None and anchor in self.anchors:
            raise self.fail(mark, f"anchor &{anchor} is defined twice (first at {_where(self.anchors[anchor].mark)})")
        if isinstance(event, ev.ScalarEvent):
            node = _scalar(event, self)
        else:
            if depth >= MAX_DEPTH:
                raise self.fail(mark, f"nesting deeper than {MAX_DEPTH} levels", with_path=False)
            if event.tag not in _COLLECTION_TAGS:
                raise self.fail(mark, _tag_message(event.tag))
            kind = "seq" if isinstance(event, ev.SequenceStartEvent) else "map"
            node = _Node(kind, [], mark, anchor=anchor)
        if anchor is not None:
            node.anchor = anchor
            self.anchors[anchor] = node
        return node


def _tag_message(tag: str) -> str:
    shown = "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
    return (f"tag {shown!r} is not allowed: blockgraph reads plain YAML (maps, lists, strings, numbers, "
            "booleans, null)")


def _scalar(event, composer: _Composer) -> _Node:
    raw, tag, mark = event.value, event.tag, event.start_mark
    if tag is None or tag == "!":
        kind = "str"
        if tag is None and event.implicit[0] and (not raw or raw[0] in _BY_FIRST):  # plain: resolve by text
            kind = "null" if not raw else next((k for k, rx in _BY_FIRST[raw[0]] if rx.match(raw)), "str")
            if kind == "merge":
                return _Node("scalar", raw, mark, raw, "merge")
        if kind == "str":
            return _Node("scalar", raw, mark, raw, "str")
    elif tag in _SCALAR_TAGS:
        kind = tag[len(_TAG):]
        if kind != "str":
            pattern = dict(_IMPLICIT)[kind]
            if not pattern.match(raw):
                raise composer.fail(mark, f"{raw!r} is not a valid !!{kind}")
    else:
        raise composer.fail(mark, _tag_message(tag))
    return _Node("scalar", _convert(raw, kind), mark, raw, kind)


def _convert(value: str, kind: str) -> Any:
    if kind == "null":
        return None
    if kind == "bool":
        return value.lower() == "true"
    if kind == "int":
        v = value.replace("_", "")
        return int(v, 0) if v.startswith(("0o", "0x")) else int(v)
    if kind == "float":
        v = value.replace("_", "").lower()
        if v.endswith("inf"):
            return float("-inf") if v.startswith("-") else float("inf")
        if v.endswith("nan"):
            return float("nan")
        return float(v)
    return value


# -- nodes -> values -----------------------------------------------------------------------

class _Builder:
    """Turns the composed tree into plain values, recording where each value came from."""

    def __init__(self, file: str):
        self.file = file
        self.marks: dict[tuple, Loc] = {}
        self.key_marks: dict[tuple, Loc] = {}
        self.repeated = 0
        self.aliases: list[_Alias] = []  # the aliases being expanded, outermost first

    def loc(self, mark) -> Loc:
        return Loc(self.file, mark.line + 1, mark.column + 1)

    def error(self, mark, message: str, path: tuple) -> SpecError:
        return SpecError(Problem(self.loc(mark), message, format_path(path)))

    def build(self, node: _Node | _Alias, path: tuple = ()) -> Any:
        if isinstance(node, _Alias):
            self.marks[path] = self.loc(node.mark)
            self.aliases.append(node)
            try:
                return self._value(node.target, path, located=True)
            finally:
                self.aliases.pop()
        return self._value(node, path)

    def _value(self, node: _Node, path: tuple, located: bool = False) -> Any:
        if self.aliases:
            self.repeated += 1
            if self.repeated > MAX_ALIAS_VALUES:
                first = self.aliases[0]
                raise self.error(first.mark, f"aliases repeat more than {MAX_ALIAS_VALUES:,} values "
                                 f"(*{first.name} copies &{first.name}, and so on inside it); "
                                 "write the values out instead", path)
        if len(path) > MAX_DEPTH:
            raise self.error(node.mark, f"nesting deeper than {MAX_DEPTH} levels (through aliases)", ())
        if not located:
            self.marks[path] = self.loc(node.mark)
        if node.kind == "scalar":
            if node.tag == "merge":
                raise self.error(node.mark, "'<<' (merge) is only allowed as a key", path)
            return node.value
        if node.kind == "seq":
            return [self.build(child, path + (i,)) for i, child in enumerate(node.value)]
        return self._mapping(node, path)

    def _mapping(self, node: _Node, path: tuple) -> dict:
        out: dict[str, Any] = {}
        merged: list[_Node | _Alias] = []
        for key_node, value_node in node.value:
            key_target = key_node.target if isinstance(key_node, _Alias) else key_node
            if key_target.kind != "scalar":
                raise self.error(key_node.mark, "a key must be a plain name, not a list or map", path)
            if key_target.tag == "merge" and not isinstance(key_node, _Alias):
                merged.extend(self._merge_sources(value_node, path))
                continue
            key = key_target.raw
            if key in out:
                first = self.key_marks[path + (key,)]
                raise self.error(key_node.mark, f"duplicate key {key!r} (first defined at line {first.line})",
                                 path + (key,))
            self.key_marks[path + (key,)] = self.loc(key_node.mark)
            out[key] = self.build(value_node, path + (key,))
        for source in merged:  # explicit keys win over merged ones, and earlier maps over later
            alias = source if isinstance(source, _Alias) else None
            target = alias.target if alias else source
            if alias:
                self.aliases.append(alias)
            try:
                for key_node, value_node in target.value:
                    key_target = key_node.target if isinstance(key_node, _Alias) else key_node
                    key = key_target.raw if key_target.kind == "scalar" else None
                    if isinstance(key, str) and key_target.tag != "merge" and key not in out:
                        self.key_marks[path + (key,)] = self.loc(key_node.mark)
                        out[key] = self.build(value_node, path + (key,))
            finally:
                if alias:
                    self.aliases.pop()
        return out

    def _merge_sources(self, value_node, path: tuple) -> list:
        target = value_node.target if isinstance(value_node, _Alias) else value_node
        sources = target.value if target.kind == "seq" else [value_node]
        for s in sources:
            if (s.target if isinstance(s, _Alias) else s).kind != "map":
                mark = value_node.mark if isinstance(value_node, _Alias) else s.mark
                raise self.error(mark, "a merge key '<<' takes a map or a list of maps, e.g. <<: *base", path)
        return sources


# -- parser errors -------------------------------------------------------------------------

def _yaml_problem(exc: yaml.MarkedYAMLError, text: str, file: str) -> SpecError:
    mark, context_mark = exc.problem_mark or exc.context_mark, exc.context_mark
    problem, context = str(exc.problem or ""), str(exc.context or "")
    if mark is None:
        return _fail(file, 1, 1, f"invalid YAML: {problem or context or exc}")
    line, col = mark.line + 1, mark.column + 1
    index = getattr(mark, "index", None)
    if index is None or not 0 <= index <= len(text):
        index = _index(text, mark.line, mark.column)
    found = "the end of the file" if index >= len(text.rstrip()) else repr(text[index])
    if index < len(text) and text[index] == "\t":
        return _fail(file, line, col, "invalid YAML: a tab character here; YAML indents with spaces only")
    flow = re.match(r"while parsing a flow (sequence|mapping)", context)
    if flow and context_mark is not None and "expected ','" in problem:
        opener, closer = ("[", "]") if flow.group(1) == "sequence" else ("{", "}")
        return _fail(file, context_mark.line + 1, context_mark.column + 1,
                     f"invalid YAML: this {opener!r} is not closed (or a ',' is missing): expected ',' or "
                     f"{closer!r} at line {line}, column {col}, found {found}")
    if "quoted scalar" in context and "end of stream" in problem and context_mark is not None:
        return _fail(file, context_mark.line + 1, context_mark.column + 1,
                     "invalid YAML: this quoted string is not closed")
    if "cannot start any token" in problem and index < len(text):
        return _fail(file, line, col, f"invalid YAML: {text[index]!r} cannot start a value here; put the value "
                     "in quotes")
    if problem.startswith("mapping values are not allowed"):
        return _fail(file, line, col, "invalid YAML: ': ' cannot appear here: put a value that contains ': ' "
                     "in quotes, or check the indentation")
    message = problem[0].lower() + problem[1:] if problem else "invalid YAML"
    if context and context_mark is not None and (context_mark.line, context_mark.column) != (mark.line, mark.column):
        message += f" ({context} that starts at {_where(context_mark)})"
    return _fail(file, line, col, f"invalid YAML: {message}")


def _index(text: str, line: int, column: int) -> int:
    pos = 0
    for _ in range(line):
        nxt = text.find("\n", pos)
        if nxt < 0:
            return len(text)
        pos = nxt + 1
    return min(pos + column, len(text))


class _LibyamlDepth(Exception):
    """libyaml stopped at its own nesting limit (it reads ahead before we see the events)."""


def _compose(text: str, file: str) -> _Node | _Alias | None:
    if _CParser is not None:
        try:
            return _compose_with(_CParser(text), text, file)
        except _LibyamlDepth:
            pass  # the Python parser has no such limit, so our own check names the exact place
    return _compose_with(_PyParser(text), text, file)


def _compose_with(parser, text: str, file: str) -> _Node | _Alias | None:
    try:
        return _Composer(parser, file).compose()
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc.problem):
            raise _LibyamlDepth() from None
        raise _yaml_problem(exc, text, file) from None
    except yaml.YAMLError as exc:
        raise _fail(file, 1, 1, f"invalid YAML: {exc}") from None
    finally:
        dispose = getattr(parser, "dispose", None)
        if dispose:
            dispose()


# -- entry point ---------------------------------------------------------------------------

def parse(source: str | bytes | Path, file: str | None = None) -> Document:
    """Read YAML text (or a path) into a located `Document`; raise `SpecError` on any problem."""
    if isinstance(source, Path):
        file = file or str(source)
        try:
            size = source.stat().st_size
            if size > MAX_BYTES:
                raise _fail(file, 1, 1, f"file is {size:,} bytes; the limit is {MAX_BYTES:,} bytes")
            raw = source.read_bytes()
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
    _check_characters(text, file)
    collecting = gc.isenabled()
    gc.disable()  # many small objects, no cycles: the collector would only slow this down
    try:
        root = _compose(text, file)
    finally:
        if collecting:
            gc.enable()
    if root is None:
        raise _fail(file, 1, 1, "the file is empty: a spec is a map with blockgraph, name, inputs and nodes")
    builder = _Builder(file)
    gc.disable()
    try:
        data = builder.build(root)
    finally:
        if collecting:
            gc.enable()
    return Document(data, file, text, builder.marks, builder.key_marks)
