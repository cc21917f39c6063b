"""Splitting a set across ranks and putting the per-sample outcomes back together exactly.

Each rank takes one contiguous block of every set (contiguous rows are the cheapest to read from a
memory-mapped .npy), with no padding, so every image is evaluated exactly once. After a set, the
per-sample outcomes of all ranks are gathered and reassembled in dataset order; every figure is then
computed from the complete set, so the result does not depend on the number of ranks. Before each
gather the ranks agree on whether any of them met bad input, so all stop together with its message.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor


class Collective(Protocol):
    """What the reduction needs from Lightning Fabric (``fabric`` satisfies it)."""

    world_size: int
    global_rank: int

    def all_gather(self, data: Tensor) -> Tensor: ...

    def all_reduce(self, data: Tensor, reduce_op: str) -> Tensor: ...

    def broadcast(self, obj: Any, src: int = 0) -> Any: ...


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


def first_error(collective: Collective, message: str | None) -> str | None:
    """The error message of the lowest rank that has one, on every rank; None when none has one.

    Every rank calls this at the same point, failed or not: a rank that stopped on its own would
    leave the others in the next collective (gloo fails with a traceback, NCCL waits forever).
    """
    if collective.world_size == 1:
        return message
    # the MAX of world_size - rank over the failed ranks names the lowest of them; 0: none failed
    mark = collective.world_size - collective.global_rank if message is not None else 0
    lowest = int(collective.all_reduce(torch.tensor(mark), reduce_op="max"))
    if lowest == 0:
        return None
    return collective.broadcast(message, src=collective.world_size - lowest)


def any_rank(collective: Collective, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (every rank must call it at the same point)."""
    if collective.world_size == 1:
        return flag
    return bool(collective.all_reduce(torch.tensor(int(flag)), reduce_op="max"))
