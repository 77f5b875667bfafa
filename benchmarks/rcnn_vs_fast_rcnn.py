"""R-CNN against Fast R-CNN: images per second with the same layers and the same proposals
(issue 9, item 5; the point of Girshick 2015, table 4).

specs/rcnn_shapes.yaml warps every proposal to 28x28 and runs the CNN once per region;
specs/fast_rcnn_shapes.yaml runs the same CNN once per 64x64 image and RoI-pools each proposal
from the shared map. Both have the same layers and parameters (1,774,147), the same fc head,
and read the same boxes, so the ratio of their speeds is the cost of recomputing the
convolutions for every region.

Setup: CPU, eval mode under torch.inference_mode, float32, batches of `--batch` images of
the built-in shapes scenes (64x64, 1-4 objects), and R proposals per image drawn at random
(seeded) from the sliding-window proposals of compiler.detection.proposals. Each (spec, R)
is warmed up, then timed for `--rounds` rounds of at least `--seconds` each, alternating the
two specs; the table shows the median round. MACs per image are the static analysis's (vars
rois = R). Threads: torch's default unless OMP_NUM_THREADS is set (the recorded table used 1).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rcnn_vs_fast_rcnn.py             # prints the table
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rcnn_vs_fast_rcnn.py --write     # and into docs/detection.md
    .venv/bin/python benchmarks/rcnn_vs_fast_rcnn.py --rois 16 64 --rounds 1 --seconds 0.2   # a quick look
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import compiler  # noqa: E402
from compiler.data import build_dataset  # noqa: E402
from compiler.detection.proposals import sliding_windows  # noqa: E402

SPECS = {"R-CNN": ROOT / "specs" / "rcnn_shapes.yaml", "Fast R-CNN": ROOT / "specs" / "fast_rcnn_shapes.yaml"}
DOC = ROOT / "docs" / "detection.md"
BEGIN, END = "<!-- rcnn_vs_fast_rcnn: begin -->", "<!-- rcnn_vs_fast_rcnn: end -->"


def inputs(batch: int, rois: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch` shapes scenes and `rois` sliding-window proposals per image, drawn at random."""
    dataset, _ = build_dataset("shapes", "val", size=64, task="detection", objects=(1, 4), val_size=batch, seed=seed)
    images = torch.stack([dataset[i][0] for i in range(batch)])
    windows = sliding_windows(64)
    gen = torch.Generator().manual_seed(seed)
    picks = torch.stack([torch.randint(len(windows), (rois,), generator=gen) for _ in range(batch)])
    return images, windows[picks]


def time_round(model, images, boxes, seconds: float) -> float:
    """Seconds per batch, averaged over as many calls as fit in `seconds` (at least 2)."""
    calls, start = 0, time.perf_counter()
    while True:
        model(images, boxes)
        calls += 1
        elapsed = time.perf_counter() - start
        if calls >= 2 and elapsed >= seconds:
            return elapsed / calls


def run(rois_list: list[int], batch: int, rounds: int, seconds: float) -> list[dict]:
    rows = []
    for rois in rois_list:
        images, boxes = inputs(batch, rois)
        models, macs = {}, {}
        for name, path in SPECS.items():
            spec = compiler.load(path, vars={"rois": rois})
            macs[name] = compiler.analyze(spec).macs
            models[name] = compiler.build(spec, seed=0).eval()
        times: dict[str, list[float]] = {name: [] for name in SPECS}
        with torch.inference_mode():
            for model in models.values():
                model(images, boxes)  # warm-up
            for r in range(rounds):
                order = list(SPECS) if r % 2 == 0 else list(reversed(SPECS))
                for name in order:
                    times[name].append(time_round(models[name], images, boxes, seconds))
        per_image = {name: statistics.median(t) / batch for name, t in times.items()}
        rows.append({"rois": rois, "macs": macs, "ips": {n: 1.0 / s for n, s in per_image.items()},
                     "speedup": per_image["R-CNN"] / per_image["Fast R-CNN"]})
        print(f"R = {rois}: " + ", ".join(f"{n} {1.0 / s:,.1f} images/s" for n, s in per_image.items())
              + f", speed-up {rows[-1]['speedup']:.1f}x", file=sys.stderr)
    return rows


def table(rows: list[dict], batch: int, rounds: int, seconds: float) -> str:
    threads = torch.get_num_threads()
    lines = ["| proposals per image | R-CNN images/s | Fast R-CNN images/s | speed-up | R-CNN GMACs/image | "
             "Fast R-CNN GMACs/image |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['rois']} | {r['ips']['R-CNN']:,.1f} | {r['ips']['Fast R-CNN']:,.1f} | "
                     f"{r['speedup']:.1f}x | {r['macs']['R-CNN'] / 1e9:.2f} | {r['macs']['Fast R-CNN'] / 1e9:.2f} |")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    cpu = platform.processor() or platform.machine()
    lines += ["", f"CPU ({cpu}, {os.cpu_count()} cores, torch {torch.__version__.split('+')[0]}, "
              f"{threads} thread{'s' if threads != 1 else ''}), eval mode, float32, batches of {batch} images, "
              f"median of {rounds} rounds of at least {seconds:g} s; {when}."]
    return "\n".join(lines)


def write_doc(path: Path, text: str) -> None:
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} markers")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rois", type=int, nargs="+", default=[64, 256], help="proposals per image")
    parser.add_argument("--batch", type=int, default=8, help="images per call")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="least duration of one round")
    parser.add_argument("--write", action="store_true", help=f"put the table into {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    rows = run(args.rois, args.batch, args.rounds, args.seconds)
    text = table(rows, args.batch, args.rounds, args.seconds)
    print(text)
    if args.write:
        write_doc(DOC, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
