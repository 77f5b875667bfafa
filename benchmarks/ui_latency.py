"""How long the designer takes to react to an edit: validation + graph update for a zoo spec.

Times the app's own update function, `ui.designer.refresh` (load + analyze + DOT source +
summary rows, what ui/app.py runs after every change of the text), on specs/resnet50.yaml
after a one-character edit: each timed run edits a different character of the header
comment, so no run is served from the cache. Like the app, it first calls
`designer.warm_up()` (imports torch, freezes import-time objects out of the GC). Reports the
median (the goal is under 300 ms) and exits 1 when it is over.

    .venv/bin/python benchmarks/ui_latency.py [--spec specs/resnet50.yaml] [--repeats 30]
                                              [--goal-ms 300] [--depth 0] [--also]

`--also` adds the largest zoo specs (informational: the goal applies to --spec).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ui import designer  # noqa: E402

ALSO = ["resnet152", "densenet201", "inception_resnet_v2", "dpn92"]


def edits(text: str, count: int) -> list[str]:
    """`count` distinct one-character edits of `text`: a letter of its first comment line
    replaced by another (the spec stays valid, but the text, and so the cache key, changes)."""
    first = text.splitlines()[0]
    positions = [i for i, c in enumerate(first) if c.isalpha()]
    if not positions:
        raise SystemExit("the spec must start with a comment line to edit")
    out = []
    for n in range(count):
        i = positions[n % len(positions)]
        new = "x" if text[i] != "x" else "y"
        variant = text[:i] + new + text[i + 1:]
        if n >= len(positions):  # more runs than letters: also vary a second one
            j = positions[(n // len(positions)) % len(positions)]
            variant = variant[:j] + ("q" if variant[j] != "q" else "z") + variant[j + 1:]
        out.append(variant)
    return out


def measure(path: Path, repeats: int, depth: int) -> dict:
    text = path.read_text()
    file = str(path.resolve())
    start = time.perf_counter()
    view = designer.refresh(text, None, file, depth)  # cold: imports, schemas, first analysis
    cold = time.perf_counter() - start
    if not view.result.ok:
        raise SystemExit(f"{path}: {view.result.errors[0]}")
    runs, check = [], []
    for variant in edits(text, repeats):
        start = time.perf_counter()
        view = designer.refresh(variant, None, file, depth)
        runs.append(time.perf_counter() - start)
        check.append(view.result.seconds)
        assert view.result.ok and view.dot
    # the parts, for one more edit
    variant = edits(text, repeats + 1)[-1]
    t0 = time.perf_counter()
    result = designer.analyse(variant, None, file)
    t1 = time.perf_counter()
    designer.dot_source(result, depth)
    t2 = time.perf_counter()
    designer.refresh(variant, None, file, depth)
    hit0 = time.perf_counter()
    designer.refresh(variant, None, file, depth)  # the same text again: served from the cache
    hit = time.perf_counter() - hit0
    return {"nodes": len(view.result.spec.nodes), "median": statistics.median(runs), "max": max(runs),
            "p90": sorted(runs)[int(0.9 * (len(runs) - 1))], "cold": cold, "load_analyze": t1 - t0,
            "dot": t2 - t1, "hit": hit, "units": len(view.rows)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "resnet50.yaml"))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--goal-ms", type=float, default=300.0)
    parser.add_argument("--depth", type=int, default=0, help="graph depth (0: blocks collapsed, as the app opens)")
    parser.add_argument("--also", action="store_true", help="also time the largest zoo specs")
    args = parser.parse_args()
    designer.warm_up()  # as ui/app.py does at its first run: torch imported, gc.freeze()
    paths = [Path(args.spec)] + ([ROOT / "specs" / f"{n}.yaml" for n in ALSO] if args.also else [])
    print(f"{'spec':<22}{'nodes':>6}{'boxes':>6}{'median ms':>11}{'p90 ms':>8}{'max ms':>8}"
          f"{'load+analyze':>14}{'dot':>7}{'cached':>8}{'cold ms':>9}")
    status = 0
    for i, path in enumerate(paths):
        m = measure(path, args.repeats, args.depth)
        print(f"{path.stem:<22}{m['nodes']:>6}{m['units']:>6}{m['median'] * 1e3:>11.1f}{m['p90'] * 1e3:>8.1f}"
              f"{m['max'] * 1e3:>8.1f}{m['load_analyze'] * 1e3:>14.1f}{m['dot'] * 1e3:>7.1f}"
              f"{m['hit'] * 1e3:>8.3f}{m['cold'] * 1e3:>9.0f}")
        if i == 0 and m["median"] * 1e3 > args.goal_ms:
            print(f"  {path.stem}: median {m['median'] * 1e3:.1f} ms is over the {args.goal_ms:.0f} ms goal")
            status = 1
    if status == 0:
        print(f"goal met: {Path(args.spec).stem} updates in under {args.goal_ms:.0f} ms after an edit (median)")
    return status


if __name__ == "__main__":
    sys.exit(main())
