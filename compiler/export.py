"""A compiled spec written out for deployment: ONNX, TorchScript, a `torch.export` program, or a
standalone Python file that needs only torch. The batch dimension stays dynamic in every format.

`export` builds (or takes) the module, loads weights if given, writes the file, then by default
reloads it and checks its outputs against the module's at two batch sizes (onnxruntime for
ONNX), so a file that does not reproduce the model is never reported as written.

ONNX uses the torch.export-based exporter (`torch.onnx.export(dynamo=True)`), PyTorch's
supported path. The legacy TorchScript-based exporter (`exporter="legacy"`) is 3-8x faster
here (resnet50 1.3 s vs 5-6 s, densenet201 2.5 s vs 21 s) but deprecated and due for removal.

The Python file is generated from the fx graph: the module tree becomes `__init__` (each
standard layer rebuilt from its constructor arguments, checked against the original), the
fx-generated code becomes `forward`. Blocks with their own `forward` are traced through first,
so only torch.nn layers and torch functions remain; the state_dict keys are unchanged.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import torch
import torch.fx
from torch import nn

from .sample_inputs import SampleInput, meta_batch, sample_batch, sample_inputs

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "exported": ".pt2", "python": ".py"}


class ExportError(RuntimeError):
    """The module cannot be written in the format, or the written file does not reproduce it."""


# -- the module and its inputs -------------------------------------------------------------------

def _module_and_shapes(spec_or_module: Any, weights: Any, inputs: Any) -> tuple[nn.Module, list[SampleInput],
                                                                                 list[str], list[str], str]:
    """(module in eval mode, what each input takes, input names, output names, class name)."""
    from .fx import build
    from .spec import Spec, load

    if isinstance(spec_or_module, nn.Module):
        module = spec_or_module
        info = module.meta.get("blockgraph", {}) if isinstance(getattr(module, "meta", None), dict) else {}
        spec = load(info["file"]) if info.get("file") and inputs is None else None
    else:
        spec = spec_or_module if isinstance(spec_or_module, Spec) else load(spec_or_module)
        module = build(spec)
    if inputs is not None:
        bounds = [x.id_bound for x in sample_inputs(spec)] if spec is not None else []
        shapes = [SampleInput(shape=tuple(s), id_bound=bounds[i] if i < len(bounds) else None)
                  for i, s in enumerate(inputs)]
        names = [f"input{i}" for i in range(len(shapes))] if spec is None else list(spec.inputs)
    elif spec is not None:
        shapes, names = sample_inputs(spec), list(spec.inputs)
    else:
        raise ExportError("give inputs=[per-sample shape, ...] to export a module not built from a spec file")
    outputs = list(spec.outputs) if spec is not None else []
    if weights is not None:
        from .weights import import_weights

        import_weights(module, weights, inputs=list(meta_batch(shapes, 2)))
    if isinstance(module, torch.fx.GraphModule):
        placeholders = [n.name for n in module.graph.nodes if n.op == "placeholder"]
        if len(placeholders) == len(shapes):
            names = placeholders
    n_out = _count_outputs(module, shapes)
    if len(outputs) != n_out:
        outputs = ["output"] if n_out == 1 else [f"output{i}" for i in range(n_out)]
    return module.eval(), shapes, names, outputs, type(module).__name__


def _count_outputs(module: nn.Module, shapes) -> int:
    if isinstance(module, torch.fx.GraphModule):
        out = next(n for n in module.graph.nodes if n.op == "output").args[0]
        return len(out) if isinstance(out, (tuple, list)) else 1
    return 1


def _example(shapes: list[SampleInput | tuple[int, ...]], batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A batch for the module; a bare shape (a caller of `check`) stands for float32 values."""
    return sample_batch([s if isinstance(s, SampleInput) else SampleInput(shape=tuple(s)) for s in shapes], batch, seed)


