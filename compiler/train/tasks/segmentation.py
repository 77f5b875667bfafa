"""Semantic segmentation: a spec whose (one) output is `[classes, H, W]` with its image's H and
W labels every pixel (a U-Net, an FCN). Cross-entropy over the classes of each pixel, averaged
over the pixels; top-1 is the pixel accuracy, and `val_miou` the mean intersection-over-union over
the classes (torchmetrics' multiclass Jaccard index, accumulated over the whole validation split).
`predict` gives the masks of a few validation images, with the images and the true masks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ...errors import Problem, SpecError
from .base import HEAD_COLUMNS, TAIL_COLUMNS, Task, displayed_image, first_batches, image_input, output_node


@dataclass
class MaskPredictions:
    """Predicted and true masks of some validation images, for drawing."""

    drawn: ClassVar[str] = "masks"
    """What a UI draws of them (the `predicts` of their task)."""

    images: torch.Tensor
    """uint8 [N, C, H, W]: the images as they look (not normalised)."""
    masks: torch.Tensor
    """int64 [N, H, W]: the true class of every pixel (0 = background)."""
    predictions: torch.Tensor
    """int64 [N, H, W]: the predicted class of every pixel."""
    classes: list[str]
    """Class names, by index."""


class SegmentationTask(Task):
    """Per-pixel classification: logits [B, C, H, W], targets [B, H, W] of class indices."""

    kind = "segmentation"
    dataset_task = "segmentation"
    predicts = "masks"
    columns = {**HEAD_COLUMNS, "train_top1": "train pixel acc", "val_loss": "val loss", "val_top1": "val pixel acc",
               "val_miou": "val mIoU", **TAIL_COLUMNS}

    @classmethod
    def matches(cls, spec, analysis) -> bool:
        out = tuple(analysis.graph.shapes[analysis.graph.outputs[0]])
        image = tuple(spec.inputs[image_input(spec)])
        return len(out) == 3 and len(image) == 3 and out[1:] == image[1:]

    @classmethod
    def dataset_options(cls, dataset: str) -> dict:
        return {"task": "segmentation"} if dataset.lower() == "shapes" else {}

    @classmethod
    def wrong_dataset(cls, info) -> str:
        return (f"dataset {info.name!r} has no per-pixel masks; a spec whose output is [classes, H, W] learns "
                "segmentation, which trains on dataset: shapes (its masks)")

    def check(self, spec, analysis, info) -> None:
        from ...data.compat import class_var

        out_id = analysis.graph.outputs[0]
        width = analysis.graph.shapes[out_id][0]
        if width == info.num_classes:
            return
        node = output_node(spec, analysis)
        what = (f"the spec's output has {width} classes per pixel, the dataset {info.name!r} has "
                f"{info.num_classes} ({', '.join(info.classes)})")
        var = class_var(spec, node, width) if node is not None else None
        if var is not None and spec.document is not None:
            raise SpecError(Problem(spec.document.loc(("vars", var)), f"{what}: set vars.{var} to {info.num_classes} "
                                    f"(--var {var}={info.num_classes})", f"vars.{var}"))
        loc = node.loc if node is not None else spec.output_locs[0]
        raise SpecError(Problem(loc, f"{what}: make the output node {out_id!r} give {info.num_classes} channels "
                                "(`out:` of its last conv)", node.path if node is not None else "outputs"))

    def correct(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(each image's fraction of correct pixels, summed over the batch; 0): so that top-1 is the
        mean pixel accuracy."""
        hits = (logits.argmax(dim=1) == target).flatten(1).float().mean(dim=1).sum()
        return hits, torch.zeros((), device=hits.device)

    def loss_sum(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        per_pixel = torch.nn.functional.cross_entropy(logits.float(), target, reduction="none")
        return per_pixel.flatten(1).mean(dim=1).sum()

    def evaluate_start(self, device: torch.device) -> None:
        from torchmetrics.classification import MulticlassJaccardIndex

        # macro: the mean over classes of |pred ∩ true| / |pred ∪ true|, from one confusion
        # matrix over every pixel of the split (synced across processes under DDP)
        self.jaccard = MulticlassJaccardIndex(self.num_classes, average="macro").to(device)

    def evaluate_update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.jaccard.update(logits.argmax(dim=1), target)

    def evaluate_finish(self) -> dict[str, float]:
        value = float(self.jaccard.compute())
        self.jaccard.reset()
        return {"miou": value}

    def predict(self, model, dataset, n, classes, device="cpu") -> MaskPredictions:
        return predict_masks(model, dataset, n, classes, device)


@torch.no_grad()
def predict_masks(model: torch.nn.Module, dataset, n: int = 8, classes: list[str] | None = None,
                  device: str | torch.device = "cpu", batch_size: int = 16) -> MaskPredictions:
    """The first `n` items of `dataset` (a segmentation split) through `model` in eval mode."""
    images, masks, preds = [], [], []
    for start, items, x in first_batches(model, dataset, n, batch_size, device):
        preds.append(model(x).argmax(dim=1).cpu())
        masks.append(torch.stack([m for _, m in items]))
        images.append(torch.stack([displayed_image(dataset, i, x[j].cpu()) for j, i in
                                   enumerate(range(start, start + len(items)))]))
    names = classes or [str(i) for i in range(int(preds[0].max()) + 1 if preds else 0)]
    return MaskPredictions(torch.cat(images), torch.cat(masks), torch.cat(preds), list(names))
