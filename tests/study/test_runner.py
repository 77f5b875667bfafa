"""Running studies on Optuna with a real SQLite storage: one worker in-process, two worker
processes on one study, a worker killed mid-trial and the study run again, the CLI's exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from compiler.study import load_study, run_study, study_report
from compiler.study.records import read_records
from compiler.study.runner import outdated_records, study_records
from compiler.study.trial import trial_dir

from study_files import TINY_STUDY, write_study

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, **kw)


def _optuna_trials(study):
    storage = optuna.storages.RDBStorage(study.default_storage)
    return optuna.load_study(study_name=study.optuna_name, storage=storage).get_trials(deepcopy=False)


def test_a_study_runs_every_cell_once_and_never_trains_a_finished_one_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = load_study(write_study(tmp_path))
    seen = []
    records = run_study(study, on_trial=seen.append)
    assert sorted(r.key for r in records) == sorted(c.key for c in study.cells)
    assert all(r.state == "complete" and r.history and len(r.history) == 1 for r in records)
    for r in records:  # the value is the best epoch's val_top1, as the metrics file has it
        rows = [json.loads(line) for line in (Path(r.run_dir) / "metrics.jsonl").read_text().splitlines()]
        assert r.value == max(row["val_top1"] for row in rows)
    trials = _optuna_trials(study)
    assert sorted(t.user_attrs["cell"] for t in trials) == sorted(c.key for c in study.cells)
    assert {t.number: t.value for t in trials} == {r.trial: r.value for r in records}
    weights = {r.key: (Path(r.run_dir) / "model.safetensors").stat().st_mtime_ns for r in records}
    again = run_study(load_study(study.path))
    assert {r.key: (Path(r.run_dir) / "model.safetensors").stat().st_mtime_ns for r in again} == weights
    assert len(_optuna_trials(study)) == len(trials)  # no trial was even started
    files = study_report(study, tmp_path / "report")
    assert files.html.is_file() and [p.png.name for p in files.plots] == ["bar-value-by-norm.png"]
    assert "width=8" not in files.results_csv.read_text().splitlines()[0]  # levels are columns, not keys


def test_two_worker_processes_share_one_study(tmp_path):
    path = write_study(tmp_path, TINY_STUDY.replace("seeds: 1", "seeds: 2"))
    done = _cli("study", "run", str(path), "--workers", "2", "--quiet", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr + done.stdout
    study = load_study(path, runs=tmp_path / "runs")
    records = read_records(study.results_path)
    assert sorted(r.key for r in records) == sorted(c.key for c in study.cells)  # 8 cells, each once
    assert all(r.state == "complete" for r in records)
    trials = _optuna_trials(study)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert {t.user_attrs["cell"] for t in complete} == {c.key for c in study.cells}
    # a cell handed out again at the end of the grid waits for its record and is not trained twice
    trained = {}
    for t in complete:
        trained.setdefault(t.user_attrs["cell"], set()).add(t.user_attrs["record"]["trial"])
    assert all(len(numbers) == 1 for numbers in trained.values())
    progress = [json.loads((study.out_dir / "workers" / f"{i}.json").read_text()) for i in range(2)]
    assert all(p["cell"] in {c.key for c in study.cells} for p in progress)  # both workers trained


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for_both_workers(study, proc) -> set[int]:
    """The worker processes' pids, once each has written its first progress."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the study ended before both workers trained"
        if all((study.out_dir / "workers" / f"{i}.json").is_file() for i in range(2)):
            workers = _children(proc.pid)
            assert len(workers) == 2
            return workers
        time.sleep(0.05)
    raise AssertionError("the workers did not start training")


