"""Training a spec: `compiler.train(spec, epochs=3, lr=0.1, ...)` or `blockgraph train SPEC`.

See docs/training.md and docs/architecture.md. The pieces: `TrainConfig` (the settings, from
the spec's `train:` section, a config file and options), the tasks (`compiler.train.tasks`: what
a spec learns), the loop (`train`), checkpoints (`load_checkpoint`, loadable with
`torch.load(..., weights_only=True)`) and metrics (metrics.jsonl/csv, curves.png).
"""

from __future__ import annotations

import sys
import types

from .checkpoint import CheckpointError, load_checkpoint, load_state, load_weights
from .config import TrainConfig, resolve_config
from .loop import train
from .outcomes import TrainError, TrainingDiverged, TrainingInterrupted, TrainResult

__all__ = ["CheckpointError", "TrainConfig", "TrainError", "TrainResult", "TrainingDiverged", "TrainingInterrupted",
           "load_checkpoint", "load_state", "load_weights", "resolve_config", "train"]


class _CallableModule(types.ModuleType):
    """Importing this package makes `compiler.train` name it instead of compiler's `train`
    function; calling the package calls `train`, so `compiler.train(...)` works either way."""

    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
