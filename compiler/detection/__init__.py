"""Detection: what turns a detection head's output tensor into a loss and into boxes.

- `compiler.detection.yolo`: YOLO v1's target encoding, loss and decoding (with NMS from
  torchvision.ops) for the tensor of the `yolo_head` op.
- `compiler.detection.proposals`: the R-CNN family's region proposals (sliding windows, the
  documented substitute for selective search), Fast R-CNN's RoI sampling, and the box
  regression targets / decoding.
"""

from . import proposals, yolo

__all__ = ["proposals", "yolo"]
