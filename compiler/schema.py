"""The spec language as a JSON Schema, generated from the pydantic models.

Editors that speak JSON Schema (VS Code's YAML extension, i.e. yaml-language-server; JetBrains
IDEs) then complete keys and ops and underline mistakes as you type. The schema is checked
against the real loader in the tests: every zoo spec validates, and typical mistakes do not.

Numbers and booleans may also be written as `$var` expressions, so every such field accepts a
string containing `$`. Ops that the schema does not know (user-defined blocks, plugins) are
allowed with any arguments; the loader checks those.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from . import params
from .blocks import registry
from .init import InitPolicy, NodeInit
from .spec import BlockDef, Scaling, SpecDocument
from .spec.node_keys import node_keys_schema

SCHEMA_ID = "https://blockgraph.dev/schema/blockgraph-1.schema.json"
EXPRESSION = {"type": "string", "pattern": r"\$", "description": "an expression over $vars, e.g. $width * 2"}
_BY_NAME = {  # models that also accept a bare name (or number) instead of a map
    "Act": {"enum_from": "kind"}, "Norm": {"enum_from": "kind"}, "Initializer": {"enum_from": "kind"},
    "Rule": {"ref": "Initializer"}, "NodeInit": {"ref": "Initializer"}, "SEOptions": {"number": True},
}


def _model_schema(model, defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/$defs/{model}", mode="validation")
    defs.update(schema.pop("$defs", {}))
    return schema


_NOT_EXPRESSIONS = {"op", "id", "in", "$schema", "$id"}


def _allow_expressions(node: Any) -> Any:
    """Any argument may be a `$var` (whose value can have any type) or an arithmetic
    expression; numbers and booleans inside lists may be expressions too."""
    if isinstance(node, list):
        return [_allow_expressions(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        value = _allow_expressions(value)
        if key == "properties" and isinstance(value, dict):
            value = {k: v if k in _NOT_EXPRESSIONS or v.get("type") == "string" else {"anyOf": [v, EXPRESSION]}
                     for k, v in value.items()}
        out[key] = value
    if out.get("type") in ("integer", "number", "boolean"):
        return {"anyOf": [out, EXPRESSION]}
    return out


def _accept_names(defs: dict[str, Any]) -> None:
    for name, how in _BY_NAME.items():
        if name not in defs:
            continue
        original = defs[name]
        if "enum_from" in how:
            kinds = original["properties"][how["enum_from"]]
            short = {"type": "string", "enum": kinds.get("enum", []), "description": original.get("description", "")}
            defs[name] = {"anyOf": [short, original]}
        elif "ref" in how:
            defs[name] = {"anyOf": [{"$ref": f"#/$defs/{how['ref']}"}, original]}
        elif how.get("number"):
            defs[name] = {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, original]}


def _node_keys(defs: dict[str, Any]) -> dict[str, Any]:
    """The keys every node may carry, from the one model of them (compiler.spec.NodeKeys)."""
    defs.update({"NodeInit": copy.deepcopy(_model_schema(NodeInit, defs))})
    return node_keys_schema()


def _ops(plugins: bool) -> list[str]:
    return [op for op in registry.names() if plugins or registry.is_built_in(op)]


def json_schema(plugins: bool = False) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a blockgraph spec file; with `plugins`, the ops of
    loaded plugins are described too (the shipped schema has the built-in ops only)."""
    defs: dict[str, Any] = {}
    common = _node_keys(defs)
    branches = []
    ops = _ops(plugins)
    for op in ops:
        cls = registry.get(op)
        props = {**common, **params.json_properties(cls, defs)}
        props["op"] = {"const": op, "description": (cls.__doc__ or "").strip().split("\n")[0]}
        defs[f"op_{op}"] = {"type": "object", "title": op, "description": _summary(cls), "properties": props,
                            "required": ["op"],  # other arguments may come from `defaults:`
                            "additionalProperties": False}
        branches.append({"if": {"properties": {"op": {"const": op}}, "required": ["op"]},
                         "then": {"$ref": f"#/$defs/op_{op}"}})
    defs["node"] = {"type": "object", "required": ["op"],
                    "properties": {"op": {"type": "string", "anyOf": [{"enum": ops}, {"pattern": "^[A-Za-z_]\\w*$"}],
                                          "description": "A built-in op (" + ", ".join(ops) + ") or a user block"}},
                    "allOf": branches}
    top = _model_schema(SpecDocument, defs)
    top["properties"]["nodes"] = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/node"},
                                  "description": top["properties"]["nodes"].get("description", "")}
    block_def = _model_schema(BlockDef, defs)
    block_def["properties"]["nodes"]["items"] = {"$ref": "#/$defs/node"}
    defs["BlockDef"] = block_def
    top["properties"]["blocks"] = {"type": "object", "additionalProperties": {"$ref": "#/$defs/BlockDef"},
                                   "description": top["properties"]["blocks"].get("description", "")}
    top["properties"]["scaling"] = {"$ref": "#/$defs/Scaling"}
    defs["Scaling"] = _model_schema(Scaling, defs)
    top["properties"]["init"] = {"$ref": "#/$defs/InitPolicy"}
    defs["InitPolicy"] = _model_schema(InitPolicy, defs)
    top["properties"]["defaults"] = {
        "type": "object", "description": top["properties"]["defaults"].get("description", ""),
        "properties": {op: {"type": "object"} for op in ops}, "additionalProperties": {"type": "object"}}
    # a spec that extends another inherits the required keys
    required = top.pop("required", [])
    top["allOf"] = [{"if": {"not": {"required": ["extends"]}}, "then": {"required": required}},
                    {"required": ["blockgraph"]}]
    _accept_names(defs)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
              "title": "blockgraph spec", **top, "$defs": defs}
    return _allow_expressions(schema)


def _summary(cls) -> str:
    import sys

    doc = (sys.modules[cls.__module__].__doc__ or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ")


def dumps(plugins: bool = False) -> str:
    return json.dumps(json_schema(plugins), indent=2, sort_keys=True) + "\n"


__all__ = ["json_schema", "dumps"]
