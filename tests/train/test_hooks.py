"""The hooks a UI drives a run with: progress callbacks, and a stop asked from another thread
that leaves a checkpoint the run resumes from."""

from __future__ import annotations

import threading

import pytest

import compiler
from compiler.train import TrainingInterrupted
from train_support import TINY


def test_hooks_report_start_steps_and_epochs(tmp_path):
    started, steps, epochs = [], [], []
    result = compiler.train(TINY, run_dir=str(tmp_path / "run"), quiet=True, epochs=2, train_size=256,
                            val_size=64, on_start=started.append, on_step=steps.append, on_epoch=epochs.append)
    assert len(started) == 1 and started[0]["run_dir"] == result.run_dir
    assert started[0]["epochs"] == 2 and started[0]["steps"] == 256 // 32 and started[0]["epoch"] == 0
    assert started[0]["params"] == sum(p.numel() for p in compiler.build(TINY).parameters())
    assert [(s["epoch"], s["step"]) for s in steps] == [(e, k) for e in (1, 2) for k in range(1, 9)]
    assert [s["global_step"] for s in steps] == list(range(1, 17))
    assert epochs == result.history  # the rows as logged, one per epoch, after its checkpoint


def test_should_stop_from_another_thread_checkpoints_and_resumes(tmp_path):
    stop = threading.Event()
    seen = []

    def on_step(info):
        seen.append((info["epoch"], info["step"]))
        if info["epoch"] == 1 and info["step"] == 3:
            stop.set()  # as the designer's Stop button does, from its own thread

    box = {}

    def worker():
        try:
            compiler.train(TINY, run_dir=str(tmp_path / "run"), quiet=True, epochs=2, train_size=256,
                           val_size=64, on_step=on_step, should_stop=stop.is_set)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(120)
    error = box.get("error")
    assert isinstance(error, TrainingInterrupted) and error.saved
    # the step under way when the stop is seen (step 4, polled after its forward pass) completes
    assert "stopped on request at epoch 1, step 4" in str(error)
    assert seen == [(1, 1), (1, 2), (1, 3), (1, 4)]
    resumed = []
    result = compiler.train(resume=tmp_path / "run", quiet=True, on_step=lambda i: resumed.append(i["step"]))
    assert resumed[0] == 5 and [r["epoch"] for r in result.history] == [1, 2]
