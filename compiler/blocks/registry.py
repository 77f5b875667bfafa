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


def is_built_in(op_or_class: str | type) -> bool:
    """Whether an op (a name or its class) ships with blockgraph, as opposed to a plugin's:
    docs, the JSON Schema and the palette list only these; plugin constructors run as written."""
    cls = REGISTRY.get(op_or_class) if isinstance(op_or_class, str) else op_or_class
    return cls is not None and cls.__module__.startswith("compiler.")
