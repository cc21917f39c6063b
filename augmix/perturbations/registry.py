"""Perturbation names, input checks and the public ``perturb_sequence`` / ``perturb_batch``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from augmix.corruptions.registry import check_images, check_non_negative_int
from augmix.corruptions.tables import TABLE_SIZES, select_table
from augmix.perturbations import sequences
from augmix.perturbations.tables import DIFFICULTIES, frames_in, sequence_params
from augmix.streams import stream_seed

SequenceFn = Callable[..., np.ndarray]

# The 10 perturbations of the benchmark (test set) and the 4 held out for validation, in the
# order of the scripts and of ImageNet-P/test.py's --perturbation choices.
BENCHMARK_PERTURBATIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "spatter",
    "brightness", "translate", "rotate", "tilt", "scale",
)
EXTRA_PERTURBATIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "snow", "shear")
ALL_PERTURBATIONS: tuple[str, ...] = BENCHMARK_PERTURBATIONS + EXTRA_PERTURBATIONS
NOISE_PERTURBATIONS: tuple[str, ...] = ("gaussian_noise", "shot_noise", "speckle_noise")

_FUNCTIONS: dict[str, SequenceFn] = {name: getattr(sequences, name) for name in ALL_PERTURBATIONS}


def is_noise(name: str) -> bool:
    """Noise sequences are not temporally related: their frames are compared with the first
    frame (ImageNet-P/test.py tests ``'noise' in perturbation``), and only they have difficulty
    levels 2 and 3, as separate sets."""
    return "noise" in name


def check_name(name: str) -> None:
    """Reject unknown perturbation names, listing the valid ones."""
    if not isinstance(name, str) or name not in _FUNCTIONS:
        raise ValueError(f"unknown perturbation {name!r}; valid names: {', '.join(ALL_PERTURBATIONS)}")


def check_difficulty(name: str, difficulty: int) -> None:
    """Difficulties are 1, 2, 3 for noise perturbations; the others have one sequence each (their
    difficulty is a comparison step in the metrics, not a different set)."""
    if isinstance(difficulty, bool) or not isinstance(difficulty, (int, np.integer)) or difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be 1, 2 or 3, got {difficulty!r}")
    if difficulty > 1 and not is_noise(name):
        raise ValueError(f"{name} has a single sequence set; only noise perturbations have difficulty {difficulty}")


def check_table(table: int | None) -> None:
    if table is not None and table not in TABLE_SIZES:
        raise ValueError(f"table must be one of {TABLE_SIZES} or None, got {table!r}")


def set_name(name: str, difficulty: int = 1) -> str:
    """The released name of a set: ``gaussian_noise``, ``gaussian_noise_2``, ``gaussian_noise_3``
    (the ``<perturbation>_<difficulty>`` folders ImageNet-P/test.py reads for difficulty > 1)."""
    check_name(name)
    check_difficulty(name, difficulty)
    return name if difficulty == 1 else f"{name}_{difficulty}"


def set_names(names: tuple[str, ...] | list[str], difficulties: tuple[int, ...] | list[int] = DIFFICULTIES) -> list[
        tuple[str, int]]:
    """(perturbation, difficulty) of every set to write or read: each name at difficulty 1, noise
    perturbations also at each further difficulty in ``difficulties``."""
    return [(name, d) for name in names for d in sorted(set(difficulties)) if d == 1 or is_noise(name)]


def frame_count(name: str, table: int) -> int:
    """Frames per sequence of ``name`` at benchmark resolution ``table`` (32, 64, 224)."""
    check_name(name)
    check_table(table)
    return frames_in(name, table)


def sequence_rng(seed: int, index: int) -> np.random.Generator:
    """The stream of image ``index``: ``augmix.streams`` key (seed, index). Every perturbation and
    difficulty reuses it, so the noise difficulties scale the same Gaussian draws."""
    return np.random.default_rng(stream_seed(seed, index))


def _apply(image: np.ndarray, name: str, difficulty: int, rng: np.random.Generator, table: int | None) -> np.ndarray:
    table = select_table(*image.shape[:2]) if table is None else table
    params = sequence_params(name, table)
    if is_noise(name):
        return _FUNCTIONS[name](np.ascontiguousarray(image), rng, params["levels"][difficulty - 1])
    return _FUNCTIONS[name](np.ascontiguousarray(image), rng, **params)


def perturb_sequence(image: np.ndarray, name: str, difficulty: int = 1,
                     rng: np.random.Generator | int | None = None, table: int | None = None) -> np.ndarray:
    """The uint8 (frames, H, W, 3) sequence of perturbation ``name`` for a uint8 RGB (H, W, 3) image.

    ``table`` forces the 32 / 64 / 224 constants; by default the longer image side picks the
    nearest (``augmix.corruptions.select_table``). ``rng`` may be a Generator, a seed or None.
    """
    check_name(name)
    check_difficulty(name, difficulty)
    check_table(table)
    check_images(image, batched=False)
    return _apply(image, name, int(difficulty), np.random.default_rng(rng), table)


def perturb_batch(images: np.ndarray, name: str, difficulty: int, seed: int, table: int | None = None,
                  start_index: int = 0) -> np.ndarray:
    """Sequences of a uint8 (N, H, W, 3) batch, (N, frames, H, W, 3): image ``i`` uses
    ``sequence_rng(seed, start_index + i)``, so any split into batches gives the same bytes."""
    check_name(name)
    check_difficulty(name, difficulty)
    check_table(table)
    check_images(images, batched=True)
    check_non_negative_int(seed, "seed")
    check_non_negative_int(start_index, "start_index")
    resolved = select_table(*images.shape[1:3]) if table is None else table
    out = np.empty((len(images), frames_in(name, resolved), *images.shape[1:]), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = _apply(image, name, int(difficulty), sequence_rng(int(seed), int(start_index) + i), resolved)
    return out
