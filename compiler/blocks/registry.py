"""Maps YAML `op` names to block classes (timm's register pattern): one decorator per class."""

from __future__ import annotations

from typing import TypeVar

from .base import Block, Composite

REGISTRY: dict[str, type[Block] | type[Composite]] = {}
B = TypeVar("B", bound=type[Block] | type[Composite])


def register(cls: B) -> B:
    name = cls.op_name()
    if name in REGISTRY and REGISTRY[name] is not cls:
        raise ValueError(f"op {name!r} is registered twice ({REGISTRY[name].__module__}, {cls.__module__})")
    REGISTRY[name] = cls
    return cls


def get(name: str) -> type[Block] | type[Composite] | None:
    return REGISTRY.get(name)


def names() -> list[str]:
    return sorted(REGISTRY)
