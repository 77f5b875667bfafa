"""What the designer computes, without Streamlit: the app (ui/app.py) only draws widgets.

- `refresh(text, vars, file, ...)` is the update that runs after every edit: load + analyze
  + DOT source + summary rows, cached by the YAML text, the var overrides and the view
  settings (benchmarks/ui_latency.py times it).
- `quote_problem` (from ui/problems.py, which words every problem of the page) formats an
  error as ``line 14, col 22: nodes[3].out: ...`` with the offending line quoted and a caret
  under the column.
- `node_entries` / `insert_node` / `flow_line` put a new node into the text as one
  ``- {op: ..., ...}`` line after a chosen node, leaving the rest of the text unchanged.
- `palette_fields` / `collect_args` turn a block's pydantic model (or a user block's
  `params:`) into form fields and back into arguments.
- `DesignerSession` is the per-browser-session state (kept in st.session_state["designer"]),
  with `TrainJob`, the slot where a background trainer plugs in.

Module-level caches hold only pure functions of their arguments (shared by all sessions);
nothing per-user lives at module level.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
import os
import queue
import re
import threading
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Union

import compiler
from compiler import Problem, SpecError
from compiler.analysis import Analysis, Unit, collapse
from compiler.errors import Loc
from compiler.formatting import human_bytes
from ui.problems import (UNTITLED, in_text, problem_title, quote_lines, quote_problem,  # noqa: F401
                         short_path, source_name)

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
DEFAULT_SPEC = SPECS / "default.yaml"
DTYPES = ("float32", "float16", "bfloat16", "float64")

# ------------------------------------------------------------------------------ loading


_warm = threading.Lock()
_warmed: list[str] | None = None


def warm_up() -> list[str]:
    """Once per process: import the plugins the `blockgraph` command would (installed
    packages' `blockgraph.blocks` entry points and $BLOCKGRAPH_PLUGINS: the app runs in its
    own process, so `--plugin` names reach it only through that variable); import torch and
    the fx compiler (the first meta-device parameter count or code build would otherwise stall
    an edit by about two seconds); then move every object alive so far into the garbage
    collector's permanent generation (gc.freeze), so that full collections no longer walk
    torch's and Streamlit's import-time objects: without it an edit every few seconds takes
    ~0.6 s instead of ~40 ms on a 400-node spec. Returns the plugin problems (messages), the
    same at every call."""
    global _warmed
    with _warm:
        if _warmed is not None:
            return _warmed
        import gc

        from compiler.plugins import PluginError, load_entry_points, load_from_environment

        problems = []
        for load in (load_entry_points, load_from_environment):
            try:
                load()
            except PluginError as exc:
                problems.append(str(exc))
        importlib.import_module("compiler.fx")  # imports torch

        gc.collect()
        gc.freeze()
        _warmed = problems
        return problems



def zoo() -> list[str]:
    """File names of the specs shipped in specs/ (default.yaml first)."""
    names = sorted(p.name for p in SPECS.glob("*.yaml"))
    return sorted(names, key=lambda n: n != "default.yaml")


def spec_from_argv(argv: list[str]) -> Path:
    """The spec named after `--` on the streamlit command line (`streamlit run ui/app.py --
    SPEC`), else specs/default.yaml. Only an existing *.yaml / *.yml file counts, so the
    arguments of a test runner that imports the app are ignored."""
    for arg in argv:
        if arg.endswith((".yaml", ".yml")) and os.path.isfile(arg):
            return Path(arg).resolve()
    return DEFAULT_SPEC


def load_text(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED) -> compiler.Spec:
    """`compiler.load` of YAML text as if it were the file `file` (`untitled.yaml` for a buffer
    without one): problems are reported against that name and `extends:` resolves next to it
    (plain `compiler.load(text)` would say `<string>` and resolve it in the working directory)."""
    return compiler.load(text, vars=vars, file=source_name(file))


def freeze_vars(vars: dict[str, Any] | None) -> tuple:
    """A hashable cache key for var overrides (types included: True and 1 differ)."""
    return tuple(sorted((k, type(v).__name__, v) for k, v in (vars or {}).items()))


def _thaw(key: tuple) -> dict[str, Any] | None:
    return {k: v for k, _, v in key} or None


@dataclass(eq=False)
class Result:
    """One load + analyze of a text: the spec and its analysis, or the problems."""

    text: str
    vars: dict[str, Any] | None
    file: str
    spec: compiler.Spec | None = None
    analysis: Analysis | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.analysis is not None

    @property
    def max_depth(self) -> int:
        """The depth at which nothing is collapsed any more."""
        if self.analysis is None:
            return 0
        return max((len(n.group) for n in self.analysis.nodes), default=0)


@functools.lru_cache(maxsize=16)
def _analyse(text: str, vars_key: tuple, file: str, batch: int, dtype: str) -> Result:
    start = time.perf_counter()
    result = Result(text, _thaw(vars_key), file)
    try:
        spec = load_text(text, _thaw(vars_key), file)
        result.spec = spec
        result.analysis = compiler.analyze(spec, batch=batch, dtype=dtype)
        result.warnings = list(result.analysis.warnings)
    except SpecError as exc:
        result.errors = list(exc.errors)
    except Exception as exc:  # an internal error must not take the app down
        result.errors = [Problem(Loc(file, 1, 1), f"internal error: {type(exc).__name__}: {exc}")]
    result.seconds = time.perf_counter() - start
    return result


def analyse(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED, batch: int = 1,
            dtype: str = "float32") -> Result:
    """Load and analyse `text` (cached by text, vars, file, batch and dtype)."""
    return _analyse(text, freeze_vars(vars), file, int(batch), dtype)


@functools.lru_cache(maxsize=64)
def _dot(result: Result, depth: int | None, rankdir: str) -> str:
    from compiler.render import to_graphviz

    return to_graphviz(result.analysis, depth=depth, rankdir=rankdir, legend=True).source


def dot_source(result: Result, depth: int | None = 0, rankdir: str = "TB") -> str:
    """Graphviz DOT text of an analysed result (cached): what st.graphviz_chart draws."""
    if not result.ok:
        raise ValueError("no graph: the spec has errors")
    return _dot(result, depth, rankdir)


@functools.lru_cache(maxsize=16)
def svg_of(dot: str) -> bytes:
    """The drawing as SVG, laid out by graphviz's `dot` program."""
    import graphviz

    return graphviz.Source(dot).pipe(format="svg")


