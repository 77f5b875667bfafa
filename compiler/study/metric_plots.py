"""The plots of trial numbers: `curve` (a metric per epoch, a line per level: the mean over
seeds, a band from their minimum to maximum), `bar` (a number per level: the mean as a bar,
each seed as a dot, optionally grouped along a second factor and labelled with the model's
size) and `scatter` (one number against another, a colour per level)."""

from __future__ import annotations

from ..formatting import human_count
from .cells import Group, band_over, factors_of, group, selected, spread, trial_value
from .figures import Drawing, MissingData, PlotInputs, colour, new_figure
from .plots import Plot


def draw_metric_plot(plot: Plot, inputs: PlotInputs, title: str) -> Drawing:
    records = selected(inputs.records, plot.where)
    if not records:
        where = f" with levels {plot.where}" if plot.where else ""
        raise MissingData(f"no complete trial{where} to draw")
    draw = {"curve": _curve, "bar": _bar, "scatter": _scatter}[plot.kind]
    panels = new_figure(plot.size)
    ax = panels.axes[0][0]
    notes = draw(plot, inputs, records, ax)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if plot.log_y:
        ax.set_yscale("log")
    if plot.log_x:
        ax.set_xscale("log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return Drawing(figure=panels.figure, notes=notes)


def _by(plot: Plot, records) -> list[str]:
    return plot.by if plot.by is not None else [f for f in factors_of(records) if f != plot.x]


def _keys_there(records) -> str:
    keys = sorted({key for r in records for row in r.history for key in row})
    return ", ".join(keys) if keys else "none: the trials have no history"


def _curve(plot: Plot, inputs: PlotInputs, records, ax) -> list[str]:
    y, x = plot.y_key(inputs.metric), plot.x or "epoch"
    notes, drawn = [], 0
    for index, level in enumerate(group(records, _by(plot, records), inputs.order)):
        band = band_over(level.records, y, x)
        if not band.x:
            notes.append(f"{level.label}: no trial has {y!r} per {x}")
            continue
        seeds = len(level.records)
        ax.plot(band.x, band.mean, color=colour(index), marker="o", markersize=2,
                label=f"{level.label} (n={seeds})")
        if seeds > 1:
            ax.fill_between(band.x, band.low, band.high, color=colour(index), alpha=0.2, linewidth=0)
        drawn += 1
    if not drawn:
        raise MissingData(f"no trial has {y!r} per {x} (the metrics rows have: {_keys_there(records)})")
    ax.set(xlabel=x, ylabel=y)
    return notes


def _size_text(level: Group, key: str) -> str:
    sizes = spread(trial_value(r, key) for r in level.records)
    return "" if sizes.mean is None else human_count(sizes.mean)


def _bar(plot: Plot, inputs: PlotInputs, records, ax) -> list[str]:
    """Without `x`, one bar per level of `by` along the axis; with `x`, the levels of `x` along
    the axis and, at each, one bar per level of `by` (the same colour for a level everywhere)."""
    y = plot.y_key(inputs.metric)
    by = _by(plot, records)
    hues = [level.label for level in group(records, by, inputs.order)]
    columns = group(records, [plot.x], inputs.order) if plot.x else [Group(levels={}, records=records)]
    width = 0.8 / (len(hues) if plot.x else 1)
    notes, drawn, labelled = [], 0, set()
    for column_index, column in enumerate(columns):
        for level in group(column.records, by, inputs.order):
            hue = hues.index(level.label)
            where = column_index - 0.4 + width * (hue + 0.5) if plot.x else hue
            name = f"{column.label}, {level.label}" if plot.x else level.label
            values = [v for v in (trial_value(r, y, plot.at) for r in level.records) if v is not None]
            if not values:
                notes.append(f"{name}: no trial has {y!r}")
                continue
            mean = spread(values).mean
            legend = level.label if plot.x and level.label not in labelled else None
            labelled.add(level.label)
            ax.bar(where, mean, width * 0.9, color=colour(hue), alpha=0.8, label=legend)
            ax.scatter([where] * len(values), values, color="black", s=8, zorder=3)
            if plot.label:
                text = f"{mean:.3g}" if plot.label == "value" else _size_text(level, plot.label)
                ax.annotate(text, (where, mean), ha="center", va="bottom", fontsize=7,
                            xytext=(0, 2), textcoords="offset points")
            drawn += 1
    if not drawn:
        raise MissingData(f"no trial has {y!r} (the metrics rows have: {_keys_there(records)})")
    if plot.x:
        ax.set_xticks(range(len(columns)), [c.label for c in columns])
        ax.set_xlabel(plot.x)
    else:
        ax.set_xticks(range(len(hues)), hues, rotation=30 if len(hues) > 4 else 0)
        ax.set_xlabel(", ".join(by))
    if y == "value":
        ax.set_ylabel(f"{inputs.metric} (the trial's value)")
    else:
        ax.set_ylabel(y if plot.at == "best" else f"{y} (final)")
    return notes


def _scatter(plot: Plot, inputs: PlotInputs, records, ax) -> list[str]:
    y, x = plot.y_key(inputs.metric), plot.x
    notes, drawn = [], 0
    for index, level in enumerate(group(records, _by(plot, records), inputs.order)):
        points = [(trial_value(r, x, plot.at), trial_value(r, y, plot.at)) for r in level.records]
        points = [p for p in points if p[0] is not None and p[1] is not None]
        if not points:
            notes.append(f"{level.label}: no trial has both {x!r} and {y!r}")
            continue
        ax.scatter([p[0] for p in points], [p[1] for p in points], color=colour(index), s=16,
                   label=level.label)
        drawn += 1
    if not drawn:
        raise MissingData(f"no trial has both {x!r} and {y!r}")
    ax.set(xlabel=x, ylabel=y)
    return notes
