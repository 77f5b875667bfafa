"""YOLO v1's targets, loss and decoding (Redmon et al. 2016, section 2), on the [N, S, S, 5B+C]
tensor that the `yolo_head` op lays out.

Boxes come and go in pixels as ``x0, y0, x1, y1`` (torchvision's format, which the `shapes`
detection scenes use). In the tensor, per box: x, y (the centre, relative to its cell, 0..1),
w, h (square roots of the size relative to the image: the paper's trick so that an error on a
small box counts more than the same error on a large one) and a confidence; then C class
probabilities per cell.

The loss is the paper's sum-squared error: the box of a cell with the highest IoU with the cell's
object is "responsible" for it (coordinates weighted by lambda_coord = 5, confidence target its
IoU), every other box is pushed to zero confidence with weight lambda_noobj = 0.5, and class
probabilities count only in cells that hold an object. Decoding multiplies confidence by class
probability (class-specific scores), thresholds, and runs non-maximum suppression per class
with torchvision.ops.batched_nms.

torchvision.ops is imported inside the functions that use it: importing torchvision takes about
a second, and every training process imports the tasks, detection or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class YoloLayout:
    """The meaning of a [N, S, S, 5B+C] YOLO tensor for images of `image_size` (height, width)."""

    grid: int
    boxes: int
    classes: int
    image_size: tuple[int, int]

    @property
    def depth(self) -> int:
        return 5 * self.boxes + self.classes

    def check(self, pred: torch.Tensor) -> None:
        s, k = self.grid, self.depth
        if pred.dim() != 4 or tuple(pred.shape[1:]) != (s, s, k):
            raise ValueError(f"expected YOLO predictions of shape [N, {s}, {s}, {k}] (grid {s}, boxes {self.boxes}, "
                             f"classes {self.classes}), got {list(pred.shape)}")

    def _cell_size(self) -> tuple[float, float]:
        h, w = self.image_size
        return w / self.grid, h / self.grid

    def to_pixels(self, pred: torch.Tensor) -> torch.Tensor:
        """[N, S, S, B, 4] boxes x0, y0, x1, y1 in pixels from the tensor's box coordinates."""
        n, s = pred.shape[0], self.grid
        cw, ch = self._cell_size()
        h_img, w_img = self.image_size
        raw = pred[..., : 5 * self.boxes].reshape(n, s, s, self.boxes, 5)
        cols = torch.arange(s, device=pred.device, dtype=pred.dtype).view(1, 1, s, 1)
        rows = torch.arange(s, device=pred.device, dtype=pred.dtype).view(1, s, 1, 1)
        cx = (cols + raw[..., 0]) * cw
        cy = (rows + raw[..., 1]) * ch
        bw = raw[..., 2].clamp(min=0) ** 2 * w_img
        bh = raw[..., 3].clamp(min=0) ** 2 * h_img
        return torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=-1)


def encode(targets: list[dict], layout: YoloLayout, device=None) -> torch.Tensor:
    """Ground truth as a [N, S, S, 5+C] tensor: per cell x, y, sqrt w, sqrt h (as in the
    predictions), 1 where an object's centre falls, then the one-hot class. When two objects
    fall in one cell the larger one is kept (YOLO v1 predicts one object per cell)."""
    s, c = layout.grid, layout.classes
    cw, ch = layout._cell_size()
    h_img, w_img = layout.image_size
    out = torch.zeros(len(targets), s, s, 5 + c, device=device)
    for i, target in enumerate(targets):
        boxes = target["boxes"].to(device=out.device, dtype=out.dtype).reshape(-1, 4)
        labels = target["labels"].to(out.device).reshape(-1)
        if not len(boxes):
            continue
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        for j in torch.argsort(areas).tolist():  # small first: a larger box in the same cell wins
            x0, y0, x1, y1 = boxes[j].tolist()
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            col, row = min(int(cx / cw), s - 1), min(int(cy / ch), s - 1)
            out[i, row, col, :5] = torch.tensor([cx / cw - col, cy / ch - row, max(x1 - x0, 0) ** 0.5 / w_img ** 0.5,
                                                 max(y1 - y0, 0) ** 0.5 / h_img ** 0.5, 1.0])
            out[i, row, col, 5:] = 0
            out[i, row, col, 5 + int(labels[j])] = 1
    return out


