"""Exact resume: a run killed in the middle of epoch 2 (SIGKILL: no chance to save; or Ctrl-C:
it saves at the step it was at) and resumed ends with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import compiler
from compiler.cli import main
from train_support import ROOT, TINY, env, hooked_train_command

ARGS = ["--epochs", "3", "--set", "train_size=512", "--set", "val_size=128", "-q"]
DELAY = "0.05"  # seconds per step: epoch 2 (16 steps) lasts at least 0.8 s


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def reference(spec_file) -> Path:
    """The uninterrupted run (in this process, one thread like the subprocesses)."""
    run_dir = spec_file.parent / "reference"
    assert main(["train", str(spec_file), *ARGS, "--run-dir", str(run_dir)]) == 0
    return run_dir


def _start_slow(spec_file: Path, run_dir: Path, trace: Path) -> subprocess.Popen:
    return subprocess.Popen(hooked_train_command(DELAY, trace, spec_file, *ARGS, "--run-dir", run_dir), cwd=ROOT,
                            env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _signal_at_step(runs: dict[subprocess.Popen, tuple[Path, signal.Signals]], line: str,
                    timeout: float = 90) -> None:
    """Watch every run at once and signal each as soon as its trace shows step `line` (one run
    watched after another could be past epoch 2 by the time its turn came)."""
    waiting = dict(runs)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for proc, (trace, sig) in list(waiting.items()):
            if trace.is_file() and line in trace.read_text().splitlines():
                proc.send_signal(sig)
                del waiting[proc]
            elif proc.poll() is not None:
                raise AssertionError(f"the run ended before step {line!r}: {proc.communicate()[1]}")
        time.sleep(0.02)
    for proc in waiting:
        proc.kill()
    assert not waiting, f"step {line!r} not reached in {timeout} s"


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _assert_same_run(run_dir: Path, reference: Path) -> None:
    """Weights to 1e-6 (measured: identical), and the same metrics for every epoch."""
    a, b = load_file(str(run_dir / "model.safetensors")), load_file(str(reference / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        diff = (a[name].double() - b[name].double()).abs().max().item() if a[name].numel() else 0.0
        assert diff <= 1e-6, f"{name} differs by {diff}"
    rows, ref_rows = _rows(run_dir), _rows(reference)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for r, s in zip(rows, ref_rows):
        for key in ("step", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5"):
            assert r[key] == pytest.approx(s[key], rel=1e-6, abs=1e-9), (r["epoch"], key)
    sa = torch.load(run_dir / "state.pt", weights_only=True)
    sb = torch.load(reference / "state.pt", weights_only=True)
    assert (sa["epoch"], sa["global_step"]) == (sb["epoch"], sb["global_step"]) == (3, 48)


def test_killed_or_interrupted_in_epoch_2_then_resumed_gives_the_same_weights(spec_file, tmp_path, capsys,
                                                                               request):
    """SIGKILL (no chance to save: resume from epoch 1's checkpoint) and Ctrl-C (saves at the
    step it was at: resume mid-epoch), two subprocesses side by side, while the reference run
    trains in this process."""
    killed, interrupted = tmp_path / "killed", tmp_path / "interrupted"
    reference = request.getfixturevalue("reference")  # first: while it trains nothing watches the runs
    procs = {d: _start_slow(spec_file, d, tmp_path / f"{d.name}.trace") for d in (killed, interrupted)}
    _signal_at_step({procs[killed]: (tmp_path / "killed.trace", signal.SIGKILL),
                     procs[interrupted]: (tmp_path / "interrupted.trace", signal.SIGINT)}, "2 5")
    procs[killed].communicate(timeout=60)
    out, err = procs[interrupted].communicate(timeout=60)

    assert procs[killed].returncode == -signal.SIGKILL
    assert [r["epoch"] for r in _rows(killed)] == [1]  # killed in epoch 2
    assert torch.load(killed / "state.pt", weights_only=True)["epoch"] == 1
    assert not list(killed.glob(".*.tmp"))

    assert procs[interrupted].returncode == 130, err
    state = torch.load(interrupted / "state.pt", weights_only=True)
    assert state["epoch"] == 1 and 5 <= state["step_in_epoch"] < 16
    step = state["step_in_epoch"]
    assert f"blockgraph train: interrupted at epoch 2, step {step}: checkpoint saved in {interrupted}; " \
           f"continue with: blockgraph train --resume {interrupted}" in err
    assert "Traceback" not in err

    # resume here (the CLI in this process; the runs were killed as separate processes)
    assert main(["train", "--resume", str(killed)]) == 0
    assert f"resuming {killed} at epoch 2\n" in capsys.readouterr().out
    assert main(["train", "--resume", str(interrupted)]) == 0
    assert f"resuming {interrupted} at epoch 2, step {step + 1}\n" in capsys.readouterr().out
    _assert_same_run(killed, reference)
    _assert_same_run(interrupted, reference)


def test_resume_refuses_another_spec(tmp_path, capsys):
    run_dir = tmp_path / "run"
    compiler.train(TINY, run_dir=str(run_dir), epochs=1, train_size=64, val_size=32, quiet=True)
    other = tmp_path / "other.yaml"
    other.write_text(TINY.replace("width: 8", "width: 4"))
    assert main(["train", str(other), "--resume", str(run_dir), "-q"]) == 1
    assert f"is not the spec the run in {run_dir} was started with" in capsys.readouterr().err
    assert main(["train", "--resume", str(run_dir), "--epochs", "2", "-q"]) == 0  # more epochs: goes on
    assert torch.load(run_dir / "state.pt", weights_only=True)["epoch"] == 2
    assert "note: resuming with changed settings: epochs 1 -> 2" in capsys.readouterr().err
