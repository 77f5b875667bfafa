"""Checkpoint writes survive a kill at any moment: a process that saves checkpoints in a loop is
SIGKILLed at random moments, and a process is made to die just before each filesystem
operation of a save in turn; after every kill `load_checkpoint` finds a complete checkpoint
whose weights, optimizer state and step counter come from one save."""

from __future__ import annotations

import os
import random
import signal
import time
import warnings
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from compiler.train import checkpoint as ck

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

WIDTH = 384  # two 384x384 linears: ~1.2 MB of weights, the same again of "optimizer state"


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(WIDTH, WIDTH), torch.nn.Linear(WIDTH, WIDTH))


def _save(run_dir: Path, model: torch.nn.Module, step: int) -> None:
    """A checkpoint whose every number is `step`, so a mixed-up pair is visible."""
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(step)
    ck.save(run_dir, model, {"epoch": step, "global_step": step,
                             "optimizer": {"exp_avg": torch.full((2 * WIDTH * WIDTH,), float(step))}})


def _check(run_dir: Path) -> tuple[int, bool]:
    """Load the run's checkpoint and check it is one save's: (its step, whether it fell back)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = ck.load_checkpoint(run_dir)
    step = state["global_step"]
    assert state["epoch"] == step
    assert torch.equal(state["optimizer"]["exp_avg"], torch.full((2 * WIDTH * WIDTH,), float(step)))
    assert set(state["model"]) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    for name, tensor in state["model"].items():
        assert torch.equal(tensor, torch.full_like(tensor, step)), name
    fell_back = any(issubclass(w.category, ck.CheckpointFallback) for w in caught)
    assert fell_back == ("fallback" in state)
    if fell_back:
        assert "previous complete checkpoint" in state["fallback"]
    return step, fell_back


def _child(body) -> int:
    """Fork; the child runs body() and exits (0 when body returns). Returns the child's pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            torch.set_num_threads(1)
            body()
        except BaseException:
            code = 3
        os._exit(code)
    return pid


def test_random_sigkills_while_saving_always_leave_a_loadable_checkpoint(tmp_path):
    rng = random.Random(8)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model = _model()
    _save(run_dir, model, 1)  # a run that has saved once
    # Kill within about three saves of the child's life, however fast this machine is: a child's
    # first save also pays for the fork (slow late in a long test session, when this process is
    # big), so time a child that saves once, and add two saves as timed here.
    start = time.perf_counter()
    _save(run_dir, model, 1)
    save_time = time.perf_counter() - start
    start = time.perf_counter()
    _, status = os.waitpid(_child(lambda: _save(run_dir, model, 1)), 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    first_save = time.perf_counter() - start
    last, fallbacks, kills = 1, 0, 25
    for _ in range(kills):
        start = last

        def loop():
            step = start
            while True:
                step += 1
                _save(run_dir, model, step)

        pid = _child(loop)
        time.sleep(rng.uniform(0.0, first_save + 2 * save_time + 0.01))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), "the saving process died before it was killed"
        step, fell_back = _check(run_dir)
        assert step >= last  # a save never loses a checkpoint that was complete before it
        last, fallbacks = step, fallbacks + fell_back
    assert last > 3  # the saving loop made progress between kills
    # after all that, a normal save works and cleans up every leftover
    _save(run_dir, model, last + 1)
    assert _check(run_dir) == (last + 1, False)
    assert sorted(p.name for p in run_dir.iterdir()) == [ck.MODEL_FILE, ck.STATE_FILE]
    print(f"{kills} kills, {fallbacks} loads fell back to previous/, reached step {last}")


class _Die(Exception):
    pass


def _dying_save(run_dir: Path, model: torch.nn.Module, step: int, at: int) -> None:
    """_save, but the process exits (as if SIGKILLed: no cleanup runs) just before its
    filesystem operation number `at`; exits 0 if the save had fewer operations."""
    import shutil

    count = [0]

    def wrap(owner, name):
        real = getattr(owner, name)

        def op(*args, **kwargs):
            if count[0] == at:
                os._exit(17)
            count[0] += 1
            return real(*args, **kwargs)
        setattr(owner, name, op)

    for name in ("replace", "rename", "link", "fsync", "unlink", "mkdir", "rmdir", "open", "close"):
        wrap(os, name)
    wrap(shutil, "rmtree")
    _save(run_dir, model, step)


def test_a_kill_before_any_filesystem_operation_of_a_save_leaves_a_loadable_checkpoint(tmp_path):
    model = _model()
    results = []
    for at in range(200):
        run_dir = tmp_path / f"at{at}"
        run_dir.mkdir()
        _save(run_dir, model, 1)
        _save(run_dir, model, 2)
        pid = _child(lambda: _dying_save(run_dir, model, 3, at))
        _, status = os.waitpid(pid, 0)
        code = os.WEXITSTATUS(status)
        assert code in (0, 17), code
        step, fell_back = _check(run_dir)
        assert step in (2, 3)
        results.append((step, fell_back))
        if code == 0:  # the save finished before operation `at`: every point has been tried
            assert step == 3 and not fell_back
            break
        # the next save after the kill works, and leaves nothing else behind
        _save(run_dir, model, 4)
        assert _check(run_dir) == (4, False)
        assert sorted(p.name for p in run_dir.iterdir()) == [ck.MODEL_FILE, ck.STATE_FILE]
        # and so does a kill during the save after a kill
        if at % 3 == 0:
            pid = _child(lambda: _dying_save(run_dir, model, 5, at))
            os.waitpid(pid, 0)
            assert _check(run_dir)[0] in (4, 5)
    else:
        pytest.fail("a save did more than 200 filesystem operations")
    assert at > 10  # writing, linking, replacing and removing were all interrupted somewhere
    assert (2, True) in results  # a kill between the two replaces: previous/ was used
    assert (3, False) in results and (2, False) in results


def test_resume_after_a_kill_between_the_two_replaces_uses_the_previous_checkpoint(tmp_path, capsys):
    import compiler
    from compiler.cli import main
    from train_support import TINY

    run_dir = tmp_path / "run"
    compiler.train(TINY, run_dir=str(run_dir), epochs=1, train_size=64, val_size=32, quiet=True)
    before = ck.load_checkpoint(run_dir)
    assert before["epoch"] == 1

    def killed_between_replaces():
        real, calls = os.replace, [0]

        def replace(*args, **kwargs):
            if calls[0] == 1:  # model.safetensors is new, state.pt is not yet
                os._exit(17)
            calls[0] += 1
            return real(*args, **kwargs)
        os.replace = replace
        model = compiler.build(TINY, seed=5)  # other weights than the run's
        ck.save(run_dir, model, {**ck.load_state(run_dir), "epoch": 2})

    pid = _child(killed_between_replaces)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 17
    assert (run_dir / ck.PREVIOUS_DIR).is_dir()
    with pytest.raises(ck.CheckpointError, match="come from different saves"):
        ck._load_pair(run_dir, "cpu")

    assert main(["train", "--resume", str(run_dir), "--epochs", "2", "-q"]) == 0
    err = capsys.readouterr().err
    assert "come from different saves" in err and "using the previous complete checkpoint" in err
    assert "(epoch 1, step" in err
    after = ck.load_checkpoint(run_dir)
    assert after["epoch"] == 2 and "fallback" not in after
    assert not (run_dir / ck.PREVIOUS_DIR).exists()
