"""Drawing a study's `plots:` entries (compiler/study/plots.py's `Plot`) into PNG and SVG files.

A plot whose records lack what it needs (a probe not recorded, a metric no trial has) is drawn as
a figure that says so, and its note is returned for the report's page: a report is never lost to
one plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .figures import Drawing, MissingData, PlotInputs, note_figure, save_figure
from .metric_plots import draw_metric_plot
from .plots import Plot, plot_names
from .probe_plots import draw_probe_plot


@dataclass
class DrawnPlot:
    """A plot as written: its files and what it could not draw."""

    name: str
    title: str
    png: Path
    svg: Path
    notes: list[str] = field(default_factory=list)
    """Why a part (or all) of the plot is missing: records without the probe, a key no trial has."""


def draw_plots(plots: list[Plot], inputs: PlotInputs, out_dir: str | Path) -> list[DrawnPlot]:
    """Draw every plot into `out_dir` as NAME.png and NAME.svg."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = []
    for plot, name in zip(plots, plot_names(plots, inputs.metric)):
        title = plot.title or plot.default_title(inputs.metric)
        draw = draw_probe_plot if plot.kind == "probe" else draw_metric_plot
        try:
            drawing = draw(plot, inputs, title)
        except MissingData as exc:
            drawing = Drawing(figure=note_figure(plot.size, title, str(exc)), notes=[str(exc)])
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
            # records of another version of a probe (keys renamed, shapes changed): the page says
            # so, and the other plots and the tables are still written
            note = f"could not draw this plot from the records: {type(exc).__name__}: {exc}"
            drawing = Drawing(figure=note_figure(plot.size, title, note), notes=[note])
        saved = save_figure(drawing.figure, out_dir / name)
        drawn.append(DrawnPlot(name=name, title=title, png=saved.png, svg=saved.svg, notes=drawing.notes))
    return drawn
