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
faster, below 0.98 slower than noise allows. Also timed, alternately: spec -> module (weights
initialised, with each stage: load, analyze, construct, emit) against the reference's
constructor, in a table of their own with issue 19's goal (at most 1.5x, or 100 ms more).

    .venv/bin/python benchmarks/vs_reference.py                   # the full table -> docs/benchmarks.md
    .venv/bin/python benchmarks/vs_reference.py --models resnet18 --batches 1 --rounds 3 --out -

The full run takes long (three hours or more on 2 CPU cores with torch.compile) and needs a quiet
machine: other processes distort the ratios. The rows measured so far are kept in --rows (a JSON
file) and the page is rewritten after every model, so an interrupted run loses at most one model:
run the same command again with --resume to measure only the models still missing. A run of
some models keeps the other models' rows; --update keeps even the measured models' other rows.
With --out - (print only) nothing is stored unless --rows is given.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
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
from compiler.fx import StageTimes, build  # noqa: E402
from compiler.weights import construct  # noqa: E402

MODELS = ["resnet18", "resnet50", "vgg16_bn", "densenet121", "googlenet", "resnext50_32x4d",
          "seresnet50", "dpn68", "inception_resnet_v2"]
DOC = ROOT / "docs" / "benchmarks.md"
ROWS = ROOT / "benchmarks" / "results" / "vs_reference.json"
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


def compare(ours, theirs, x, device, backward: bool, rounds: int, warmup: int,
            min_seconds: float = 0.0, max_rounds: int = 200, reference_first: bool = False) -> tuple[float, float, int]:
    """Median seconds per call (ours, reference) and the rounds run, alternating which runs first.

    At least `rounds` rounds, and more (up to `max_rounds`) until each side has run for
    `min_seconds`: a 30 ms call then gets a hundred rounds, which an A/A check (a model
    against a copy of itself) needs to agree within 1 % on this machine, where six rounds
    left 3 %. `reference_first` warms the reference up first: under torch.compile the
    warm-up compiles, and which model is compiled first moved some rows by up to 3 %.
    """
    for m in ((theirs, ours) if reference_first else (ours, theirs)):
        m.train(backward)
        for _ in range(warmup):
            _step(m, x, device, backward)
            m.zero_grad(set_to_none=True)
    times: tuple[list[float], list[float]] = ([], [])
    r = 0
    while r < rounds or (r < max_rounds and min(sum(times[0]), sum(times[1])) < min_seconds):
        order = ((0, ours), (1, theirs)) if r % 2 == 0 else ((1, theirs), (0, ours))
        for i, m in order:
            times[i].append(_timed(m, x, device, backward))
            m.zero_grad(set_to_none=True)
        r += 1
    return statistics.median(times[0]), statistics.median(times[1]), r


STAGES = ("load", "analyze", "construct", "emit")
GOAL_RATIO, GOAL_EXTRA_S = 1.5, 0.100
"""Issue 19: spec -> module takes at most 1.5x the reference constructor's time, or at most 100 ms more."""


def build_time(name: str, rounds: int, min_seconds: float = 0.0, max_rounds: int = 200) -> dict:
    """Medians of spec file -> initialised module (`ours`, each stage's in `stages`) and of the
    reference constructor (`ref`), alternating which goes first, and the `rounds` run.

    As `timeit` does, the garbage collector is off while a call is timed; it runs, untimed,
    before each call. Otherwise a collection would land in one side's timing by chance: a
    GraphModule is freed only by the collector (its fx graph holds reference cycles), so the
    previous round's model would be freed in the middle of the next call, and a full collection
    of a process with torch, torchvision and timm loaded takes ~0.2 s."""
    spec_path = ROOT / "specs" / f"{name}.yaml"
    reference = compiler.load(spec_path).reference
    ours, theirs, stages = [], [], []  # seconds, seconds, StageTimes of each round
    r = 0
    while r < rounds or (r < max_rounds and min(sum(ours), sum(theirs)) < min_seconds):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                if which == 0:
                    stages.append(StageTimes())
                    model = build(spec_path, times=stages[-1])
                    ours.append(time.perf_counter() - start)
                else:
                    model = construct(reference)
                    theirs.append(time.perf_counter() - start)
            finally:
                gc.enable()
            del model
        r += 1
    return {"ours": statistics.median(ours), "ref": statistics.median(theirs), "rounds": r,
            "stages": {stage: statistics.median(getattr(t, stage) for t in stages) for stage in STAGES}}


