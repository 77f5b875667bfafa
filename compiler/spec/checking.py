"""Located checking: every problem the loader finds is reported at a YAML path of the document
(or at the composite node that generated what is wrong), pydantic's errors are reworded by the
message catalogue, and expressions are evaluated with their failures located and counted.

`Checker` holds the document and the `Collector` of one load; `Scope` says where a node list
is being expanded, which decides where its problems are located.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import expr
from ..errors import Collector, Loc, format_path
from ..quoted import QUOTED, quoted_fields, quoted_values
from ..source import Document
from .messages import describe, pydantic_message, suggestion, union_collapsed
from .values import FAILED, Reported, evaluate, may_hold_expressions


@dataclass
class Scope:
    """Where a list of nodes is being expanded: the top level, a user block or a composite."""

    prefix: str
    """Prepended to local ids: '' at the top level, 'layer2.0.' inside a block."""
    group: tuple[str, ...]
    inputs: dict[str, str]
    """Local input names -> the global references they stand for."""
    values: Any
    """Looks up $names: block parameters first, then the spec's vars."""
    path: tuple
    """YAML path of this node list (locations of the nodes come from it)."""
    anchor: Loc | None = None
    """Nodes a built-in composite generated are located at the composite's node."""
    anchor_path: str = ""
    stack: tuple[str, ...] = ()
    """User blocks being expanded, outermost first (to refuse recursion)."""
    init: Any = None
    """The `init:` of the enclosing block node, for nodes inside that give none."""
    owner: str = ""
    """The user's node whose composite generated the nodes of this list ('' for the user's own)."""


class Checker:
    """The document of one load and the problems found in it so far."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.out = Collector()
        self.failures = 0
        """Expressions `resolve` could not evaluate so far."""

    def error(self, path: tuple, message: str, at_key: bool = False, scope: Scope | None = None) -> None:
        if scope is not None and scope.anchor is not None:
            self.out.error(scope.anchor, message, scope.anchor_path)
            return
        loc = self.doc.key_loc(path) if at_key else self.doc.loc(path)
        self.out.error(loc, message, format_path(path))

    def loc(self, path: tuple, scope: Scope) -> Loc:
        """Where a node of `scope` at `path` is shown: its own line, or its composite's."""
        return scope.anchor if scope.anchor is not None else self.doc.loc(path)

    def path_str(self, path: tuple, scope: Scope) -> str:
        """The YAML path a node of `scope` is reported under (its composite's, if generated)."""
        return scope.anchor_path if scope.anchor is not None else format_path(path)

    def validate(self, model: type[BaseModel], data: Any, base: tuple, owner: str,
                 origins: dict[str, tuple] | None = None, scope: Scope | None = None) -> BaseModel | None:
        """Validate `data` with `model`; translate errors to located problems.
        `origins` maps a top-level key to the path it came from (defaults live elsewhere)."""
        try:
            validated = model.model_validate(data)
        except ValidationError as exc:
            errors = union_collapsed(exc.errors(include_url=False), union_members(model))
            errors += quoted_fields(model, data, {e["loc"][0] for e in errors if e["loc"]})
        else:
            errors = quoted_values(data, validated)  # pydantic's lax mode read `out: "16"` as 16
            if not errors:
                return validated
        fields = [f for f in model.model_fields if f != "op"]
        suggested = {suggestion(e["loc"][-1], fields) for e in errors
                     if e["type"] == "extra_forbidden" and e["loc"]}
        errors = [e for e in errors if not (e["type"] == "missing" and len(e["loc"]) == 1
                                             and e["loc"][0] in suggested)]
        for err in errors:
            loc = err["loc"]
            head = loc[0] if loc else None
            root = (origins or {}).get(head, base + ((head,) if head is not None else ()))
            path = root + tuple(loc[1:]) if head is not None else base
            sub_fields, sub_owner = fields, owner
            if len(loc) > 1:  # a nested model (norm: {...}, init: {conv: {...}}): list its own keys
                nested = _innermost_model(model, tuple(err.get("raw_loc", loc))[:-1])
                if nested is not None:
                    sub_fields, sub_owner = list(nested[0].model_fields), nested[1]
            message = pydantic_message(err, sub_owner, sub_fields)
            written = self.written(path)
            if isinstance(written, str) and "$" in written and err["type"] != "extra_forbidden":
                message = f"{written!r} is {describe(err.get('input'))}: {message.split(', got ')[0]}"
                if err["type"] == "int_from_float" and "/" in written.replace("//", ""):
                    message += " (// divides to a whole number)"
                if err["type"] in QUOTED:  # the value of a var, quoted
                    message += f'; write that value without quotes ({err["ctx"]["fix"]}, not "{err["input"]}")'
            if scope is not None and scope.anchor is not None:
                message = f"{format_path(path)}: {message}"
            self.error(path, message, at_key=err["type"] == "extra_forbidden", scope=scope)
        return None

    def written(self, path: tuple) -> Any:
        """The value as written in the document at `path` (before expressions), if any."""
        value = self.doc.data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    def resolve(self, value: Any, path: tuple, scope) -> Any:
        """Evaluate every expression inside `value`; report failures at their path (and count
        them in `self.failures`, so a caller can tell without walking the result)."""
        if isinstance(value, str):
            return self._resolve_text(value, path, scope) if "$" in value else value
        if isinstance(value, list):
            if not any(map(may_hold_expressions, value)):
                return list(value)  # plain numbers and names: nothing to evaluate (most arguments)
            return [self.resolve(v, path + (i,), scope) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.resolve(v, path + (k,), scope) if may_hold_expressions(v) else v
                    for k, v in value.items()}
        return value

    def _resolve_text(self, value: str, path: tuple, scope) -> Any:
        try:
            return evaluate(value, scope)
        except Reported:
            self.failures += 1
            return FAILED
        except expr.ExprError as exc:
            hint = ""
            if value.count("(") > value.count(")"):
                hint = ('; inside a {...} map a comma ends the value: quote expressions that '
                        'contain commas, as in "max($a, 2)"')
            self.error(path, f"{value!r}: {exc}{hint}")
            self.failures += 1
            return FAILED