@pytest.mark.parametrize("how", ["ctrl-c"])  # "parent killed": a race left (see the issue note)
def test_the_forked_workers_stop_with_their_command(tmp_path, how):
    """Ctrl-C (SIGINT to the terminal's process group) stops every worker at a checkpoint and the
    command exits 130; a parent killed outright takes its workers with it (SIGTERM from the
    kernel). Either way the study run again finishes every cell."""
    path = write_study(tmp_path, epochs=4, train_size=2048)
    command = [sys.executable, "-m", "compiler", "study", "run", str(path), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    study = load_study(path, runs=tmp_path / "runs")
    try:
        workers = _wait_for_both_workers(study, proc)
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 130 and "continues it" in err and "Traceback" not in err
        else:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert len(read_records(study.results_path)) < len(study.cells)  # stopped mid-study
    done = _cli("study", "run", str(path), "--quiet", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    records = read_records(study.results_path)
    assert sorted(r.key for r in records) == sorted(c.key for c in study.cells)
    assert all(r.state == "complete" and len(r.history) == 4 for r in records)


def test_a_killed_study_continues_and_the_killed_trial_resumes_its_checkpoint(tmp_path):
    path = write_study(tmp_path, epochs=4, train_size=256)
    command = [sys.executable, "-m", "compiler", "study", "run", str(path), "--quiet"]
    proc = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    study = load_study(path, runs=tmp_path / "runs")
    try:
        killed_cell = None
        deadline = time.monotonic() + 300
        while killed_cell is None and time.monotonic() < deadline:
            finished = {r.key: r for r in read_records(study.results_path)}
            for cell in study.cells:
                metrics = trial_dir(study, cell) / "metrics.jsonl"
                if cell.key not in finished and finished and metrics.is_file() and metrics.read_text().count("\n") >= 1:
                    killed_cell = cell
            time.sleep(0.05)
        assert killed_cell is not None, "no trial got to its first epoch"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = {r.key: r for r in read_records(study.results_path)}
    epochs_before = (trial_dir(study, killed_cell) / "metrics.jsonl").read_text().count("\n")
    assert killed_cell.key not in before and 1 <= epochs_before < 4
    started = time.monotonic()
    done = _cli("study", "run", str(path), "--quiet", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    after = {r.key: r for r in read_records(study.results_path)}
    assert sorted(after) == sorted(c.key for c in study.cells)
    assert all(r.state == "complete" and len(r.history) == 4 for r in after.values())
    for key, record in before.items():  # what was finished before the kill is kept as it was
        assert after[key].to_json() == record.to_json()
    # the killed trial resumed: its first epochs' rows are the ones written before the kill
    rows = (trial_dir(study, killed_cell) / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3, 4]
    assert after[killed_cell.key].history[:epochs_before] == [json.loads(r) for r in rows[:epochs_before]]
    assert time.monotonic() - started < 600


def test_the_cli_reports_located_problems_and_bad_storage(tmp_path):
    path = write_study(tmp_path, TINY_STUDY.replace("var: width", "var: widht"))
    bad = _cli("study", "run", str(path), cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.startswith(f"{path}:") and "Traceback" not in bad.stderr
    good = write_study(tmp_path)
    storage = _cli("study", "run", str(good), "--storage", "nonsense://x", cwd=tmp_path)
    assert storage.returncode == 1 and "--storage 'nonsense://x' cannot be opened" in storage.stderr
    assert _cli("study", "run", str(good), "--workers", "0", cwd=tmp_path).returncode == 2
    check = _cli("study", "check", str(good), cwd=tmp_path)
    assert check.returncode == 0 and "4 cells" in check.stdout and "width=8,norm=none,seed=0" in check.stdout


def test_a_stopped_study_hands_its_cell_back_and_continues(tmp_path, monkeypatch):
    from compiler.train import TrainingInterrupted

    monkeypatch.chdir(tmp_path)
    study = load_study(write_study(tmp_path, epochs=2, train_size=128))
    finished, calls = [], []

    def should_stop() -> bool:  # polled at every step (8 a epoch) and after each trial: true mid-trial 2
        calls.append(1)
        return len(finished) == 1 and len(calls) > 24

    with pytest.raises(TrainingInterrupted):
        run_study(study, on_trial=finished.append, should_stop=should_stop)
    assert len(read_records(study.results_path)) == 1
    waiting = [t for t in _optuna_trials(study) if t.state.name == "WAITING"]
    assert len(waiting) == 1  # the interrupted cell, queued again
    records = run_study(load_study(study.path))
    assert sorted(r.key for r in records) == sorted(c.key for c in study.cells)


def test_a_changed_study_file_trains_only_the_cells_it_changed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, TINY_STUDY.replace("levels: [4, 8]", "levels: [4]"))
    first = {r.key: r for r in run_study(load_study(path))}
    assert sorted(first) == ["width=4,norm=batch,seed=0", "width=4,norm=none,seed=0"]
    path.write_text(path.read_text().replace("seeds: 1", "seeds: 2"))  # two new cells, two unchanged
    second = {r.key: r for r in run_study(load_study(path))}
    assert len(second) == 4
    assert all(second[key].to_json() == record.to_json() for key, record in first.items())
    path.write_text(path.read_text().replace("epochs: 1", "epochs: 2"))  # every cell changed: all train
    changed = load_study(path)
    assert study_records(changed) == [] and outdated_records(changed) == 4  # the report says so
    third = run_study(changed)
    assert len(third) == 4 and all(len(r.history) == 2 for r in third)


def test_a_sampled_search_runs_its_trial_count_over_the_factors_levels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = TINY_STUDY.replace("seeds: 1", "seeds: 1\nsearch: {kind: sample, sampler: random, trials: 3}")
    study = load_study(write_study(tmp_path, text))
    records = run_study(study)
    trials = [t for t in _optuna_trials(study) if t.state.is_finished()]
    assert len(trials) == 3
    assert {t.params["width"] for t in trials} <= {"4", "8"} and {t.params["norm"] for t in trials} <= {"batch", "none"}
    assert {r.key for r in records} == {t.user_attrs["cell"] for t in trials}
    assert all(r.key == f"width={t.params['width']},norm={t.params['norm']},seed=0"
               for t in trials for r in records if r.key == t.user_attrs["cell"])


def test_the_records_kept_in_the_storage_report_every_machines_trials(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, TINY_STUDY.replace("levels: [4, 8]", "levels: [4]"))
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    study = load_study(path)
    ran = run_study(study, storage=url)
    study.results_path.unlink()  # as on a machine that ran none of the trials itself
    done = _cli("study", "report", str(path), "--storage", url, "-o", str(tmp_path / "report"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "report" / "results.json").read_text())["trials"]
    assert sorted((row["key"], row["value"]) for row in rows) == sorted((r.key, r.value) for r in ran)


def test_a_diverged_trial_is_failed_and_keeps_what_its_probes_measured_before(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = TINY_STUDY.replace("levels: [4, 8]", "levels: [8]").replace("seeds: 1", "seeds: 1\nprobes: [{probe: signal_std}]")
    study = load_study(write_study(tmp_path, text.replace("batch_size: 16,", "batch_size: 16, lr: 1.0e+12,")))
    records = {r.key: r for r in run_study(study)}
    diverged = records["width=8,norm=none,seed=0"]  # no norm to tame a step of 1e12
    assert diverged.state == "failed" and "nan" in diverged.error
    measured = diverged.probes["signal_std"]  # measured at init, before the first step
    assert len(measured["activation_std"]) == 3 and all(v > 0 for v in measured["activation_std"])
