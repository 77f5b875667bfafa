"""The palette's forms and the sidebar's var inputs, without Streamlit.

A built-in block's form comes from compiler.params (the reader the JSON Schema and the docs'
parameter tables use too): each parameter becomes a `FormField` whose kind says which widget
draws it, with first values from the block's registry example. A user block's form comes from
its `params:`. `collect_args` turns the submitted values back into the node's arguments
(only those that differ from the defaults).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

import compiler
from compiler import SpecError
from compiler.params import NO_EXAMPLE, Param, parameters
from ui.designer.text_edits import read_value, yaml_scalar


@dataclass
class FormField:
    """One input of the palette form."""

    name: str
    kind: str
    """int, float, optint (int or empty), bool, str, choice (a selectbox) or yaml (a text
    input read as YAML: lists, maps, unions)."""
    default: Any
    """The value the block takes when the argument is left out (ignored when required)."""
    initial: Any
    """What the form shows first (for yaml fields: the YAML text)."""
    required: bool = False
    options: list[Any] = field(default_factory=list)
    help: str = ""
    min_value: int | float | None = None


def _jsonable(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)


def _yaml_text(value: Any) -> str:
    return "" if value is None else yaml_scalar(_jsonable(value))


def _choice_value(value: Any, options: list[Any]) -> Any:
    """An options-model value (Norm(kind='batch'), {'kind': ...}) as its kind name."""
    if hasattr(value, "kind"):
        value = value.kind
    elif isinstance(value, dict) and "kind" in value:
        value = value["kind"]
    return value if value in options else options[0]


def palette_fields(op: str, spec: compiler.Spec | None = None) -> list[FormField]:
    """The form of a built-in block (from compiler.params; first values from its registry
    examples) or of a user block of `spec` (from its `params:`; first values from its last
    use in the spec)."""
    from compiler.blocks import registry

    if spec is not None and op in spec.blocks:
        return _user_block_fields(op, spec)
    cls = registry.get(op)
    if cls is None:
        raise KeyError(op)
    return [_field(param) for param in parameters(cls)]


def _field(param: Param) -> FormField:
    kind, options = form_kind(param)
    minimum = param.minimum if kind in ("int", "optint", "float") else None
    default = param.default
    initial = default if param.example is NO_EXAMPLE else param.example
    if kind == "choice":
        default = _choice_value(default, options) if not param.required else None
        initial = _choice_value(initial, options)
    elif kind in ("int", "float") and initial is None:
        initial = minimum if minimum is not None else (1 if kind == "int" else 0.0)
    elif kind == "yaml":
        default = _jsonable(default)
        initial = _yaml_text(initial)
    else:
        default = _jsonable(default)
    return FormField(name=param.name, kind=kind, default=default, initial=initial, required=param.required,
                     options=options, help=param.description, min_value=minimum)


def form_kind(param: Param) -> tuple[str, list[Any]]:
    """The widget of a parameter, (kind, options): a flag is a checkbox (a choice of null,
    true and false when null is allowed), a number an input (`optint`: an int that may be
    left empty), a closed set a selectbox (null last when allowed); anything else (lists, maps,
    unions, optional floats and text) a text input read as YAML."""
    if param.json_type == "boolean":
        return ("choice", [None, True, False]) if param.nullable else ("bool", [])
    if param.json_type == "integer":
        return ("optint" if param.nullable else "int"), []
    if param.json_type == "number" and not param.nullable:
        return "float", []
    if param.json_type == "string" and not param.nullable:
        return "str", []
    if param.choices:
        return "choice", list(param.choices) + ([None] if param.nullable else [])
    return "yaml", []


_TYPE_NAMES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "any": "yaml", "list": "yaml"}


def _user_block_fields(op: str, spec: compiler.Spec) -> list[FormField]:
    definition = spec.blocks[op]
    last_use: dict[str, Any] = {}
    for group in spec.groups.values():
        if group.kind == "user" and group.op == op and isinstance(group.block, dict):
            last_use = group.block
    fields = []
    for name, declared in definition.params.items():
        required = isinstance(declared, str) and declared in _TYPE_NAMES
        if required:
            kind, default = _TYPE_NAMES[declared], None
        else:
            default = declared
            kind = ("bool" if isinstance(declared, bool) else "int" if isinstance(declared, int)
                    else "float" if isinstance(declared, float) else "str" if isinstance(declared, str) else "yaml")
        initial = last_use.get(name, default)
        if kind == "int" and not isinstance(initial, int):
            initial = 1
        elif kind == "float" and not isinstance(initial, (int, float)):
            initial = 0.0
        elif kind == "bool":
            initial = bool(initial)
        elif kind == "str":
            initial = "" if initial is None else str(initial)
        elif kind == "yaml":
            initial = _yaml_text(initial)
        fields.append(FormField(name, kind, default, initial, required,
                                help=f"{declared}" if required else f"default {default!r}"))
    return fields


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def collect_args(fields: list[FormField], values: dict[str, Any]) -> dict[str, Any]:
    """Form values -> the node's arguments: required ones, and those that differ from the
    default. YAML fields are parsed (ValueError names the field on a syntax error)."""
    args: dict[str, Any] = {}
    for f in fields:
        value = values.get(f.name, f.initial)
        if f.kind == "yaml":
            source = (value or "").strip()
            if not source:
                if f.required:
                    raise ValueError(f"{f.name}: a value is required")
                continue
            try:
                value = read_value(source)
            except SpecError as exc:
                raise ValueError(f"{f.name}: not valid YAML ({exc.first.message})") from None
        elif f.kind == "int" or (f.kind == "optint" and value is not None):
            value = int(value)
        elif f.kind == "float":
            value = float(value)
        if f.required or not _same(value, f.default):
            args[f.name] = value
    return args


def block_doc(op: str, spec: compiler.Spec | None = None) -> str:
    """One paragraph about a block for the palette: the module docstring's first paragraph,
    or a user block's description."""
    from compiler.blocks import registry

    if spec is not None and op in spec.blocks:
        definition = spec.blocks[op]
        return definition.description or f"user block with params {definition.params}"
    cls = registry.get(op)
    module = inspect.getmodule(cls)
    text = inspect.getdoc(module) or inspect.getdoc(cls) or ""
    return text.split("\n\n")[0].replace("\n", " ")


def palette_ops(spec: compiler.Spec | None) -> list[str]:
    """Built-in ops (sorted), then the spec's user blocks."""
    from compiler.blocks import registry

    return registry.names() + sorted(spec.blocks if spec is not None else [])


def parse_var(text: str) -> Any:
    """A var typed as text, read as a YAML scalar (as `--var NAME=VALUE` does)."""
    if not text.strip():
        return text
    try:
        value = read_value(text)
    except SpecError:
        return text
    return value if isinstance(value, (int, float, bool, str)) or value is None else text


def var_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float" if math.isfinite(value) else "text"
    return "text"


def overrides(base: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The vars whose current value differs from the text's (type-aware: 1.0 vs 1 differ)."""
    return {k: v for k, v in current.items()
            if k in base and (v != base[k] or type(v) is not type(base[k]))}
