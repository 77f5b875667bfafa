"""`mask_head`: Mask R-CNN's mask branch, a small fully convolutional network run on each
region's features (He, Gkioxari, Dollár, Girshick, *Mask R-CNN*, 2017, section 3 and figure 4).

`convs` 3x3 convs of `width` channels with ReLU keep the RoI's 14 x 14 grid, a 2x2 stride-2
transposed conv with ReLU doubles it, and a 1x1 conv predicts one mask logit map per class:
``[C, 14, 14] -> [classes, 28, 28]``. Masks are per class, and a sigmoid (not a softmax over
classes) is applied by the loss, so classes do not compete: the box head's class picks which
mask is read. Its input is usually a `roi_align` node, so it runs per region. The layers
and their names follow torchvision's MaskRCNNHeads + MaskRCNNPredictor (4 convs of 256,
`torchvision.models.detection.mask_rcnn`).

```yaml
inputs: {image: [3, 64, 64], rois: [$rois, 4]}
nodes:
  - {id: features, op: conv, in: image, out: 64, k: 3, stride: 4}
  - {id: mask_rois, op: roi_align, in: [features, rois], size: 14, scale: 0.25}
  - {id: mask, op: mask_head, classes: 6, width: 64}      # -> [6, 28, 28] per box
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Block, Shape
from .registry import register


@register
class MaskHead(Block):
    op: Literal["mask_head"] = "mask_head"
    classes: int = Field(ge=1, le=100_000)
    """Masks predicted per region, one per class (torchvision's COCO model: 91, background included)."""
    convs: int = Field(4, ge=0, le=64)
    """3x3 convs (with ReLU) before the upsampling: the paper's 4."""
    width: int = Field(256, ge=1, le=65_536)
    """Channels of the convs and of the transposed conv (the paper's 256)."""
    family = "conv"
    ranks = (3,)
    width_fields = ("width",)
    examples = [({"classes": 3, "convs": 2, "width": 4}, [(5, 6, 6)]),
                ({"classes": 2, "convs": 0, "width": 3}, [(4, 3, 5)])]

    def out_shape(self, in_shapes: list[Shape]) -> Shape:
        self.check_rank(in_shapes[0], "it runs on each region's feature grid (a roi_align output)")
        _, h, w = in_shapes[0]
        return (self.classes, 2 * h, 2 * w)

    def param_count(self, in_shapes: list[Shape]) -> tuple[int, int]:
        c, w = in_shapes[0][0], self.width
        params = 0
        for _ in range(self.convs):
            params += c * w * 9 + w
            c = w
        params += c * w * 4 + w                  # 2x2 transposed conv
        params += w * self.classes + self.classes  # 1x1 mask logits
        return params, 0

    def macs(self, in_shapes: list[Shape], out_shape: Shape) -> int:
        c, h, w = in_shapes[0]
        macs = 0
        for _ in range(self.convs):
            macs += h * w * c * self.width * 9
            c = self.width
        macs += h * w * c * self.width * 4        # each input pixel feeds a 2x2 patch of every output channel
        macs += 4 * h * w * self.width * self.classes
        return macs

    def build(self, in_shapes: list[Shape]):
        from collections import OrderedDict

        from torch import nn

        c = in_shapes[0][0]
        parts: OrderedDict[str, nn.Module] = OrderedDict()
        for i in range(1, self.convs + 1):
            parts[f"conv{i}"] = nn.Conv2d(c, self.width, 3, padding=1)
            parts[f"relu{i}"] = nn.ReLU(inplace=True)
            c = self.width
        parts["deconv"] = nn.ConvTranspose2d(c, self.width, 2, stride=2)
        parts["relu"] = nn.ReLU(inplace=True)
        parts["logits"] = nn.Conv2d(self.width, self.classes, 1)
        return nn.Sequential(parts)
