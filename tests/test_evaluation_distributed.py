"""Sharding a set across ranks and reassembling it exactly (the multi-GPU reduction, on CPU), and
stopping every rank together when one of them meets bad input."""

from __future__ import annotations

import contextlib
import threading
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from augmix.errors import DataError
from augmix.evaluation.inputs import EvalSet
from augmix.evaluation.run import (
    ResultStore,
    batch_bounds,
    first_error,
    gather_set,
    run_sets,
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


class ThreadRanks:
    """Ranks as threads of one process. Every collective waits for all ranks, as gloo's do; one that
    never comes breaks the others' wait (gloo's traceback) instead of hanging the test."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.barrier = threading.Barrier(world_size, timeout=60)
        self.slots: list = [None] * world_size

    def exchange(self, rank: int, value: object) -> list:
        self.barrier.wait()  # every rank has read the previous exchange
        self.slots[rank] = value
        self.barrier.wait()
        return list(self.slots)

    def run(self, task) -> list:
        """``task(fabric)`` on every rank; what each returned, or the exception it raised."""
        results: list = [None] * self.world_size

        def main(rank: int) -> None:
            try:
                results[rank] = task(ThreadFabric(self, rank))
            except Exception as error:  # noqa: BLE001  (compared by the test)
                results[rank] = error

        threads = [threading.Thread(target=main, args=(rank,)) for rank in range(self.world_size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results


class ThreadFabric:
    """The part of Lightning Fabric the runner uses, for one rank of ``ThreadRanks``."""

    device = torch.device("cpu")

    def __init__(self, ranks: ThreadRanks, rank: int) -> None:
        self.ranks, self.global_rank, self.world_size = ranks, rank, ranks.world_size
        self.strategy = SimpleNamespace(precision=SimpleNamespace(convert_input=lambda x: x))

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def all_gather(self, data: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.ranks.exchange(self.global_rank, data))

    def all_reduce(self, data: torch.Tensor, reduce_op: str) -> torch.Tensor:
        assert reduce_op == "max"
        return torch.stack(self.ranks.exchange(self.global_rank, data)).max()

    def broadcast(self, obj: object, src: int = 0) -> object:
        return self.ranks.exchange(self.global_rank, obj)[src]


def test_first_error_gives_every_rank_the_lowest_failed_ranks_message():
    messages = [None, "cannot decode image b.JPEG", "cannot decode image c.JPEG"]
    assert ThreadRanks(3).run(lambda fabric: first_error(fabric, messages[fabric.global_rank])) == [messages[1]] * 3
    assert ThreadRanks(3).run(lambda fabric: first_error(fabric, None)) == [None] * 3
    single = SimpleNamespace(world_size=1, global_rank=0)  # no collective at all
    assert first_error(single, "bad") == "bad" and first_error(single, None) is None


class Numbered(EvalSet):
    """Images whose pixels are their index; image ``broken`` cannot be decoded."""

    def __init__(self, count: int, corruption: str, broken: int | None = None) -> None:
        self.count, self.corruption, self.severity, self.broken = count, corruption, 1, broken

    def load(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.broken is not None and start <= self.broken < stop:
            raise DataError(f"cannot decode image {self.corruption}/{self.broken}.JPEG")
        images = torch.arange(start, stop, dtype=torch.uint8)[:, None, None, None].expand(-1, 3, 2, 2)
        return images.contiguous(), torch.zeros(stop - start, dtype=torch.long)


def test_an_unreadable_image_on_one_rank_stops_every_rank_with_its_message(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 10))
    sets = [Numbered(8, "fog"), Numbered(8, "snow", broken=6)]  # image 6: rank 1's half of the second set
    store = ResultStore(tmp_path, {})

    def evaluate(fabric: ThreadFabric) -> dict:
        return run_sets(fabric, model, lambda x: x.float(), sets, store, 2, 0, num_classes=10, show_progress=False)

    outcomes = ThreadRanks(2).run(evaluate)
    assert [type(outcome) for outcome in outcomes] == [DataError, DataError], outcomes
    assert str(outcomes[0]) == str(outcomes[1]) == "cannot decode image snow/6.JPEG"
    assert store.read("fog-1") is not None and store.read("snow-1") is None  # the finished set is kept
