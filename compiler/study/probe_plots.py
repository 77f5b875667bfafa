"""The `probe` plots drawn as lines, one per level (the mean over its seeds, a band from their
minimum to maximum): signal_std and filter_similarity per layer, landscape per training step
(a band of losses where the result gives one), lesion per deleted block (stride-2 blocks
marked) or per number of random deletions. The heat maps and images (dense_weights,
se_excitations, class_maps) are probe_maps.py's; this module picks the drawing for a probe."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .figures import Drawing, MissingData, PlotInputs, colour, new_figure
from .plots import Plot
from .probe_maps import MAP_DRAWINGS
from .probe_values import ProbeData, as_number, first, numbers, probe_data, seed_band

LAYER_SERIES = {"signal_std": ("activation_std", "gradient_std")}
"""Per-layer probes whose series are known; others draw every per-layer list they have."""
LANDSCAPE_SERIES = ("loss_range", "grad_distance_max", "beta")
SERIES_LABELS = {"loss_range": "loss range", "grad_distance_max": "gradient predictiveness",
                 "beta": "beta-smoothness"}


def draw_probe_plot(plot: Plot, inputs: PlotInputs, title: str) -> Drawing:
    data = probe_data(plot, inputs)
    if data.kind in MAP_DRAWINGS:
        drawing = MAP_DRAWINGS[data.kind](plot, data, title)
    else:
        draw = LINE_DRAWINGS.get(data.kind, _per_layer)
        drawing = draw(plot, data, title)
    drawing.notes[:0] = data.notes
    return drawing


def _series_figure(plot: Plot, title: str, count: int):
    panels = new_figure([plot.size[0] * (1 + 0.6 * (count - 1)) if count > 1 else plot.size[0], plot.size[1]],
                        columns=count)
    panels.figure.suptitle(title)
    return panels.figure, panels.axes[0]


def _draw_band(ax, x, series: list[list[float]], index: int, label: str) -> bool:
    band = seed_band(series)
    if band is None:
        return False
    x = np.asarray(x[: len(band.mean)], dtype=float) if x is not None else np.arange(1, len(band.mean) + 1)
    ax.plot(x, band.mean[: len(x)], color=colour(index), marker="o", markersize=2, label=f"{label} (n={band.seeds})")
    if band.seeds > 1:
        ax.fill_between(x, band.low[: len(x)], band.high[: len(x)], color=colour(index), alpha=0.2, linewidth=0)
    return True


def _per_layer(plot: Plot, data: ProbeData, title: str) -> Drawing:
    """A panel per series (signal_std: activations and gradients), x the layer's depth."""
    sample = data.levels[0].results[0]
    layers = sample.get("layers") if isinstance(sample.get("layers"), list) else None
    keys = list(LAYER_SERIES.get(data.kind) or [k for k, v in sample.items() if k != "layers" and numbers(v)])
    if plot.show:
        if plot.show not in keys and not any(k.startswith(plot.show) for k in keys):
            raise MissingData(f"probe {plot.probe!r} has no series {plot.show!r} (it has: {', '.join(keys)})")
        keys = [k for k in keys if k == plot.show or k.startswith(plot.show)]
    keys = [k for k in keys if any(numbers(r.get(k)) for level in data.levels for r in level.results)]
    if not keys:
        raise MissingData(f"probe {plot.probe!r} has no per-layer values (its keys: {', '.join(sample)})")
    figure, axes = _series_figure(plot, title, len(keys))
    notes = []
    log = plot.log_y if plot.log_y is not None else data.kind == "signal_std"
    for ax, key in zip(axes, keys):
        for index, level in enumerate(data.levels):
            series = [numbers(r.get(key)) for r in level.results]
            if not _draw_band(ax, None, series, index, level.label):
                notes.append(f"{level.label}: no {key!r} in probe {plot.probe!r}")
            elif log and any(v is not None and v <= 0 for values in series for v in values):
                # a log axis drops zeros without a trace: say so (zero init gives exactly 0)
                notes.append(f"{level.label}: {key} is 0 at some layers, which a log axis cannot show "
                             "(`log_y: false` draws them)")
        ax.set(xlabel="layer (depth)", ylabel=key, yscale="log" if log else "linear")
        if layers and len(layers) <= 12 and len(data.levels) == 1:
            ax.set_xticks(range(1, len(layers) + 1), [str(n) for n in layers], rotation=60, fontsize=6)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return Drawing(figure=figure, notes=notes)


