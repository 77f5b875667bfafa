"""CBAM as a blockgraph plugin — Woo, Park, Lee, Kweon, *CBAM: Convolutional Block Attention
Module*, 2018: squeeze-and-excitation's successor. Channel attention (average- AND max-pooled
descriptors through a shared MLP) is followed by spatial attention (a 7x7 conv over the
channel-wise mean and max maps).

Load it with `blockgraph --plugin cbam_plugin summary net.yaml` (with docs/examples on
PYTHONPATH) or `compiler.load_plugins(["cbam_plugin"])`. This block declares no `out_shape`:
blockgraph measures its shape with a trial run on the meta device, and marks it so.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt, field_validator
from torch import nn

import compiler


class CBAMModule(nn.Module):
    def __init__(self, channels: int, reduction: int, kernel: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1, bias=False))
        self.spatial = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x):
        gate = torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        x = x * gate
        maps = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(maps))


@compiler.register
class CBAM(compiler.Block):
    """Convolutional Block Attention Module (Woo et al. 2018)."""

    op: Literal["cbam"] = "cbam"
    reduction: PositiveInt = 16
    """Channel MLP width = channels / reduction."""
    kernel: PositiveInt = Field(7, le=15)
    """Kernel of the spatial attention conv (odd, so the gate keeps the map's size)."""

    @field_validator("kernel")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel must be odd so the spatial gate keeps the map's size, got {value}")
        return value
    family = "attention"

    def build(self, in_shapes):
        return CBAMModule(in_shapes[0][0], self.reduction, self.kernel)
