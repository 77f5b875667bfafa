"""How fast blockgraph looks at a network: load, analyse (shapes, parameters, MACs, receptive
fields, memory) and render, for the largest zoo specs. Goal: analysing ResNet-152 in under
50 ms (measured after one warm-up run; loading the file is timed separately).

    .venv/bin/python benchmarks/analyze_speed.py [--repeats 20] [--goal-ms 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import compiler  # noqa: E402
from compiler.render import render  # noqa: E402

SPECS = ["resnet152", "densenet201", "inception_resnet_v2", "dpn92", "googlenet", "vgg16"]


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--goal-ms", type=float, default=50.0, help="goal for analysing resnet152")
    args = parser.parse_args()
    status = 0
    print(f"{'spec':<22}{'nodes':>7}{'load ms':>10}{'analyze ms':>12}{'render svg ms':>15}")
    for name in SPECS:
        path = ROOT / "specs" / f"{name}.yaml"
        load_ms, _ = timed(lambda: compiler.load(path), args.repeats)
        spec = compiler.load(path)
        analyze_ms, best = timed(lambda: compiler.analyze(spec), args.repeats)
        analysis = compiler.analyze(spec)
        with tempfile.TemporaryDirectory() as tmp:
            render_ms, _ = timed(lambda: render(analysis, Path(tmp) / "g.svg"), max(3, args.repeats // 5))
        print(f"{name:<22}{len(spec.nodes):>7}{load_ms * 1e3:>10.1f}{analyze_ms * 1e3:>12.1f}{render_ms * 1e3:>15.1f}")
        if name == "resnet152" and analyze_ms * 1e3 > args.goal_ms:
            print(f"  resnet152: analyze median {analyze_ms * 1e3:.1f} ms is over the {args.goal_ms:.0f} ms goal")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
