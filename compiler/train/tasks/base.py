"""What every training task shares: the `Task` interface the run loop talks to, the spec's
inputs a task reads, and the images of a dataset as they look (for drawing predictions).

A task is what a run learns (classify images, label pixels, find boxes...). The loop never
asks which one it has: it asks the task object for everything that depends on it, so that a new
task (issue 20's regression, say) is one new module with one `Task` subclass, listed in
`compiler.train.tasks.TASKS`:

- recognising a spec (`matches`, a classmethod: the first class of TASKS that matches wins),
  and the inputs/outputs it accepts (`signature_problem`);
- the dataset (`dataset_options`: the options it needs from a dataset that serves several tasks,
  e.g. `shapes`; `dataset_problem`: why a dataset cannot serve it, in the words of `wrong_dataset`);
- batches (`collate`, `to_device`), the model call (`forward`), the loss (`criterion`,
  `train_loss`, `loss_sum`), the accuracy counts (`correct`, `has_accuracy`, `top5`) and the
  validation metrics (`evaluate_start/update/finish`);
- what the metrics table calls its columns (`columns`), and what its trained model predicts
  for the designer (`predict`).

`BoxTask` is the base of the tasks that find objects (YOLO, the R-CNN heads), with
`DetectionPredictions` and `predict_detections`: both of those modules need them, and each task
module imports this module only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ...data import detection_collate
from ...errors import Loc, Problem


def image_input(spec) -> str:
    """The input the dataset's images feed: the first with a [C, H, W] shape (a detection spec
    may also take boxes, [R, 4])."""
    return next((name for name, shape in spec.inputs.items() if len(shape) == 3), next(iter(spec.inputs)))


def boxes_input(spec) -> str | None:
    """The input that takes regions of interest ([R, 4] boxes), if any."""
    return next((name for name, shape in spec.inputs.items() if len(shape) == 2 and shape[1] == 4), None)


def output_node(spec, analysis):
    """The spec's node that gives its (first) output, or None (an output that names an input)."""
    out_id = analysis.graph.outputs[0]
    return next((n for n in spec.nodes if n.id == out_id), None)


def displayed_image(dataset, index: int, normalised: torch.Tensor) -> torch.Tensor:
    """Item `index` of `dataset` as it looks, uint8 [C, H, W]: the dataset's raw image when it
    keeps one, else `normalised` with the dataset's normalisation undone."""
    raw = getattr(dataset, "raw", None)
    if raw is not None:
        return raw(index)[0]
    mean = torch.tensor(getattr(dataset, "mean", 0.0)).view(-1, 1, 1)
    std = torch.tensor(getattr(dataset, "std", 1.0)).view(-1, 1, 1)
    return (normalised * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)


HEAD_COLUMNS = {"epoch": "epoch", "step": "step", "lr": "lr", "train_loss": "train loss"}
TAIL_COLUMNS = {"images_per_s": "images/s", "seconds": "seconds"}
MAP_COLUMNS = {"val_map50": "val mAP@0.5", "val_map": "val mAP@0.5:0.95"}


