"""The document models: what a spec file's top level, its user blocks and its `scaling:` may
hold, and `extends:`, which merges a parent spec's keys under a child's before they are read.

These pydantic models are the one statement of the top-level keys: the loader validates with
them, compiler/schema.py turns them into the JSON Schema and docs/gen_reference.py into the
reference tables.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import Problem, SpecError
from ..init import InitPolicy
from ..source import Document, parse

FORMAT_VERSION = 1
ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A node id, an input name, a block name or a parameter name."""
MERGED_KEYS = ("vars", "blocks", "defaults")
"""Top-level keys whose entries `extends:` merges one by one (the others a child replaces)."""
MAX_EXTENDS = 8

InputShape = list[int | str]
"""One entry of `inputs:` in its short form: per-sample sizes, channels first, each a number
or a `$var`, of float32 values (compiler.spec.inputs.read_input reads it)."""
DTYPES = ("float32", "int64")
"""The dtypes an input may declare: values (float32, the default) or integer token ids (int64)."""
FLOAT32, INT64 = DTYPES


class TypedInput(BaseModel):
    """An input with its dtype: `tokens: {shape: [T], dtype: int64}` (integer token ids, which
    only an `embedding` reads); the short form, a shape list, is float32."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    shape: InputShape = Field(min_length=1)
    """Per-sample sizes, each a number or a `$var` (as in the short form)."""
    dtype: Literal["float32", "int64"] = "float32"
    """float32 (values) or int64 (integer token ids, read only by `embedding`)."""


class Scaling(BaseModel):
    """Width and depth multipliers for a whole spec (EfficientNet's compound scaling,
    Ultralytics' n/s/m/l/x scales)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    width: float = Field(1.0, gt=0, le=64)
    """Multiplies every channel count a node states (conv/residual/inception/mlpconv widths,
    growth rates); not `linear` outputs, so the number of classes stays."""
    depth: float = Field(1.0, gt=0, le=64)
    """Multiplies every `repeat` count and dense-block `layers` (rounded up)."""
    divisor: int = Field(8, gt=0)
    """Scaled channel counts are rounded to a multiple of this (never below it)."""


DATASET_FACTS = {"classes": "the number of classes the dataset gives the task (a segmentation dataset "
                              "counts its background class)"}
"""What a var may be bound to (`{dataset: FACT, default: N}`), with what each means."""


class DatasetVar(BaseModel):
    """A var whose value the dataset a run trains on gives (`classes: {dataset: classes,
    default: 10}`): the trainer sets it from the dataset, everything else (validate, summary,
    build, the designer's graph) uses `default`. An override (`--var classes=...`) fixes it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    dataset: Literal["classes"]
    """The dataset's fact the var takes when training: `classes`."""
    default: int = Field(gt=0)
    """The value when no dataset is given (validate, summary, build, export)."""


class SpecDocument(BaseModel):
    """The top level of a spec file. Node contents are validated per op (see blocks/)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    blockgraph: Literal[1]
    """Format version of the spec language (1)."""
    extends: str | None = None
    """Another spec file (relative to this one) whose keys this spec inherits: vars, blocks and
    defaults merge key by key, every other key given here replaces the parent's."""
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=100)
    """Name of the architecture; also the class name of the generated module."""
    reference: str | None = None
    """The implementation this spec reproduces, e.g. torchvision.models.vgg16."""
    description: str | None = None
    """Free text shown in summaries."""
    inputs: dict[str, InputShape | TypedInput] = Field(min_length=1)
    """Named per-sample input shapes, channels first; the batch dimension is implicit. A shape
    list holds float32 values; `{shape: [T], dtype: int64}` holds integer token ids."""
    vars: dict[str, int | float | bool | str | None | DatasetVar] = {}
    """Named values usable as $name in any argument; `load(vars=...)` overrides them. A var may
    be bound to the training dataset: `classes: {dataset: classes, default: 10}`."""
    defaults: dict[str, dict[str, Any]] = {}
    """Default arguments per op, e.g. {conv: {norm: batch, act: relu}}."""
    blocks: dict[str, Any] = {}
    """User-defined blocks: name -> {params, inputs, nodes, output}; used as `op: name`."""
    init: InitPolicy = InitPolicy()
    """Weight and bias initialisation policies per op family."""
    nodes: list[Any] = Field(min_length=1)
    """The graph, in order: each node reads the previous one unless it names `in`."""
    outputs: list[str] | str | None = None
    """Node ids returned by the module (default: the last node)."""
    scaling: dict[str, Any] = {}
    """Width and depth multipliers for the whole spec ({width, depth, divisor}, see Scaling;
    values may be $vars); nodes with `scalable: false` keep theirs."""
    plugins: list[str] = []
    """Plugin modules whose blocks this spec uses. Only checked, never imported: load them with
    `--plugin NAME`, $BLOCKGRAPH_PLUGINS or compiler.load_plugins."""
    train: dict[str, Any] = {}
    """How `blockgraph train` / compiler.train trains this spec (dataset, epochs, optimizer, lr,
    ...); checked by compiler.train.TrainConfig when training, see docs/training.md."""



