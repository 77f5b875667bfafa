"""The `plots:` entry model and what the drawings draw: lines and bars hold the means over
seeds that the test computes by hand, probe results written in other shapes still draw or
give a note, and docs/studies.md's example `plots:` list is valid."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydantic
import pytest
import yaml

from compiler.study.cells import group, natural_key, selected, trial_value
from compiler.study.figures import PlotInputs
from compiler.study.drawing import draw_plots
from compiler.study.metric_plots import draw_metric_plot
from compiler.study.plots import Plot, duplicate_names, plot_names
from compiler.study.probe_plots import draw_probe_plot
from compiler.study.probe_values import probe_data
from compiler.study.records import TrialRecord
from report_records import TRAIN_LOSS, VALUES, make_records, probes_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "studies.md"
SMALL = [2.4, 1.8]


def test_an_entry_is_checked_against_its_kind():
    with pytest.raises(pydantic.ValidationError, match="names its probe"):
        Plot(kind="probe")
    with pytest.raises(pydantic.ValidationError, match="needs `x`"):
        Plot(kind="scatter")
    with pytest.raises(pydantic.ValidationError, match="belongs to probe plots"):
        Plot(kind="bar", probe="lesion")
    with pytest.raises(pydantic.ValidationError, match="not used by a probe plot"):
        Plot(kind="probe", probe="lesion", y="val_top1")
    with pytest.raises(pydantic.ValidationError, match="extra"):
        Plot(kind="bar", colour="red")
    with pytest.raises(pydantic.ValidationError):
        Plot(kind="bar", name="../escape")  # a file stem, never a path
    plot = Plot(kind="bar", by="depth", where={"depth": 20, "norm": ["batch", 1]})
    assert plot.by == ["depth"] and plot.where == {"depth": ["20"], "norm": ["batch", "1"]}


def test_every_field_has_its_docstring_in_the_json_schema():
    properties = Plot.model_json_schema()["properties"]
    assert set(properties) >= {"kind", "y", "x", "by", "at", "label", "probe", "show", "where", "title", "name"}
    assert all(p.get("description") for p in properties.values()), [k for k, p in properties.items()
                                                                    if not p.get("description")]


def test_names_are_unique_and_duplicated_names_are_reported():
    plots = [Plot(kind="bar"), Plot(kind="bar"), Plot(kind="bar", name="x"), Plot(kind="curve", name="x")]
    assert plot_names(plots) == ["bar-value", "bar-value-2", "x", "x-2"]
    assert duplicate_names(plots) == ["x"]


def test_levels_sort_as_numbers_and_error_is_one_minus_top1():
    assert sorted(["plain-110", "plain-20", "plain-56"], key=natural_key) == ["plain-20", "plain-56", "plain-110"]
    record = TrialRecord(study="s", trial=0, key="k", levels={}, seed=0, state="complete",
                         history=[{"train_loss": 2.0, "train_top1": 0.25}, {"train_loss": 1.0, "train_top1": 0.5}])
    assert trial_value(record, "train_error") == pytest.approx(0.5)  # best: the lowest error
    assert trial_value(record, "train_loss", at="final") == 1.0
    assert trial_value(record, "train_top1", at="best") == 0.5


def _inputs(records=None) -> PlotInputs:
    return PlotInputs(records=records or make_records(), order={"depth": ["20", "56"]})


def test_a_curve_is_the_mean_over_seeds_with_a_band_from_min_to_max():
    drawing = draw_metric_plot(Plot(kind="curve", y="train_loss", size=SMALL), _inputs(), "t")
    ax = drawing.figure.axes[0]
    lines = {line.get_label().split(" ")[0]: line for line in ax.lines}
    for depth in ("20", "56"):
        expected = [(TRAIN_LOSS[(depth, 0)][e] + TRAIN_LOSS[(depth, 1)][e]) / 2 for e in (0, 1)]
        assert list(lines[depth].get_xdata()) == [1, 2]
        assert np.allclose(lines[depth].get_ydata(), expected)
    band = ax.collections[0].get_paths()[0].vertices[:, 1]  # depth 20: 1.6..2.0 at epoch 1, 0.8..1.0 at 2
    assert min(band) == pytest.approx(0.8) and max(band) == pytest.approx(2.0)


def test_bars_are_the_mean_value_per_level_with_a_dot_per_seed():
    drawing = draw_metric_plot(Plot(kind="bar", size=SMALL), _inputs(), "t")
    ax = drawing.figure.axes[0]
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx([(VALUES[("20", 0)] + VALUES[("20", 1)]) / 2,
                                     (VALUES[("56", 0)] + VALUES[("56", 1)]) / 2])
    dots = sorted(y for collection in ax.collections for y in collection.get_offsets()[:, 1])
    assert dots == pytest.approx(sorted(VALUES.values()))


def test_grouped_bars_put_a_bar_of_each_level_of_by_at_each_level_of_x():
    records = [TrialRecord(study="s", trial=i, key=str(i), levels={"kernel": k, "depth": d}, seed=0,
                           state="complete", value=v)
               for i, (k, d, v) in enumerate([("3x3", "8", 0.5), ("5x5", "8", 0.6), ("3x3", "16", 0.7)])]
    drawing = draw_metric_plot(Plot(kind="bar", x="depth", by=["kernel"], size=SMALL), _inputs(records), "t")
    ax = drawing.figure.axes[0]
    bars = sorted((round(p.get_x() + p.get_width() / 2, 3), p.get_height()) for p in ax.patches)
    assert [h for _, h in bars] == pytest.approx([0.5, 0.6, 0.7])  # depth 8: 3x3, 5x5; depth 16: 3x3
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8", "16"]


def test_probe_results_in_other_spellings_still_draw():
    records = make_records()
    for record in records[:4]:
        record.probes = {"lesion_single": {"intact_error": 0.1, "blocks": ["a", "b", "c"], "strides": [1, 2, 1],
                                           "errors": [0.2, 0.4, 0.3]}}
    drawing = draw_probe_plot(Plot(kind="probe", probe="lesion_single", size=SMALL), _inputs(records), "t")
    means = {line.get_label().split(" ")[0]: list(line.get_ydata()) for line in drawing.figure.axes[0].lines
             if not line.get_label().endswith("intact")}
    assert means["20"] == pytest.approx([0.2, 0.4, 0.3]) and not drawing.notes


def test_a_result_of_an_unexpected_shape_is_a_note(tmp_path):
    records = make_records()
    for record in records[:4]:
        record.probes = {"signal_std": {"activation_std": "not a list"}}
    drawn = draw_plots([Plot(kind="probe", probe="signal_std", size=SMALL)], _inputs(records), tmp_path)
    assert drawn[0].notes and "signal_std" in drawn[0].notes[0] and drawn[0].png.is_file()


def test_a_level_without_the_probe_is_named_in_a_note():
    records = make_records()
    records[2].probes = records[3].probes = {}  # depth 56 recorded nothing
    drawing = draw_probe_plot(Plot(kind="probe", probe="landscape", size=SMALL), _inputs(records), "t")
    assert drawing.notes == ["56: its trials did not record probe 'landscape'"]


def test_the_docs_example_plots_are_valid_entries():
    text = DOC.read_text()
    start = text.index("## Reports and plots")
    end = re.search(r"^## ", text[start + 3:], re.M)
    section = text[start: start + 3 + end.start()] if end else text[start:]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    entries = [entry for block in blocks for entry in (yaml.safe_load(block) or {}).get("plots", [])]
    assert len(entries) >= 6
    plots = [Plot.model_validate(entry) for entry in entries]
    assert {plot.kind for plot in plots} == {"curve", "bar", "scatter", "probe"}


def test_where_and_by_can_name_the_seed():
    records = make_records()
    seeds = sorted({r.seed for r in records if r.state == "complete"})
    first = selected(records, {"seed": [str(seeds[0])]})
    assert first and {r.seed for r in first} == {seeds[0]}
    assert [g.levels["seed"] for g in group(selected(records), ["seed"])] == [str(s) for s in seeds]


def test_a_probe_plot_draws_what_a_failed_trial_measured_before_it_failed():
    records = make_records()
    diverged = next(r for r in records if r.state == "failed")
    diverged.probes = probes_of("56", diverged.seed)  # measured at init, before the loss became nan
    data = probe_data(Plot(kind="probe", probe="signal_std", by=["depth"]), _inputs(records))
    fifty_six = next(level for level in data.levels if level.label == "56")
    assert diverged.probes["signal_std"] in fifty_six.results
    assert len(fifty_six.results) == 1 + sum(1 for r in records if r.state == "complete" and r.levels["depth"] == "56")


def test_se_excitations_over_several_seeds_say_the_channels_differ_between_seeds():
    plot = Plot(kind="probe", probe="se_excitations", by=["depth"], size=SMALL)
    assert any("averaged over seeds" in note for note in draw_probe_plot(plot, _inputs(), "t").notes)
    one_seed = Plot(kind="probe", probe="se_excitations", by=["depth"], where={"seed": [0]}, size=SMALL)
    assert not any("averaged over seeds" in note for note in draw_probe_plot(one_seed, _inputs(), "t").notes)


def test_zeros_on_a_log_axis_are_named_in_a_note():
    records = make_records()
    for record in records:
        if record.state == "complete" and record.levels["depth"] == "20":
            record.probes["signal_std"]["activation_std"] = [0.0, 0.0, 0.0]  # a zero-initialised net
    drawing = draw_probe_plot(Plot(kind="probe", probe="signal_std", by=["depth"], size=SMALL), _inputs(records), "t")
    assert any(note.startswith("20: activation_std is 0") for note in drawing.notes), drawing.notes
    assert not any(note.startswith("56:") for note in drawing.notes)
