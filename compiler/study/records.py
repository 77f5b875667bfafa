"""A trial's results as the study keeps them: one `TrialRecord` per trial, written to the
Optuna storage (as the trial's user attributes) and, line by line, to the study's
`results.jsonl` next to it, the moment the trial ends. Reports are made from records only, so
a finished trial's results survive a lost database, a killed worker or a changed study file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

State = Literal["complete", "failed", "refused"]
"""complete: trained and probed; failed: training stopped with an error (diverged...);
refused: the level's spec did not load or check (its located message is `error`)."""


@dataclass
class TrialRecord:
    study: str
    """The study's name."""
    trial: int
    """The Optuna trial number."""
    key: str
    """The trial's cell: its levels and seed as one stable string ("depth=20,norm=batch,seed=0")."""
    levels: dict[str, str]
    """factor -> the label of its level in this trial."""
    seed: int
    state: State
    metric: str = "val_top1"
    """The key of `history` rows that says how good an epoch is (compiler.train.outcomes.measure_of)."""
    value: float | None = None
    """The best epoch's `metric` (the trial's objective)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """The run's metrics rows, one per epoch (metrics.jsonl)."""
    probes: dict[str, Any] = field(default_factory=dict)
    """probe label -> its measured values (see compiler.study.probes)."""
    params: int | None = None
    """The model's parameter count (from the graph check)."""
    macs: int | None = None
    run_dir: str | None = None
    error: str | None = None
    seconds: float = 0.0
    fingerprint: str = ""
    """The cell's fingerprint when it ran (compiler.study.loader.Cell.fingerprint)."""

    @property
    def final(self) -> dict[str, Any] | None:
        return self.history[-1] if self.history else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrialRecord":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def append_record(path: str | os.PathLike, record: TrialRecord) -> None:
    """Add one line to a results.jsonl (flushed and fsynced: a finished trial is never lost)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record.to_json(), sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_records(path: str | os.PathLike) -> list[TrialRecord]:
    """Every record of a results.jsonl, the last one of each trial key winning (a trial run again
    after its worker died writes a newer line); a torn last line (a kill mid-write) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    latest: dict[str, TrialRecord] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = TrialRecord.from_json(json.loads(line))
        except (json.JSONDecodeError, TypeError):
            continue
        latest[record.key] = record
    return list(latest.values())
