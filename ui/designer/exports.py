"""What the Export tab offers besides the YAML: the generated forward() as a .py file and the
spec as an ONNX file (checked in onnxruntime before it counts as written)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import compiler
from ui.designer.caching import freeze_vars, load_text, thaw_vars
from ui.problems import UNTITLED


@functools.lru_cache(maxsize=16)
def _code(text: str, vars_key: tuple, file: str) -> str:
    spec = load_text(text, thaw_vars(vars_key), file)
    module = compiler.build(spec, device="meta")
    return module.code


def generated_code(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED) -> str:
    """The generated `forward()` of the compiled module (built on the meta device: no weights)."""
    return _code(text, freeze_vars(vars), file)


def code_file(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED, name: str = "model") -> str:
    """The generated forward() as a downloadable .py text, with a header saying what it is."""
    return (f"# forward() that blockgraph generates for {name!r} (torch.fx GraphModule.code).\n"
            "# The module itself: compiler.build('<spec>.yaml') (its submodules hold the weights).\n"
            + generated_code(text, vars, file).strip("\n") + "\n")


ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


def onnx_missing() -> list[str]:
    """The packages ONNX export needs (torch's exporter: onnx, onnxscript; the check that
    reloads the file: onnxruntime) that cannot be imported here."""
    import importlib.util

    return [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]


def onnx_bytes(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED,
               weights: str | Path | None = None) -> bytes:
    """The spec (with var overrides) as an ONNX file's bytes: `compiler.export(spec, "onnx",
    ...)` into a temporary folder, which checks the file in onnxruntime at batch 1 and 3 before
    it counts as written. `weights`: a model.safetensors of a run (else the spec's own
    initialisation). Raises SpecError, compiler.export.ExportError or WeightImportError."""
    import tempfile

    spec = load_text(text, vars, file)
    with tempfile.TemporaryDirectory(prefix="blockgraph-onnx-") as tmp:
        out = compiler.export(spec, "onnx", Path(tmp) / f"{spec.name}.onnx",
                              weights=str(weights) if weights is not None else None)
        others = [p.name for p in Path(tmp).iterdir() if p != out]
        if others:  # weights over 2 GB go to external data files
            raise ValueError(f"the ONNX export wrote {len(others) + 1} files (external weights): use "
                             "`blockgraph export SPEC --format onnx -o FILE` for a model this large")
        return out.read_bytes()
