"""The spec and the training settings of each cell, loaded and checked before anything trains.

A cell's spec is its base spec with the vars and patches of its levels; its settings are the
spec's `train:`, then the study's `train:`, the quick form's and the levels' (later winning). A
spec the levels make invalid is reported at the level in the study file that caused it (the
spec's own message follows), so the study file, not the spec, is what the user is sent to fix.
Cells with the same spec share one load (`Variants` caches by the levels that change the spec).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Collector, Loc, Problem, SpecError, format_path
from ..source import Document, parse
from .document import StudyDocument
from .levels import CellPlan, LevelSpec
from .patches import LevelPatches, apply_patches

SET_BY_STUDY = {"seed": "each trial's seed comes from `seeds:`",
                "run_dir": "each trial's run directory is the study's (runs/study-NAME/trials/CELL)"}
"""Train keys a study file cannot set, and why."""


@dataclass
class Variant:
    """One spec a study trains: a base spec with some levels' vars and patches."""

    spec_label: str
    spec: Any
    """The loaded compiler.Spec."""
    analysis: Any
    """compiler.analyze(spec)."""
    patched: bool
    """Whether patches changed the spec's text (its run directory then keeps the patched text)."""


class Variants:
    """Loads each cell's spec and settings once, reporting problems into one `Collector`."""

    def __init__(self, study: StudyDocument, doc: Document, spec_paths: dict[str, Path], quick: bool, out: Collector):
        self.study, self.doc, self.spec_paths, self.quick, self.out = study, doc, spec_paths, quick, out
        self._bases: dict[str, Any] = {}
        self._variants: dict[tuple, Variant | None] = {}
        self._settings: dict[tuple, dict[str, Any] | None] = {}

    def base(self, label: str) -> Any:
        """The base spec as written (None when it does not load: its own problems are reported)."""
        if label not in self._bases:
            from ..spec import load

            try:
                self._bases[label] = load(self.spec_paths[label])
            except SpecError as exc:
                self.out.problems.extend(exc.errors)
                self._bases[label] = None
        return self._bases[label]

    def variant(self, cell: CellPlan) -> Variant | None:
        changing = tuple(lv for lv in cell.levels if lv.vars or lv.patches)
        key = (cell.spec_label, tuple((lv.factor, lv.label) for lv in changing))
        if key not in self._variants:
            self._variants[key] = self._load(cell.spec_label, list(changing))
        return self._variants[key]

    def _load(self, label: str, levels: list[LevelSpec]) -> Variant | None:
        from .. import analyze
        from ..spec import load

        base = self.base(label)
        if base is None:
            return None
        values: dict[str, Any] = {}
        unknown = False
        for level in levels:
            for name, value in level.vars.items():
                if name not in base.vars:
                    known = ", ".join(base.vars) or "none"
                    self.out.error(self._loc(level.path, "vars", name),
                                   f"factor {level.factor!r}, level {level.label!r}: spec {label!r} has no var "
                                   f"{name!r} (its vars: {known})", "")
                    unknown = True
                values[name] = value
        if unknown:
            return None
        patching = [lv for lv in levels if lv.patches]
        path = self.spec_paths[label]
        try:
            if patching:
                from ..spec.document import resolve_extends

                written = resolve_extends(parse(path))
                patched = apply_patches(written.data, [LevelPatches(lv.factor, lv.label, lv.patches, lv.path + ("patch",))
                                                       for lv in patching], label)
                for problem in patched.problems:
                    self.out.error(self.doc.loc(problem.path), problem.message, format_path(problem.path))
                if patched.problems:
                    return None
                names = ", ".join(f"{lv.factor}={lv.label}" for lv in patching)
                text = patched.text(f"{path.name} patched by the study's levels {names}")
                spec = load(text, vars=values or None, file=str(path))
            else:
                spec = load(path, vars=values or None)
            analysis = analyze(spec)
        except SpecError as exc:
            self._blame(exc, label, path, patching or levels)
            return None
        return Variant(spec_label=label, spec=spec, analysis=analysis, patched=bool(patching))

    def _blame(self, exc: SpecError, label: str, path: Path, levels: list[LevelSpec]) -> None:
        """Report a spec's problems at the level that made the spec invalid."""
        if not levels:
            self.out.problems.extend(exc.errors)
            return
        level = levels[-1]
        names = ", ".join(f"{lv.factor} = {lv.label}" for lv in levels)
        for problem in exc.errors:
            where = f"{problem.path}: " if problem.path else ""
            message = (f"factor {level.factor!r}, level {level.label!r}: spec {label!r} ({path}) is invalid with "
                       f"{names}: {where}{problem.message}")
            blamed = Problem(self.doc.loc(level.path), message, format_path(level.path), problem.severity)
            if blamed not in self.out.problems:
                self.out.problems.append(blamed)

    def settings(self, cell: CellPlan, variant: Variant) -> dict[str, Any] | None:
        """The training settings the study gives this cell (checked with the spec's own)."""
        training = tuple((lv.factor, lv.label) for lv in cell.levels if lv.train)
        key = (cell.spec_label, id(variant), training)
        if key not in self._settings:
            self._settings[key] = self._check_settings(variant, [lv for lv in cell.levels if lv.train])
        return self._settings[key]

    def _check_settings(self, variant: Variant, levels: list[LevelSpec]) -> dict[str, Any] | None:
        from ..train.config import Source, resolve_config, spec_source

        sources = [Source(self.study.train, "file", self.doc, ("train",))]
        if self.quick:
            sources.append(Source(self.study.quick.train, "file", self.doc, ("quick", "train")))
        sources += [Source(lv.train, "file", self.doc, lv.train_path) for lv in levels]
        failed = False
        for source in sources:
            for key in source.values:
                if key in SET_BY_STUDY:
                    loc, _ = source.loc((key,), at_key=True)
                    self.out.error(loc, f"a study cannot set train key {key!r}: {SET_BY_STUDY[key]}", "")
                    failed = True
        if failed:
            return None
        every = [spec_source(variant.spec), *sources]
        try:
            cfg = resolve_config(every)
            _check_batch_fits(cfg, every)
        except SpecError as exc:
            for problem in exc.errors:
                if problem not in self.out.problems:
                    self.out.problems.append(problem)
            return None
        merged: dict[str, Any] = {}
        for source in sources:
            for key, value in source.values.items():
                if key == "dataset_options" and isinstance(value, dict) and isinstance(merged.get(key), dict):
                    value = {**merged[key], **value}
                merged[key] = value
        return merged

    def _loc(self, path: tuple, *rest: str) -> Loc:
        full = path + rest
        return self.doc.key_loc(full) if full in self.doc.key_marks else self.doc.loc(path)


def _check_batch_fits(cfg: Any, sources: list[Any]) -> None:
    """A batch larger than the training set is refused when the run starts; a study says so at
    `check`, at the setting the study file gave (`train_size` when the batch is the spec's)."""
    from ..train.config import config_problem

    if cfg.train_size is None or cfg.batch_size <= cfg.train_size:
        return
    study_sources = [s for s in sources if s.kind == "file"]
    key = "batch_size" if any("batch_size" in s.values for s in study_sources) else "train_size"
    raise config_problem(sources, key, f"batch_size {cfg.batch_size} is larger than the training set "
                                       f"(train_size {cfg.train_size})")
