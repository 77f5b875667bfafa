"""Regenerate the generated parts of docs/spec-language.md and docs/blocks.md from the code.

The tables live between marker comments in the markdown and are committed as plain text:

    <!-- table: op conv -->                      the input ranks (`ranks`) and every field of
                                                 the op `conv` (registry)
    <!-- table: model compiler.blocks.common.Act -->   every field of a pydantic model
    <!-- table: scaling fields -->               the fields `scaling:` multiplies, per op
    <!-- table: keys compiler.spec.NodeKeys -->  the keys every node may carry, by their YAML
                                                 names, with whether each takes an expression
    ...generated rows...
    <!-- end table -->

Each row is built from a parameter as compiler.params reads it (the reader the JSON Schema
and the designer's palette use too): its name, its type (annotation and bounds), its default
and its attribute docstring (the models use `use_attribute_docstrings=True`). A link to
an option model's section is relative to the page the table is on (`#act-options` on
spec-language.md, `spec-language.md#act-options` on blocks.md).

A file can be quoted whole, so that a page shows the code as it is:

    <!-- file: docs/examples/cbam_plugin.py -->
    ```python
    ...the file's text...
    ```
    <!-- end file -->

The per-op sections (`### \\`op\\`` with `<!-- table: op NAME -->`) are on docs/blocks.md.

    python docs/gen_reference.py           # rewrite the tables (and quoted files) in place
    python docs/gen_reference.py --check   # exit 1 if one is out of date (tests/test_docs.py)
"""

from __future__ import annotations

import importlib
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from compiler.params import Param, parameters  # noqa: E402

SPEC_DOC = ROOT / "docs" / "spec-language.md"
BLOCKS_DOC = ROOT / "docs" / "blocks.md"
DOCS = (SPEC_DOC, BLOCKS_DOC)
DOC = SPEC_DOC  # the language reference (kept for callers of the single-page version)
MARKER = re.compile(r"<!-- table: (op|model|scaling|keys) ([\w.]+) -->\n.*?<!-- end table -->", re.S)
FILE_MARKER = re.compile(r"<!-- file: ([\w./-]+) -->\n.*?<!-- end file -->", re.S)

# How nested option models are named in the tables: (text before the link, link text, page
# of the section, anchor of the section).
MODEL_NAMES = {
    "Act": ("", "act", "spec-language.md", "act-options"),
    "Norm": ("", "norm", "spec-language.md", "norm-options"),
    "Initializer": ("", "initializer", "spec-language.md", "initializers"),
    "Rule": ("", "rule", "spec-language.md", "rules-weight-and-bias"),
    "NodeInit": ("", "node init", "spec-language.md", "per-node-init"),
    "InitPolicy": ("", "init", "spec-language.md", "init-policies"),
    "LSTMRule": ("", "lstm rule", "spec-language.md", "recurrent-layers-lstm-and-gru"),
    "GRURule": ("", "gru rule", "spec-language.md", "recurrent-layers-lstm-and-gru"),
    "SEOptions": ("number or ", "se options", "blocks.md", "se-options"),
}


def model_name(name: str, page: str = SPEC_DOC.name) -> str:
    """A nested model's name in a table on `page`, linked to its section."""
    if name not in MODEL_NAMES:
        return name
    prefix, text, where, anchor = MODEL_NAMES[name]
    return f"{prefix}[{text}]({'' if where == page else where}#{anchor})"


def _bounds(metadata: list, unit: str = "item") -> str:
    parts = []
    for m in metadata:
        if getattr(m, "pattern", None):
            parts.append(f"matching `{m.pattern}`")
        if getattr(m, "max_length", None) and not isinstance(m, annotated_types.MaxLen):
            parts.append(f"at most {m.max_length} {unit}s")
        if isinstance(m, annotated_types.Gt):
            parts.append(f"> {m.gt}")
        elif isinstance(m, annotated_types.Ge):
            parts.append(f"≥ {m.ge}")
        elif isinstance(m, annotated_types.Lt):
            parts.append(f"< {m.lt}")
        elif isinstance(m, annotated_types.Le):
            parts.append(f"≤ {m.le}")
        elif isinstance(m, annotated_types.MinLen):
            parts.append(f"at least {m.min_length} {unit}{'s' if m.min_length != 1 else ''}")
        elif isinstance(m, annotated_types.MaxLen):
            parts.append(f"at most {m.max_length} {unit}s")
    return ", ".join(parts)


