"""`roi_pool`: RoI max pooling, a fixed-size grid of maxima over each box of a feature map
(Girshick, *Fast R-CNN*, 2015, section 2.1).

Two inputs: the backbone's map ``[C, H, W]`` and the boxes ``[R, 4]`` (x0, y0, x1, y1 in
input-image pixels). Each box is projected onto the map with `scale` (1 / the map's stride)
and rounded to whole cells, divided into an h x w grid of sub-windows (also rounded), and each
sub-window is max-pooled: "a special case of the spatial pyramid pooling layer in which there
is only one pyramid level". The rounding is what `roi_align` later removes.

The output is ``[B*R, C, h, w]``: one row per box, image by image, as torchvision.ops.roi_pool
returns it; the per-sample shape of the node is ``[C, h, w]`` and the nodes after it are *per
region* (the summary shows ``R x C x h x w``; MACs and memory count all R regions).

```yaml
inputs: {image: [3, 64, 64], rois: [$rois, 4]}
nodes:
  - {id: features, op: conv, in: image, out: 64, k: 3, stride: 8}
  - {id: pooled, op: roi_pool, in: [features, rois], size: 7, scale: 0.125}   # the paper's 7x7 for VGG16
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Block, Shape, pair
from .regions import IntPair, check_boxes
from .registry import register


@register
class RoiPool(Block):
    op: Literal["roi_pool"] = "roi_pool"
    size: IntPair = 7
    """Output grid per box: one number or [height, width] (the paper's 7 x 7 for VGG16's conv5)."""
    scale: float = Field(gt=0, le=1024)
    """Spatial scale: map cells per input pixel, 1 / the map's stride (0.0625 for VGG16's conv5)."""
    family = "pool"
    ranks = (3,)
    min_inputs = 2
    max_inputs = 2
    regions_input = 1
    examples = [({"size": 2, "scale": 0.5}, [(3, 8, 8), (5, 4)]),
                ({"size": [3, 2], "scale": 0.25}, [(4, 6, 5), (2, 4)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        self.check_rank(in_shapes[0], "its first input is the feature map the regions are cut from")
        check_boxes("roi_pool", in_shapes[0], in_shapes[1])
        return (in_shapes[0][0], *pair(self.size))

    def emit(self, em, args):
        from .regions import load_torchvision, roi_pool_regions

        load_torchvision()

        return em.call_function(roi_pool_regions, (args[0], args[1]),
                                {"size": pair(self.size), "scale": self.scale})
