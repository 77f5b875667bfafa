"""The Study tab's tests' study: the tiny spec of the training tests over two widths, one seed,
one epoch of 64 images (a few seconds a trial), with one bar plot."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from train_support import TINY  # noqa: E402

STUDY = """\
blockgraph_study: 1
name: width
about: Does a wider tiny net learn the shapes faster?
specs: tiny.yaml
factors:
  width: {var: width, levels: [4, 8]}
seeds: [0]
train: {dataset: shapes, epochs: 1, train_size: 64, val_size: 32, batch_size: 32, lr: 0.1, optimizer: sgd,
        device: cpu}
plots:
  - {kind: bar, by: width, name: accuracy, title: best accuracy per width}
"""
PLOT_TITLE = "best accuracy per width"


def write_study(folder: Path, text: str = STUDY) -> Path:
    """tiny.yaml and width.yaml (the study) in `folder`; the study file's path."""
    (folder / "tiny.yaml").write_text(TINY)
    path = folder / "width.yaml"
    path.write_text(text)
    return path
