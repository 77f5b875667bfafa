"""The keys every node may carry besides its op's own arguments, as one pydantic model.

`NodeKeys` is the single statement of them: the loader takes `NODE_KEYS` from it to tell a
node's own keys from its op's arguments (and to refuse them as parameter names), the JSON
Schema (compiler/schema.py) takes each key's type and description from it, and the docs test
checks the node-keys table of docs/spec-language.md against it. The loader does not validate a
node with this model: a node's keys may be `$expressions` and each has its own message, so
`compiler.spec.heads` reads them one by one, keeping to these types and bounds.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..init import NodeInit
from .document import ID_PATTERN

MAX_REPEAT = 10_000


class NodeKeys(BaseModel):
    """What a node says about itself rather than about its op. Each key's docstring opens with
    the line the JSON Schema shows; the docs' table shows all of it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, use_attribute_docstrings=True)

    EXPRESSIONS: ClassVar[tuple[str, ...]] = ("repeat", "when", "scalable")
    """Keys whose value may be a `$expression`; the loader reads the others as written."""

    op: str
    """The op: a built-in block, a user block under `blocks:` or a plugin's.

    An unknown name is an error that suggests the nearest one."""
    id: str = Field(None, pattern=f"^{ID_PATTERN.pattern}$")
    """The node's name (default: the op and a number, e.g. conv3).

    How other nodes, `outputs` and the `state_dict` refer to it; unique within its node list."""
    inputs: str | Annotated[list[str], Field(min_length=1)] = Field(None, alias="in")
    """The node(s) or input(s) this node reads (default: the previous node).

    Node ids, input names, repeat or block ids."""
    repeat: int = Field(1, ge=0)
    """Stack this many copies (ids id.0, id.1, ...).

    At most 10,000; `0` makes the node a pass-through."""
    first: dict[str, Any] = None
    """Arguments that differ in the first copy of a repeat.

    They replace the node's own in the first copy (e.g. `{stride: 2}`)."""
    init: NodeInit = None
    """Initialisation of this node's weights, overriding the spec's `init:`."""
    when: bool = True
    """Leave the node out when false (e.g. when: $aux)."""
    scalable: bool = True
    """false: `scaling:` leaves this node's widths alone.

    Its channels and `repeat` keep the values written (see [scaling](#scaling))."""


NODE_KEYS = tuple(field.alias or name for name, field in NodeKeys.model_fields.items())
"""Keys every node may carry besides its op's own arguments, as written in YAML."""


def node_keys_schema() -> dict[str, dict[str, Any]]:
    """Each node key's JSON Schema (type, bounds, description), by its YAML name; `$defs` the
    keys refer to (NodeInit) are left to the caller, which adds the model itself. Titles,
    defaults, `additionalProperties: true` and the text beside a `$ref` say nothing a
    validator reads, and are left out (the referred model describes itself); a description is
    its docstring's first paragraph."""
    schema = NodeKeys.model_json_schema(ref_template="#/$defs/{model}", by_alias=True)
    keys = {}
    for name, prop in schema["properties"].items():
        keys[name] = {k: v for k, v in prop.items() if k not in ("title", "default")
                      and not (k == "additionalProperties" and v is True)
                      and not (k == "description" and "$ref" in prop)}
        if "description" in keys[name]:
            keys[name]["description"] = keys[name]["description"].split("\n\n")[0]
    return keys
