"""The report draws what the lesion, dense_weights, se_excitations and class_maps probes write:
their real results on tiny nets (strict JSON), put into hand-made trial records, give plots
without notes."""

from __future__ import annotations

import json

import pytest
import torch
from report_records import make_records
from test_probes_b import CAM, DENSE, RESIDUAL, SE, context

from compiler.study.figures import PlotInputs
from compiler.study.plots import Plot
from compiler.study.probe_plots import draw_probe_plot
from compiler.study.probes import probe_class

SMALL = [2.4, 1.8]
CASES = {  # probe -> (spec, input shape, classes, options, plots' `show`)
    "lesion": (RESIDUAL, (3, 8, 8), 3, {"mode": "both", "k": [1, 2]}, ["blocks", "k"]),
    "dense_weights": (DENSE, (3, 6, 6), 3, {}, [None]),
    "se_excitations": (SE, (4, 5, 5), 4, {}, [None]),
    "class_maps": (CAM, (3, 5, 5), 3, {}, [None]),
}


@pytest.mark.parametrize("probe", list(CASES))
def test_the_report_draws_the_probes_results(probe):
    text, shape, classes, options, shows = CASES[probe]
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(12, *shape, generator=generator)
    target = torch.arange(12) % classes
    result = probe_class(probe)(**options).measure(context(text, inputs, target, classes=classes))
    assert json.loads(json.dumps(result, allow_nan=False)) == result  # strict JSON, as Optuna stores it
    records = make_records()
    for record in records[:4]:
        record.probes = {probe: result}
    for show in shows:
        one_seed = {"seed": [0]} if probe == "se_excitations" else {}  # channels differ between seeds
        drawing = draw_probe_plot(Plot(kind="probe", probe=probe, show=show, size=SMALL, where=one_seed),
                                  PlotInputs(records=records, order={"depth": ["20", "56"]}), "t")
        assert drawing.figure.axes and not drawing.notes
