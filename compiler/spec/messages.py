"""The message catalogue: how blockgraph words a mistake, for the spec and every other reader.

One home for the wording, so a spec key, a train key and a dataset option read alike: what was
expected, what came (`describe`), and a "did you mean" drawn from compiler/suggest.py's one
closeness rule plus a table of names other frameworks use (`SYNONYMS` for spec keys; callers
with their own keys pass their own table). `pydantic_message` rewords pydantic's errors into
that style; `union_collapsed` keeps one error per path where a union's members all failed.
The loader (compiler/spec/), the train settings (compiler/train/config.py) and the datasets
(compiler/data/) all speak through these functions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .. import suggest
from ..quoted import QUOTED

SYNONYMS = {
    "k": ("kernel", "kernal", "kernel_size", "ksize", "kernelsize", "filter_size", "size_k"),
    "out": ("filters", "out_channels", "channels", "features", "out_features", "units", "outputs", "num_output"),
    "pad": ("padding", "pads"),
    "stride": ("strides", "step"),
    "act": ("activation", "nonlinearity", "relu"),
    "norm": ("normalization", "normalisation", "bn", "batchnorm", "batch_norm"),
    "p": ("rate", "drop_rate", "dropout", "prob"),
    "dilation": ("dilation_rate", "dilate"),
    "groups": ("group", "cardinality"),
    "in": ("input", "inputs", "from", "bottom"),
    "nodes": ("layers", "node", "graph"),
    "repeat": ("repeats", "times", "number"),
    "layers": ("num_layers", "n_layers"),
    "he_normal": ("kaiming", "msra"),
    "xavier_uniform": ("xavier", "glorot"),
}
"""Names other frameworks use (Keras, PyTorch, Caffe, Ultralytics) for blockgraph's keys."""



def suggestion(word: str, options, synonyms: Mapping[str, Iterable[str]] | None = SYNONYMS) -> str | None:
    """The option a user most likely meant by `word` (a synonym from another framework, or a
    close spelling: the one rule of compiler/suggest.py), or None."""
    return suggest.closest(word, options, synonyms)


def did_you_mean(word: str, options, synonyms: Mapping[str, Iterable[str]] | None = SYNONYMS) -> str:
    """'; did you mean 'x'?' for a close option, else '' (ready to append to a message)."""
    return suggest.did_you_mean(word, options, synonyms)


def unknown_key(key: str, where: str, fields, synonyms: Mapping[str, Iterable[str]] | None = SYNONYMS) -> str:
    """`unknown key 'kernal' in train; did you mean ...? (allowed: ...)`: `where` is the phrase
    after the key ("in train", "for op 'conv'")."""
    return f"unknown key {key!r} {where}{did_you_mean(key, fields, synonyms)} (allowed: {', '.join(fields)})"


def describe(value: Any) -> str:
    """A value as a message quotes it: short text in quotes, a map or a list by its kind."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    if isinstance(value, str):
        return repr(value) if len(value) < 60 else repr(value[:57] + "...")
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def pydantic_message(err: dict, owner: str, fields) -> str:
    """A pydantic error, reworded as blockgraph's messages are: what was expected, what came."""
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    key = err["loc"][-1] if err["loc"] else ""
    if kind == "extra_forbidden":
        where = f"in {owner}" if owner.isidentifier() else f"for {owner}"
        return unknown_key(key, where, fields)
    if kind == "missing":
        return f"missing required key {key!r} for {owner}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter(ctx.values()), "?")
        if kind == "greater_than" and bound == 0 and (isinstance(got, int) or float(got).is_integer()):
            return f"expected a positive integer, got {describe(got)}"
        words = {"greater_than": "greater than", "greater_than_equal": "at least",
                 "less_than": "less than", "less_than_equal": "at most"}[kind]
        return f"expected a number {words} {bound}, got {describe(got)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {describe(got)}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {describe(got)}"
    if kind == "finite_number":
        return f"expected a finite number, got {describe(got)}"
    if kind in QUOTED:
        return f'expected {QUOTED[kind]}, got the text "{got}": write {ctx["fix"]} without quotes'
    if kind in ("bool_type", "bool_parsing"):
        if isinstance(got, str) and got.strip().lower() in ("true", "false"):
            return f'expected true or false, got the text "{got}": write {got.strip().lower()} without quotes'
        if isinstance(got, str) and got.strip().lower() in ("yes", "no", "on", "off", "y", "n"):
            return (f"expected true or false, got {describe(got)} (YAML 1.2 reads yes/no/on/off as text): "
                    "write true or false")
        return f"expected true or false, got {describe(got)}"
    if kind == "literal_error" and key == "blockgraph":
        return (f"spec format version {describe(got)} is not supported: this blockgraph reads version 1 "
                "(blockgraph: 1)")
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = re.findall(r"'([^']*)'", expected)
        return f"expected one of {expected}, got {describe(got)}{did_you_mean(got, options) if isinstance(got, str) else ''}"
    if kind in ("string_type",):
        return f"expected text, got {describe(got)}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {describe(got)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a map, got {describe(got)}"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"expected at most {ctx.get('max_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        return f"expected a name of letters, digits, _ and - starting with a letter, got {describe(got)}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    msg = err["msg"]
    return f"{msg[0].lower()}{msg[1:]}, got {describe(got)}"


def union_collapsed(errors: list[dict], models: frozenset[str] = frozenset()) -> list[dict]:
    """`int | tuple[int, int]` fails once per member; report the most specific member only.
    Union members appear in pydantic's loc as type names ('int', 'tuple[int,int]',
    'literal[...]', a model's class name: `models`): we drop those segments and keep one error
    per path. Each error keeps pydantic's own loc as `raw_loc` (it says which member failed)."""
    seen: dict[tuple, dict] = {}
    tags = UNION_MODELS | models
    for err in errors:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in (
            "int", "float", "str", "bool", "none", "function-after", "function-before", "function-wrap")
            or p.startswith(("constrained-", "function-", "lax-", "json-or-python", "union["))
            or p in tags)))
        err = {**err, "loc": loc, "raw_loc": err["loc"]}
        prev = seen.get(loc)
        # prefer a bound violation of the scalar member over "expected a list" of the tuple member
        if prev is None or (prev["type"] in ("tuple_type", "list_type", "literal_error", "none_required")
                            and err["type"] not in ("tuple_type", "list_type", "none_required")):
            seen[loc] = err
    # a member that took the value apart (a map's key is wrong) is the one the user meant: its
    # errors below the path replace the other members' "expected an integer, got a map"
    return [e for loc, e in seen.items() if not any(len(o) > len(loc) and o[:len(loc)] == loc for o in seen)]


UNION_MODELS = {"DatasetVar", "TypedInput"}
