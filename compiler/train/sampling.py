"""The random streams and data order of a run, so that `--resume` is exact: the data order of
an epoch is a pure function of (seed, epoch) (a DistributedSampler with the run's seed, even in
one process), each process has its own stream, and validation shards the split without padding."""

from __future__ import annotations

import random
from typing import Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def process_seed(seed: int, rank: int) -> int:
    """Each process its own stream (dropout masks differ between ranks); rank 0 uses `seed`."""
    return (seed + 1_000_003 * rank) % 2**63


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**63


class EpochSampler(torch.utils.data.Sampler):
    """A DistributedSampler (with num_replicas=1 in a single process, so one process and N
    processes see the same global order) that can skip the batches a resumed epoch already did."""

    def __init__(self, inner: torch.utils.data.DistributedSampler):
        self.inner, self.skip = inner, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices = list(self.inner)
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return len(self.inner) - self.skip


class Shard(torch.utils.data.Sampler):
    """Validation: every `world`-th sample from `rank`, no padding (sums are all-reduced)."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
