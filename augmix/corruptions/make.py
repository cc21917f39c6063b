"""Make "-C" sets of any data config's test split in the released formats (``make_corrupted.py``).

The test split goes through the data config's eval transform first (ImageNet: Resize 256 +
CenterCrop 224), exactly as the benchmark's creation scripts preprocess before corrupting; the
severity table follows the resulting size (32, 64 or 224). Staging, resuming and the
``regenerated.json`` marker are ``augmix.make_sets``'s, shared with the -P sets.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from augmix.corruptions.names import select_corruptions
from augmix.corruptions.writer import GENERATOR, marker_fields, write_cifar_c, write_imagenet_c
from augmix.make_sets import StagedSplit, check_workers_and_limit, write_test_split
from augmix.regenerated import claim_folder
from augmix.rules import fail, is_int

FORMATS = ("cifar_c", "imagenet_c")


def _write_part(fmt: str, seed: int, split: StagedSplit, out: str, names: list[str]) -> None:
    if fmt == "cifar_c":
        write_cifar_c(split.images(), split.labels, out, corruptions=names, seed=seed, finish=False)
    else:
        write_imagenet_c(split.images(), split.labels, split.classes, out, corruptions=names, seed=seed,
                         file_names=split.file_names, finish=False)


def write_corrupted(
    data: Mapping[str, Any] | DictConfig,
    fmt: str,
    out: str | Path,
    corruptions: Sequence[str] | None = None,
    extra: bool = False,
    seed: int = 0,
    limit: int | None = None,
    workers: int = 1,
) -> Path:
    """Write the corrupted test split of ``data`` to ``out``; returns ``out``. One process per
    corruption when ``workers`` > 1; an interrupted run resumes where it stopped."""
    if fmt not in FORMATS:
        fail("format", fmt, f"must be one of {list(FORMATS)}")
    check_workers_and_limit(workers, limit)
    names = select_corruptions(corruptions, extra)
    if not is_int(seed) or seed < 0:
        fail("seed", seed, "must be a non-negative integer")

    def claim(folder: Path, table: int, count: int) -> None:
        claim_folder(folder, GENERATOR, marker_fields(fmt.replace("_", "-"), table, seed))

    return write_test_split(data, out, names, kind="-C", limit=limit, workers=workers, claim=claim,
                            write_part=functools.partial(_write_part, fmt, seed), keep_extensions=True)
