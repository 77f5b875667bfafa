"""Choosing the device and checking that a run fits in its memory before anything is built."""

from __future__ import annotations

from pathlib import Path

import torch


def pick_device(name: str, local_rank: int = 0, distributed: bool = False) -> torch.device:
    """`auto`: CUDA if available (cuda:LOCAL_RANK under torchrun), else MPS, else CPU.
    Raises ValueError (with the reason) for a device this machine does not have."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        return torch.device("mps") if has_mps and not distributed else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not has_mps:
            raise ValueError("device mps is not available on this machine (Apple-silicon GPUs only)")
        if distributed:
            raise ValueError("device mps cannot run several processes (use cpu or cuda with torchrun)")
        return torch.device("mps")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name} is not available: this PyTorch sees no CUDA GPU "
                             "(use device: auto or cpu)")
        count = torch.cuda.device_count()
        if distributed:
            if ":" in name:
                raise ValueError(f"device {name}: under torchrun use device: cuda (or auto); "
                                 "each process takes cuda:LOCAL_RANK")
            return torch.device("cuda", local_rank % count)
        index = int(name.split(":", 1)[1]) if ":" in name else 0
        if index >= count:
            raise ValueError(f"device {name} does not exist: this machine has {count} CUDA device(s) "
                             f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
        return torch.device("cuda", index)
    raise ValueError(f"unknown device {name!r}")


def free_memory(device: torch.device) -> tuple[int | None, str]:
    """Bytes free on `device` and where that number comes from (None: unknown)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free), f"free memory of {device} (torch.cuda.mem_get_info)"
    if device.type == "mps":
        try:
            limit = torch.mps.recommended_max_memory()
            return int(limit - torch.mps.driver_allocated_memory()), "the MPS recommended working set"
        except Exception:  # older PyTorch
            return None, ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    return None, ""


def estimate_bytes(analysis) -> tuple[int, int, int]:
    """(total, weight part, activation part): weights, gradients and two optimizer states
    (4x the weights) plus the activations of one batch kept for backward (2x)."""
    weights = analysis.weight_bytes * 4
    acts = analysis.activation_bytes * 2
    return weights + acts, weights, acts
