"""What the region ops (`roi_align`, `roi_pool`, `crop_regions`) share: the check of a boxes
input, the size field, and the run-time functions the generated code calls.

A boxes input is declared per sample as ``[R, 4]`` (x0, y0, x1, y1 in input-image pixels).
R is what static analysis uses; at run time the model takes any of

- a tensor ``[B, R, 4]``: R boxes for each of the B images;
- a list of B tensors ``[R_i, 4]``: a different number of boxes per image ("variable length");
- a tensor ``[K, 5]``: torchvision's format, each row ``(image index, x0, y0, x1, y1)``;

and the output holds one row per box, image by image (all boxes of image 0, then image 1 ...),
so the batch axis of everything after a region op is the region axis, as in torchvision.
"""

from __future__ import annotations

from pydantic import PositiveInt

from ..errors import ShapeError
from .base import Shape, expect_rank, fmt

IntPair = PositiveInt | tuple[PositiveInt, PositiveInt]


def load_torchvision() -> None:
    """Import torchvision.ops when a region op is built, not when it first runs: importing
    torchvision calls one of its ops (a CUDA version check), which torch.jit.trace would record
    if the first run were a trace (TorchScript or ONNX export)."""
    import torchvision.ops  # noqa: F401


def check_boxes(op: str, x: Shape, boxes: Shape, what: str = "feature map") -> None:
    """A [C, H, W] map and an [R, 4] boxes input, or a ShapeError that says which is wrong."""
    expect_rank(op, x, 3, f"its first input is the {what} the regions are cut from")
    if len(boxes) != 2 or boxes[1] != 4:
        raise ShapeError(f"{op} reads boxes as its second input: [R, 4] per image (x0, y0, x1, y1 in "
                         f"input-image pixels), declared e.g. `rois: [$rois, 4]` under `inputs:`. "
                         f"Received: {fmt(boxes)}")


def _as_rois(features, boxes):
    """torchvision's [K, 5] rois (image index, x0, y0, x1, y1) from any accepted boxes form."""
    import torch

    n = features.shape[0]
    if isinstance(boxes, (list, tuple)):
        if len(boxes) != n:
            raise ValueError(f"got boxes for {len(boxes)} images and {n} images")
        for b in boxes:
            if b.dim() != 2 or b.shape[-1] != 4:
                raise ValueError(f"each image's boxes must be [R, 4], got {list(b.shape)}")
        index = torch.cat([torch.full((len(b), 1), i, dtype=features.dtype, device=features.device)
                           for i, b in enumerate(boxes)]) if boxes else features.new_zeros((0, 1))
        coords = (torch.cat([b.to(features.device, features.dtype) for b in boxes]) if boxes
                  else features.new_zeros((0, 4)))
        return torch.cat([index, coords], dim=1)
    if boxes.dim() == 3 and boxes.shape[-1] == 4:
        if boxes.shape[0] != n:
            raise ValueError(f"got boxes for {boxes.shape[0]} images and {n} images")
        r = boxes.shape[1]
        index = torch.arange(n, device=features.device, dtype=features.dtype).repeat_interleave(r)
        return torch.cat([index[:, None], boxes.reshape(-1, 4).to(features.device, features.dtype)], dim=1)
    if boxes.dim() == 2 and boxes.shape[-1] == 5:
        return boxes.to(features.device, features.dtype)
    raise ValueError(f"boxes must be [B, R, 4], a list of B tensors [R_i, 4] or [K, 5] rois, got {list(boxes.shape)}")


def roi_align_regions(features, boxes, size: tuple[int, int], scale: float, sampling_ratio: int = -1,
                      aligned: bool = False):
    """[B, C, H, W] and boxes -> [K, C, h, w] (torchvision.ops.roi_align, K = all boxes)."""
    from torchvision.ops import roi_align

    return roi_align(features, _as_rois(features, boxes), list(size), spatial_scale=scale,
                     sampling_ratio=sampling_ratio, aligned=aligned)


def roi_pool_regions(features, boxes, size: tuple[int, int], scale: float):
    """[B, C, H, W] and boxes -> [K, C, h, w] (torchvision.ops.roi_pool, K = all boxes)."""
    from torchvision.ops import roi_pool

    return roi_pool(features, _as_rois(features, boxes), list(size), spatial_scale=scale)


def crop_regions(image, boxes, size: tuple[int, int], context: int = 0):
    """R-CNN's warp: each box resampled bilinearly to `size` (one sample at each output pixel's
    centre, as an image resize does), grown first so that `context` output pixels on each side
    show the image around the box (R-CNN's p = 16 at 227x227). Pixels outside the image are 0."""
    from torchvision.ops import roi_align

    rois = _as_rois(image, boxes)
    if context:
        h, w = size
        x0, y0, x1, y1 = rois[:, 1], rois[:, 2], rois[:, 3], rois[:, 4]
        gx = (x1 - x0) * context / (w - 2 * context)
        gy = (y1 - y0) * context / (h - 2 * context)
        import torch

        rois = torch.stack([rois[:, 0], x0 - gx, y0 - gy, x1 + gx, y1 + gy], dim=1)
    return roi_align(image, rois, list(size), spatial_scale=1.0, sampling_ratio=1, aligned=True)
