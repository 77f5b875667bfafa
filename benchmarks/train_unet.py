"""Train specs/unet_small_shapes.yaml on the masks of the built-in shapes dataset (64x64) and
check the goal of the "dense prediction" issue: a validation mIoU of at least 0.8 on CPU.

    .venv/bin/python benchmarks/train_unet.py [--epochs 8] [--goal 0.8] [--train-size 6000]
        [--val-size 500] [--batch-size 32] [--lr 0.003] [--device cpu] [--threads N] [--run-dir DIR]

The spec's output is [7, 64, 64] (background + 6 shapes, per pixel), so the trainer learns
segmentation: pixel-wise cross-entropy, AdamW with a one-cycle schedule, mIoU over the 7
classes (torchmetrics) on the validation split after every epoch. It prints one line per
epoch (val mIoU, pixel accuracy, train loss, epoch time, images/s) and exits with status 1
when the last epoch's val mIoU is under the goal. The run directory (metrics, curves.png,
checkpoint) is a temporary one unless --run-dir is given.
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

SPEC = ROOT / "specs" / "unet_small_shapes.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--goal", type=float, default=0.8, help="val mIoU to reach (default 0.8)")
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--val-size", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default=None, help="keep the run here (default: a temporary directory)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir or str(Path(tmp) / "run")
        start = time.perf_counter()
        result = compiler.train(SPEC, quiet=True, dataset="shapes", epochs=args.epochs, train_size=args.train_size,
                                val_size=args.val_size, batch_size=args.batch_size, optimizer="adamw", lr=args.lr,
                                weight_decay=1e-4, schedule="onecycle", device=args.device, seed=args.seed,
                                run_dir=run_dir)
        total = time.perf_counter() - start
    print(f"specs/unet_small_shapes.yaml on shapes masks 64x64 ({args.train_size} train / {args.val_size} val images), "
          f"{args.epochs} epochs, batch {args.batch_size}, adamw lr {args.lr:g} onecycle, device {args.device}, "
          f"{torch.get_num_threads()} thread(s)")
    for row in result.history:
        print(f"epoch {row['epoch']}: val mIoU {100 * row['val_miou']:6.2f}%  pixel acc {100 * row['val_top1']:6.2f}%  "
              f"train loss {row['train_loss']:.4f}  {row['seconds']:6.1f} s  {row['images_per_s']:,.0f} img/s")
    final = result.history[-1]["val_miou"]
    ok = final >= args.goal
    print(f"val mIoU {100 * final:.2f}% after {args.epochs} epochs ({total:.0f} s in all): goal {100 * args.goal:g}% "
          f"{'reached' if ok else 'NOT reached'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
