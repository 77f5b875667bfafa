"""Tiny specs and study files written into a test's folder (shared by the study tests)."""

from __future__ import annotations

from pathlib import Path

TINY_SPEC = """\
blockgraph: 1
name: tiny
inputs:
  image: [3, 16, 16]
vars:
  classes: 6
  width: 8
nodes:
  - {id: c1, op: conv, out: $width, k: 3, norm: batch, act: relu}
  - {id: c2, op: conv, out: $width, k: 3, norm: batch, act: relu}
  - {id: pool, op: gap}
  - {id: fc, op: linear, out: $classes}
"""

TINY_STUDY = """\
blockgraph_study: 1
name: tiny
specs: tiny.yaml
factors:
  width: {var: width, levels: [4, 8]}
  norm:
    - {label: batch}
    - {label: none, patch: [{nodes: {has: norm}, set: {norm: null}}]}
seeds: 1
train: {dataset: shapes, epochs: EPOCHS, train_size: TRAIN, val_size: 32, batch_size: 16, size: 16}
plots: [{kind: bar, by: [norm]}]
"""


def write_study(folder: Path, study: str = TINY_STUDY, *, epochs: int = 1, train_size: int = 64,
                spec: str = TINY_SPEC) -> Path:
    """tiny.yaml and study.yaml in `folder`; the study's path."""
    (folder / "tiny.yaml").write_text(spec, encoding="utf-8")
    path = folder / "study.yaml"
    path.write_text(study.replace("EPOCHS", str(epochs)).replace("TRAIN", str(train_size)), encoding="utf-8")
    return path
