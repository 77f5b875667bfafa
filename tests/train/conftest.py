"""Fixtures of the training tests (helpers in train_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from train_support import TINY


@pytest.fixture
def tiny_spec(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path




@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Train in-process with one thread: the tiny models run 5-10x faster than with two
    threads on a shared 2-core machine (and subprocesses get OMP_NUM_THREADS=1 alike)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
