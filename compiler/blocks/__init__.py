"""Block kinds, one per module; importing this package registers them all."""

from . import (act, add, avgpool, concat, conv, dropout, flatten, gap, identity, linear,  # noqa: F401
               maxpool, mul, norm)
from .base import Block, Shape
from .registry import REGISTRY, get, names, register

__all__ = ["Block", "Shape", "REGISTRY", "get", "names", "register"]
