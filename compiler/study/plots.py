"""One entry of a study file's `plots:` list (`Plot`), and drawing the entries of a study.

The model is what the study file's loader (compiler/study/document.py) validates and what the
JSON Schema for editors is generated from, so every field's docstring is its help text. It
imports no matplotlib: the drawing is compiler/study/drawing.py's (with metric_plots.py,
probe_plots.py and figures.py), imported only by the report.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

PlotKind = Literal["curve", "bar", "scatter", "probe"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


_ONE_LABEL = {"type": ["string", "number"]}
Labels = Annotated[list[str], WithJsonSchema({"anyOf": [_ONE_LABEL, {"type": "array", "items": _ONE_LABEL}]})]
"""A `where:` value: one level label or a list of them (numbers are labels' text)."""
Names = Annotated[list[str], WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})]
"""A factor name or a list of them."""


def _as_label(value: Any) -> Any:
    """A number written as a level label (`depth: 20`) is the label's text; anything else is left
    for validation to word."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def labels_as_text(value: Any) -> Any:
    """A `where:` map (factor -> a label or a list of labels) with every label as text;
    `where: {depth: 20}` means the label "20"."""
    if not isinstance(value, dict):
        return value
    return {factor: [_as_label(v) for v in labels] if isinstance(labels, list) else [_as_label(labels)]
            for factor, labels in value.items()}


class Plot(BaseModel):
    """A figure of the study's results (see docs/studies.md, "Reports and plots")."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    kind: PlotKind
    """What is drawn: `curve` (a metric per epoch, one line per level), `bar` (a trial number per
    level, the mean as a bar and each seed as a dot), `scatter` (one number against another, such
    as accuracy against parameters) or `probe` (a probe's results per level)."""
    y: str | None = None
    """The number drawn: `value` (the trial's value: its best epoch's metric), a metrics key
    (`val_top1`, `train_loss`...; `train_error`/`val_error` are 1 - top-1), or for `scatter`
    also `params` or `macs`. Default: the study's metric for `curve`, `value` otherwise."""
    x: str | None = None
    """`scatter`: the number on the x axis (`params`, `macs`, `value` or a metrics key; required).
    `bar`: a factor whose levels are the groups along the axis (bars of the levels of `by` in
    each). `curve`: `epoch` (default) or `step`."""
    by: Names | None = None
    """The factors whose levels get their own line, bar or colour (a name or a list). Default:
    every factor of the study (but `x`'s). Seeds are never a level: they are averaged."""
    at: Literal["best", "final"] = "best"
    """For a metrics key in `bar` and `scatter`: the trial's best epoch by that key (the lowest
    loss or error, the highest accuracy), or its last epoch."""
    label: Literal["params", "macs", "value"] | None = None
    """`bar`: write this number above each bar (parameter count, MACs or the mean value)."""
    probe: str | None = None
    """`probe`: the label of the probe in the study file's `probes:` list (required)."""
    show: str | None = None
    """`probe`: which part of the result: signal_std `activation` or `gradient` (default both);
    landscape `loss_range`, `grad_distance_max` or `beta` (default each there is); lesion
    `blocks` (error per deleted block) or `k` (error per number of random deletions);
    dense_weights and se_excitations a block name (default the first blocks)."""
    where: dict[str, Labels] = Field(default_factory=dict)
    """Only the trials whose levels are these: factor -> a label or a list of labels."""
    log_y: bool | None = None
    """A logarithmic y axis (default: on for signal_std, off otherwise)."""
    log_x: bool = False
    """A logarithmic x axis (parameter counts across sizes)."""
    title: str | None = None
    """The figure's title and the report's heading for it (default: made from kind, y and by)."""
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    """The file stem of the PNG and SVG (default: made from kind, y and by; made unique)."""
    size: list[float] = Field(default_factory=lambda: [6.0, 4.0], min_length=2, max_length=2)
    """Figure width and height in inches (a probe's grid of panels grows from it)."""

    @field_validator("by", mode="before")
    @classmethod
    def _one_factor(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("where", mode="before")
    @classmethod
    def _labels_as_text(cls, value: Any) -> Any:
        return labels_as_text(value)

    @field_validator("size")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if not all(0 < v <= 50 for v in value):
            raise ValueError("width and height are inches above 0 and at most 50")
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> "Plot":
        probe_only = {"probe": self.probe, "show": self.show}
        if self.kind == "probe":
            if not self.probe:
                raise ValueError("a probe plot names its probe: `probe: LABEL` (a label of `probes:`)")
            for key in ("y", "x", "label"):
                if getattr(self, key) is not None:
                    raise ValueError(f"`{key}` is not used by a probe plot (it draws the probe's own values)")
            return self
        for key, value in probe_only.items():
            if value is not None:
                raise ValueError(f"`{key}` belongs to probe plots (kind: probe), not to a {self.kind}")
        if self.kind == "scatter" and not self.x:
            raise ValueError("a scatter plot needs `x`: params, macs, value or a metrics key")
        if self.kind == "curve" and self.x not in (None, "epoch", "step"):
            raise ValueError(f"a curve's x is `epoch` or `step`, not {self.x!r}")
        if self.label is not None and self.kind != "bar":
            raise ValueError("`label` writes numbers above bars: it belongs to bar plots")
        if self.by and self.x in self.by and self.kind == "bar":
            raise ValueError(f"`{self.x}` is both `x` and in `by`: a factor is one or the other")
        return self

    def y_key(self, metric: str) -> str:
        """The number this plot draws, `metric` being the study's."""
        if self.y:
            return self.y
        return metric if self.kind == "curve" else "value"

    def default_title(self, metric: str) -> str:
        what = self.probe if self.kind == "probe" else self.y_key(metric)
        if self.kind == "scatter":
            what = f"{what} vs {self.x}"
        by = f" by {', '.join(self.by)}" if self.by else ""
        return f"{what}{by}"


def plot_names(plots: list[Plot], metric: str = "val_top1") -> list[str]:
    """The file stem of each plot: its `name`, or one made from kind, y and by; a stem taken
    already gets -2, -3... so no plot overwrites another."""
    names, taken = [], set()
    for plot in plots:
        stem = plot.name or re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{plot.kind}-{plot.default_title(metric)}").strip("-.")
        stem, n = stem or plot.kind, 2
        unique = stem
        while unique in taken:
            unique, n = f"{stem}-{n}", n + 1
        taken.add(unique)
        names.append(unique)
    return names


def duplicate_names(plots: list[Plot]) -> list[str]:
    """The `name`s given to more than one plot (a study file's mistake to report)."""
    seen, twice = set(), []
    for name in (plot.name for plot in plots if plot.name):
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    return twice
