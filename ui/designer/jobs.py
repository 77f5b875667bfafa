"""The slot where a background trainer plugs in: one `TrainJob` per browser session for the
Train tab, one for the Sweep tab and one for the Study tab (DesignerSession.train / .sweep /
.study).

The page script never waits on training: the worker is a daemon thread that only reports
events into a queue and polls `should_stop()`; the Train tab's fragment drains the events once
a second and beats the heartbeat, so a closed browser tab stops its run.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable


class TrainJob:
    """The slot for a background training run of one browser session.

    A trainer (ui/train_panel.py, ui/sweep.py, ui/study.py) plugs in through `start(target, ...)`: `target` runs
    in a daemon thread as ``target(*args, job=self, **kwargs)`` and may call
    `job.report(**event)` (progress: epoch, step, loss, metrics...), check
    `job.stop_requested` to stop early, and set `job.weights_path` (a safetensors file) and
    `job.run_dir` when it has written them; its return value lands in `job.result`, an
    exception in `job.error`. The Train tab reads `events()`; the Export tab offers
    `weights_path` for download. No Streamlit call may happen in the thread.
    """

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._events: "queue.SimpleQueue[dict]" = queue.SimpleQueue()
        self._log: list[dict] = []
        self._stop = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.weights_path: Path | None = None
        self.run_dir: Path | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.label: str = ""
        self.last_seen: float = time.time()
        self.heartbeat_timeout: float = 30.0
        """Seconds without a beat() (the Train tab's fragment) after which should_stop() is true:
        a closed browser tab stops its run instead of leaving a thread training forever."""

    def beat(self) -> None:
        self.last_seen = time.time()

    def should_stop(self) -> bool:
        """Polled by the trainer every step: Stop pressed, or the page stopped beating."""
        return self._stop.is_set() or time.time() - self.last_seen > self.heartbeat_timeout

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def state(self) -> str:
        if self._thread is None:
            return "idle"
        if self.running:
            return "stopping" if self.stop_requested else "running"
        if self.error is not None:
            from compiler.train import TrainingInterrupted

            return "stopped" if isinstance(self.error, TrainingInterrupted) else "failed"
        return "stopped" if self.stop_requested else "done"

    def start(self, target: Callable[..., Any], *args, label: str = "", **kwargs) -> None:
        if self.running:
            raise RuntimeError("a run is already in progress in this session")
        self._stop.clear()
        self._log.clear()
        self.result = self.error = None
        self.weights_path = self.run_dir = None
        self.label = label
        self.started_at, self.finished_at = time.time(), None
        self.last_seen = time.time()

        def run():
            try:
                self.result = target(*args, job=self, **kwargs)
            except BaseException as exc:  # reported in the Train tab
                self.error = exc
            finally:
                self.finished_at = time.time()

        self._thread = threading.Thread(target=run, name=f"blockgraph-train-{label or 'run'}", daemon=True)
        self._thread.start()

    def report(self, **event: Any) -> None:
        """Called by the worker thread: one progress event (thread-safe)."""
        self._events.put({"time": time.time(), **event})

    def events(self) -> list[dict]:
        """Every event reported so far (called from the page script)."""
        while True:
            try:
                self._log.append(self._events.get_nowait())
            except queue.Empty:
                return self._log

    def cancel(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


def plain_info(info: dict[str, Any]) -> dict[str, Any]:
    """A trainer hook's info as an event: paths as text, only plain values kept (the hooks also
    hand over the model and the step's batch, which an event queue must not hold on to)."""
    plain = (str, int, float, bool, type(None))
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in info.items()
            if k != "history" and (isinstance(v, (Path, *plain)) or (isinstance(v, list) and all(isinstance(x, plain) for x in v)))}
