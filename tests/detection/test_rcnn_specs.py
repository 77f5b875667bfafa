"""The R-CNN family specs (rcnn_shapes, fast_rcnn_shapes, mask_rcnn_shapes): they load, analyse
and build; the static shapes are the forward pass's with R regions per image; and each equals a
hand-written nn.Module of the same architecture (parameter counts, and outputs after copying the
weights), with torchvision.ops doing the region cutting in the reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align, roi_pool

import compiler
from compiler.data.shapes import CLASSES
from compiler.detection.proposals import random_boxes
from support import copy_by_order, randomise_batchnorm

ROOT = Path(__file__).resolve().parents[2]
SPECS = {name: ROOT / "specs" / f"{name}_shapes.yaml" for name in ("rcnn", "fast_rcnn", "mask_rcnn")}
K = len(CLASSES) + 1  # 6 shape classes + background (index 0)


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class Backbone(nn.Sequential):
    """conv 32 - pool - conv 64 - pool - conv 128, all 3x3 with BN and ReLU: stride 4."""

    def __init__(self):
        super().__init__(*conv_bn_relu(3, 32), nn.MaxPool2d(2), *conv_bn_relu(32, 64), nn.MaxPool2d(2),
                         *conv_bn_relu(64, 128))


class BoxHead(nn.Module):
    """fc6, fc7 (256, ReLU, dropout) and the two siblings: class scores and per-class deltas."""

    def __init__(self, features: int = 128 * 7 * 7):
        super().__init__()
        self.fc6, self.fc7 = nn.Linear(features, 256), nn.Linear(256, 256)
        self.cls, self.box = nn.Linear(256, K), nn.Linear(256, 4 * K)

    def forward(self, x):
        x = F.dropout(F.relu(self.fc6(x.flatten(1))), 0.2, self.training)
        x = F.dropout(F.relu(self.fc7(x)), 0.2, self.training)
        return self.cls(x), self.box(x)


class FastRCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone, self.head = Backbone(), BoxHead()

    def forward(self, image, boxes):
        return self.head(roi_pool(self.backbone(image), list(boxes), (7, 7), spatial_scale=0.25))


class RCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone, self.head = Backbone(), BoxHead()

    def forward(self, image, boxes):
        crops = roi_align(image, list(boxes), (28, 28), spatial_scale=1.0, sampling_ratio=1, aligned=True)
        return self.head(self.backbone(crops))


class MaskRCNN(nn.Module):
    """Box head on 7x7 RoIAlign, torchvision's mask head (4 convs of 64, deconv, 1x1) on 14x14."""

    def __init__(self):
        super().__init__()
        from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

        self.backbone, self.head = Backbone(), BoxHead()
        self.mask_convs = MaskRCNNHeads(128, [64, 64, 64, 64], 1)
        self.mask_predictor = MaskRCNNPredictor(64, 64, K)

    def forward(self, image, boxes):
        f = self.backbone(image)
        cls, box = self.head(roi_align(f, list(boxes), (7, 7), 0.25, sampling_ratio=2, aligned=True))
        m = roi_align(f, list(boxes), (14, 14), 0.25, sampling_ratio=2, aligned=True)
        return cls, box, self.mask_predictor(self.mask_convs(m))


REFERENCES = {"rcnn": RCNN, "fast_rcnn": FastRCNN, "mask_rcnn": MaskRCNN}
OUTPUTS = {"rcnn": {"cls": (K,), "box": (4 * K,)}, "fast_rcnn": {"cls": (K,), "box": (4 * K,)},
           "mask_rcnn": {"cls": (K,), "box": (4 * K,), "mask": (K, 28, 28)}}


@pytest.mark.parametrize("name", SPECS)
def test_contract_inputs_outputs_and_static_shapes(name):
    spec = compiler.load(SPECS[name], vars={"rois": 5})
    assert spec.inputs == {"image": (3, 64, 64), "rois": (5, 4)}
    analysis = compiler.analyze(spec)
    graph = analysis.graph
    assert graph.boxes == ["rois"]
    assert {o: graph.shapes[o] for o in graph.outputs} == OUTPUTS[name]
    assert all(graph.regions[o] == 5 for o in graph.outputs)
    model = compiler.build(spec, seed=0).eval()
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, 64, 64, generator=gen)
    with torch.no_grad():
        outs = model(image, random_boxes(2, 5, 64, generator=gen))
    assert [tuple(o.shape) for o in outs] == [(2 * 5, *OUTPUTS[name][o]) for o in graph.outputs]