class BlockDef(BaseModel):
    """A user-defined block under `blocks:`: a sub-graph with parameters, used like an op."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    params: dict[str, Any] = {}
    """Parameters: `name: int` (required, of that type: int, float, bool, str, any) or
    `name: 64` (optional, with that default)."""
    inputs: list[str] = Field(["x"], min_length=1)
    """Names the body uses for the block's inputs (default one input, `x`)."""
    nodes: list[Any] = Field(min_length=1)
    """The body: nodes as under the spec's `nodes:`; `$param` refers to a parameter."""
    output: str | None = None
    """The body node whose output is the block's output (default: the last node)."""
    description: str | None = None
    """What the block computes (shown in the designer's palette)."""



PARAM_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "any": object, "list": list}
"""The type names a user block's required parameter may give (`width: int`)."""


def is_path_like(source: Any) -> bool:
    """Whether `load` was given a file to read rather than YAML text."""
    if isinstance(source, os.PathLike):
        return True
    return isinstance(source, str) and "\n" not in source and (
        source.endswith((".yaml", ".yml")) or (len(source) < 4096 and os.path.isfile(source)))


def resolve_extends(doc: Document, chain: tuple[str, ...] = ()) -> Document:
    """Resolve `extends:`: the parent's keys under this document's (see SpecDocument.extends)."""
    data = doc.data
    if not isinstance(data, dict) or "extends" not in data:
        return doc
    target = data["extends"]
    loc = doc.loc(("extends",))
    if not isinstance(target, str) or not target.strip():
        raise SpecError(Problem(loc, "extends names a spec file, e.g. extends: resnet50.yaml", "extends"))
    base_dir = Path(doc.file).parent if doc.file != "<string>" else Path.cwd()
    path = (base_dir / target).resolve()
    if str(path) in chain or len(chain) >= MAX_EXTENDS:
        cycle = " -> ".join(Path(c).name for c in chain + (str(path),))
        raise SpecError(Problem(loc, f"specs extend each other in a loop (or more than {MAX_EXTENDS} deep): {cycle}",
                                "extends"))
    if not path.is_file():
        raise SpecError(Problem(loc, f"no such spec file {target!r} (looked in {base_dir})", "extends"))
    shown = str(Path(doc.file).parent / target) if doc.file != "<string>" else str(path)
    parent = resolve_extends(parse(path, file=os.path.normpath(shown)),
                     chain + (str(Path(doc.file).resolve()) if doc.file != "<string>" else "<string>", str(path)))
    if not isinstance(parent.data, dict):
        raise SpecError(Problem(parent.loc(()), "the extended spec is not a map of keys", ""))
    merged = {k: v for k, v in parent.data.items()}
    marks = {p: l for p, l in parent.marks.items() if p}
    key_marks = dict(parent.key_marks)

    def take(prefix: tuple) -> None:
        for table, own in ((marks, doc.marks), (key_marks, doc.key_marks)):
            for p in [p for p in table if p[: len(prefix)] == prefix]:
                del table[p]
            table.update({p: l for p, l in own.items() if p[: len(prefix)] == prefix})

    for key, value in data.items():
        if key == "extends":
            continue
        if key in MERGED_KEYS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
            for sub in value:
                take((key, sub))
        else:
            merged[key] = value
            take((key,))
    marks[()] = doc.loc(())
    return Document(merged, doc.file, doc.text, marks, key_marks)
