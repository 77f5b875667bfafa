"""The designer's Sweep tab without Streamlit: train a spec briefly at a few values of one var
and compare accuracy with parameters and MACs.

A sweep runs in a `TrainJob` (ui/designer/jobs.py) like the Train tab's runs: `run_sweep` is the
job's target, a daemon thread that never calls st.*. It fills the `Sweep` object the page
keeps in session state: one `Point` per value, in order. Every value is first measured with
`compiler.analyze` (parameters, MACs); a value whose spec does not load or analyse (say
`width: 0`) ends "failed" with its located problems. The others are trained as a one-factor
study (ui/sweep_study.py writes its file: a level per value, one seed, the sweep's settings)
by `compiler.study.run_study`, each trial in its own run directory, in the order Optuna's grid
hands them out. Stop (the job's event) and the page's heartbeat are polled through
`job.should_stop` by the trainer every step and between trials: the value in progress ends
"stopped", the ones not trained yet "skipped".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_VALUES = 12
SETTINGS = ("epochs", "train_size", "val_size", "batch_size")
"""The settings the tab asks for; the others come from the spec's `train:` section."""


class SweepError(ValueError):
    """Values typed for a sweep that cannot be used (shown as a message)."""


@dataclass
class Point:
    """One value of the swept var."""

    value: Any
    state: str = "pending"
    """pending, running, done, failed (the spec or the training failed), stopped, skipped."""
    params: int | None = None
    macs: int | None = None
    best: float | None = None
    """The best validation measure over the epochs, 0-1: val_top1 (classification), val_miou
    (segmentation), val_map50 / val_mask_map50 (detection), as TrainResult.metric picks it."""
    best_epoch: int | None = None
    seconds: float | None = None
    """Wall time of the training (loading and analysing not included)."""
    error: str = ""
    run_dir: Path | None = None


@dataclass
class Sweep:
    """A sweep of one var over some values, with the settings each value trains with."""

    var: str
    values: list[Any]
    settings: dict[str, Any]
    text: str
    overrides: dict[str, Any] = field(default_factory=dict)
    """The sidebar's var overrides, kept for every value (the swept var's own is replaced)."""
    file: str = "untitled.yaml"
    points: list[Point] = field(default_factory=list)
    metric: str = "val_top1"
    label: str = "sweep"

    def __post_init__(self):
        if not self.points:
            self.points = [Point(v) for v in self.values]

    @property
    def finished(self) -> bool:
        return all(p.state not in ("pending", "running") for p in self.points)


# -- the values ----------------------------------------------------------------------------------------


def sweepable(vars: dict[str, Any]) -> list[str]:
    """The vars a sweep can vary: numbers (not booleans), in the spec's order."""
    return [k for k, v in vars.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]


CLASS_VARS = ("classes", "num_classes", "n_classes")


def default_var(names: list[str]) -> str:
    """The var a sweep proposes first: the first that is not a class count (the dataset fixes
    that one: `classes: 6` swept to 3 or 12 only fails to train)."""
    return next((n for n in names if n not in CLASS_VARS), names[0])


