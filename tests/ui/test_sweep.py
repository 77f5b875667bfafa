"""The Sweep tab: ui/sweep.py's logic (values, worker, rows) and the tab driven with AppTest."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "train"))
from train_support import TINY  # noqa: E402

import compiler  # noqa: E402
from ui import designer as d  # noqa: E402
from ui import sweep as sw  # noqa: E402

# 1 epoch on 64 + 32 images of 16x16: about a second per value
SMALL = dict(epochs=1, train_size=64, val_size=32, batch_size=32, dataset="shapes", lr=0.1, optimizer="sgd",
             device="cpu")


def params_at(**vars) -> int:
    return compiler.analyze(compiler.load(TINY, vars=vars)).params


def macs_at(**vars) -> int:
    return compiler.analyze(compiler.load(TINY, vars=vars)).macs


# -- values ----------------------------------------------------------------------------------------------


def test_parse_values_reads_numbers_and_refuses_the_rest():
    assert sw.parse_values("8, 16 32") == [8, 16, 32]
    assert sw.parse_values("0.5;1.0") == [0.5, 1.0] and isinstance(sw.parse_values("2")[0], int)
    for bad, words in (("", "at least one"), ("8, wide", "'wide' is not a number"), ("8, 8", "8 appears twice"),
                       ("true", "not a number"), (" ".join(map(str, range(1, 14))), "at most 12")):
        with pytest.raises(sw.SweepError, match=words):
            sw.parse_values(bad)


def test_suggested_values_are_half_self_double_and_parse_back():
    assert sw.suggest_values(16) == "8, 16, 32"
    assert sw.suggest_values(1) == "1, 2, 3"
    assert sw.suggest_values(0.25) == "0.125, 0.25, 0.5"
    assert sw.parse_values(sw.suggest_values(16)) == [8, 16, 32]


def test_only_numeric_vars_are_sweepable_and_a_class_count_is_not_proposed_first():
    assert sw.sweepable({"width": 8, "drop": 0.1, "flag": True, "name": "x", "classes": 6}) == \
        ["width", "drop", "classes"]
    assert sw.default_var(["classes", "width"]) == "width" and sw.default_var(["classes"]) == "classes"


def test_settings_come_from_the_train_section_with_the_tab_s_on_top():
    settings = sw.settings_for(TINY, {"epochs": 1, "train_size": 64, "val_size": 32, "batch_size": 16})
    # TINY's train: section says lr 0.1, device cpu, batch 32, epochs 4 (overridden here)
    assert settings == dict(dataset="shapes", lr=0.1, optimizer="sgd", device="cpu", batch_size=16, epochs=1,
                            train_size=64, val_size=32)


# -- the worker -------------------------------------------------------------------------------------------


def test_sweep_trains_each_value_and_a_bad_value_fails_in_its_row(tmp_path):
    job = d.TrainJob()
    sweep = sw.Sweep("width", [4, 0, 8], SMALL, TINY, file="tiny.yaml")
    sw.start(job, sweep, tmp_path)
    job.join(120)
    assert job.error is None and sweep.finished
    good, bad, wide = sweep.points
    assert [p.state for p in sweep.points] == ["done", "failed", "done"]
    assert (good.params, wide.params) == (params_at(width=4), params_at(width=8))
    assert (good.macs, wide.macs) == (macs_at(width=4), macs_at(width=8))
    # the width-0 conv is refused by the spec, located in the text (the line of `out: $width`)
    line = TINY.splitlines().index("  - {op: conv, out: $width}") + 1
    assert bad.error.startswith(f"line {line}, col") and "out" in bad.error and bad.params is None
    for p in (good, wide):
        history = [r for r in map(__import__("json").loads, (p.run_dir / "metrics.jsonl").read_text().splitlines())]
        assert p.best == max(r["val_top1"] for r in history) and 0 <= p.best <= 1 and p.best_epoch == 1
        assert p.seconds > 0
    rows = sw.table_rows(sweep)
    assert [r["width"] for r in rows] == [4, 0, 8] and rows[1]["error"] == bad.error
    assert rows[0]["best val acc %"] == round(100 * good.best, 2)
    plot = sw.plot_rows(sweep)
    assert sorted((r["value"], r["axis"], r["cost"]) for r in plot) == sorted(
        [("4", "parameters", good.params), ("4", "MACs", good.macs),
         ("8", "parameters", wide.params), ("8", "MACs", wide.macs)])


def test_stop_ends_the_running_value_and_skips_the_rest(tmp_path):
    job = d.TrainJob()
    sweep = sw.Sweep("width", [4, 8, 16], dict(SMALL, epochs=50, train_size=256), TINY)
    sw.start(job, sweep, tmp_path)
    deadline = time.time() + 60
    while not any(e["kind"] == "step" for e in job.events()) and time.time() < deadline:
        time.sleep(0.01)
    job.cancel()
    job.join(60)
    assert not job.running and job.error is None
    # the values train in the order the study's grid hands them out: the one whose steps were
    # reported is stopped, the two others never started
    running = next(e["index"] for e in job.events() if e["kind"] == "step")
    assert [p.state for p in sweep.points] == ["stopped" if i == running else "skipped" for i in range(3)]
    assert sweep.points[running].best is None and sweep.points[running].seconds > 0
    # every value is measured before the study starts
    assert [p.params for p in sweep.points] == [params_at(width=4), params_at(width=8), params_at(width=16)]
    fraction, text = sw.progress(sweep, job.events())
    assert fraction == 1.0 and text.startswith("3/3 values")


def test_progress_counts_values_and_the_running_one_s_steps():
    sweep = sw.Sweep("width", [4, 8], SMALL, TINY)
    sweep.points[0].state, sweep.points[1].state = "done", "running"
    events = [{"kind": "step", "index": 1, "epoch": 1, "epochs": 2, "step": 1, "steps": 4}]
    fraction, text = sw.progress(sweep, events)
    assert fraction == pytest.approx(0.5 + 0.5 * (1 / 8))
    assert text == "1/2 values; width=8: epoch 1/2, step 1/4"


# -- the tab ---------------------------------------------------------------------------------------------


def test_app_two_value_sweep_fills_its_table(app):
    app.session_state["yaml"] = TINY
    app.run()
    assert "Sweep" in [t.label for t in app.tabs]
    assert app.selectbox(key="sweep_var").value == "width"  # TINY's vars: {classes: 6, width: 8}
    assert app.text_input(key="sweep_values").value == "4, 8, 16"  # proposed around width 8
    app.text_input(key="sweep_values").input("4, 8")
    for key, value in (("sweep_epochs", 1), ("sweep_train", 64), ("sweep_val", 32)):
        app.number_input(key=key).set_value(value)
    next(b for b in app.button if b.label == "Start sweep").click()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    job = app.session_state["designer"].sweep
    job.heartbeat_timeout = 600  # no page beats while the test waits
    job.join(120)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    tables = [df.value for df in app.dataframe if "width" in df.value.columns]
    assert len(tables) == 1
    table = tables[0]
    assert list(table["width"]) == [4, 8]
    assert list(table["state"]) == ["done", "done"], list(table["error"])
    assert list(table["params"]) == [params_at(width=4), params_at(width=8)]
    assert table["params"].iloc[0] != table["params"].iloc[1]
    assert list(table["MACs"]) == [macs_at(width=4), macs_at(width=8)]
    assert table["best val acc %"].between(0, 100).all()
    assert any("sweep 1" in m.value and "done" in m.value for m in app.markdown)


def test_a_settings_problem_fails_each_value_with_its_message(tmp_path):
    job = d.TrainJob()
    sweep = sw.Sweep("width", [4], dict(SMALL, batch_size=128), TINY, file="tiny.yaml")
    sw.start(job, sweep, tmp_path)
    job.join(60)
    point = sweep.points[0]
    assert point.state == "failed" and point.params == params_at(width=4)
    assert point.error == "settings: batch_size: batch_size 128 is larger than the training set (train_size 64)"


def test_the_measure_follows_the_task_as_train_result_does():
    assert sw.metric_of([{"val_top1": 0.5, "val_miou": None}]) == "val_top1"
    assert sw.metric_of([{"val_top1": 0.5, "val_miou": 0.3}]) == "val_miou"
    assert sw.metric_of([{"val_top1": None, "val_map50": 0.2, "val_mask_map50": 0.1}]) == "val_mask_map50"
    sweep = sw.Sweep("width", [4], SMALL, TINY)
    sweep.metric = "val_map50"
    assert sw.column(sweep) == "best val mAP@0.5 %" and "best val mAP@0.5 %" in sw.table_rows(sweep)[0]


def test_app_stop_button_stops_the_sweep(app):
    app.session_state["yaml"] = TINY
    app.run()
    app.text_input(key="sweep_values").input("4, 8")
    for key, value in (("sweep_epochs", 50), ("sweep_train", 256), ("sweep_val", 32)):
        app.number_input(key=key).set_value(value)
    next(b for b in app.button if b.label == "Start sweep").click()
    app.run()
    job = app.session_state["designer"].sweep
    job.heartbeat_timeout = 600
    assert job.running
    deadline = time.time() + 60
    while not any(e["kind"] == "step" for e in job.events()) and time.time() < deadline:
        time.sleep(0.01)  # the first value is training
    app.button(key="sweep_stop").click()
    app.run()
    job.join(60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    running = next(e["index"] for e in job.events() if e["kind"] == "step")  # the grid's first value
    assert [p.state for p in app.session_state["sweep"].points] == ["stopped" if i == running else "skipped"
                                                                    for i in range(2)]
    assert any("sweep 1" in m.value and "stopped" in m.value for m in app.markdown)
    assert not [b for b in app.button if b.key == "sweep_stop"]


def test_a_sweep_whose_page_stopped_beating_stops(tmp_path):
    job = d.TrainJob()
    job.heartbeat_timeout = 2.0  # the browser tab was closed: no beats after the start
    sweep = sw.Sweep("width", [4, 8], dict(SMALL, epochs=50, train_size=256), TINY)
    sw.start(job, sweep, tmp_path)
    job.join(60)
    assert not job.running and sorted(p.state for p in sweep.points) == ["skipped", "stopped"]


# -- the sweep as a study ---------------------------------------------------------------------------------


def test_the_sweep_s_study_file_has_one_factor_a_level_per_value_and_the_sweep_s_settings(tmp_path):
    from compiler.study import load_study
    from ui import sweep_study as ss

    sweep = sw.Sweep("width", [4, 8], SMALL, TINY, overrides={"classes": 6}, file="tiny.yaml")
    study = load_study(ss.write_study(sweep, [4, 8], tmp_path), runs=tmp_path)
    assert study.factors == {"width": ["4", "8"]}
    assert [(c.levels, c.seed) for c in study.cells] == [({"width": "4"}, 0), ({"width": "8"}, 0)]
    assert [compiler.analyze(c.spec).params for c in study.cells] == [params_at(width=4), params_at(width=8)]
    assert study.document.train == SMALL
    assert (tmp_path / "spec.yaml").read_text() == TINY  # no extends: the text as it is


def test_a_relative_extends_is_made_absolute_so_the_written_spec_finds_its_parent(tmp_path):
    from ui import sweep_study as ss

    file = ROOT / "specs" / "resnet18.yaml"
    text = file.read_text()
    written = ss.spec_text(text, str(file))
    assert f"extends: {(ROOT / 'specs' / 'resnet50.yaml').as_posix()}" in written.splitlines()
    assert written.replace(f"{(ROOT / 'specs').as_posix()}/", "") == text  # nothing else changed
    (tmp_path / "spec.yaml").write_text(written)
    assert compiler.analyze(compiler.load(tmp_path / "spec.yaml")).params == compiler.analyze(
        compiler.load(file)).params
    assert ss.spec_text("extends: /abs/p.yaml\n", str(file)) == "extends: /abs/p.yaml\n"


def test_a_study_s_step_progress_reads_as_the_sweep_s_epoch_and_step():
    from ui import sweep_study as ss

    # 2 epochs of 4 steps: global step 6 is step 2 of epoch 2
    event = ss.step_event({"cell": "width=4,seed=0", "total": 8, "epoch": 2, "global_step": 6, "loss": 1.5}, 2)
    assert event == {"epoch": 2, "epochs": 2, "steps": 4, "step": 2, "loss": 1.5}


def test_a_record_s_located_error_is_worded_like_the_tab_s_other_errors(tmp_path):
    spec = tmp_path / "spec.yaml"
    error = f"<config>:1:1: batch_size: too big\n{spec}:9:20: nodes[0].out: must be > 0\nother.yaml:3:1: x"
    assert sw.describe_text(error, spec) == ("settings: batch_size: too big; line 9, col 20: nodes[0].out: must be > 0; "
                                             "other.yaml:3:1: x")
