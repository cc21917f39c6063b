"""Splitting a set across ranks and putting the per-sample outcomes back together exactly.

Each rank takes one contiguous block of every set (contiguous rows are the cheapest to read from a
memory-mapped .npy), with no padding, so every image is evaluated exactly once. After a set, the
per-sample outcomes of all ranks are gathered and reassembled in dataset order; every figure is then
computed from the complete set, so the result does not depend on the number of ranks.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor


class Collective(Protocol):
    """What the reduction needs from Lightning Fabric (``fabric`` satisfies it)."""

    world_size: int
    global_rank: int

    def all_gather(self, data: Tensor) -> Tensor: ...


def shard_bounds(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """This rank's block [start, stop) of a set of ``size``; blocks differ in length by at most 1."""
    return size * rank // world_size, size * (rank + 1) // world_size


def batch_bounds(start: int, stop: int, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive batches covering [start, stop)."""
    return [(lo, min(lo + batch_size, stop)) for lo in range(start, stop, batch_size)]


def unshard(gathered: Tensor, size: int) -> Tensor:
    """Inverse of sharding: ``gathered[r]`` holds rank r's rows, padded to a common length."""
    world_size = gathered.shape[0]
    parts = []
    for rank in range(world_size):
        start, stop = shard_bounds(size, rank, world_size)
        parts.append(gathered[rank, : stop - start])
    return torch.cat(parts)


def gather_set(collective: Collective, local: Tensor, size: int) -> Tensor:
    """All ranks' rows of one set, in dataset order, on every rank."""
    world_size = collective.world_size
    if world_size == 1:
        return local
    longest = -(-size // world_size)
    padded = local.new_zeros((longest, *local.shape[1:]))
    padded[: len(local)] = local
    return unshard(collective.all_gather(padded), size)
