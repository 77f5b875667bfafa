"""Study file -> `Study`: the file read like a spec (safe YAML, located tree, pydantic model),
its base specs found next to it, its factors made into cells, and every cell's spec, settings,
probes and plots checked before any trial trains.

`load_study` raises `SpecError` with every located problem (`FILE:LINE:COL: message`): an
unknown factor or level in `quick:` or a plot, a var the spec does not have, a patch that selects
nothing or makes a spec invalid (named with the level that caused it), a train key the trainer
does not know, an unknown probe or one that does not apply to a cell's spec.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Collector, SpecError
from ..source import Document, parse
from ..spec.checking import Checker
from ..spec.messages import did_you_mean
from .document import StudyDocument
from .levels import CellPlan, grid_cells, keep_quick_levels, read_factors, spec_labels_of
from .plots import duplicate_names
from .probes import PROBES, Probe, probe_class
from .variants import Variant, Variants

CELL_KEYS = ("spec", "seed")
"""What a plot's `by:`/`x:`/`where:` may name besides the factors."""


@dataclass
class ProbeSetup:
    """One entry of `probes:`: the label its results go under and the probe with its options."""

    label: str
    probe: Probe
    where: dict[str, list[str]] = field(default_factory=dict)
    """Only the cells with these levels record it (factor -> labels)."""


@dataclass
class Cell:
    """One trial of the study: a base spec, a level of each factor, a seed; loaded and checked."""

    key: str
    """"depth=20,norm=batch,seed=0": the cell's levels and seed, the name of its run directory."""
    levels: dict[str, str]
    seed: int
    spec_label: str
    variant: Variant
    train: dict[str, Any]
    """The settings the study gives this cell (the spec's own `train:` applies under them)."""
    probes: list[ProbeSetup] = field(default_factory=list)
    fingerprint: str = ""
    """A digest of what the trial trains and measures (the spec's text and vars, the settings, the
    probes, the objective): a record or run directory with another one is from an older version
    of the study file, and the cell is trained again."""

    @property
    def spec(self) -> Any:
        return self.variant.spec


@dataclass
class Study:
    """A loaded, checked study file."""

    name: str
    path: Path | None
    text: str
    document: StudyDocument
    quick: bool
    factors: dict[str, list[str]]
    """factor -> its level labels in file order (`spec` first when there are several specs)."""
    cells: list[Cell]
    out_dir: Path
    """runs/study-NAME (quick: runs/study-NAME-quick): the storage, records, trials and report."""

    @property
    def results_path(self) -> Path:
        return self.out_dir / "results.jsonl"

    @property
    def default_storage(self) -> str:
        return f"sqlite:///{(self.out_dir / 'study.db').as_posix()}"

    @property
    def optuna_name(self) -> str:
        """The Optuna study's name: the study's, and a digest of its cells, so a changed study file
        is a new Optuna study (its unchanged cells' records are still used, not trained again)."""
        digest = hashlib.sha256(json.dumps([[c.key, c.fingerprint] for c in self.cells]).encode()).hexdigest()[:10]
        search = self.document.search
        kind = "grid" if search.kind == "grid" else f"{search.sampler}"
        return f"{self.name}{'-quick' if self.quick else ''}-{kind}-{digest}"

    def cell(self, key: str) -> Cell:
        return next(c for c in self.cells if c.key == key)


