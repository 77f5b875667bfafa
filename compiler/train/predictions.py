"""What the model saved in a run directory predicts, for the designer to draw: the run's own
validation images (its dataset, size, seed and options) through its model, as its task's
`predict` gives them (`MaskPredictions` for segmentation, `DetectionPredictions` for boxes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_checkpoint
from .tasks import image_input, task_class


def validation_predictions(run_dir: str | Path, n: int = 8, device: str | torch.device = "cpu"):
    """The task's predictions for the first `n` validation images of the run in `run_dir`.
    Raises ValueError for a task that draws none (classification: the designer draws those
    itself)."""
    from ..analysis import analyze
    from ..data import build_dataset, input_options
    from ..fx import build
    from ..spec import load

    state = load_checkpoint(run_dir, device)
    spec = load(state["spec"]["document"], vars=dict(state["spec"].get("vars") or {}))
    analysis = analyze(spec)
    task = task_class(spec, analysis)
    if not task.predicts:
        raise ValueError(f"{run_dir} is a {task.kind} run: it predicts labels, not masks or boxes")
    cfg: dict[str, Any] = dict(state.get("config") or {})
    dataset_name = cfg.get("dataset", "shapes")
    options = {**task.dataset_options(dataset_name), **(cfg.get("dataset_options") or {})}
    options.update(val_size=max(n, 1), progress=False)
    if cfg.get("root") is not None:
        options["root"] = cfg["root"]
    implied = input_options(dataset_name, spec.inputs[image_input(spec)], options)
    implied_size = implied.pop("size", None)
    size = cfg.get("size") or implied_size
    options = {**implied, **options}
    dataset, info = build_dataset(dataset_name, "val", size=size,
                                  seed=int(cfg.get("seed", 0)), **options)
    model = build(spec, device=device)
    model.load_state_dict(state["model"])
    return task(info.num_classes, spec, analysis).predict(model, dataset, n, info.classes, device)
