"""Export every classification spec in specs/ to ONNX and check it in onnxruntime.

For each spec with one image input [C, H, W] and one class-logits output [K]: build it
(seeded, with non-trivial batch-norm statistics), export with `compiler.export(format="onnx")`
(dynamic batch), run the file in onnxruntime at batch 1 and 3, and compare with PyTorch to 1e-4
relative. Prints one row per spec with the export and check times; exits 1 if any spec fails.

    .venv/bin/python benchmarks/onnx_all.py [--exporter dynamo|legacy] [NAME ...]

tests/test_export.py runs the small specs by default and the rest under the `slow` marker;
this script is the one command that checks them all.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import compiler  # noqa: E402
from compiler.export import load_exported  # noqa: E402


def classification_specs() -> list[str]:
    """Spec names (file stems) with a single image input and a single class-logits output."""
    names = []
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        try:
            spec = compiler.load(path)
            graph = compiler.analyze(spec).graph
        except compiler.SpecError:
            continue
        shapes = list(spec.inputs.values())
        if len(shapes) == 1 and len(shapes[0]) == 3 and len(graph.outputs) == 1 \
                and len(graph.shapes[graph.outputs[0]]) == 1:
            names.append(path.stem)
    return names


def randomise_batchnorm(model: torch.nn.Module, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))


def check_one(name: str, out_dir: Path, exporter: str = "dynamo", batches=(1, 3)) -> tuple[float, float, float]:
    """(export seconds, check seconds, worst relative error); raises on a failure."""
    spec = compiler.load(ROOT / "specs" / f"{name}.yaml")
    model = compiler.build(spec, seed=0).eval()
    randomise_batchnorm(model)
    start = time.perf_counter()
    path = compiler.export(model, "onnx", out_dir / f"{name}.onnx", exporter=exporter, verify=False)
    exported = time.perf_counter() - start
    run = load_exported(path, "onnx")
    worst = 0.0
    for i, batch in enumerate(batches):
        x = torch.randn(batch, *spec.inputs["image"], generator=torch.Generator().manual_seed(10 + i))
        with torch.inference_mode():
            expected = model(x)
        got = run(x)
        assert got.shape == expected.shape, (name, batch, tuple(got.shape), tuple(expected.shape))
        worst = max(worst, ((got - expected).abs().max() / expected.abs().max()).item())
    if not worst <= 1e-4:
        raise AssertionError(f"{name}: onnxruntime differs from PyTorch by {worst:.2e} relative")
    return exported, time.perf_counter() - start - exported, worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="spec names (default: every classification spec)")
    parser.add_argument("--exporter", choices=["dynamo", "legacy"], default="dynamo")
    args = parser.parse_args(argv)
    names = args.names or classification_specs()
    failed = []
    total = time.perf_counter()
    print(f"{'spec':24} {'export s':>9} {'check s':>8} {'max rel err':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            try:
                exported, checked, worst = check_one(name, Path(tmp), args.exporter)
                print(f"{name:24} {exported:9.1f} {checked:8.1f} {worst:12.1e}", flush=True)
            except Exception as exc:  # report and go on with the others
                failed.append(name)
                print(f"{name:24} FAILED: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
            finally:
                (Path(tmp) / f"{name}.onnx").unlink(missing_ok=True)
                for extra in Path(tmp).glob(f"{name}.onnx*"):
                    extra.unlink()
    print(f"{len(names) - len(failed)}/{len(names)} specs ok in {time.perf_counter() - total:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
