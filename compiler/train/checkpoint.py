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

Crash safety: `save` writes both files in full into a hidden staging folder, keeps the current
pair in `previous/` (hard links), replaces the two files and then removes `previous/`. So `previous/`
exists only while a save is under way or after one was killed, and `load_checkpoint` falls back
to it (with a `CheckpointFallback` warning) when the pair in the run directory is mismatched,
truncated or damaged.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

FORMAT = 1
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.pt"
PREVIOUS_DIR = "previous"  # the last complete pair, only while a save is under way (or was killed)


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


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # the same inode: os.replace of src later leaves dst untouched
    except OSError:
        shutil.copyfile(src, dst)
        with open(dst, "rb+") as fh:
            os.fsync(fh.fileno())


def _remove_tree(path: Path) -> None:
    """Remove a directory atomically as far as readers care: rename it to a hidden trash name
    first, then delete it (a kill during the delete leaves only trash, removed by the next save)."""
    trash = path.parent / f".trash-{uuid.uuid4().hex}"
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _clean_leftovers(run_dir: Path) -> None:
    """Temporary files and directories a killed save left behind."""
    for pattern in (".saving-*", ".trash-*", f".{PREVIOUS_DIR}-*.tmp"):
        for path in run_dir.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    path.unlink()
                except OSError:
                    pass


def _pair_is_complete(run_dir: Path) -> bool:
    try:
        _load_pair(run_dir, "cpu")
    except CheckpointError:
        return False
    return True


def _keep_previous(run_dir: Path) -> None:
    """Hard-link (or copy) the current pair into `previous/`, built under a temporary name and
    renamed, so `previous/` is complete whenever it exists. An existing `previous/` means the
    last save was killed: the pair in run_dir then replaces it only if that pair is complete
    (it is read in full, but only after a kill)."""
    previous = run_dir / PREVIOUS_DIR
    model, state = run_dir / MODEL_FILE, run_dir / STATE_FILE
    if not (model.is_file() and state.is_file()):
        return  # the first save: nothing to keep
    if previous.exists() and not _pair_is_complete(run_dir):
        return
    tmp = run_dir / f".{PREVIOUS_DIR}-{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    _link_or_copy(model, tmp / MODEL_FILE)
    _link_or_copy(state, tmp / STATE_FILE)
    _fsync_dir(tmp)
    _remove_tree(previous)  # only when the pair in run_dir is complete
    os.rename(tmp, previous)
    _fsync_dir(run_dir)


def save(run_dir: Path, model: torch.nn.Module, state: dict[str, Any]) -> None:
    """Write model.safetensors and state.pt so that a kill at any moment leaves a complete
    checkpoint: both files are first written in full in a hidden staging folder (fsynced), the current
    pair is kept in `previous/`, then the two files are replaced (os.replace) and `previous/` is
    removed. A kill between the two replaces leaves a mismatched pair (state.pt names the
    weights it goes with: save_id) next to the complete `previous/`, which `load_checkpoint`
    falls back to."""
    from safetensors.torch import save_file

    run_dir = Path(run_dir)
    _clean_leftovers(run_dir)
    tensors = plain_state_dict(model)
    digest = uuid.uuid4().hex
    meta = {"epoch": str(state.get("epoch", 0)), "global_step": str(state.get("global_step", 0)),
            "save_id": digest, "format": "blockgraph"}
    state = {**state, "format": FORMAT, "save_id": digest}
    staging = run_dir / f".saving-{digest}"  # also catches the temporary files safetensors makes
    staging.mkdir()
    try:
        save_file(tensors, str(staging / MODEL_FILE), metadata=meta)
        torch.save(state, staging / STATE_FILE)
        for name in (MODEL_FILE, STATE_FILE):
            os.chmod(staging / name, _file_mode())
            with open(staging / name, "rb+") as fh:
                os.fsync(fh.fileno())
        _keep_previous(run_dir)
        os.replace(staging / MODEL_FILE, run_dir / MODEL_FILE)
        os.replace(staging / STATE_FILE, run_dir / STATE_FILE)
        _fsync_dir(run_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remove_tree(run_dir / PREVIOUS_DIR)


class CheckpointError(Exception):
    """A run directory holds no usable checkpoint."""


class CheckpointFallback(UserWarning):
    """The newest checkpoint of a run was unusable; the previous complete one was loaded."""


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


def _load_pair(run_dir: Path, device: str | torch.device) -> dict[str, Any]:
    state = load_state(run_dir)
    tensors, meta = load_weights(run_dir, device)
    if meta.get("save_id") != state.get("save_id"):
        raise CheckpointError(
            f"{run_dir}: {MODEL_FILE} (epoch {meta.get('epoch', '?')}) and {STATE_FILE} (epoch {state.get('epoch')}) "
            "come from different saves (the run was killed while writing them)")
    state["model"] = tensors
    return state


def load_checkpoint(run_dir: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """A run's checkpoint: the state (see this module's doc) plus `model` (the weights), checked
    to belong together. When the pair in run_dir is incomplete, mismatched or damaged and a
    complete `previous/` pair is there (a save was killed), that one is returned, with a
    warning and `state["fallback"]` saying why."""
    run_dir = Path(run_dir)
    try:
        return _load_pair(run_dir, device)
    except CheckpointError as exc:
        problem = str(exc)
        previous = run_dir / PREVIOUS_DIR
        if not previous.is_dir():
            raise
    try:
        state = _load_pair(previous, device)
    except CheckpointError as exc2:
        raise CheckpointError(f"{problem}; the previous checkpoint is not usable either: {exc2}") from None
    state["fallback"] = (f"{problem}; using the previous complete checkpoint in {previous} "
                         f"(epoch {state.get('epoch')}, step {state.get('global_step')})")
    warnings.warn(state["fallback"], CheckpointFallback, stacklevel=2)
    return state


__all__ = ["CheckpointError", "CheckpointFallback", "MODEL_FILE", "PREVIOUS_DIR", "STATE_FILE", "atomic_write", "load_checkpoint", "load_state",
           "load_weights", "rng_state", "save", "set_rng_state"]
