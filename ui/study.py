"""The designer's Study tab without Streamlit: open a study file, list its cells with their
states, run it in the background and make its report.

A study runs in a `TrainJob` (ui/designer/jobs.py) like the Train and Sweep tabs' runs:
`run_in_job` is the job's target, a daemon thread that calls `compiler.study.run_study` with
the job's `should_stop` (Stop, or a closed browser tab) and never calls st.*. The page never
keeps its own copy of the results: every rerun reads the study's `results.jsonl` (the records
`run_study` appends the moment a trial ends), so the table is the same whether the trials ran
here, on the command line or in an earlier session, and a stopped study shows what it kept.
When the run ends the worker writes the report (`study_report`) into the study's
`out_dir/report`, whose PNGs the tab shows.

Paths typed into the tab are read relative to the repository, like the designer's other files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ui.designer.files import ROOT

GALLERY = ROOT / "studies"
"""The repository's study files (the gallery the tab offers first)."""
RUNS = "runs"
"""Where studies write by default (as `blockgraph study run` does, but under the repository)."""
REPORT = "report"
"""The folder of a study's out_dir the tab writes the report into."""
PENDING = "pending"


def gallery(folder: Path = GALLERY) -> list[str]:
    """The study files of `folder` (`studies/*.yaml`), as paths relative to the repository."""
    if not folder.is_dir():
        return []
    return sorted(shown_path(p) for p in folder.glob("*.yaml"))


def shown_path(path: Path) -> str:
    """A path as the tab shows it: relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def resolve(path: str) -> Path:
    """A path typed into the tab: absolute, or relative to the repository."""
    typed = Path(os.path.expanduser(path.strip()))
    return typed if typed.is_absolute() else ROOT / typed


# -- opening a study ----------------------------------------------------------------------------------


@dataclass
class Located:
    """A problem of a study file as the tab lists it, like the editor's problems."""

    title: str
    """`line 4, col 7: factors.depth: ...` (with the file's name when it is not the study file)."""
    quote: str = ""
    """The offending line with its neighbours and a caret under the column ('' when unknown)."""


@dataclass
class Opened:
    """What opening a study file gave: the study, or the problems that kept it from loading."""

    path: Path
    study: Any | None = None
    """A compiler.study study (name, text, factors, cells, out_dir, results_path...)."""
    problems: list[Located] | None = None


def locate(problem, study_path: Path) -> Located:
    """A compiler Problem as a `Located`: quoted from the file it points into (the study file or
    one of its specs) when that file can be read."""
    from ui.problems import problem_title, quote_lines

    loc = problem.loc
    target = Path(loc.file)
    same = _same_file(target, study_path)
    title = problem_title(problem, loc.file if same else str(study_path))
    quote = ""
    if target.is_file():
        try:
            quote = quote_lines(target.read_text(encoding="utf-8"), loc.line, loc.col)
        except (OSError, UnicodeDecodeError):
            quote = ""
    return Located(title=title, quote=quote)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def open_study(path: str, *, quick: bool, runs: str) -> Opened:
    """Load the study file at `path` (relative to the repository) with compiler.study.load_study;
    its located problems instead when it does not load."""
    from compiler import SpecError
    from compiler.study import load_study
    from ui.problems import in_page_words

    file = resolve(path)
    if not file.is_file():
        return Opened(path=file, problems=[Located(f"{shown_path(file)}: no such file")])
    try:
        study = load_study(file, quick=quick, runs=resolve(runs))
    except SpecError as exc:
        return Opened(path=file, problems=[locate(p, file) for p in exc.errors])
    except Exception as exc:  # noqa: BLE001 - shown in the tab, never a traceback
        return Opened(path=file, problems=[Located(f"{type(exc).__name__}: {in_page_words(str(exc))}")])
    return Opened(path=file, study=study)


@dataclass
class StudySlot:
    """The opened study of one browser session, loaded again only when the file, the quick
    switch or the runs folder change (loading checks every cell's spec: too slow for a rerun a
    second while trials run)."""

    stamp: tuple | None = None
    opened: Opened | None = None

    def open(self, path: str, *, quick: bool, runs: str) -> Opened:
        file = resolve(path)
        try:
            mtime = file.stat().st_mtime_ns
        except OSError:
            mtime = None
        stamp = (str(file), mtime, quick, str(resolve(runs)))
        if self.opened is None or stamp != self.stamp:
            self.opened, self.stamp = open_study(path, quick=quick, runs=runs), stamp
        return self.opened

    def forget(self) -> None:
        """Load the file again at the next `open` (its specs may have changed)."""
        self.stamp = None


# -- the cells and their records ----------------------------------------------------------------------


def records_of(study) -> list:
    """The study's trial records so far (its results.jsonl, the last line of each cell winning)."""
    from compiler.study.records import read_records

    return read_records(study.results_path)


