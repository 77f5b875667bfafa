"""Per-epoch metrics of a run: metrics.jsonl (one JSON object a line), metrics.csv (the same
rows) and curves.png (loss and accuracy, train and val), all in the run directory."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from .checkpoint import atomic_write, atomic_write_text
from .tasks import task_named

COLUMNS = ("epoch", "step", "lr", "train_loss", "train_top1", "train_top5", "val_loss", "val_top1", "val_top5",
           "images_per_s", "seconds", "val_miou", "val_map50", "val_map", "val_mask_map50", "val_mask_map")
"""Columns of metrics.csv; accuracies are fractions in [0, 1], top-5 is null under 5 classes.
Segmentation runs: top-1 is the pixel accuracy, val_miou the mean IoU over classes (null when
classifying). Detection runs: val_map50 / val_map are the box mAP at IoU 0.5 and over 0.5:0.95
(COCO's, via torchmetrics), val_mask_map50 / val_mask_map the same for instance masks; YOLO runs
have no top-1 (null), region classifiers report the fraction of regions classified right."""


def task_columns(task: str) -> dict[str, str]:
    """Column -> label for a run of `task` (as `Task.kind` names it; its class's `columns`):
    every row carries every column (null where a task has no such number), so a table of a
    classification run would otherwise show empty mIoU and mAP columns, and one of a
    segmentation run call its pixel accuracy "top-1". An unknown task: every column, as named."""
    found = task_named(task)
    return dict(found.columns) if found is not None else {k: k for k in COLUMNS}


def labelled(rows: list[dict[str, Any]], task: str) -> list[dict[str, Any]]:
    """`rows` as a table of a `task` run shows them: its columns under their labels, leaving
    out those no row has a value for (top-5 under 5 classes, the mask mAP of a head without
    masks)."""
    names = {k: v for k, v in task_columns(task).items() if any(r.get(k) is not None for r in rows)}
    return [{label: r.get(key) for key, label in names.items()} for r in rows]


class MetricsLog:
    def __init__(self, run_dir: Path, rows: list[dict[str, Any]] | None = None):
        self.run_dir = Path(run_dir)
        self.rows: list[dict[str, Any]] = list(rows or [])

    @property
    def jsonl(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    @property
    def csv(self) -> Path:
        return self.run_dir / "metrics.csv"

    @property
    def png(self) -> Path:
        return self.run_dir / "curves.png"

    @classmethod
    def resume(cls, run_dir: Path, upto_epoch: int) -> "MetricsLog":
        """The rows of an earlier run up to `upto_epoch` (rows after the checkpoint are dropped,
        and the files rewritten, since those epochs are trained again)."""
        log = cls(run_dir)
        if log.jsonl.is_file():
            for line in log.jsonl.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:  # a line cut by a crash
                    continue
                if isinstance(row, dict) and isinstance(row.get("epoch"), int) and row["epoch"] <= upto_epoch:
                    log.rows.append(row)
        log._rewrite()
        return log

    def append(self, row: dict[str, Any]) -> None:
        row = {k: row.get(k) for k in COLUMNS}
        self.rows.append(row)
        with open(self.jsonl, "a") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._write_csv()
        self.plot()

    def _rewrite(self) -> None:
        atomic_write_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in self.rows))
        self._write_csv()
        if self.rows:
            self.plot()

    def _write_csv(self) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in self.rows:
            writer.writerow(["" if row.get(k) is None else row[k] for k in COLUMNS])
        atomic_write_text(self.csv, buf.getvalue())

    def plot(self) -> None:
        """Redraw curves.png (matplotlib's Agg canvas directly: no pyplot, no global backend)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 4), dpi=100)
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.9, wspace=0.22)
        FigureCanvasAgg(fig)
        loss_ax, acc_ax = fig.subplots(1, 2)
        epochs = [r["epoch"] for r in self.rows]

        def series(key, scale=1.0):
            return [math.nan if r.get(key) is None else r[key] * scale for r in self.rows]

        style = {"marker": "o", "markersize": 3}
        loss_ax.plot(epochs, series("train_loss"), label="train", **style)
        loss_ax.plot(epochs, series("val_loss"), label="val", **style)
        loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
        acc_ax.plot(epochs, series("train_top1", 100), label="train top-1", **style)
        acc_ax.plot(epochs, series("val_top1", 100), label="val top-1", **style)
        if any(r.get("val_top5") is not None for r in self.rows):
            acc_ax.plot(epochs, series("val_top5", 100), label="val top-5", linestyle="--", **style)
        for key, label in (("val_miou", "val mIoU"), ("val_map50", "val mAP@0.5"), ("val_map", "val mAP"),
                           ("val_mask_map50", "val mask mAP@0.5")):
            if any(r.get(key) is not None for r in self.rows):
                acc_ax.plot(epochs, series(key, 100), label=label, linestyle="--", **style)
        acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
        for ax in (loss_ax, acc_ax):
            ax.grid(True, alpha=0.3)
            ax.legend()
            if epochs:
                ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        atomic_write(self.png, lambda tmp: fig.savefig(tmp, format="png"))