def shape_text(shape) -> str:
    return "×".join(str(d) for d in shape)


def summary_rows(units: list[Unit]) -> list[dict[str, Any]]:
    """Rows of the summary table: one per unit of `collapse(analysis, depth)` (a repeat's op
    says how many copies: `residual ×5`, its nodes column how many nodes)."""
    return [{"id": u.id, "op": f"{u.op} ×{u.repeats}" if u.kind == "repeat" else u.op, "nodes": len(u.members),
             "shape": shape_text(u.shape), "params": u.params, "MACs": u.macs, "RF": u.rf, "jump": u.jump,
             "memory": human_bytes(u.activation_bytes)}
            for u in units]


def totals(analysis: Analysis) -> dict[str, Any]:
    return {"params": analysis.params, "buffers": analysis.buffers, "macs": analysis.macs,
            "weight_bytes": analysis.weight_bytes, "activation_bytes": analysis.activation_bytes,
            "batch": analysis.batch, "dtype": analysis.dtype}


@dataclass(eq=False)
class View:
    """What the page shows for one text, var overrides and settings."""

    result: Result
    dot: str | None
    rows: list[dict[str, Any]]
    depth: int
    seconds: float


@functools.lru_cache(maxsize=16)
def _refresh(text: str, vars_key: tuple, file: str, depth: int, batch: int, dtype: str, rankdir: str) -> View:
    start = time.perf_counter()
    result = _analyse(text, vars_key, file, batch, dtype)
    dot, rows = None, []
    if result.ok:
        depth = min(depth, result.max_depth)
        dot = _dot(result, depth, rankdir)
        rows = summary_rows(collapse(result.analysis, depth))
    return View(result, dot, rows, depth, time.perf_counter() - start)


