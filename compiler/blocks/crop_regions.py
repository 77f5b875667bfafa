"""`crop_regions`: cut each box out of the image and warp it to a fixed size, R-CNN's region
input (Girshick, Donahue, Darrell, Malik, *Rich feature hierarchies for accurate object
detection and semantic segmentation*, 2014, section 2.1, "region proposals ... warped").

R-CNN calls this step cropping and warping: "regardless of the size or aspect ratio of the
candidate region, we warp all pixels in a tight bounding box around it to the required size",
after dilating the box so that the warped crop has `context` pixels of image around it (the
paper's p = 16 at 227 x 227). A CNN then runs once *per region*. (The op `crop` is a different
thing: it cuts a feature map to another node's height and width, for U-Net.)

Two inputs: the image ``[C, H, W]`` and the boxes ``[R, 4]`` (x0, y0, x1, y1 in pixels, edge
coordinates). The warp samples the image bilinearly at each output pixel's centre
(torchvision.ops.roi_align with one sample per bin and half-pixel alignment, which is an image
resize of the box); outside the image it reads zeros. The output is ``[B*R, C, h, w]``, one row
per box, image by image; the nodes after it are *per region*.

```yaml
inputs: {image: [3, 64, 64], rois: [$rois, 4]}
nodes:
  - {id: crops, op: crop_regions, in: [image, rois], size: 32}   # -> [3, 32, 32] per box
  - {id: conv1, op: conv, out: 32, k: 3}                          # the per-region CNN
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..errors import ShapeError
from .base import Block, Shape, pair
from .regions import IntPair, check_boxes
from .registry import register


@register
class CropRegions(Block):
    op: Literal["crop_regions"] = "crop_regions"
    size: IntPair = 32
    """Size every region is warped to: one number or [height, width] (R-CNN: 227 for AlexNet)."""
    context: int = Field(0, ge=0, le=4096)
    """Output pixels of image context on each side of the box (R-CNN's p = 16); less than half the size."""
    family = "reshape"
    ranks = (3,)
    min_inputs = 2
    max_inputs = 2
    regions_input = 1
    examples = [({"size": 4}, [(3, 8, 8), (5, 4)]), ({"size": [6, 4], "context": 1}, [(1, 9, 7), (2, 4)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        self.check_rank(in_shapes[0], "its first input is the image the regions are cut from")
        check_boxes("crop_regions", in_shapes[0], in_shapes[1], what="image")
        h, w = pair(self.size)
        if 2 * self.context >= min(h, w):
            raise ShapeError(f"crop_regions' context ({self.context} pixels on each side) leaves no room for the box "
                             f"in a {h}x{w} crop. Received: size {h}x{w}, context {self.context}; "
                             f"use a context below {(min(h, w) + 1) // 2}")
        return (in_shapes[0][0], h, w)

    def emit(self, em, args):
        from .regions import load_torchvision, crop_regions

        load_torchvision()

        return em.call_function(crop_regions, (args[0], args[1]), {"size": pair(self.size), "context": self.context})
