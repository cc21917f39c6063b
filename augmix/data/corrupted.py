"""Benchmark corruptions applied on the fly to another source, deterministically per image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from augmix.corruptions import HELD_OUT_CORRUPTIONS, check_corruptions, check_severities, corrupt, image_rng
from augmix.data.batches import SampleTransform
from augmix.data.sources import ImageSource

__all__ = ["CorruptedSource", "HELD_OUT_CORRUPTIONS"]  # HELD_OUT_CORRUPTIONS: re-exported as the DataModule's default


class CorruptedSource(ImageSource):
    """Every (corruption, severity) pair applied to the first ``limit`` images of ``source``.

    Index ``k * count + j`` is image ``j`` under pair ``k``. Images pass ``transform`` first (the
    evaluation crop), then the corruption, as the -C sets were made from evaluation crops. Image
    ``j`` always uses the stream ``image_rng(seed, j)``, so every epoch sees the same corrupted set.
    """

    def __init__(
        self,
        source: ImageSource,
        corruptions: Sequence[str],
        severities: Sequence[int],
        transform: SampleTransform,
        seed: int = 0,
        limit: int | None = None,
    ) -> None:
        corruptions = check_corruptions("corruptions", corruptions)
        severities = check_severities("severities", severities)
        self.source, self.transform, self.seed = source, transform, seed
        self.count = len(source) if limit is None else min(limit, len(source))
        self.sets = [(c, s) for c in corruptions for s in severities]
        self.classes = source.classes

    def __len__(self) -> int:
        return self.count * len(self.sets)

    def image(self, index: int) -> Tensor:
        pair, j = divmod(index, self.count)
        name, severity = self.sets[pair]
        clean = self.transform(self.source.image(j), None)
        pixels = clean.expand(3, -1, -1) if clean.shape[0] == 1 else clean
        corrupted = corrupt(pixels.permute(1, 2, 0).numpy(), name, severity, rng=image_rng(self.seed, j))
        return torch.from_numpy(corrupted).permute(2, 0, 1).contiguous()

    def target(self, index: int) -> int:
        return self.source.target(index % self.count)

    def location(self, index: int) -> str:
        pair, j = divmod(index, self.count)
        return f"{self.source.location(j)} under {self.sets[pair][0]}-{self.sets[pair][1]}"