@pytest.mark.parametrize("name", SPECS)
def test_variable_number_of_boxes_per_image_at_run_time(name):
    """R = 64 is declared; a list of 3 and 9 boxes gives 12 rows, image 0's first."""
    model = compiler.build(SPECS[name], seed=0).eval()
    gen = torch.Generator().manual_seed(1)
    image = torch.randn(2, 3, 64, 64, generator=gen)
    a, b = random_boxes(1, 3, 64, generator=gen)[0], random_boxes(1, 9, 64, generator=gen)[0]
    with torch.no_grad():
        both = model(image, [a, b])
        first = model(image[:1], [a])
    assert both[0].shape[0] == 12
    torch.testing.assert_close(both[0][:3], first[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", SPECS)
def test_equals_a_hand_written_module(name):
    ours = compiler.build(SPECS[name], seed=0).eval()
    theirs = REFERENCES[name]().eval()
    count = sum(p.numel() for p in theirs.parameters())
    assert sum(p.numel() for p in ours.parameters()) == count == compiler.analyze(compiler.load(SPECS[name])).params
    gen = torch.Generator().manual_seed(0)
    randomise_batchnorm(theirs, gen)
    copy_by_order(ours, theirs)  # pairs by registration order, shapes checked
    theirs.eval()
    image = torch.randn(2, 3, 64, 64, generator=gen)
    boxes = random_boxes(2, 7, 64, generator=gen, min_size=4)
    with torch.no_grad():
        for a, b in zip(ours(image, boxes), theirs(image, boxes)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_rcnn_and_fast_rcnn_have_the_same_layers():
    """The speed benchmark compares like with like: same parameters, per region vs shared."""
    fast = compiler.analyze(compiler.load(SPECS["fast_rcnn"]))
    rcnn = compiler.analyze(compiler.load(SPECS["rcnn"]))
    assert fast.params == rcnn.params
    assert [n.shape for n in fast.nodes if n.op in ("linear",)] == [n.shape for n in rcnn.nodes if n.op == "linear"]
    # per image, R-CNN's convs run on 64 crops of 28x28 (64 * 28^2 = 50,176 pixels against
    # 64^2 = 4,096 for the shared pass), so it costs more MACs
    assert rcnn.macs > 3 * fast.macs


def test_summary_marks_per_region_rows(capsys):
    from compiler.cli import main

    assert main(["summary", str(SPECS["fast_rcnn"])]) == 0
    out = capsys.readouterr().out
    assert "64 x 128x7x7" in out and "64 x 7 " in out
    assert "one row per region" in out


def test_one_training_step_on_shapes_scenes_with_sampled_rois():
    """The contract end to end: shapes scenes -> sliding windows + sample_rois -> the spec ->
    cross-entropy on cls (0 = background), smooth L1 on the labelled class's deltas, BCE on the
    labelled class's mask; every parameter that a label can reach gets a finite gradient."""
    from torchvision.ops import roi_align as tv_roi_align

    from compiler.data import build_dataset
    from compiler.detection.proposals import box_targets, class_deltas, sample_rois, sliding_windows

    dataset, _ = build_dataset("shapes", "train", size=64, task="detection", objects=(1, 3), train_size=2)
    images, rois, labels, targets, masks = [], [], [], [], []
    windows = sliding_windows(64)
    gen = torch.Generator().manual_seed(0)
    for i in range(2):
        image, target = dataset[i]
        r, lab, matched = sample_rois(windows, target["boxes"], target["labels"], 16, generator=gen)
        assert (lab[:4] > 0).all() and (lab[4:] == 0).all()  # a quarter foreground, GT included
        assert (lab[:4] == target["labels"][matched[:4]] + 1).all()
        gt = target["boxes"][matched.clamp(min=0)]
        images.append(image), rois.append(r), labels.append(lab), targets.append(box_targets(r, gt))
        m = tv_roi_align(target["masks"][matched.clamp(min=0)][:, None].float(),
                         list(r[:, None]), (28, 28), 1.0, sampling_ratio=2, aligned=True)[:, 0]
        masks.append(m)
    image, boxes = torch.stack(images), torch.stack(rois)
    labels, targets, masks = torch.cat(labels), torch.cat(targets), torch.cat(masks)
    fg = labels > 0
    model = compiler.build(SPECS["mask_rcnn"], seed=0).train()
    cls, box, mask = model(image, boxes)
    assert cls.shape == (32, K) and box.shape == (32, 4 * K) and mask.shape == (32, K, 28, 28)
    loss = F.cross_entropy(cls, labels) + F.smooth_l1_loss(class_deltas(box, labels)[fg], targets[fg]) \
        + F.binary_cross_entropy_with_logits(mask[torch.arange(32), labels][fg], masks[fg])
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
