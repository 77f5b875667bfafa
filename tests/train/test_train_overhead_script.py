"""benchmarks/train_overhead.py --quick runs and prints a trainer / bare ratio for both of its
specs. Not a timing test: the figures of a shared machine mean nothing here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_a_ratio_per_spec(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_overhead.py"), "--quick"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("spec "))
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1:] if line.strip()}
    assert set(rows) == {"specs/default.yaml", "specs/resnet20_cifar.yaml"}
    number = re.compile(r"^\d+\.\d+$")
    for cells in rows.values():
        # three (trainer, bare, ratio) triples: wall img/s, cpu img/s, step cpu ms
        assert len(cells) == 9 and all(number.match(c) for c in cells), cells
        for trainer, bare, ratio in (cells[0:3], cells[3:6]):
            assert float(trainer) > 0 and float(bare) > 0
            assert abs(float(ratio) - float(trainer) / float(bare)) < 0.01 + 0.01 * float(ratio)
    assert not list(tmp_path.iterdir())  # run directories are temporary: nothing left in the cwd
