"""Reading probes' results out of trial records for the probe plots, defensively.

Probes write plain JSON (compiler/study/probes), and a report may read records written by an
older or newer version of a probe; so every reader here accepts the few spellings a result may
use (a key's synonyms, parallel lists or a list of maps) and answers None for what is not there,
which the drawing turns into a note on the page instead of an exception.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cells import group, selected
from .figures import MissingData, PlotInputs
from .plots import Plot

KEY_HINTS = {
    "signal_std": ("activation_std", "gradient_std"),
    "landscape": ("loss_range", "grad_distance_max", "beta"),
    "lesion": ("intact_error",),
    "dense_weights": ("weights", "heatmaps"),
    "se_excitations": ("excitations",),
    "class_maps": ("samples", "maps"),
    "filter_similarity": ("mean_similarity", "max_similarity", "similarity"),
}
"""probe name -> result keys only that probe writes (how a label that is not a probe name is
recognised when the study does not say which probe it is)."""


@dataclass
class LevelResults:
    """A probe's results for the trials of one level (one per seed that recorded it)."""

    label: str
    results: list[dict[str, Any]]


@dataclass
class ProbeData:
    kind: str
    """The probe's name (`lesion`...), which chooses the drawing."""
    levels: list[LevelResults]
    """The levels whose trials recorded the probe, in level order."""
    notes: list[str] = field(default_factory=list)


def probe_data(plot: Plot, inputs: PlotInputs) -> ProbeData:
    """The results of `plot.probe` per level of `plot.by` (MissingData when no trial has any)."""
    label = plot.probe
    # a failed (diverged) trial keeps what its probes measured before it failed (at init, the
    # steps before): drawn too, it shows why the run failed
    records = selected(inputs.records, plot.where, states=("complete", "failed"))
    if not records:
        raise MissingData("no complete trial to draw")
    by = plot.by if plot.by is not None else list(dict.fromkeys(f for r in records for f in r.levels))
    levels, notes = [], []
    for level in group(records, by, inputs.order):
        results = [r.probes[label] for r in level.records if isinstance(r.probes.get(label), dict)]
        if results:
            levels.append(LevelResults(label=level.label, results=results))
        else:
            notes.append(f"{level.label}: its trials did not record probe {label!r}")
    if not levels:
        recorded = sorted({name for r in records for name in r.probes})
        there = ", ".join(recorded) if recorded else "none"
        raise MissingData(f"no trial recorded probe {label!r} (the probes recorded: {there})")
    kind = probe_kind(label, levels[0].results[0], inputs.probe_kinds)
    return ProbeData(kind=kind, levels=levels, notes=notes)


def probe_kind(label: str, result: dict[str, Any], kinds: dict[str, str]) -> str:
    """Which probe wrote `result`: the study's word for the label, the label itself when it is a
    probe's name (or starts with one: `lesion_random`), else the keys only one probe writes."""
    if label in kinds:
        return kinds[label]
    for name in sorted(KEY_HINTS, key=len, reverse=True):
        if label == name or label.startswith(name):
            return name
    for name, keys in KEY_HINTS.items():
        if any(key in result for key in keys):
            return name
    return label


def first(result: dict[str, Any], *keys: str) -> Any:
    """The value of the first of `keys` that `result` has (None if none)."""
    for key in keys:
        if key in result and result[key] is not None:
            return result[key]
    return None


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def numbers(value: Any) -> list[float] | None:
    """A list of numbers (None entries as nan), else None."""
    if not isinstance(value, list) or not value:
        return None
    out = []
    for item in value:
        number = as_number(item)
        if number is None and item is not None and not isinstance(item, float):
            return None
        out.append(math.nan if number is None else number)
    return out


def matrix(value: Any) -> np.ndarray | None:
    """A list of rows of numbers as a 2-D array (short rows padded with nan: a dense block's
    weights are triangular), else None."""
    if not isinstance(value, list) or not value or not all(isinstance(row, list) for row in value):
        return None
    rows = [numbers(row) if row else [] for row in value]
    if any(row is None for row in rows):
        return None
    width = max(len(row) for row in rows)
    if width == 0:
        return None
    return np.array([row + [math.nan] * (width - len(row)) for row in rows], dtype=float)


def blocks_of(result: dict[str, Any], *matrix_keys: str) -> dict[str, np.ndarray]:
    """block name -> its matrix, read from `{"blocks": {name: M}}`, `{"blocks": [{"name": n,
    KEY: M}]}`, parallel `{"blocks": [names], KEY: [M, ...]}` or `{name: M}` at the top."""
    found: dict[str, np.ndarray] = {}
    blocks = result.get("blocks")
    if isinstance(blocks, dict):
        candidates = blocks.items()
    elif isinstance(blocks, list) and blocks and all(isinstance(b, dict) for b in blocks):
        candidates = [(str(first(b, "name", "block") or i), first(b, *matrix_keys)) for i, b in enumerate(blocks)]
    elif isinstance(blocks, list):
        stacked = first(result, *matrix_keys)
        stacked = stacked if isinstance(stacked, list) else []
        candidates = list(zip((str(b) for b in blocks), stacked))
    else:
        candidates = result.items()
    for name, value in candidates:
        grid = matrix(value)
        if grid is None and isinstance(value, dict):
            grid = matrix(first(value, *matrix_keys))
        if grid is not None:
            found[str(name)] = grid
    return found


def mean_matrix(grids: list[np.ndarray]) -> np.ndarray | None:
    """The mean over seeds of matrices of one shape (the first one alone when shapes differ)."""
    if not grids:
        return None
    if len(grids) > 1 and all(g.shape == grids[0].shape for g in grids):
        with warnings.catch_warnings():  # a cell no seed has (nan everywhere) stays nan
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.stack(grids), axis=0)
    return grids[0]


@dataclass
class SeedBand:
    """One series over seeds: their mean and their minimum and maximum at each position."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int


def seed_band(series: list[list[float]]) -> SeedBand | None:
    """The band of series of one length (those of another length than the first are left out)."""
    series = [s for s in series if s is not None]
    if not series:
        return None
    kept = np.array([s for s in series if len(s) == len(series[0])], dtype=float)
    with warnings.catch_warnings():  # a position no seed has (nan everywhere) stays nan
        warnings.simplefilter("ignore", RuntimeWarning)
        return SeedBand(mean=np.nanmean(kept, axis=0), low=np.nanmin(kept, axis=0),
                        high=np.nanmax(kept, axis=0), seeds=len(kept))
