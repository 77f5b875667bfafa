"""Detection: what turns a detection head's output tensor into a loss and into boxes.

- `compiler.detection.yolo`: YOLO v1's target encoding, loss and decoding (with NMS from
  torchvision.ops) for the tensor of the `yolo_head` op.
"""

from . import yolo

__all__ = ["yolo"]
