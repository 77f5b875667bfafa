"""The Train tab: runs in TrainJob's thread, stop/resume, heartbeat, sessions kept apart."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "train"))
from train_support import TINY  # noqa: E402

from ui import designer as d  # noqa: E402
from ui import train_panel as tp  # noqa: E402

SMALL = dict(dataset="shapes", epochs=1, batch_size=32, lr=0.1, optimizer="sgd", device="cpu",
             train_size=256, val_size=64)


def test_form_defaults_come_from_the_spec_train_section():
    values = tp.form_defaults(TINY)
    assert (values["epochs"], values["batch_size"], values["lr"], values["train_size"]) == (4, 32, 0.1, 1024)
    assert values["dataset"] == "shapes" and values["device"] == "cpu"


def test_untrainable_spec_is_refused_with_a_message():
    message = tp.check_trainable(TINY.replace("op: gap", "op: nosuchop"), {}, "tiny.yaml")
    assert message and "nosuchop" in message and "Traceback" not in message


def test_one_epoch_run_finishes_with_metrics_and_two_sessions_do_not_mix(tmp_path):
    a, b = d.TrainJob(), d.TrainJob()
    runs_a, runs_b = [], []
    run_a = tp.start(a, runs_a, TINY, {}, SMALL, "tiny", tmp_path / "a")
    run_b = tp.start(b, runs_b, TINY, {"width": 4}, SMALL, "tiny", tmp_path / "b")
    a.join(120), b.join(120)
    tp.sync(a, run_a), tp.sync(b, run_b)
    assert run_a.state == run_b.state == "done", (a.error, b.error)
    assert [r["epoch"] for r in run_a.rows] == [1] and 0 <= run_a.rows[0]["val_top1"] <= 1
    assert a.weights_path == run_a.weights and run_a.weights.is_file()
    assert run_a.run_dir != run_b.run_dir and runs_a == [run_a] and runs_b == [run_b]
    pa = [e["params"] for e in a.events() if e["kind"] == "start"]
    pb = [e["params"] for e in b.events() if e["kind"] == "start"]
    assert pa != pb  # width 8 vs 4: each job saw only its own run


def test_stop_then_resume_continues(tmp_path):
    job, runs = d.TrainJob(), []
    settings = dict(SMALL, epochs=2)
    run = tp.start(job, runs, TINY, {}, settings, "tiny", tmp_path)
    while not any(e["kind"] == "step" for e in job.events()) and job.running:
        time.sleep(0.01)
    job.cancel()
    job.join(120)
    tp.sync(job, run)
    assert run.state == "stopped"
    steps = [e["step"] for e in job.events() if e["kind"] == "step"]
    tp.resume(job, run)
    job.join(120)
    tp.sync(job, run)
    assert run.state == "done", job.error
    resumed = [e for e in job.events() if e["kind"] == "step"]
    assert resumed[0]["step"] == steps[-1] + 1 and [r["epoch"] for r in run.rows] == [1, 2]


def test_heartbeat_expiry_stops_a_run(tmp_path):
    job, runs = d.TrainJob(), []
    job.heartbeat_timeout = 0.5
    run = tp.start(job, runs, TINY, {}, dict(SMALL, epochs=50), "tiny", tmp_path)
    job.join(60)
    tp.sync(job, run)
    assert not job.running and run.state == "stopped"


def test_app_trains_one_epoch_and_shows_metrics(app):
    app.session_state["yaml"] = TINY
    app.run()
    app.number_input(key="train_epochs").set_value(1)
    app.number_input(key="train_size").set_value(256)
    app.number_input(key="train_val").set_value(64)
    next(b for b in app.button if b.label == "Start").click()
    app.run()
    job = app.session_state["designer"].train
    job.join(120)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert job.state == "done", job.error
    texts = " ".join(m.value for m in app.markdown)
    assert "run 1" in texts and "done" in texts
    metrics = [df.value for df in app.dataframe if "val top-1" in df.value.columns]
    assert len(metrics) == 1 and list(metrics[0]["epoch"]) == [1]
    assert metrics[0]["val top-1"].iloc[0] == job.result.history[0]["val_top1"]
    assert metrics[0]["train loss"].iloc[0] == job.result.history[0]["train_loss"]
    # a classification run: none of the segmentation / detection columns (all null) it used to show
    assert not [c for c in metrics[0].columns if "miou" in c.lower() or "map" in c.lower() or "_" in c]
    history = next(df.value for df in app.dataframe if "run dir" in df.value.columns)
    assert list(history["measure"]) == ["val top-1"] and history["best"].iloc[0] == job.result.best["val_top1"]


def test_evaluate_confusion_matrix_agrees_with_the_run_and_history_overlays(tmp_path):
    job, runs = d.TrainJob(), []
    run = tp.start(job, runs, TINY, {}, SMALL, "tiny", tmp_path)
    job.join(120)
    tp.sync(job, run)
    result = tp.evaluate(run, limit=64)
    matrix = result["matrix"]
    assert sum(map(sum, matrix)) == 64 and len(matrix) == 6
    diagonal = sum(matrix[i][i] for i in range(len(matrix))) / 64
    assert diagonal == pytest.approx(result["accuracy"]) == pytest.approx(run.rows[-1]["val_top1"], abs=1e-6)
    assert len(result["samples"]) == 16
    rows = tp.history_rows(runs, [run.label])
    assert {(r["metric"], r["split"]) for r in rows} == {(m, s) for m in ("loss", "top-1") for s in ("train", "val")}
    assert tp.best_points(runs, [run.label])[0]["epoch"] == 1


def test_app_shows_history_and_evaluation_after_a_run(app):
    app.session_state["yaml"] = TINY
    app.run()
    for key, value in (("train_epochs", 1), ("train_size", 256), ("train_val", 64)):
        app.number_input(key=key).set_value(value)
    next(b for b in app.button if b.label == "Start").click()
    app.run()
    app.session_state["designer"].train.join(120)
    app.run()
    app.toggle(key="train_eval").set_value(True)
    app.toggle(key="train_log").set_value(True)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("accuracy" in c.value and "64 validation images" in c.value for c in app.caption)
    def walk(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    captions = [img.caption for n in walk(app._tree) if type(n).__name__ == "Image" for img in n.proto.imgs]
    assert len(captions) == 16 and all("(true " in c for c in captions)


def test_form_follows_the_spec_train_section(app):
    app.session_state["yaml"] = TINY
    app.run()
    assert app.number_input(key="train_batch").value == 32 and app.number_input(key="train_size").value == 1024
    app.session_state["yaml"] = TINY.replace("batch_size: 32", "batch_size: 16")
    app.run()
    assert app.number_input(key="train_batch").value == 16


def test_a_wrong_class_count_names_the_open_file_and_the_vars_field(tmp_path):
    """The trainer's advice `set vars.classes to 6 (--var classes=6)` reaches the page as the
    Vars field, located in the open file (not `<string>`), whether the text or the Vars panel
    holds the wrong count."""
    file = str(ROOT / "specs" / "tiny.yaml")
    job, runs = d.TrainJob(), []
    run = tp.start(job, runs, TINY.replace("classes: 6", "classes: 10"), {}, SMALL, "tiny", tmp_path / "a", file)
    job.join(120)
    tp.sync(job, run)
    assert run.state == "failed" and isinstance(job.error, d.SpecError), job.error
    line = TINY.splitlines().index("vars: {classes: 6, width: 8}") + 1
    assert run.message.startswith(f"specs/tiny.yaml:{line}:"), run.message
    assert "set the `classes` field under Vars to 6" in run.message
    assert "--var" not in run.message and "<string>" not in run.message
    job, runs = d.TrainJob(), []
    run = tp.start(job, runs, TINY, {"classes": 10}, SMALL, "tiny", tmp_path / "b", file)
    job.join(120)
    tp.sync(job, run)
    assert run.state == "failed" and "`classes` field under Vars" in run.message and "--var" not in run.message


def test_start_refusal_names_the_file_or_untitled():
    broken = TINY.replace("op: gap", "op: nosuchop")
    line = broken.splitlines().index("  - {op: nosuchop}") + 1
    assert tp.check_trainable(broken, {}, str(ROOT / "specs" / "tiny.yaml")).startswith(f"specs/tiny.yaml:{line}:")
    assert tp.check_trainable(broken, {}, "").startswith(f"untitled.yaml:{line}:")
    assert tp.check_trainable(TINY, {}, "") is None


SEGMENTATION_ROWS = [
    {"epoch": e, "step": 8 * e, "lr": 0.1, "train_loss": 1.5 / e, "train_top1": 0.5 + e / 10, "train_top5": None,
     "val_loss": 1.6 / e, "val_top1": 0.45 + e / 10, "val_top5": None, "images_per_s": 100.0, "seconds": 2.0,
     "val_miou": miou, "val_map50": None, "val_map": None, "val_mask_map50": None, "val_mask_map": None}
    for e, miou in ((1, 0.20), (2, 0.35), (3, 0.30))]
"""Rows as a segmentation run writes them (every column; null where the task has none)."""


def test_a_segmentation_run_shows_pixel_accuracy_and_miou_by_name():
    run = tp.Run("run 1", "unet", {}, Path("/nonexistent"), rows=SEGMENTATION_ROWS, progress={"task": "segmentation"})
    table = run.table()
    assert list(table[0]) == ["epoch", "step", "lr", "train loss", "train pixel acc", "val loss", "val pixel acc",
                              "val mIoU", "images/s", "seconds"]
    assert [r["val pixel acc"] for r in table] == [r["val_top1"] for r in SEGMENTATION_ROWS]
    assert run.best()["epoch"] == 2  # by mIoU (0.35), as TrainResult.best; pixel accuracy peaks at 3
    rows = tp.history_rows([run], [run.label])
    assert {(r["metric"], r["split"]) for r in rows} == {
        ("loss", "train"), ("loss", "val"), ("pixel acc", "train"), ("pixel acc", "val"), ("mIoU", "val")}
    assert tp.best_points([run], [run.label]) == [{"run": "run 1", "epoch": 2, "value": 0.35, "metric": "mIoU"}]
    assert (tp.summary(run)["measure"], tp.summary(run)["best"], tp.summary(run)["epochs done"]) == ("val mIoU", 0.35, 3)


def test_a_setting_the_form_passed_is_named_by_its_field(tmp_path):
    job, runs = d.TrainJob(), []
    run = tp.start(job, runs, TINY, {}, dict(SMALL, batch_size=512, train_size=64), "tiny", tmp_path)
    job.join(120)
    tp.sync(job, run)
    assert run.state == "failed"
    assert run.message == "Train form, Batch size: batch_size 512 is larger than the training set (64 images)"


# -- sequence specs: the regression and the row-by-row classifier ---------------------------------

def _run_spec(tmp_path, name: str, settings: dict) -> "tp.Run":
    text = (ROOT / "specs" / f"{name}.yaml").read_text()
    job, runs = d.TrainJob(), []
    run = tp.start(job, runs, text, {}, settings, name, tmp_path)
    job.join(300)
    tp.sync(job, run)
    assert run.state == "done", job.error
    return run


def test_a_regression_run_shows_its_loss_and_picks_the_lowest(tmp_path):
    settings = tp.form_defaults((ROOT / "specs" / "lstm_adding.yaml").read_text())
    assert settings["dataset"] == "adding"  # the form follows the spec's train: section
    settings.update(epochs=2, batch_size=16, train_size=32, val_size=16, device="cpu")
    run = _run_spec(tmp_path, "lstm_adding", settings)
    assert run.task == "regression" and run.measure == "val_loss"
    assert list(run.table()[0]) == ["epoch", "step", "lr", "train loss", "val loss", "images/s", "seconds"]
    assert run.best() == min(run.rows, key=lambda r: r["val_loss"])
    assert tp.summary(run)["measure"] == "val loss"
    assert {r["metric"] for r in tp.history_rows([run], [run.label])} == {"loss"}


def test_a_row_by_row_classifier_is_evaluated_on_its_sequences(tmp_path):
    settings = dict(SMALL, train_size=64, val_size=32, epochs=1)
    run = _run_spec(tmp_path, "gru_shapes_rows", settings)
    result = tp.evaluate(run, limit=32)
    assert len(result["matrix"]) == 6 and sum(map(sum, result["matrix"])) == 32
    assert result["accuracy"] == pytest.approx(run.rows[-1]["val_top1"], abs=1e-6)
    assert result["samples"][0]["image"].shape == (32, 96)  # the sequence, drawn as it is read