def type_text(annotation: Any, metadata: list | None = None, page: str = SPEC_DOC.name) -> str:
    """A reader's name for a field's type: `int > 0 or [int > 0, int > 0]` (links relative to
    the page it is shown on)."""
    metadata = list(metadata or [])
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0], list(args[1:]) + metadata, page)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        text = " or ".join(type_text(a, page=page) for a in members)
        if len(members) < len(args):
            text += " or `null`"
        bounds = _bounds(metadata)
        return f"{text} ({bounds})" if bounds else text
    if origin is typing.Literal:
        values = [f"`{_yaml(v)}`" for v in args]
        return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]
    bounds = _bounds(metadata, "character" if annotation is str else "item")
    if origin in (tuple, list):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis or origin is list:
            item = type_text(args[0], page=page)
            text = f"list of {item}" if not item.startswith("list") else f"list of ({item})"
        else:
            text = "[" + ", ".join(type_text(a, page=page) for a in args) + "]"
        return f"{text} ({bounds})" if bounds else text
    if origin is dict:
        text = "map"
        return f"{text} ({bounds})" if bounds else text
    if annotation is typing.Any:
        return "any"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_name(annotation.__name__, page)
    names = {int: "int", float: "number", bool: "bool", str: "text", type(None): "`null`"}
    text = names.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return f"{text} {bounds}" if bounds and text in ("int", "number") else (f"{text} ({bounds})" if bounds else text)