class Task:
    """The interface of a training task (see the module docstring); the defaults are those of
    a task with one image input and one output whose loss is the criterion's."""

    kind: ClassVar[str] = "task"
    """The task's name: in the run's progress (`on_start`'s "task"), the designer and metrics."""
    dataset_task: ClassVar[str] = ""
    """The `DatasetInfo.task` of the datasets that serve it."""
    columns: ClassVar[dict[str, str]] = {**HEAD_COLUMNS, "val_loss": "val loss", **TAIL_COLUMNS}
    """The columns of compiler.train.metrics.COLUMNS that mean something for it, and their labels."""
    collate = None
    """The DataLoader's collate_fn (None: the default, stacking targets)."""
    has_accuracy: ClassVar[bool] = True
    """False when top-1 means nothing for the task (then rows carry null for it)."""
    predicts: ClassVar[str] = ""
    """What `predict` draws for the designer ("masks", "boxes"), "" when it draws nothing."""

    def __init__(self, num_classes: int, spec=None, analysis=None):
        self.num_classes = num_classes
        self.spec, self.analysis = spec, analysis

    # -- recognising a spec and its data ----------------------------------------------------
    @classmethod
    def matches(cls, spec, analysis) -> bool:
        """Whether the spec's inputs and outputs say it learns this task."""
        raise NotImplementedError

    @classmethod
    def signature_problem(cls, spec) -> Problem | None:
        """A located problem when the spec's inputs and outputs cannot be trained (one image
        input and one output, unless a task says otherwise)."""
        if len(spec.inputs) != 1:
            return Problem(spec.document.loc(("inputs",)) if spec.document else Loc(spec.file),
                           f"training takes a spec with one input (the images); this one has "
                           f"{len(spec.inputs)}: {', '.join(spec.inputs)}", "inputs")
        if len(spec.outputs) != 1:
            loc = spec.output_locs[0] if spec.output_locs else Loc(spec.file)
            return Problem(loc, f"training takes a spec with one output (the class scores); this one has "
                                f"{len(spec.outputs)}: {', '.join(spec.outputs)}", "outputs")
        return None

    @classmethod
    def dataset_options(cls, dataset: str) -> dict[str, Any]:
        """Options the task needs from dataset `dataset` unless the run sets them (the `shapes`
        dataset makes labels, masks or scenes of objects)."""
        return {}

    @classmethod
    def dataset_problem(cls, info) -> str | None:
        """Why the dataset `info` describes cannot serve the task (None when it can): its items
        are not those of the task's `dataset_task`, and then `wrong_dataset` says what to train on."""
        return None if info.task == cls.dataset_task else cls.wrong_dataset(info)

    @classmethod
    def wrong_dataset(cls, info) -> str:
        """The advice for a dataset of another task (each task names the data it needs)."""
        return f"dataset {info.name!r} is a {info.task} dataset; it cannot train a {cls.kind} spec"

    def check(self, spec, analysis, info) -> None:
        """Raise a located SpecError when the spec's output cannot be trained on `info`."""

    # -- batches, loss, metrics ------------------------------------------------------------
    def to_device(self, target, device: torch.device):
        return target.to(device, non_blocking=True)

    def forward(self, model, images: torch.Tensor, target, train: bool):
        """The model's outputs for a batch (a task may feed more than the images)."""
        return model(images)

    def criterion(self, label_smoothing: float = 0.0) -> torch.nn.Module:
        return torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def train_loss(self, outputs, target, criterion: torch.nn.Module) -> torch.Tensor:
        """The loss to minimise, averaged over the batch."""
        return criterion(outputs.float(), target)

    def loss_sum(self, outputs, target) -> torch.Tensor:
        """The loss of each sample (without label smoothing), summed over the batch."""
        raise NotImplementedError

    @property
    def top5(self) -> bool:
        return False

    def correct(self, outputs, target) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed over the batch, on the outputs' device: (top-1 hits, top-5 hits)."""
        raise NotImplementedError

    def evaluate_start(self, device: torch.device) -> None:
        pass

    def evaluate_update(self, outputs, target) -> None:
        pass

    def evaluate_finish(self) -> dict[str, float]:
        """Metrics of the whole validation split beyond loss and accuracy (rows get them with a
        `val_` prefix: "miou" -> val_miou)."""
        return {}

    # -- predictions for a UI ----------------------------------------------------------------
    def predict(self, model: torch.nn.Module, dataset, n: int, classes: list[str],
                device: str | torch.device = "cpu"):
        """What `model` predicts for the first `n` items of `dataset`, for the designer to draw."""
        raise ValueError(f"a {self.kind} run has no predictions to draw")


def first_batches(model: torch.nn.Module, dataset, n: int, batch_size: int, device):
    """The first `n` items of `dataset` in batches, as (index of the first, items, stacked inputs
    on `device`), with `model` in eval mode until the last batch is taken (its mode restored
    after): how a task shows the designer what its model predicts."""
    n = min(n, len(dataset))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, n, batch_size):
            items = [dataset[i] for i in range(start, min(n, start + batch_size))]
            yield start, items, torch.stack([x for x, _ in items]).to(device)
    finally:
        model.train(was_training)