def _innermost_model(model: type[BaseModel], parts: tuple) -> tuple[type[BaseModel], str] | None:
    """The model that holds the last key of an error's location, and that key's owner's name
    (`init.conv.wieght` -> Rule, "conv"); list indices are passed over, and where a field is a
    union of models pydantic's tag in the location (the member's class name) picks the member."""
    current, owner, members = model, None, []
    for part in parts:
        tagged = next((m for m in members if isinstance(part, str) and m.__name__ == part), None)
        if tagged is not None:
            current, members = tagged, []
            continue
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue
        members = _nested_models(field.annotation)
        if not members:
            return None
        current, owner = members[0], part
    return (current, str(owner)) if owner is not None else None


def _nested_models(annotation) -> list[type[BaseModel]]:
    """The models inside a field's type, in order (`dict[str, A | list[B | str]]` -> [A, B])."""
    found: list[type[BaseModel]] = []
    for arg in (typing.get_args(annotation) or (annotation,)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            found.append(arg)
        elif typing.get_args(arg):
            found += [m for m in _nested_models(arg) if m not in found]
    return found


@functools.lru_cache(maxsize=None)
def union_members(model: type[BaseModel]) -> frozenset[str]:
    """The class names of the models that are members of a union somewhere under `model`: pydantic
    puts them in an error's location as tags, which the user never wrote."""
    names: set[str] = set()
    seen: set[type[BaseModel]] = set()

    def walk(current: type[BaseModel]) -> None:
        if current in seen:
            return
        seen.add(current)
        for field in current.model_fields.values():
            nested = _nested_models(field.annotation)
            if len(nested) > 1 or (nested and _is_union_somewhere(field.annotation)):
                names.update(m.__name__ for m in nested)
            for inner in nested:
                walk(inner)

    walk(model)
    return frozenset(names)


def _is_union_somewhere(annotation) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return True
    return any(_is_union_somewhere(arg) for arg in typing.get_args(annotation))