def cell_rows(study, records: list) -> list[dict[str, Any]]:
    """One row per cell of the study, in the study's order: a column per factor (its level's
    label), seed, state (pending, complete, failed, refused), value, params, time and error."""
    from compiler.study.report import level_columns

    columns = level_columns(list(study.factors))
    by_key = {r.key: r for r in records}
    rows = []
    for cell in study.cells:
        record = by_key.get(cell.key)
        row: dict[str, Any] = {columns[f]: cell.levels.get(f) for f in study.factors}
        row["seed"] = cell.seed
        row["state"] = record.state if record else PENDING
        row["value"] = record.value if record else None
        row["params"] = record.params if record else None
        row["time (s)"] = round(record.seconds, 2) if record and record.seconds else None
        row["error"] = (record.error or "") if record else ""
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Progress:
    """How far a study is: its cells with a record (any state) out of all its cells."""

    finished: int
    total: int
    failed: int
    """Of the finished: failed or refused."""

    @property
    def fraction(self) -> float:
        return self.finished / self.total if self.total else 1.0

    @property
    def text(self) -> str:
        bad = f" ({self.failed} failed or refused)" if self.failed else ""
        return f"{self.finished} of {self.total} trials finished{bad}"


def progress(study, records: list) -> Progress:
    """The study's records among its cells, out of the trials it runs (every cell of a grid, the
    `trials:` of a sampled search: compiler.study.runner.trial_budget)."""
    from compiler.study.runner import trial_budget

    keys = {cell.key for cell in study.cells}
    mine = [r for r in records if r.key in keys]
    return Progress(finished=len(mine), total=trial_budget(study), failed=sum(r.state != "complete" for r in mine))


def metric_of(records: list) -> str:
    """The metric the value column holds (the records' own: one per study)."""
    from compiler.study.report import study_metric

    return study_metric(records)


# -- running and reporting ----------------------------------------------------------------------------


def run_in_job(study, *, job) -> list:
    """The job's target: every trial not done yet, one at a time, then the report (also when
    the run was stopped: the report of what was kept). Each finished trial is reported as a job
    event (the page reads the records themselves from the file); a report that could not be
    made is a `report` event with its error, the page's warning."""
    from compiler.study import run_study

    def on_trial(record) -> None:
        job.report(kind="trial", key=record.key, state=record.state)

    def on_progress(info: dict) -> None:
        job.report(kind="step", key=info.get("cell"), step=info.get("global_step"), steps=info.get("total"))

    try:
        return run_study(study, workers=1, on_trial=on_trial, on_progress=on_progress, should_stop=job.should_stop)
    finally:  # Stop interrupts the trial in progress (TrainingInterrupted): report the rest
        if records_of(study):
            try:
                make_report(study)
            except Exception as exc:  # noqa: BLE001 - the run's own outcome stays the job's
                job.report(kind="report", error=f"{type(exc).__name__}: {exc}")


def training_now(events: list[dict]) -> str | None:
    """The trial in training and how far it is ("width=8,seed=0: step 12 of 40"), from the job's
    events: its last step, unless a trial ended after it."""
    last = next((e for e in reversed(events) if e.get("kind") in ("step", "trial")), None)
    if last is None or last["kind"] != "step" or not last.get("key"):
        return None
    return f"{last['key']}: step {last.get('step') or 0} of {last.get('steps') or '?'}"


def report_error(events: list[dict]) -> str | None:
    """Why the worker's report failed, when it did (the last `report` event of the run)."""
    return next((e["error"] for e in reversed(events) if e.get("kind") == "report"), None)


def start(job, study) -> None:
    """Run `study` in `job` (a TrainJob)."""
    job.start(run_in_job, study, label=f"study {study.name}")
    job.run_dir = Path(study.out_dir)


def report_dir(study) -> Path:
    return Path(study.out_dir) / REPORT


def make_report(study):
    """Write the study's report into out_dir/report (compiler.study.study_report)."""
    from compiler.study import study_report

    return study_report(study, report_dir(study))


@dataclass(frozen=True)
class ShownPlot:
    title: str
    png: Path


def report_plots(study, records: list) -> list[ShownPlot]:
    """The report's plots on disk, in the study file's order, titled as the report titles them
    (the names compiler.study.plots.plot_names gives the files)."""
    from compiler.study.plots import Plot, plot_names

    plots = [p if isinstance(p, Plot) else Plot.model_validate(p) for p in study.document.plots]
    metric = metric_of(records)
    folder = report_dir(study) / "plots"
    shown = []
    for plot, name in zip(plots, plot_names(plots, metric)):
        png = folder / f"{name}.png"
        if png.is_file():
            shown.append(ShownPlot(title=plot.title or plot.default_title(metric), png=png))
    return shown


def report_page(study) -> Path | None:
    """The report's HTML page, when one was written."""
    page = report_dir(study) / "report.html"
    return page if page.is_file() else None
