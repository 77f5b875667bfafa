"""Recall of the sliding-window proposals (compiler.detection.proposals.sliding_windows) on the
built-in shapes scenes: the fraction of ground-truth boxes that some proposal overlaps with IoU
at least 0.5 and 0.7. The table in docs/detection.md ("Proposals") comes from this script.

    .venv/bin/python benchmarks/proposal_recall.py                  # 200 val scenes, 64x64, 1-4 objects
    .venv/bin/python benchmarks/proposal_recall.py --scenes 1000 --objects 1 6
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler.data import build_dataset  # noqa: E402
from compiler.detection.proposals import recall, sliding_windows  # noqa: E402

SETTINGS = [((16, 32, 48), (0.5, 1.0, 2.0), 8), ((12, 16, 24, 32, 48), (0.5, 1.0, 2.0), 4)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--objects", type=int, nargs=2, default=[1, 4], metavar=("MIN", "MAX"))
    args = parser.parse_args(argv)
    dataset, _ = build_dataset("shapes", "val", size=args.size, task="detection", objects=tuple(args.objects),
                               val_size=args.scenes)
    gts = [dataset[i][1]["boxes"] for i in range(args.scenes)]
    every = torch.cat(gts)
    sides = torch.cat([every[:, 2] - every[:, 0], every[:, 3] - every[:, 1]])
    print(f"{args.scenes} val scenes of {args.size}x{args.size}, {args.objects[0]}-{args.objects[1]} objects: "
          f"{len(every)} boxes, sides {sides.min():.0f} to {sides.max():.0f} pixels (median {sides.median():.0f})")
    print("| sizes | ratios | stride | proposals | recall at IoU 0.5 | at IoU 0.7 |")
    print("|---|---|---:|---:|---:|---:|")
    for sizes, ratios, stride in SETTINGS:
        windows = sliding_windows(args.size, sizes, ratios, stride)
        r = {iou: sum(recall(windows, g, iou) * len(g) for g in gts) / len(every) for iou in (0.5, 0.7)}
        print(f"| {', '.join(map(str, sizes))} | {', '.join(f'{x:g}' for x in ratios)} | {stride} | {len(windows):,} | "
              f"{r[0.5]:.2f} | {r[0.7]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