def _as_tuple(out) -> tuple[torch.Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


# -- the formats -------------------------------------------------------------------------------------

def _onnx(module, shapes, names, outputs, out: Path, batch: int, exporter: str, opset: int | None) -> None:
    import warnings

    args = _example(shapes, batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            dim = torch.export.Dim("batch", min=1, max=65536)
            program = torch.onnx.export(module, args, dynamo=True, input_names=names, output_names=outputs,
                                        dynamic_shapes=tuple({0: dim} for _ in shapes), opset_version=opset,
                                        verbose=False)
            program.save(str(out))
        elif exporter == "legacy":
            axes = {n: {0: "batch"} for n in [*names, *outputs]}
            torch.onnx.export(module, args, str(out), dynamo=False, input_names=names, output_names=outputs,
                              dynamic_axes=axes, opset_version=opset or 17)
        else:
            raise ExportError(f"unknown ONNX exporter {exporter!r} (dynamo or legacy)")


def _torchscript(module, shapes, out: Path, batch: int) -> None:
    import warnings

    with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.export (still supported)
        warnings.simplefilter("ignore")
        _script_or_trace(module, shapes, out, batch)


def _script_or_trace(module, shapes, out: Path, batch: int) -> None:
    try:
        scripted = torch.jit.script(module)
    except Exception:  # not scriptable: trace it (the batch stays dynamic unless the code fixes it)
        with torch.no_grad():
            scripted = torch.jit.trace(module, _example(shapes, batch), check_trace=False)
    torch.jit.save(scripted, str(out))


def _exported(module, shapes, out: Path, batch: int) -> None:
    dim = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(module, _example(shapes, batch), dynamic_shapes=tuple({0: dim} for _ in shapes))
    torch.export.save(program, str(out))


def load_exported(path: str | os.PathLike, format: str | None = None):
    """A callable for a written file (for checks and tests): ONNX through onnxruntime (numpy in,
    tensors out), TorchScript, a torch.export program, or the Python file's class (weights
    are not part of the Python file: load them with load_state_dict)."""
    path = Path(path)
    format = format or {v: k for k, v in FORMATS.items()}.get(path.suffix)
    if format == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feeds = [i.name for i in session.get_inputs()]

        def run(*xs):
            results = session.run(None, {n: x.detach().cpu().numpy() for n, x in zip(feeds, xs)})
            results = [torch.from_numpy(r) for r in results]
            return results[0] if len(results) == 1 else tuple(results)

        return run
    if format == "torchscript":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.load(str(path)).eval()
    if format == "exported":
        return torch.export.load(str(path)).module()
    if format == "python":
        import runpy

        namespace = runpy.run_path(str(path))
        return namespace[namespace["MODEL"]]
    raise ExportError(f"unknown format {format!r}")


def check(module: nn.Module, path, format: str, shapes, batches=(1, 3), tol: float = 1e-4) -> float:
    """Reload `path` and compare its outputs with the module's at each batch size; returns
    the worst error relative to the largest output, raising ExportError above `tol`."""
    loaded = load_exported(path, format)
    if format == "python":
        model = loaded()
        missing, unexpected = model.load_state_dict(module.state_dict(), strict=False)
        if missing or unexpected:
            raise ExportError(f"{path}: state_dict keys differ: missing {missing[:5]}, unexpected {unexpected[:5]}")
        loaded = model.eval()
    worst = 0.0
    for i, b in enumerate(batches):
        xs = _example(shapes, b, seed=100 + i)
        with torch.no_grad():
            expected = _as_tuple(module(*xs))
            got = _as_tuple(loaded(*xs))
        if len(got) != len(expected):
            raise ExportError(f"{path}: {len(got)} outputs, the module gives {len(expected)}")
        for e, g in zip(expected, got):
            if tuple(g.shape) != tuple(e.shape):
                raise ExportError(f"{path}: batch {b}: output shape {tuple(g.shape)}, the module gives {tuple(e.shape)}")
            scale = max(e.abs().max().item(), 1e-12)
            worst = max(worst, (g.float() - e.float()).abs().max().item() / scale)
    if not worst <= tol:
        raise ExportError(f"{path}: outputs differ from the module's by {worst:.2e} (relative), over {tol:g}")
    return worst


def export(spec_or_module: Any, format: str, out: str | os.PathLike, *, weights: Any = None, batch: int = 2,
           inputs: Any = None, exporter: str = "dynamo", opset: int | None = None, verify: bool = True) -> Path:
    """Write a spec (a Spec, path or YAML text, built here) or a compiled module as `format`:
    "onnx", "torchscript", "exported" (torch.export, .pt2) or "python" (standalone file).

    `weights`: anything compiler.import_weights reads (a blockgraph .safetensors loads by
    name). `batch`: the example batch used for tracing (the batch stays dynamic; 2 or more
    keeps torch.export from specialising on 1). `inputs`: per-sample input shapes, for a
    module not built from a spec file. `exporter`: "dynamo" (default) or "legacy" for ONNX.
    `verify`: reload the file and compare outputs at batches 1 and 3 (to 1e-4 relative).
    """
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}: choose from {', '.join(FORMATS)}")
    if batch < 1:
        raise ExportError("batch must be at least 1")
    module, shapes, names, outputs, class_name = _module_and_shapes(spec_or_module, weights, inputs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if format == "onnx":
            _onnx(module, shapes, names, outputs, out, batch, exporter, opset)
        elif format == "torchscript":
            _torchscript(module, shapes, out, batch)
        elif format == "exported":
            _exported(module, shapes, out, batch)
        else:
            out.write_text(python_source(module, shapes, class_name))
    if verify:
        check(module, out, format, shapes)
    return out


# -- the standalone Python file -------------------------------------------------------------------------

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _is_standard(module: nn.Module) -> bool:
    """A layer of torch.nn itself (nn.Conv2d ...), which the file can construct by name."""
    cls = type(module)
    return (cls.__module__.startswith("torch.nn.") and getattr(nn, cls.__name__, None) is cls
            and cls is not nn.Module and not issubclass(cls, _CONTAINERS))


class _StandardLeaves(torch.fx.Tracer):
    """Traces through every module that is not a torch.nn layer, so the graph calls only those."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return _is_standard(m)


def _flatten(module: nn.Module) -> torch.fx.GraphModule:
    if isinstance(module, torch.fx.GraphModule) and all(
            _is_standard(module.get_submodule(n.target)) for n in module.graph.nodes if n.op == "call_module"):
        return module
    graph = _StandardLeaves().trace(module)
    return torch.fx.GraphModule(module, graph, class_name=type(module).__name__)


def _literal(value: Any) -> str:
    """Python source for a constructor argument (no repr of arbitrary objects)."""
    if isinstance(value, float):
        if math.isinf(value):
            return 'float("inf")' if value > 0 else 'float("-inf")'
        if math.isnan(value):
            return 'float("nan")'
        return repr(value)
    if isinstance(value, (bool, int, str, type(None))):
        return repr(value)
    if isinstance(value, (tuple, list)):
        items = ", ".join(_literal(v) for v in value)
        return f"({items},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({items})" if isinstance(value, tuple) else f"[{items}]")
    if isinstance(value, torch.dtype):
        return str(value)
    raise ExportError(f"cannot write a constructor argument of type {type(value).__name__}")


def _public_state(module: nn.Module) -> dict[str, Any]:
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and k != "training" and not isinstance(v, torch.Tensor)}


def _constructor(module: nn.Module, path: str) -> str:
    """`nn.Conv2d(3, 64, kernel_size=(7, 7), ...)`: the layer's constructor arguments read back
    from its attributes, and checked by building it again and comparing every attribute."""
    cls = type(module)
    kwargs: dict[str, Any] = {}
    for name, param in _init_parameters(cls).items():
        if name in ("self", "device", "dtype") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name == "bias" and isinstance(getattr(module, "bias", None), (torch.Tensor, type(None))):
            value = getattr(module, "bias", None) is not None
        elif hasattr(module, name) and not isinstance(getattr(module, name), torch.Tensor):
            value = getattr(module, name)
        elif param.default is not param.empty:
            continue
        else:
            raise ExportError(f"{path}: cannot read the constructor argument {name!r} of nn.{cls.__name__}")
        if param.default is not param.empty and _same(value, param.default):
            continue
        kwargs[name] = value
    with torch.device("meta"):
        rebuilt = cls(**kwargs)
    if _public_state(rebuilt) != _public_state(module):
        differ = sorted(k for k in set(_public_state(rebuilt)) | set(_public_state(module))
                        if _public_state(rebuilt).get(k) != _public_state(module).get(k))
        raise ExportError(f"{path}: nn.{cls.__name__} cannot be rebuilt from its arguments (differs in {differ})")
    shapes = {n: tuple(t.shape) for n, t in module.state_dict().items()}
    if {n: tuple(t.shape) for n, t in rebuilt.state_dict().items()} != shapes:
        raise ExportError(f"{path}: nn.{cls.__name__} rebuilt with other tensors")
    args = ", ".join(f"{k}={_literal(v)}" for k, v in kwargs.items())
    return f"nn.{cls.__name__}({args})"


def _init_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The constructor's named parameters. nn.LSTM and nn.GRU take (*args, **kwargs) and hand
    them to nn.RNNBase after the `mode` they fix themselves: read those from nn.RNNBase."""
    for klass in cls.__mro__:
        params = inspect.signature(klass.__init__).parameters
        if not any(p.kind is p.VAR_POSITIONAL for p in params.values()):
            return {n: p for n, p in params.items() if not (klass is nn.RNNBase and n == "mode")}
    return {}


def _same(a: Any, b: Any) -> bool:
    """Equal to a default (an int default equals a tuple of it: stride=(1, 1) is stride=1)."""
    if isinstance(a, tuple) and isinstance(b, int) and not isinstance(b, bool):
        return all(type(v) is int and v == b for v in a)
    try:
        return type(a) is type(b) and a == b
    except Exception:
        return False


def _function_sources(pycode_globals: dict[str, Any]) -> list[str]:
    """Source of the plain functions the forward code calls beyond torch (e.g. a layout helper),
    each checked to need nothing but torch and builtins."""
    import builtins

    out = []
    allowed = {"torch", "math", "operator"}
    for alias, obj in pycode_globals.items():
        if alias in ("torch", "inf", "nan", "NoneType", "device", "fx_pytree", "pytree"):
            continue
        if inspect.isfunction(obj):
            code = obj.__code__
            foreign = [n for n in code.co_names if n in obj.__globals__ and n not in allowed
                       and not hasattr(builtins, n)]
            if foreign or code.co_freevars:
                raise ExportError(f"the forward calls {obj.__module__}.{obj.__qualname__}, which needs {foreign}: "
                                  "it cannot be written into a standalone file")
            source = textwrap.dedent(inspect.getsource(obj))
            out.append(source.rstrip() + ("" if alias == obj.__name__ else f"\n\n\n{alias} = {obj.__name__}"))
        elif inspect.isbuiltin(obj) and getattr(obj, "__module__", None) in ("_operator", "operator"):
            out.append(f"from operator import {obj.__name__} as {alias}")
        else:
            raise ExportError(f"the forward uses {alias} = {obj!r}, which a standalone file cannot import")
    return out


def python_source(module: nn.Module, shapes: list[SampleInput | tuple[int, ...]], class_name: str) -> str:
    """A Python file defining `class_name(nn.Module)` that needs only torch and takes the same
    state_dict as `module` (see the module docstring)."""
    flat = _flatten(module)
    class_name = re.sub(r"\W", "_", class_name) or "Model"
    used: set[str] = set()
    for node in flat.graph.nodes:
        if node.op in ("call_module", "get_attr"):
            parts = node.target.split(".")
            used.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    # every state_dict tensor must live in the file's module tree, used by forward or not
    for name in module.state_dict():
        parts = name.split(".")
        used.update(".".join(parts[:i]) for i in range(1, len(parts)))
    lines = []
    for path, sub in module.named_modules():
        if not path or path not in used:
            continue
        if _is_standard(sub):
            lines.append(f"        _put(self, {path!r}, {_constructor(sub, path)})")
            continue
        lines.append(f"        _put(self, {path!r}, nn.Module())")
        for name, t in sub._parameters.items():
            if t is not None:
                lines.append(f"        {_owner(path)}.register_parameter({name!r}, nn.Parameter(torch.empty("
                             f"{_literal(tuple(t.shape))}, dtype={t.dtype}), requires_grad={t.requires_grad}))")
        for name, t in sub._buffers.items():
            if t is None:
                continue
            if name in sub._non_persistent_buffers_set:
                raise ExportError(f"{path}.{name}: a non-persistent buffer has no place in the state_dict")
            lines.append(f"        {_owner(path)}.register_buffer({name!r}, torch.empty({_literal(tuple(t.shape))}, "
                         f"dtype={t.dtype}))")
    for name, t in list(module._parameters.items()) + list(module._buffers.items()):
        if t is not None:
            raise ExportError(f"{name}: a tensor on the root module is not supported in the Python export")
    code = flat.graph.python_code(root_module="self")
    helpers = _function_sources(code.globals)
    forward = textwrap.indent(code.src.strip("\n"), "    ")
    header = textwrap.dedent(f'''\
        """{class_name}: generated by blockgraph from its compiled graph; needs only torch.

        Usage:
            model = {class_name}()
            model.load_state_dict(state_dict)   # the compiled spec's state_dict, same keys
            model.eval()
            y = model(torch.randn(1, *INPUT_SHAPES[0]))   # any batch size
        """

        import torch
        from torch import nn

        INPUT_SHAPES = {_literal([tuple(getattr(s, "shape", s)) for s in shapes])}
        MODEL = {class_name!r}


        def _put(root, path, module):
            """Install `module` at the dotted `path` (parents first), as the compiled module has it."""
            *parents, leaf = path.split(".")
            for part in parents:
                root = root.get_submodule(part)
            root.add_module(leaf, module)
        ''')
    body = "\n".join(lines) if lines else "        pass"
    parts = [header, *("\n" + h + "\n" for h in helpers),
             f"\nclass {class_name}(nn.Module):\n    def __init__(self):\n        super().__init__()\n{body}\n\n"
             f"{forward}\n"]
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)


def _owner(path: str) -> str:
    return f"self.get_submodule({path!r})"


class _CallableModule(types.ModuleType):
    """Importing this module makes `compiler.export` name it instead of compiler's `export`
    function; calling the module calls `export`, so `compiler.export(...)` works either way
    (as compiler.train does)."""

    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