def refresh(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED, depth: int = 0,
            batch: int = 1, dtype: str = "float32", rankdir: str = "TB") -> View:
    """The designer's update after an edit: validation (load + analyze), the graph's DOT
    source at `depth` and the summary rows; cached by all of its arguments."""
    return _refresh(text, freeze_vars(vars), file, int(depth), int(batch), dtype, rankdir)


@functools.lru_cache(maxsize=16)
def _code(text: str, vars_key: tuple, file: str) -> str:
    spec = load_text(text, _thaw(vars_key), file)
    module = compiler.build(spec, device="meta")
    return module.code


def generated_code(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED) -> str:
    """The generated `forward()` of the compiled module (built on the meta device: no weights)."""
    return _code(text, freeze_vars(vars), file)


def code_file(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED, name: str = "model") -> str:
    """The generated forward() as a downloadable .py text, with a header saying what it is."""
    return (f"# forward() that blockgraph generates for {name!r} (torch.fx GraphModule.code).\n"
            "# The module itself: compiler.build('<spec>.yaml') (its submodules hold the weights).\n"
            + generated_code(text, vars, file).strip("\n") + "\n")


ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


def onnx_missing() -> list[str]:
    """The packages ONNX export needs (torch's exporter: onnx, onnxscript; the check that
    reloads the file: onnxruntime) that cannot be imported here."""
    import importlib.util

    return [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]


def onnx_bytes(text: str, vars: dict[str, Any] | None = None, file: str = UNTITLED,
               weights: str | Path | None = None) -> bytes:
    """The spec (with var overrides) as an ONNX file's bytes: `compiler.export(spec, "onnx",
    ...)` into a temporary folder, which checks the file in onnxruntime at batch 1 and 3 before
    it counts as written. `weights`: a model.safetensors of a run (else the spec's own
    initialisation). Raises SpecError, compiler.export.ExportError or WeightImportError."""
    import tempfile

    spec = load_text(text, vars, file)
    with tempfile.TemporaryDirectory(prefix="blockgraph-onnx-") as tmp:
        out = compiler.export(spec, "onnx", Path(tmp) / f"{spec.name}.onnx",
                              weights=str(weights) if weights is not None else None)
        others = [p.name for p in Path(tmp).iterdir() if p != out]
        if others:  # weights over 2 GB go to external data files
            raise ValueError(f"the ONNX export wrote {len(others) + 1} files (external weights): use "
                             "`blockgraph export SPEC --format onnx -o FILE` for a model this large")
        return out.read_bytes()


@functools.lru_cache(maxsize=32)
def _zoo_result(path: str, mtime: float) -> Result:
    text = Path(path).read_text()
    return _analyse(text, (), path, 1, "float32")


def zoo_result(name: str) -> Result:
    """A zoo spec (file name under specs/) loaded and analysed, cached by modification time."""
    path = SPECS / name
    return _zoo_result(str(path), path.stat().st_mtime)


@functools.lru_cache(maxsize=32)
def _diff(a: Result, b: Result, depth: int | None):
    from compiler.diff import diff

    return diff(a.analysis, b.analysis, depth)


def diff_of(a: Result, b: Result, depth: int | None = None):
    """`compiler.diff.diff` of two analysed results (cached): what changes from a to b."""
    if not (a.ok and b.ok):
        raise ValueError("both specs must be valid to compare them")
    return _diff(a, b, depth)


