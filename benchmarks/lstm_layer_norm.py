"""What the layer-normalised LSTM (`lstm` with `layer_norm: true`, Ba et al. 2016) costs against
PyTorch's nn.LSTM: forward, and forward + backward, on the adding problem's shape (T = 100
steps of 2 features, H = 128) by default.

nn.LSTM runs the whole recurrence in one fused kernel (oneDNN on the CPU, cuDNN on a GPU);
the layer-normalised one runs a Python loop of T steps, each a few small ops. To separate
the cost of the loop from the cost of the norms, a third model runs the same loop without
them (`loop` below: the same cell with the three layer norms replaced by identities).

    .venv/bin/python benchmarks/lstm_layer_norm.py [--batch 32] [--steps 100] [--hidden 128] [--repeats 5]
        [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler.blocks.recurrent_modules import LayerNormLSTM, Recurrent  # noqa: E402


def models(features: int, hidden: int, steps: int) -> dict[str, nn.Module]:
    fused = Recurrent(nn.LSTM(features, hidden, batch_first=True), "last")
    normed = LayerNormLSTM(features, hidden, 1, False, 0.0, "last", steps)
    loop = LayerNormLSTM(features, hidden, 1, False, 0.0, "last", steps)
    for cell in loop.cells:
        cell.norm_ih = cell.norm_hh = cell.norm_cell = nn.Identity()
    return {"nn.LSTM (fused kernel)": fused, "layer_norm: true": normed, "loop, no norms": loop}


def timed(fn, repeats: int) -> float:
    """Best seconds of `repeats` runs after one warm-up run: on a shared machine the least
    disturbed run is the closest to the cost (the median moves with the other processes)."""
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--features", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier figures)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.steps, args.features)
    print(f"batch {args.batch}, T = {args.steps}, F = {args.features}, H = {args.hidden}, "
          f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}")
    print(f"{'model':<24}{'params':>8}{'forward ms':>12}{'fwd+bwd ms':>12}{'vs nn.LSTM':>12}", flush=True)
    baseline = None
    for name, model in models(args.features, args.hidden, args.steps).items():
        params = sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            forward = timed(lambda: model(x), args.repeats)
        both = timed(lambda: model(x).sum().backward(), args.repeats)
        baseline = baseline or both
        print(f"{name:<24}{params:>8,}{forward * 1e3:>12.1f}{both * 1e3:>12.1f}{both / baseline:>11.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
