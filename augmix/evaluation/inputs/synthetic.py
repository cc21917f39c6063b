"""Synthetic -C sets: the benchmark corruptions applied on the fly to the clean split of any data
config (``benchmark=synthetic``), bit-identical to what ``make_corrupted.py`` writes."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from augmix.corruptions import corrupt_batch
from augmix.data.sources import ImageSource
from augmix.evaluation.inputs.sets import EvalSet, Transform, apply_transform
from augmix.evaluation.inputs.spec import BenchmarkSpec


class SyntheticSet(EvalSet):
    """A corruption applied on the fly to the clean split, exactly as ``write_cifar_c`` writes it:
    image ``i`` uses the stream ``image_rng(seed, i)`` whatever batch it is in."""

    def __init__(
        self,
        source: ImageSource,
        eval_transform: Transform,
        corruption: str,
        severity: int,
        seed: int,
        limit: int | None = None,
        transform: Transform | None = None,
    ) -> None:
        self.source, self.eval_transform, self.transform = source, eval_transform, transform
        self.corruption, self.severity, self.seed = corruption, severity, seed
        self.count = min(len(source), limit) if limit else len(source)

    def load(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        clean = torch.stack([self.eval_transform(self.source.image(i)) for i in range(start, stop)])
        pixels = np.ascontiguousarray(clean.permute(0, 2, 3, 1).numpy())
        corrupted = corrupt_batch(pixels, self.corruption, self.severity, self.seed, start_index=start)
        images = torch.from_numpy(corrupted).permute(0, 3, 1, 2).contiguous()
        targets = torch.tensor([self.source.target(i) for i in range(start, stop)], dtype=torch.long)
        return apply_transform(self.transform, images), targets


def synthetic_sets(
    spec: BenchmarkSpec, clean: ImageSource, eval_transform: Transform, transform: Transform | None
) -> list[SyntheticSet]:
    """The (corruption, severity) sets of ``spec``, made from the eval-transformed clean split."""
    return [
        SyntheticSet(clean, eval_transform, name, severity, spec.seed, spec.limit_per_set, transform)
        for name in spec.corruptions
        for severity in spec.severities
    ]
