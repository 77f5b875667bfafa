"""Predictions drawn over validation images (ui/drawing.py) and the Train tab's masks view."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
torch.set_num_threads(1)

from compiler.train.tasks import DetectionPredictions, MaskPredictions  # noqa: E402
from ui import drawing  # noqa: E402

# a tiny encoder-decoder on 16x16 shapes masks: 7 classes (background + 6 shapes) per pixel
SEG = """\
blockgraph: 1
name: tiny_seg
inputs:
  image: [3, 16, 16]
nodes:
  - {id: enc, op: conv, out: 8, k: 3, norm: batch, act: relu}
  - {op: maxpool, k: 2}
  - {op: conv, out: 8, k: 3, norm: batch, act: relu}
  - {id: up, op: deconv, out: 8, k: 2, stride: 2}
  - {id: cat, op: concat, in: [enc, up]}
  - {id: logits, op: conv, out: 7, k: 1}
outputs: [logits]
train:
  batch_size: 16
  device: cpu
"""


def gray(h: int = 8, w: int = 8, value: int = 100) -> torch.Tensor:
    return torch.full((3, h, w), value, dtype=torch.uint8)


def test_class_mask_colours_each_class_and_leaves_the_background():
    image = gray()
    mask = torch.zeros(8, 8, dtype=torch.int64)
    mask[1:3, 1:3] = 2
    mask[5:7, 5:7] = 4
    out = drawing.draw_class_mask(image, mask, 7, alpha=1.0)
    assert out.shape == (3, 8, 8) and out.dtype == torch.uint8
    assert out[:, 1, 1].tolist() == list(drawing.color(2)) and out[:, 6, 6].tolist() == list(drawing.color(4))
    assert out[:, 0, 0].tolist() == [100, 100, 100]  # background: the image itself
    half = drawing.draw_class_mask(image, mask, 7, alpha=0.5)[:, 1, 1].tolist()
    assert all(abs(a - (50 + c / 2)) <= 1 for a, c in zip(half, drawing.color(2)))  # half image, half colour
    dimmed = drawing.draw_class_mask(image, mask, 7, alpha=1.0, dim=0.5)
    assert dimmed[:, 0, 0].tolist() == [50, 50, 50] and dimmed[:, 1, 1].tolist() == list(drawing.color(2))
    grey = drawing.draw_class_mask(torch.full((1, 8, 8), 7, dtype=torch.uint8), mask, 7)
    assert grey.shape == (3, 8, 8)  # one channel is repeated


def test_segmentation_samples_pair_truth_and_prediction_with_pixel_accuracy():
    images = torch.stack([gray(), gray(value=30)])
    truth = torch.zeros(2, 8, 8, dtype=torch.int64)
    truth[:, 2:6, 2:6] = 1
    pred = truth.clone()
    pred[1, 2:6, 2:4] = 3  # half of image 1's object is given another class: 8 of 64 pixels wrong
    classes = ["background", "circle", "square", "triangle", "star", "cross", "ring"]
    preds = MaskPredictions(images, truth, pred, classes)
    assert drawing.drawer(preds).what == "masks" and drawing.drawer(preds).background
    samples = drawing.samples(preds)
    assert [s["accuracy"] for s in samples] == [1.0, 56 / 64]
    assert samples[1]["caption"] == "87.5% of pixels right; found circle, triangle"
    assert samples[0]["truth"].shape == (8, 8, 3)
    assert (samples[1]["prediction"][3, 2] != samples[1]["truth"][3, 2]).any()  # another colour where wrong
    assert (samples[0]["prediction"] == samples[0]["truth"]).all()
    assert drawing.legend(classes)[0] == ("circle", "#%02x%02x%02x" % drawing.color(1))


def test_detection_samples_draw_boxes_labels_and_masks():
    image = gray(32, 32, 0)
    masks = torch.zeros(1, 32, 32, dtype=torch.bool)
    masks[0, 12:20, 12:20] = True
    target = {"boxes": torch.tensor([[4.0, 4.0, 20.0, 20.0]]), "labels": torch.tensor([1]), "masks": masks}
    pred = {"boxes": torch.tensor([[5.0, 5.0, 21.0, 21.0], [0.0, 0.0, 8.0, 8.0]]), "scores": torch.tensor([0.9, 0.4]),
            "labels": torch.tensor([1, 2]), "masks": masks.repeat(2, 1, 1)}
    preds = DetectionPredictions(image[None], [target], [pred], ["circle", "square", "triangle"])
    assert drawing.drawer(preds).what == "boxes" and not drawing.drawer(preds).background
    (sample,) = drawing.samples(preds)
    assert sample["caption"] == "1 true, 2 predicted"
    truth = torch.from_numpy(sample["truth"]).permute(2, 0, 1)
    # the true box's edge (x0=4) is drawn in the colour of label 1; a pixel inside the mask is tinted
    assert truth[:, 10, 4].tolist() == list(drawing.color(1))
    assert truth[:, 16, 16].sum() > 0 and truth[:, 28, 28].sum() == 0
    found = torch.from_numpy(sample["prediction"]).permute(2, 0, 1)
    assert found[:, 10, 5].tolist() == list(drawing.color(1)) and found[:, 4, 0].tolist() == list(drawing.color(2))
    # probabilities [K, 1, H, W] are thresholded like bool masks
    prob = drawing.draw_detections(image, target["boxes"], target["labels"], preds.classes,
                                   masks=masks[:, None].float() * 0.9)
    assert torch.equal(prob, truth)
    # no detections: the image as it is
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
    none = drawing.draw_detections(image, empty["boxes"], empty["labels"], preds.classes, scores=empty["scores"])
    assert torch.equal(none, image)


def test_unknown_predictions_are_refused():
    with pytest.raises(TypeError, match="cannot draw"):
        drawing.drawer(object())


def test_train_tab_draws_predicted_masks_of_a_segmentation_run(app):
    app.session_state["yaml"] = SEG
    app.run()
    for key, value in (("train_epochs", 1), ("train_size", 64), ("train_val", 16)):
        app.number_input(key=key).set_value(value)
    next(b for b in app.button if b.label == "Start").click()
    app.run()
    job = app.session_state["designer"].train
    job.heartbeat_timeout = 600
    job.join(120)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert job.state == "done", job.error
    app.toggle(key="train_eval").set_value(True)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.warning, [w.value for w in app.warning]
    assert any("(segmentation): true masks (left) and predicted masks" in c.value for c in app.caption)

    def walk(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    captions = [img.caption for n in walk(app._tree) if type(n).__name__ == "Image" for img in n.proto.imgs]
    assert captions.count("true") == 8 and sum("% of pixels right; found " in c for c in captions) == 8


def test_train_tab_draws_boxes_of_a_detection_run(app):
    from pathlib import Path

    yolo = (Path(__file__).resolve().parents[2] / "specs" / "yolov1_shapes.yaml").read_text()
    app.session_state["yaml"] = yolo
    app.run()
    app.number_input(key="var:width").set_value(4)  # a narrow YOLO: seconds on a CPU
    app.run()
    for key, value in (("train_epochs", 1), ("train_size", 32), ("train_val", 8), ("train_batch", 16)):
        app.number_input(key=key).set_value(value)
    next(b for b in app.button if b.label == "Start").click()
    app.run()
    job = app.session_state["designer"].train
    job.heartbeat_timeout = 600
    job.join(120)
    app.run()
    assert job.state == "done", job.error
    assert "val_map50" in job.result.history[-1]
    app.toggle(key="train_eval").set_value(True)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.warning, [w.value for w in app.warning]
    assert any("(detection): true boxes (left) and predicted boxes" in c.value for c in app.caption)
