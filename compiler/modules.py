"""nn.Module classes that blocks build (kept apart so loading a spec never imports torch)."""

from __future__ import annotations

from torch import nn


class SqueezeExcite(nn.Module):
    """x * gate(fc2(act(fc1(mean_hw(x))))) — Hu et al. 2017."""

    def __init__(self, channels: int, hidden: int, act: nn.Module, gate: nn.Module):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = act
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = gate

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))