def meets_goal(row: dict) -> bool:
    return row["ours"] <= max(GOAL_RATIO * row["ref"], row["ref"] + GOAL_EXTRA_S)


def _pair(name: str, device: torch.device):
    spec = compiler.load(ROOT / "specs" / f"{name}.yaml")
    torch.manual_seed(0)
    theirs = construct(spec.reference)
    ours = compiler.build(spec, seed=0)
    compiler.import_weights(ours, theirs)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    return spec, ours.to(device, memory_format=fmt), theirs.to(device, memory_format=fmt), fmt


WHATS = ("build", "forward", "backward")


def _now() -> str:
    return f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}"


def run(models, batches, modes, whats, rounds, warmup, min_seconds, device, log, done, compilations: int = 1) -> None:
    """Measure every model in turn; `done(name, rows)` is told after each one.

    `whats` picks the rows: "build" (spec -> module), "forward", "backward" (forward+backward).
    A compiled row compiles both models `compilations` times afresh, alternating which is
    compiled first, and reports the medians over those compilations (see compiled_row).
    """
    for name in models:
        rows = []
        if "build" in whats:
            rows.append({"spec": name, "what": "spec -> module", "mode": "-", "batch": "-",
                         **build_time(name, max(5, rounds), min_seconds), "at": _now()})
            log(rows[-1])
        passes = [backward for backward, what in ((False, "forward"), (True, "backward")) if what in whats]
        if passes and modes and batches:
            spec, ours, theirs, fmt = _pair(name, device)
            for mode in modes:
                for batch in batches:
                    x = torch.randn(batch, *spec.inputs["image"], device=device).contiguous(memory_format=fmt)
                    for backward in passes:
                        row = {"spec": name, "what": "forward+backward" if backward else "forward", "mode": mode,
                               "batch": batch}
                        if mode == "compile":
                            row.update(compiled_row(ours, theirs, x, device, backward, rounds, warmup, min_seconds,
                                                    compilations, first=(batch + backward) % 2))
                        else:
                            t_ours, t_ref, n = compare(ours, theirs, x, device, backward, rounds, warmup, min_seconds)
                            row.update({"ours": t_ours, "ref": t_ref, "rounds": n})
                        rows.append({**row, "at": _now()})
                        log(rows[-1])
            del ours, theirs
        done(name, rows)


