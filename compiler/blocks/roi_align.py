"""`roi_align`: a fixed-size feature grid for each box, bilinearly sampled from a feature map
(He, Gkioxari, Dollár, Girshick, *Mask R-CNN*, 2017, section 3).

Two inputs: the backbone's map ``[C, H, W]`` and the boxes ``[R, 4]`` (x0, y0, x1, y1 in
input-image pixels); `scale` maps pixels to map cells (1 / the map's stride: 0.0625 after
four halvings). Each box is divided into `size` bins without rounding, and each bin averages
`sampling_ratio` x `sampling_ratio` bilinear samples: no quantisation, so the output stays
aligned with the box (the paper's fix of RoI pooling, which matters for masks).

The output is ``[B*R, C, h, w]``: one row per box, image by image, as torchvision.ops.roi_align
returns it; the per-sample shape of the node is ``[C, h, w]``, and the nodes after it are
*per region* (the summary shows ``R x C x h x w``; MACs and memory count all R regions). At
run time the boxes may also be a list of B tensors ``[R_i, 4]`` (see compiler.blocks.regions).

```yaml
inputs: {image: [3, 64, 64], rois: [$rois, 4]}
nodes:
  - {id: features, op: conv, in: image, out: 64, k: 3, stride: 8}
  - {id: pooled, op: roi_align, in: [features, rois], size: 7, scale: 0.125}   # -> [64, 7, 7] per box
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Block, Flag, Shape, pair
from .regions import IntPair, check_boxes
from .registry import register


@register
class RoiAlign(Block):
    op: Literal["roi_align"] = "roi_align"
    size: IntPair = 7
    """Output grid per box: one number or [height, width] (7 for box heads, 14 for Mask R-CNN's mask head)."""
    scale: float = Field(gt=0, le=1024)
    """Spatial scale: map cells per input pixel, 1 / the map's stride (0.0625 for stride 16)."""
    sampling_ratio: int = Field(2, ge=-1, le=64)
    """Bilinear samples per bin along each axis (the paper's 4 points per bin: 2); 0 or -1 adapt it to
    the box, ceil(box size / output size)."""
    aligned: Flag = True
    """Shift boxes by half a pixel so that pixel centres sit at i + 0.5 (boxes given in pixel-edge
    coordinates, as the shapes scenes give them); false is torchvision's legacy default."""
    family = "pool"
    ranks = (3,)
    min_inputs = 2
    max_inputs = 2
    regions_input = 1
    examples = [({"size": 2, "scale": 0.5}, [(3, 8, 8), (5, 4)]),
                ({"size": [3, 2], "scale": 0.25, "sampling_ratio": -1, "aligned": False}, [(4, 6, 5), (2, 4)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        self.check_rank(in_shapes[0], "its first input is the feature map the regions are cut from")
        check_boxes("roi_align", in_shapes[0], in_shapes[1])
        return (in_shapes[0][0], *pair(self.size))

    def emit(self, em, args):
        from .regions import load_torchvision, roi_align_regions

        load_torchvision()

        return em.call_function(roi_align_regions, (args[0], args[1]),
                                {"size": pair(self.size), "scale": self.scale,
                                 "sampling_ratio": self.sampling_ratio, "aligned": self.aligned})
