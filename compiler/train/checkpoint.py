"""Checkpoints: `model.safetensors` (the weights) and `state.pt` (everything else), written
atomically and loadable with `torch.load(..., weights_only=True)`.

`state.pt` holds only tensors, dicts, lists, tuples, numbers, strings and None:

    format         1
    epoch          completed epochs (0: the initial weights)
    step_in_epoch  batches of the next epoch already done (0 unless stopped mid-epoch by Ctrl-C)
    global_step    optimizer steps so far
    optimizer      optimizer.state_dict()
    scheduler      the lr scheduler's state_dict()
    scaler         the fp16 GradScaler's state_dict() ({} without one)
    rng            one entry per process: {torch, cuda, numpy, python} random states
    partial        running sums of the interrupted epoch ({} at an epoch boundary)
    spec           {name, file, text, document, vars, overrides}: the spec as written, the
                   resolved self-contained YAML (extends merged), its resolved vars and the
                   var overrides the run was started with
    config         the TrainConfig, as a plain map
    world_size     number of processes that trained
    save_id        a random id, also in model.safetensors' metadata: the two files of one save
"""

from __future__ import annotations

import os
import random
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

FORMAT = 1
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.pt"


# -- random states as plain data -------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """This process's random states (torch, cuda, numpy, python) as weights_only-safe values."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": [int(k) for k in keys], "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": [int(x) for x in internal],
                   "gauss_next": None if gauss is None else float(gauss)},
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu() if isinstance(state["torch"], torch.Tensor) else state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], np.array(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([t.cpu() for t in cuda])


# -- atomic files -----------------------------------------------------------------------------

def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _file_mode() -> int:
    """The mode a plainly created file gets (mkstemp's files are 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write `path` through a temporary file in the same directory: `write(tmp_path)`, fsync,
    then os.replace, so a reader (or a crash) sees the old file or the new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


# -- model and state --------------------------------------------------------------------------

def plain_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as contiguous CPU tensors (safetensors wants no views or NHWC)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def save(run_dir: Path, model: torch.nn.Module, state: dict[str, Any]) -> None:
    """Write model.safetensors then state.pt, each atomically. state.pt names the weights it
    goes with (save_id), so a crash between the two replaces is detected on resume."""
    from safetensors.torch import save_file

    tensors = plain_state_dict(model)
    digest = uuid.uuid4().hex
    meta = {"epoch": str(state.get("epoch", 0)), "global_step": str(state.get("global_step", 0)),
            "save_id": digest, "format": "blockgraph"}
    atomic_write(run_dir / MODEL_FILE, lambda tmp: save_file(tensors, tmp, metadata=meta))
    state = {**state, "format": FORMAT, "save_id": digest}
    atomic_write(run_dir / STATE_FILE, lambda tmp: torch.save(state, tmp))


class CheckpointError(Exception):
    """A run directory holds no usable checkpoint."""


def load_state(run_dir: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """state.pt of a run, loaded with weights_only=True."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{run_dir} holds no checkpoint ({STATE_FILE} is missing)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise CheckpointError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a blockgraph training checkpoint (format {FORMAT})")
    return state


def load_weights(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """model.safetensors of a run: (tensors, metadata)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{run_dir} holds no weights ({MODEL_FILE} is missing)")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
        return load_file(str(path), device=str(device)), meta
    except Exception as exc:  # a truncated, tampered or foreign file
        raise CheckpointError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None


def load_checkpoint(run_dir: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """A run's checkpoint: the state (see this module's doc) plus `model` (the weights), checked
    to belong together."""
    state = load_state(run_dir)
    tensors, meta = load_weights(run_dir, device)
    if meta.get("save_id") != state.get("save_id"):
        raise CheckpointError(
            f"{run_dir}: {MODEL_FILE} (epoch {meta.get('epoch', '?')}) and {STATE_FILE} (epoch {state.get('epoch')}) "
            "come from different saves (the run was killed while writing them); this checkpoint cannot be resumed")
    state["model"] = tensors
    return state


__all__ = ["CheckpointError", "MODEL_FILE", "STATE_FILE", "atomic_write", "load_checkpoint", "load_state",
           "load_weights", "rng_state", "save", "set_rng_state"]