def _landscape(plot: Plot, data: ProbeData, title: str) -> Drawing:
    """A panel per series over the steps it was measured at. Where the result holds the losses'
    extremes per step (`loss_min`/`loss_max`, or `loss_range` as [low, high] pairs), the loss
    panel is the band between them (the variation of the loss along the gradient)."""
    keys = [plot.show] if plot.show else list(LANDSCAPE_SERIES)
    present = [k for k in keys if any(k in r or (k == "loss_range" and "loss_max" in r)
                                      for level in data.levels for r in level.results)]
    if not present:
        have = ", ".join(data.levels[0].results[0])
        raise MissingData(f"probe {plot.probe!r} has none of {', '.join(keys)} (it has: {have})")
    figure, axes = _series_figure(plot, title, len(present))
    notes = []
    for ax, key in zip(axes, present):
        for index, level in enumerate(data.levels):
            steps = numbers(first(level.results[0], "steps", "step"))
            if key == "loss_range" and _loss_extremes(ax, level, steps, index):
                continue
            if not _draw_band(ax, steps, [numbers(r.get(key)) for r in level.results], index, level.label):
                notes.append(f"{level.label}: no {key!r} in probe {plot.probe!r}")
        ax.set_title(SERIES_LABELS.get(key, key), fontsize=8)
        ax.set(xlabel="step", ylabel=key)
        if plot.log_y:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return Drawing(figure=figure, notes=notes)


def _loss_extremes(ax, level, steps, index: int) -> bool:
    """Fill between the losses' minimum and maximum per step (mean over seeds); False when the
    results hold only the range's width (drawn as a line instead)."""
    lows, highs = [], []
    for result in level.results:
        pairs = result.get("loss_range")
        if isinstance(pairs, list) and pairs and all(isinstance(p, list) and len(p) == 2 for p in pairs):
            lows.append([as_number(p[0]) for p in pairs])
            highs.append([as_number(p[1]) for p in pairs])
        elif numbers(result.get("loss_min")) and numbers(result.get("loss_max")):
            lows.append(numbers(result["loss_min"]))
            highs.append(numbers(result["loss_max"]))
    if not lows:
        return False
    low, high = np.nanmean(np.array(lows, dtype=float), axis=0), np.nanmean(np.array(highs, dtype=float), axis=0)
    x = np.asarray(steps[: len(low)], dtype=float) if steps else np.arange(1, len(low) + 1)
    ax.fill_between(x, low[: len(x)], high[: len(x)], color=colour(index), alpha=0.35, linewidth=0,
                    label=f"{level.label} (n={len(lows)})")
    return True


