"""The sequence models of issue 20, trained as their specs say: the adding problem with the LSTM's
forget-gate bias at 1.0 (specs/lstm_adding.yaml as written) against 0.0 (the same spec with that one
value changed), same seed, data and budget; and the GRU that reads the shapes row by row
(specs/gru_shapes_rows.yaml, 5 epochs).

    .venv/bin/python benchmarks/train_sequences.py [--only adding|gru] [--steps 100] [--epochs N]
        [--train-size N] [--threads 1] [--seed 0]

It prints, per epoch, each run's validation MSE next to the trivial baseline (always predicting the
mean sum 1.0: MSE 2/12 = 0.167), the first epoch each run goes below a tenth of it, and the GRU's
validation top-1. docs/training.md#sequences records a run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import compiler  # noqa: E402
from compiler.data.sequences import ADDING_BASELINE_MSE  # noqa: E402

ADDING = ROOT / "specs" / "lstm_adding.yaml"
GRU = ROOT / "specs" / "gru_shapes_rows.yaml"
WRITTEN = "lstm: {forget_bias: 1.0}"


def adding_text(forget_bias: float, steps: int) -> str:
    """lstm_adding.yaml with its forget bias (and, for a shorter run, its length) changed."""
    text = ADDING.read_text()
    if WRITTEN not in text or "seq: [100, 2]" not in text:
        raise SystemExit(f"{ADDING} no longer says {WRITTEN!r} and seq: [100, 2]: update this script")
    return text.replace(WRITTEN, f"lstm: {{forget_bias: {forget_bias}}}").replace("seq: [100, 2]", f"seq: [{steps}, 2]")


def run_adding(args, tmp: Path) -> None:
    rows: dict[float, list[dict]] = {}
    seconds: dict[float, float] = {}
    for bias in (1.0, 0.0):
        options = {"epochs": args.epochs} if args.epochs else {}
        if args.train_size:
            options["train_size"] = args.train_size
        start = time.perf_counter()
        result = compiler.train(adding_text(bias, args.steps), quiet=True, seed=args.seed, device="cpu",
                                run_dir=str(tmp / f"adding-fb{bias}"), **options)
        seconds[bias] = time.perf_counter() - start
        rows[bias] = result.history
        print(f"forget_bias {bias}: {len(result.history)} epochs in {seconds[bias]:.0f} s", flush=True)
    print(f"\nadding problem, T={args.steps}: val MSE per epoch (baseline {ADDING_BASELINE_MSE:.4f})")
    print("| epoch | forget_bias 1.0 | forget_bias 0.0 |")
    print("|---|---|---|")
    for a, b in zip(rows[1.0], rows[0.0]):
        print(f"| {a['epoch']} | {a['val_loss']:.4f} | {b['val_loss']:.4f} |")
    for bias, history in rows.items():
        solved = next((r["epoch"] for r in history if r["val_loss"] < ADDING_BASELINE_MSE / 10), None)
        print(f"forget_bias {bias}: below a tenth of the baseline from epoch {solved or '-'}; "
              f"final {history[-1]['val_loss']:.4f} ({history[-1]['val_loss'] / ADDING_BASELINE_MSE:.3f} of it)")


def run_gru(args, tmp: Path) -> None:
    start = time.perf_counter()
    result = compiler.train(GRU, quiet=True, seed=args.seed, device="cpu", run_dir=str(tmp / "gru"),
                            **({"train_size": args.train_size} if args.train_size else {}))
    print(f"\ngru_shapes_rows: {len(result.history)} epochs in {time.perf_counter() - start:.0f} s")
    for r in result.history:
        print(f"epoch {r['epoch']}: val top-1 {100 * r['val_top1']:.2f}%  train loss {r['train_loss']:.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["adding", "gru"], default=None)
    parser.add_argument("--steps", type=int, default=100, help="the adding problem's length T (default 100)")
    parser.add_argument("--epochs", type=int, default=None, help="override the specs' epochs")
    parser.add_argument("--train-size", type=int, default=None, help="override the specs' train_size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), seed {args.seed}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "adding"):
            run_adding(args, Path(tmp))
        if args.only in (None, "gru"):
            run_gru(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
