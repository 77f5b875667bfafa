"""nn.Module classes of the resampling blocks that need their input shapes at build time
(imported by `build` only, so loading a spec never imports torch)."""

from __future__ import annotations

from torch import nn


class Crop(nn.Module):
    """x[:, :, top:top + height, left:left + width]: a view, no weights."""

    def __init__(self, top: int, left: int, height: int, width: int):
        super().__init__()
        self.top, self.left, self.height, self.width = top, left, height, width

    def forward(self, x):
        return x[:, :, self.top:self.top + self.height, self.left:self.left + self.width]

    def extra_repr(self) -> str:
        return f"top={self.top}, left={self.left}, height={self.height}, width={self.width}"
