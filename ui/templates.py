"""Small starting points for the designer's "New from template" menu. Each is a complete,
valid spec (tests/ui checks that they load and analyse)."""

from __future__ import annotations

CIFAR_CNN = """\
# A small CNN for CIFAR-10 (32x32 RGB images, 10 classes): two VGG-style stages of 3x3
# convs with batch norm, global average pooling, dropout and a linear classifier.
blockgraph: 1
name: cifar_cnn
inputs:
  image: [3, 32, 32]
vars:
  width: 32          # channels of the first stage; the second doubles it
  classes: 10
  drop: 0.25
defaults:
  conv: {k: 3, norm: batch, act: relu}
nodes:
  - {id: conv1, op: conv, out: $width}
  - {id: conv2, op: conv, out: $width}
  - {id: pool1, op: maxpool, k: 2}
  - {id: conv3, op: conv, out: $width * 2}
  - {id: conv4, op: conv, out: $width * 2}
  - {id: pool2, op: maxpool, k: 2}
  - {id: pool, op: gap}
  - {id: drop, op: dropout, p: $drop}
  - {id: classifier, op: linear, out: $classes}
"""

RESNET_USER_BLOCK = """\
# A ResNet-style CIFAR network written with a user block: `basic` is two 3x3 convs whose
# output is added to a shortcut (the identity, or a 1x1 projection when the shape changes).
# Each stage repeats the block; the first copy of stages 2 and 3 halves the resolution.
blockgraph: 1
name: resnet_cifar
inputs:
  image: [3, 32, 32]
vars:
  width: 16          # channels of stage 1; stages 2 and 3 double it
  depth: 2           # blocks per stage
  classes: 10
blocks:
  basic:
    description: two 3x3 convs plus a shortcut, added, then ReLU
    params: {out: int, stride: 1}
    nodes:
      - {id: conv1, op: conv, out: $out, stride: $stride, norm: batch, act: relu}
      - {id: conv2, op: conv, out: $out, norm: batch}
      - {id: shortcut, op: shortcut, in: [x, conv2]}
      - {id: add, op: add, in: [conv2, shortcut]}
      - {id: relu, op: act, kind: relu}
nodes:
  - {id: stem, op: conv, out: $width, k: 3, norm: batch, act: relu}
  - {id: stage1, op: basic, out: $width, repeat: $depth}
  - {id: stage2, op: basic, out: $width * 2, repeat: $depth, first: {stride: 2}}
  - {id: stage3, op: basic, out: $width * 4, repeat: $depth, first: {stride: 2}}
  - {id: pool, op: gap}
  - {id: fc, op: linear, out: $classes}
"""

MNIST_MLP = """\
# A multilayer perceptron for MNIST (28x28 grey images, 10 classes).
blockgraph: 1
name: mnist_mlp
inputs:
  image: [1, 28, 28]
vars:
  hidden: 256
  classes: 10
nodes:
  - {id: flat, op: flatten}
  - {id: fc1, op: linear, out: $hidden, act: relu}
  - {id: drop, op: dropout, p: 0.2}
  - {id: fc2, op: linear, out: $hidden, act: relu}
  - {id: out, op: linear, out: $classes}
"""

TEMPLATES: dict[str, str] = {
    "CIFAR CNN": CIFAR_CNN,
    "ResNet-style with a user block": RESNET_USER_BLOCK,
    "MNIST MLP": MNIST_MLP,
}
"""Menu label -> spec text."""

FILE_NAMES: dict[str, str] = {
    "CIFAR CNN": "cifar_cnn.yaml",
    "ResNet-style with a user block": "resnet_cifar.yaml",
    "MNIST MLP": "mnist_mlp.yaml",
}
"""Menu label -> the file name the designer proposes when saving it (under specs/)."""
