"""Stopping a command stops everything it started: SIGTERM, SIGINT or SIGHUP to the pid a
caller was given leaves no server listening and no child process alive.

- `blockgraph ui` execs Streamlit in place, so the pid is the server itself (a child would be
  left running, re-parented, still holding the port);
- `blockgraph train --workers N` stops after the current step on any of the three signals,
  writes a checkpoint and shuts its data-loader workers down before it exits (SIGHUP used to
  kill it at once, leaving the workers to notice on their own, up to 5 s later);
- torchrun (`python -m torch.distributed.run`) passes the signal on to its training processes
  and waits for them (torch's own handler; checked here because the docs recommend it).

Every process is started in a session of its own, so a failing test still kills what it
started (the whole process group) instead of leaving it to the rest of the suite.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from train.train_support import TINY, env, free_port, hooked_args

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
STOP_SECONDS = 5  # what "stops" means for the designer: port free, no process left


def _descendants(pid: int) -> set[int]:
    """Every living process below `pid`, from the parent links in /proc (Linux)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # the command name in (...) may hold spaces: the fields after ")" are fixed
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _port_free(port: int) -> bool:
    """A new server could listen on `port` (SO_REUSEADDR, as servers bind: the test's own
    closed connections in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


def _start(command: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)


def _cleanup(proc: subprocess.Popen) -> None:
    """Kill whatever is left of the process group (nothing, when the test passed)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=30)


def _wait_until(condition, timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout} s")
        time.sleep(0.05)


# -- the designer -------------------------------------------------------------------------------

def _healthy(port: int) -> bool:
    """Streamlit's health endpoint answers once the server is fully up (a bare TCP connect
    can succeed a moment earlier, while it is still starting)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


LAUNCHERS = {"blockgraph": [str(Path(sys.executable).with_name("blockgraph"))],
             "python -m compiler": [sys.executable, "-m", "compiler"]}


@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_signal_to_the_ui_pid_stops_the_server(launcher, sig):
    port = free_port()
    proc = _start([*LAUNCHERS[launcher], "ui", "specs/default.yaml", "--port", str(port)])
    try:
        _wait_until(lambda: _healthy(port), 120, proc, f"designer answering on port {port}")
        children = _descendants(proc.pid)
        os.kill(proc.pid, sig)  # the pid Popen gave, not the group
        signalled = time.monotonic()
        proc.wait(timeout=STOP_SECONDS)
        while (not _port_free(port) or any(map(_alive, children))) and time.monotonic() - signalled < STOP_SECONDS:
            time.sleep(0.05)
        assert _port_free(port), f"port {port} still in use {STOP_SECONDS} s after {sig.name}"
        assert not [pid for pid in children if _alive(pid)], f"children left after {sig.name}"
    finally:
        _cleanup(proc)


# -- training -----------------------------------------------------------------------------------

TRAIN_ARGS = ["--epochs", "3", "--set", "train_size=512", "--set", "val_size=128", "-q"]
STEP_DELAY = "0.05"  # seconds after every step: an epoch of 16 steps lasts at least 0.8 s


def _train_command(spec: Path, run_dir: Path, trace: Path, *extra: str) -> list[str]:
    """The arguments of python (or torchrun) for a slowed-down, traced `blockgraph train`."""
    return [*hooked_args(STEP_DELAY, trace), "train", str(spec), *TRAIN_ARGS, "--run-dir", str(run_dir), *extra]


def _stop_training(proc: subprocess.Popen, trace: Path, sig: signal.Signals, processes: int) -> set[int]:
    """Wait for a few steps, count the processes below `proc`, signal `proc` alone, and see
    it exit with everything below it gone; returns the pids that were below it."""
    _wait_until(lambda: trace.is_file() and "1 3" in trace.read_text().splitlines(), 180, proc, "step 3")
    children = _descendants(proc.pid)
    assert len(children) >= processes, children
    os.kill(proc.pid, sig)
    proc.wait(timeout=120)  # the step, a checkpoint, the exit: seconds, more on a busy machine
    deadline = time.monotonic() + STOP_SECONDS
    while any(map(_alive, children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in children if _alive(pid)], f"processes left {STOP_SECONDS} s after the exit"
    return children


@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_a_signal_to_train_stops_its_data_loader_workers(tmp_path, sig):
    spec, run_dir, trace = tmp_path / "tiny.yaml", tmp_path / "run", tmp_path / "trace"
    spec.write_text(TINY)
    proc = _start([sys.executable, *_train_command(spec, run_dir, trace, "--workers", "2")], env=env())
    try:
        _stop_training(proc, trace, sig, processes=2)
        err = proc.stderr.read()
        assert proc.returncode == 130, err
        what = "interrupted" if sig == signal.SIGINT else f"stopped by {sig.name}"
        assert f"blockgraph train: {what} at epoch 1, step " in err and f"checkpoint saved in {run_dir}" in err, err
        assert "Traceback" not in err
    finally:
        _cleanup(proc)


def test_a_signal_to_torchrun_stops_its_training_processes(tmp_path):
    """SIGHUP, one of the signals torchrun handles by default (SIGTERM, SIGINT, SIGHUP,
    SIGQUIT; one handler for all): it sends SIGTERM to its processes and waits for them."""
    spec, run_dir, trace = tmp_path / "tiny.yaml", tmp_path / "run", tmp_path / "trace"
    spec.write_text(TINY)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
               str(free_port()), *_train_command(spec, run_dir, trace)]
    proc = _start(command, env=env())
    try:
        _stop_training(proc, trace, signal.SIGHUP, processes=2)
        assert proc.returncode != 0  # torchrun reports the signal it got
    finally:
        _cleanup(proc)