def load_study(source: str | os.PathLike, *, quick: bool = False, runs: str | os.PathLike = "runs") -> Study:
    """Read and check a study file (a path, or YAML text whose spec paths resolve from the working
    directory); raise SpecError with every located problem."""
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))):
        path = Path(source)
        doc = parse(path)
    else:
        path, doc = None, parse(str(source))
    checker = Checker(doc)
    out = checker.out
    if not isinstance(doc.data, dict):
        out.error(doc.loc(()), "a study file is a map with blockgraph_study, name, specs and factors")
        out.raise_if_errors()
    study = checker.validate(StudyDocument, doc.data, (), "a study")
    out.raise_if_errors()
    assert isinstance(study, StudyDocument)
    spec_paths = _spec_paths(study, doc, path, out)
    all_factors = read_factors(study, doc, out)
    factors = keep_quick_levels(all_factors, study, doc, out) if quick else all_factors
    seeds = study.quick.seeds if quick and study.quick.seeds else study.seeds
    out.raise_if_errors()
    labels = spec_labels_of(study)
    plans = grid_cells(labels, factors, seeds)
    probes = _probes(study, doc, checker)
    _check_search(study, doc, out)
    _check_plots(study, doc, out, [*(["spec"] if len(labels) > 1 else []), *factors], probes)
    _check_probe_where(probes, {**_levels_shown(labels, all_factors), "seed": [str(s) for s in study.seeds]},
                       doc, out)
    out.raise_if_errors()
    variants = Variants(study, doc, spec_paths, quick, out)
    cells = [cell for plan in plans if (cell := _cell(plan, variants, probes, doc, out, study.objective)) is not None]
    out.raise_if_errors()
    shown = _levels_shown(labels, factors)
    out_dir = Path(runs) / (f"study-{study.name}-quick" if quick else f"study-{study.name}")
    return Study(name=study.name, path=path, text=doc.text, document=study, quick=quick, factors=shown,
                 cells=cells, out_dir=out_dir)


def _cell(plan: CellPlan, variants: Variants, probes: list[tuple[int, ProbeSetup]], doc: Document,
          out: Collector, objective: Any) -> Cell | None:
    variant = variants.variant(plan)
    if variant is None:
        return None
    settings = variants.settings(plan, variant)
    if settings is None:
        return None
    here = [(index, setup) for index, setup in probes if _probed_in(setup, plan)]
    for index, setup in here:
        reason = setup.probe.applies_to(variant.spec, variant.analysis)
        if reason:
            out.error(doc.loc(("probes", index)), f"probe {setup.label!r} does not apply to cell {plan.key}: {reason}"
                      f"{'' if setup.where else ' (`where:` limits a probe to some levels)'}", f"probes[{index}]")
    setups = [setup for _, setup in here]
    return Cell(key=plan.key, levels=plan.labels, seed=plan.seed, spec_label=plan.spec_label, variant=variant,
                train=settings, probes=setups, fingerprint=_fingerprint(variant, settings, setups, objective))


def _levels_shown(spec_labels: list[str], factors: dict[str, Any]) -> dict[str, list[str]]:
    """factor -> its level labels, `spec` first when the study has several specs."""
    return {**({"spec": spec_labels} if len(spec_labels) > 1 else {}),
            **{factor: [level.label for level in levels] for factor, levels in factors.items()}}


def _probed_in(setup: ProbeSetup, plan: CellPlan) -> bool:
    """Whether the cell has the probe's `where:` levels (`seed`, never a factor, is the seed's text)."""
    labels = {**plan.labels, "seed": str(plan.seed)}
    return all(labels.get(factor) in wanted for factor, wanted in setup.where.items())


def _fingerprint(variant: Variant, settings: dict[str, Any], probes: list[ProbeSetup], objective: Any) -> str:
    what = {"spec": variant.spec.text, "vars": variant.spec.overrides, "train": settings,
            "probes": [[p.label, p.probe.name, p.probe.model_dump(mode="json")] for p in probes],
            "objective": objective.model_dump(mode="json")}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _spec_paths(study: StudyDocument, doc: Document, path: Path | None, out: Collector) -> dict[str, Path]:
    base = path.parent if path is not None else Path.cwd()
    written = study.specs if isinstance(study.specs, dict) else {spec_labels_of(study)[0]: study.specs}
    found = {}
    for label, relative in written.items():
        where = ("specs", label) if isinstance(study.specs, dict) else ("specs",)
        candidate = base / relative
        if not candidate.is_file():
            out.error(doc.loc(where), f"no such spec file {relative!r} (looked in {base})", "specs")
        found[label] = candidate
    return found


