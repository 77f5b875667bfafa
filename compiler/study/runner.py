"""Running a study on Optuna: the storage, the sampler, and one worker's loop of trials.

Optuna is the scheduler: every worker (a process on this machine or another) opens the same
storage (an embedded SQLite file by default, any database URL for many machines) and asks it
for the next trial. A grid study uses `GridSampler` over one parameter, the cell's key; a
sampled one asks Optuna's sampler for one level of each factor. Heartbeats mark a trial whose
worker died, and `RetryHeartbeatStaleTrialCallback` hands its cell out again; the cell's run directory
still holds the dead trial's checkpoint, so the retry resumes it. A stop request (Ctrl-C,
SIGTERM, the designer's Stop) hands the interrupted cell back the same way at once.

The trial records (compiler/study/records.py) are the study's results: each is appended to the
study's results.jsonl and stored with its Optuna trial before the trial is reported finished,
and a cell that already has a complete record is never trained again.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import Loc, Problem, SpecError
from .loader import Cell, Study
from .records import TrialRecord, append_record, read_records
from .trial import lower_is_better, run_trial, trial_dir

HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 20
"""A running trial whose worker has not beaten for this long is taken as dead and retried."""
MAX_RETRIES = 5
WAIT_SECONDS = 0.2
"""How often a worker looks again at a cell another live worker is training."""
CELL_PARAM = "cell"
STORAGE_WHERE = "<command line>"


def open_storage(url: str, where: str = STORAGE_WHERE):
    """Optuna's RDB storage at `url` with heartbeats; a located error when it cannot be opened."""
    import optuna
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    try:
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # its notes are ours to word
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5 (since 2.9)
            warnings.simplefilter("ignore", ExperimentalWarning)
            return RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES))
    except Exception as exc:  # sqlalchemy's and the drivers' errors have no common base we can name
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError(Problem(Loc(where, 1, 1), f"--storage {url!r} cannot be opened: {reason}")) from None


def expected_metric(study: Study) -> str:
    """The metric the objective will be (auto: what the trainer measures for the first cell's task)."""
    metric = study.document.objective.metric
    if metric != "auto":
        return metric
    from ..train.tasks import task_class

    cell = study.cells[0]
    kind = task_class(cell.spec, cell.variant.analysis).kind
    return {"regression": "val_loss", "segmentation": "val_miou", "yolo": "val_map50"}.get(kind, "val_top1")


def open_study(study: Study, storage):
    """The Optuna study of `study` in `storage` (created on first use, shared by every worker)."""
    import optuna

    doc = study.document
    seed = study.cells[0].seed if study.cells else 0
    if doc.search.kind == "grid":
        sampler = optuna.samplers.GridSampler({CELL_PARAM: [cell.key for cell in study.cells]}, seed=seed)
    elif doc.search.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    direction = "minimize" if lower_is_better(expected_metric(study)) else "maximize"
    return optuna.create_study(study_name=study.optuna_name, storage=storage, sampler=sampler,
                               direction=direction, load_if_exists=True)


def trial_budget(study: Study) -> int:
    """How many trials the study runs: every cell, or the sampled search's count."""
    doc = study.document
    if doc.search.kind == "grid":
        return len(study.cells)
    return (doc.quick.trials if study.quick and doc.quick.trials else doc.search.trials) or len(study.cells)


def finished_keys(study: Study) -> dict[str, TrialRecord]:
    """The study's cells that have a record of their current fingerprint (complete, failed or
    refused): never trained again."""
    current = {cell.key: cell.fingerprint for cell in study.cells}
    return {r.key: r for r in read_records(study.results_path) if current.get(r.key) == r.fingerprint}


def grid_done(study: Study) -> bool:
    """Whether a grid study has a record for every cell (a sampled search never knows beforehand)."""
    if not study.cells:
        return True
    if study.document.search.kind != "grid":
        return False
    done = finished_keys(study)
    return all(cell.key in done for cell in study.cells)