def _lesion(plot: Plot, data: ProbeData, title: str) -> Drawing:
    """`blocks`: the error after deleting each block alone, the intact error as a dashed line and
    stride-2 blocks (downsampling) marked; `k`: the mean error after deleting k random blocks."""
    has_k = any(_k_series(r) for level in data.levels for r in level.results)
    has_blocks = any(_block_series(r) for level in data.levels for r in level.results)
    show = plot.show or ("blocks" if has_blocks else "k")
    if show not in ("blocks", "k"):
        raise MissingData(f"a lesion plot shows `blocks` or `k`, not {show!r}")
    if not (has_blocks if show == "blocks" else has_k):
        what = "deleted blocks' errors" if show == "blocks" else "errors per number of deletions k"
        raise MissingData(f"probe {plot.probe!r} recorded no {what}")
    # Nets whose blocks differ (a ResNet's blocks, a plain net's layers) get a panel each, so
    # every panel's ticks name its own blocks.
    names_of = {tuple(s.names) for level in data.levels for r in level.results if (s := _block_series(r))}
    apart = show == "blocks" and len(names_of) > 1
    figure, axes = _series_figure(plot, title, len(data.levels) if apart else 1)
    notes: list[str] = []
    names_on: dict[int, list[str]] = {}
    for index, level in enumerate(data.levels):
        ax = axes[index] if apart else axes[0]
        if show == "k":
            series = [_k_series(r) for r in level.results]
            k = next((s.k for s in series if s), None)
            drawn = _draw_band(ax, k, [s.errors for s in series if s], index, level.label)
        else:
            series = [_block_series(r) for r in level.results]
            kept = [s for s in series if s]
            drawn = _draw_band(ax, None, [s.errors for s in kept], index, level.label)
            if drawn:
                names_on.setdefault(id(ax), kept[0].names)
                means = seed_band([s.errors for s in kept]).mean
                strided = [i + 1 for i, stride in enumerate(kept[0].strides) if stride and stride > 1]
                ax.scatter(strided, [means[i - 1] for i in strided],
                           marker="v", s=40, color=colour(index), edgecolor="black", zorder=3)
                intact = [as_number(first(r, "intact_error", "intact")) for r in level.results]
                intact = [v for v in intact if v is not None]
                if intact:
                    ax.axhline(float(np.mean(intact)), color=colour(index), linestyle="--", linewidth=1,
                               label=f"{level.label}: intact")
        if not drawn:
            notes.append(f"{level.label}: probe {plot.probe!r} has no lesion {show} series")
    for ax in (axes if apart else axes[:1]):
        if show == "k":
            ax.set(xlabel="blocks deleted at random (k)", ylabel="error")
        else:
            ax.set(xlabel="deleted block (v: stride 2)", ylabel="error")
            names = names_on.get(id(ax))
            if names and len(names) <= 30:
                ax.set_xticks(range(1, len(names) + 1), names, rotation=70, fontsize=6)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return Drawing(figure=figure, notes=notes)


@dataclass
class BlockLesions:
    """Single-block lesions: each deleted block's name, stride (None: unknown) and error."""

    names: list[str]
    strides: list[float | None]
    errors: list[float]


@dataclass
class RandomLesions:
    """Random lesions: the numbers k of blocks deleted, and the mean error after each."""

    k: list[float]
    errors: list[float]


def _block_series(result: dict) -> BlockLesions | None:
    """{names, strides, errors} of a single-block lesion result: a list of maps
    (`deleted`/`blocks`/`lesions`: {block|name, stride, error}) or parallel lists."""
    entries = first(result, "deleted", "lesions", "blocks")
    if isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries):
        names = [str(first(e, "block", "name") or i) for i, e in enumerate(entries)]
        strides = [as_number(e.get("stride")) for e in entries]
        errors = [as_number(e.get("error")) for e in entries]
    elif isinstance(entries, list) and numbers(first(result, "errors", "error")):
        names = [str(e) for e in entries]
        errors = numbers(first(result, "errors", "error"))
        strides = numbers(first(result, "strides", "stride")) or [None] * len(errors)
    else:
        return None
    if not any(e is not None for e in errors):
        return None
    return BlockLesions(names=names, strides=strides, errors=[np.nan if e is None else e for e in errors])


def _k_series(result: dict) -> RandomLesions | None:
    """The k values and mean errors of a random-lesion result: `k` + `mean_error` lists, a
    `random: {...}` map of those, or `{k: error}`."""
    source = result.get("random") if isinstance(result.get("random"), dict) else result
    k = numbers(first(source, "k", "ks"))
    errors = numbers(first(source, "mean_error", "mean_errors", "errors_by_k"))
    if k and errors:
        return RandomLesions(k=k, errors=errors)
    by_k = source.get("error_by_k")
    if isinstance(by_k, dict):
        pairs = sorted((float(key), as_number(v)) for key, v in by_k.items() if str(key).isdigit())
        return RandomLesions(k=[p[0] for p in pairs], errors=[np.nan if p[1] is None else p[1] for p in pairs])
    return None


LINE_DRAWINGS = {"signal_std": _per_layer, "filter_similarity": _per_layer, "landscape": _landscape,
                 "lesion": _lesion}
