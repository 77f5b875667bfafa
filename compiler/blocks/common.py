"""Activation and normalisation settings shared by `act`, `norm`, `conv` and `linear`.

Both accept a bare name (``act: relu``) or a map with options
(``act: {kind: leaky_relu, slope: 0.1}``, ``norm: {kind: group, groups: 32}``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ShapeError
from .base import Flag, Shape, fmt

ActKind = Literal["relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh",
                  "softmax", "hardswish", "hardsigmoid", "mish", "identity"]
NormKind = Literal["batch", "layer", "instance", "group"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True,
                              use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value):
        return {"kind": value} if isinstance(value, str) else value


class Act(_Options):
    """An activation function."""

    kind: ActKind
    """relu, relu6, leaky_relu, elu, gelu, silu, sigmoid, tanh, softmax, hardswish, hardsigmoid, mish,
    identity."""
    slope: float = Field(0.01, ge=0)
    """Negative slope of leaky_relu."""
    alpha: float = Field(1.0, gt=0)
    """Alpha of elu."""
    approximate: Literal["none", "tanh"] = "none"
    """gelu's tanh approximation."""

    def module(self, inplace: bool = False):
        from torch import nn

        k = self.kind
        if k == "leaky_relu":
            return nn.LeakyReLU(self.slope, inplace=inplace)
        if k == "elu":
            return nn.ELU(self.alpha, inplace=inplace)
        if k == "gelu":
            return nn.GELU(self.approximate)
        if k == "softmax":
            return nn.Softmax(dim=1)
        simple = {"relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU, "hardswish": nn.Hardswish,
                  "hardsigmoid": nn.Hardsigmoid, "mish": nn.Mish}
        if k in simple:
            return simple[k](inplace=inplace)
        return {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}[k]()

    def function(self):
        """(callable, kwargs) for a stateless call_function in the fx graph."""
        import torch
        import torch.nn.functional as F

        k = self.kind
        table = {
            "relu": (torch.relu, {}), "relu6": (F.relu6, {}), "sigmoid": (torch.sigmoid, {}),
            "tanh": (torch.tanh, {}), "silu": (F.silu, {}), "hardswish": (F.hardswish, {}), "hardsigmoid": (F.hardsigmoid, {}),
            "mish": (F.mish, {}), "softmax": (torch.softmax, {"dim": 1}),
            "leaky_relu": (F.leaky_relu, {"negative_slope": self.slope}),
            "elu": (F.elu, {"alpha": self.alpha}), "gelu": (F.gelu, {"approximate": self.approximate}),
        }
        return table.get(k)


class Norm(_Options):
    """A normalisation layer over the channels of its input."""

    kind: NormKind
    """batch, layer, instance or group."""
    groups: int = Field(32, gt=0)
    """Channel groups of group norm (channels must divide evenly)."""
    eps: float = Field(1e-5, gt=0)
    """Added to the variance for numerical stability."""
    momentum: float = Field(0.1, gt=0, le=1)
    """Running-statistics momentum of batch norm."""
    affine: Flag = True
    """Learn a per-channel scale (gamma) and shift (beta)."""

    def check(self, shape: Shape) -> None:
        if self.kind == "group" and shape[0] % self.groups:
            raise ShapeError(f"group norm needs channels divisible by groups. Received: "
                             f"{shape[0]} channels (input {fmt(shape)}), groups={self.groups}")
        if self.kind == "instance" and len(shape) != 3:
            raise ShapeError(f"instance norm needs a feature map [C, H, W]. Received: {fmt(shape)}")
        if self.kind == "instance" and shape[1] * shape[2] == 1:  # PyTorch refuses it, even in eval mode
            raise ShapeError(f"instance norm needs more than one pixel per channel (it normalises each channel "
                             f"over its H x W). Received: {fmt(shape)}; use it before the map shrinks to 1x1, "
                             "or use layer or batch norm")

    def normalised_axis(self, shape: Shape) -> int:
        """The size of the axis the scale and shift act on: the channels C of [C, H, W] and [C, L],
        the features of [F], and for layer norm on a sequence [T, F] the features F (each step
        normalised on its own, as in Ba et al. 2016's recurrent nets)."""
        return shape[-1] if self.kind == "layer" and len(shape) == 2 else shape[0]

    def param_count(self, shape: Shape) -> tuple[int, int]:
        """(gamma + beta, running mean + var) of this norm over `shape`."""
        c = shape[0]
        affine = 2 * self.normalised_axis(shape) if self.affine else 0
        return affine, 2 * c if self.kind == "batch" else 0

    def module(self, shape: Shape):
        from torch import nn

        self.check(shape)
        c = shape[0]
        if self.kind == "batch":
            cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            return cls(c, eps=self.eps, momentum=self.momentum, affine=self.affine)
        if self.kind == "layer":
            # On a feature map [C, H, W] layer norm normalises each sample over all its values
            # with a per-channel scale and shift: GroupNorm with one group (nn.LayerNorm(C)
            # would normalise the last axis, which is not C there). A rank-2 input is a
            # sequence [T, F]: nn.LayerNorm(F) normalises each step over its features (one
            # group over [T, F] would mix the steps and scale per step). On a vector [F] the
            # two are the same computation.
            if len(shape) == 3:
                return nn.GroupNorm(1, c, eps=self.eps, affine=self.affine)
            return nn.LayerNorm(shape[-1], eps=self.eps, elementwise_affine=self.affine)
        if self.kind == "instance":
            return nn.InstanceNorm2d(c, eps=self.eps, momentum=self.momentum, affine=self.affine)
        return nn.GroupNorm(self.groups, c, eps=self.eps, affine=self.affine)
