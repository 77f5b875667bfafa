"""Draw docs/shapes_grid.png: samples of the built-in `shapes` dataset.

Top: four 32x32 training images of each class (shown 2x), one column per class.
Bottom: three 128x128 detection scenes (objects=[2, 4]) with their boxes and class names.

    python docs/examples/shapes_grid.py [OUTPUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

from compiler.data import build_dataset

HERE = Path(__file__).resolve().parent
OUTPUT = HERE.parent / "shapes_grid.png"
ZOOM, ROWS, GAP, HEADER = 2, 4, 4, 16


def grid() -> Image.Image:
    train, info = build_dataset("shapes", "train", train_size=600, progress=False, precompute=False)
    cell = 32 * ZOOM
    width = len(info.classes) * (cell + GAP) + GAP
    scenes, scene_info = build_dataset("shapes", "train", size=128, objects=[2, 4], train_size=3,
                                       seed=1, precompute=False)
    height = HEADER + ROWS * (cell + GAP) + GAP + 128 + GAP
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    by_class = {c: [] for c in range(len(info.classes))}
    for i in range(ROWS * len(info.classes)):  # single-object labels cycle through the classes
        image, label = train.raw(i)
        by_class[label].append(image)
    for c, name in enumerate(info.classes):
        x = GAP + c * (cell + GAP)
        draw.text((x + 2, 2), name, fill="black")
        for r, image in enumerate(by_class[c]):
            tile = Image.fromarray(image.permute(1, 2, 0).numpy()).resize((cell, cell), Image.Resampling.NEAREST)
            canvas.paste(tile, (x, HEADER + r * (cell + GAP)))
    top = HEADER + ROWS * (cell + GAP) + GAP
    for s in range(len(scenes)):
        image, target = scenes.raw(s)
        tile = Image.fromarray(image.permute(1, 2, 0).numpy())
        tile_draw = ImageDraw.Draw(tile)
        for box, label in zip(target["boxes"].tolist(), target["labels"].tolist()):
            tile_draw.rectangle(box, outline="white")
            tile_draw.text((box[0] + 2, box[1] + 1), scene_info.classes[label], fill="white")
        canvas.paste(tile, (GAP + s * (128 + GAP), top))
    return canvas


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    grid().quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)  # a palette: ~3x smaller
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
