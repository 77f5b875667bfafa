"""What loading gives: a `Spec` of expanded `Node`s, and the `Group`s that stand for several
nodes (repeats, composites, user blocks). Plain dataclasses, read by every later stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..blocks import Block
from ..blocks.base import Shape
from ..errors import Loc, Problem
from ..init import InitPolicy, NodeInit
from ..source import Document
from .document import BlockDef

@dataclass
class Node:
    """One node of the expanded graph."""

    id: str
    block: Block
    inputs: list[str]
    """References as written (node ids, repeat group ids or input names)."""
    loc: Loc
    """Where the node starts in the YAML text."""
    path: str
    """Its YAML path, e.g. nodes[3]."""
    input_locs: list[Loc]
    init: NodeInit | None = None
    group: tuple[str, ...] = ()
    """Enclosing repeat groups / composite blocks, outermost first (for summaries and renders)."""
    owner: str = ""
    """For a node a composite made itself (`stage1.0.res_in`), the user's node it belongs to
    (`stage1.0`), so errors speak of what the user wrote; '' for the user's own nodes."""
    implicit_input: bool = False
    """It reads the node before it by default (it has no `in:`), which a cycle message names."""

    @property
    def op(self) -> str:
        return self.block.op


@dataclass
class Group:
    """A node that stands for several: a repeat, a composite block or a user block."""

    id: str
    op: str
    kind: Literal["repeat", "composite", "user"]
    loc: Loc
    block: Any = None
    """The validated composite (kind composite) or the bound parameters (kind user)."""


@dataclass
class Spec:
    """A validated, expanded spec: ready for the graph check (`compiler.analyze`)."""

    name: str
    inputs: dict[str, Shape]
    nodes: list[Node]
    outputs: list[str]
    output_locs: list[Loc]
    aliases: dict[str, str]
    """Group ids to the node that gives their output (a repeated node's last copy)."""
    vars: dict[str, Any]
    init: InitPolicy
    reference: str | None = None
    description: str | None = None
    file: str = "<string>"
    text: str = ""
    input_locs: dict[str, Loc] = field(default_factory=dict)
    input_dtypes: dict[str, str] = field(default_factory=dict)
    """Input name -> its dtype (`float32`, or `int64` for token ids); an input not named here
    is float32 (a Spec made by hand). `inputs` stays a map of shapes for every stage that only
    needs those."""
    warnings: list[Problem] = field(default_factory=list)
    document: Document | None = None
    blocks: dict[str, BlockDef] = field(default_factory=dict)
    """The spec's user-defined blocks."""
    groups: dict[str, Group] = field(default_factory=dict)
    """Ids that stand for several nodes (repeats, composite and user blocks), outermost first."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """The vars given to `load` (they replace the text's values)."""
    dataset_vars: dict[str, str] = field(default_factory=dict)
    """Vars bound to the training dataset, name -> fact (`classes`): not overridden, so
    `vars` holds their defaults until `with_vars` sets them from a dataset."""

    def dtype(self, input_name: str) -> str:
        """The dtype of one input (float32 unless declared otherwise)."""
        return self.input_dtypes.get(input_name, "float32")

    def node(self, node_id: str) -> Node:
        return self._by_id[node_id]

    @property
    def _by_id(self) -> dict[str, Node]:
        cached = self.__dict__.get("_by_id_cache")
        if cached is None or len(cached) != len(self.nodes):
            cached = self.__dict__["_by_id_cache"] = {n.id: n for n in self.nodes}
        return cached