# -- the tasks that find objects --------------------------------------------------------------

@dataclass
class DetectionPredictions:
    """Predicted and true boxes (and masks) of some validation images, for drawing."""

    drawn: ClassVar[str] = "boxes"
    """What a UI draws of them (the `predicts` of their task)."""

    images: torch.Tensor
    """uint8 [N, C, H, W]: the images as they look (not normalised)."""
    targets: list[dict[str, torch.Tensor]]
    """Per image: "boxes" [K, 4] (x0, y0, x1, y1 pixels), "labels" [K] (and "masks" [K, H, W])."""
    predictions: list[dict[str, torch.Tensor]]
    """Per image: "boxes", "scores", "labels" (and "masks" bool [K, H, W]), best first."""
    classes: list[str]
    """Class names, by label index."""


class BoxTask(Task):
    """Tasks trained on the `shapes` scenes' targets: per image a dict of "boxes" (float [K, 4],
    x0, y0, x1, y1 in pixels), "labels" (int64 [K], class indices from 0) and "masks" (uint8
    [K, H, W]). They compute their own loss, and are scored by box mAP."""

    dataset_task = "detection"
    collate = staticmethod(detection_collate)
    has_accuracy = False
    predicts = "boxes"

    def __init__(self, num_classes: int, spec, analysis):
        super().__init__(num_classes, spec, analysis)
        shape = spec.inputs[image_input(spec)]
        self.image_size = (int(shape[1]), int(shape[2]))

    @classmethod
    def dataset_options(cls, dataset: str) -> dict[str, Any]:
        return {"task": "detection", "objects": [1, 3]} if dataset.lower() == "shapes" else {}

    @classmethod
    def wrong_dataset(cls, info) -> str:
        return (f"dataset {info.name!r} has no boxes; a detection spec trains on dataset: shapes with "
                "dataset_options: {task: detection, objects: [1, 3]} (its scenes)")

    def to_device(self, target, device: torch.device):
        return [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in target]

    def criterion(self, label_smoothing: float = 0.0) -> torch.nn.Module:
        return torch.nn.Identity()  # the task computes its own loss

    def correct(self, outputs, target) -> tuple[torch.Tensor, torch.Tensor]:
        zero = torch.zeros((), device=outputs.device if isinstance(outputs, torch.Tensor) else None)
        return zero, zero

    def map_metric(self, device: torch.device, iou_type: str = "bbox"):
        from torchmetrics.detection import MeanAveragePrecision

        # COCO's mAP@0.5 and mAP@[0.5:0.95]; states are synced across processes under DDP
        return MeanAveragePrecision(iou_type=iou_type, box_format="xyxy", backend="pycocotools").to(device)

    def detect(self, model, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Detections per image (boxes, scores, labels; masks for heads that mask)."""
        raise NotImplementedError

    def predict(self, model, dataset, n, classes, device="cpu") -> DetectionPredictions:
        return predict_detections(model, self, dataset, n, classes, device)


@torch.no_grad()
def predict_detections(model: torch.nn.Module, task: BoxTask, dataset, n: int = 8,
                       classes: list[str] | None = None, device: str | torch.device = "cpu",
                       batch_size: int = 16, score_threshold: float = 0.3) -> DetectionPredictions:
    """The first `n` items of `dataset` (a detection split) through `model` in eval mode; the
    detections kept score at least `score_threshold`."""
    images, targets, preds = [], [], []
    for start, items, x in first_batches(model, dataset, n, batch_size, device):
        found = task.detect(model, x)
        for j, (item, det) in enumerate(zip(items, found)):
            keep = det["scores"] >= score_threshold
            preds.append({k: v[keep].cpu() for k, v in det.items()})
            targets.append(dict(item[1]))
            images.append(displayed_image(dataset, start + j, x[j].cpu()))
    return DetectionPredictions(torch.stack(images) if images else torch.zeros(0, dtype=torch.uint8), targets, preds,
                                list(classes or []))
