"""Predictions drawn over validation images, for the Train tab (no Streamlit calls).

`samples(predictions)` draws what `compiler.train.predictions.validation_predictions` returned
for a run, by what the predictions say they hold (their `drawn`: the `predicts` of the run's task):

- "masks", `MaskPredictions` (segmentation): per image, the true mask and the predicted mask, each
  drawn over the (darkened) image with torchvision's `draw_segmentation_masks` (one colour per
  class, background left clear), and the pixel accuracy of the prediction;
- "boxes", `DetectionPredictions` (detection, region heads): per image, the true boxes and the
  predicted ones (label and score) drawn with torchvision's `draw_bounding_boxes`, with their
  instance masks under them when there are any.

Each sample is a dict with "truth" and "prediction" (H x W x 3 uint8 numpy arrays, ready for
st.image) and a "caption".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)]
"""Distinct colours (Sasha Trubetskoy's list), by class index modulo its length."""


def color(index: int) -> tuple[int, int, int]:
    return PALETTE[int(index) % len(PALETTE)]


def rgb(image: torch.Tensor) -> torch.Tensor:
    """A uint8 [C, H, W] image as uint8 [3, H, W] (grey repeated, alpha dropped)."""
    if image.dtype != torch.uint8:
        raise TypeError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim != 3:
        raise ValueError(f"expected an image [C, H, W], got shape {list(image.shape)}")
    if image.shape[0] == 1:
        return image.expand(3, -1, -1).contiguous()
    return image[:3].contiguous()


def to_numpy(image: torch.Tensor):
    """uint8 [3, H, W] -> H x W x 3 numpy array (what st.image takes)."""
    return image.permute(1, 2, 0).contiguous().numpy()


def draw_class_mask(image: torch.Tensor, mask: torch.Tensor, num_classes: int | None = None,
                    alpha: float = 0.5, dim: float = 1.0) -> torch.Tensor:
    """Every class of a [H, W] class-index mask but 0 (background) drawn over `image` in its
    colour (`color(class)`), the image first darkened to `dim` of its brightness (so the
    colours stand out from the shapes' own); returns uint8 [3, H, W]."""
    from torchvision.utils import draw_segmentation_masks

    base = rgb(image)
    if dim != 1.0:
        base = (base.float() * dim).round().clamp(0, 255).to(torch.uint8)
    n = int(num_classes if num_classes is not None else int(mask.max()) + 1)
    present = [c for c in range(1, n) if bool((mask == c).any())]
    if not present:
        return base
    masks = torch.stack([mask == c for c in present])
    return draw_segmentation_masks(base, masks, alpha=alpha, colors=[color(c) for c in present])


def draw_detections(image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, classes: list[str],
                    scores: torch.Tensor | None = None, masks: torch.Tensor | None = None,
                    alpha: float = 0.4, width: int = 1) -> torch.Tensor:
    """Boxes (x0, y0, x1, y1 pixels) with their class names (and scores) over `image`, each in
    its class colour, instance masks (bool or probabilities [K, H, W] / [K, 1, H, W]) under
    them; returns uint8 [3, H, W]."""
    from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

    out = rgb(image)
    labels = labels.reshape(-1).to(torch.int64)
    colors = [color(int(c)) for c in labels]
    if masks is not None and len(masks):
        m = masks[:, 0] if masks.ndim == 4 else masks
        m = m > 0.5 if m.dtype != torch.bool else m
        out = draw_segmentation_masks(out, m.cpu(), alpha=alpha, colors=colors)
    if len(boxes):
        names = [classes[int(c)] if 0 <= int(c) < len(classes) else str(int(c)) for c in labels]
        if scores is not None:
            names = [f"{n} {float(s):.2f}" for n, s in zip(names, scores.reshape(-1))]
        out = draw_bounding_boxes(out, boxes.reshape(-1, 4).to(torch.float32).cpu(), labels=names, colors=colors,
                                  width=width)
    return out


def segmentation_samples(predictions: Any) -> list[dict[str, Any]]:
    n_classes = max(len(predictions.classes), int(predictions.masks.max()) + 1 if predictions.masks.numel() else 1,
                    int(predictions.predictions.max()) + 1 if predictions.predictions.numel() else 1)
    out = []
    for image, truth, pred in zip(predictions.images, predictions.masks, predictions.predictions):
        accuracy = float((truth == pred).float().mean())
        names = [predictions.classes[c] if c < len(predictions.classes) else str(c)
                 for c in sorted({int(v) for v in pred.unique()} - {0})]
        out.append({"truth": to_numpy(draw_class_mask(image, truth, n_classes, alpha=0.7, dim=0.5)),
                    "prediction": to_numpy(draw_class_mask(image, pred, n_classes, alpha=0.7, dim=0.5)),
                    "caption": f"{100 * accuracy:.1f}% of pixels right; found {', '.join(names) or 'background only'}",
                    "accuracy": accuracy})
    return out


def detection_samples(predictions: Any) -> list[dict[str, Any]]:
    out = []
    for image, target, pred in zip(predictions.images, predictions.targets, predictions.predictions):
        truth = draw_detections(image, target["boxes"], target["labels"], predictions.classes,
                                masks=target.get("masks"))
        found = draw_detections(image, pred["boxes"], pred["labels"], predictions.classes, scores=pred.get("scores"),
                                masks=pred.get("masks"))
        out.append({"truth": to_numpy(truth), "prediction": to_numpy(found),
                    "caption": f"{len(target['boxes'])} true, {len(pred['boxes'])} predicted"})
    return out


@dataclass(frozen=True)
class Drawer:
    """How to draw one kind of predictions."""

    samples: Callable[[Any], list[dict[str, Any]]]
    background: bool
    """Whether class index 0 is the background (masks; detection labels index the classes)."""
    what: str
    """What is drawn, for captions: "masks", "boxes"."""


DRAWERS = {"masks": Drawer(segmentation_samples, True, "masks"), "boxes": Drawer(detection_samples, False, "boxes")}


def drawer(predictions: Any) -> Drawer:
    """The drawer of `predictions`, by their `drawn` ("masks", "boxes")."""
    found = DRAWERS.get(getattr(predictions, "drawn", None))
    if found is None:
        raise TypeError(f"cannot draw {type(predictions).__name__}: expected MaskPredictions or DetectionPredictions")
    return found


def samples(predictions: Any) -> list[dict[str, Any]]:
    """Drawn samples of MaskPredictions or DetectionPredictions (see the module docstring)."""
    return drawer(predictions).samples(predictions)


def legend(classes: list[str], background: bool = True) -> list[tuple[str, str]]:
    """(class name, #rrggbb) of every class, but the background (index 0) when `background`
    says index 0 is one (segmentation masks; detection labels index the classes directly)."""
    return [(name, "#%02x%02x%02x" % color(i)) for i, name in enumerate(classes) if not (background and i == 0)]
