"""Weight import: another implementation's tensors onto a compiled spec, paired by structure.

Names never line up (`layer1.0.conv1.conv.weight` here, `layer1.0.conv1.weight` in
torchvision, `stages.0.blocks.0.conv1.conv.weight` elsewhere), so tensors are paired by the
order in which the network *uses* them: both models run once on PyTorch's meta device (no
memory, no arithmetic) with a pre-hook on every module, and each module's own parameters and
buffers are listed when it is first entered. The two lists are aligned on (kind, shape,
floating or not); any pair whose shapes disagree refuses the import with both names, and every
tensor left over on either side is reported (and refused too when `strict`). Registration order
is tried as well, and the better of the two alignments wins, so a model whose modules are
registered out of execution order still imports.

Sources: an `nn.Module`, a state_dict, a file (`.safetensors`, or `.pt`/`.pth` read with
`torch.load(weights_only=True)`), or a string naming a constructor: `torchvision:NAME[:WEIGHTS]`,
`timm:NAME`, or a spec's own `reference:` form (`torchvision.models.NAME(k=v)`, `timm NAME`).
A bare state_dict carries no execution order; when its names are those of a constructible
reference (the spec's `reference:` by default) it is loaded into that model by name first, so
the structural pairing still sees the order the network runs in.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

Shape = tuple[int, ...]


class WeightImportError(ValueError):
    """The source does not fit the module; `report` says which tensors disagree or are left over."""

    def __init__(self, message: str, report: "ImportReport | None" = None):
        super().__init__(message)
        self.report = report


@dataclass
class Tensor:
    """One parameter or buffer, with what the pairing compares."""

    name: str
    shape: Shape
    kind: str  # "parameter", "buffer" or "tensor" (a state_dict entry of unknown kind)
    floating: bool
    executed: bool = True

    def signature(self, with_kind: bool) -> tuple:
        return (self.kind if with_kind else "", self.shape, self.floating)

    def describe(self) -> str:
        return f"{self.name} {list(self.shape)}"


@dataclass
class ImportReport:
    """What `import_weights` paired, and what it could not."""

    source: str
    order: str  # how the tensors were ordered: "execution" or "registration" (or "name")
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (ours, source's)
    missing: list[str] = field(default_factory=list)  # ours, given nothing
    unexpected: list[str] = field(default_factory=list)  # the source's, used nowhere
    mismatched: list[tuple[str, Shape, str, Shape]] = field(default_factory=list)
    loaded: bool = False

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def problems(self, limit: int = 20) -> list[str]:
        lines = []
        if self.mismatched:
            lines.append(f"{len(self.mismatched)} tensor(s) disagree in shape (ours vs source):")
            lines += [f"  {a} {list(sa)} vs {b} {list(sb)}" for a, sa, b, sb in self.mismatched[:limit]]
        if self.missing:
            lines.append(f"{len(self.missing)} tensor(s) of the module got no value from the source:")
            lines += [f"  {n}" for n in self.missing[:limit]]
        if self.unexpected:
            lines.append(f"{len(self.unexpected)} tensor(s) of the source were left unmatched:")
            lines += [f"  {n}" for n in self.unexpected[:limit]]
        for group in (self.mismatched, self.missing, self.unexpected):
            if len(group) > limit:
                lines.append(f"  ... and {len(group) - limit} more")
        return lines

    def __str__(self) -> str:
        head = (f"{self.source}: {len(self.pairs)} tensors paired by {self.order} order"
                + ("" if self.loaded else " (nothing loaded)"))
        return "\n".join([head, *self.problems()])


# -- sources ----------------------------------------------------------------------------------------

def _parse_kwargs(text: str) -> dict[str, Any]:
    """`a=1, b=True, c=x` -> values read as YAML scalars (never evaluated)."""
    import yaml

    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise WeightImportError(f"expected NAME=VALUE in the constructor arguments, got {part!r}")
        value = value.strip()
        parsed = yaml.safe_load({"True": "true", "False": "false", "None": "null"}.get(value, value))
        out[key.strip()] = parsed
    return out


def construct(reference: str, device: str | torch.device | None = None) -> nn.Module:
    """Build the model a source string names: `torchvision:NAME[:WEIGHTS]`, `timm:NAME`, or a
    spec's `reference:` form (`torchvision.models.NAME(k=v, ...)`, `timm NAME`). Weights are
    random (torchvision `weights=None`, timm `pretrained=False`) unless a torchvision weights
    enum is named, which downloads them (internet needed)."""
    text = reference.strip()
    m = (re.fullmatch(r"torchvision(?::|\.models\.)(\w+)(?:\((.*)\))?(?::(\w+(?:\.\w+)?))?", text)
         or re.fullmatch(r"tv:(\w+)(?:\((.*)\))?(?::(\w+(?:\.\w+)?))?", text))
    if m:
        import torchvision

        name, kwargs, weights = m.group(1), _parse_kwargs(m.group(2) or ""), m.group(3)
        if name not in torchvision.models.list_models():
            raise WeightImportError(f"torchvision has no model {name!r}")
        with torch.device(device or "cpu"):
            try:
                return torchvision.models.get_model(name, weights=weights, **kwargs)
            except (ValueError, KeyError, TypeError) as exc:
                raise WeightImportError(f"cannot build torchvision {name}: {exc}") from None
            except OSError as exc:  # a weights download without internet
                raise WeightImportError(f"cannot fetch torchvision {name} weights {weights}: {exc}") from None
    m = re.fullmatch(r"timm[: ](\w+(?:\.\w+)?)(?:\((.*)\))?", text)
    if m:
        try:
            import timm
        except ImportError:
            raise WeightImportError("timm is not installed (pip install timm)") from None
        kwargs = _parse_kwargs(m.group(2) or "")
        kwargs.setdefault("pretrained", False)
        with torch.device(device or "cpu"):
            try:
                return timm.create_model(m.group(1), **kwargs)
            except RuntimeError as exc:
                raise WeightImportError(f"cannot build timm {m.group(1)}: {exc}") from None
    raise WeightImportError(
        f"unknown weight source {reference!r}: expected a .safetensors/.pt/.pth file, "
        "torchvision:NAME[:WEIGHTS], timm:NAME, or a spec's reference form")


def _tensor_dict(obj: Any, where: str) -> dict[str, torch.Tensor]:
    """A state_dict, unwrapped from the usual checkpoint envelopes ({"state_dict": ...})."""
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for key in ("state_dict", "model_state_dict", "model", "module", "net", "weights"):
            if isinstance(obj.get(key), Mapping):
                return _tensor_dict(obj[key], where)
    raise WeightImportError(f"{where}: not a state_dict (a mapping of names to tensors)")


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    """A weights file's tensors and, when the file records it, their original order."""
    path = Path(path)
    if not path.is_file():
        raise WeightImportError(f"no such weights file: {path}")
    if path.suffix == ".safetensors":
        import json

        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path))
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as exc:  # safetensors raises its own error types
            raise WeightImportError(f"{path}: not a readable safetensors file ({exc})") from None
        order = json.loads(meta["order"]) if "order" in meta else None
        return tensors, order
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, unsafe globals refused by weights_only
        raise WeightImportError(f"{path}: cannot read it with torch.load(weights_only=True): {exc}") from None
    return _tensor_dict(obj, str(path)), None


