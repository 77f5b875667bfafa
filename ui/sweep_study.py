"""A sweep as a one-factor study: the study file the Sweep tab writes for a `Sweep` (one factor
named after the swept var, a level per value setting it, one seed, the sweep's training
settings), and each trial's record read back into its value's `Point`.

The spec is the editor's text, written next to the study file in the sweep's run folder (a
relative `extends:` made absolute, so a spec that extends a zoo file still finds its parent).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

NAME = "sweep"
SPEC_FILE = "spec.yaml"
STUDY_FILE = "sweep.yaml"
SEED = 0
"""Every value trains with the same seed (the study's one seed)."""

_EXTENDS = re.compile(r"""^extends:[ \t]*(?P<q>['"]?)(?P<path>[^'"#\n]+?)(?P=q)[ \t]*(?P<rest>#.*)?$""", re.M)


def spec_text(text: str, file: str) -> str:
    """`text` as it reads from another folder: a relative top-level `extends: PARENT` becomes the
    parent's absolute path (resolved against `file`, the path the text was opened as)."""

    def absolute(match: re.Match) -> str:
        parent = Path(match["path"].strip())
        if parent.is_absolute():
            return match[0]
        where = (Path(file).resolve().parent / parent).as_posix()
        return f"extends: {yaml.safe_dump(where, default_style=None).splitlines()[0]}" + (
            f"  {match['rest']}" if match["rest"] else "")

    return _EXTENDS.sub(absolute, text)


def label(value: Any) -> str:
    """A value's level label (the table's value as text: 8, 0.5)."""
    return str(value)


def study_document(sweep, values: list[Any]) -> dict[str, Any]:
    """The study file of `sweep` over `values`: each level sets the swept var (over the sidebar's
    other var overrides), every trial trains with the sweep's settings."""
    levels = [{"label": label(v), "vars": {**sweep.overrides, sweep.var: v}} for v in values]
    return {"blockgraph_study": 1, "name": NAME,
            "about": f"The designer's sweep of {sweep.var} over {', '.join(map(label, values))}.",
            "specs": SPEC_FILE, "factors": {sweep.var: levels}, "seeds": [SEED], "train": dict(sweep.settings)}


def write_study(sweep, values: list[Any], root: Path) -> Path:
    """Write the spec and the study file into `root`; the study file's path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / SPEC_FILE).write_text(spec_text(sweep.text, sweep.file), encoding="utf-8")
    path = root / STUDY_FILE
    path.write_text(yaml.safe_dump(study_document(sweep, values), sort_keys=False), encoding="utf-8")
    return path


def points_by_cell(study, sweep, points: list) -> dict[str, Any]:
    """cell key -> the Point of its value (by the level's label)."""
    by_label = {label(p.value): p for p in points}
    return {cell.key: by_label[cell.levels[sweep.var]] for cell in study.cells}


def step_event(info: dict[str, Any], epochs: int) -> dict[str, Any]:
    """A study's progress (`epoch`, `global_step`, `total` steps) as the Sweep tab's step event
    (`epoch` of `epochs`, `step` of `steps` in the epoch)."""
    epochs = max(int(epochs), 1)
    steps = max(int(info.get("total") or 0) // epochs, 1)
    epoch = int(info.get("epoch") or 1)
    return {"epoch": epoch, "epochs": epochs, "steps": steps,
            "step": int(info.get("global_step") or 0) - (epoch - 1) * steps, "loss": info.get("loss")}


def fill_point(point, record, describe) -> None:
    """A finished trial's record into its Point: done (complete) or failed (failed, refused:
    `describe` words its error), the best epoch, the training time and the run directory."""
    point.params = record.params if record.params is not None else point.params
    point.macs = record.macs if record.macs is not None else point.macs
    point.seconds = record.seconds
    point.run_dir = Path(record.run_dir) if record.run_dir else None
    if record.state != "complete":
        point.state, point.error = "failed", describe(record.error or record.state)
        return
    point.best = record.value
    rows = [row for row in record.history if row.get(record.metric) == record.value]
    point.best_epoch = rows[0].get("epoch") if rows else None
    point.state = "done"
