"""What a run learns, read from the spec's output shape: image classification or per-pixel
classification (semantic segmentation).

A spec whose output is `[classes]` classifies images; one whose output is `[classes, H, W]`
with the input's H and W labels every pixel (a U-Net, an FCN). The task decides which items
the dataset gives (a label, or a mask of class indices), how the outputs are checked against
the dataset, the loss (cross-entropy over the classes of each image, or of each pixel, averaged
over the pixels) and the metrics: top-1/top-5 accuracy, or pixel accuracy (reported as top-1)
and the mean intersection-over-union over the classes (`val_miou`, torchmetrics' multiclass
Jaccard index, accumulated over the whole validation split).

`predict_masks` and `validation_predictions` give a trained segmentation model's masks for a few
validation images (with the images and the true masks), for a UI to draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import Problem, SpecError

CLASSIFICATION, SEGMENTATION, DETECTION, REGIONS = "classification", "segmentation", "detection", "regions"


def image_input(spec) -> str:
    """The input the dataset's images feed: the first with a [C, H, W] shape (a detection spec
    may also take boxes, [R, 4])."""
    return next((name for name, shape in spec.inputs.items() if len(shape) == 3), next(iter(spec.inputs)))


def boxes_input(spec) -> str | None:
    """The input that takes regions of interest ([R, 4] boxes), if any."""
    return next((name for name, shape in spec.inputs.items() if len(shape) == 2 and shape[1] == 4), None)


def task_of(spec, analysis) -> str:
    """What the spec's outputs say it learns:
    - "detection": the output is a `yolo_head` (boxes and classes on a grid, YOLO v1's loss);
    - "regions": the spec takes boxes as well as an image (R-CNN, Fast R-CNN, Mask R-CNN heads
      that classify, refine and mask given regions);
    - "segmentation": the (one) output is [C, H, W] with the image's H and W;
    - "classification" otherwise (whose shape problems `check_compatible` reports)."""
    graph = analysis.graph
    out_id = graph.outputs[0]
    node = next((n for n in spec.nodes if n.id == out_id), None)
    if node is not None and node.op == "yolo_head":
        return DETECTION
    if boxes_input(spec) is not None and len(spec.inputs) == 2:
        return REGIONS
    out = tuple(graph.shapes[out_id])
    image = tuple(spec.inputs[image_input(spec)])
    if len(out) == 3 and len(image) == 3 and out[1:] == image[1:]:
        return SEGMENTATION
    return CLASSIFICATION


class Task:
    """The classification task; `SegmentationTask` overrides what differs per pixel, the
    detection tasks (compiler.train.detection) what differs for boxes.

    The loop asks a task for everything that depends on what is learnt: how a batch is collated
    and moved, how the model is called (one image input, or images and sampled regions), the
    training loss, the accuracy counts, and the metrics of the validation split."""

    kind = CLASSIFICATION
    collate = None
    """The DataLoader's collate_fn (None: the default, stacking labels)."""
    has_accuracy = True
    """False when top-1 means nothing for the task (then rows carry null for it)."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    def to_device(self, target, device: torch.device):
        return target.to(device, non_blocking=True)

    def forward(self, model, images: torch.Tensor, target, train: bool):
        """The model's outputs for a batch (a task may feed more than the images)."""
        return model(images)

    def train_loss(self, outputs, target, criterion: torch.nn.Module) -> torch.Tensor:
        """The loss to minimise, averaged over the batch."""
        return criterion(outputs.float(), target)

    @property
    def top5(self) -> bool:
        return self.kind == CLASSIFICATION and self.num_classes >= 5

    def check(self, spec, analysis, info) -> None:
        """Raise a located SpecError when the spec's output cannot be trained on `info`."""

    def criterion(self, label_smoothing: float = 0.0) -> torch.nn.Module:
        return torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def correct(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed over the batch: (top-1 hits, top-5 hits)."""
        top = logits.topk(5 if self.top5 else 1, dim=1).indices
        hit = top == target[:, None]
        c1 = hit[:, 0].sum()
        c5 = hit.any(dim=1).sum() if self.top5 else torch.zeros((), dtype=c1.dtype, device=c1.device)
        return c1, c5

    def loss_sum(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of each sample (without label smoothing), summed over the batch."""
        return torch.nn.functional.cross_entropy(logits.float(), target, reduction="sum")

    def evaluate_start(self, device: torch.device) -> None:
        pass

    def evaluate_update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        pass

    def evaluate_finish(self) -> dict[str, float]:
        """Metrics of the whole validation split beyond loss and accuracy (rows get them with a
        `val_` prefix: "miou" -> val_miou)."""
        return {}


class SegmentationTask(Task):
    """Per-pixel classification: logits [B, C, H, W], targets [B, H, W] of class indices."""

    kind = SEGMENTATION

    def check(self, spec, analysis, info) -> None:
        from ..data.compat import _class_var

        graph = analysis.graph
        out_id = graph.outputs[0]
        width = graph.shapes[out_id][0]
        if width == info.num_classes:
            return
        node = next((n for n in spec.nodes if n.id == out_id), None)
        what = (f"the spec's output has {width} classes per pixel, the dataset {info.name!r} has "
                f"{info.num_classes} ({', '.join(info.classes)})")
        var = _class_var(spec, node, width) if node is not None else None
        if var is not None and spec.document is not None:
            raise SpecError(Problem(spec.document.loc(("vars", var)), f"{what}: set vars.{var} to {info.num_classes} "
                                    f"(--var {var}={info.num_classes})", f"vars.{var}"))
        loc = node.loc if node is not None else spec.output_locs[0]
        raise SpecError(Problem(loc, f"{what}: make the output node {out_id!r} give {info.num_classes} channels "
                                "(`out:` of its last conv)", node.path if node is not None else "outputs"))

    def correct(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(each image's fraction of correct pixels, summed over the batch; 0): so that top-1 is the
        mean pixel accuracy."""
        hits = (logits.argmax(dim=1) == target).flatten(1).float().mean(dim=1).sum()
        return hits, torch.zeros((), device=hits.device)

    def loss_sum(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        per_pixel = torch.nn.functional.cross_entropy(logits.float(), target, reduction="none")
        return per_pixel.flatten(1).mean(dim=1).sum()

    def evaluate_start(self, device: torch.device) -> None:
        from torchmetrics.classification import MulticlassJaccardIndex

        # macro: the mean over classes of |pred ∩ true| / |pred ∪ true|, from one confusion
        # matrix over every pixel of the split (synced across processes under DDP)
        self.jaccard = MulticlassJaccardIndex(self.num_classes, average="macro").to(device)

    def evaluate_update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.jaccard.update(logits.argmax(dim=1), target)

    def evaluate_finish(self) -> dict[str, float]:
        value = float(self.jaccard.compute())
        self.jaccard.reset()
        return {"miou": value}


def make_task(kind: str, num_classes: int, spec=None, analysis=None) -> Task:
    if kind in (DETECTION, REGIONS):
        from .detection import make_detection_task

        return make_detection_task(kind, num_classes, spec, analysis)
    return SegmentationTask(num_classes) if kind == SEGMENTATION else Task(num_classes)


def dataset_problem(kind: str, info) -> str | None:
    """Why a dataset cannot serve a task (None when it can)."""
    wanted = DETECTION if kind == REGIONS else kind
    if info.task == wanted:
        return None
    if kind == SEGMENTATION:
        return (f"dataset {info.name!r} has no per-pixel masks; a spec whose output is [classes, H, W] learns "
                "segmentation, which trains on dataset: shapes (its masks)")
    if kind in (DETECTION, REGIONS):
        return (f"dataset {info.name!r} has no boxes; a detection spec trains on dataset: shapes with "
                "dataset_options: {task: detection, objects: [1, 3]} (its scenes)")
    return f"dataset {info.name!r} is a {info.task} dataset; a spec whose output is [classes] classifies images"


# -- predictions for a UI -------------------------------------------------------------------------

@dataclass
class MaskPredictions:
    """Predicted and true masks of some validation images, for drawing."""

    images: torch.Tensor
    """uint8 [N, C, H, W]: the images as they look (not normalised)."""
    masks: torch.Tensor
    """int64 [N, H, W]: the true class of every pixel (0 = background)."""
    predictions: torch.Tensor
    """int64 [N, H, W]: the predicted class of every pixel."""
    classes: list[str]
    """Class names, by index."""


@torch.no_grad()
def predict_masks(model: torch.nn.Module, dataset, n: int = 8, classes: list[str] | None = None,
                  device: str | torch.device = "cpu", batch_size: int = 16) -> MaskPredictions:
    """The first `n` items of `dataset` (a segmentation split) through `model` in eval mode."""
    n = min(n, len(dataset))
    was_training = model.training
    model.eval()
    images, masks, preds = [], [], []
    try:
        for start in range(0, n, batch_size):
            items = [dataset[i] for i in range(start, min(n, start + batch_size))]
            x = torch.stack([x for x, _ in items]).to(device)
            preds.append(model(x).argmax(dim=1).cpu())
            masks.append(torch.stack([m for _, m in items]))
            images.append(torch.stack([_as_uint8(dataset, i, x[j].cpu()) for j, i in
                                       enumerate(range(start, start + len(items)))]))
    finally:
        model.train(was_training)
    names = classes or [str(i) for i in range(int(preds[0].max()) + 1 if preds else 0)]
    return MaskPredictions(torch.cat(images), torch.cat(masks), torch.cat(preds), list(names))


def _as_uint8(dataset, index: int, normalised: torch.Tensor) -> torch.Tensor:
    raw = getattr(dataset, "raw", None)
    if raw is not None:
        return raw(index)[0]
    mean = torch.tensor(getattr(dataset, "mean", 0.0)).view(-1, 1, 1)
    std = torch.tensor(getattr(dataset, "std", 1.0)).view(-1, 1, 1)
    return (normalised * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)


def validation_predictions(run_dir: str | Path, n: int = 8, device: str | torch.device = "cpu"):
    """What the model saved in a run directory predicts for the first `n` validation images of
    the run's own dataset (its size, seed and options): `MaskPredictions` for a segmentation run,
    `compiler.train.detection.DetectionPredictions` (boxes, scores, labels, masks) for a detection
    run. Raises ValueError for a classification run (the designer draws those itself)."""
    import compiler
    from compiler.data import build_dataset

    from .checkpoint import load_checkpoint

    state = load_checkpoint(run_dir, device)
    spec = compiler.load(state["spec"]["document"], vars=dict(state["spec"].get("vars") or {}))
    analysis = compiler.analyze(spec)
    kind = task_of(spec, analysis)
    if kind == CLASSIFICATION:
        raise ValueError(f"{run_dir} is a classification run: it predicts labels, not masks or boxes")
    cfg: dict[str, Any] = dict(state.get("config") or {})
    shape = spec.inputs[image_input(spec)]
    size = cfg.get("size") or [shape[1], shape[2]]
    options = dict(cfg.get("dataset_options") or {})
    options.update(val_size=max(n, 1), progress=False)
    if kind == SEGMENTATION:
        options["task"] = SEGMENTATION
    else:
        options.setdefault("task", DETECTION)
        options.setdefault("objects", [1, 3])
    if cfg.get("root") is not None:
        options["root"] = cfg["root"]
    dataset, info = build_dataset(cfg.get("dataset", "shapes"), "val", size=size, seed=int(cfg.get("seed", 0)),
                                  **options)
    model = compiler.build(spec, device=device)
    model.load_state_dict(state["model"])
    if kind == SEGMENTATION:
        return predict_masks(model, dataset, n, info.classes, device)
    from .detection import predict_detections

    task = make_task(kind, info.num_classes, spec, analysis)
    return predict_detections(model, task, dataset, n, info.classes, device)


__all__ = ["CLASSIFICATION", "DETECTION", "REGIONS", "SEGMENTATION", "boxes_input", "image_input", "MaskPredictions", "SegmentationTask", "Task", "dataset_problem",
           "make_task", "predict_masks", "task_of", "validation_predictions"]
