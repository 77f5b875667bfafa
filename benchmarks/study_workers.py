"""`blockgraph study run --workers 2` (one torch thread each) against one worker with two
threads, on an 8-trial grid of small nets (issue 21's goal: at least 1.5x faster on 2 cores).

    .venv/bin/python benchmarks/study_workers.py               # 3 rounds, alternating, goal 1.5
    .venv/bin/python benchmarks/study_workers.py --rounds 1 --epochs 1

Each round runs the same study twice from scratch, in a fresh folder, through the real CLI
(subprocesses, a real SQLite storage): once as `--workers 2 --threads 1`, once as
`--workers 1 --threads 2`, the order alternating between rounds so that a busy moment of the
machine does not favour one side. It prints each round's wall times and the median ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SPEC = """\
blockgraph: 1
name: small
inputs:
  image: [3, 24, 24]
vars:
  classes: 6
  width: 16
nodes:
  - {id: c1, op: conv, out: $width, k: 3, norm: batch, act: relu}
  - {id: c2, op: conv, out: $width, k: 3, stride: 2, norm: batch, act: relu}
  - {id: c3, op: conv, out: $width * 2, k: 3, stride: 2, norm: batch, act: relu}
  - {id: pool, op: gap}
  - {id: fc, op: linear, out: $classes}
"""

STUDY = """\
blockgraph_study: 1
name: workers_bench
specs: small.yaml
factors:
  width: {{var: width, levels: [8, 16]}}
  lr: {{train: lr, levels: [0.05, 0.1]}}
seeds: 2
train: {{dataset: shapes, size: 24, epochs: {epochs}, train_size: {train_size}, val_size: 200, batch_size: 32}}
"""


def run_once(folder: Path, *, workers: int, threads: int) -> float:
    """Seconds for the whole study (a fresh run folder), through the CLI."""
    runs = folder / f"runs-{workers}x{threads}-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "compiler", "study", "run", str(folder / "study.yaml"), "--quiet",
               "--runs", str(runs), "--workers", str(workers), "--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or "8 complete" not in done.stdout:
        raise SystemExit(f"the study did not finish:\n{done.stdout}\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--goal", type=float, default=1.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "small.yaml").write_text(SPEC)
        (folder / "study.yaml").write_text(STUDY.format(epochs=args.epochs, train_size=args.train_size))
        ratios = []
        for round_ in range(args.rounds):
            order = [(2, 1), (1, 2)] if round_ % 2 == 0 else [(1, 2), (2, 1)]
            times = {setup: run_once(folder, workers=setup[0], threads=setup[1]) for setup in order}
            ratio = times[(1, 2)] / times[(2, 1)]
            ratios.append(ratio)
            print(f"round {round_ + 1}: 1 worker x 2 threads {times[(1, 2)]:.1f} s, "
                  f"2 workers x 1 thread {times[(2, 1)]:.1f} s: {ratio:.2f}x", flush=True)
    median = statistics.median(ratios)
    print(f"8-trial grid, {os.cpu_count()} cores: --workers 2 is {median:.2f}x as fast as 1 worker with 2 threads "
          f"(median of {len(ratios)}; goal >= {args.goal})")
    if median < args.goal:
        sys.exit(1)


if __name__ == "__main__":
    main()
