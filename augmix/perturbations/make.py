"""Make "-P" sets of any data config's test split in the released formats (``make_perturbed.py``).

The test split goes through the data config's eval transform first (ImageNet: Resize 256 +
CenterCrop 224), and the constants table follows the resulting size (32, 64 or 224). Staging,
resuming and the ``regenerated.json`` marker are ``augmix.make_sets``'s, shared with the -C sets.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from augmix.make_sets import StagedSplit, check_workers_and_limit, write_test_split
from augmix.perturbations import video
from augmix.perturbations.registry import ALL_PERTURBATIONS, BENCHMARK_PERTURBATIONS, EXTRA_PERTURBATIONS
from augmix.perturbations.tables import DIFFICULTIES
from augmix.perturbations.writer import GENERATOR, marker_fields, write_cifar_p, write_imagenet_p
from augmix.regenerated import claim_folder
from augmix.rules import fail, is_int, is_sequence

FORMATS = ("cifar_p", "imagenet_p")


def resolve_options(fmt: str, perturbations: Sequence[str] | None, extra: bool, difficulties: Sequence[int],
                    seed: int, limit: int | None, workers: int, codec: str) -> tuple[list[str], list[int]]:
    """Check the command-line options (one ConfigError line each); returns the perturbation names
    and difficulties to write."""
    if fmt not in FORMATS:
        fail("format", fmt, f"must be one of {list(FORMATS)}")
    if perturbations is not None:
        if not is_sequence(perturbations) or not perturbations:
            fail("perturbations", perturbations, "must be null (the 10 benchmark perturbations) or a non-empty list")
        unknown = [name for name in perturbations if name not in ALL_PERTURBATIONS]
        if unknown:
            fail("perturbations", perturbations, f"{unknown[0]!r} is not a perturbation; valid: {list(ALL_PERTURBATIONS)}")
    if not isinstance(extra, bool):
        fail("extra", extra, "must be true or false")
    if not is_sequence(difficulties) or not difficulties or any(not is_int(d) or d not in DIFFICULTIES for d in difficulties):
        fail("difficulties", difficulties, f"must be a non-empty list drawn from {list(DIFFICULTIES)}")
    if not is_int(seed) or seed < 0:
        fail("seed", seed, "must be a non-negative integer")
    check_workers_and_limit(workers, limit)
    if codec not in video.CODECS:
        fail("codec", codec, f"must be one of {list(video.CODECS)}")
    names = list(perturbations) if perturbations is not None else list(BENCHMARK_PERTURBATIONS)
    if extra:
        names += [name for name in EXTRA_PERTURBATIONS if name not in names]
    return names, sorted({int(d) for d in difficulties})


def _write_part(fmt: str, difficulties: list[int], seed: int, codec: str, split: StagedSplit, out: str,
                names: list[str]) -> None:
    if fmt == "cifar_p":
        write_cifar_p(split.images(), out, perturbations=names, difficulties=difficulties, seed=seed, finish=False)
    else:
        write_imagenet_p(split.images(), split.labels, split.classes, out, perturbations=names,
                         difficulties=difficulties, seed=seed, file_names=split.file_names, codec=codec,
                         finish=False)


def write_perturbed(data: Mapping[str, Any] | DictConfig, fmt: str, out: str | Path,
                    perturbations: Sequence[str] | None = None, extra: bool = False,
                    difficulties: Sequence[int] = DIFFICULTIES, seed: int = 0, limit: int | None = None,
                    workers: int = 1, codec: str = "lossless") -> Path:
    """Write the perturbed test split of ``data`` to ``out``; returns ``out``. One process per
    perturbation when ``workers`` > 1; an interrupted run resumes where it stopped."""
    names, difficulties = resolve_options(fmt, perturbations, extra, difficulties, seed, limit, workers, codec)

    def claim(folder: Path, table: int, count: int) -> None:
        claim_folder(folder, GENERATOR, marker_fields(fmt.replace("_", "-"), table, seed, count,
                                                      codec if fmt == "imagenet_p" else None))

    return write_test_split(data, out, names, kind="-P", limit=limit, workers=workers, claim=claim,
                            write_part=functools.partial(_write_part, fmt, difficulties, seed, codec),
                            keep_extensions=False)
