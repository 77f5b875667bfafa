"""The decoder ops (upsample, interpolate, deconv, pixel_shuffle/unshuffle, pad, crop, reshape,
permute) against independent references (torch.nn layers, numpy, hand-computed offsets and
sizes), and the shape errors that teach: located FILE:LINE:COL in the CLI, with the fix."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import compiler

ROOT = Path(__file__).resolve().parents[2]


def spec(nodes: str, inputs: str = "{x: [4, 16, 16]}", outputs: str | None = None) -> str:
    text = f"blockgraph: 1\nname: t\ninputs: {inputs}\nnodes:\n{textwrap.indent(textwrap.dedent(nodes).strip(), '  ')}\n"
    return text + (f"outputs: {outputs}\n" if outputs else "")


def build(text: str):
    return compiler.build(compiler.load(text), seed=0).eval()


def shape_of(text: str) -> tuple:
    analysis = compiler.analyze(compiler.load(text))
    return analysis.graph.shapes[analysis.graph.outputs[0]]


def errors(text: str) -> str:
    with pytest.raises(compiler.SpecError) as info:
        compiler.analyze(compiler.load(text))
    return str(info.value)


# -- numerics against independent references ---------------------------------------------------

@pytest.mark.parametrize("args,layer", [
    ("scale: 2", nn.Upsample(scale_factor=2, mode="nearest")),
    ("scale: 2, mode: bilinear", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)),
    ("scale: 2, mode: bilinear, align_corners: true", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)),
    ("size: [20, 24], mode: bicubic", nn.Upsample(size=(20, 24), mode="bicubic", align_corners=False)),
])
def test_upsample_equals_nn_upsample(args, layer):
    model = build(spec(f"- {{id: up, op: upsample, {args}}}"))
    x = torch.randn(2, 4, 16, 16)
    torch.testing.assert_close(model(x), layer(x))


def test_upsample_fractional_scale_rounds_down_like_pytorch():
    assert shape_of(spec("- {op: upsample, scale: 1.5}", "{x: [1, 7, 9]}")) == (1, 10, 13)
    assert build(spec("- {op: upsample, scale: 1.5}", "{x: [1, 7, 9]}"))(torch.randn(1, 1, 7, 9)).shape == (1, 1, 10, 13)


def test_interpolate_follows_the_reference():
    text = spec("""
        - {id: small, op: maxpool, k: 3}
        - {id: up, op: interpolate, in: [small, x], mode: bilinear}
    """, "{x: [2, 17, 13]}")
    assert shape_of(text) == (2, 17, 13)
    x = torch.randn(3, 2, 17, 13)
    want = nn.functional.interpolate(nn.functional.max_pool2d(x, 3), size=(17, 13), mode="bilinear")
    torch.testing.assert_close(build(text)(x), want)


def test_deconv_matches_conv_transpose2d_and_its_size_rule():
    text = spec("- {id: up, op: deconv, out: 6, k: 3, stride: 2, pad: 1, output_padding: 1}")
    model = build(text)
    ref = nn.ConvTranspose2d(4, 6, 3, 2, 1, output_padding=1)
    ref.load_state_dict({k.removeprefix("up.deconv."): v for k, v in model.state_dict().items()})
    x = torch.randn(2, 4, 16, 16)
    torch.testing.assert_close(model(x), ref(x))
    assert shape_of(text) == (6, 32, 32)  # (16 - 1) * 2 - 2 + 2 + 1 + 1


def test_deconv_size_derives_output_padding_like_pytorch_output_size():
    text = spec("- {id: up, op: deconv, out: 2, k: 3, stride: [2, 3], pad: 1, size: [32, 48]}")
    model = build(text)
    assert model.up.deconv.output_padding == (1, 2)
    ref = nn.ConvTranspose2d(4, 2, 3, (2, 3), 1)
    ref.load_state_dict({k.removeprefix("up.deconv."): v for k, v in model.state_dict().items()})
    x = torch.randn(1, 4, 16, 16)
    torch.testing.assert_close(model(x), ref(x, output_size=[32, 48]))


def test_deconv_fused_norm_and_act_and_default_doubles():
    model = build(spec("- {id: up, op: deconv, out: 8, norm: batch, act: relu}"))
    assert [n for n, _ in model.up.named_children()] == ["deconv", "norm", "act"]
    assert model.up.deconv.bias is None  # a norm follows: bias auto is off
    assert model(torch.randn(2, 4, 16, 16)).shape == (2, 8, 32, 32)


def test_pixel_shuffle_and_unshuffle():
    model = build(spec("- {id: s, op: pixel_shuffle, factor: 2}\n- {id: u, op: pixel_unshuffle, factor: 2}"))
    x = torch.randn(2, 4, 16, 16)
    assert torch.equal(model(x), x)  # exact inverses
    shuffled = build(spec("- {op: pixel_shuffle, factor: 2}"))(x)
    torch.testing.assert_close(shuffled, nn.PixelShuffle(2)(x))
    # a hand-checked pixel: channel c*4 + i*2 + j goes to row 2h+i, column 2w+j
    assert shuffled[1, 0, 2 * 3 + 1, 2 * 5 + 0] == x[1, 0 * 4 + 1 * 2 + 0, 3, 5]


@pytest.mark.parametrize("mode,np_mode", [("constant", "constant"), ("reflect", "reflect"), ("replicate", "edge"),
                                          ("circular", "wrap")])
def test_pad_equals_numpy_pad(mode, np_mode):
    model = build(spec(f"- {{op: pad, pad: [1, 2, 3, 0], mode: {mode}}}"))  # top, bottom, left, right
    x = torch.randn(2, 4, 16, 16)
    want = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 2), (3, 0)), mode=np_mode)
    np.testing.assert_allclose(model(x).numpy(), want, rtol=0, atol=0)


def test_crop_center_and_top_left_offsets():
    x = torch.arange(1 * 1 * 9 * 8, dtype=torch.float32).reshape(1, 1, 9, 8)
    inputs = "{x: [1, 9, 8], ref: [3, 4, 5]}"
    center = build(spec("- {id: c, op: crop, in: [x, ref]}", inputs))
    corner = build(spec("- {id: c, op: crop, in: [x, ref], align: top-left}", inputs))
    ref = torch.zeros(1, 3, 4, 5)
    # surplus 5 rows, 3 columns: the center starts at row 2, column 1 (the odd one left at the end)
    assert torch.equal(center(x, ref), x[:, :, 2:6, 1:6])
    assert torch.equal(corner(x, ref), x[:, :, 0:4, 0:5])
    analysis = compiler.analyze(compiler.load(spec("- {id: c, op: crop, in: [x, ref]}", inputs)))
    assert analysis.params == 0 and analysis.nodes[-1].activation_bytes == 0  # a view


def test_reshape_and_permute_keep_the_batch():
    text = spec("""
        - {id: r, op: reshape, shape: [2, -1, 16]}
        - {id: p, op: permute, dims: [2, 0, 1]}
    """)
    x = torch.randn(3, 4, 16, 16)
    assert shape_of(text) == (16, 2, 32)
    torch.testing.assert_close(build(text)(x), x.reshape(3, 2, 32, 16).permute(0, 3, 1, 2))
    assert build(text)(torch.randn(1, 4, 16, 16)).shape == (1, 16, 2, 32)


# -- errors that say what to do --------------------------------------------------------------------

def test_reshape_permute_pad_upsample_crop_errors():
    assert "reshape to [3, 5] needs 15 values per sample; the input [4, 16, 16] has 1024" in \
        errors(spec("- {op: reshape, shape: [3, 5]}"))
    assert "only one entry of shape may be -1" in errors(spec("- {op: reshape, shape: [-1, -1]}"))
    assert "dims must list every axis 0..2 once" in errors(spec("- {op: permute, dims: [0, 0, 1]}"))
    assert "permute dims [1, 0] name 2 axes; the input [4, 16, 16] has 3" in errors(spec("- {op: permute, dims: [1, 0]}"))
    assert "reflect padding must be less than the size" in errors(spec("- {op: pad, pad: 16, mode: reflect}"))
    assert "either scale" in errors(spec("- {op: upsample, scale: 2, size: [4, 4]}"))
    assert "align_corners applies to bilinear and bicubic" in errors(spec("- {op: upsample, scale: 2, align_corners: true}"))
    assert "crop cannot grow a map: x gives [4, 16, 16], big gives [1, 20, 20]" in errors(
        spec("- {id: c, op: crop, in: [x, big]}", "{x: [4, 16, 16], big: [1, 20, 20]}"))
    assert "needs channels divisible by 2² = 4. Received: input shape [6, 16, 16]; give the conv before it out: 4" \
        in errors(spec("- {op: pixel_shuffle}", "{x: [6, 16, 16]}"))


def test_deconv_unreachable_size_says_which_sizes_it_can_give():
    text = errors(spec("- {op: deconv, out: 4, k: 3, stride: 2, pad: 1, size: [40, 40]}"))
    assert "deconv cannot give size 40x40 from the input [4, 16, 16]" in text
    assert "its height can be 31 to 32 and its width 31 to 32" in text


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_concat_of_32_and_16_suggests_upsample_or_crop_at_its_line(tmp_path):
    path = tmp_path / "unet.yaml"
    path.write_text(spec("""
        - {id: enc, op: conv, out: 8}
        - {id: down, op: maxpool}
        - {id: mid, op: conv, out: 8}
        - {id: merged, op: concat, in: [enc, mid]}
    """, "{x: [3, 32, 32]}"))
    result = run_cli("validate", str(path))
    assert result.returncode == 1, result.stdout
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith(f"{path}:8:5: nodes[3]: node 'merged' (concat): ")  # the concat's line and column
    assert "enc gives [8, 32, 32], mid gives [8, 16, 16]" in first
    assert "the maps are 32x32 (enc) and 16x16 (mid)" in first
    assert "{op: upsample, in: mid, scale: 2}" in first
    assert "{op: crop, in: [enc, mid]}" in first
    assert "Traceback" not in result.stderr


def test_deconv_a_pixel_short_at_a_concat_names_the_output_padding(tmp_path):
    path = tmp_path / "short.yaml"
    path.write_text(spec("""
        - {id: enc, op: conv, out: 8}
        - {id: down, op: conv, out: 8, stride: 2}
        - {id: up, op: deconv, out: 8, k: 3, stride: 2, pad: 1}
        - {id: merged, op: concat, in: [enc, up]}
    """, "{x: [3, 32, 32]}"))
    result = run_cli("validate", str(path))
    assert result.returncode == 1
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith(f"{path}:8:5: nodes[3]: node 'merged' (concat): ")
    assert "up gives [8, 31, 31]" in first
    assert "if up is a deconv, output_padding: 1 (or size: [32, 32]) makes it 32x32" in first
    # and the fix it names works
    fixed = path.read_text().replace("pad: 1}", "pad: 1, output_padding: 1}")
    assert shape_of(fixed) == (16, 32, 32)


def test_deconv_output_padding_that_misses_the_size_names_the_right_one(tmp_path):
    path = tmp_path / "ambiguous.yaml"
    path.write_text(spec("""
        - {id: down, op: conv, out: 8, stride: 2}
        - {id: up, op: deconv, out: 8, k: 3, stride: 2, pad: 1, output_padding: 0, size: [32, 32]}
    """, "{x: [3, 32, 32]}"))
    result = run_cli("validate", str(path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"{path}:6:5: nodes[1]: node 'up' (deconv): deconv output_padding 0 gives 31x31, not the size 32x32 asked "
        "for: output_padding: 1 gives 32x32 (or leave output_padding out and let size pick it)")