def loss(pred: torch.Tensor, targets: list[dict], layout: YoloLayout, lambda_coord: float = 5.0,
         lambda_noobj: float = 0.5) -> torch.Tensor:
    """The paper's loss (its equation 3), summed over the grid and averaged over the batch."""
    layout.check(pred)
    n, s, b = pred.shape[0], layout.grid, layout.boxes
    truth = encode(targets, layout, device=pred.device).to(pred.dtype)
    has_obj = truth[..., 4] > 0  # [N, S, S]
    boxes = pred[..., : 5 * b].reshape(n, s, s, b, 5)

    # which box of a cell is responsible: the highest IoU with the cell's object (no gradient)
    with torch.no_grad():
        pred_px = layout.to_pixels(pred)  # [N, S, S, B, 4]
        true_px = layout.to_pixels(torch.cat([truth[..., :5].repeat(1, 1, 1, b), truth[..., 5:]], dim=-1))[..., 0, :]
        ious = _pairwise_iou(pred_px, true_px.unsqueeze(3).expand_as(pred_px))  # [N, S, S, B]
        best = ious.argmax(dim=-1, keepdim=True)
        responsible = torch.zeros_like(ious, dtype=torch.bool).scatter_(-1, best, True) & has_obj.unsqueeze(-1)
        conf_target = torch.where(responsible, ious, torch.zeros_like(ious))

    coord = ((boxes[..., 0:4] - truth[..., None, 0:4]) ** 2).sum(-1)
    coord_loss = lambda_coord * (coord * responsible).sum()
    conf_err = (boxes[..., 4] - conf_target) ** 2
    obj_loss = (conf_err * responsible).sum()
    noobj_loss = lambda_noobj * (conf_err * ~responsible).sum()
    class_err = ((pred[..., 5 * b:] - truth[..., 5:]) ** 2).sum(-1)
    class_loss = (class_err * has_obj).sum()
    return (coord_loss + obj_loss + noobj_loss + class_loss) / max(n, 1)


def _pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of boxes a[..., 4] and b[..., 4] position by position (box_iou is all-pairs)."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter).clamp(min=1e-9)


def decode(pred: torch.Tensor, layout: YoloLayout, score_threshold: float = 0.1, iou_threshold: float = 0.5,
           max_detections: int = 100) -> list[dict[str, torch.Tensor]]:
    """Detections per image: {"boxes": [K, 4] pixels x0, y0, x1, y1 clipped to the image,
    "scores": [K], "labels": [K]}, best first, after per-class non-maximum suppression."""
    from torchvision.ops import batched_nms

    layout.check(pred)
    n, s, b, c = pred.shape[0], layout.grid, layout.boxes, layout.classes
    h_img, w_img = layout.image_size
    pred = pred.detach().float()
    boxes = layout.to_pixels(pred)  # [N, S, S, B, 4]
    boxes[..., 0::2] = boxes[..., 0::2].clamp(0, w_img)
    boxes[..., 1::2] = boxes[..., 1::2].clamp(0, h_img)
    conf = pred[..., 4: 5 * b: 5]  # [N, S, S, B]
    probs = pred[..., 5 * b:]  # [N, S, S, C]
    scores = conf.unsqueeze(-1) * probs.unsqueeze(-2)  # [N, S, S, B, C]: class-specific confidence
    out = []
    for i in range(n):
        sc = scores[i].reshape(-1, c)
        bx = boxes[i].reshape(-1, 4)
        keep_box, label = (sc > score_threshold).nonzero(as_tuple=True)
        chosen, chosen_scores = bx[keep_box], sc[keep_box, label]
        keep = batched_nms(chosen, chosen_scores, label, iou_threshold)[:max_detections]
        out.append({"boxes": chosen[keep], "scores": chosen_scores[keep], "labels": label[keep]})
    return out


__all__ = ["YoloLayout", "decode", "encode", "loss"]