class Worker:
    """One worker's loop: take trials from the shared study until none is left or stop is asked."""

    def __init__(self, study: Study, storage_url: str, *, quiet: bool = True,
                 should_stop: Callable[[], bool] | None = None,
                 on_trial: Callable[[TrialRecord], None] | None = None,
                 on_progress: Callable[[dict[str, Any]], None] | None = None):
        self.study, self.storage_url, self.quiet = study, storage_url, quiet
        self.should_stop = should_stop or (lambda: False)
        self.on_trial, self.on_progress = on_trial, on_progress
        self.current: int | None = None

    def run(self) -> None:
        import optuna

        from ..train import TrainingInterrupted

        storage = open_storage(self.storage_url)  # a storage that cannot be opened is said even when all is done
        if grid_done(self.study):
            return
        ostudy = open_study(self.study, storage)
        callbacks = [self._stop_when_asked]
        if self.study.document.search.kind == "sample":
            callbacks.append(optuna.study.MaxTrialsCallback(
                trial_budget(self.study), states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)))
        try:
            while True:
                ostudy.optimize(self._objective(ostudy), callbacks=callbacks, catch=(), gc_after_trial=False)
                if not self._retry_ready(ostudy):
                    break
        except TrainingInterrupted:
            if self.current is not None:
                hand_back(ostudy, self.current)
            raise

    def _retry_ready(self, ostudy) -> bool:
        """After Optuna's grid sampler stopped with cells left whose trials are RUNNING elsewhere
        (it counts a running cell as given out): wait until each such cell is finished by its
        worker, or found dead (no heartbeat for GRACE_SECONDS: Optuna fails it and queues a retry).
        True when a retry is queued for this worker to run."""
        from optuna.exceptions import ExperimentalWarning
        from optuna.storages import fail_stale_trials
        from optuna.trial import TrialState

        if self.study.document.search.kind != "grid":
            return False
        while not grid_done(self.study) and not self.should_stop():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                fail_stale_trials(ostudy)
            states = {t.state for t in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))}
            if TrialState.WAITING in states:
                return True
            if TrialState.RUNNING not in states:
                return False
            time.sleep(WAIT_SECONDS)
        return False

    def _stop_when_asked(self, ostudy, trial) -> None:
        if self.should_stop() or grid_done(self.study):
            ostudy.stop()

    def _objective(self, ostudy):
        import optuna

        def objective(trial) -> float:
            self.current = trial.number
            cell = self._suggest(trial)
            trial.set_user_attr(CELL_PARAM, cell.key)
            self._wait_for_others(ostudy, trial, cell.key)
            with cell_lock(self.study, cell):  # a worker of this machine that got the same cell waits here
                record = finished_keys(self.study).get(cell.key)
                if record is None:
                    record = run_trial(self.study, cell, trial.number, quiet=self.quiet,
                                       should_stop=self.should_stop, on_progress=self.on_progress)
                    append_record(self.study.results_path, record)  # before Optuna hears of it: never lost
                    if self.on_trial is not None:
                        self.on_trial(record)
            trial.set_user_attr("record", record.to_json())
            self.current = None
            if record.state != "complete" or record.value is None:
                raise optuna.TrialPruned(record.error or f"no {record.metric} was measured")
            return record.value

        return objective

    def _suggest(self, trial) -> Cell:
        if self.study.document.search.kind == "grid":
            return self.study.cell(trial.suggest_categorical(CELL_PARAM, [c.key for c in self.study.cells]))
        return suggest_cell(self.study, trial)

    def _wait_for_others(self, ostudy, trial, key: str) -> None:
        """A cell another live worker is training (Optuna hands out running cells again at the
        end of a grid) is waited for, not trained twice in one run directory."""
        from optuna.exceptions import ExperimentalWarning
        from optuna.storages import fail_stale_trials
        from optuna.trial import TrialState

        while True:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                fail_stale_trials(ostudy)
            running = ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            mine = next((t for t in running if t.number == trial.number), None)
            grid = mine.system_attrs.get("grid_id") if mine else None  # set before a trial starts: no race
            others = [t for t in running if t.number != trial.number and (t.user_attrs.get(CELL_PARAM) == key
                                                       or (grid is not None and t.system_attrs.get("grid_id") == grid))]
            if not others or self.should_stop():
                return
            time.sleep(WAIT_SECONDS)


@contextlib.contextmanager
def cell_lock(study: Study, cell: Cell) -> Iterator[None]:
    """Hold the cell's lock file (an flock: the kernel lets go of it when its holder dies), so two
    workers of one machine never train one run directory at once."""
    folder = trial_dir(study, cell)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def suggest_cell(study: Study, trial) -> Cell:
    """A sampled search's cell: one level of each factor the chosen spec has (first seed)."""
    seed = study.cells[0].seed
    options = [c for c in study.cells if c.seed == seed]
    chosen: dict[str, str] = {}
    for factor in study.factors:
        labels = list(dict.fromkeys(c.levels[factor] for c in options if factor in c.levels))
        if not labels:
            continue
        every = study.factors[factor]
        name = factor if labels == every else f"{factor}@{','.join(labels)}"
        chosen[factor] = trial.suggest_categorical(name, labels)
        options = [c for c in options if c.levels.get(factor) == chosen[factor]]
    return options[0]


def hand_back(ostudy, number: int) -> None:
    """Queue the interrupted trial's cell again (as Optuna's retry of a dead trial does)."""
    import optuna
    from optuna.trial import TrialState

    frozen = next(t for t in ostudy.get_trials(deepcopy=False) if t.number == number)
    ostudy.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params=frozen.params,
                                               distributions=frozen.distributions,
                                               user_attrs={k: v for k, v in frozen.user_attrs.items() if k != "record"},
                                               system_attrs=frozen.system_attrs))


def storage_records(study: Study, storage_url: str) -> list[TrialRecord]:
    """The records kept with the study's Optuna trials (every worker's, on every machine)."""
    import optuna

    storage = open_storage(storage_url)
    try:
        ostudy = optuna.load_study(study_name=study.optuna_name, storage=storage)
    except KeyError:
        return []
    latest: dict[str, TrialRecord] = {}
    for trial in sorted(ostudy.get_trials(deepcopy=False), key=lambda t: t.number):
        if "record" in trial.user_attrs:
            record = TrialRecord.from_json(trial.user_attrs["record"])
            latest[record.key] = record
    return list(latest.values())


def study_records(study: Study, storage_url: str | None = None) -> list[TrialRecord]:
    """Every finished trial's record: the storage's (if given) and this machine's results.jsonl."""
    current = {cell.key: cell.fingerprint for cell in study.cells}
    order = {key: i for i, key in enumerate(current)}
    kept = [r for r in _every_record(study, storage_url) if current.get(r.key) == r.fingerprint]  # this file's cells only
    return sorted(kept, key=lambda r: (order[r.key], r.trial))


def outdated_records(study: Study, storage_url: str | None = None) -> int:
    """How many cells have a record only from an older version of the study file (other settings):
    the report leaves them out until the study runs again."""
    current = {cell.key: cell.fingerprint for cell in study.cells}
    records = _every_record(study, storage_url)
    fresh = {r.key for r in records if current.get(r.key) == r.fingerprint}
    return len({r.key for r in records if r.key in current and r.key not in fresh})


def _every_record(study: Study, storage_url: str | None) -> list[TrialRecord]:
    merged = {r.key: r for r in (storage_records(study, storage_url) if storage_url else [])}
    merged.update({r.key: r for r in read_records(study.results_path)})
    return list(merged.values())