def _yaml(value: Any) -> str:
    """A value as it would be written in a spec."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        changed = {k: getattr(value, k) for k, f in fields.items()
                   if f.is_required() or getattr(value, k) != f.default}
        if list(changed) == ["kind"]:
            return _yaml(changed["kind"])
        return _yaml(changed) if changed else "{}"
    return str(value)


def default_text(param: Param) -> str:
    return "required" if param.required else f"`{_yaml(param.default)}`"


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def table(model: type[BaseModel], page: str = SPEC_DOC.name) -> str:
    """The parameter table of a block (its `op` key aside) or an options model, read by
    compiler.params (the reader the JSON Schema and the designer's palette use too)."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for param in parameters(model):
        rows.append(f"| `{param.name}` | {_cell(type_text(param.annotation, list(param.metadata), page))} | "
                    f"{_cell(default_text(param))} | {_cell(param.description)} |")
    if len(rows) == 2:
        return "This op has no parameters."
    return "\n".join(rows)


def keys_table(model: type[BaseModel], page: str = SPEC_DOC.name) -> str:
    """The table of a model of keys written in YAML (compiler.spec.NodeKeys): each field by
    its YAML name (`in`, not `inputs`), "(expression allowed)" for the names in the model's
    `EXPRESSIONS`, and the whole docstring as its meaning."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    expressions = getattr(model, "EXPRESSIONS", ())
    for name, info in model.model_fields.items():
        key = info.alias or name
        kind = type_text(info.annotation, list(info.metadata), page)
        if key in expressions:
            kind += " (expression allowed)"
        if info.is_required():
            default = "required"
        else:
            default = "none" if info.default is None else f"`{_yaml(info.default)}`"
        rows.append(f"| `{key}` | {_cell(kind)} | {default} | {_cell(info.description or '')} |")
    return "\n".join(rows)


RANK_SHAPES = {1: "[F]", 2: "[C, L]", 3: "[C, H, W]"}
SEQUENCE_SHAPES = {**RANK_SHAPES, 2: "[T, F]"}  # a block with `sequence_input` reads rank 2 time first


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def input_line(cls) -> str:
    """The **Input** line of an op's section, from the block's `ranks` (which its shape rule
    checks with `check_rank`), `regions_input` and `index_bound_field` (token ids)."""
    from compiler.blocks import Composite

    ranks = getattr(cls, "ranks", None)
    if ranks is None:
        text = "what its nodes take" if issubclass(cls, Composite) else "any rank"
        if not issubclass(cls, Composite) and cls.max_inputs is None:
            text += ", the same for every input"
    else:
        words = SEQUENCE_SHAPES if getattr(cls, "sequence_input", False) else RANK_SHAPES
        shapes = _or([f"`{words.get(r, f'rank {r}')}`" for r in ranks])
        text = f"{shapes} (rank {_or([str(r) for r in ranks])}){' only' if len(ranks) == 1 else ''}"
    boxes = getattr(cls, "regions_input", None)
    if boxes is not None:
        text += f", and the boxes `[R, 4]` as input {boxes + 1}"
    if getattr(cls, "index_bound_field", None):  # the check holds it to an int64 input
        text = text.replace("`[F]`", "`[T]`") + f", int64 token ids below `{cls.index_bound_field}`"
    return f"**Input**: {text}."


def scaling_table() -> str:
    """Which parameters of which ops `scaling.width` and `scaling.depth` multiply."""
    from compiler.blocks import registry

    rows = ["| op | width multiplies | depth multiplies |", "|---|---|---|"]
    for op in registry.names():
        cls = registry.get(op)
        width = [f for f in getattr(cls, "width_fields", ()) if f in cls.model_fields]
        depth = [f for f in getattr(cls, "depth_fields", ()) if f in cls.model_fields]
        if (width or depth) and registry.is_built_in(cls):
            rows.append(f"| `{op}` | {', '.join(f'`{f}`' for f in width) or '—'} | "
                        f"{', '.join(f'`{f}`' for f in depth) or '—'} |")
    return "\n".join(rows)


def _model(dotted: str) -> type[BaseModel]:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def render(text: str, page: str = SPEC_DOC.name) -> str:
    """The document `page` (a file name in docs/) with every marked table and quoted file
    regenerated."""
    from compiler.blocks import registry

    def replace(match: re.Match) -> str:
        kind, name = match.group(1), match.group(2)
        if kind == "scaling":
            body = scaling_table()
        elif kind == "keys":
            body = keys_table(_model(name), page=page)
        elif kind == "op":
            cls = registry.get(name)
            if cls is None:
                body = f"**`{name}` is not a registered op.**"
            else:
                body = input_line(cls) + "\n\n" + table(cls, page=page)
        else:
            body = table(_model(name), page=page)
        return f"<!-- table: {kind} {name} -->\n{body}\n<!-- end table -->"

    return FILE_MARKER.sub(_quote_file, MARKER.sub(replace, text))


def _quote_file(match: re.Match) -> str:
    """A `<!-- file: PATH -->` marker followed by PATH's text in a fenced block."""
    path = match.group(1)
    source = ROOT / path
    if not source.is_file():
        return f"<!-- file: {path} -->\n**`{path}` does not exist.**\n<!-- end file -->"
    code = source.read_text()
    language = {".py": "python", ".yaml": "yaml", ".toml": "toml"}.get(source.suffix, "")
    return f"<!-- file: {path} -->\n```{language}\n{code.rstrip()}\n```\n<!-- end file -->"


def quoted_files(text: str) -> dict[str, str]:
    """{path: the code in the fenced block} of every `<!-- file: PATH -->` marker."""
    out = {}
    for match in FILE_MARKER.finditer(text):
        block = re.search(r"^```\w*\n(.*?)^```$", match.group(0), re.S | re.M)
        out[match.group(1)] = block.group(1) if block else ""
    return out


def missing_ops(text: str) -> list[str]:
    """Registered ops without a `### \\`op\\`` section and a generated table (in `text`, the
    text of docs/blocks.md)."""
    from compiler.blocks import registry

    return [op for op in registry.names() if registry.is_built_in(op)
            and (f"### `{op}`" not in text or f"<!-- table: op {op} -->" not in text)]


def main(argv: list[str]) -> int:
    stale = []
    for doc in DOCS:
        text = doc.read_text()
        new = render(text, doc.name)
        if new == text:
            continue
        if "--check" in argv:
            print(f"{doc.relative_to(ROOT)} is out of date: run python docs/gen_reference.py", file=sys.stderr)
            stale.append(doc)
        else:
            doc.write_text(new)
            print(f"updated {doc.relative_to(ROOT)}")
    if stale:
        return 1
    missing = missing_ops(BLOCKS_DOC.read_text())
    if missing:
        print(f"ops without a section and table in {BLOCKS_DOC.relative_to(ROOT)}: " + ", ".join(missing)
              + "  (add '### `op`' and '<!-- table: op NAME -->\\n<!-- end table -->')", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