def diff_default(file: str, text: str) -> str:
    """The zoo spec to compare with first: the one this text extends, else one extending this
    file, else the closest name (never the file itself)."""
    import difflib

    names = zoo()
    current = Path(file).name
    others = [n for n in names if n != current]
    if not others:
        return current
    try:
        data = _document(text).data
    except SpecError:
        data = None
    parent = data.get("extends") if isinstance(data, dict) else None
    if isinstance(parent, str) and Path(parent).name in others:
        return Path(parent).name
    for name in others:
        head = (SPECS / name).read_text()[:4000]
        if re.search(rf"^extends:\s*['\"]?{re.escape(current)}['\"]?\s*$", head, re.M):
            return name
    return (difflib.get_close_matches(current, others, n=1, cutoff=0) or others)[0]


# ------------------------------------------------------------------------------ problems


# in_text, short_path, problem_title, quote_lines, quote_problem: ui/problems.py (imported above)


# ------------------------------------------------------------------------------ inserting nodes


class InsertError(ValueError):
    """The text has no block-style `nodes:` list to insert into."""


@dataclass
class NodeEntry:
    index: int
    """Position in the top-level `nodes:` list."""
    id: str
    op: str
    line: int

    @property
    def label(self) -> str:
        return f"{self.id} ({self.op}, line {self.line})"


@functools.lru_cache(maxsize=16)
def _document(text: str):
    from compiler.source import parse

    return parse(text)


def node_entries(text: str) -> list[NodeEntry]:
    """The top-level nodes written in `text` (empty when it does not parse or has no
    `nodes:` of its own, e.g. a spec that inherits them with `extends:`)."""
    try:
        doc = _document(text)
    except SpecError:
        return []
    nodes = doc.data.get("nodes") if isinstance(doc.data, dict) else None
    if not isinstance(nodes, list):
        return []
    entries, counts = [], {}
    used = {n.get("id") for n in nodes if isinstance(n, dict)}
    for i, node in enumerate(nodes):
        op = str(node.get("op", "?")) if isinstance(node, dict) else "?"
        node_id = node.get("id") if isinstance(node, dict) else None
        if not isinstance(node_id, str):  # generated id: {op}{n}, skipping explicit ones
            n = counts.get(op, 0)
            while True:
                n += 1
                if f"{op}{n}" not in used:
                    break
            counts[op] = n
            node_id = f"{op}{n}"
        entries.append(NodeEntry(i, node_id, op, doc.loc(("nodes", i)).line))
    return entries


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def insert_node(text: str, after: int | None, line: str) -> tuple[str, int]:
    """Insert `line` (one `{...}` flow mapping) as an item of the top-level `nodes:` list,
    after item `after` (None: before the first item). Returns the new text and the 1-based
    line number of the inserted item. Every other line is kept as it was."""
    doc = _document(text)
    nodes = doc.data.get("nodes") if isinstance(doc.data, dict) else None
    if not isinstance(nodes, list) or not nodes:
        raise InsertError("the text has no `nodes:` list of its own (a spec that `extends` another "
                          "inherits its nodes): add a `nodes:` list to insert into")
    lines = text.splitlines(keepends=True)
    seq = doc.loc(("nodes",))
    seq_line = lines[seq.line - 1]
    if seq_line[seq.col - 1: seq.col] != "-":
        raise InsertError("`nodes:` is written as a flow list ([...]): write it one `- ` item per "
                          "line to insert blocks")
    dash = seq.col - 1  # indentation of the items' dashes
    if after is None:
        at = seq.line - 1  # 0-based index of the line to insert before
    else:
        if not 0 <= after < len(nodes):
            raise InsertError(f"there is no node {after} (the list has {len(nodes)})")
        start = doc.loc(("nodes", after)).line - 1
        stop = doc.loc(("nodes", after + 1)).line - 1 if after + 1 < len(nodes) else len(lines)
        end = start
        for i in range(start + 1, stop):
            stripped = lines[i].strip()
            if not stripped or stripped.startswith("#"):
                continue
            if _indent(lines[i]) > dash:
                end = i  # a continuation of the item (block mapping, wrapped flow mapping)
            else:
                break
        at = end + 1
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines.insert(at, " " * dash + "- " + line + "\n")
    return "".join(lines), at + 1


