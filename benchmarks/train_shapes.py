"""Train specs/default.yaml on the built-in shapes dataset at 32x32 and check the goal of the
"Training" issue: at least 95% validation top-1 within 5 epochs.

    .venv/bin/python benchmarks/train_shapes.py [--epochs 5] [--goal 0.95] [--device auto]
        [--batch-size 128] [--lr 0.1] [--workers 0] [--amp off] [--run-dir DIR]

It prints one line per epoch (val top-1, train loss, epoch time, images/s) and exits with
status 1 when the last epoch's val top-1 is under the goal. The run directory (metrics,
curves.png, checkpoint) is a temporary one unless --run-dir is given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import compiler  # noqa: E402
from compiler.data import build_dataset  # noqa: E402

MAX_EPOCHS = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=MAX_EPOCHS, help=f"at most {MAX_EPOCHS} (the goal's budget)")
    parser.add_argument("--goal", type=float, default=0.95, help="val top-1 to reach (default 0.95)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default=None, help="keep the run here (default: a temporary directory)")
    args = parser.parse_args()
    if not 1 <= args.epochs <= MAX_EPOCHS:
        parser.error(f"--epochs must be between 1 and {MAX_EPOCHS}")

    _, info = build_dataset("shapes", "val", size=32, seed=args.seed, progress=False)
    spec = ROOT / "specs" / "default.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir or str(Path(tmp) / "run")
        start = time.perf_counter()
        result = compiler.train(spec, vars={"classes": info.num_classes}, quiet=True, dataset="shapes", size=32,
                                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, workers=args.workers,
                                amp=args.amp, device=args.device, seed=args.seed, run_dir=run_dir)
        total = time.perf_counter() - start
    print(f"specs/default.yaml (classes={info.num_classes}) on shapes 32x32, {args.epochs} epochs, "
          f"batch {args.batch_size}, sgd lr {args.lr:g} cosine, device {args.device}")
    for row in result.history:
        print(f"epoch {row['epoch']}: val top-1 {100 * row['val_top1']:6.2f}%  train loss {row['train_loss']:.4f}  "
              f"{row['seconds']:6.1f} s  {row['images_per_s']:,.0f} img/s")
    final = result.history[-1]["val_top1"]
    ok = final >= args.goal
    print(f"val top-1 {100 * final:.2f}% after {args.epochs} epochs ({total:.0f} s in all): goal {100 * args.goal:g}% "
          f"{'reached' if ok else 'NOT reached'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
