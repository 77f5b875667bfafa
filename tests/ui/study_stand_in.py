"""A stand-in for compiler.study's `load_study`, `run_study` and `study_report` while they are
not on main yet (tests only: the Study tab's tests install it when compiler.study lacks them).

It follows the API the runner is written to: one base spec, factors of scalar `var:` levels, a
grid of levels x seeds, every trial trained with compiler.train and appended to results.jsonl
as a TrialRecord the moment it ends, `should_stop` checked between trials, cells already in the
records skipped (a stopped study continues), the report written by `write_report`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import compiler
from compiler import SpecError
from compiler.errors import Loc, Problem
from compiler.study.document import Factor, StudyDocument
from compiler.study.plots import Plot
from compiler.study.records import TrialRecord, append_record, read_records
from compiler.study.report import write_report


@dataclass
class Cell:
    key: str
    levels: dict[str, str]
    seed: int
    vars: dict[str, Any]


@dataclass
class Study:
    name: str
    path: Path
    text: str
    document: StudyDocument
    factors: dict[str, list[str]]
    cells: list[Cell]
    out_dir: Path
    results_path: Path


def _line_of(text: str, key: str) -> int:
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return n
    return 1


def load_study(path, quick: bool = False, runs="runs") -> Study:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        document = StudyDocument.model_validate(yaml.safe_load(text))
    except ValidationError as exc:
        raise SpecError([Problem(Loc(str(path), _line_of(text, str(e["loc"][0])), 1), e["msg"],
                                 ".".join(map(str, e["loc"]))) for e in exc.errors()]) from None
    factors, var_of = {}, {}
    for name, factor in document.factors.items():
        assert isinstance(factor, Factor) and factor.var, "the stand-in knows `var:` factors only"
        factors[name] = [str(level) for level in factor.levels]
        var_of[name] = (factor.var, factor.levels)
    seeds = document.quick.seeds if quick and document.quick.seeds else document.seeds
    cells = []
    for combo in itertools.product(*(range(len(v)) for v in factors.values())):
        levels = {name: factors[name][i] for name, i in zip(factors, combo)}
        vars = {var_of[name][0]: var_of[name][1][i] for name, i in zip(factors, combo)}
        for seed in seeds:
            key = ",".join([*(f"{k}={v}" for k, v in levels.items()), f"seed={seed}"])
            cells.append(Cell(key=key, levels=levels, seed=seed, vars=vars))
    out_dir = Path(runs) / (f"study-{document.name}" + ("-quick" if quick else ""))
    return Study(name=document.name, path=path, text=text, document=document, factors=factors, cells=cells,
                 out_dir=out_dir, results_path=out_dir / "results.jsonl")


def run_study(study: Study, workers: int = 1, storage=None, on_trial=None, should_stop=None) -> list[TrialRecord]:
    done = {r.key for r in read_records(study.results_path)}
    spec_text = (study.path.parent / study.document.specs).read_text(encoding="utf-8")
    train = dict(study.document.train)
    for number, cell in enumerate(study.cells):
        if cell.key in done:
            continue
        if should_stop is not None and should_stop():
            break
        start = time.perf_counter()
        base = dict(study=study.name, trial=number, key=cell.key, levels=cell.levels, seed=cell.seed)
        try:
            spec = compiler.load(spec_text, vars=cell.vars)
            params = compiler.analyze(spec).params
            result = compiler.train(spec, quiet=True, run_dir=str(study.out_dir / "trials" / str(number)),
                                    seed=cell.seed, **train)
            record = TrialRecord(**base, state="complete", metric=result.metric,
                                 value=result.best[result.metric], history=result.history, params=params,
                                 seconds=time.perf_counter() - start)
        except SpecError as exc:
            record = TrialRecord(**base, state="refused", error=str(exc))
        append_record(study.results_path, record)
        if on_trial is not None:
            on_trial(record)
    return read_records(study.results_path)


def study_report(study: Study, out_dir):
    return write_report(study_name=study.name, study_text=study.text, records=read_records(study.results_path),
                        plots=[Plot.model_validate(p) for p in study.document.plots], out_dir=out_dir,
                        order=study.factors)
