"""Detection tasks: what a run learns when the spec finds objects.

- `YoloTask` (kind "detection"): the spec ends in a `yolo_head`; the loss is YOLO v1's
  (compiler.detection.yolo.loss), validation decodes the grid (confidence x class probability,
  per-class NMS) and scores the boxes with torchmetrics' MeanAveragePrecision.
- `RegionTask` (kind "regions"): the spec takes the image and a list of boxes (R-CNN, Fast
  R-CNN, Mask R-CNN heads, see compiler.detection.regions); the task samples the regions from
  proposals, labels them by their overlap with the ground truth, and trains the class, box (and
  mask) outputs.

Both read the `shapes` scenes' targets: per image a dict of "boxes" (float [K, 4], x0, y0, x1,
y1 in pixels), "labels" (int64 [K], class indices from 0) and "masks" (uint8 [K, H, W]).
"""

from __future__ import annotations

from dataclasses import dataclass
import torch

from ..data import detection_collate
from ..errors import Problem, SpecError
from .tasks import DETECTION, REGIONS, Task, image_input


def _targets_to(targets: list[dict], device: torch.device) -> list[dict]:
    return [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]


class _DetectionBase(Task):
    collate = staticmethod(detection_collate)
    has_accuracy = False

    def __init__(self, num_classes: int, spec, analysis):
        super().__init__(num_classes)
        self.spec, self.analysis = spec, analysis
        shape = spec.inputs[image_input(spec)]
        self.image_size = (int(shape[1]), int(shape[2]))

    @property
    def top5(self) -> bool:
        return False

    def to_device(self, target, device: torch.device):
        return _targets_to(target, device)

    def criterion(self, label_smoothing: float = 0.0) -> torch.nn.Module:
        return torch.nn.Identity()  # the task computes its own loss

    def correct(self, outputs, target) -> tuple[torch.Tensor, torch.Tensor]:
        zero = torch.zeros(())
        return zero, zero

    def _map_metric(self, device: torch.device, iou_type="bbox"):
        from torchmetrics.detection import MeanAveragePrecision

        # COCO's mAP@0.5 and mAP@[0.5:0.95]; states are synced across processes under DDP
        return MeanAveragePrecision(iou_type=iou_type, box_format="xyxy", backend="pycocotools").to(device)


class YoloTask(_DetectionBase):
    """YOLO v1 on a grid: the output node is a `yolo_head` whose layout the loss and the decoder read."""

    kind = DETECTION

    def __init__(self, num_classes: int, spec, analysis):
        super().__init__(num_classes, spec, analysis)
        from ..detection.yolo import YoloLayout

        out_id = analysis.graph.outputs[0]
        self.head = next(n for n in spec.nodes if n.id == out_id)
        block = self.head.block
        self.layout = YoloLayout(block.grid, block.boxes, block.classes, self.image_size)
        self.score_threshold = 0.01  # low, so that the precision-recall curve is complete for mAP

    def check(self, spec, analysis, info) -> None:
        if self.layout.classes == info.num_classes:
            return
        from ..data.compat import _class_var, _loc, _path_tuple, class_var_problem

        head = self.head
        what = (f"yolo_head {head.id!r} predicts {head.block.classes} classes, the dataset {info.name!r} has "
                f"{info.num_classes} ({', '.join(info.classes)})")
        var = _class_var(spec, head, head.block.classes)
        if var is not None:
            raise SpecError(class_var_problem(spec, var, what, info.num_classes))
        raise SpecError(Problem(_loc(spec, (*_path_tuple(head.path), "classes")),
                                f"{what}: set classes: {info.num_classes}", f"{head.path}.classes"))

    def train_loss(self, outputs, target, criterion) -> torch.Tensor:
        from ..detection.yolo import loss

        return loss(outputs.float(), target, self.layout)

    def loss_sum(self, outputs, target) -> torch.Tensor:
        return self.train_loss(outputs, target, None) * outputs.shape[0]

    def evaluate_start(self, device: torch.device) -> None:
        self.metric = self._map_metric(device)

    def detections(self, outputs) -> list[dict[str, torch.Tensor]]:
        from ..detection.yolo import decode

        return decode(outputs.float(), self.layout, score_threshold=self.score_threshold)

    def detect(self, model, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Detections per image (boxes, scores, labels), for a UI or a user."""
        return self.detections(model(images))

    def evaluate_update(self, outputs, target) -> None:
        self.metric.update(self.detections(outputs), [{"boxes": t["boxes"], "labels": t["labels"]} for t in target])

    def evaluate_finish(self) -> dict[str, float]:
        result = self.metric.compute()
        self.metric.reset()
        return {"map50": float(result["map_50"]), "map": float(result["map"])}


def make_detection_task(kind: str, num_classes: int, spec, analysis) -> Task:
    if kind == DETECTION:
        return YoloTask(num_classes, spec, analysis)
    from .regions import RegionTask

    return RegionTask(num_classes, spec, analysis)


# -- predictions for a UI -------------------------------------------------------------------------

@dataclass
class DetectionPredictions:
    """Predicted and true boxes (and masks) of some validation images, for drawing."""

    images: torch.Tensor
    """uint8 [N, C, H, W]: the images as they look (not normalised)."""
    targets: list[dict[str, torch.Tensor]]
    """Per image: "boxes" [K, 4] (x0, y0, x1, y1 pixels), "labels" [K] (and "masks" [K, H, W])."""
    predictions: list[dict[str, torch.Tensor]]
    """Per image: "boxes", "scores", "labels" (and "masks" bool [K, H, W]), best first."""
    classes: list[str]
    """Class names, by label index."""




@torch.no_grad()
def predict_detections(model: torch.nn.Module, task: "_DetectionBase", dataset, n: int = 8,
                       classes: list[str] | None = None, device: str | torch.device = "cpu",
                       batch_size: int = 16, score_threshold: float = 0.3) -> DetectionPredictions:
    """The first `n` items of `dataset` (a detection split) through `model` in eval mode; the
    detections kept score at least `score_threshold`."""
    from .tasks import _as_uint8

    n = min(n, len(dataset))
    was_training = model.training
    model.eval()
    images, targets, preds = [], [], []
    try:
        for start in range(0, n, batch_size):
            items = [dataset[i] for i in range(start, min(n, start + batch_size))]
            x = torch.stack([x for x, _ in items]).to(device)
            found = task.detect(model, x)
            for j, (item, det) in enumerate(zip(items, found)):
                keep = det["scores"] >= score_threshold
                preds.append({k: v[keep].cpu() for k, v in det.items()})
                targets.append(dict(item[1]))
                images.append(_as_uint8(dataset, start + j, x[j].cpu()))
    finally:
        model.train(was_training)
    return DetectionPredictions(torch.stack(images) if images else torch.zeros(0, dtype=torch.uint8), targets, preds,
                                list(classes or []))


__all__ = ["DetectionPredictions", "YoloTask", "make_detection_task", "predict_detections"]
