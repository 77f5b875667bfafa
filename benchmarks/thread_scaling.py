"""What the second core gives one small net's training steps: two torch threads in one process
against two one-thread processes side by side (the ceiling of `study run --workers 2` over one
worker with two threads, once every fixed cost is gone).

    .venv/bin/python benchmarks/thread_scaling.py               # width 16, 3 rounds of 5 s each
    .venv/bin/python benchmarks/thread_scaling.py --width 8 --rounds 5

Each round times the SGD steps (forward, loss, backward, update) of benchmarks/study_workers.py's
net on one fixed batch in fresh processes: one thread alone, two threads alone, and two one-thread
processes at once; the order of the three rotates between rounds. It prints the medians and the
throughput of the pair over that of two threads: `--workers 2` can beat two threads by more only
on the part of a trial that is not steps (drawing the dataset, plots, checkpoints).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def steps_child(threads: int, width: int, seconds: float) -> None:
    """In a child process: print milliseconds per training step."""
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    import compiler
    from study_workers import SPEC

    model = compiler.build(compiler.load(SPEC, vars={"width": width}))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    images, labels = torch.randn(32, 3, 24, 24), torch.randint(0, 6, (32,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(50):
        step()
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    print(1000 * (time.perf_counter() - start) / count)


def timed(threads: int, copies: int, width: int, seconds: float) -> list[float]:
    command = [sys.executable, __file__, "--child", str(threads), "--width", str(width), "--seconds", str(seconds)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    return [float(p.communicate()[0]) for p in procs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        steps_child(args.child, args.width, args.seconds)
        return
    setups = {"1 thread alone": (1, 1), "2 threads alone": (2, 1), "2 processes x 1 thread": (1, 2)}
    times: dict[str, list[float]] = {name: [] for name in setups}
    for round_ in range(args.rounds):
        names = list(setups)[round_ % 3:] + list(setups)[:round_ % 3]
        for name in names:
            threads, copies = setups[name]
            times[name] += timed(threads, copies, args.width, args.seconds)
        print(f"round {round_ + 1}: " + ", ".join(f"{n} {statistics.mean(times[n][-setups[n][1]:]):.2f} ms"
                                                  for n in setups), flush=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    pair_over_threads = (2 / median["2 processes x 1 thread"]) / (1 / median["2 threads alone"])
    print(f"width {args.width}, ms per step (median): " + ", ".join(f"{n} {m:.2f}" for n, m in median.items()))
    print(f"two threads speed a step {median['1 thread alone'] / median['2 threads alone']:.2f}x; "
          f"side by side a step takes {median['2 processes x 1 thread'] / median['1 thread alone']:.2f}x as long as alone; "
          f"the pair's steps per second over two threads': {pair_over_threads:.2f}x")


if __name__ == "__main__":
    main()
