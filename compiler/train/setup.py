"""Setting a run up, before its first step: the spec (given, or saved in the checkpoint being
resumed), the layered settings, the memory check and the run directory. Each a function of what
it needs; `loop` calls them in order (the dataset and the model: `data_setup`, `model_setup`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..budget import explicit_budget
from ..formatting import human_bytes
from . import checkpoint as ckpt
from .config import Source, TrainConfig, cli_source, file_source, spec_source
from .device import estimate_bytes, free_memory
from .outcomes import TrainError


@dataclass
class Request:
    """What `train(...)` was asked, before anything is loaded."""

    spec: Any = None
    """A path, YAML text or a loaded Spec (None when resuming)."""
    config: Any = None
    """A TrainConfig, a map or a YAML file of settings (or None)."""
    vars: dict[str, Any] | None = None
    resume: Path | None = None
    overrides: dict[str, Any] | None = None
    """Keyword options (epochs=3, ...), winning over everything else."""
    names: dict[str, str] | None = None
    """Option -> how the user wrote it (--epochs), for messages."""
    where: str = "<arguments>"


def document_text(spec) -> str:
    """The spec as one self-contained YAML document (`extends:` merged), for checkpoints."""
    import yaml

    from ..source import parse

    doc = getattr(spec, "document", None)
    if doc is None or not isinstance(doc.data, dict):
        return spec.text
    try:
        own = parse(spec.text).data
    except Exception:
        own = None
    if isinstance(own, dict) and "extends" not in own:
        return spec.text  # already self-contained: keep it as written (comments, lines)
    data = {k: v for k, v in doc.data.items() if k != "extends"}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def load_resumed_state(resume: Path, note) -> dict[str, Any]:
    """The checkpoint of the run being resumed (a fallback to the previous one is `note`d)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ckpt.CheckpointFallback)
            state = ckpt.load_checkpoint(resume)
    except ckpt.CheckpointError as exc:
        raise TrainError(str(exc)) from None
    if state.get("fallback"):
        note(state["fallback"])
    return state


def load_spec(request: Request, state: dict[str, Any] | None):
    """The spec to train: the one saved in `state` when resuming (a SPEC given as well must be
    that one), else the one requested."""
    from ..spec import Spec, load

    given_vars = dict(request.vars or {})
    if state is not None:
        from ..source import parse
        from ..spec import load_document

        saved = state["spec"]
        doc = parse(saved["document"], file=str(request.resume / "spec.yaml"))
        spec = load_document(doc, dict(saved.get("vars") or {}))
        if request.spec is not None:
            given = request.spec if isinstance(request.spec, Spec) else \
                load(request.spec, vars=given_vars or None)
            if document_text(given) != saved["document"] or (given_vars and given.vars != spec.vars):
                raise TrainError(f"{given.file} is not the spec the run in {request.resume} was started with "
                                 f"(that one is saved in the checkpoint): leave SPEC out to resume it")
        elif given_vars:
            raise TrainError("--var cannot change a resumed run's spec (its vars are saved in the checkpoint)")
        return spec
    if request.spec is None:
        raise TrainError("no spec to train: give a spec file (or --resume RUN_DIR)")
    if isinstance(request.spec, Spec):
        if given_vars:
            raise TrainError("vars= needs a path or YAML text, not a loaded Spec")
        return request.spec
    return load(request.spec, vars=given_vars or None)


def config_sources(request: Request, spec, state: dict[str, Any] | None) -> list[Source]:
    """The layers of settings, first to last (later ones win): the spec's `train:` section (or
    the checkpoint's settings when resuming), `config`, then the keyword options."""
    if state is not None:
        saved = {k: v for k, v in (state.get("config") or {}).items() if k in TrainConfig.model_fields}
        sources = [Source(saved, "file", None, ())]
    else:
        sources = [spec_source(spec)]
    if request.config is not None:
        if isinstance(request.config, TrainConfig):
            sources.append(cli_source(request.config.model_dump(exclude_unset=True), where="<config>"))
        elif isinstance(request.config, dict):
            sources.append(cli_source(request.config, where="<config>"))
        else:
            sources.append(file_source(request.config))
    sources.append(cli_source(dict(request.overrides or {}), dict(request.names or {}), request.where))
    return sources


def changed_settings(state: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """The settings a resumed run changes ("lr 0.1 -> 0.05"), for a note."""
    old = state.get("config") or {}
    return [f"{k} {old.get(k)!r} -> {v!r}" for k, v in cfg.model_dump().items()
            if k in old and old[k] != v and k != "run_dir"]


def check_memory(*, spec, analysis, cfg: TrainConfig, device, batch: int, local_world_size: int) -> None:
    """Raise TrainError when training at `batch` per process would not fit the device's free
    memory x memory_budget (or the explicit --max-memory budget)."""
    need, weights, acts = estimate_bytes(analysis)
    free, source = free_memory(device)
    try:  # --max-memory / $BLOCKGRAPH_MAX_MEMORY replace memory_budget x the free memory
        cap = explicit_budget()
    except ValueError as exc:
        raise TrainError(str(exc)) from None
    if free is None and cap is None:
        return
    sharing = local_world_size if device.type == "cpu" else 1
    budget = cap[0] if cap else free * cfg.memory_budget
    if need * sharing > budget:
        per = f" per process, x{sharing} processes" if sharing > 1 else ""
        limit = (f"the budget ({cap[1]})" if cap else
                 f"memory_budget {cfg.memory_budget:g} x {human_bytes(free)} ({source})")
        raise TrainError(
            f"{spec.name} needs about {human_bytes(need * sharing)} to train at batch {batch}{per} "
            f"(weights, gradients and optimizer state {human_bytes(weights)} + activations {human_bytes(acts)}), "
            f"more than {limit} = "
            f"{human_bytes(budget)} on {device}: lower batch_size, use a smaller spec or raise "
            + ("--max-memory / BLOCKGRAPH_MAX_MEMORY" if cap else "memory_budget"))


def make_run_dir(*, cfg: TrainConfig, spec_name: str, stamp: str, resume: Path | None, main: bool) -> Path:
    """The run directory: the resumed one, `run_dir`, or runs/NAME-STAMP (created by rank 0;
    one that holds a run already is refused)."""
    if resume is not None:
        return resume
    run_dir = Path(cfg.run_dir) if cfg.run_dir else Path("runs") / f"{spec_name}-{stamp}"
    if main:
        if (run_dir / ckpt.STATE_FILE).exists():
            raise TrainError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, "
                             "or choose another --run-dir")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrainError(f"cannot create the run directory {run_dir}: {exc.strerror or exc}") from None
    return run_dir