def _probes(study: StudyDocument, doc: Document, checker: Checker) -> list[tuple[int, ProbeSetup]]:
    setups: list[tuple[int, ProbeSetup]] = []
    seen: set[str] = set()
    for index, entry in enumerate(study.probes):
        path = ("probes", index)
        if entry.probe not in PROBES:
            checker.error(path + ("probe",), f"unknown probe {entry.probe!r}{did_you_mean(entry.probe, list(PROBES))} "
                          f"(the probes: {', '.join(PROBES)})")
            continue
        try:
            cls = probe_class(entry.probe)
        except ImportError:
            checker.error(path + ("probe",), f"probe {entry.probe!r} is not available in this version")
            continue
        probe = checker.validate(cls, entry.options, path, f"probe {entry.probe!r}")
        if probe is None:
            continue
        label = entry.label or entry.probe
        if label in seen:
            checker.error(path, f"two probes record under {label!r}: give one a `label:`")
        seen.add(label)
        setups.append((index, ProbeSetup(label=label, probe=probe, where=entry.where)))
    return setups


def _check_probe_where(probes: list[tuple[int, ProbeSetup]], shown: dict[str, list[str]], doc: Document,
                       out: Collector) -> None:
    """A probe's `where:` names factors (or `seed`) and labels the study has (else it would quietly
    never run)."""
    for index, setup in probes:
        for factor, labels in setup.where.items():
            loc = doc.key_loc(("probes", index, "where", factor))
            if factor not in shown:
                out.error(loc, f"no factor is named {factor!r}{did_you_mean(factor, list(shown))} "
                          f"(the factors: {', '.join(shown) or 'none'})", "")
                continue
            for label in labels:
                if label in shown[factor]:
                    continue
                if factor == "seed":
                    out.error(loc, f"the study has no seed {label} (its seeds: {', '.join(shown[factor])})", "")
                else:
                    out.error(loc, f"factor {factor!r} has no level {label!r} (its levels: {', '.join(shown[factor])})", "")


def _check_search(study: StudyDocument, doc: Document, out: Collector) -> None:
    if study.search.kind == "sample" and study.search.trials is None:
        out.error(doc.loc(("search",)), "a sampled search needs `trials:` (how many trials in all)", "search")


def _check_plots(study: StudyDocument, doc: Document, out: Collector, factors: list[str],
                 probes: list[tuple[int, ProbeSetup]]) -> None:
    for name in duplicate_names(study.plots):
        out.error(doc.loc(("plots",)), f"two plots are named {name!r}: each plot's `name:` is its file name", "plots")
    named = [*factors, *CELL_KEYS]
    labels = [setup.label for _, setup in probes]
    for i, plot in enumerate(study.plots):
        path = ("plots", i)
        for j, factor in enumerate(plot.by or []):
            if factor not in named:
                out.error(doc.loc(path + ("by", j)), f"no factor is named {factor!r}{did_you_mean(factor, named)} "
                          f"(the factors: {', '.join(factors) or 'none'})", "")
        if plot.kind == "bar" and plot.x is not None and plot.x not in named:
            out.error(doc.loc(path + ("x",)), f"no factor is named {plot.x!r}{did_you_mean(plot.x, named)} "
                      f"(the factors: {', '.join(factors) or 'none'})", "")
        for factor in plot.where:
            if factor not in named:
                out.error(doc.key_loc(path + ("where", factor)), f"no factor is named {factor!r} (the factors: "
                          f"{', '.join(factors) or 'none'})", "")
        if plot.kind == "probe" and plot.probe not in labels:
            out.error(doc.loc(path + ("probe",)), f"no probe is recorded as {plot.probe!r} "
                      f"(the study's probes: {', '.join(labels) or 'none'})", "")


__all__ = ["Cell", "ProbeSetup", "Study", "SpecError", "load_study"]
