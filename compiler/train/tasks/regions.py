"""The region task: training R-CNN, Fast R-CNN and Mask R-CNN specs (an image and boxes in,
per-region class logits, box deltas and masks out; the contract is in docs/detection.md).

Each training image gets a minibatch of R regions (R = the spec's declared boxes count) drawn by
`compiler.detection.proposals.sample_rois` from sliding-window proposals plus the ground-truth
boxes and jittered copies of them: a quarter foreground (IoU >= 0.5 with an object, labelled
its class + 1), the rest background (label 0). The loss is Fast R-CNN's multi-task loss:
cross-entropy over the regions' classes, smooth L1 on the deltas of each foreground region's
true class (normalised by the number of regions), and for Mask R-CNN the per-pixel binary
cross-entropy of the true class's 28x28 mask against the object's mask cut to the region.

Validation reports the fraction of sampled regions classified right (top-1) and, from every
proposal of each image, detections (softmax scores per class, boxes refined by the class's
deltas, per-class NMS) scored with torchmetrics' MeanAveragePrecision; for Mask R-CNN the mask
branch then runs again on the detected boxes (as in the paper) and the masks, pasted into the
image, get their own mAP.
"""

from __future__ import annotations

import copy

import torch
import torch.fx
from torch.nn import functional as F

from ...detection.proposals import box_targets, class_deltas, decode_boxes, sample_rois, sliding_windows
from ...errors import Problem, SpecError
from .base import HEAD_COLUMNS, MAP_COLUMNS, TAIL_COLUMNS, BoxTask, boxes_input, image_input

MASK_SIZE_DEFAULT = 28


