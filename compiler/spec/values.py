"""Vars and expression values: the spec's `vars:` with overrides, evaluated lazily so that vars
may use other vars (loops are reported), a user block's parameters in front of them, and how a
`$name` or an expression in an argument becomes a value.

`whole_var` is the public form of the rule "`$name` alone stands for the var's value, whatever
its type" (a list, a map, text), which other readers of a spec's values (the train settings)
follow too.
"""

from __future__ import annotations

import re
from typing import Any

from .. import expr
from ..errors import Collector, Loc
from ..source import Document
from .document import DatasetVar
from .messages import did_you_mean


class Reported(expr.ExprError):
    """An expression used a var whose own error was already reported: say nothing more."""


class _FailedType:
    def __repr__(self) -> str:
        return "<failed>"


FAILED = _FailedType()
"""What an expression that could not be evaluated resolves to (its error is already reported)."""

_WHOLE_VAR = re.compile(r"\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*")


def whole_var(text: str) -> str | None:
    """The var's name when `text` is one `$name` alone (around spaces aside), else None."""
    match = _WHOLE_VAR.fullmatch(text)
    return match.group(1) if match else None


def evaluate(text: str, scope) -> Any:
    """The value of an expression; `scope.get(name)` gives a var's (or parameter's) value."""
    name = whole_var(text)
    if name is not None:  # `$name` alone stands for the var's value, whatever its type
        return scope.get(name)
    return expr.evaluate(text, scope.get)


def may_hold_expressions(value: Any) -> bool:
    return isinstance(value, (list, dict)) or (isinstance(value, str) and "$" in value)


class Vars:
    """Spec vars with overrides, evaluated lazily so vars may use other vars."""

    def __init__(self, raw: dict, doc: Document, overrides: dict, out: Collector):
        self.raw, self.doc, self.out = dict(raw), doc, out
        self.values: dict[str, Any] = {}
        self.active: list[str] = []
        self.bound: dict[str, str] = {}
        for name, value in list(self.raw.items()):
            if isinstance(value, DatasetVar):
                self.raw[name] = value.default
                if name not in overrides:
                    self.bound[name] = value.dataset
        for name, value in overrides.items():
            if name not in self.raw:
                out.error(doc.loc(("vars",)) if "vars" in getattr(doc, "data", {}) else Loc(doc.file, 1, 1),
                          f"override of unknown var {name!r}{did_you_mean(name, self.raw)}"
                          + (f" (the spec defines: {', '.join(self.raw)})" if self.raw else " (the spec defines no vars)"))
                continue
            self.raw[name] = value
            self.values.pop(name, None)
        self.overridden = set(overrides)
        self.failed: set[str] = set()

    def get(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name in self.failed:
            raise Reported(f"${name} is invalid (reported at its definition)")
        if name not in self.raw:
            raise expr.ExprError(f"unknown variable ${name}{did_you_mean(name, self.raw)}")
        if name in self.active:
            chain = " -> ".join(f"${n}" for n in self.active[self.active.index(name):] + [name])
            raise expr.ExprError(f"vars refer to each other in a loop: {chain}")
        self.active.append(name)
        try:
            value = self.raw[name]
            if expr.is_expression(value):
                value = evaluate(value, self)
            self.values[name] = value
            return value
        finally:
            self.active.pop()

    def resolve_all(self) -> dict[str, Any]:
        for name in self.raw:
            try:
                self.get(name)
            except Reported:
                self.failed.add(name)
            except expr.ExprError as exc:
                self.failed.add(name)
                loc = self.doc.loc(("vars", name))
                if name in self.overridden:
                    exc = expr.ExprError(f"{exc} (the value comes from an override)")
                self.out.error(loc, f"{self.raw[name]!r}: {exc}", f"vars.{name}")
        return dict(self.values)


class Params:
    """A user block's parameter values in front of the enclosing scope's values."""

    def __init__(self, params: dict[str, Any], parent: Any):
        self.params, self.parent = params, parent

    def get(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        return self.parent.get(name)


def root_values(values: Any) -> Any:
    """The spec's vars behind any user-block parameters (what `defaults:` may use)."""
    while isinstance(values, Params):
        values = values.parent
    return values
