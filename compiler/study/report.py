"""A study's report, made from its trial records only: the results table (results.csv and
results.json, one row per trial), the summary per cell (the levels without the seed: mean and
standard deviation of the trial value over the seeds), the plots (PNG and SVG) and one page,
report.md and report.html, holding the summary, the plots, the failed and refused trials with
their messages, and the study file as it was run.

`blockgraph study report` calls `write_report`; nothing here reads Optuna: records are what a
trial leaves (compiler/study/records.py), so a report can be made again from results.jsonl.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cells import factors_of, group, spread, trial_value
from .drawing import DrawnPlot, draw_plots
from .figures import PlotInputs
from .page import ReportPage, render_html, render_markdown
from .plots import Plot
from .records import TrialRecord

FINAL_KEYS = ("train_loss", "train_top1", "val_loss", "val_top1")
"""The last epoch's metrics every results row carries (as final_<key>)."""
TRIAL_COLUMNS = ("trial", "key", "seed", "state", "metric", "value",
                 *(f"final_{key}" for key in FINAL_KEYS), "epochs", "params", "macs", "seconds", "error")
SUMMARY_COLUMNS = ("metric", "n", "mean", "std", "min", "max", "params", "macs", "not_complete")
LEVEL_PREFIX = "level:"
"""Put before a factor's column name when the factor is named like a fixed column (`seed`)."""


@dataclass
class ReportFiles:
    """The files a report wrote (every path inside `out_dir`)."""

    out_dir: Path
    results_csv: Path
    results_json: Path
    summary_csv: Path
    markdown: Path
    html: Path
    plots: list[DrawnPlot]


def level_columns(factors: list[str]) -> dict[str, str]:
    """factor -> its column in the tables: its name, or `level:NAME` when a fixed column has it."""
    fixed = set(TRIAL_COLUMNS) | set(SUMMARY_COLUMNS)
    return {factor: f"{LEVEL_PREFIX}{factor}" if factor in fixed else factor for factor in factors}


def trial_rows(records: list[TrialRecord], factors: list[str]) -> list[dict[str, Any]]:
    """One row per trial, by trial number: its levels as columns, then TRIAL_COLUMNS."""
    columns = level_columns(factors)
    rows = []
    for record in sorted(records, key=lambda r: (r.trial, r.key)):
        final = record.final or {}
        row: dict[str, Any] = {"trial": record.trial, "key": record.key}
        row.update({columns[f]: record.levels.get(f) for f in factors})
        row.update(seed=record.seed, state=record.state, metric=record.metric, value=_finite(record.value))
        row.update({f"final_{key}": _finite(final.get(key)) for key in FINAL_KEYS})
        row.update(epochs=len(record.history), params=record.params, macs=record.macs,
                   seconds=record.seconds, error=record.error)
        rows.append(row)
    return rows


def _finite(value: Any) -> Any:
    """nan and inf (a diverged run's last loss) as None: JSON has no such numbers."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def summary_rows(records: list[TrialRecord], factors: list[str],
                 order: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """One row per cell (a combination of levels, every seed of it), in level order: the
    complete trials' values (n, mean, sample std, min, max), the model's size and how many of
    the cell's trials did not complete (failed or refused: see the page's list)."""
    columns = level_columns(factors)
    rows = []
    for cell in group(records, factors, order):
        complete = [r for r in cell.records if r.state == "complete"]
        values = spread(_finite(r.value) for r in complete)
        metrics = Counter(r.metric for r in cell.records)
        row: dict[str, Any] = {columns[f]: label for f, label in cell.levels.items()}
        row.update(metric=metrics.most_common(1)[0][0], n=values.n, mean=values.mean, std=values.std,
                   min=values.low, max=values.high,
                   params=_size(cell.records, "params"), macs=_size(cell.records, "macs"),
                   not_complete=len(cell.records) - len(complete))
        rows.append(row)
    return rows


def _size(records: list[TrialRecord], key: str) -> int | None:
    """The model's size in a cell (the same for every seed; the mean if they differ)."""
    sizes = spread(trial_value(r, key) for r in records)
    return None if sizes.mean is None else round(sizes.mean)


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row[c] for c in columns})
    return buffer.getvalue()


def study_metric(records: list[TrialRecord]) -> str:
    """The metric most of the records were measured by (the study's: one per study)."""
    metrics = Counter(r.metric for r in records)
    return metrics.most_common(1)[0][0] if metrics else "val_top1"


def write_report(*, study_name: str, study_text: str, records: list[TrialRecord], plots: list[Plot],
                 out_dir: str | Path, title: str | None = None, order: dict[str, list[str]] | None = None,
                 probe_kinds: dict[str, str] | None = None) -> ReportFiles:
    """Write the report of `records` into `out_dir` (made if missing; its files replaced).

    order: factor -> its level labels as the study file lists them (rows, legends and bars
    follow it; without it labels sort naturally, "plain-20" before "plain-110").
    probe_kinds: probe label -> probe name, for labels that are not a probe's name.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the study file's factor order (`order` lists them so), then any other the records name
    found = factors_of(records)
    factors = [f for f in (order or {}) if f in found] + [f for f in found if f not in (order or {})]
    levels = list(level_columns(factors).values())
    trials = trial_rows(records, factors)
    summary = summary_rows(records, factors, order)
    files = ReportFiles(out_dir=out_dir, results_csv=out_dir / "results.csv", results_json=out_dir / "results.json",
                        summary_csv=out_dir / "summary.csv", markdown=out_dir / "report.md",
                        html=out_dir / "report.html", plots=[])
    files.results_csv.write_text(_csv_text(trials, [*TRIAL_COLUMNS[:2], *levels, *TRIAL_COLUMNS[2:]]),
                                 encoding="utf-8")
    files.summary_csv.write_text(_csv_text(summary, [*levels, *SUMMARY_COLUMNS]), encoding="utf-8")
    results = {"study": study_name, "factors": factors, "trials": trials, "summary": summary}
    files.results_json.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n", encoding="utf-8")

    inputs = PlotInputs(records=records, metric=study_metric(records), order=order or {},
                        probe_kinds=probe_kinds or {})
    files.plots = draw_plots(plots, inputs, out_dir / "plots")
    page = ReportPage(title=title or f"Study {study_name}", study_name=study_name, study_text=study_text,
                      records=records, levels=levels, summary=summary, plots=files.plots, out_dir=out_dir)
    files.markdown.write_text(render_markdown(page), encoding="utf-8")
    files.html.write_text(render_html(page), encoding="utf-8")
    return files