class RegionTask(BoxTask):
    """Classify, refine (and mask) regions of an image: the R-CNN family's heads."""

    kind = "regions"
    has_accuracy = True
    columns = {**HEAD_COLUMNS, "train_top1": "train region acc", "val_loss": "val loss",
               "val_top1": "val region acc", **MAP_COLUMNS, "val_mask_map50": "val mask mAP@0.5",
               "val_mask_map": "val mask mAP@0.5:0.95", **TAIL_COLUMNS}

    fg_fraction = 0.25
    jitter = 4  # jittered copies of each object's box among the candidates (positives everywhere)
    score_threshold = 0.05
    nms_iou = 0.5
    max_detections = 20

    def __init__(self, num_classes: int, spec, analysis):
        super().__init__(num_classes, spec, analysis)
        graph = analysis.graph
        self.rois_name = boxes_input(spec)
        self.count = int(spec.inputs[self.rois_name][0])
        self.outputs = list(graph.outputs)
        shapes = [tuple(graph.shapes[o]) for o in self.outputs]
        vectors = sorted((s[0], i) for i, s in enumerate(shapes) if len(s) == 1)  # cls is narrower than box
        self.cls_at = vectors[0][1] if vectors else None
        self.box_at = vectors[1][1] if len(vectors) > 1 else None
        self.mask_at = next((i for i, s in enumerate(shapes) if len(s) == 3), None)
        self.shapes = shapes
        self.proposals = sliding_windows(self.image_size)
        self.generator = torch.Generator().manual_seed(0)

    # -- checks ----------------------------------------------------------------------------
    @classmethod
    def matches(cls, spec, analysis) -> bool:
        """An image and boxes in (R-CNN, Fast R-CNN, Mask R-CNN heads that classify, refine and
        mask given regions)."""
        return boxes_input(spec) is not None and len(spec.inputs) == 2

    @classmethod
    def signature_problem(cls, spec):
        if len(spec.inputs[image_input(spec)]) == 3:
            return None  # any number of per-region outputs: `check` reads them
        return super().signature_problem(spec)

    def check(self, spec, analysis, info) -> None:
        from ...data.compat import class_var, class_var_problem, spec_loc

        k = info.num_classes + 1
        wanted = [("cls", self.cls_at, (k,), f"[{k}] class logits (background + {info.num_classes} classes)"),
                  ("box", self.box_at, (4 * k,), f"[{4 * k}] box deltas (4 per class, background included)")]
        if self.mask_at is not None:
            wanted.append(("mask", self.mask_at, None, f"[{k}, M, M] mask logits (one mask per class)"))
        for role, at, shape, what in wanted:
            if at is None:
                raise SpecError(Problem(spec.output_locs[0] if spec.output_locs else spec_loc(spec, ("outputs",)),
                                        f"a spec that takes boxes ({self.rois_name}) gives per region a `{role}` "
                                        f"output of {what}; outputs: {', '.join(self.outputs)}", "outputs"))
            got = self.shapes[at]
            ok = got == shape if shape is not None else (got[0] == k and got[1] == got[2])
            if ok:
                continue
            out_id = self.outputs[at]
            node = next((n for n in spec.nodes if n.id == out_id), None)
            message = (f"output {out_id!r} ({role}) gives {list(got)} per region, the dataset {info.name!r} "
                       f"({info.num_classes} classes: {', '.join(info.classes)}) needs {what}")
            width = got[0] if role == "cls" else got[0] // 4 if role == "box" else got[0]
            var = class_var(spec, node, width - 1) if node is not None else None
            if var is not None:
                raise SpecError(class_var_problem(spec, var, message, info.num_classes))
            raise SpecError(Problem(node.loc if node is not None else spec.output_locs[at], message,
                                    node.path if node is not None else "outputs"))

    # -- batches -----------------------------------------------------------------------------
    def to_device(self, target, device: torch.device):
        return target  # regions are sampled on the CPU (seeded generators); tensors move after

    def _sample(self, targets: list[dict], device: torch.device, generator: torch.Generator):
        rois, labels, matched_boxes, matched_masks = [], [], [], []
        for t in targets:
            r, lab, match = sample_rois(self.proposals, t["boxes"], t["labels"], self.count,
                                        fg_fraction=self.fg_fraction, generator=generator, jitter=self.jitter,
                                        image_size=self.image_size)
            rois.append(r)
            labels.append(lab)
            fg = match >= 0
            gt = torch.zeros(self.count, 4)
            gt[fg] = t["boxes"].float()[match[fg]]
            gt[~fg] = r[~fg]  # background rows: never used, but keep them finite
            matched_boxes.append(gt)
            if self.mask_at is not None:
                masks = t["masks"]
                picked = torch.zeros(self.count, *masks.shape[-2:], dtype=torch.float32)
                picked[fg] = masks.float()[match[fg]]
                matched_masks.append(picked)
        batch = {"rois": torch.stack(rois).to(device), "labels": torch.cat(labels).to(device),
                 "gt_boxes": torch.cat(matched_boxes).to(device)}
        if matched_masks:
            batch["gt_masks"] = torch.cat(matched_masks).to(device)
        return batch

    def forward(self, model, images: torch.Tensor, target, train: bool):
        if train:
            generator = self.generator
        else:  # the same regions for every validation pass: seeded by the pass
            generator = self.eval_generator
        batch = self._sample(target, images.device, generator)
        outputs = model(images, batch["rois"])
        batch["outputs"] = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        if not train:
            batch["detections"] = self.detect(model, images)
        return batch

    # -- loss and accuracy -------------------------------------------------------------------
    def train_loss(self, batch, target, criterion) -> torch.Tensor:
        out = batch["outputs"]
        labels = batch["labels"]
        rois = batch["rois"].reshape(-1, 4)
        cls = out[self.cls_at].float()
        loss = F.cross_entropy(cls, labels)
        fg = torch.nonzero(labels > 0).flatten()
        if len(fg):
            deltas = class_deltas(out[self.box_at].float()[fg], labels[fg])
            goal = box_targets(rois[fg], batch["gt_boxes"][fg])
            loss = loss + F.smooth_l1_loss(deltas, goal, beta=1 / 9, reduction="sum") / labels.numel()
            if self.mask_at is not None:
                logits = out[self.mask_at].float()[fg, labels[fg]]  # [F, M, M]: the true class's mask
                loss = loss + F.binary_cross_entropy_with_logits(logits, self._mask_targets(batch, fg, logits))
        return loss

    @staticmethod
    def _mask_targets(batch, fg: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Each foreground region's object mask cut to the region and resized to M x M (as
        torchvision's project_masks_on_boxes does)."""
        from torchvision.ops import roi_align  # torchvision costs ~1 s to import: only detection runs pay it

        rois = batch["rois"].reshape(-1, 4)[fg]
        index = torch.arange(len(fg), device=rois.device, dtype=rois.dtype)[:, None]
        masks = batch["gt_masks"][fg][:, None]
        return roi_align(masks, torch.cat([index, rois], dim=1), tuple(logits.shape[-2:]), 1.0)[:, 0]

    def loss_sum(self, batch, target) -> torch.Tensor:
        return self.train_loss(batch, target, None) * len(target)

    def correct(self, batch, target) -> tuple[torch.Tensor, torch.Tensor]:
        """(each image's fraction of regions classified right, summed over the batch; 0)."""
        hits = (batch["outputs"][self.cls_at].argmax(dim=1) == batch["labels"]).float()
        per_image = hits.reshape(len(target), -1).mean(dim=1).sum()
        return per_image, torch.zeros((), device=hits.device)

    # -- detections and mAP ------------------------------------------------------------------
    @torch.no_grad()
    def detect(self, model, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Every proposal of each image through the model; per class: softmax score, the box its
        deltas give, NMS; the best `max_detections`. With a mask output, the mask branch runs again
        on the detected boxes and the true class's mask is pasted into the image (bool [K, H, W])."""
        from torchvision.ops import batched_nms, clip_boxes_to_image, remove_small_boxes

        n = len(images)
        proposals = self.proposals.to(images.device)
        cls, box = self._boxes_only(model)(images, proposals.expand(n, -1, -1))
        k = cls.shape[1]
        scores = cls.float().softmax(dim=1).reshape(n, -1, k)
        deltas = box.float().reshape(n, -1, k, 4)
        h, w = self.image_size
        found = []
        for i in range(n):
            rows = len(proposals)
            boxes = decode_boxes(deltas[i].reshape(-1, 4), proposals.repeat_interleave(k, dim=0)).reshape(rows, k, 4)
            boxes, sc = boxes[:, 1:].reshape(-1, 4), scores[i][:, 1:].reshape(-1)
            labels = torch.arange(k - 1, device=images.device).repeat(rows)
            boxes = clip_boxes_to_image(boxes, (h, w))
            keep = torch.nonzero(sc > self.score_threshold).flatten()
            keep = keep[remove_small_boxes(boxes[keep], 1.0)]
            boxes, sc, labels = boxes[keep], sc[keep], labels[keep]
            keep = batched_nms(boxes, sc, labels, self.nms_iou)[: self.max_detections]
            found.append({"boxes": boxes[keep], "scores": sc[keep], "labels": labels[keep]})
        if self.mask_at is not None:
            self._masks(model, images, found)
        return found

    def _boxes_only(self, model):
        """The model without its mask branch: the same modules (same weights), a graph whose
        output is (cls, box) with what only the masks needed removed, so that scoring hundreds of
        proposals per image does not run the mask head on each of them."""
        base = getattr(model, "_orig_mod", model)  # torch.compile
        base = getattr(base, "module", base)  # DDP
        if not isinstance(base, torch.fx.GraphModule):
            return lambda images, rois: self._pick(model(images, rois))
        cached = getattr(self, "_pruned", None)
        if cached is not None and cached[0] is base:
            return cached[1]
        graph = copy.deepcopy(base.graph)
        output = next(node for node in graph.nodes if node.op == "output")
        values = output.args[0]
        values = values if isinstance(values, (tuple, list)) else (values,)
        output.args = ((values[self.cls_at], values[self.box_at]),)
        pruned = torch.fx.GraphModule(base, graph)  # shares base's submodules
        pruned.graph.eliminate_dead_code()
        pruned.recompile()
        self._pruned = (base, pruned)
        return pruned

    def _pick(self, out):
        out = out if isinstance(out, (tuple, list)) else (out,)
        return out[self.cls_at], out[self.box_at]

    def _masks(self, model, images: torch.Tensor, found: list[dict]) -> None:
        from torchvision.models.detection.roi_heads import paste_masks_in_image

        h, w = self.image_size
        boxes = [d["boxes"] if len(d["boxes"]) else torch.zeros(1, 4, device=images.device) for d in found]
        out = model(images, boxes)  # a list: any number of boxes per image
        logits = out[self.mask_at].float()
        start = 0
        for d, b in zip(found, boxes):
            rows = logits[start:start + len(b)]
            start += len(b)
            if not len(d["boxes"]):
                d["masks"] = torch.zeros(0, h, w, dtype=torch.bool, device=images.device)
                continue
            probs = rows[torch.arange(len(rows), device=rows.device), d["labels"] + 1].sigmoid()[:, None]
            d["masks"] = paste_masks_in_image(probs, d["boxes"], (h, w), padding=1)[:, 0] >= 0.5

    def evaluate_start(self, device: torch.device) -> None:
        self.eval_generator = torch.Generator().manual_seed(1)
        self.metric = self.map_metric(device)
        self.mask_metric = self.map_metric(device, "segm") if self.mask_at is not None else None

    def evaluate_update(self, batch, target) -> None:
        device = batch["labels"].device
        found = batch["detections"]
        truth = [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)} for t in target]
        self.metric.update([{k: d[k] for k in ("boxes", "scores", "labels")} for d in found], truth)
        if self.mask_metric is not None:
            for t, tr in zip(target, truth):
                tr["masks"] = t["masks"].to(device).bool()
            self.mask_metric.update(found, truth)

    def evaluate_finish(self) -> dict[str, float]:
        box = self.metric.compute()
        self.metric.reset()
        result = {"map50": float(box["map_50"]), "map": float(box["map"])}
        if self.mask_metric is not None:
            mask = self.mask_metric.compute()
            self.mask_metric.reset()
            result.update(mask_map50=float(mask["map_50"]), mask_map=float(mask["map"]))
        return result


__all__ = ["RegionTask"]
