"""Sharding a set across ranks and reassembling it exactly (the multi-GPU reduction, on CPU)."""

from __future__ import annotations

import pytest
import torch

from augmix.evaluation.distributed import (
    batch_bounds,
    gather_set,
    shard_bounds,
    unshard,
)


@pytest.mark.parametrize("world_size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("size", [0, 1, 4, 7, 10, 23])
def test_shards_cover_every_sample_once(size, world_size):
    bounds = [shard_bounds(size, rank, world_size) for rank in range(world_size)]
    covered = [i for start, stop in bounds for i in range(start, stop)]
    assert covered == list(range(size))  # contiguous, in rank order, no padding, no repeats
    lengths = [stop - start for start, stop in bounds]
    assert max(lengths) - min(lengths) <= 1


def test_batches_cover_a_shard():
    assert batch_bounds(3, 10, 3) == [(3, 6), (6, 9), (9, 10)]
    assert batch_bounds(4, 4, 8) == []


class SimulatedRanks:
    """Every rank's padded rows, as all_gather would return them on each rank."""

    def __init__(self, world_size: int) -> None:
        self.world_size, self.global_rank, self.padded = world_size, 0, []

    def all_gather(self, data: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.padded)


@pytest.mark.parametrize("world_size", [2, 3, 4])
@pytest.mark.parametrize("size", [1, 2, 9, 10, 11])
def test_gather_reassembles_the_set_in_order(size, world_size):
    outcomes = torch.randn(size, 4)
    ranks = SimulatedRanks(world_size)
    longest = -(-size // world_size)
    for rank in range(world_size):
        start, stop = shard_bounds(size, rank, world_size)
        padded = torch.full((longest, 4), float("nan"))  # padding must never leak into the result
        padded[: stop - start] = outcomes[start:stop]
        ranks.padded.append(padded)
    start, stop = shard_bounds(size, 0, world_size)
    gathered = gather_set(ranks, outcomes[start:stop], size)
    assert torch.equal(gathered, outcomes)
    # the reduction of the counts is therefore exact: the sum over the reassembled set
    assert int(gathered[:, 0].gt(0).sum()) == int(outcomes[:, 0].gt(0).sum())


def test_unshard_drops_padding():
    gathered = torch.tensor([[1, 2, -1], [3, 4, -1], [5, 6, 7]])  # shards of 2, 2 and 3 rows
    assert unshard(gathered, 7).tolist() == [1, 2, 3, 4, 5, 6, 7]
