"""YOLO v1: the `yolo_head` op, the paper's 448x448 network, and the loss / decoding of
compiler.detection.yolo, checked against hand-computed numbers and independent code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import compiler
from compiler.detection import yolo

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = yolo.YoloLayout(grid=4, boxes=2, classes=3, image_size=(64, 64))  # cells of 16x16 pixels


def paper_yolov1() -> nn.Module:
    """YOLO v1 as the paper's Figure 3 lists it, written out by hand (independent of the spec)."""
    layers: list[nn.Module] = []
    channels = 3

    def conv(out: int, k: int, stride: int = 1) -> None:
        nonlocal channels
        layers.extend([nn.Conv2d(channels, out, k, stride, k // 2), nn.LeakyReLU(0.1)])
        channels = out

    conv(64, 7, 2); layers.append(nn.MaxPool2d(2))
    conv(192, 3); layers.append(nn.MaxPool2d(2))
    conv(128, 1); conv(256, 3); conv(256, 1); conv(512, 3); layers.append(nn.MaxPool2d(2))
    for _ in range(4):
        conv(256, 1); conv(512, 3)
    conv(512, 1); conv(1024, 3); layers.append(nn.MaxPool2d(2))
    for _ in range(2):
        conv(512, 1); conv(1024, 3)
    conv(1024, 3); conv(1024, 3, 2); conv(1024, 3); conv(1024, 3)
    convs = sum(isinstance(m, nn.Conv2d) for m in layers)
    assert convs == 24  # "Our network has 24 convolutional layers followed by 2 fully connected layers"
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(7 * 7 * 1024, 4096), nn.LeakyReLU(0.1), nn.Dropout(0.5),
                         nn.Linear(4096, 7 * 7 * 30))


def test_yolov1_has_the_papers_output_and_size():
    spec = compiler.load(ROOT / "specs" / "yolov1.yaml")
    analysis = compiler.analyze(spec)
    assert analysis.graph.shapes["detect"] == (7, 7, 30)
    reference = paper_yolov1()
    assert analysis.params == sum(p.numel() for p in reference.parameters()) == 271_703_550


def test_yolov1_static_shapes_match_the_forward_pass():
    spec = compiler.load(ROOT / "specs" / "yolov1.yaml")
    analysis = compiler.analyze(spec)
    model = compiler.build(spec, device="meta")
    out = model(torch.empty(2, 3, 448, 448, device="meta"))
    assert tuple(out.shape) == (2, *analysis.graph.shapes["detect"])


def test_yolo_head_lays_out_the_fc_output_cell_major_and_a_conv_map_channels_last():
    flat = """
blockgraph: 1
name: h
inputs: {x: [96]}
nodes:
  - {id: detect, op: yolo_head, grid: 4, boxes: 1, classes: 1}
"""
    model = compiler.build(flat)
    x = torch.arange(2 * 96, dtype=torch.float32).reshape(2, 96)
    y = model(x)
    assert y.shape == (2, 4, 4, 6)
    assert y[1, 2, 3, 4].item() == 96 + (2 * 4 + 3) * 6 + 4  # row 2, column 3, field 4
    conv = flat.replace("[96]", "[6, 4, 4]")
    x = torch.randn(2, 6, 4, 4)
    assert torch.equal(compiler.build(conv)(x), x.permute(0, 2, 3, 1))


@pytest.mark.parametrize("shape, fragment", [
    ("[95]", "needs 4*4*(5*1+1) = 96 features"),
    ("[7, 4, 4]", "make the conv before it `out: 6`"),
    ("[6, 5, 5]", "set `grid: 5`"),
])
def test_yolo_head_shape_errors_say_what_to_change(shape, fragment):
    text = f"""blockgraph: 1
name: h
inputs: {{x: {shape}}}
nodes:
  - {{id: detect, op: yolo_head, grid: 4, boxes: 1, classes: 1}}
"""
    with pytest.raises(compiler.SpecError) as info:
        compiler.analyze(compiler.load(text))
    problem = info.value.errors[0]
    assert fragment in problem.message and problem.loc.line == 5


def _truth() -> list[dict]:
    return [{"boxes": torch.tensor([[4.0, 6.0, 20.0, 30.0], [40.0, 40.0, 60.0, 52.0]]), "labels": torch.tensor([2, 0])},
            {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]


def test_encode_puts_each_object_in_the_cell_of_its_centre():
    t = yolo.encode(_truth(), LAYOUT)
    assert t.shape == (2, 4, 4, 8)
    # box 1: centre (12, 18) -> column 0, row 1; relative (0.75, 0.125); sqrt(16/64), sqrt(24/64)
    assert t[0, 1, 0, :5].tolist() == pytest.approx([0.75, 0.125, 0.5, (24 / 64) ** 0.5, 1.0])
    assert t[0, 1, 0, 5:].tolist() == [0, 0, 1]
    # box 2: centre (50, 46) -> column 3, row 2
    assert t[0, 2, 3, 4] == 1 and t[0, 2, 3, 5:].tolist() == [1, 0, 0]
    assert t[0, :, :, 4].sum() == 2 and t[1].abs().sum() == 0


def _perfect(targets) -> torch.Tensor:
    """The predictions a perfect network makes: box 1 of each object's cell is the object, every
    other confidence is zero."""
    t = yolo.encode(targets, LAYOUT)
    pred = torch.zeros(len(targets), 4, 4, LAYOUT.depth)
    pred[..., 0:5] = t[..., 0:5]
    pred[..., 10:] = t[..., 5:]
    return pred


def test_decode_of_a_perfect_prediction_gives_back_the_boxes():
    targets = _truth()
    found = yolo.decode(_perfect(targets), LAYOUT, score_threshold=0.5)
    assert torch.allclose(found[0]["boxes"].sort(0).values, targets[0]["boxes"].sort(0).values, atol=1e-4)
    assert sorted(found[0]["labels"].tolist()) == [0, 2] and found[0]["scores"].tolist() == pytest.approx([1, 1])
    assert len(found[1]["boxes"]) == 0


def test_decode_suppresses_a_duplicate_box_of_the_same_class():
    targets = _truth()[:1]
    pred = _perfect(targets)
    pred[0, 1, 0, 5:10] = pred[0, 1, 0, 0:5]  # box 2 of the cell repeats box 1 ...
    pred[0, 1, 0, 9] = 0.9  # ... with a lower confidence
    found = yolo.decode(pred, LAYOUT, score_threshold=0.5, iou_threshold=0.5)[0]
    assert len(found["boxes"]) == 2 and sorted(found["scores"].tolist()) == pytest.approx([1, 1])


def test_map_of_a_perfect_prediction_is_one():
    pytest.importorskip("torchmetrics")
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(iou_thresholds=[0.5])
    targets = _truth()
    try:
        metric.update(yolo.decode(_perfect(targets), LAYOUT, score_threshold=0.5), targets)
        value = metric.compute()["map"].item()
    except (ModuleNotFoundError, ImportError) as exc:  # the COCO backend is an optional package
        pytest.skip(f"torchmetrics mAP backend missing: {exc}")
    assert value == pytest.approx(1.0)


def test_loss_is_zero_for_a_perfect_prediction_and_grows_with_each_error():
    targets = _truth()
    perfect = _perfect(targets)
    assert yolo.loss(perfect, targets, LAYOUT).item() == pytest.approx(0.0, abs=1e-6)
    wrong_class = perfect.clone()
    wrong_class[0, 1, 0, 10:] = torch.tensor([1.0, 0.0, 0.0])
    assert yolo.loss(wrong_class, targets, LAYOUT).item() == pytest.approx(2.0 / 2)  # 2 squared errors / batch 2
    shifted = perfect.clone()
    shifted[0, 1, 0, 0] += 0.1  # x off by a tenth of a cell: lambda_coord * 0.01, and the IoU drops below 1
    # box 1 is 16x24 px; moved 1.6 px: IoU = 14.4*24 / (2*16*24 - 14.4*24) = 0.818..., and the
    # confidence (1) now misses its target, the IoU
    iou = 14.4 / (32 - 14.4)
    expected = (5 * 0.1 ** 2 + (1 - iou) ** 2) / 2
    assert yolo.loss(shifted, targets, LAYOUT).item() == pytest.approx(expected, rel=1e-4)
    stray = perfect.clone()
    stray[1, 0, 0, 4] = 1.0  # a confident box where there is nothing: lambda_noobj * 1
    assert yolo.loss(stray, targets, LAYOUT).item() == pytest.approx(0.5 / 2)


def test_loss_trains_a_head_towards_the_targets():
    torch.manual_seed(0)
    targets = _truth()
    pred = torch.nn.Parameter(torch.rand(2, 4, 4, LAYOUT.depth) * 0.1)
    opt = torch.optim.SGD([pred], lr=0.05)
    first = None
    for _ in range(300):
        opt.zero_grad()
        value = yolo.loss(pred, targets, LAYOUT)
        value.backward()
        opt.step()
        first = value.item() if first is None else first
    assert value.item() < first / 20
    found = yolo.decode(pred.detach(), LAYOUT, score_threshold=0.3)[0]
    assert sorted(found["labels"].tolist()) == [0, 2]


def test_wrong_prediction_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\[N, 4, 4, 13\]"):
        yolo.decode(torch.zeros(1, 4, 4, 12), LAYOUT)
