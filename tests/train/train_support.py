"""Helpers of the training tests: a tiny spec (3 convs on 16x16 images of the built-in
shapes dataset, batch norm and dropout, ~1.5k parameters), settings that train it in about a
second, and helpers to run `python -m compiler train` as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]

TINY = """\
blockgraph: 1
name: tiny
inputs:
  image: [3, 16, 16]
vars: {classes: 6, width: 8}
defaults:
  conv: {k: 3, norm: batch, act: relu}
nodes:
  - {op: conv, out: $width}
  - {op: maxpool, k: 2}
  - {op: conv, out: $width * 2}
  - {op: maxpool, k: 2}
  - {op: conv, out: $width * 4}
  - {op: gap}
  - {op: dropout, p: 0.1}
  - {op: linear, out: $classes}
train:
  train_size: 1024
  val_size: 256
  batch_size: 32
  epochs: 4
  lr: 0.1
  device: cpu
"""


def env(**extra: str) -> dict[str, str]:
    """The environment of a training subprocess: one thread (the tests run on 2 cores, and
    subprocesses that compare weights must use the same thread count), no GPU."""
    out = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    out.update(extra)
    return out


def train_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "compiler", "train", *map(str, args)]


HOOKED_TRAIN = Path(__file__).resolve().parent / "hooked_train.py"
"""The launcher of a slowed-down, traced trainer (see hooked_train.py)."""


def hooked_args(delay: str, trace: Path | None = None) -> list[str]:
    """hooked_train.py and its options: sleep `delay` seconds after every step, append
    "EPOCH STEP" lines to `trace`; the command line (or `-m MODULE ...`) follows."""
    return [str(HOOKED_TRAIN), "--step-delay", str(delay), *(["--trace", str(trace)] if trace else [])]


def hooked_train_command(delay: str, trace: Path, *args: str) -> list[str]:
    """`blockgraph train ARGS` in a subprocess whose runs sleep and trace after every step."""
    return [sys.executable, *hooked_args(delay, trace), "train", *map(str, args)]


def run_train(*args: str, timeout: float = 120, **env_extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(train_command(*args), cwd=ROOT, env=env(**env_extra), capture_output=True, text=True,
                          timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
