"""One trial: a cell of a study trained in its own run directory, probed, made into a record.

The run directory is the cell's (runs/study-NAME/trials/CELL), not the trial's: a trial run
again after its worker was killed resumes from the checkpoint the killed one left, and one that
already finished is not trained twice (the runner looks for its record first). A run that
diverges is a `failed` record (the study goes on); a stop request leaves the checkpoint and
raises `TrainingInterrupted` so the trial is handed out again next time.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import SpecError
from .loader import Cell, Study
from .probing import ProbeRecorder
from .records import TrialRecord

CELL_FILE = "cell.fingerprint"
"""In a trial's run directory: the fingerprint of the cell it trains (a checkpoint of another
version of the cell is not resumed)."""
LOWER_IS_BETTER = ("loss", "error")
"""Metric name endings whose smaller values are better."""


def trial_dir(study: Study, cell: Cell) -> Path:
    return study.out_dir / "trials" / re.sub(r"[^A-Za-z0-9_.,=+-]", "_", cell.key)


def lower_is_better(metric: str) -> bool:
    return metric.endswith(LOWER_IS_BETTER)


def trial_value(history: list[dict[str, Any]], metric: str, use: str) -> float | None:
    """The trial's number: its best epoch's `metric` (highest, or lowest for a loss) or its last."""
    rows = [row for row in history if row.get(metric) is not None]
    if not rows:
        return None
    if use == "final":
        return float(rows[-1][metric])
    pick = min if lower_is_better(metric) else max
    return float(pick(row[metric] for row in rows))


def run_trial(study: Study, cell: Cell, trial_number: int, *, quiet: bool = False,
              should_stop: Callable[[], bool] | None = None,
              on_progress: Callable[[dict[str, Any]], None] | None = None) -> TrialRecord:
    """Train and probe one cell (resuming its run directory if it holds a checkpoint)."""
    from ..train import TrainError, TrainingDiverged, train
    from ..train.checkpoint import STATE_FILE

    run_dir = trial_dir(study, cell)
    stamp = run_dir / CELL_FILE
    same = stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == cell.fingerprint
    resume = run_dir if same and (run_dir / STATE_FILE).is_file() else None
    if resume is None and run_dir.exists():
        shutil.rmtree(run_dir)  # killed before its first checkpoint, or an older version of the cell
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(cell.fingerprint + "\n", encoding="utf-8")
    recorder = ProbeRecorder(probes=[(p.label, p.probe) for p in cell.probes], spec=cell.spec,
                             analysis=cell.variant.analysis, seed=cell.seed, run_dir=run_dir)

    total = {"steps": 0}

    def on_start(info: dict[str, Any]) -> None:
        total["steps"] = int(info["epochs"]) * int(info["steps"])
        recorder.on_start(info)

    def on_step(info: dict[str, Any]) -> None:
        recorder.on_step(info)
        if on_progress is not None:
            on_progress({"cell": cell.key, "total": total["steps"], "epoch": info["epoch"],
                         "global_step": info["global_step"], "loss": info["loss"]})

    record = TrialRecord(study=study.name, trial=trial_number, key=cell.key, levels=dict(cell.levels),
                         seed=cell.seed, state="complete", params=cell.variant.analysis.params,
                         macs=cell.variant.analysis.macs, run_dir=str(run_dir), fingerprint=cell.fingerprint)
    start = time.perf_counter()
    settings = {**cell.train, "seed": cell.seed, "run_dir": str(run_dir)}
    try:
        if resume is not None:
            result = train(resume=resume, quiet=quiet, on_start=on_start, on_step=on_step,
                           should_stop=should_stop)
        else:
            result = train(cell.spec, settings, quiet=quiet, on_start=on_start, on_step=on_step,
                           should_stop=should_stop)
    except TrainingDiverged as exc:
        record.probes = recorder.finish(None)  # the probes at init and at the steps before it diverged
        return _ended(record, "failed", str(exc), run_dir, study, start)
    except (SpecError, TrainError) as exc:
        return _ended(record, "refused" if isinstance(exc, SpecError) else "failed", str(exc), run_dir, study, start)
    record.history = list(result.history)
    record.metric = _metric(study, record.history)
    record.value = trial_value(record.history, record.metric, study.document.objective.use)
    last_step = int(record.history[-1].get("step", 0)) if record.history else 0
    record.probes = recorder.finish(last_step)
    record.seconds = time.perf_counter() - start
    return record


def _metric(study: Study, history: list[dict[str, Any]]) -> str:
    from ..train.outcomes import measure_of

    metric = study.document.objective.metric
    return measure_of(history) if metric == "auto" else metric


def _ended(record: TrialRecord, state: str, error: str, run_dir: Path, study: Study, start: float) -> TrialRecord:
    record.state = state
    record.error = error
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        record.history = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    record.metric = _metric(study, record.history)
    record.seconds = time.perf_counter() - start
    return record
