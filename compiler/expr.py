"""Safe arithmetic for `$var` expressions, evaluated by walking a whitelisted AST (never `eval`).

A string value that contains `$` is an expression: ``$width * 2``, ``max($n - 1, 1)``,
``"$base // 4"``. Allowed: numbers, `$name` references, `+ - * / // % **`, unary `+ -`,
parentheses and the functions `min`, `max`, `round`, `int`, `float`, `abs`. Anything else
(attribute access, calls to other names, subscripts, strings, comprehensions) is refused, and
results are kept within 64-bit magnitudes, so ``10**10**10`` is an error, not a hang.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any, Callable, Mapping

MAX_LEN = 400
MAX_MAGNITUDE = 2.0**63
_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_BAD_DOLLAR = re.compile(r"\$(?![A-Za-z_])")

Number = int | float


class ExprError(ValueError):
    """A message about one expression; the caller adds the location."""


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and "$" in value


def _check(value: Number) -> Number:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError("the result is not a finite number")
    if abs(value) >= MAX_MAGNITUDE:
        raise ExprError("the result is too large (more than 2**63)")
    return value


def _div(a: Number, b: Number) -> Number:
    if b == 0:
        raise ExprError("division by zero")
    return a / b


def _floordiv(a: Number, b: Number) -> Number:
    if b == 0:
        raise ExprError("division by zero")
    return a // b


def _mod(a: Number, b: Number) -> Number:
    if b == 0:
        raise ExprError("modulo by zero")
    return a % b


def _pow(a: Number, b: Number) -> Number:
    if a == 0 and b < 0:
        raise ExprError("division by zero (0 to a negative power)")
    if abs(a) > 1 and b > 0 and b * math.log2(abs(a)) >= 63:
        raise ExprError("the result is too large (more than 2**63)")
    result = a**b
    if isinstance(result, complex):
        raise ExprError("a negative number to a fractional power is not a real number")
    return result


_BINARY: dict[type, Callable[[Number, Number], Number]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: _div,
    ast.FloorDiv: _floordiv, ast.Mod: _mod, ast.Pow: _pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _round(x: Number, nd: Number | None = None) -> Number:
    return round(x) if nd is None else round(x, int(nd))


_FUNCS: dict[str, Callable[..., Number]] = {
    "min": min, "max": max, "round": _round, "int": int, "float": float, "abs": abs,
}


def variables(text: str) -> list[str]:
    """The `$names` an expression refers to, in order."""
    return _VAR.findall(text)


def evaluate(text: str, lookup: Callable[[str], Any] | Mapping[str, Any]) -> Number:
    """Evaluate `text` with `$name` looked up in `lookup` (a mapping or a function)."""
    if len(text) > MAX_LEN:
        raise ExprError(f"expression longer than {MAX_LEN} characters")
    if _BAD_DOLLAR.search(text):
        raise ExprError("'$' must be followed by a variable name, as in $width")
    get = lookup if callable(lookup) else (lambda name: _from_mapping(lookup, name))
    source = _VAR.sub(lambda m: f"__var_{m.group(1)}", text).strip()
    if source.count("(") > 32:
        raise ExprError("too many parentheses")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ExprError(f"cannot read {text!r} as arithmetic") from None
    return _check(_eval(tree.body, get))


def _from_mapping(mapping: Mapping[str, Any], name: str) -> Any:
    if name not in mapping:
        raise ExprError(f"unknown variable ${name}")
    return mapping[name]


def _eval(node: ast.AST, get: Callable[[str], Any]) -> Number:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check(node.value)
    if isinstance(node, ast.Name) and node.id.startswith("__var_"):
        value = get(node.id[len("__var_"):])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExprError(f"${node.id[6:]} is {value!r}, not a number")
        return _check(value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, get), _eval(node.right, get)
        return _check(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_eval(node.operand, get)))
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
            and not node.keywords and 1 <= len(node.args) <= 8):
        args = [_eval(a, get) for a in node.args]
        try:
            return _check(_FUNCS[node.func.id](*args))
        except TypeError as exc:
            raise ExprError(f"{node.func.id}(): {exc}") from None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        raise ExprError(f"unknown function {node.func.id!r}; allowed: {', '.join(_FUNCS)}")
    if isinstance(node, ast.Name):
        raise ExprError(f"unknown name {node.id!r}; variables are written $name")
    raise ExprError(f"{type(node).__name__.lower()} is not allowed in an expression; use numbers, "
                    "$vars, + - * / // % **, parentheses and min/max/round/int/float/abs")
