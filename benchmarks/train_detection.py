"""Train the detection specs of the zoo on the built-in shapes scenes (64x64, one to three
objects per image) and check the goals of the detection issue on CPU:

    yolov1_shapes       box mAP@0.5 >= 0.6 in under 15 minutes
    fast_rcnn_shapes    proposals classified right >= 90% (val top-1 over sampled regions)
    mask_rcnn_shapes    mask mAP@0.5 >= 0.5

    .venv/bin/python benchmarks/train_detection.py [SPEC ...] [--epochs N] [--train-size N]
        [--val-size N] [--batch-size N] [--lr X] [--threads N] [--seed N] [--run-dir DIR]

SPEC is a name among the three above (default: all). Each run uses the trainer exactly as
`blockgraph train` does (the task comes from the spec: a `yolo_head` output learns YOLO v1's
loss; a spec that takes boxes learns to classify, refine and mask sampled regions), prints one
line per epoch and a verdict; the exit status is 1 when a goal is missed. Validation mAP is
torchmetrics' MeanAveragePrecision (COCO's definition) over the whole validation split.
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

# name -> (metric key, goal, what it is, default settings, vars)
RUNS = {
    "yolov1_shapes": ("val_map50", 0.6, "box mAP@0.5",
                      {"epochs": 8, "train_size": 8000, "batch_size": 64, "lr": 2e-3, "schedule": "onecycle"}, {}),
    "fast_rcnn_shapes": ("val_top1", 0.9, "regions classified right",
                         {"epochs": 6, "train_size": 3000, "batch_size": 32, "lr": 1e-3}, {}),
    # the mask branch runs on every sampled region: a narrower, shallower one and 32 regions an
    # image keep a CPU run under half an hour (the spec's defaults are 64 wide, 4 convs, 64 regions)
    "mask_rcnn_shapes": ("val_mask_map50", 0.5, "mask mAP@0.5",
                         {"epochs": 6, "train_size": 3000, "batch_size": 32, "lr": 1e-3},
                         {"mask_width": 32, "mask_convs": 2, "rois": 32}),
}


def _fmt(row: dict, key: str) -> str:
    value = row.get(key)
    return "   -  " if value is None else f"{100 * value:6.2f}%"


def run(name: str, args) -> bool:
    key, goal, what, settings, spec_vars = RUNS[name]
    settings = {"schedule": "cosine", **settings}
    for option in ("epochs", "train_size", "batch_size", "lr"):
        if getattr(args, option) is not None:
            settings[option] = getattr(args, option)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = str(Path(args.run_dir) / name) if args.run_dir else str(Path(tmp) / "run")
        start = time.perf_counter()
        result = compiler.train(ROOT / "specs" / f"{name}.yaml", quiet=True, vars=spec_vars, dataset="shapes",
                                val_size=args.val_size, optimizer="adamw", weight_decay=1e-4,
                                device="cpu", seed=args.seed, run_dir=run_dir, **settings)
        total = time.perf_counter() - start
    print(f"specs/{name}.yaml on shapes scenes 64x64 ({settings['train_size']} train / {args.val_size} val), "
          f"{settings['epochs']} epochs, batch {settings['batch_size']}, adamw lr {settings['lr']:g} "
          f"{settings['schedule']}, "
          f"{torch.get_num_threads()} thread(s)" + (f", vars {spec_vars}" if spec_vars else ""))
    for row in result.history:
        print(f"  epoch {row['epoch']:>2}: mAP@0.5 {_fmt(row, 'val_map50')}  mAP {_fmt(row, 'val_map')}  "
              f"mask mAP@0.5 {_fmt(row, 'val_mask_map50')}  region top-1 {_fmt(row, 'val_top1')}  "
              f"train loss {row['train_loss']:.4f}  {row['seconds']:6.1f} s  {row['images_per_s']:,.0f} img/s")
    final = result.history[-1][key]
    ok = final is not None and final >= goal
    print(f"  {what} {100 * (final or 0):.2f}% in {total:.0f} s: goal {100 * goal:g}% "
          f"{'reached' if ok else 'NOT reached'}\n")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*", choices=[*RUNS, []], default=list(RUNS), metavar="SPEC")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--val-size", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default=None, help="keep the runs under this folder (default: temporary)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = [run(name, args) for name in (args.specs or list(RUNS))]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
