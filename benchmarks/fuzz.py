"""A long fuzzing campaign: the property of tests/test_fuzz.py (load + analyze + build on the
meta device either succeed or raise a SpecError whose problems are all located) on N random
inputs, 40 % random YAML documents, 20 % random text and bytes, 40 % mutated zoo specs.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/fuzz.py 100000 [--seed 1] [--out fuzz.json]

With --property N it runs instead the property of tests/test_check_means_runs.py on N specs
drawn from the op registry (tests/spec_strategies.py): a spec the check accepts builds on the
CPU, runs forward in train and eval mode (and backward) with the static output shapes and the
analysed parameter count, and a spec the check refuses gives located problems. Half the specs
of each chunk are free, half start with each op in turn (and a user block), so every op gets
its share whatever the draws favour.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/fuzz.py --property 100000 [--seed 1]

Unlike the CI test it does not stop at the first failure: every input that raises anything
other than a located SpecError, or takes longer than --timeout seconds (default 10), is
counted by kind and the first few of each kind are kept (in the summary and --out). Exit
status 1 when anything was found.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from fuzz_strategies import SPECS, check, raw_inputs, yaml_documents, zoo_mutations  # noqa: E402
from spec_strategies import OPS, check_runs, specs  # noqa: E402


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("examples", type=int, nargs="?", default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=5000, help="inputs per hypothesis run (default 5000)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take")
    parser.add_argument("--out", type=Path, help="write the summary (and failing inputs) as JSON")
    parser.add_argument("--property", type=int, metavar="N",
                        help="run the check-means-runs property on N drawn specs instead")
    parser.add_argument("--every", type=int, help="print progress every this many inputs "
                        "(default 5000, 1000 with --property)")
    args = parser.parse_args(argv)
    every = args.every or (1000 if args.property else 5000)
    if args.property:
        import torch

        torch.set_num_threads(1)  # tiny tensors: one thread is the fastest
        args.examples = args.property
        check_runs("blockgraph: 1\nname: w\ninputs: {x: [3, 5, 5], r: [2, 4]}\nnodes:\n"
                   "  - {op: roi_align, in: [x, r], scale: 1.0}\n")  # warm up: imports

    check((SPECS / "resnet20_cifar.yaml").read_text(), file=SPECS / "resnet20_cifar.yaml")  # warm up: imports
    counts: collections.Counter = collections.Counter()
    findings: dict[str, list[dict]] = collections.defaultdict(list)
    found: collections.Counter = collections.Counter()
    slowest = {"seconds": 0.0, "input": None}
    slow: list[dict] = []  # inputs over a second (a timeout raised inside a gc callback can be lost)
    started = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)

    def run(kind: str, source, file, prop=check) -> None:
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
        try:
            counts[f"{kind}:{prop(source, file=file)}"] += 1
        except Timeout:
            key = f"timeout (> {args.timeout:g} s)"
            counts["found"] += 1
            found[key] += 1
            if len(findings[key]) < 5:
                findings[key].append({"kind": kind, "file": str(file), "input": repr(source)})
        except BaseException as exc:  # noqa: BLE001 - every other outcome is a finding
            if isinstance(exc, KeyboardInterrupt):
                raise
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            key = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
            if isinstance(exc, AssertionError):  # check_runs' asserts: which one, by its words
                key += ": " + " ".join(w for w in str(exc).split()[:6] if not any(c.isdigit() for c in w))
            counts["found"] += 1
            found[key] += 1
            if len(findings[key]) < 5:
                findings[key].append({"kind": kind, "file": str(file), "input": repr(source),
                                      "error": f"{type(exc).__name__}: {exc}"[:2000]})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        took = time.perf_counter() - t0
        if took > slowest["seconds"]:
            slowest.update(seconds=took, input=repr(source)[:3000], kind=kind)
        if took > 1.0:
            counts["slow (> 1 s)"] += 1
            if len(slow) < 20:
                slow.append({"seconds": round(took, 2), "kind": kind, "file": str(file), "input": repr(source)[:3000]})
        done = sum(v for k, v in counts.items() if ":" in k)
        if done % every == 0:
            elapsed = time.perf_counter() - started
            eta = elapsed / done * (args.examples - done)
            print(f"{done:,} inputs, {counts['found']} findings, {elapsed:,.0f} s ({1000 * elapsed / done:.0f} ms "
                  f"an input, {eta / 60:,.0f} min to go)", flush=True)

    common = dict(deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))

    def campaign(chunk_seed: int, n: int) -> None:
        shares = {"yaml": int(n * 0.4), "raw": int(n * 0.2)}
        shares["zoo"] = n - shares["yaml"] - shares["raw"]

        @seed(chunk_seed)
        @settings(max_examples=max(shares["yaml"], 1), **common)
        @given(yaml_documents())
        def fuzz_yaml(text):
            run("yaml", text, "fuzz.yaml")

        @seed(chunk_seed)
        @settings(max_examples=max(shares["raw"], 1), **common)
        @given(raw_inputs())
        def fuzz_raw(source):
            run("raw", source, "fuzz.yaml")

        @seed(chunk_seed)
        @settings(max_examples=max(shares["zoo"], 1), **common)
        @given(zoo_mutations())
        def fuzz_zoo(case):
            run("zoo", case[1], SPECS / case[0])

        for test in (fuzz_yaml, fuzz_raw, fuzz_zoo):
            test()

    def property_campaign(chunk_seed: int, n: int) -> None:
        """Half free specs, half starting with each op (and the user block) in turn."""
        first = OPS + ["ub"]
        per_op = max(1, n // 2 // len(first))

        @seed(chunk_seed)
        @settings(max_examples=max(n - per_op * len(first), 1), **common)
        @given(specs())
        def free(text):
            run("spec", text, "property.yaml", check_runs)

        free()
        for op in first:
            @seed(chunk_seed)
            @settings(max_examples=per_op, **common)
            @given(specs(first=op))
            def starting(text):
                run("op", text, "property.yaml", check_runs)

            starting()

    # chunks of --chunk inputs, each a fresh hypothesis run with its own seed: hypothesis keeps
    # a tree of every input of a run, which would grow without bound over 100,000 inputs
    left, index = args.examples, 0
    while left > 0:
        n = min(left, args.chunk)
        (property_campaign if args.property else campaign)(args.seed * 1_000_003 + index, n)
        left, index = left - n, index + 1

    elapsed = time.perf_counter() - started
    total = sum(v for k, v in counts.items() if ":" in k)
    summary = {"examples": total, "seed": args.seed, "seconds": round(elapsed, 1),
               "mode": "property" if args.property else "crash",
               "outcomes": {k: v for k, v in sorted(counts.items())},
               "findings": {k: {"count": found[k], "examples": v} for k, v in findings.items()},
               "slowest": slowest, "slow": slow}
    print(f"{total:,} inputs in {elapsed:,.0f} s (seed {args.seed}): "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    print(f"slowest input: {slowest['seconds']:.2f} s ({slowest.get('kind')}): {str(slowest['input'])[:200]}")
    for key, examples in findings.items():
        print(f"FOUND {key} ({found[key]} inputs): e.g. {examples[0]['input'][:300]}\n    {examples[0].get('error', '')[:300]}")
    if not findings:
        print("found nothing: every input succeeded or gave a located SpecError"
              + (", and every spec that passed the check built and ran as analysed" if args.property else ""))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