def save_state_dict(module: nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write a module's state_dict as safetensors, recording the tensors' order in the metadata
    (safetensors sorts its entries, and pairing by structure needs the order back)."""
    import json

    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt", "order": json.dumps(list(state)), **(metadata or {})})


# -- ordering -----------------------------------------------------------------------------------

def _persistent(module: nn.Module) -> Iterable[tuple[str, torch.Tensor, str]]:
    for name, p in module._parameters.items():
        if p is not None:
            yield name, p, "parameter"
    for name, b in module._buffers.items():
        if b is not None and name not in module._non_persistent_buffers_set:
            yield name, b, "buffer"


def _registration_order(module: nn.Module) -> list[Tensor]:
    out, seen = [], set()
    for prefix, sub in module.named_modules(remove_duplicate=False):
        for name, t, kind in _persistent(sub):
            full = f"{prefix}.{name}" if prefix else name
            if full not in seen:
                seen.add(full)
                out.append(Tensor(full, tuple(t.shape), kind, t.is_floating_point()))
    return out


def _execution_order(module: nn.Module, example: tuple[torch.Tensor, ...]) -> list[Tensor] | None:
    """Tensors listed in the order their modules are first entered by a forward pass on the
    meta device (weights swapped for meta tensors, so nothing is computed or allocated).
    None when the model cannot run that way."""
    from torch.func import functional_call

    registered = _registration_order(module)
    by_module: dict[str, list[Tensor]] = {}
    for t in registered:
        by_module.setdefault(t.name.rpartition(".")[0], []).append(t)
    entered: list[str] = []
    hooks = []
    for prefix, sub in module.named_modules():
        if prefix in by_module:
            hooks.append(sub.register_forward_pre_hook(
                lambda _m, _a, prefix=prefix: entered.append(prefix) if prefix not in entered else None))
    meta = {name: torch.empty_like(t, device="meta")
            for name, t in list(module.named_parameters()) + list(module.named_buffers())}
    was_training = module.training
    try:
        # training mode: heads that run only while training (GoogLeNet's auxiliary
        # classifiers) are entered too; eval mode if the model cannot train on this input
        for training in (True, False):
            entered.clear()
            module.train(training)
            try:
                with torch.no_grad():
                    functional_call(module, meta, tuple(x.to("meta") for x in example))
                break
            except Exception:  # data-dependent control flow, ops without meta kernels
                if not training:
                    return None
    finally:
        module.train(was_training)
        for h in hooks:
            h.remove()
    order = [t for prefix in entered for t in by_module[prefix]]
    listed = {t.name for t in order}
    order += [Tensor(t.name, t.shape, t.kind, t.floating, executed=False) for t in registered if t.name not in listed]
    return order


def _align(ours: list[Tensor], theirs: list[Tensor], with_kind: bool, report: ImportReport) -> None:
    """Pair two ordered lists: equal stretches pair up, differing stretches are shape
    mismatches (both sides present) or leftovers (one side only)."""
    a = [t.signature(with_kind) for t in ours]
    b = [t.signature(with_kind) for t in theirs]
    if a == b:
        report.pairs = [(x.name, y.name) for x, y in zip(ours, theirs)]
        return
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            report.pairs += [(x.name, y.name) for x, y in zip(ours[i1:i2], theirs[j1:j2])]
            continue
        left, right = ours[i1:i2], theirs[j1:j2]
        for x, y in zip(left, right):
            report.mismatched.append((x.name, x.shape, y.name, y.shape))
        report.missing += [x.name for x in left[len(right):]]
        report.unexpected += [y.name for y in right[len(left):]]


def _score(report: ImportReport) -> tuple[int, int]:
    return (len(report.mismatched), len(report.missing) + len(report.unexpected))


# -- the import ---------------------------------------------------------------------------------

def example_inputs(module: nn.Module, inputs: Any = None) -> tuple[torch.Tensor, ...] | None:
    """Meta tensors shaped like the module's inputs: `inputs` (shapes or tensors), else the
    spec recorded on a compiled module (`module.meta["blockgraph"]`)."""
    if inputs is None:
        meta = getattr(module, "meta", {}).get("blockgraph", {}) if isinstance(getattr(module, "meta", None), dict) else {}
        if not meta.get("file"):
            return None
        from .sample_inputs import meta_batch, sample_inputs
        from .spec import load

        try:
            inputs = list(meta_batch(sample_inputs(load(meta["file"])), 2))  # 2: batch norm trains on it
        except Exception:
            return None
    if isinstance(inputs, torch.Tensor):
        inputs = [inputs]
    # a tensor keeps its dtype (token ids stay int64); a bare shape stands for float32 values
    return tuple(x.to("meta") if isinstance(x, torch.Tensor) else torch.empty(*x, device="meta") for x in inputs)


def _spec_reference(module: nn.Module) -> str | None:
    meta = getattr(module, "meta", None)
    info = meta.get("blockgraph", {}) if isinstance(meta, dict) else {}
    if info.get("reference"):
        return info["reference"]
    if info.get("file"):
        from .spec import load

        try:
            return load(info["file"]).reference
        except Exception:
            return None
    return None


def import_weights(module: nn.Module, source: Any, *, strict: bool = True, inputs: Any = None,
                   reference: Any = None, _label: str | None = None) -> ImportReport:
    """Copy `source`'s tensors into `module`'s parameters and buffers, paired by structure.

    `source`: an nn.Module, a state_dict, a `.safetensors`/`.pt`/`.pth` path, or a constructor
    string (`torchvision:resnet50[:IMAGENET1K_V2]`, `timm:seresnet50`, a spec's `reference:`).
    `inputs`: input shapes (with batch) or tensors for the tracing pass; by default the spec's.
    `reference`: for a bare state_dict, the model (or constructor string) whose names it uses,
    so it can be ordered by execution; by default the spec's `reference:`.

    Raises WeightImportError, with the report attached, when shapes disagree or (strict) when
    any tensor of either side is left unmatched; nothing is copied then.
    """
    label = _label or (source if isinstance(source, str) else type(source).__name__)
    if isinstance(source, (str, os.PathLike)) and (Path(source).suffix in (".safetensors", ".pt", ".pth", ".bin")
                                                  or Path(source).is_file()):
        label = _label or str(source)
        state, order = read_state_dict(source)
        source = {k: state[k] for k in order if k in state} if order else state
    elif isinstance(source, str):
        source = construct(source)
    ours_state = module.state_dict(keep_vars=True)
    if isinstance(source, Mapping):
        source = _tensor_dict(source, label)
        if list(source) == list(ours_state) or set(source) == set(ours_state):
            return _load_by_name(module, source, label, strict)
        ref = reference if reference is not None else _spec_reference(module)
        if ref is not None:
            ref_module = construct(ref, device="meta") if isinstance(ref, str) else ref
            if set(ref_module.state_dict()) == set(source):
                ref_module = ref_module.to_empty(device="cpu") if _on_meta(ref_module) else ref_module
                ref_module.load_state_dict(source)
                return import_weights(module, ref_module, strict=strict, inputs=inputs,
                                      _label=f"{label} (as {ref if isinstance(ref, str) else type(ref).__name__})")
        example = example_inputs(module, inputs)
        mine_exec = _execution_order(module, example) if example is not None else None
        theirs = _state_list(source)
        best = None
        for mine, order in ((mine_exec, "execution"), (_registration_order(module), "registration")):
            if mine is None:
                continue
            report = ImportReport(label, f"{order} (ours) / stored (source)")
            _align(mine, theirs, False, report)
            if best is None or _score(report) < _score(best):
                best = report
        return _apply(module, ours_state, source, best, strict)
    if not isinstance(source, nn.Module):
        raise WeightImportError(f"cannot import weights from a {type(source).__name__}")
    theirs_state = source.state_dict(keep_vars=True)
    example = example_inputs(module, inputs)
    candidates = []
    if example is not None:
        mine, theirs = _execution_order(module, example), _execution_order(source, example)
        if mine is not None and theirs is not None:
            candidates.append((mine, theirs, "execution"))
    candidates.append((_registration_order(module), _registration_order(source), "registration"))
    best = None
    for mine, theirs, order in candidates:
        report = ImportReport(label, order)
        _align(mine, theirs, True, report)
        if best is None or _score(report) < _score(best):
            best = report
        if report.complete:
            break
    return _apply(module, ours_state, theirs_state, best, strict)


def _on_meta(module: nn.Module) -> bool:
    return any(t.device.type == "meta" for t in module.state_dict().values())


def _state_list(state: Mapping[str, torch.Tensor]) -> list[Tensor]:
    return [Tensor(k, tuple(v.shape), "tensor", v.is_floating_point()) for k, v in state.items()]


def _load_by_name(module, source, label, strict) -> ImportReport:
    """A state_dict saved from this very spec (same names): load it as it is, shapes checked."""
    ours = module.state_dict(keep_vars=True)
    report = ImportReport(label, "name")
    for name, t in ours.items():
        if name not in source:
            report.missing.append(name)
        elif tuple(source[name].shape) != tuple(t.shape):
            report.mismatched.append((name, tuple(t.shape), name, tuple(source[name].shape)))
        else:
            report.pairs.append((name, name))
    report.unexpected = [n for n in source if n not in ours]
    return _apply(module, ours, source, report, strict)


def _apply(module, ours_state, theirs_state, report: ImportReport, strict: bool) -> ImportReport:
    if report.mismatched or (strict and not report.complete):
        why = "shapes disagree" if report.mismatched else "tensors left unmatched (strict=False, or --no-strict, imports the rest)"
        raise WeightImportError(f"cannot import weights from {report.source}: {why}\n" + "\n".join(report.problems()),
                                report)
    with torch.no_grad():
        for mine, theirs in report.pairs:
            ours_state[mine].copy_(theirs_state[theirs].detach().to(ours_state[mine].device))
    report.loaded = True
    return report
