"""Quoted numbers are text: finding where pydantic's lax mode read `out: "16"` as 16.

Quotes make a YAML value text. Pydantic's lax mode (which blockgraph keeps, so that `$w / 2`
giving 32.0 fills an integer field and `k: [3, 1]` a tuple) would also turn the text "16" into
16 and "true" into True, so a spec would mean one thing to blockgraph and another to every
other tool reading its YAML (and the designer's forms). The loader (compiler/spec/) validates
as before and then asks `quoted_values` where the input held text that came out as a number or
a boolean; each place becomes an error with its fix (`expected an integer, got the text "16":
write 16 without quotes`). `unquote_hint` words the same fix for the checks the loader makes by
hand (input sizes, `repeat`, `when`, block parameters).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import SpecError
from .source import parse

QUOTED = {"quoted_int": "an integer", "quoted_float": "a number", "quoted_bool": "true or false"}
"""Error types of `quoted_values`, with what the field expects."""


def quoted_values(data: Any, value: Any, loc: tuple = ()) -> list[dict]:
    """Where pydantic's lax mode turned text into a number or a boolean (`out: "16"`, `bias:
    "true"`), as pydantic-style errors. Quotes make a YAML value text, so a quoted number is a
    mistake blockgraph reports with its fix rather than guessing; `$expressions` are evaluated
    before validation and so never get here as text. Walks the input beside the validated value,
    looking only at text that may read as a number and at maps and lists that validation changed
    (this runs for every node: an equal list or map of text and numbers holds no coerced text)."""
    found: list[dict] = []
    if type(data) is str:
        if type(value) in _NUMBERS:
            kind = "quoted_bool" if type(value) is bool else "quoted_int" if type(value) is int else "quoted_float"
            found.append({"type": kind, "loc": loc, "input": data, "ctx": {"fix": _unquoted(data, value)}, "msg": ""})
        return found
    if data == value:
        return found
    if type(data) is dict:
        model = isinstance(value, BaseModel)
        if not model and type(value) is not dict:
            return found
        keys = type(value).model_fields if model else value
        for key, item in data.items():
            kind = type(item)
            if (kind is dict or kind is list or (kind is str and _LAX_TEXT.match(item))) and key in keys:
                found += quoted_values(item, getattr(value, key) if model else value[key], loc + (key,))
    elif type(data) is list and isinstance(value, (list, tuple)) and len(data) == len(value):
        for i, (item, got) in enumerate(zip(data, value)):
            kind = type(item)
            if kind is dict or kind is list or (kind is str and _LAX_TEXT.match(item)):
                found += quoted_values(item, got, loc + (i,))
    return found


_NUMBERS = (bool, int, float)
_LAX_TEXT = re.compile(r"\s*([-+.\d]|(true|false|yes|no|on|off|[tfyn])\s*$)", re.IGNORECASE)
"""Text that pydantic's lax mode may read as a number or a boolean (others need no look)."""


def quoted_fields(model: type[BaseModel], data: Any, failed: set) -> list[dict]:
    """`quoted_values` of the fields that validate when others do not, one field at a time
    (so a node with a wrong key also hears about its quoted numbers in the same run)."""
    found: list[dict] = []
    if not isinstance(data, dict):
        return found
    for key, value in data.items():
        if key in failed or key not in model.model_fields or not isinstance(value, (str, list, dict)):
            continue
        try:
            valid = _field_adapter(model, key).validate_python(value)
        except ValidationError:
            continue
        found += quoted_values(value, valid, (key,))
    return found


@functools.lru_cache(maxsize=None)
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter:
    info = model.model_fields[name]
    is_model = isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    config = None if is_model else model.model_config  # a model brings its own
    return TypeAdapter(Annotated[info.annotation, info], config=config)


def unquote_hint(value: Any, want: type) -> str:
    """': write 16 without quotes' when `value` is text that reads as a `want` (int, float or
    bool), else '' (for the checks the loader makes itself: input sizes, repeat, when, parameters)."""
    if not isinstance(value, str) or want not in (int, float, bool):
        return ""
    read = _read_scalar(value)
    if want is bool:
        fits = isinstance(read, bool)
    else:
        kinds = (int,) if want is int else (int, float)
        fits = isinstance(read, kinds) and not isinstance(read, bool) and math.isfinite(read)
    return f": write {value.strip()} without quotes" if fits else ""


def _read_scalar(text: str) -> Any:
    """What YAML makes of `text` written without quotes (None when it is not one plain value)."""
    try:
        return parse(text.strip()).data if "\n" not in text else None
    except SpecError:
        return None


def _unquoted(text: str, value: Any) -> str:
    """How to write `value`, which pydantic read from `text`, without quotes: the text itself
    when YAML reads it as that value (`1e-3`), else the value (`true` for "yes")."""
    read = _read_scalar(text)
    if read == value and isinstance(read, bool) == isinstance(value, bool) and not isinstance(read, str):
        return text.strip()
    return str(value).lower() if isinstance(value, bool) else str(value)