_PLAIN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_.$ *+/()\-]*$")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        reserved = value.lower() in ("null", "true", "false", "yes", "no", "on", "off", "~", "")
        if _PLAIN.match(value) and not reserved and not value.endswith(" "):
            return value
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def flow_line(op: str, args: dict[str, Any], node_id: str | None = None) -> str:
    """`{id: x, op: conv, out: 64, k: 3}`: a node as one YAML flow mapping."""
    head = {"id": node_id} if node_id else {}
    return _scalar({**head, "op": op, **args})


def unique_id(text: str, op: str) -> str:
    """An id for a new node of `op` that no top-level node of `text` uses yet."""
    used = {e.id for e in node_entries(text)}
    n = 1
    while f"{op}{n}" in used:
        n += 1
    return f"{op}{n}"


# ------------------------------------------------------------------------------ palette forms


@dataclass
class FormField:
    """One input of the palette form."""

    name: str
    kind: str
    """int, float, optint (int or empty), bool, str, choice (a selectbox) or yaml (a text
    input read as YAML: lists, maps, unions)."""
    default: Any
    """The value the block takes when the argument is left out (ignored when required)."""
    initial: Any
    """What the form shows first (for yaml fields: the YAML text)."""
    required: bool = False
    options: list[Any] = field(default_factory=list)
    help: str = ""
    min_value: int | float | None = None


def _strip_annotated(t):
    while typing.get_origin(t) is typing.Annotated:
        t = typing.get_args(t)[0]
    return t


def _bound(metadata) -> int | float | None:
    for m in metadata:
        if getattr(m, "ge", None) is not None:
            return m.ge
        if getattr(m, "gt", None) is not None and isinstance(m.gt, int):
            return m.gt + 1
    return None


def _kind_model(t) -> list[str] | None:
    """The `kind` names of an options model that also accepts a bare name (act, norm)."""
    from pydantic import BaseModel

    if isinstance(t, type) and issubclass(t, BaseModel) and "kind" in t.model_fields:
        kind = _strip_annotated(t.model_fields["kind"].annotation)
        if typing.get_origin(kind) is Literal:
            return list(typing.get_args(kind))
    return None


def _jsonable(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)


def _yaml_text(value: Any) -> str:
    return "" if value is None else _scalar(_jsonable(value))


def classify(annotation, metadata=()) -> tuple[str, list[Any], int | float | None]:
    """(kind, options, minimum) of a pydantic field annotation."""
    t = _strip_annotated(annotation)
    inner_meta = list(metadata)
    if typing.get_origin(annotation) is typing.Annotated:
        inner_meta += list(getattr(annotation, "__metadata__", ()))
    members = typing.get_args(t) if typing.get_origin(t) in (Union, types.UnionType) else (t,)
    optional = type(None) in members
    rest = [m for m in members if m is not type(None)]
    stripped = [_strip_annotated(m) for m in rest]
    if len(rest) == 1:
        base = stripped[0]
        meta = inner_meta + list(getattr(rest[0], "__metadata__", ()))
        if base is bool:
            return ("choice", [None, True, False], None) if optional else ("bool", [], None)
        if base is int:
            return ("optint" if optional else "int"), [], _bound(meta)
        if base is float and not optional:
            return "float", [], _bound(meta)
        if base is str and not optional:
            return "str", [], None
        if typing.get_origin(base) is Literal:
            return "choice", list(typing.get_args(base)) + ([None] if optional else []), None
        kinds = _kind_model(base)
        if kinds:
            return "choice", kinds + ([None] if optional else []), None
    if rest and all(s is bool or typing.get_origin(s) is Literal for s in stripped):
        options: list[Any] = []
        for s in stripped:
            options += [True, False] if s is bool else list(typing.get_args(s))
        return "choice", options + ([None] if optional else []), None
    return "yaml", [], None


