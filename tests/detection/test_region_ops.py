"""The region ops (roi_align, roi_pool, crop_regions, mask_head) beyond the registry harness:
agreement with torchvision and with plain resizing, the boxes forms accepted at run time,
per-region counting in the analysis, and located errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align, roi_pool

import compiler

HEAD = "blockgraph: 1\nname: t\ninputs: {image: [3, 32, 32], rois: [4, 4]}\nnodes:\n"


def spec(nodes: str, outputs: str = "") -> str:
    return HEAD + nodes + (f"outputs: [{outputs}]\n" if outputs else "")


def test_roi_ops_equal_torchvision_for_every_boxes_form():
    text = spec("  - {id: a, op: roi_align, in: [image, rois], size: [3, 5], scale: 0.5, sampling_ratio: -1}\n"
                "  - {id: p, op: roi_pool, in: [image, rois], size: 4, scale: 0.5}\n", "a, p")
    model = compiler.build(text)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    boxes = torch.tensor([[[0, 0, 32, 32], [4, 8, 20, 30], [10, 10, 11, 12], [1.5, 2.5, 9.25, 7.0]],
                          [[3, 3, 13, 23], [0, 0, 64, 64], [5, 6, 7, 8], [30, 1, 31, 31]]])
    want_a = roi_align(x, list(boxes), (3, 5), 0.5, sampling_ratio=-1, aligned=True)
    want_p = roi_pool(x, list(boxes), (4, 4), 0.5)
    rois5 = torch.cat([torch.tensor([0.0] * 4 + [1.0] * 4)[:, None], boxes.reshape(-1, 4)], 1)
    for form in (boxes, list(boxes), rois5):
        a, p = model(x, form)
        assert a.shape == (8, 3, 3, 5) and p.shape == (8, 3, 4, 4)
        torch.testing.assert_close(a, want_a)
        torch.testing.assert_close(p, want_p)
    with pytest.raises(ValueError, match="boxes for 1 images and 2 images"):
        model(x, boxes[:1])


def test_crop_regions_is_a_resize_of_the_box():
    model = compiler.build(spec("  - {id: c, op: crop_regions, in: [image, rois], size: 16}\n"))
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[[0, 0, 16, 16], [8, 8, 40, 40], [4, 0, 20, 32], [0, 0, 32, 32]]], dtype=torch.float)
    out = model(x, boxes)
    torch.testing.assert_close(out[0], x[0, :, :16, :16])                    # 16x16 box -> itself
    torch.testing.assert_close(out[3], F.avg_pool2d(x, 2)[0])                # whole image halved
    torch.testing.assert_close(out[2], F.interpolate(x[:, :, 0:32, 4:20], size=(16, 16), mode="bilinear",
                                                     align_corners=False)[0])  # 2x down vertically only
    # the part of [8, 40] outside the image reads zeros: the right/bottom half of that crop
    torch.testing.assert_close(out[1][:, :12, :12], F.avg_pool2d(x[:, :, 8:32, 8:32], 2)[0])
    assert (out[1][:, 12:, 12:] == 0).all()


def test_crop_regions_context_grows_the_box():
    """context p: the box fills the middle (size - 2p) pixels; here 8 of 16, the box [8, 24]
    becomes [0, 32], the whole image halved."""
    model = compiler.build(spec("  - {id: c, op: crop_regions, in: [image, rois], size: 16, context: 4}\n"))
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = model(x, torch.tensor([[[8.0, 8.0, 24.0, 24.0]] * 4]))
    torch.testing.assert_close(out[0], F.avg_pool2d(x, 2)[0])


def test_mask_head_matches_torchvision_mask_rcnn_heads():
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

    from support import copy_by_order

    # the paper's / torchvision's COCO head: 256 channels in, 4 convs of 256, 91 classes
    heads, predictor = MaskRCNNHeads(256, [256] * 4, 1), MaskRCNNPredictor(256, 256, 91)
    text = ("blockgraph: 1\nname: m\ninputs: {x: [256, 14, 14]}\n"
            "nodes:\n  - {id: mask, op: mask_head, classes: 91}\n")
    analysis = compiler.analyze(compiler.load(text))
    reference = sum(p.numel() for p in heads.parameters()) + sum(p.numel() for p in predictor.parameters())
    # 4 x (256*256*9 + 256) + (256*256*2*2 + 256) + (256*91 + 91)
    assert analysis.params == reference == 4 * 590_080 + 262_400 + 23_387
    assert analysis.graph.shapes["mask"] == (91, 28, 28)
    # outputs, on a narrower copy so the test stays fast
    heads, predictor = MaskRCNNHeads(8, [6, 6], 1), MaskRCNNPredictor(6, 6, 3)
    model = compiler.build("blockgraph: 1\nname: m\ninputs: {x: [8, 14, 14]}\n"
                           "nodes:\n  - {id: mask, op: mask_head, classes: 3, convs: 2, width: 6}\n")
    copy_by_order(model, torch.nn.Sequential(heads, predictor))
    x = torch.randn(5, 8, 14, 14)
    torch.testing.assert_close(model(x), predictor(heads(x)))


def test_analysis_counts_every_region():
    text = ("blockgraph: 1\nname: t\ninputs: {image: [3, 32, 32], rois: [$r, 4]}\nvars: {r: 10}\nnodes:\n"
            "  - {id: f, op: conv, in: image, out: 8, k: 3}\n"
            "  - {id: p, op: roi_align, in: [f, rois], size: 2, scale: 1.0}\n"
            "  - {op: flatten}\n  - {id: fc, op: linear, out: 5}\n")
    one = compiler.analyze(compiler.load(text, vars={"r": 1}), batch=3)
    ten = compiler.analyze(compiler.load(text), batch=3)
    assert ten.node("fc").shape == one.node("fc").shape == (5,)
    assert (one.node("fc").regions, ten.node("fc").regions, ten.node("f").regions) == (1, 10, 1)
    assert ten.node("fc").macs == 10 * one.node("fc").macs == 10 * 32 * 5
    assert ten.node("f").macs == one.node("f").macs
    assert ten.node("p").activation_bytes == 3 * 10 * 8 * 2 * 2 * 4
    assert ten.to_dict()["nodes"][-1]["regions"] == 10


@pytest.mark.parametrize("nodes, message", [
    ("  - {id: p, op: roi_align, in: [image, rois], size: 32, scale: 1.0}\n"
     "  - {id: bad, op: add, in: [p, image]}\n", "mixes per-image and per-region inputs (p is per region (4 per image), "
                                                 "image is per image)"),
    ("  - {id: p, op: roi_pool, in: [image, rois], scale: 1.0}\n"
     "  - {id: again, op: roi_pool, in: [p, rois], scale: 1.0}\n", "its input is already per region"),
    ("  - {id: p, op: roi_align, in: [rois, image], scale: 1.0}\n", "roi_align expects a feature map"),
    ("  - {id: p, op: roi_align, in: [image, image], scale: 1.0}\n", "[R, 4] per image"),
    ("  - {id: p, op: roi_align, in: [image, rois], scale: 0}\n", "scale"),
    ("  - {id: p, op: crop_regions, in: [image, rois], size: 8, context: 4}\n", "use a context below 4"),
    ("  - {id: p, op: roi_align, in: image, scale: 1.0}\n", "takes exactly 2 input(s)"),
])
def test_located_errors(nodes, message):
    with pytest.raises(compiler.SpecError) as info:
        compiler.analyze(compiler.load(spec(nodes)))
    text = str(info.value)
    assert message in text, text
    assert ":5:" in text or ":6:" in text, text  # FILE:LINE:COL of the node


@pytest.mark.parametrize("fmt, options", [("torchscript", {}), ("onnx", {"exporter": "legacy"})])
def test_region_ops_export(fmt, options, tmp_path):
    """TorchScript and ONNX (the TorchScript-based exporter: torchvision registers RoiAlign and
    MaxRoiPool for it) keep the boxes input; export() reloads the file and compares outputs."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    text = ("blockgraph: 1\nname: regions\ninputs: {image: [3, 32, 32], rois: [3, 4]}\nnodes:\n"
            "  - {id: f, op: conv, in: image, out: 4, k: 3, stride: 2}\n"
            "  - {id: a, op: roi_align, in: [f, rois], size: 2, scale: 0.5}\n"
            "  - {id: p, op: roi_pool, in: [f, rois], size: 2, scale: 0.5}\n"
            "  - {id: c, op: crop_regions, in: [image, rois], size: 4}\n"
            "  - {id: cf, op: conv, in: c, out: 4, k: 3, stride: 2}\n"
            "  - {id: s, op: add, in: [a, p, cf]}\n")
    out = compiler.export(text, fmt, tmp_path / f"m.{fmt}", **options)
    assert out.stat().st_size > 0


def test_torchscript_export_in_a_fresh_process(tmp_path):
    """torchvision is imported when a region op is built: imported during the trace instead, it
    runs one of its ops (a CUDA version check) that torch.jit.trace cannot record."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import sys, compiler\n"
            "assert 'torchvision' not in sys.modules\n"
            f"compiler.export({str(root / 'specs' / 'fast_rcnn_shapes.yaml')!r}, 'torchscript', "
            f"{str(tmp_path / 'm.pt')!r})\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
