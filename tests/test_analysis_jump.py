"""Receptive field and jump through ops that enlarge maps (deconv, upsample, pixel_shuffle,
interpolate) and pixel_unshuffle: the jump divides by the scale, so a decoder back at full
resolution has jump 1, checked by hand on the zoo's U-Net and against autograd on a chain."""

from __future__ import annotations

from pathlib import Path

import pytest

import compiler

SPECS = Path(__file__).resolve().parents[1] / "specs"


def test_unet_small_shapes_rf_and_jump_by_hand():
    """rf' = rf + (extent - 1) * jump, jump' = jump * stride, worked by hand: a 3x3 conv adds
    2 * jump, a 2x2 max pool adds jump and doubles it; a 2x2 stride-2 deconv reads one input
    pixel per output (extent 1: the field stays) and halves the jump; concat takes the larger
    of its inputs. So the encoder goes 5/1, 6/2, 14/2, 16/4, 32/4, 36/8, 68/8 and the decoder
    comes back 68/4 -> 84/4, 84/2 -> 92/2, 92/1 -> 96/1: full resolution, jump 1."""
    analysis = compiler.analyze(compiler.load(SPECS / "unet_small_shapes.yaml"))
    got = {n.id: (n.rf, n.jump) for n in analysis.nodes}
    assert got == {
        "enc1.conv1": (3, 1), "enc1.conv2": (5, 1), "pool1": (6, 2),
        "enc2.conv1": (10, 2), "enc2.conv2": (14, 2), "pool2": (16, 4),
        "enc3.conv1": (24, 4), "enc3.conv2": (32, 4), "pool3": (36, 8),
        "bottom.conv1": (52, 8), "bottom.conv2": (68, 8),
        "up3": (68, 4), "cat3": (68, 4), "dec3.conv1": (76, 4), "dec3.conv2": (84, 4),
        "up2": (84, 2), "cat2": (84, 2), "dec2.conv1": (88, 2), "dec2.conv2": (92, 2),
        "up1": (92, 1), "cat1": (92, 1), "dec1.conv1": (94, 1), "dec1.conv2": (96, 1),
        "logits": (96, 1),
    }
    assert all(type(j) is int for _, j in got.values())


CHAIN = """
blockgraph: 1
name: resize_chain
inputs: {image: [1, 24, 24]}
nodes:
  - {id: p, op: conv, out: 4, k: 3}                  # rf 3, jump 1
  - {id: q, op: pixel_shuffle, factor: 2}            # rf 3, jump 1/2 (48x48)
  - {id: r, op: conv, out: 2, k: 3}                  # rf 3 + 2/2 = 4
  - {id: s, op: upsample, scale: 2}                  # rf 4, jump 1/4 (96x96)
  - {id: t, op: conv, out: 4, k: 5}                  # rf 4 + 4/4 = 5
  - {id: w, op: deconv, out: 2, k: 2, stride: 2}     # rf 5, jump 1/8 (192x192)
  - {id: u, op: pixel_unshuffle, factor: 2, in: t}   # jump 1/2 (48x48)
  - {id: v, op: interpolate, in: [u, image]}         # 48 -> 24: jump 1
outputs: [p, q, r, s, t, w, u, v]
"""


def measured(out, x) -> tuple[int, float]:
    """(widest span of input columns that reach one output pixel, the mean shift of that span
    from one output pixel to the next) along the middle row, by autograd: batch item i holds
    the same image and is asked for the gradient of output column mid - P + i, so one backward
    pass gives every probe."""
    import torch

    probes = x.shape[0]
    row, first = out.shape[2] // 2, out.shape[3] // 2 - probes // 2
    picked = sum(out[i, :, row, first + i].sum() for i in range(probes))
    (grad,) = torch.autograd.grad(picked, x, retain_graph=True)
    spans = [grad[i, 0].abs().sum(0).nonzero().flatten() for i in range(probes)]
    widths = [int(c.max() - c.min() + 1) for c in spans]
    return max(widths), (int(spans[-1].min()) - int(spans[0].min())) / (probes - 1)


def test_jump_through_resizing_ops_matches_autograd():
    """A linear chain (no activations, so every path carries gradient): the jump of each node
    is the measured step between neighbouring outputs' input windows, fractions included, and
    the receptive field the measured window where the outputs are evenly spaced."""
    torch = pytest.importorskip("torch")
    spec = compiler.load(CHAIN)
    stats = {n.id: n for n in compiler.analyze(spec).nodes}
    assert {i: (stats[i].rf, stats[i].jump) for i in "pqrstw"} == {
        "p": (3, 1), "q": (3, 0.5), "r": (4, 0.5), "s": (4, 0.25), "t": (5, 0.25), "w": (5, 0.125)}
    assert (stats["u"].jump, stats["v"].jump) == (0.5, 1)
    model = compiler.build(spec, seed=0).double().eval()
    x = torch.randn(1, 1, 24, 24, dtype=torch.float64).repeat(9, 1, 1, 1).requires_grad_()
    for node_id, out in zip(spec.outputs, model(x)):
        width, step = measured(out, x)
        assert step == pytest.approx(stats[node_id].jump), node_id
        if node_id in "pqrstw":
            assert width == stats[node_id].rf, node_id


@pytest.mark.parametrize("args, window", [
    ({"op": "deconv", "out": 4, "k": 2, "stride": 2}, (1, 0.5)),
    ({"op": "deconv", "out": 4, "k": 4, "stride": 2, "pad": 1}, (2, 0.5)),   # 3 // 2 + 1
    ({"op": "deconv", "out": 4, "k": 3, "stride": 1}, (3, 1)),               # a conv's
    ({"op": "deconv", "out": 4, "k": [2, 3], "stride": [2, 3]}, (1, 0.5)),   # larger jump kept
    ({"op": "upsample", "scale": 4}, (1, 0.25)),
    ({"op": "upsample", "scale": 2, "mode": "bilinear"}, (2, 0.5)),
    ({"op": "upsample", "size": [24, 12], "mode": "bicubic"}, (4, 1)),       # 8/24, 8/12: 1/3 and 1
    ({"op": "pixel_shuffle", "factor": 3}, (1, 1 / 3)),
    ({"op": "pixel_unshuffle", "factor": 2}, (2, 2)),
])
def test_windows_of_resizing_ops(args, window):
    """(extent, stride) by hand: taps of the input per output pixel, input pixels between outputs."""
    items = ", ".join(f"{k}: {v}" for k, v in args.items())
    spec = compiler.load(f"blockgraph: 1\nname: w\ninputs: {{x: [18, 8, 12]}}\nnodes:\n  - {{{items}}}\n")
    extent, stride = spec.nodes[0].block.window([(18, 8, 12)])
    assert (extent, float(stride)) == pytest.approx(window)


def test_interpolate_steps_by_the_reference():
    """Resized to a reference twice as large: a jump of 1/2; to one 4 times smaller: 4."""
    text = ("blockgraph: 1\nname: i\ninputs: {a: [2, 8, 8], big: [1, 16, 16], small: [1, 2, 2]}\nnodes:\n"
            "  - {id: up, op: interpolate, in: [a, big], mode: bilinear}\n"
            "  - {id: down, op: interpolate, in: [a, small]}\n  - {id: sum, op: concat, in: [up, up]}\n"
            "outputs: [sum, down]\n")
    stats = {n.id: n for n in compiler.analyze(compiler.load(text)).nodes}
    assert (stats["up"].rf, stats["up"].jump) == (2, 0.5) and (stats["down"].rf, stats["down"].jump) == (1, 4)