def _choice_value(value: Any, options: list[Any]) -> Any:
    """An options-model value (Norm(kind='batch'), {'kind': ...}) as its kind name."""
    if hasattr(value, "kind"):
        value = value.kind
    elif isinstance(value, dict) and "kind" in value:
        value = value["kind"]
    return value if value in options else options[0]


def palette_fields(op: str, spec: compiler.Spec | None = None) -> list[FormField]:
    """The form of a built-in block (from its pydantic model; first values from its registry
    examples) or of a user block of `spec` (from its `params:`; first values from its last
    use in the spec)."""
    from compiler.blocks import registry
    from pydantic_core import PydanticUndefined

    if spec is not None and op in spec.blocks:
        return _user_block_fields(op, spec)
    cls = registry.get(op)
    if cls is None:
        raise KeyError(op)
    example = dict(cls.examples[0][0]) if getattr(cls, "examples", None) else {}
    fields = []
    for name, info in cls.model_fields.items():
        if name == "op":
            continue
        kind, options, minimum = classify(info.annotation, info.metadata)
        required = info.is_required()
        default = None if info.default is PydanticUndefined else info.default
        initial = example.get(name, default)
        if kind == "choice":
            default = _choice_value(default, options) if not required else None
            initial = _choice_value(initial, options)
        elif kind in ("int", "float") and initial is None:
            initial = minimum if minimum is not None else (1 if kind == "int" else 0.0)
        elif kind == "yaml":
            default = _jsonable(default)
            initial = _yaml_text(initial)
        elif kind in ("int", "float", "optint", "bool", "str"):
            default = _jsonable(default)
        fields.append(FormField(name, kind, default, initial, required, options,
                                (info.description or "").strip(), minimum))
    return fields


_TYPE_NAMES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "any": "yaml", "list": "yaml"}


def _user_block_fields(op: str, spec: compiler.Spec) -> list[FormField]:
    definition = spec.blocks[op]
    last_use: dict[str, Any] = {}
    for group in spec.groups.values():
        if group.kind == "user" and group.op == op and isinstance(group.block, dict):
            last_use = group.block
    fields = []
    for name, declared in definition.params.items():
        required = isinstance(declared, str) and declared in _TYPE_NAMES
        if required:
            kind, default = _TYPE_NAMES[declared], None
        else:
            default = declared
            kind = ("bool" if isinstance(declared, bool) else "int" if isinstance(declared, int)
                    else "float" if isinstance(declared, float) else "str" if isinstance(declared, str) else "yaml")
        initial = last_use.get(name, default)
        if kind == "int" and not isinstance(initial, int):
            initial = 1
        elif kind == "float" and not isinstance(initial, (int, float)):
            initial = 0.0
        elif kind == "bool":
            initial = bool(initial)
        elif kind == "str":
            initial = "" if initial is None else str(initial)
        elif kind == "yaml":
            initial = _yaml_text(initial)
        fields.append(FormField(name, kind, default, initial, required,
                                help=f"{declared}" if required else f"default {default!r}"))
    return fields


def read_value(text: str) -> Any:
    """One YAML value typed in a form, read as the compiler reads spec files (YAML 1.2
    core: `yes` is text, `1e-5` a float); SpecError on a syntax error."""
    from compiler.source import parse

    return parse(f"v: {text}").data["v"]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def collect_args(fields: list[FormField], values: dict[str, Any]) -> dict[str, Any]:
    """Form values -> the node's arguments: required ones, and those that differ from the
    default. YAML fields are parsed (ValueError names the field on a syntax error)."""
    args: dict[str, Any] = {}
    for f in fields:
        value = values.get(f.name, f.initial)
        if f.kind == "yaml":
            source = (value or "").strip()
            if not source:
                if f.required:
                    raise ValueError(f"{f.name}: a value is required")
                continue
            try:
                value = read_value(source)
            except SpecError as exc:
                raise ValueError(f"{f.name}: not valid YAML ({exc.first.message})") from None
        elif f.kind == "int" or (f.kind == "optint" and value is not None):
            value = int(value)
        elif f.kind == "float":
            value = float(value)
        if f.required or not _same(value, f.default):
            args[f.name] = value
    return args