def suggest_values(value: Any) -> str:
    """Values to start from around a var's own: half, itself, double (16 -> '8, 16, 32')."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        if value <= 1:
            return ", ".join(str(v) for v in (value, value + 1, value + 2))
        return ", ".join(str(v) for v in dict.fromkeys((max(1, value // 2), value, value * 2)))
    return ", ".join(f"{v:g}" for v in (value / 2, value, value * 2))


def parse_values(text: str) -> list[Any]:
    """'8, 16 32' -> [8, 16, 32]: values separated by commas or spaces, each read as a YAML
    scalar like `--var NAME=VALUE` (so 0.5 is a float, 16 an int). SweepError when there are
    none, more than MAX_VALUES, duplicates, or something that is not a number."""
    from compiler import SpecError
    from ui.designer import read_value

    items = [t for t in re.split(r"[,\s;]+", text.strip()) if t]
    if not items:
        raise SweepError("type at least one value, e.g. 8, 16, 32")
    if len(items) > MAX_VALUES:
        raise SweepError(f"{len(items)} values: a sweep takes at most {MAX_VALUES}")
    values = []
    for item in items:
        try:
            value = read_value(item)
        except SpecError:
            value = item
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SweepError(f"{item!r} is not a number")
        values.append(value)
    seen = set()
    for item, value in zip(items, values):
        if value in seen:
            raise SweepError(f"{item} appears twice")
        seen.add(value)
    return values


# -- the worker ----------------------------------------------------------------------------------------


def measure(text: str, vars: dict[str, Any], file: str) -> tuple[int, int, Any]:
    """(parameters, MACs per sample, spec) of `text` at `vars`; raises SpecError."""
    import compiler
    from ui.designer import load_text

    spec = load_text(text, vars, file)
    analysis = compiler.analyze(spec)
    return analysis.params, analysis.macs, spec


def describe(exc: BaseException, file: str, study_file: Path | None = None) -> str:
    """A failure as the row shows it: located problems as the designer words them; a problem of
    the sweep's settings (in the command line's words, or at the `train:` key of the study file
    the sweep wrote, `study_file`) as `settings: KEY: ...`."""
    from compiler import SpecError
    from ui.problems import in_page_words, problem_title

    def settings(p) -> bool:
        if p.loc.file.startswith("<") and p.loc.file not in ("<string>", "<vars>"):
            return True
        return study_file is not None and bool(p.loc.file) and Path(p.loc.file) == Path(study_file)

    def key(p) -> str:
        path = p.path.removeprefix("train.") if p.path else ""
        return f"{path}: " if path else ""

    if isinstance(exc, SpecError):
        return "; ".join(f"settings: {key(p)}{in_page_words(p.message)}" if settings(p) else problem_title(p, file)
                         for p in exc.errors)
    return f"{type(exc).__name__}: {in_page_words(str(exc))}"


LOCATED_LINE = re.compile(r"^(?P<file><[^>]+>|.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$")
"""One problem of a SpecError's text (`FILE:LINE:COL: message`): how a trial record keeps it."""


def describe_text(error: str, spec_file: Path) -> str:
    """A trial record's error as the row shows it, worded like `describe`: a problem of the
    settings as `settings: ...`, one of the swept spec (written to `spec_file`) at its line in the
    text, anything else as it is, in the page's words."""
    from ui.problems import in_page_words

    out = []
    for line in error.splitlines() or [error]:
        match = LOCATED_LINE.match(line)
        if match is None:
            out.append(in_page_words(line))
        elif match["file"].startswith("<") and match["file"] not in ("<string>", "<vars>"):
            out.append(f"settings: {in_page_words(match['message'])}")
        elif Path(match["file"]) == Path(spec_file):
            out.append(f"line {match['line']}, col {match['col']}: {in_page_words(match['message'])}")
        else:
            out.append(in_page_words(line))
    return "; ".join(out)


def run_sweep(sweep: Sweep, root: Path, *, job) -> Sweep:
    """The job's target: measure every value, then train the good ones as a one-factor study
    (ui/sweep_study.py writes it) through compiler.study.run_study, writing into `sweep`."""
    from compiler import SpecError
    from compiler.study import load_study, run_study
    from compiler.train import TrainingInterrupted
    from ui import sweep_study as ss

    good = []
    for point in sweep.points:
        if job.should_stop():
            break
        try:
            point.params, point.macs, _ = measure(sweep.text, {**sweep.overrides, sweep.var: point.value}, sweep.file)
        except Exception as exc:  # noqa: BLE001 - SpecError and the rest: one bad value must not end the sweep
            point.state, point.error = "failed", describe(exc, sweep.file)
            continue
        good.append(point)
    if good and not job.should_stop():
        path = ss.write_study(sweep, [p.value for p in good], root)
        try:
            study = load_study(path, runs=root)
        except SpecError as exc:  # settings the trainer refuses (located in the written study file)
            for point in good:
                point.state, point.error = "failed", describe(exc, sweep.file, study_file=path)
            return sweep
        points = ss.points_by_cell(study, sweep, good)
        started: dict[int, float] = {}

        def on_progress(info: dict) -> None:
            point = points[info["cell"]]
            index = sweep.points.index(point)
            if point.state == "pending":
                point.state, started[index] = "running", time.perf_counter()
            job.report(kind="step", index=index, **ss.step_event(info, sweep.settings.get("epochs", 1)))

        def on_trial(record) -> None:
            ss.fill_point(points[record.key], record, lambda error: describe_text(error, Path(root) / ss.SPEC_FILE))
            if record.state == "complete":
                sweep.metric = record.metric

        try:
            run_study(study, on_trial=on_trial, on_progress=on_progress, should_stop=job.should_stop)
        except TrainingInterrupted:
            for index, point in enumerate(sweep.points):
                if point.state == "running":
                    point.state, point.seconds = "stopped", time.perf_counter() - started.get(index, time.perf_counter())
    for point in sweep.points:  # stopped before their turn
        if point.state in ("pending", "running"):
            point.state = "skipped"
    return sweep


