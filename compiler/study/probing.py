"""Running a trial's probes at the points they ask for, through the trainer's hooks.

`init` probes run when the trainer starts a new run (its model still holds the initial
weights), `steps` probes after each global step they name (on that step's own batch), `end`
probes on the trained model. The batch of `init` and `end` probes is the start of the validation
set (PROBE_SAMPLES samples, the same for every trial of a study). Results are kept in the run
directory (probes.json) as they come, so a trial resumed after a kill keeps its `init` and
earlier `steps` results; the record gets each probe's result under its label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .probes import ProbeContext
from .probes.base import Probe

PROBE_SAMPLES = 256
"""Samples of the validation set `init` and `end` probes measure on."""
RESULTS_FILE = "probes.json"


def probe_when(probe: Probe) -> str:
    """A probe's `when` (a ClassVar, or a property of the instance that follows its options)."""
    return str(probe.when)


@dataclass
class ProbeRecorder:
    """The probes of one trial and what they measured so far (loaded from the run directory)."""

    probes: list[tuple[str, Probe]]
    """(label, probe) in the study file's order."""
    spec: Any
    analysis: Any
    seed: int
    run_dir: Path
    results: dict[str, Any] = field(default_factory=dict)
    """label -> result (init and end probes) or list of per-step results (steps probes)."""
    _model: torch.nn.Module | None = None
    _loss: Callable | None = None
    _batch: tuple | None = None
    _classes: int | None = None
    _steps: dict[str, set[int]] = field(default_factory=dict)
    _lr: float = 0.0

    def __post_init__(self) -> None:
        path = self.run_dir / RESULTS_FILE
        if path.is_file():
            self.results = json.loads(path.read_text(encoding="utf-8"))

    def on_start(self, info: dict[str, Any]) -> None:
        self._model, self._loss, self._classes = info["model"], info["loss"], info.get("classes")
        with torch.random.fork_rng(devices=[]):  # probing must not change the run's own draws
            self._batch = _first_samples(info["val_loader"], PROBE_SAMPLES)
            self._measure_init(info)

    def _measure_init(self, info: dict[str, Any]) -> None:
        total = info["epochs"] * info["steps"]
        self._steps = {label: set(p.steps(total)) for label, p in self.probes if probe_when(p) == "steps"}
        if info["epoch"] == 0 and info.get("history") == []:
            for label, probe in self.probes:
                if probe_when(probe) == "init" and label not in self.results:
                    self.results[label] = probe.measure(self._context(*self._batch, step=0, lr=0.0))
            self._save()

    def on_step(self, info: dict[str, Any]) -> None:
        self._lr = float(info.get("lr") or 0.0)
        step = int(info["global_step"])
        measured = False
        for label, probe in self.probes:
            if step in self._steps.get(label, ()):
                done = self.results.setdefault(label, [])
                if not any(r.get("step") == step for r in done):
                    with torch.random.fork_rng(devices=[]):
                        done.append(probe.measure(self._context(info["inputs"], info["target"], step=step,
                                                                lr=self._lr)))
                    measured = True
        if measured:
            self._save()

    def finish(self, last_step: int | None) -> dict[str, Any]:
        """Run the `end` probes on the trained model (not when `last_step` is None: a run that
        failed has no trained model, but what was measured before it failed is kept); every
        probe's result by label."""
        out: dict[str, Any] = {}
        for label, probe in self.probes:
            when = probe_when(probe)
            if when == "end" and last_step is not None and self._model is not None and self._batch is not None:
                self.results[label] = probe.measure(self._context(*self._batch, step=last_step, lr=self._lr))
            if label not in self.results:
                continue
            result = self.results[label]
            out[label] = probe.summarize(result) if when == "steps" else result
        self._save()
        return out

    def _context(self, inputs, target, *, step: int, lr: float) -> ProbeContext:
        device = next((p.device for p in self._model.parameters()), torch.device("cpu"))
        return ProbeContext(model=self._model, inputs=inputs.to(device), target=_to(target, device), loss=self._loss,
                            spec=self.spec, analysis=self.analysis, lr=lr, seed=self.seed, step=step,
                            classes=self._classes)

    def _save(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.run_dir / f".{RESULTS_FILE}.tmp"
        tmp.write_text(json.dumps(self.results), encoding="utf-8")
        tmp.replace(self.run_dir / RESULTS_FILE)


def _first_samples(loader, n: int) -> tuple[torch.Tensor, Any]:
    inputs, targets = [], []
    count = 0
    for x, y in loader:
        inputs.append(x)
        targets.append(y)
        count += x.shape[0]
        if count >= n:
            break
    target = torch.cat(targets)[:n] if isinstance(targets[0], torch.Tensor) else targets
    return torch.cat(inputs)[:n], target


def _to(target, device):
    return target.to(device) if isinstance(target, torch.Tensor) else target
