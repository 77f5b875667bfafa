"""Safe arithmetic for `$var` expressions, evaluated by walking a whitelisted AST (never `eval`).

A string value that contains `$` is an expression: ``$width * 2``, ``max($n - 1, 1)``,
``"$base // 4"``. Allowed: numbers, `$name` references, `+ - * / // % **`, unary `+ -`,
parentheses and the functions `min`, `max`, `round`, `int`, `float`, `abs`. Anything else
(attribute access, calls to other names, subscripts, strings, comprehensions) is refused
before anything is evaluated, with a message naming the culprit, and results are kept within
64-bit magnitudes, so ``10**10**10`` is an error, not a hang.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from decimal import ROUND_HALF_UP, Decimal, localcontext
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


def round_half_away(x: Number, nd: Number | None = None) -> Number:
    """`round` of expressions: to the nearest, ties away from zero (2.5 -> 3, -2.5 -> -3,
    36 / 8 = 4.5 -> 5), the rule of school arithmetic and of `make_divisible` (scaled channel
    counts), so `round($c / 8) * 8` and `scaling.divisor: 8` agree. Python's own `round` ties
    to even (4.5 -> 4), which nobody expects of a channel count. Digits work on the number as
    written (its shortest repr: round(2.675, 2) is 2.68, not the 2.67 of binary floats);
    round(x) gives an int, round(x, digits) the type of x, like Python's."""
    if nd is None:
        return int(_decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    digits = int(nd)
    if (isinstance(x, int) and digits >= 0) or digits > 400:  # nothing left to round
        return x
    with localcontext() as ctx:
        ctx.prec = 500  # |x| < 2**63 has 19 integer digits; a float at most ~330 more
        rounded = _decimal(x).quantize(Decimal(1).scaleb(-max(digits, -30)), rounding=ROUND_HALF_UP)
    return int(rounded) if isinstance(x, int) else float(rounded)


def _decimal(x: Number) -> Decimal:
    return Decimal(repr(float(x))) if isinstance(x, float) else Decimal(int(x))


_FUNCS: dict[str, Callable[..., Number]] = {
    "min": min, "max": max, "round": round_half_away, "int": int, "float": float, "abs": abs,
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
    if _PREFIX in _VAR.sub("", text):
        raise ExprError(f"unknown name starting with {_PREFIX!r}; variables are written $name")
    source = _VAR.sub(lambda m: _PREFIX + m.group(1), text).strip()
    if source.count("(") > 32:
        raise ExprError("too many parentheses")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ExprError(f"cannot read {text!r} as arithmetic") from None
    _check_syntax(tree)
    try:
        return _check(_eval(tree.body, get))
    except RecursionError:
        raise ExprError("the expression nests too deeply") from None


_PREFIX = "__var_"
_ALLOWED = "use numbers, $vars, + - * / // % **, parentheses and min/max/round/int/float/abs"
_ARITY = {"min": (2, 8), "max": (2, 8), "round": (1, 2), "int": (1, 1), "float": (1, 1), "abs": (1, 1)}
_OPERATORS = {ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitAnd: "&",
              ast.BitXor: "^", ast.Invert: "~", ast.Not: "not"}
_WORDS = {
    ast.Attribute: "attribute access", ast.Subscript: "indexing with [...]", ast.Slice: "slicing",
    ast.Lambda: "a lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.comprehension: "a comprehension",
    ast.List: "a list", ast.Tuple: "a tuple (values separated by commas)", ast.Dict: "a map", ast.Set: "a set",
    ast.Compare: "a comparison", ast.BoolOp: "and/or", ast.IfExp: "if/else", ast.NamedExpr: "an assignment (:=)",
    ast.JoinedStr: "an f-string", ast.Starred: "*unpacking", ast.Await: "await", ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


def _check_syntax(tree: ast.Expression) -> None:
    """Refuse anything but arithmetic before evaluating anything, naming the first culprit
    (unknown names and functions first: they are the most telling)."""
    problems: list[tuple[int, int, str]] = []
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        message = _disallowed(node, id(node) in called)
        if message is None:
            continue
        if isinstance(node, _STRUCTURES):
            rank = 0  # a lambda or a comprehension: the names inside it are its own
        elif isinstance(node, (ast.Name, ast.Call)):
            rank = 1  # unknown names and functions, wrong calls
        else:
            rank = 2
        problems.append((rank, getattr(node, "col_offset", 0), message))
    if problems:
        raise ExprError(min(problems)[2])


_STRUCTURES = (ast.Lambda, ast.comprehension, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _disallowed(node: ast.AST, is_callee: bool) -> str | None:
    if isinstance(node, (ast.Expression, ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
                         ast.keyword, ast.arguments, ast.arg)) and type(node) not in _OPERATORS:
        return None  # reported at the node that holds it
    if isinstance(node, ast.Constant):
        value = node.value
        if type(value) in (int, float):
            return None
        if isinstance(value, str):
            return f"text ({value!r}) is not allowed in an expression; {_ALLOWED}"
        return f"{value!r} is not allowed in an expression; {_ALLOWED}"
    if isinstance(node, ast.Name):
        if node.id.startswith(_PREFIX) or (is_callee and node.id in _FUNCS) or not isinstance(node.ctx, ast.Load):
            return None
        if is_callee:
            return f"unknown function {node.id!r}; allowed: {', '.join(_FUNCS)}"
        return f"unknown name {node.id!r}; variables are written $name, as in ${node.id}"
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return None  # the operator node itself is checked
    if type(node) in _OPERATORS:
        return f"operator {_OPERATORS[type(node)]} is not allowed in an expression; {_ALLOWED}"
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            return None  # the callee (an attribute, a subscript...) is reported itself
        name = node.func.id
        if name not in _FUNCS:
            return None  # reported at the Name
        if node.keywords:
            return f"{name}() takes no keyword arguments"
        if any(isinstance(a, ast.Starred) for a in node.args):
            return None  # reported at the Starred
        lo, hi = _ARITY[name]
        if not lo <= len(node.args) <= hi:
            want = f"{lo}" if lo == hi else f"{lo} to {hi}"
            return f"{name}() takes {want} argument{'s' if hi > 1 else ''}, got {len(node.args)}"
        return None
    what = _WORDS.get(type(node), type(node).__name__.lower())
    if isinstance(node, ast.Attribute):
        what = f"attribute access ('.{node.attr}')"
    return f"{what} is not allowed in an expression; {_ALLOWED}"


def _from_mapping(mapping: Mapping[str, Any], name: str) -> Any:
    if name not in mapping:
        raise ExprError(f"unknown variable ${name}")
    return mapping[name]


def _eval(node: ast.AST, get: Callable[[str], Any]) -> Number:
    """Evaluate a tree that `_check_syntax` accepted."""
    if isinstance(node, ast.Constant):
        return _check(node.value)
    if isinstance(node, ast.Name):
        name = node.id[len(_PREFIX):]
        value = get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExprError(f"${name} is {value!r}, not a number")
        return _check(value)
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, get), _eval(node.right, get)
        return _check(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp):
        return _check(_UNARY[type(node.op)](_eval(node.operand, get)))
    if isinstance(node, ast.Call):
        name = node.func.id  # type: ignore[attr-defined]
        args = [_eval(a, get) for a in node.args]
        try:
            return _check(_FUNCS[name](*args))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ExprError(f"{name}(): {exc}") from None
    raise ExprError(f"{type(node).__name__.lower()} is not allowed in an expression; {_ALLOWED}")
