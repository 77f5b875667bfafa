"""blockgraph: neural-network architectures as YAML graphs of blocks, compiled to PyTorch.

The public API follows the pipeline: `load` (text -> Spec), `analyze` (Spec -> checked graph
with shapes, parameters, MACs, receptive fields), `build` (-> torch.fx.GraphModule).
Every problem is a `SpecError` whose `errors` are located `Problem`s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .analysis import Analysis, analyze
from .blocks import Block, Composite, register
from .errors import Loc, Problem, ShapeError, SpecError
from .plugins import load_plugins
from .spec import Spec, load

if TYPE_CHECKING:
    import torch

__version__ = "0.1.0"


def build(spec_or_path, device=None, dtype=None, seed: int | None = None,
          vars: dict[str, Any] | None = None, max_memory: int | float | str | None = None) -> "torch.fx.GraphModule":
    """Compile a spec, a path or YAML text to a `torch.fx.GraphModule` (see compiler.fx).
    A spec whose weights need more than the memory budget is refused with a located
    `compiler.budget.BudgetError` (a SpecError): `max_memory` (bytes or "8G") raises the budget
    (default: $BLOCKGRAPH_MAX_MEMORY, else half the available memory; device="meta" is never refused)."""
    from .fx import build as _build

    return _build(spec_or_path, device=device, dtype=dtype, seed=seed, vars=vars, max_memory=max_memory)


def train(spec=None, config=None, *, vars: dict[str, Any] | None = None, resume=None, quiet: bool = False,
          **options: Any):
    """Train a spec on a dataset and keep metrics and checkpoints in a run directory; returns a
    `compiler.train.TrainResult` (see compiler.train and docs/training.md)."""
    from .train import train as _train

    return _train(spec, config, vars=vars, resume=resume, quiet=quiet, **options)


def import_weights(module, source, *, strict: bool = True, **options: Any):
    """Copy another model's weights (a module, state_dict, file or `torchvision:NAME` /
    `timm:NAME`) into a compiled spec, paired by structure; returns an ImportReport
    (see compiler.weights and docs/weights.md)."""
    from .weights import import_weights as _import_weights

    return _import_weights(module, source, strict=strict, **options)


def export(spec_or_module, format: str, out, *, weights=None, batch: int = 2, **options: Any):
    """Write a compiled spec as ONNX, TorchScript, a torch.export program or a standalone
    Python file, with a dynamic batch size (see compiler.export and docs/export.md)."""
    from .export import export as _export

    return _export(spec_or_module, format, out, weights=weights, batch=batch, **options)


__all__ = ["Analysis", "Block", "Composite", "Loc", "Problem", "ShapeError", "Spec", "SpecError", "analyze",
           "build", "export", "import_weights", "load", "load_plugins", "register", "train", "__version__"]