def block_doc(op: str, spec: compiler.Spec | None = None) -> str:
    """One paragraph about a block for the palette: the module docstring's first paragraph,
    or a user block's description."""
    from compiler.blocks import registry

    if spec is not None and op in spec.blocks:
        definition = spec.blocks[op]
        return definition.description or f"user block with params {definition.params}"
    cls = registry.get(op)
    module = inspect.getmodule(cls)
    text = inspect.getdoc(module) or inspect.getdoc(cls) or ""
    return text.split("\n\n")[0].replace("\n", " ")


def palette_ops(spec: compiler.Spec | None) -> list[str]:
    """Built-in ops (sorted), then the spec's user blocks."""
    from compiler.blocks import registry

    return registry.names() + sorted(spec.blocks if spec is not None else [])


# ------------------------------------------------------------------------------ vars


def parse_var(text: str) -> Any:
    """A var typed as text, read as a YAML scalar (as `--var NAME=VALUE` does)."""
    if not text.strip():
        return text
    try:
        value = read_value(text)
    except SpecError:
        return text
    return value if isinstance(value, (int, float, bool, str)) or value is None else text


def var_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float" if math.isfinite(value) else "text"
    return "text"


def overrides(base: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The vars whose current value differs from the text's (type-aware: 1.0 vs 1 differ)."""
    return {k: v for k, v in current.items()
            if k in base and (v != base[k] or type(v) is not type(base[k]))}


# ------------------------------------------------------------------------------ per-session state


class TrainJob:
    """The slot for a background training run of one browser session.

    The trainer (compiler.train, to come) plugs in through `start(target, ...)`: `target` runs
    in a daemon thread as ``target(*args, job=self, **kwargs)`` and may call
    `job.report(**event)` (progress: epoch, step, loss, metrics...), check
    `job.stop_requested` to stop early, and set `job.weights_path` (a safetensors file) and
    `job.run_dir` when it has written them; its return value lands in `job.result`, an
    exception in `job.error`. The Train tab reads `events()`; the Export tab offers
    `weights_path` for download. No Streamlit call may happen in the thread.
    """

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._events: "queue.SimpleQueue[dict]" = queue.SimpleQueue()
        self._log: list[dict] = []
        self._stop = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.weights_path: Path | None = None
        self.run_dir: Path | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.label: str = ""
        self.last_seen: float = time.time()
        self.heartbeat_timeout: float = 30.0
        """Seconds without a beat() (the Train tab's fragment) after which should_stop() is true:
        a closed browser tab stops its run instead of leaving a thread training forever."""

    def beat(self) -> None:
        self.last_seen = time.time()

    def should_stop(self) -> bool:
        """Polled by the trainer every step: Stop pressed, or the page stopped beating."""
        return self._stop.is_set() or time.time() - self.last_seen > self.heartbeat_timeout

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def state(self) -> str:
        if self._thread is None:
            return "idle"
        if self.running:
            return "stopping" if self.stop_requested else "running"
        if self.error is not None:
            from compiler.train import TrainingInterrupted

            return "stopped" if isinstance(self.error, TrainingInterrupted) else "failed"
        return "stopped" if self.stop_requested else "done"

    def start(self, target: Callable[..., Any], *args, label: str = "", **kwargs) -> None:
        if self.running:
            raise RuntimeError("a run is already in progress in this session")
        self._stop.clear()
        self._log.clear()
        self.result = self.error = None
        self.weights_path = self.run_dir = None
        self.label = label
        self.started_at, self.finished_at = time.time(), None
        self.last_seen = time.time()

        def run():
            try:
                self.result = target(*args, job=self, **kwargs)
            except BaseException as exc:  # reported in the Train tab
                self.error = exc
            finally:
                self.finished_at = time.time()

        self._thread = threading.Thread(target=run, name=f"blockgraph-train-{label or 'run'}", daemon=True)
        self._thread.start()

    def report(self, **event: Any) -> None:
        """Called by the worker thread: one progress event (thread-safe)."""
        self._events.put({"time": time.time(), **event})

    def events(self) -> list[dict]:
        """Every event reported so far (called from the page script)."""
        while True:
            try:
                self._log.append(self._events.get_nowait())
            except queue.Empty:
                return self._log

    def cancel(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


@dataclass
class DesignerSession:
    """Everything the designer keeps for one browser session (st.session_state["designer"]).
    The text itself lives in st.session_state["yaml"] (the editor widget's key)."""

    file: str
    """Path the text came from or will be saved to (problems and `extends:` resolve against it)."""
    saved_text: str
    """The text as last opened or saved (to tell whether there are unsaved edits)."""
    source: str = ""
    """How it was opened: 'file', 'zoo', 'template', 'upload'."""
    last_good: View | None = None
    """The last view without errors: shown while the text is invalid."""
    base_vars: dict[str, Any] = field(default_factory=dict)
    """The vars as the text (last valid) defines them."""
    bound_vars: dict[str, str] = field(default_factory=dict)
    """Vars bound to the training dataset (name -> fact), from the last valid text."""
    var_widgets: dict[str, tuple] = field(default_factory=dict)
    """Var name -> the (type, value) its widget was last reset to."""
    messages: list[tuple[str, str]] = field(default_factory=list)
    """(level, text) shown once at the next run: success, info, warning, error."""
    train: TrainJob = field(default_factory=TrainJob)
    """The training slot (see TrainJob)."""
    sweep: TrainJob = field(default_factory=TrainJob)
    """The Sweep tab's slot: one thread training the values of a sweep in turn (ui/sweep.py)."""

    @classmethod
    def open_path(cls, path: Path, source: str = "file") -> tuple["DesignerSession", str]:
        text = Path(path).read_text()
        return cls(str(Path(path).resolve()), text, source), text

    def reopen(self, file: str, text: str, source: str) -> None:
        """Point the session at another text: forget var state and the last good view."""
        self.file, self.saved_text, self.source = file, text, source
        self.last_good = None
        self.base_vars, self.bound_vars = {}, {}
        self.var_widgets = {}

    def flash(self, level: str, text: str) -> None:
        self.messages.append((level, text))

    def take_messages(self) -> list[tuple[str, str]]:
        out, self.messages = self.messages, []
        return out

    @property
    def display_name(self) -> str:
        path = Path(self.file)
        try:
            return str(path.relative_to(ROOT))
        except ValueError:
            return str(path)


def outside_workspace(target: Path, roots) -> bool:
    """True when the resolved `target` lies in none of `roots` (the repository, the working
    folder): the designer's Save must not write wherever a typed path (``../..``) points."""
    target = Path(target).resolve()
    return not any(target.is_relative_to(Path(root).resolve()) for root in roots)


def save_roots(repository: Path) -> tuple[Path, ...]:
    """Where Save may write: the repository, the working folder and the system's temporary
    folder (scratch space the user owns anyway); never a typed path that climbs out of them."""
    import tempfile

    return (Path(repository), Path.cwd(), Path(tempfile.gettempdir()))


def save_text(path: str, text: str) -> Path:
    """Write the text atomically (a temporary file next to it, then a rename)."""
    target = Path(path).expanduser()
    if target.suffix not in (".yaml", ".yml"):
        raise ValueError("the file name must end in .yaml or .yml")
    if not target.parent.is_dir():
        raise ValueError(f"no such folder: {target.parent}")
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(target)
    return target
