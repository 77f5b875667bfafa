"""The figure machinery every study plot shares: figures made on matplotlib's Agg canvas
directly (no pyplot: no global backend, no figure registry that a long-lived designer process
would fill), a figure that only says why there is nothing to draw, and saving as PNG and SVG
without timestamps (the same results draw the same files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .records import TrialRecord

DPI = 100
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
"""One colour per level, in level order (matplotlib's tab10, fixed here so it is not a global)."""


@dataclass
class PlotInputs:
    """What every drawing reads besides its `Plot`."""

    records: list[TrialRecord]
    """The study's trials (every state: a drawing picks the complete ones)."""
    metric: str = "val_top1"
    """The study's metric (the records' `metric`): a curve's default y."""
    order: dict[str, list[str]] = field(default_factory=dict)
    """factor -> its level labels in the study file's order (legends, bars, table rows)."""
    probe_kinds: dict[str, str] = field(default_factory=dict)
    """probe label -> probe name (`lesion`...) when a label is not the probe's name."""


class MissingData(Exception):
    """What a plot needs is not in the records: the message is the note the report shows."""


@dataclass
class Panels:
    """A figure and its grid of axes (`axes[row][column]`)."""

    figure: Figure
    axes: list[list]


@dataclass
class Drawing:
    """A drawn figure and the notes of what it could not show (a level without the probe...)."""

    figure: Figure
    notes: list[str] = field(default_factory=list)


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def new_figure(size: list[float], rows: int = 1, columns: int = 1, grow: bool = False) -> Panels:
    """A figure of `size` inches with a rows x columns grid; `grow` scales it by the grid (a
    probe's panel per block and level), capped so a large study stays a readable page."""
    width, height = size
    if grow:
        width, height = width * min(columns, 4) / 1.5, height * min(rows, 6) / 1.5
    figure = Figure(figsize=(max(width, 2.0), max(height, 1.5)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, columns, squeeze=False)
    return Panels(figure=figure, axes=[list(row) for row in grid])


def note_figure(size: list[float], title: str, note: str) -> Figure:
    """A figure whose only content is `note` (why the plot is empty), so the page still shows it."""
    panels = new_figure(size)
    ax = panels.axes[0][0]
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, note, ha="center", va="center", wrap=True, fontsize=9, transform=ax.transAxes)
    return panels.figure


@dataclass(frozen=True)
class SavedFigure:
    png: Path
    svg: Path


def save_figure(figure: Figure, stem: Path) -> SavedFigure:
    """Write STEM.png and STEM.svg (a stem may hold dots: "val_top1-by-lr.0.1")."""
    saved = SavedFigure(png=stem.parent / f"{stem.name}.png", svg=stem.parent / f"{stem.name}.svg")
    figure.savefig(saved.png, format="png", metadata={"Software": None})
    figure.savefig(saved.svg, format="svg", metadata={"Date": None, "Creator": None})
    return saved
