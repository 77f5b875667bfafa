"""YOLO v1 detection: a spec whose output node is a `yolo_head` (boxes and classes on a grid).
The loss is YOLO v1's (compiler.detection.yolo.loss); validation decodes the grid (confidence x
class probability, per-class NMS) and scores the boxes with torchmetrics' MeanAveragePrecision."""

from __future__ import annotations

import torch

from ...detection.yolo import YoloLayout, decode, loss
from ...errors import Problem, SpecError
from .base import HEAD_COLUMNS, MAP_COLUMNS, TAIL_COLUMNS, BoxTask, output_node


class YoloTask(BoxTask):
    """The output node is a `yolo_head` whose layout the loss and the decoder read."""

    kind = "detection"
    columns = {**HEAD_COLUMNS, "val_loss": "val loss", **MAP_COLUMNS, **TAIL_COLUMNS}
    score_threshold = 0.01  # low, so that the precision-recall curve is complete for mAP

    def __init__(self, num_classes: int, spec, analysis):
        super().__init__(num_classes, spec, analysis)
        self.head = output_node(spec, analysis)
        block = self.head.block
        self.layout = YoloLayout(block.grid, block.boxes, block.classes, self.image_size)

    @classmethod
    def matches(cls, spec, analysis) -> bool:
        node = output_node(spec, analysis)
        return node is not None and node.op == "yolo_head"

    def check(self, spec, analysis, info) -> None:
        if self.layout.classes == info.num_classes:
            return
        from ...data.compat import class_var, class_var_problem, path_tuple, spec_loc

        head = self.head
        what = (f"yolo_head {head.id!r} predicts {head.block.classes} classes, the dataset {info.name!r} has "
                f"{info.num_classes} ({', '.join(info.classes)})")
        var = class_var(spec, head, head.block.classes)
        if var is not None:
            raise SpecError(class_var_problem(spec, var, what, info.num_classes))
        raise SpecError(Problem(spec_loc(spec, (*path_tuple(head.path), "classes")),
                                f"{what}: set classes: {info.num_classes}", f"{head.path}.classes"))

    def train_loss(self, outputs, target, criterion) -> torch.Tensor:
        return loss(outputs.float(), target, self.layout)

    def loss_sum(self, outputs, target) -> torch.Tensor:
        return self.train_loss(outputs, target, None) * outputs.shape[0]

    def detections(self, outputs) -> list[dict[str, torch.Tensor]]:
        return decode(outputs.float(), self.layout, score_threshold=self.score_threshold)

    def detect(self, model, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return self.detections(model(images))

    def evaluate_start(self, device: torch.device) -> None:
        self.metric = self.map_metric(device)

    def evaluate_update(self, outputs, target) -> None:
        self.metric.update(self.detections(outputs), [{"boxes": t["boxes"], "labels": t["labels"]} for t in target])

    def evaluate_finish(self) -> dict[str, float]:
        result = self.metric.compute()
        self.metric.reset()
        return {"map50": float(result["map_50"]), "map": float(result["map"])}