METRICS = {"val_mask_map50": "mask mAP@0.5", "val_map50": "mAP@0.5", "val_miou": "mIoU", "val_top1": "acc",
           "val_loss": "loss"}
"""The names of the metrics rows' measures (compiler.train.outcomes.measure_of picks one)."""


def metric_of(history: list[dict]) -> str:
    """The key that says how good an epoch is: the trainer's rule (TrainResult.metric)."""
    from compiler.train.outcomes import measure_of

    return measure_of(history)


def _plain(info: dict) -> dict:
    from ui.designer.jobs import plain_info

    return plain_info(info)


def start(job, sweep: Sweep, root: Path) -> None:
    """Run `sweep` in `job` (a TrainJob), run directories under `root`."""
    job.start(run_sweep, sweep, Path(root), label=sweep.label)
    job.run_dir = Path(root)


def settings_for(text: str, chosen: dict[str, Any]) -> dict[str, Any]:
    """The training settings of every value: the spec's `train:` section (through the Train
    tab's form defaults: dataset, lr, optimizer, device) with the tab's `chosen` ones on top."""
    from ui import train_panel as tp

    base = tp.form_defaults(text)
    settings = {k: base[k] for k in ("dataset", "lr", "optimizer", "device", "batch_size")}
    settings.update({k: chosen[k] for k in SETTINGS if k in chosen})
    return settings


# -- what the page shows --------------------------------------------------------------------------------


def column(sweep: Sweep) -> str:
    """The table's name for the sweep's measure: 'best val acc %', 'best val mIoU %', ...,
    'best val loss' (a regression: lowest, not a percentage)."""
    return f"best val {METRICS.get(sweep.metric, sweep.metric)}" + ("" if sweep.metric == "val_loss" else " %")


def shown(sweep: Sweep, value: float | None) -> float | None:
    """A measure as the table shows it: percent for accuracies and mAPs, the loss as it is."""
    if value is None:
        return None
    return round(value, 4) if sweep.metric == "val_loss" else round(100 * value, 2)


def table_rows(sweep: Sweep) -> list[dict[str, Any]]:
    """One row per value: value, state, params, MACs, best val accuracy (%), epoch, seconds, error."""
    name = column(sweep)
    return [{sweep.var: p.value, "state": p.state, "params": p.params, "MACs": p.macs,
             name: shown(sweep, p.best), "best epoch": p.best_epoch,
             "time (s)": None if p.seconds is None else round(p.seconds, 2), "error": p.error}
            for p in sweep.points]


def plot_rows(sweep: Sweep) -> list[dict[str, Any]]:
    """Long-form rows for the trade-off chart: for every trained value, its measure (accuracy in %)
    against its parameters and against its MACs (`axis` says which)."""
    out = []
    for p in sweep.points:
        if p.best is None or p.params is None:
            continue
        for axis, cost in (("parameters", p.params), ("MACs", p.macs)):
            out.append({"value": str(p.value), "axis": axis, "cost": cost, "measure": shown(sweep, p.best)})
    return out


def progress(sweep: Sweep, events: list[dict]) -> tuple[float, str]:
    """(fraction done, text) from the job's events: values finished plus the running one's steps."""
    n = len(sweep.points)
    done = sum(p.state not in ("pending", "running") for p in sweep.points)
    last = next((e for e in reversed(events) if e.get("kind") in ("step", "start")), None)
    running = next((i for i, p in enumerate(sweep.points) if p.state == "running"), None)
    fraction, text = done / n if n else 1.0, f"{done}/{n} values"
    if running is not None and last is not None and last.get("index") == running:
        epochs, steps = last.get("epochs") or 1, last.get("steps") or 1
        inner = ((last.get("epoch", 1) - 1) * steps + last.get("step", 0)) / (epochs * steps)
        fraction += min(max(inner, 0.0), 1.0) / n
        text += (f"; {sweep.var}={sweep.points[running].value}: epoch {last.get('epoch', 0)}/{epochs}, "
                 f"step {last.get('step', 0)}/{steps}")
    return min(fraction, 1.0), text
