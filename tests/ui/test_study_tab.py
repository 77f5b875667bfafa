"""The Study tab: ui/study.py's logic (gallery, located problems, cell rows from records, a
stopped study that continues) and the tab driven with AppTest on a 2-level study of a tiny spec."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "train"))
sys.path.insert(0, str(ROOT / "tests" / "study"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_records import VALUES, make_records  # noqa: E402
from study_support import PLOT_TITLE, STUDY, write_study  # noqa: E402
from train_support import TINY  # noqa: E402

import compiler  # noqa: E402
import compiler.study  # noqa: E402
from ui import designer as d  # noqa: E402
from ui import study as su  # noqa: E402



@pytest.fixture
def study_file(tmp_path) -> Path:
    return write_study(tmp_path)


def grid_study(factors: dict, cells: list) -> SimpleNamespace:
    """What ui/study.py reads of a compiler.study Study: factors, cells and a grid search."""
    return SimpleNamespace(factors=factors, cells=cells, document=SimpleNamespace(search=SimpleNamespace(kind="grid")))


def params_at(**vars) -> int:
    return compiler.analyze(compiler.load(TINY, vars=vars)).params


# -- the logic ---------------------------------------------------------------------------------------------


def test_gallery_lists_the_yaml_files_of_a_folder_and_an_empty_one_as_empty(tmp_path):
    assert su.gallery(tmp_path / "missing") == []
    assert su.gallery(tmp_path) == []
    for name in ("b.yaml", "a.yaml", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert su.gallery(tmp_path) == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]


def test_a_study_file_that_does_not_load_lists_its_problems_located_and_quoted(tmp_path, study_file):
    study_file.write_text(STUDY.replace("blockgraph_study: 1", "blockgraph_study: 7"))
    opened = su.open_study(str(study_file), quick=False, runs=str(tmp_path / "runs"))
    assert opened.study is None and opened.problems
    first = opened.problems[0]
    assert first.title.startswith("line 1, col ") and "blockgraph_study" in first.title
    assert ">1 | blockgraph_study: 7" in first.quote and "^" in first.quote
    missing = su.open_study(str(tmp_path / "nope.yaml"), quick=False, runs="runs")
    assert missing.study is None and missing.problems[0].title.endswith("nope.yaml: no such file")


def test_cell_rows_take_each_cell_s_state_and_value_from_its_record():
    # the hand-made records: depth 20 and 56 x seeds 0, 1 complete; depth=56,seed=2 failed,
    # depth=110,seed=0 refused; the cell depth=110,seed=1 has no record: pending
    cells = [SimpleNamespace(key=f"depth={depth},seed={seed}", levels={"depth": depth}, seed=seed)
             for depth, seed in [*VALUES, ("56", 2), ("110", 0), ("110", 1)]]
    study = grid_study({"depth": ["20", "56", "110"]}, cells)
    rows = su.cell_rows(study, make_records())
    assert [(r["depth"], r["seed"], r["state"]) for r in rows] == [
        ("20", 0, "complete"), ("20", 1, "complete"), ("56", 0, "complete"), ("56", 1, "complete"),
        ("56", 2, "failed"), ("110", 0, "refused"), ("110", 1, "pending")]
    assert [r["value"] for r in rows[:4]] == list(VALUES.values())
    assert rows[0]["params"] == 270_000 and rows[6]["value"] is None and rows[6]["error"] == ""
    assert "diverged" in rows[4]["error"] and "unknown op" in rows[5]["error"]
    done = su.progress(study, make_records())
    assert (done.finished, done.total, done.failed) == (6, 7, 2)
    assert done.text == "6 of 7 trials finished (2 failed or refused)"
    assert done.fraction == pytest.approx(6 / 7)


def test_a_factor_named_like_a_column_gets_its_own_column():
    cells = [SimpleNamespace(key="seed=a,seed=0", levels={"seed": "a"}, seed=0)]
    rows = su.cell_rows(grid_study({"seed": ["a"]}, cells), [])
    assert rows == [{"level:seed": "a", "seed": 0, "state": "pending", "value": None, "params": None,
                     "time (s)": None, "error": ""}]


def test_a_stopped_study_keeps_its_trial_and_continues_with_the_other(tmp_path, study_file):
    study = su.open_study(str(study_file), quick=False, runs=str(tmp_path / "runs")).study
    job = d.TrainJob()
    job.report = lambda **event: job.cancel()  # Stop pressed as the first trial ends
    su.run_in_job(study, job=job)
    first = su.records_of(study)
    assert len(first) == 1 and first[0].state == "complete"
    assert su.progress(study, first).text == "1 of 2 trials finished"
    assert su.report_page(study) is not None  # a stopped study's report: what it kept
    job = d.TrainJob()
    su.run_in_job(study, job=job)
    records = su.records_of(study)
    assert sorted(r.key for r in records) == sorted(c.key for c in study.cells)
    assert [r for r in records if r.key == first[0].key][0].trial == first[0].trial  # not run again
    rows = su.cell_rows(study, records)
    assert [r["width"] for r in rows] == ["4", "8"] and [r["state"] for r in rows] == ["complete", "complete"]
    assert [r["params"] for r in rows] == [params_at(width=4), params_at(width=8)]
    for record in records:  # the value is the best epoch's val_top1 of the trial's history
        assert record.value == max(row["val_top1"] for row in record.history)
    plots = su.report_plots(study, records)
    assert [(p.title, p.png.name) for p in plots] == [(PLOT_TITLE, "accuracy.png")]
    assert plots[0].png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stop_interrupts_the_trial_in_progress_and_keeps_no_record_of_it(tmp_path):
    long = STUDY.replace("epochs: 1, train_size: 64", "epochs: 50, train_size: 512")
    study = su.open_study(str(write_study(tmp_path, long)), quick=False, runs=str(tmp_path / "runs")).study
    job = d.TrainJob()
    su.start(job, study)
    deadline = time.time() + 60
    while not (study.out_dir / "trials").is_dir() and time.time() < deadline:
        time.sleep(0.05)
    job.cancel()
    job.join(120)
    assert not job.running and job.state == "stopped"
    steps = [e for e in job.events() if e["kind"] == "step"]
    assert all(e["key"] in {c.key for c in study.cells} and e["steps"] == 50 * 16 for e in steps)
    assert su.records_of(study) == [] and su.progress(study, []).text == "0 of 2 trials finished"
    assert su.report_page(study) is None  # nothing finished: nothing to report


def test_the_trial_in_training_is_the_last_step_unless_a_trial_ended_after_it():
    step = {"kind": "step", "key": "width=8,seed=0", "step": 12, "steps": 40}
    assert su.training_now([]) is None
    assert su.training_now([step]) == "width=8,seed=0: step 12 of 40"
    assert su.training_now([step, {"kind": "trial", "key": "width=8,seed=0", "state": "complete"}]) is None
    assert su.training_now([step, {"kind": "report", "error": "x"}]) == "width=8,seed=0: step 12 of 40"
    assert su.report_error([{"kind": "report", "error": "OSError: disk full"}]) == "OSError: disk full"
    assert su.report_error([step]) is None


# -- the tab ---------------------------------------------------------------------------------------------


def test_app_runs_a_two_level_study_and_shows_its_table_and_plot(app, tmp_path, study_file):
    assert "Study" in [t.label for t in app.tabs]
    app.text_input(key="study_path").input(str(study_file))
    app.text_input(key="study_runs").input(str(tmp_path / "runs"))
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    table = next(df.value for df in app.dataframe if "width" in df.value.columns)
    assert list(table["width"]) == ["4", "8"] and list(table["state"]) == ["pending", "pending"]
    assert any("0 of 2 trials finished" in str(p.proto) for p in app.get("progress"))
    app.button(key="study_start").click()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    job = app.session_state["designer"].study
    job.heartbeat_timeout = 600  # no page beats while the test waits
    job.join(180)
    assert job.error is None, job.error
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    table = next(df.value for df in app.dataframe if "width" in df.value.columns)
    assert list(table["state"]) == ["complete", "complete"], list(table["error"])
    assert table["value"].between(0, 1).all()
    assert list(table["params"]) == [params_at(width=4), params_at(width=8)]
    assert any("2 of 2 trials finished" in str(p.proto) for p in app.get("progress"))
    captions = [caption for image in app.image for caption in image.captions]
    assert captions == [PLOT_TITLE]
    assert any(b.proto.label == "Download report.html" for b in app.get("download_button"))
    results = (tmp_path / "runs" / "study-width" / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["key"] for line in results) == sorted(
        f"width={w},seed=0" for w in (4, 8))


def test_app_shows_a_broken_study_file_s_problems(app, study_file, tmp_path):
    study_file.write_text(STUDY.replace("name: width", "name: 'not a name'"))
    app.text_input(key="study_path").input(str(study_file))
    app.text_input(key="study_runs").input(str(tmp_path / "runs"))
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    errors = [e.value for e in app.error]
    assert any(e.startswith("line 2, col") and "name" in e for e in errors), errors
    assert not [b for b in app.button if b.key == "study_start"]


def test_app_without_a_study_file_asks_for_one(app):
    assert any("Choose a study file" in i.value for i in app.info)
    assert not app.session_state["designer"].study.running


def test_app_stop_button_stops_the_study_and_keeps_it_pending(app, tmp_path):
    study_file = write_study(tmp_path, STUDY.replace("epochs: 1, train_size: 64", "epochs: 50, train_size: 512"))
    app.text_input(key="study_path").input(str(study_file))
    app.text_input(key="study_runs").input(str(tmp_path / "runs"))
    app.run()
    app.button(key="study_start").click()
    app.run()
    job = app.session_state["designer"].study
    job.heartbeat_timeout = 600
    assert job.running
    deadline = time.time() + 60
    while not any(e["kind"] == "step" for e in job.events()) and time.time() < deadline:
        time.sleep(0.01)  # the first trial is training
    app.button(key="study_stop").click()
    app.run()
    job.join(60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert job.state == "stopped" and not [e.value for e in app.error]
    assert any("width" in m.value and "**stopped**" in m.value for m in app.markdown)
    table = next(df.value for df in app.dataframe if "width" in df.value.columns)
    assert list(table["state"]) == ["pending", "pending"]
    assert not [b for b in app.button if b.key == "study_stop"]
    assert app.button(key="study_start").disabled is False  # it can be continued
