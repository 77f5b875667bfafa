"""Region proposals for R-CNN and Fast R-CNN, the sampling of training RoIs, and the box
regression parameterisation (Girshick et al. 2014, appendix C; Girshick 2015, section 2.3).

**Proposals.** R-CNN and Fast R-CNN took ~2,000 proposals per image from selective search
(Uijlings et al. 2013), a bottom-up grouping of superpixels. That is out of scope here; the
substitute is plain: `sliding_windows` lays boxes of a few sizes and aspect ratios on a
regular grid over the image (the anchors of Faster R-CNN's RPN, without the network that
scores them). It proposes the same boxes for every image, knows nothing about the content,
and its recall depends only on how densely sizes, ratios and stride cover the objects'
boxes; `recall` measures that. For training, `sample_rois` can add the ground-truth boxes and
jittered copies of them, so every image has positives, as torchvision's RoIHeads adds GT.

**Sampling** (`sample_rois`, Fast R-CNN section 2.3): a minibatch of `count` RoIs per image,
a quarter (`fg_fraction`) foreground, proposals whose IoU with a ground-truth box is at least
0.5 (`fg_iou`), labelled with that box's class; the rest background, IoU in [0.1, 0.5)
(`bg_iou`), labelled 0. Class c of the dataset is label c + 1: **label 0 is background**.

**Box regression** (`box_targets` / `decode_boxes`): a RoI P and its ground truth G give
``t = (wx (Gx - Px) / Pw, wy (Gy - Py) / Ph, ww log(Gw / Pw), wh log(Gh / Ph))`` on centres
and sizes, with weights (10, 10, 5, 5) as torchvision's BoxCoder; `decode_boxes` inverts it.

Boxes are ``x0, y0, x1, y1`` in input-image pixels everywhere (torchvision's format and the
`shapes` scenes' edge coordinates).

torchvision.ops is imported inside the functions that use it: importing torchvision takes about
a second, and every training process imports the tasks, detection or not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

BBOX_CLIP = math.log(1000.0 / 16)
"""Largest log size ratio decoded (torchvision's clamp), so exp() cannot overflow."""


def _hw(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    size = tuple(int(s) for s in image_size)
    return size[-2], size[-1]  # (H, W), or the last two of (C, H, W)


def sliding_windows(image_size: int | Sequence[int], sizes: Sequence[float] = (16, 32, 48),
                    ratios: Sequence[float] = (0.5, 1.0, 2.0), stride: int = 8, clip: bool = True) -> torch.Tensor:
    """[K, 4] boxes: for every size s (sqrt of the area, pixels) and aspect ratio r (height /
    width: h = s sqrt(r), w = s / sqrt(r)), one box centred on each point of a grid with step
    `stride` whose first point is at (stride / 2, stride / 2). With `clip`, boxes are clipped to
    the image and duplicates (and boxes under one pixel) dropped. Order: size, then ratio, then
    row-major position."""
    from torchvision.ops import clip_boxes_to_image

    if stride <= 0 or not sizes or not ratios or any(s <= 0 for s in sizes) or any(r <= 0 for r in ratios):
        raise ValueError("sliding_windows needs a positive stride and positive sizes and ratios")
    h_img, w_img = _hw(image_size)
    cy = torch.arange(stride / 2, h_img, stride, dtype=torch.float32)
    cx = torch.arange(stride / 2, w_img, stride, dtype=torch.float32)
    gy, gx = torch.meshgrid(cy, cx, indexing="ij")
    centres = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # [P, 2] (x, y)
    boxes = []
    for s in sizes:
        for r in ratios:
            h, w = s * math.sqrt(r), s / math.sqrt(r)
            half = torch.tensor([w / 2, h / 2])
            boxes.append(torch.cat([centres - half, centres + half], dim=1))
    out = torch.cat(boxes)
    if clip:
        out = clip_boxes_to_image(out, (h_img, w_img))
        keep = ((out[:, 2] - out[:, 0]) >= 1) & ((out[:, 3] - out[:, 1]) >= 1)
        out = out[keep]
        _, first = _unique_rows(out)
        out = out[first]
    return out


def _unique_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique rows and the index of each one's first occurrence, in order of first occurrence."""
    uniq, inverse = torch.unique(x, dim=0, return_inverse=True)
    first = torch.full((len(uniq),), len(x), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(len(x)), reduce="amin")
    first = first.sort().values
    return x[first], first


def recall(proposals: torch.Tensor, gt_boxes: torch.Tensor, iou: float = 0.5) -> float:
    """Fraction of ground-truth boxes that some proposal overlaps with IoU >= `iou`."""
    from torchvision.ops import box_iou

    if len(gt_boxes) == 0:
        return 1.0
    if len(proposals) == 0:
        return 0.0
    return (box_iou(gt_boxes, proposals).max(dim=1).values >= iou).float().mean().item()


def jitter_boxes(boxes: torch.Tensor, copies: int = 4, scale: float = 0.1,
                 image_size: int | Sequence[int] | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """[G * copies, 4]: each box `copies` times, its centre moved by up to `scale` of its width /
    height and each side length scaled by a factor in [1 - scale, 1 + scale] (uniform);
    clipped to the image when `image_size` is given."""
    from torchvision.ops import clip_boxes_to_image

    if copies == 0 or len(boxes) == 0:
        return boxes.new_zeros((0, 4))
    b = boxes.repeat_interleave(copies, dim=0).float()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx, cy = b[:, 0] + w / 2, b[:, 1] + h / 2
    u = torch.rand((len(b), 4), generator=generator) * 2 - 1  # [-1, 1)
    cx, cy = cx + u[:, 0] * scale * w, cy + u[:, 1] * scale * h
    w, h = w * (1 + u[:, 2] * scale), h * (1 + u[:, 3] * scale)
    out = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)
    if image_size is not None:
        out = clip_boxes_to_image(out, _hw(image_size))
    return out


def _pick(candidates: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """k of `candidates` (indices) at random: without replacement while there are enough."""
    if k <= 0 or len(candidates) == 0:
        return candidates[:0]
    if len(candidates) >= k:
        return candidates[torch.randperm(len(candidates), generator=generator)[:k]]
    extra = candidates[torch.randint(len(candidates), (k - len(candidates),), generator=generator)]
    return torch.cat([candidates, extra])


def sample_rois(proposals: torch.Tensor, gt_boxes: torch.Tensor, gt_labels: torch.Tensor, count: int,
                fg_fraction: float = 0.25, fg_iou: float = 0.5, bg_iou: tuple[float, float] = (0.1, 0.5),
                generator: torch.Generator | None = None, add_gt: bool = True, jitter: int = 0,
                jitter_scale: float = 0.1, image_size: int | Sequence[int] | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fast R-CNN's minibatch of RoIs for one image: ``(rois [count, 4], labels [count],
    matched [count])``.

    Candidates are the proposals, plus (with `add_gt`) the ground-truth boxes themselves and
    `jitter` jittered copies of each (`jitter_boxes`). Foreground: IoU >= `fg_iou` with its
    best-matching ground-truth box; up to ``round(fg_fraction * count)`` of them, drawn without
    replacement, labelled ``gt_labels[match] + 1``. Background: best IoU in ``[bg_iou[0],
    bg_iou[1])``, labelled 0, filling the rest; when that band is empty, any candidate below
    ``bg_iou[1]`` is used instead (the 0.1 floor is a heuristic for hard examples, not a rule).
    When there are too few candidates of a kind, some are repeated, so the size is always
    `count`. ``matched`` is the index of the matched ground-truth box, -1 for background.
    Order: foreground first, then background."""
    from torchvision.ops import box_iou

    if count < 1:
        raise ValueError("count must be at least 1")
    gt_boxes = gt_boxes.reshape(-1, 4).float()
    gt_labels = gt_labels.reshape(-1).long()
    candidates = [proposals.reshape(-1, 4).float()]
    if add_gt:
        candidates.append(gt_boxes)
    if jitter:
        candidates.append(jitter_boxes(gt_boxes, jitter, jitter_scale, image_size, generator))
    boxes = torch.cat(candidates)
    if len(boxes) == 0:
        raise ValueError("no proposals and no ground-truth boxes to sample RoIs from")
    if len(gt_boxes) == 0:
        best = torch.zeros(len(boxes))
        match = torch.full((len(boxes),), -1, dtype=torch.long)
    else:
        best, match = box_iou(boxes, gt_boxes).max(dim=1)
    fg = torch.nonzero(best >= fg_iou).flatten()
    bg = torch.nonzero((best >= bg_iou[0]) & (best < bg_iou[1])).flatten()
    if len(bg) == 0:
        bg = torch.nonzero(best < bg_iou[1]).flatten()
    n_fg = min(round(fg_fraction * count), len(fg)) if len(fg) else 0
    if len(bg) == 0:
        n_fg = count  # every candidate is foreground: nothing else to draw from
    keep_fg = _pick(fg, n_fg, generator)
    keep_bg = _pick(bg, count - n_fg, generator)
    keep = torch.cat([keep_fg, keep_bg])
    labels = torch.zeros(count, dtype=torch.long)
    matched = torch.full((count,), -1, dtype=torch.long)
    if n_fg:
        matched[:n_fg] = match[keep_fg]
        labels[:n_fg] = gt_labels[match[keep_fg]] + 1
    return boxes[keep], labels, matched


def box_targets(rois: torch.Tensor, gt_boxes: torch.Tensor,
                weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)) -> torch.Tensor:
    """[N, 4] regression targets (dx, dy, dw, dh) taking each RoI to its ground-truth box (row
    by row: `gt_boxes` is the matched box of each RoI)."""
    wx, wy, ww, wh = weights
    pw, ph = rois[:, 2] - rois[:, 0], rois[:, 3] - rois[:, 1]
    px, py = rois[:, 0] + 0.5 * pw, rois[:, 1] + 0.5 * ph
    gw, gh = gt_boxes[:, 2] - gt_boxes[:, 0], gt_boxes[:, 3] - gt_boxes[:, 1]
    gx, gy = gt_boxes[:, 0] + 0.5 * gw, gt_boxes[:, 1] + 0.5 * gh
    return torch.stack([wx * (gx - px) / pw, wy * (gy - py) / ph, ww * torch.log(gw / pw), wh * torch.log(gh / ph)],
                       dim=1)


def decode_boxes(deltas: torch.Tensor, rois: torch.Tensor,
                 weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)) -> torch.Tensor:
    """[N, 4] boxes from regression outputs [N, 4] and their RoIs: the inverse of `box_targets`
    (log size ratios clamped at log(1000 / 16), as torchvision's BoxCoder)."""
    wx, wy, ww, wh = weights
    pw, ph = rois[:, 2] - rois[:, 0], rois[:, 3] - rois[:, 1]
    px, py = rois[:, 0] + 0.5 * pw, rois[:, 1] + 0.5 * ph
    dx, dy = deltas[:, 0] / wx, deltas[:, 1] / wy
    dw = (deltas[:, 2] / ww).clamp(max=BBOX_CLIP)
    dh = (deltas[:, 3] / wh).clamp(max=BBOX_CLIP)
    cx, cy = px + dx * pw, py + dy * ph
    w, h = pw * torch.exp(dw), ph * torch.exp(dh)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


def class_deltas(box_output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[N, 4]: the deltas a `box` output [N, 4 * (classes + 1)] gives for each row's class
    (`labels`, 0 = background): Fast R-CNN regresses one box per class."""
    rows = torch.arange(len(box_output), device=box_output.device)
    return box_output.reshape(len(box_output), -1, 4)[rows, labels]


def random_boxes(batch: int, count: int, image_size: int | Sequence[int],
                 generator: torch.Generator | None = None, min_size: float = 1.0) -> torch.Tensor:
    """[batch, count, 4] valid boxes (x0 < x1, y0 < y1, at least `min_size` pixels) inside an
    image: test inputs for a spec's boxes input."""
    h, w = _hw(image_size)
    u = torch.rand((batch, count, 4), generator=generator)
    bw = min_size + u[..., 2] * max(w - min_size, 0)
    bh = min_size + u[..., 3] * max(h - min_size, 0)
    x0 = u[..., 0] * (w - bw)
    y0 = u[..., 1] * (h - bh)
    return torch.stack([x0, y0, x0 + bw, y0 + bh], dim=-1)
