"""Training tasks as classes: what a run learns, and everything about it the run loop needs
(see `base.Task`). One module per task, each importing only `base`:

- `yolo.YoloTask` ("detection"): the output node is a `yolo_head`;
- `regions.RegionTask` ("regions"): the spec takes an image and [R, 4] boxes (R-CNN heads);
- `segmentation.SegmentationTask`: the output is [classes, H, W] with the image's H and W;
- `regression.RegressionTask`: the output is [1], one number per sample (MSE);
- `classification.ClassificationTask`: any other spec (output [classes]).

The task of a spec is the first class of `TASKS` whose `matches(spec, analysis)` is true, so a
new task is one module and one entry here, before the tasks it is more specific than.
"""

from __future__ import annotations

from .base import BoxTask, DetectionPredictions, Task, boxes_input, displayed_image, image_input, predict_detections
from .classification import ClassificationTask
from .regions import RegionTask
from .regression import RegressionTask
from .segmentation import MaskPredictions, SegmentationTask, predict_masks
from .yolo import YoloTask

TASKS: tuple[type[Task], ...] = (YoloTask, RegionTask, SegmentationTask, RegressionTask, ClassificationTask)
"""Most specific first: the last one matches every spec."""


def task_class(spec, analysis) -> type[Task]:
    """The task the spec's inputs and outputs say it learns."""
    return next(cls for cls in TASKS if cls.matches(spec, analysis))


def task_named(kind: str) -> type[Task] | None:
    """The task whose `kind` is `kind` (as a run's progress and metrics name it), or None."""
    return next((cls for cls in TASKS if cls.kind == kind), None)


__all__ = ["TASKS", "BoxTask", "ClassificationTask", "DetectionPredictions", "MaskPredictions", "RegionTask", "RegressionTask",
           "SegmentationTask", "Task", "YoloTask", "boxes_input", "displayed_image", "image_input",
           "predict_detections", "predict_masks", "task_class", "task_named"]
