"""A slowed-down, traced trainer for tests that stop a run at a known step (the library reads
no environment variable for tests: this launcher passes hooks instead).

    python tests/train/hooked_train.py [--step-delay SECONDS] [--trace FILE] ARGS...
    python tests/train/hooked_train.py [--step-delay SECONDS] [--trace FILE] -m MODULE ARGS...

runs `blockgraph ARGS...` (the command line of `python -m compiler`), or module MODULE as
`python -m MODULE ARGS...` would (e.g. `-m streamlit run ui/app.py`: the designer's runs are
hooked too), with `compiler.train` wrapped so that every run also gets an `on_step` hook that
appends "EPOCH STEP" to FILE and then sleeps SECONDS, after the hook the caller passed (if any).
torchrun can launch this file as its training script; hooks run in rank 0 (the other ranks
wait for it at the next step's all-reduce).
"""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, before tests/train

import compiler.train  # noqa: E402  (the package: calling it calls its `train`)


def hooked(train, *, delay: float, trace: str | None):
    """`train` with the sleeping, tracing on_step hook composed after the caller's."""

    def run(*args, on_step=None, **kwargs):
        def step(info):
            if on_step is not None:
                on_step(info)
            if trace:
                with open(trace, "a") as fh:
                    fh.write(f"{info['epoch']} {info['step']}\n")
            if delay:
                time.sleep(delay)

        return train(*args, on_step=step, **kwargs)

    return run


def main(argv: list[str]) -> int:
    delay, trace = 0.0, None
    while argv and argv[0] in ("--step-delay", "--trace"):
        option, value, argv = argv[0], argv[1], argv[2:]
        if option == "--step-delay":
            delay = float(value)
        else:
            trace = value
    compiler.train.train = hooked(compiler.train.train, delay=delay, trace=trace)
    if argv[:1] == ["-m"]:
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    from compiler.cli import main as blockgraph

    return blockgraph(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
