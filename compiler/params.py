"""The one reader of a block's parameters (or any pydantic options model's fields).

Three places need to know what arguments a block takes: the JSON Schema (compiler/schema.py),
the reference tables of docs/blocks.md and docs/spec-language.md (docs/gen_reference.py) and
the designer's palette forms (ui/designer/forms.py). Each used to walk the pydantic
annotations its own way; they now read `parameters(model)`, one `Param` record per field, so a
new kind of annotation is taught once.

A `Param` keeps the raw annotation and constraint metadata too, for the docs' type text
(links, patterns and lengths are a page's concern, not the reader's).
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

NO_EXAMPLE = object()
"""`Param.example` of a parameter that the block's first registry example does not set."""

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


@dataclass(frozen=True)
class Param:
    """One parameter of a block (or field of an options model), as every reader needs it."""

    name: str
    annotation: Any
    """The field's annotation as written (Annotated, unions and all)."""
    metadata: tuple
    """Pydantic's constraint objects of the field (annotated_types.Ge, Gt, MaxLen...)."""
    required: bool
    default: Any
    """The value taken when the argument is left out (a default factory's value); None when required."""
    description: str
    """The attribute docstring (the models use `use_attribute_docstrings=True`), stripped."""
    example: Any
    """The value in the block's first registry example, else NO_EXAMPLE."""
    json_type: str | None
    """"integer", "number", "boolean" or "string" when the value (null aside) has that one
    type; None for lists, maps, options models and mixed unions."""
    nullable: bool
    """`null` is allowed (the annotation is `X | None`)."""
    choices: tuple
    """The values a value must be one of (null aside), when the type is a closed set:
    Literal values, the `kind` names of an options model that also accepts a bare name
    (act, norm), or true/false with Literal values (`bool | Literal["auto"]`); else empty."""
    minimum: int | float | None = None
    """Inclusive lower bound (`ge`; on an integer parameter also `gt` + 1)."""
    exclusive_minimum: int | float | None = None
    """`gt` bound of a parameter that is not an integer (a float > 0)."""
    maximum: int | float | None = None
    """Inclusive upper bound (`le`)."""
    exclusive_maximum: int | float | None = None
    """`lt` bound."""


def strip_annotated(annotation: Any) -> Any:
    """The type inside any number of `Annotated[...]` wrappers."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def kind_names(model: Any) -> list[str] | None:
    """The `kind` names of an options model that also accepts a bare name (Act, Norm), else None."""
    if isinstance(model, type) and issubclass(model, BaseModel) and "kind" in model.model_fields:
        kind = strip_annotated(model.model_fields["kind"].annotation)
        if typing.get_origin(kind) is Literal:
            return list(typing.get_args(kind))
    return None


def _members(annotation: Any) -> tuple[list[Any], bool]:
    """The union's members other than None (each as annotated), and whether None is one."""
    inner = strip_annotated(annotation)
    members = typing.get_args(inner) if typing.get_origin(inner) in (Union, types.UnionType) else (inner,)
    return [m for m in members if m is not type(None)], type(None) in members


def _constraints(annotation: Any, metadata: tuple) -> list[Any]:
    """The field's metadata, the annotation's own and, for `X | None`, X's."""
    found = list(metadata)
    if typing.get_origin(annotation) is typing.Annotated:
        found += list(getattr(annotation, "__metadata__", ()))
    rest, _ = _members(annotation)
    if len(rest) == 1:
        found += list(getattr(rest[0], "__metadata__", ()))
    return found


def _choices(rest: list[Any]) -> tuple:
    stripped = [strip_annotated(m) for m in rest]
    if len(stripped) == 1:
        kinds = kind_names(stripped[0])
        if kinds:
            return tuple(kinds)
    if stripped and all(s is bool or typing.get_origin(s) is Literal for s in stripped):
        if stripped == [bool]:
            return ()  # a plain flag: json_type boolean
        values: list[Any] = []
        for s in stripped:
            values += [True, False] if s is bool else list(typing.get_args(s))
        return tuple(values)
    return ()


def _bounds(constraints: list[Any], integer: bool) -> dict[str, Any]:
    """minimum, exclusive_minimum, maximum, exclusive_maximum; on an integer parameter,
    `gt=n` is `minimum=n + 1` (what a number input needs)."""
    out: dict[str, Any] = {}
    for m in constraints:
        if getattr(m, "ge", None) is not None:
            out.setdefault("minimum", m.ge)
        gt = getattr(m, "gt", None)
        if gt is not None:
            if integer and isinstance(gt, int) and not isinstance(gt, bool):
                out.setdefault("minimum", gt + 1)
            else:
                out.setdefault("exclusive_minimum", gt)
        if getattr(m, "le", None) is not None:
            out.setdefault("maximum", m.le)
        if getattr(m, "lt", None) is not None:
            out.setdefault("exclusive_maximum", m.lt)
    return out


def _read(name: str, info, example: dict[str, Any]) -> Param:
    required = info.is_required()
    if required:
        default = None
    elif info.default is PydanticUndefined and info.default_factory is not None:
        default = info.default_factory()
    else:
        default = info.default
    rest, nullable = _members(info.annotation)
    single = strip_annotated(rest[0]) if len(rest) == 1 else None
    return Param(name=name, annotation=info.annotation, metadata=tuple(info.metadata), required=required,
                 default=default, description=(info.description or "").strip(),
                 example=example.get(name, NO_EXAMPLE),
                 json_type=_JSON_TYPES.get(single) if isinstance(single, type) else None,
                 nullable=nullable, choices=_choices(rest),
                 **_bounds(_constraints(info.annotation, tuple(info.metadata)), integer=single is int))


@functools.lru_cache(maxsize=None)
def _parameters(model: type[BaseModel]) -> tuple[Param, ...]:
    examples = getattr(model, "examples", None)
    example = dict(examples[0][0]) if examples else {}
    return tuple(_read(name, info, example) for name, info in model.model_fields.items() if name != "op")


def parameters(model: type[BaseModel]) -> list[Param]:
    """Every parameter of a block class (its `op` key aside) or field of an options model,
    in declaration order."""
    return list(_parameters(model))


def json_properties(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of each parameter (pydantic's, `$ref`s into `defs`, which receives the
    option models they refer to), keyed by the parameter's name."""
    schema = model.model_json_schema(ref_template="#/$defs/{model}", mode="validation")
    defs.update(schema.pop("$defs", {}))
    properties = schema.get("properties", {})
    return {p.name: properties[p.name] for p in parameters(model) if p.name in properties}


__all__ = ["NO_EXAMPLE", "Param", "json_properties", "kind_names", "parameters", "strip_annotated"]
