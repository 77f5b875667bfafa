"""Running under torchrun: the process's place in the job (from RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE) and the few collectives the trainer needs besides DistributedDataParallel
(agreeing on a flag, summing metrics, sharing the run directory). Thin wrappers over
torch.distributed; gradients are DDP's business."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    initialized: bool = False
    """Whether this object started the process group (and so destroys it)."""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    # -- collectives (no-ops in a single process) ----------------------------------------------
    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every process if `flag` is true on any."""
        if not self.enabled:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def flags(self, values: list[bool], device: torch.device) -> list[bool]:
        """Element-wise `any` of several flags, in one collective."""
        if not self.enabled:
            return [bool(v) for v in values]
        t = torch.tensor([1.0 if v else 0.0 for v in values], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(x > 0) for x in t.tolist()]

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum over processes (float64 where the device has it)."""
        if not self.enabled:
            return list(values)
        dtype = torch.float32 if device.type == "mps" else torch.float64
        t = torch.tensor(values, dtype=dtype, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every process."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every process's `obj`, in rank order, on every process."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's buffers (batch-norm statistics) everywhere, before evaluating or saving."""
        if not self.enabled:
            return
        for buf in module.buffers():
            dist.broadcast(buf.data, src=0)

    def close(self) -> None:
        if self.initialized and dist.is_initialized():
            dist.destroy_process_group()
            self.initialized = False


def detect() -> Dist:
    """This process's place from the environment torchrun sets (a lone process: rank 0 of 1)."""
    env = os.environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", str(rank)))
        local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError:
        world, rank, local_rank, local_world = 1, 0, 0, 1
    return Dist(rank=rank, world_size=max(world, 1), local_rank=local_rank, local_world_size=max(local_world, 1))


def init(d: Dist, device: torch.device) -> None:
    """Join the process group: NCCL for CUDA devices, Gloo otherwise (rendezvous from torchrun's
    MASTER_ADDR / MASTER_PORT)."""
    if not d.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", rank=d.rank, world_size=d.world_size, device_id=device)
    else:
        dist.init_process_group("gloo", rank=d.rank, world_size=d.world_size)
    d.initialized = True