def compiled_row(ours, theirs, x, device, backward: bool, rounds: int, warmup: int, min_seconds: float,
                 compilations: int, first: int = 0) -> dict:
    """Times of `torch.compile`d models, each compiled `compilations` times afresh.

    The same model compiled twice runs up to 3 % apart on this CPU, however many rounds one
    measures, and which model is compiled first moves a row by as much; so each compilation
    pair starts from `torch._dynamo.reset()`, pairs alternate which model compiles first
    (`first` picks the first pair's order, so that rows of one compilation differ), and the
    row keeps the median over the pairs (each pair's own times are in `compilations`)."""
    pairs = []
    for c in range(compilations):
        torch._dynamo.reset()
        reference_first = (c + first) % 2 == 0
        t_ours, t_ref, n = compare(torch.compile(ours), torch.compile(theirs), x, device, backward, rounds, warmup,
                                   min_seconds, reference_first=reference_first)
        pairs.append({"ours": t_ours, "ref": t_ref, "rounds": n,
                      "compiled_first": "reference" if reference_first else "spec"})
    row = {"ours": statistics.median(p["ours"] for p in pairs), "ref": statistics.median(p["ref"] for p in pairs),
           "rounds": sum(p["rounds"] for p in pairs)}
    if compilations == 1:
        row["compiled_first"] = pairs[0]["compiled_first"]
    else:
        row["compilations"] = pairs
    return row


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def table(rows: list[dict]) -> str:
    """The forward and forward+backward rows."""
    lines = ["| spec | measured | mode | batch | spec ms | reference ms | ratio | rounds | at (UTC) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["what"] == "spec -> module":
            continue
        ratio = r["ref"] / r["ours"]
        flag = " **(slower)**" if ratio < 0.98 else ""
        lines.append(f"| {r['spec']} | {r['what']} | {r['mode']} | {r['batch']} | {_ms(r['ours'])} | "
                     f"{_ms(r['ref'])} | {ratio:.2f}{flag} | {r.get('rounds', '?')}"
                     f"{' x ' + str(len(r['compilations'])) if r.get('compilations') else ''} | {r.get('at', '?')} |")
    return "\n".join(lines)


def build_table(rows: list[dict]) -> str:
    """The spec -> module rows: each stage's median, the total's against the constructor's, the goal."""
    lines = ["| spec | load ms | analyze ms | construct ms | emit ms | spec ms | reference ms | spec / reference "
             "| goal | rounds | at (UTC) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["what"] != "spec -> module":
            continue
        stages = r.get("stages", {})
        goal = "met" if meets_goal(r) else "**missed**"
        lines.append(f"| {r['spec']} | " + " | ".join(_ms(stages[s]) if s in stages else "?" for s in STAGES)
                     + f" | {_ms(r['ours'])} | {_ms(r['ref'])} | {r['ours'] / r['ref']:.2f} | {goal} | "
                       f"{r.get('rounds', '?')} | {r.get('at', '?')} |")
    return "\n".join(lines)


def _row_order(row: dict) -> tuple:
    """Table order within a spec: spec -> module, then eager/compile x batch x forward/backward."""
    if row["what"] == "spec -> module":
        return (0,)
    return (1, ["eager", "compile"].index(row["mode"]), row["batch"], row["what"] != "forward")


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """`old` with the rows measured again in `new` replaced (same what, mode and batch)."""
    key = lambda r: (r["what"], r["mode"], r["batch"])  # noqa: E731
    fresh = {key(r): r for r in new}
    kept = [r for r in old if key(r) not in fresh]
    return sorted(kept + list(fresh.values()), key=_row_order)


def environment(device: torch.device, args, missing: list[str]) -> str:
    where = (torch.cuda.get_device_name(device) + ", bf16 autocast, channels_last") if device.type == "cuda" \
        else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads), float32"
    return (f"Page written {_now()} UTC, on {where}; torch {torch.__version__}, Python "
            f"{platform.python_version()}. Each row: alternating rounds (its `rounds` column) after "
            f"{args.warmup} warm-up call(s), at least {args.rounds} and until each side ran "
            f"{args.min_seconds:g} s, medians; a compiled row with `x N` after its rounds is the median "
            f"of N fresh compilations of both models. `at` says when the row was measured. Last command: "
            f"`{' '.join(['benchmarks/vs_reference.py', *sys.argv[1:]])}`"
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
    p.add_argument("--what", default=",".join(WHATS),
                   help="rows to measure: build (spec -> module), forward, backward (default all three)")
    p.add_argument("--rounds", type=int, default=6, help="at least this many alternating rounds (default 6)")
    p.add_argument("--min-seconds", type=float, default=3.0,
                   help="and more rounds (up to 200) until each side ran this long (default 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    p.add_argument("--compilations", type=int, default=1,
                   help="compile each model this many times afresh per compiled row, alternating which "
                        "compiles first; the row keeps the medians (default 1)")
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu or cuda")
    p.add_argument("--out", default=str(DOC), help="markdown file to update, or - to print only")
    p.add_argument("--rows", default=None,
                   help="JSON file keeping the measured rows, per model (default benchmarks/results/vs_reference.json; "
                        "with --out - none unless given)")
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--resume", action="store_true", help="skip the models already in --rows, measure the rest")
    keep.add_argument("--update", action="store_true",
                      help="keep every row in --rows and replace only those measured now (the page shows them all)")
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
    whats = [w for w in args.what.split(",") if w]
    if not whats or set(whats) - set(WHATS):
        p.error(f"--what takes {', '.join(WHATS)}")
    try:
        batches = [int(b) for b in args.batches.split(",") if b]
    except ValueError:
        p.error("--batches takes comma-separated integers")

    def log(r):
        print(f"{r['spec']:20} {r['what']:17} {r['mode']:8} {str(r['batch']):>5}  ours {_ms(r['ours']):>9} ms  "
              f"ref {_ms(r['ref']):>9} ms  ratio {r['ref'] / r['ours']:.2f}  ({r['rounds']} rounds)"
              + "".join(f"  {s} {_ms(t)}" for s, t in r.get("stages", {}).items()), flush=True)

    # Rows of the models not measured now are always kept: a run of some models never loses
    # the others'. A quick look (--out -) stores nothing unless --rows is given.
    rows_file = Path(args.rows) if args.rows else None if args.out == "-" else ROWS
    stored: dict[str, list[dict]] = json.loads(rows_file.read_text()) if rows_file and rows_file.is_file() else {}
    measured = dict(stored) if args.resume or args.update else {m: r for m, r in stored.items() if m not in models}
    selected = [m for m in MODELS if m in models] + [m for m in models if m not in MODELS]
    everything = [m for m in MODELS if m in measured or m in models]
    everything += [m for m in dict.fromkeys([*measured, *models]) if m not in MODELS]
    shown = selected if args.out == "-" else everything

    def publish(name=None, model_rows=None):
        if name is not None:
            measured[name] = merge(measured.get(name, []), model_rows) if args.update else model_rows
            if rows_file is not None:
                rows_file.parent.mkdir(parents=True, exist_ok=True)
                rows_file.write_text(json.dumps(measured, indent=1) + "\n")
        rows = [r for m in shown for r in measured.get(m, [])]
        text = (environment(device, args, [m for m in shown if m not in measured])
                + "\n\nSpec -> module (stages: medians of the spec's builds; goal: at most "
                f"{GOAL_RATIO:g}x the reference constructor or {GOAL_EXTRA_S * 1e3:.0f} ms more):\n\n"
                + build_table(rows) + "\n\nForward and forward+backward:\n\n" + table(rows))
        if args.out == "-":
            if all(m in measured for m in shown):
                print(text)
        else:
            write_doc(Path(args.out), text)
            print(f"wrote {args.out}", flush=True)
        return rows

    todo = [m for m in selected if args.update or not (args.resume and m in measured)]
    if args.resume and measured:
        print(f"kept from {rows_file}: {', '.join(measured)}; measuring {', '.join(todo) or 'nothing'}")
    if args.compilations < 1:
        p.error("--compilations takes a positive integer")
    run(todo, batches, modes, whats, args.rounds, args.warmup, args.min_seconds, device, log, publish,
        args.compilations)
    rows = publish()
    runs = [r for r in rows if r["what"] != "spec -> module"]
    slower = [r for r in runs if r["ref"] / r["ours"] < 0.98]
    missed = [r["spec"] for r in rows if r["what"] == "spec -> module" and not meets_goal(r)]
    print(f"{len(slower)} of {len(runs)} ratios below 0.98; spec -> module goal missed by: {', '.join(missed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
