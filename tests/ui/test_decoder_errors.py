"""The decoder ops' teaching shape errors reach the designer at the line of the node that
caused them (the CLI side is in tests/blocks/test_decoder_ops.py)."""

from __future__ import annotations

SPEC = """\
blockgraph: 1
name: skip
inputs:
  x: [3, 32, 32]
defaults:
  conv: {k: 3}
nodes:
  - {id: enc, op: conv, out: 8}
  - {id: down, op: maxpool}
  - {id: mid, op: conv, out: 8}
  - {id: merged, op: concat, in: [enc, mid]}
"""


def _edit(at, text: str) -> list[str]:
    at.text_area(key="yaml").input(text)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return [e.value for e in at.error]


def test_a_concat_of_32_and_16_is_shown_at_its_line_with_upsample_or_crop(app):
    errors = _edit(app, SPEC)
    title = next(e for e in errors if e.startswith("line 11, col 5: "))
    assert "node 'merged' (concat)" in title and "enc gives [8, 32, 32], mid gives [8, 16, 16]" in title
    assert "{op: upsample, in: mid, scale: 2}" in title and "{op: crop, in: [enc, mid]}" in title


def test_a_deconv_a_pixel_short_names_its_output_padding_in_the_designer(app):
    text = SPEC.replace("  - {id: down, op: maxpool}\n  - {id: mid, op: conv, out: 8}\n",
                        "  - {id: down, op: conv, out: 8, stride: 2}\n"
                        "  - {id: mid, op: deconv, out: 8, k: 3, stride: 2, pad: 1}\n")
    errors = _edit(app, text)
    title = next(e for e in errors if e.startswith("line 11, col 5: "))
    assert "mid gives [8, 31, 31]" in title
    assert "output_padding: 1 (or size: [32, 32]) makes it 32x32" in title
    # the fix it names clears the error
    assert not [e for e in _edit(app, text.replace("pad: 1}", "pad: 1, output_padding: 1}")) if e.startswith("line ")]
