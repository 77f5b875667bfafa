"""Trials grouped by their levels, and the numbers read from them: the one home of what the
results table, the summary and every plot agree on (which trials count, the order of levels,
what a metric's "best" epoch is, the mean and spread over seeds).

A *cell* is a combination of levels without the seed: its seeds are repeated measurements of
the same thing. Plots group more coarsely (by the levels of the factors they name) with the
same function. Nothing here imports matplotlib or torch.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable

from .records import TrialRecord

SIZE_KEYS = ("params", "macs")
"""Trial values that are not metrics of an epoch but sizes of the model."""
VALUE = "value"
"""The name of the trial's own value (its best epoch's metric) wherever a metric is named."""


@dataclass
class Group:
    """Trials that share the levels of some factors."""

    levels: dict[str, str]
    """factor -> label, for the factors grouped by (in their order)."""
    records: list[TrialRecord] = field(default_factory=list)

    @property
    def label(self) -> str:
        """How a legend or a table names the group: "depth=20, norm=batch" ("all" for none)."""
        if not self.levels:
            return "all"
        if len(self.levels) == 1:
            return next(iter(self.levels.values()))
        return ", ".join(f"{factor}={label}" for factor, label in self.levels.items())


@dataclass(frozen=True)
class Spread:
    """Values over seeds: how many, their mean, sample standard deviation (None below two
    values: one seed says nothing of the spread), minimum and maximum."""

    n: int
    mean: float | None
    std: float | None
    low: float | None
    high: float | None


def natural_key(text: str) -> list[Any]:
    """Sort key that puts "plain-20" before "plain-110" (numbers compared as numbers)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", text) if part]


def factors_of(records: Iterable[TrialRecord]) -> list[str]:
    """Every factor named by the records' levels, in the order they first appear."""
    seen: dict[str, None] = {}
    for record in records:
        for factor in record.levels:
            seen.setdefault(factor, None)
    return list(seen)


def label_of(record: TrialRecord, factor: str, missing: str | None = None) -> str | None:
    """The record's label for `factor`; `seed` (never a level) is the seed's text, so plots can
    pick (`where: {seed: 0}`) or split (`by: [seed]`) by it."""
    if factor == "seed" and factor not in record.levels:
        return str(record.seed)
    return record.levels.get(factor, missing)


def selected(records: Iterable[TrialRecord], where: dict[str, list[str]] | None = None,
             states: tuple[str, ...] = ("complete",)) -> list[TrialRecord]:
    """The records in `states` whose levels are among `where`'s labels for each factor it names."""
    where = where or {}
    return [r for r in records if r.state in states
            and all(label_of(r, factor) in labels for factor, labels in where.items())]


def group(records: Iterable[TrialRecord], by: list[str],
          order: dict[str, list[str]] | None = None) -> list[Group]:
    """The records grouped by their labels for the factors `by`, groups sorted by each factor's
    level order (`order`: as the study file lists them; labels it lacks, and factors it does
    not name, sort naturally after). A record that lacks a factor gets the label "-"."""
    order = order or {}
    groups: dict[tuple[str, ...], Group] = {}
    for record in records:
        labels = tuple(label_of(record, factor, "-") for factor in by)
        groups.setdefault(labels, Group(levels=dict(zip(by, labels)))).records.append(record)

    def rank(labels: tuple[str, ...]) -> list[Any]:
        key = []
        for factor, label in zip(by, labels):
            known = order.get(factor, [])
            key.append((known.index(label), []) if label in known else (len(known), natural_key(label)))
        return key

    return [groups[labels] for labels in sorted(groups, key=rank)]


def lower_is_better(metric: str) -> bool:
    """Losses and errors are minimised; accuracies, mIoU and mAP maximised."""
    return metric.endswith("loss") or metric.endswith("error")


def row_value(row: dict[str, Any], key: str) -> float | None:
    """`key` of one metrics row; `<split>_error` is derived as 1 - `<split>_top1` when the row has
    no such key (the error curves of the papers), so a study file can plot either."""
    value = row.get(key)
    if value is None and key.endswith("_error"):
        top1 = row.get(key[: -len("_error")] + "_top1")
        value = None if top1 is None else 1.0 - top1
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def trial_value(record: TrialRecord, key: str, at: str = "best") -> float | None:
    """One number of a trial: its `value`, its `params` or `macs`, or metric `key` of its best
    epoch (by that metric, `at="best"`) or of its last (`at="final"`)."""
    if key == VALUE:
        return None if record.value is None else float(record.value)
    if key in SIZE_KEYS:
        size = getattr(record, key)
        return None if size is None else float(size)
    values = [v for v in (row_value(row, key) for row in record.history) if v is not None]
    if not values:
        return None
    if at == "final":
        return values[-1]
    return min(values) if lower_is_better(key) else max(values)


def spread(values: Iterable[float | None]) -> Spread:
    """The `Spread` of the values that are there (None skipped)."""
    present = [v for v in values if v is not None]
    if not present:
        return Spread(n=0, mean=None, std=None, low=None, high=None)
    std = statistics.stdev(present) if len(present) > 1 else None
    return Spread(n=len(present), mean=statistics.fmean(present), std=std, low=min(present), high=max(present))


@dataclass
class Band:
    """A metric over epochs (or steps) across several trials: at each x, the mean and the
    minimum and maximum over the trials that have a value there."""

    x: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]


def band_over(records: Iterable[TrialRecord], key: str, x: str = "epoch") -> Band:
    """The `Band` of metric `key` against row key `x` over the records' histories."""
    by_x: dict[float, list[float]] = {}
    for record in records:
        for row in record.history:
            where, value = row_value(row, x), row_value(row, key)
            if where is not None and value is not None:
                by_x.setdefault(where, []).append(value)
    xs = sorted(by_x)
    return Band(x=xs, mean=[statistics.fmean(by_x[v]) for v in xs],
                low=[min(by_x[v]) for v in xs], high=[max(by_x[v]) for v in xs])
