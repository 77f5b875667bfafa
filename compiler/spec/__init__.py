"""The spec loader: YAML text (or a located `Document`) to a validated, expanded `Spec`.

The document's top level is a pydantic model (`SpecDocument`); each node is validated by the
class its `op` names (a discriminated union over the block registry). Before validation,
expressions (`$width * 2`) are evaluated, the spec's `defaults:` for the op are merged under
the node's own arguments, and `repeat:` is unrolled. Every problem becomes a located
`Problem`: a pydantic error's `loc` is a path under the node, and the located tree knows the
line and column of every path.

One module per job (see docs/architecture.md): `messages` (the message catalogue and its
suggestions), `document` (the top-level models and `extends:`), `node_keys` (the keys every
node may carry), `values` (vars and expression values), `checking` (located errors and model
validation), `heads` (one node's keys and arguments), `subgraphs` (composites and user blocks
behind one interface), `inputs` (one entry of `inputs:`, its shape and dtype), `expand`
(node expansion), `results` (`Spec`, `Node`, `Group`) and `loader` (`load` and its kin). This package re-exports the public names.
"""

from __future__ import annotations

from ..errors import SpecError
from .document import (DATASET_FACTS, DTYPES, FORMAT_VERSION, ID_PATTERN, MAX_EXTENDS, MERGED_KEYS, BlockDef,
                       DatasetVar, Scaling, SpecDocument, TypedInput, resolve_extends)
from .expand import MAX_NODES
from .heads import WRITTEN_AT
from .inputs import read_input
from .loader import load, load_document, with_vars
from .messages import (SYNONYMS, describe, did_you_mean, pydantic_message, suggestion, union_collapsed,
                       unknown_key)
from .node_keys import MAX_REPEAT, NODE_KEYS, NodeKeys
from .results import Group, Node, Spec
from .subgraphs import MAX_BLOCK_DEPTH
from .values import whole_var

__all__ = ["FORMAT_VERSION", "Node", "Spec", "SpecDocument", "SpecError", "load", "did_you_mean",
           "with_vars", "load_document", "DatasetVar", "DATASET_FACTS", "Group", "BlockDef", "Scaling",
           "NodeKeys", "NODE_KEYS", "ID_PATTERN", "SYNONYMS", "pydantic_message", "suggestion", "describe",
           "unknown_key", "whole_var", "DTYPES", "TypedInput", "read_input"]
