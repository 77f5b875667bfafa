"""The `probe` plots drawn as grids of panels, a row per level and a column per block or sample:
dense_weights (a heat map per dense block: how strongly each layer reads each earlier one),
se_excitations (per SE block, the mean excitation of each channel, a line per class) and
class_maps (per sample its 2-D map, titled with label and prediction). A row shows the mean
over the level's seeds where shapes agree (class_maps: the first seed's samples)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .figures import Drawing, MissingData, colour, new_figure
from .plots import Plot
from .probe_values import ProbeData, as_number, blocks_of, first, matrix, mean_matrix

MAX_ROWS = 6
"""Levels drawn in a grid (more are listed in a note: one figure stays readable)."""
MAX_COLUMNS = 4
"""Blocks (or samples, twice as many) per row."""
MAX_CLASSES = 10
"""Classes drawn as lines in an SE panel."""


def _grid(plot: Plot, data: ProbeData, title: str, columns: int):
    rows = min(len(data.levels), MAX_ROWS)
    panels = new_figure(plot.size, rows=rows, columns=columns, grow=True)
    panels.figure.suptitle(title)
    notes = []
    if len(data.levels) > MAX_ROWS:
        left = ", ".join(level.label for level in data.levels[MAX_ROWS:])
        notes.append(f"only the first {MAX_ROWS} levels are drawn (not: {left}); use `where:` to choose")
    return panels, notes


def _blocks_per_level(plot: Plot, data: ProbeData, *keys: str) -> list[dict]:
    """Per level, block name -> the mean matrix over its seeds (only `plot.show` when given)."""
    per_level = []
    for level in data.levels:
        seeds = [blocks_of(result, *keys) for result in level.results]
        names = list(dict.fromkeys(name for blocks in seeds for name in blocks))
        if plot.show:
            names = [n for n in names if n == plot.show]
        per_level.append({name: mean_matrix([b[name] for b in seeds if name in b]) for name in names})
    if not any(per_level):
        which = f"block {plot.show!r}" if plot.show else "blocks"
        raise MissingData(f"probe {plot.probe!r} recorded no {which} with a matrix")
    return per_level


def _dense_weights(plot: Plot, data: ProbeData, title: str) -> Drawing:
    per_level = _blocks_per_level(plot, data, "weights", "heatmap", "matrix")
    columns = min(max(len(b) for b in per_level), MAX_COLUMNS)
    panels, notes = _grid(plot, data, title, columns)
    for row, (level, blocks) in enumerate(zip(data.levels[:MAX_ROWS], per_level)):
        for column in range(columns):
            ax = panels.axes[row][column]
            names = list(blocks)
            if column >= len(names):
                ax.set_axis_off()
                continue
            grid = blocks[names[column]]
            # rows are normalised to their largest entry: a fixed 0..1 scale shows how even they
            # are (a scale fitted to the panel would make 0.8 look like 0)
            image = ax.imshow(grid, cmap="viridis", aspect="auto", interpolation="nearest", vmin=0.0, vmax=1.0)
            panels.figure.colorbar(image, ax=ax, shrink=0.8)
            ax.set_title(f"{level.label}: {names[column]}", fontsize=8)
            ax.set_xlabel("source (0: the block's input, s: layer s)", fontsize=7)
            ax.set_ylabel("target layer", fontsize=7)
            _dense_ticks(ax, grid, transition=names[column] in _transitions(level))
            ax.tick_params(labelsize=6)
        if len(blocks) > columns:
            notes.append(f"{level.label}: {len(blocks) - columns} more blocks not drawn (`show: BLOCK` picks one)")
    return Drawing(figure=panels.figure, notes=notes)


def _transitions(level) -> set[str]:
    """The dense blocks whose heat map has a last row for the transition after them."""
    found = set()
    for result in level.results:
        if isinstance(result.get("transitions"), dict):
            found.update(str(name) for name in result["transitions"])
    return found


def _dense_ticks(ax, grid: np.ndarray, transition: bool) -> None:
    """Integer ticks: sources 0..L, target layers 1..L and the transition's row named."""
    rows, columns = grid.shape
    step = max(1, columns // 12)
    ax.set_xticks(range(0, columns, step))
    layers = rows - 1 if transition else rows
    labels = [str(layer) for layer in range(1, layers + 1)] + (["trans."] if transition else [])
    shown = list(range(0, rows, max(1, rows // 12)))
    if transition and rows - 1 not in shown:
        shown.append(rows - 1)
    ax.set_yticks(shown, [labels[i] for i in shown])


def _se_excitations(plot: Plot, data: ProbeData, title: str) -> Drawing:
    per_level = _blocks_per_level(plot, data, "excitations", "mean_excitation", "per_class")
    columns = min(max(len(b) for b in per_level), MAX_COLUMNS)
    panels, notes = _grid(plot, data, title, columns)
    if any(len(level.results) > 1 for level in data.levels):
        # channel c of one seed's net is not channel c of another's: a mean over seeds blurs them
        notes.append("the excitations are averaged over seeds, whose channels are different units: "
                     "`where: {seed: 0}` draws one seed's")
    classes = first(data.levels[0].results[0], "classes", "class_names")
    for row, (level, blocks) in enumerate(zip(data.levels[:MAX_ROWS], per_level)):
        names = list(blocks)
        for column in range(columns):
            ax = panels.axes[row][column]
            if column >= len(names):
                ax.set_axis_off()
                continue
            grid = blocks[names[column]]
            for index in range(min(grid.shape[0], MAX_CLASSES)):
                name = classes[index] if isinstance(classes, list) and index < len(classes) else index
                ax.plot(range(grid.shape[1]), grid[index], color=colour(index), linewidth=0.8, label=str(name))
            ax.set_title(f"{level.label}: {names[column]}", fontsize=8)
            ax.set_xlabel("channel", fontsize=7)
            ax.set_ylabel("excitation", fontsize=7)
            ax.set_ylim(0, 1.05)
            ax.tick_params(labelsize=6)
        if len(blocks) > columns:
            notes.append(f"{level.label}: {len(blocks) - columns} more SE blocks not drawn (`show: BLOCK` picks one)")
    panels.axes[0][0].legend(fontsize=6, title="class", title_fontsize=6)
    return Drawing(figure=panels.figure, notes=notes)


@dataclass
class Sample:
    """One sample of class_maps: its map, its label and the model's prediction."""

    map: np.ndarray | None
    label: Any
    prediction: Any
    image: np.ndarray | None = None
    """The input image ([H, W, C] in [0, 1]) the map is laid over, when the probe kept it."""


def _samples(result: dict) -> list[Sample]:
    """The samples of `samples: [{map, label, prediction}]` or of parallel `maps`, `labels`,
    `predictions` lists."""
    samples = result.get("samples")
    if isinstance(samples, list) and all(isinstance(s, dict) for s in samples):
        return [Sample(map=matrix(first(s, "map", "cam", "heatmap")), label=first(s, "label", "target"),
                       prediction=first(s, "prediction", "predicted"), image=_image(s.get("image")))
                for s in samples]
    maps = result.get("maps")
    if isinstance(maps, list):
        labels = result.get("labels") if isinstance(result.get("labels"), list) else []
        predictions = result.get("predictions") if isinstance(result.get("predictions"), list) else []
        return [Sample(map=matrix(m), label=labels[i] if i < len(labels) else None,
                       prediction=predictions[i] if i < len(predictions) else None) for i, m in enumerate(maps)]
    return []


def _image(value) -> np.ndarray | None:
    """An [H][W][C] list of [0, 1] pixels with 1 or 3 channels, else None (drawn without it)."""
    try:
        image = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if image.ndim != 3 or image.shape[2] not in (1, 3) or not np.isfinite(image).all():
        return None
    return np.clip(image, 0.0, 1.0)


def _class_name(value, classes) -> str:
    index = as_number(value)
    if isinstance(classes, list) and index is not None and 0 <= int(index) < len(classes):
        return str(classes[int(index)])
    return "?" if value is None else str(value)


def _class_maps(plot: Plot, data: ProbeData, title: str) -> Drawing:
    per_level = [[s for s in _samples(level.results[0]) if s.map is not None] for level in data.levels]
    if not any(per_level):
        raise MissingData(f"probe {plot.probe!r} recorded no sample maps")
    columns = min(max(len(s) for s in per_level), 2 * MAX_COLUMNS)
    panels, notes = _grid(plot, data, title, columns)
    classes = first(data.levels[0].results[0], "classes", "class_names")
    for row, (level, samples) in enumerate(zip(data.levels[:MAX_ROWS], per_level)):
        for column in range(columns):
            ax = panels.axes[row][column]
            ax.set_axis_off()
            if column >= len(samples):
                continue
            sample = samples[column]
            if sample.image is not None:  # the map, stretched over the image it was computed from
                height, width = sample.image.shape[:2]
                # the image in grey under the map's colours, so that each is read apart
                ax.imshow(sample.image.mean(axis=2), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                ax.imshow(sample.map, cmap="jet", alpha=0.45, interpolation="bilinear",
                          extent=(-0.5, width - 0.5, height - 0.5, -0.5))
            else:
                ax.imshow(sample.map, cmap="magma", interpolation="nearest")
            label, prediction = _class_name(sample.label, classes), _class_name(sample.prediction, classes)
            mark = "" if label == prediction else " (wrong)"
            ax.set_title(f"{level.label}\n{label} -> {prediction}{mark}", fontsize=7)
    return Drawing(figure=panels.figure, notes=notes)


MAP_DRAWINGS = {"dense_weights": _dense_weights, "se_excitations": _se_excitations, "class_maps": _class_maps}
