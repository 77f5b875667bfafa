"""The study file: its pydantic model (`StudyDocument`) and the shapes of its parts.

A study file names base specs, *factors* (each a list of levels: var values, patches of the
spec in the spec language, training settings), seeds, a training budget, probes and plots, and
how trials are chosen (every cell of the grid, or a sampler and a trial count). It is read like
a spec: safe YAML into a located tree, then validated here, every problem located at its
`FILE:LINE:COL` (compiler/study/loader.py reads it, compiler/study/patches.py applies the
patches).

    blockgraph_study: 1
    name: depth
    specs: {plain: plain_cifar.yaml, residual: resnet_cifar.yaml}
    factors:
      depth: {var: n, levels: [3, 9]}            # scalar levels set one var ...
      norm:                                       # ... or one train key (train: batch_size)
        - {label: batch}
        - {label: none, patch: [{nodes: {has: norm}, set: {norm: null}}]}
    seeds: [0, 1]
    train: {dataset: shapes, epochs: 3, train_size: 2000, val_size: 500}
    probes: [{probe: signal_std}]
    plots: [{kind: curve, y: train_loss, by: [spec, depth]}]
    quick: {seeds: [0], train: {epochs: 1, train_size: 500}}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..spec.document import ID_PATTERN
from .plots import Labels, Plot, labels_as_text

FORMAT_VERSION = 1
NAME_PATTERN = ID_PATTERN.pattern


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)


class NodeSelector(_Strict):
    """Which nodes a patch changes: every node (at any depth: top-level nodes, composite bodies,
    user blocks) that matches all the keys given."""

    op: str | list[str] | None = None
    """The node's op, or one of several."""
    id: str | None = None
    """A glob over the node's id as written (`layer*`, `stage?`)."""
    has: str | None = None
    """An argument the node has with a value other than null, as written, from the spec's
    `defaults:` or the block's own default (`has: norm` selects every conv and residual that
    normalises, whether it says so itself or not)."""


class Patch(_Strict):
    """One change of a spec, in the spec language: to its nodes (`nodes:` selects them, then one
    of `set`, `unset`, `replace`, `remove`) or to its top level (`spec:` sets keys)."""

    nodes: NodeSelector | None = None
    """The nodes this patch changes."""
    set: dict[str, Any] | None = None
    """Arguments given to each selected node (they win over the node's own and its defaults)."""
    unset: list[str] | None = None
    """Arguments taken off each selected node (the spec's defaults or the block's then apply)."""
    replace: dict[str, Any] | None = None
    """A new op and its arguments for each selected node (`{op: avgpool, k: 2}`); the node keeps
    its id, inputs, repeat and init."""
    remove: bool = False
    """Turn each selected node into an identity (its input passes through; the wiring stays)."""
    spec: dict[str, Any] | None = None
    """Top-level keys of the spec set to these values (`{init: {conv: zeros}}`); a dotted key
    sets one key inside (`init.conv: zeros`, `vars.width: 16`)."""


class Level(_Strict):
    """One level of a factor: what a trial at this level changes in its base spec and run."""

    label: str | None = None
    """The level's name in tables and plots (default: its value, or 1, 2, ...)."""
    vars: dict[str, Any] = {}
    """Values of the spec's vars."""
    patch: list[Patch] = []
    """Changes of the spec, applied in order."""
    train: dict[str, Any] = {}
    """Training settings of trials at this level (they win over the study's `train:`)."""
    specs: list[str] | None = None
    """Base specs (labels of `specs:`) this level applies to; in a cell with another spec the
    level is skipped (a `depth` factor that only the residual nets have)."""


class Factor(_Strict):
    """A factor: a list of levels. Scalar levels set one var (`var:`) or one train key (`train:`)."""

    var: str | None = None
    """The var that scalar levels set."""
    train: str | None = None
    """The train key that scalar levels set (batch_size, lr, ...)."""
    levels: list[Level | str | int | float | bool | None] = Field(min_length=1)
    """The levels, in the order tables and plots show them."""
    about: str = ""


class Search(_Strict):
    """How trials are chosen: every cell of the grid (factors' levels x seeds), or `trials`
    cells chosen by an Optuna sampler from the factors' levels (one seed)."""

    kind: Literal["grid", "sample"] = "grid"
    sampler: Literal["tpe", "random"] = "tpe"
    """sample: Optuna's TPESampler or RandomSampler (seeded from the study's first seed)."""
    trials: int | None = Field(None, gt=0, le=100_000)
    """sample: how many trials in all (over every worker)."""


class Objective(_Strict):
    """The number a trial reports to Optuna (and the report's value column)."""

    metric: str = "auto"
    """A key of the metrics rows (val_top1, val_loss, train_loss...); auto: the task's measure
    (val top-1 for classification, val loss for regression: compiler.train.outcomes.measure_of)."""
    use: Literal["best", "final"] = "best"
    """The best epoch's value or the last epoch's."""


class ProbeEntry(BaseModel):
    """One entry of `probes:`: `probe:` names it, its options follow (checked by the probe)."""

    model_config = ConfigDict(extra="allow")

    probe: str
    """The probe's name (signal_std, filter_similarity, landscape, lesion, dense_weights,
    se_excitations, class_maps)."""
    label: str | None = None
    """The name its results go under (default: the probe's name; give one to record a probe twice)."""
    where: dict[str, Labels] = Field(default_factory=dict)
    """Only in the cells whose levels are these: factor (or `seed`) -> a label or a list of labels
    (a probe of SE excitations where a level adds the SE blocks: `where: {se: on}`)."""

    @field_validator("where", mode="before")
    @classmethod
    def _labels_as_text(cls, value: Any) -> Any:
        return labels_as_text(value)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Quick(_Strict):
    """What `--quick` changes: a smaller budget for a first look (or CI) at the same study."""

    seeds: list[int] | None = None
    train: dict[str, Any] = {}
    levels: dict[str, list[str]] = {}
    """factor -> the labels of the levels a quick run keeps (default: all)."""
    trials: int | None = Field(None, gt=0)
    """sample: the trial count of a quick run."""


class StudyDocument(_Strict):
    """The top level of a study file."""

    blockgraph_study: Literal[1]
    """The study format version (1)."""
    name: str = Field(pattern=f"^{NAME_PATTERN}$")
    """The study's name: its Optuna study and its output directory are named after it."""
    about: str = ""
    """What the study shows (the report's first paragraph)."""
    specs: dict[str, str] | str
    """The base specs: a path (relative to the study file) or a map label -> path; with several,
    `spec` is a factor of its own whose levels are the labels."""
    factors: dict[str, Factor | list[Level | str | int | float | bool | None]] = {}
    """factor name -> its levels (a list), or a map with `levels:` and `var:` / `train:`."""
    seeds: list[int] | int = [0]
    """The seeds every cell is trained with (a number n: seeds 0 .. n-1)."""
    train: dict[str, Any] = {}
    """The training budget of every trial: the keys of a spec's `train:` section (dataset,
    epochs, batch_size, train_size, val_size, optimizer, lr...)."""
    objective: Objective = Objective()
    probes: list[ProbeEntry] = []
    """What to measure besides the metrics (see compiler.study.probes)."""
    plots: list[Plot] = []
    """What the report draws (see docs/studies.md, "Reports and plots")."""
    search: Search = Search()
    quick: Quick = Quick()

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int] | int) -> list[int]:
        seeds = list(range(value)) if isinstance(value, int) else list(value)
        if not seeds:
            raise ValueError("give at least one seed")
        if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError("seeds are distinct numbers >= 0")
        return seeds
