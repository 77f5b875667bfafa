"""A study file's factors as plain levels, and the grid of cells they make.

A factor's levels are written several ways (a scalar for the factor's `var:` or `train:` key,
or a map with vars, patches and train settings); here each becomes one `LevelSpec` with its
label and the YAML path it came from, so every later problem can be located at the level that
caused it. `grid_cells` is the product of the levels per base spec (a level that names other
specs is left out of that spec's cells) times the seeds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ..errors import Collector
from ..source import Document
from .document import Factor, Level, Patch, StudyDocument

RESERVED_FACTORS = ("seed", "spec")
"""Names a factor cannot have: `seed` is every cell's own, `spec` is the factor of base specs."""
FORBIDDEN_IN_LABELS = ",="


@dataclass
class LevelSpec:
    """One level of one factor, with what it changes and where it is written."""

    factor: str
    label: str
    path: tuple
    """YAML path of the level in the study file."""
    vars: dict[str, Any] = field(default_factory=dict)
    patches: list[Patch] = field(default_factory=list)
    train: dict[str, Any] = field(default_factory=dict)
    train_path: tuple = ()
    """YAML path of the level's train settings (the level itself for a scalar `train:` level)."""
    specs: list[str] | None = None


@dataclass
class CellPlan:
    """One cell of the grid: a base spec, one level of each factor it has, and a seed."""

    spec_label: str
    levels: list[LevelSpec]
    seed: int

    @property
    def labels(self) -> dict[str, str]:
        """factor -> label, the `spec` factor first when the study has several specs."""
        return {level.factor: level.label for level in self.levels}

    @property
    def key(self) -> str:
        return ",".join([*(f"{f}={label}" for f, label in self.labels.items()), f"seed={self.seed}"])


def read_factors(study: StudyDocument, doc: Document, out: Collector) -> dict[str, list[LevelSpec]]:
    """factor -> its levels in file order; problems (reserved names, duplicate or unusable
    labels, scalar levels without `var:`/`train:`, unknown specs) go to `out`."""
    factors: dict[str, list[LevelSpec]] = {}
    spec_labels = spec_labels_of(study)
    for name, written in study.factors.items():
        path = ("factors", name)
        if name in RESERVED_FACTORS:
            out.error(doc.key_loc(path), f"a factor cannot be named {name!r} (seeds are `seeds:`, base specs "
                      "`specs:`)", "factors")
            continue
        factor = written if isinstance(written, Factor) else Factor(levels=written)
        levels_path = path + ("levels",) if isinstance(written, Factor) else path
        levels: list[LevelSpec] = []
        for i, level in enumerate(factor.levels):
            spec = _level(name, factor, level, i, levels_path + (i,), doc, out)
            if spec is None:
                continue
            if any(other.label == spec.label for other in levels):
                out.error(doc.loc(spec.path), f"factor {name!r} has two levels labelled {spec.label!r}: "
                          "give each a distinct `label:`", "")
            if any(c in spec.label for c in FORBIDDEN_IN_LABELS):
                out.error(doc.loc(spec.path), f"a level label cannot hold ',' or '=', got {spec.label!r}", "")
            for j, label in enumerate(spec.specs or []):
                if label not in spec_labels:
                    out.error(doc.loc(spec.path + ("specs", j)), f"no base spec is labelled {label!r} "
                              f"(the study's specs: {', '.join(spec_labels)})", "")
            levels.append(spec)
        factors[name] = levels
    return factors


def _level(name: str, factor: Factor, level: Level | Any, index: int, path: tuple, doc: Document,
           out: Collector) -> LevelSpec | None:
    if isinstance(level, Level):
        label = level.label
        if label is None:
            only = list(level.vars.values())
            label = _scalar_label(only[0]) if len(only) == 1 and not level.patch and not level.train else str(index + 1)
        return LevelSpec(factor=name, label=label, path=path, vars=dict(level.vars), patches=list(level.patch),
                         train=dict(level.train), train_path=path + ("train",), specs=level.specs)
    if factor.var is not None:
        return LevelSpec(factor=name, label=_scalar_label(level), path=path, vars={factor.var: level})
    if factor.train is not None:
        return LevelSpec(factor=name, label=_scalar_label(level), path=path, train={factor.train: level},
                         train_path=path)
    out.error(doc.loc(path), f"factor {name!r}: a plain value as a level needs `var:` or `train:` on the factor "
              f"(write `{name}: {{var: NAME, levels: [...]}}`) or a map with `vars:`, `patch:` or `train:`", "")
    return None


def _scalar_label(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def spec_labels_of(study: StudyDocument) -> list[str]:
    """The labels of the base specs: the map's keys, or the one path's file stem."""
    if isinstance(study.specs, dict):
        return list(study.specs)
    stem = study.specs.rsplit("/", 1)[-1]
    return [stem.rsplit(".", 1)[0] if "." in stem else stem]


def keep_quick_levels(factors: dict[str, list[LevelSpec]], study: StudyDocument, doc: Document,
                      out: Collector) -> dict[str, list[LevelSpec]]:
    """The levels a `--quick` run keeps (`quick: levels:`), the others unchanged."""
    kept = dict(factors)
    for name, labels in study.quick.levels.items():
        path = ("quick", "levels", name)
        if name not in factors:
            out.error(doc.key_loc(path), f"no factor is named {name!r} (the factors: {', '.join(factors) or 'none'})", "")
            continue
        known = [level.label for level in factors[name]]
        for i, label in enumerate(labels):
            if label not in known:
                out.error(doc.loc(path + (i,)), f"factor {name!r} has no level {label!r} (its levels: "
                          f"{', '.join(known)})", "")
        kept[name] = [level for level in factors[name] if level.label in labels]
    return kept


def grid_cells(spec_labels: list[str], factors: dict[str, list[LevelSpec]], seeds: list[int]) -> list[CellPlan]:
    """Every cell: per base spec, the product of the levels that apply to it, times the seeds."""
    cells = []
    several = len(spec_labels) > 1
    for spec_label in spec_labels:
        axes = []
        for levels in factors.values():
            applying = [lv for lv in levels if lv.specs is None or spec_label in lv.specs]
            if applying:
                axes.append(applying)
        spec_level = [LevelSpec(factor="spec", label=spec_label, path=("specs", spec_label))] if several else []
        for combo in itertools.product(*axes):
            for seed in seeds:
                cells.append(CellPlan(spec_label=spec_label, levels=[*spec_level, *combo], seed=seed))
    return cells
