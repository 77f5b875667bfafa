"""`run_study`: one worker in this process, or N worker processes on this machine, with progress.

`--workers N` forks N workers of this process (T = cores // N torch threads each) on the
study's storage and shows their progress (each writes a small progress file) as one bar per
worker and a bar for the study. Forked from the loaded process, so that no worker imports torch
or loads the study again (seconds each, a large share of a small trial). Processes, not threads:
two trainings side by side on one core each win over one training on two cores what threads
cannot split — Python's work between the ops, drawing the dataset, plots, checkpoints
(benchmarks/study_workers.py measures it). The workers are stopped with this
process: on Ctrl-C they get SIGTERM (their trials hand their cells back) and on Linux the kernel
sends them SIGTERM if this process dies.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .loader import Study
from .records import TrialRecord
from .runner import Worker, finished_keys, grid_done, open_storage, open_study, study_records, trial_budget

POLL_SECONDS = 0.5
PROGRESS_EVERY = 0.3
"""Seconds between a worker's progress-file writes."""


def run_study(study: Study, *, workers: int = 1, storage: str | None = None, quiet: bool = True,
              progress: bool = False, on_trial: Callable[[TrialRecord], None] | None = None,
              should_stop: Callable[[], bool] | None = None, threads: int | None = None,
              on_progress: Callable[[dict[str, Any]], None] | None = None) -> list[TrialRecord]:
    """Run the study's trials not done yet (blocking) and return the records of its cells.

    `storage`: an Optuna storage URL (default: the SQLite file in the study's directory). With
    `workers` > 1 the trials run in that many processes (`study.path` must be a file).
    `on_progress(info)`: after every training step of a one-worker run (`cell`, `total` steps,
    `epoch`, `global_step`, `loss`), for a caller's own progress (the designer's Sweep tab)."""
    url = storage or study.default_storage
    if workers > 1:
        run_processes(study, workers=workers, storage=url, threads=threads, progress=progress)
    else:
        bars = ProgressBars(study, workers=1, shown=progress)
        try:
            def finished(record: TrialRecord) -> None:
                bars.trial_done()
                if on_trial is not None:
                    on_trial(record)

            def stepped(info: dict[str, Any]) -> None:
                bars.update(0, info)
                if on_progress is not None:
                    on_progress(info)

            Worker(study, url, quiet=quiet, should_stop=should_stop, on_trial=finished, on_progress=stepped).run()
        finally:
            bars.close()
    return study_records(study)


def run_processes(study: Study, *, workers: int, storage: str, threads: int | None, progress: bool) -> None:
    """Fork `workers` worker processes of this one and show their progress until they end.

    Forked, not started afresh: this process has already imported torch and blockgraph, loaded
    and checked the study and imported what a first training step imports (`preload`), about
    4 s that each fresh `blockgraph study run` would pay again before its first step."""
    if threading.active_count() > 1:
        raise RuntimeError("--workers N forks this process, which must have one thread (run it from the command line)")
    ready = open_storage(storage)  # a storage that cannot be opened is said even when all is done
    if grid_done(study):
        return
    open_study(study, ready)  # create the tables and the study once, before the workers race
    ready.engine.dispose()  # no database connection crosses the fork: each worker opens its own
    del ready
    preload()
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    folder = study.out_dir / "workers"
    folder.mkdir(parents=True, exist_ok=True)
    fork = multiprocessing.get_context("fork")
    procs = [fork.Process(target=_worker_process, name=f"worker {i}",
                          args=(study, storage, threads, folder / f"{i}.json", folder / f"{i}.log"))
             for i in range(workers)]
    for proc in procs:
        proc.start()
    bars = ProgressBars(study, workers=workers, shown=progress)
    try:
        while any(p.is_alive() for p in procs):
            for i in range(workers):
                bars.update(i, _read_progress(folder / f"{i}.json"))
            bars.count(len(finished_keys(study)))
            multiprocessing.connection.wait([p.sentinel for p in procs if p.is_alive()], timeout=POLL_SECONDS)
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: its trial stops at the next step and hands its cell back
        for proc in procs:
            proc.join()
        raise
    finally:
        bars.close()
    failed = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        tails = [f"worker {i} exited with {code}:\n{_tail(folder / f'{i}.log')}" for i, code in failed]
        raise RuntimeError("\n".join(tails))


PRELOADED = ("torch._dynamo", "compiler.train", "compiler.train.loop", "compiler.fx", "compiler.data.shapes",
             "safetensors.torch")
"""What a first training step imports (the first optimizer imports torch._dynamo, about 1.4 s)."""


def preload() -> None:
    """Import what every worker's first trial would import, once, before the workers fork."""
    for name in PRELOADED:
        importlib.import_module(name)


def _worker_process(study: Study, storage: str, threads: int, progress_file: Path, log_file: Path) -> None:
    """A forked worker: its output to its log, `threads` torch threads, trials until none is left."""
    import torch

    from ..train import TrainingInterrupted

    os.setpgid(0, 0)  # out of the terminal's group: Ctrl-C reaches it once, as the parent's SIGTERM
    _stop_with_parent()
    log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    try:
        Worker(study, storage, on_progress=ProgressWriter(progress_file)).run()
    except TrainingInterrupted:
        sys.exit(130)


def _stop_with_parent() -> None:
    """In a worker: ask Linux to send it SIGTERM when the parent dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _read_progress(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ProgressWriter:
    """A worker process's progress, written to its file for the parent's bars (throttled)."""

    def __init__(self, path: Path):
        self.path, self.last = path, 0.0

    def __call__(self, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY and info.get("global_step") != info.get("total"):
            return
        self.last = now
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info), encoding="utf-8")
        tmp.replace(self.path)


class ProgressBars:
    """tqdm bars on standard error: the study's trials, and each worker's current trial."""

    def __init__(self, study: Study, *, workers: int, shown: bool):
        from tqdm.auto import tqdm

        self.shown = shown and sys.stderr.isatty()
        done = len(finished_keys(study))
        self.study_bar = tqdm(total=trial_budget(study), initial=min(done, trial_budget(study)), desc=study.name,
                              unit="trial", position=0, disable=not self.shown, file=sys.stderr, dynamic_ncols=True)
        self.trial_bars = [tqdm(total=1, desc=f"worker {i}", unit="step", position=i + 1, leave=False,
                                disable=not self.shown, file=sys.stderr, dynamic_ncols=True) for i in range(workers)]

    def update(self, worker: int, info: dict[str, Any] | None) -> None:
        if not self.shown or not info:
            return
        bar = self.trial_bars[worker]
        bar.set_description(info.get("cell", ""), refresh=False)
        bar.total = max(int(info.get("total") or 1), 1)
        bar.n = int(info.get("global_step") or 0)
        bar.set_postfix(loss=f"{info.get('loss', 0.0):.3f}", refresh=False)
        bar.refresh()

    def trial_done(self) -> None:
        self.study_bar.update(1)

    def count(self, done: int) -> None:
        if done != self.study_bar.n:
            self.study_bar.n = min(done, self.study_bar.total)
            self.study_bar.refresh()

    def close(self) -> None:
        for bar in self.trial_bars:
            bar.close()
        self.study_bar.close()
