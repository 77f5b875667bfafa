"""Block kinds, one per module; importing this package registers them all."""

from . import (act, add, avgpool, concat, conv, dense, dropout, dualpath, flatten, gap, identity,  # noqa: F401
               inception, linear, maxpool, mlpconv, mul, norm, residual, se, sequence, shortcut, split, transition)
from . import crop_regions, mask_head, roi_align, roi_pool, yolo_head  # noqa: F401  (detection)
from . import (crop, deconv, interpolate, pad, permute, pixel_shuffle, pixel_unshuffle,  # noqa: F401
               reshape, upsample)  # decoders: resampling and layout
from . import embedding, recurrent, time_pool  # noqa: F401  (sequences)
from .base import Block, Composite, Shape
from .registry import REGISTRY, get, names, register

__all__ = ["Block", "Composite", "Shape", "REGISTRY", "get", "names", "register"]
