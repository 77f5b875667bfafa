"""Speed of compiled specs against the hand-written models they reproduce (issue 7, item 3).

For each spec (resnet18, resnet50, vgg16_bn, densenet121, googlenet, resnext50_32x4d from
torchvision; seresnet50, dpn68, inception_resnet_v2 from timm) the reference is built, its
weights are imported into the spec (compiler.import_weights, so both compute the same
numbers), and both are timed in the same process, alternating which goes first each round:

- forward (eval, inference mode) and forward+backward (train mode, sum of logits),
- eager and under torch.compile (skipped with --modes eager),
- at each batch size (default 1 and 32),
- on CUDA with bf16 autocast and channels_last when a GPU is present, else on the CPU in float32.

The ratio is reference time / spec time (median of the rounds): 1.00 means as fast, above 1
faster, below 0.98 slower than noise allows. Also timed: spec-to-module (load + analyse +
build, weights initialised) against the reference's constructor.

    .venv/bin/python benchmarks/vs_reference.py                   # the full table -> docs/benchmarks.md
    .venv/bin/python benchmarks/vs_reference.py --models resnet18 --batches 1 --rounds 3 --out -

The full run takes long (an hour or more on 2 CPU cores with torch.compile) and needs a quiet
machine: other processes distort the ratios. The rows measured so far are kept in --rows (a JSON
file) and the page is rewritten after every model, so an interrupted run loses at most one model:
run the same command again with --resume to measure only the models still missing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
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
from compiler.weights import construct  # noqa: E402

MODELS = ["resnet18", "resnet50", "vgg16_bn", "densenet121", "googlenet", "resnext50_32x4d",
          "seresnet50", "dpn68", "inception_resnet_v2"]
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- vs_reference: begin -->", "<!-- vs_reference: end -->"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _step(model, x, device, backward: bool):
    """One timed call: a forward in inference mode, or forward+backward in train mode."""
    if backward:
        with _autocast(device):
            out = model(x)
        out = out[0] if isinstance(out, (tuple, list)) else out
        out.float().sum().backward()
    else:
        with torch.inference_mode(), _autocast(device):
            model(x)


def _timed(model, x, device, backward: bool) -> float:
    _sync(device)
    start = time.perf_counter()
    _step(model, x, device, backward)
    _sync(device)
    return time.perf_counter() - start


def compare(ours, theirs, x, device, backward: bool, rounds: int, warmup: int) -> tuple[float, float]:
    """Median seconds per call (ours, reference), alternating which runs first."""
    for m in (ours, theirs):
        m.train(backward)
        for _ in range(warmup):
            _step(m, x, device, backward)
            m.zero_grad(set_to_none=True)
    times: tuple[list[float], list[float]] = ([], [])
    for r in range(rounds):
        order = ((0, ours), (1, theirs)) if r % 2 == 0 else ((1, theirs), (0, ours))
        for i, m in order:
            times[i].append(_timed(m, x, device, backward))
            m.zero_grad(set_to_none=True)
    return statistics.median(times[0]), statistics.median(times[1])


def build_time(name: str, rounds: int) -> tuple[float, float]:
    """Median seconds: spec file -> initialised module, and the reference constructor."""
    spec_path = ROOT / "specs" / f"{name}.yaml"
    reference = compiler.load(spec_path).reference
    ours, theirs = [], []
    for r in range(rounds):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            start = time.perf_counter()
            if which == 0:
                compiler.build(compiler.load(spec_path))
                ours.append(time.perf_counter() - start)
            else:
                construct(reference)
                theirs.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(theirs)


def _pair(name: str, device: torch.device):
    spec = compiler.load(ROOT / "specs" / f"{name}.yaml")
    torch.manual_seed(0)
    theirs = construct(spec.reference)
    ours = compiler.build(spec, seed=0)
    compiler.import_weights(ours, theirs)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    return spec, ours.to(device, memory_format=fmt), theirs.to(device, memory_format=fmt), fmt


def run(models, batches, modes, rounds, warmup, device, log, done) -> None:
    """Measure every model in turn; `done(name, rows)` is told after each one."""
    for name in models:
        rows = []
        b_ours, b_ref = build_time(name, max(5, rounds))
        rows.append({"spec": name, "what": "spec -> module", "mode": "-", "batch": "-",
                     "ours": b_ours, "ref": b_ref})
        log(rows[-1])
        spec, ours, theirs, fmt = _pair(name, device)
        for mode in modes:
            if mode == "compile":
                torch._dynamo.reset()
                pair = (torch.compile(ours), torch.compile(theirs))
            else:
                pair = (ours, theirs)
            for batch in batches:
                x = torch.randn(batch, *spec.inputs["image"], device=device).contiguous(memory_format=fmt)
                for backward in (False, True):
                    t_ours, t_ref = compare(*pair, x, device, backward, rounds, warmup)
                    rows.append({"spec": name, "what": "forward+backward" if backward else "forward", "mode": mode,
                                 "batch": batch, "ours": t_ours, "ref": t_ref})
                    log(rows[-1])
        del ours, theirs, pair
        done(name, rows)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def table(rows: list[dict]) -> str:
    lines = ["| spec | measured | mode | batch | spec ms | reference ms | ratio |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["ref"] / r["ours"]
        flag = " **(slower)**" if ratio < 0.98 else ""
        lines.append(f"| {r['spec']} | {r['what']} | {r['mode']} | {r['batch']} | {_ms(r['ours'])} | "
                     f"{_ms(r['ref'])} | {ratio:.2f}{flag} |")
    return "\n".join(lines)


def environment(device: torch.device, args, missing: list[str]) -> str:
    where = (torch.cuda.get_device_name(device) + ", bf16 autocast, channels_last") if device.type == "cuda" \
        else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads), float32"
    return (f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {where}; "
            f"torch {torch.__version__}, Python {platform.python_version()}; {args.rounds} alternating rounds "
            f"after {args.warmup} warm-up call(s), medians. Command: `{' '.join(['benchmarks/vs_reference.py', *sys.argv[1:]])}`"
            + (f"\n\n**Not measured yet: {', '.join(missing)}** (run again with --resume)." if missing else ""))


def write_doc(path: Path, text: str) -> None:
    """Replace the generated section of docs/benchmarks.md (the rest of the page is kept)."""
    block = f"{BEGIN}\n{text}\n{END}"
    old = path.read_text() if path.is_file() else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated spec names")
    p.add_argument("--batches", default="1,32", help="comma-separated batch sizes (default 1,32)")
    p.add_argument("--modes", default="eager,compile", help="eager and/or compile (default both)")
    p.add_argument("--rounds", type=int, default=6, help="timed alternating rounds (default 6)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu or cuda")
    p.add_argument("--out", default=str(DOC), help="markdown file to update, or - to print only")
    p.add_argument("--rows", default=str(ROOT / "benchmarks" / "results" / "vs_reference.json"),
                   help="JSON file keeping the measured rows, per model (default benchmarks/results/vs_reference.json)")
    p.add_argument("--resume", action="store_true", help="keep the models already in --rows, measure the rest")
    args = p.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if not (ROOT / "specs" / f"{m}.yaml").is_file()]
    if unknown:
        p.error(f"no spec for {unknown}")
    modes = [m for m in args.modes.split(",") if m]
    if set(modes) - {"eager", "compile"}:
        p.error("--modes takes eager and/or compile")

    def log(r):
        print(f"{r['spec']:20} {r['what']:17} {r['mode']:8} {str(r['batch']):>5}  ours {_ms(r['ours']):>9} ms  "
              f"ref {_ms(r['ref']):>9} ms  ratio {r['ref'] / r['ours']:.2f}", flush=True)

    rows_file = Path(args.rows)
    measured: dict[str, list[dict]] = json.loads(rows_file.read_text()) if args.resume and rows_file.is_file() else {}
    measured = {m: measured[m] for m in models if m in measured}

    def publish(name=None, model_rows=None):
        if name is not None:
            measured[name] = model_rows
            rows_file.parent.mkdir(parents=True, exist_ok=True)
            rows_file.write_text(json.dumps(measured, indent=1) + "\n")
        rows = [r for m in models for r in measured.get(m, [])]
        text = environment(device, args, [m for m in models if m not in measured]) + "\n\n" + table(rows)
        if args.out == "-":
            if len(measured) == len(models):
                print(text)
        else:
            write_doc(Path(args.out), text)
            print(f"wrote {args.out}", flush=True)
        return rows

    todo = [m for m in models if m not in measured]
    if measured:
        print(f"kept from {rows_file}: {', '.join(measured)}; measuring {', '.join(todo) or 'nothing'}")
    run(todo, [int(b) for b in args.batches.split(",")], modes, args.rounds, args.warmup, device, log, publish)
    rows = publish()
    slower = [r for r in rows if r["ref"] / r["ours"] < 0.98]
    print(f"{len(slower)} of {len(rows)} ratios below 0.98")
    return 0


if __name__ == "__main__":
    sys.exit(main())
