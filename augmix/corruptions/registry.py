"""The corruption functions by name, input validation and the public ``corrupt`` / ``corrupt_batch``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from augmix.corruptions import blur, digital, noise, weather
from augmix.corruptions.names import check_corruption, check_severity
from augmix.corruptions.tables import TABLE_SIZES, select_table, severity_params

CorruptionFn = Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]

_FUNCTIONS: dict[str, CorruptionFn] = {
    "gaussian_noise": noise.gaussian_noise,
    "shot_noise": noise.shot_noise,
    "impulse_noise": noise.impulse_noise,
    "speckle_noise": noise.speckle_noise,
    "defocus_blur": blur.defocus_blur,
    "glass_blur": blur.glass_blur,
    "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "gaussian_blur": blur.gaussian_blur,
    "snow": weather.snow,
    "frost": weather.frost,
    "fog": weather.fog,
    "spatter": weather.spatter,
    "brightness": digital.brightness,
    "contrast": digital.contrast,
    "saturate": digital.saturate,
    "elastic_transform": digital.elastic_transform,
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
}

# Smallest side every corruption handles (elastic_transform needs a non-degenerate
# affine triangle, min(H, W) // 3 >= 1).
MIN_SIDE = 3


def check_table(table: int | None) -> None:
    """Only the three benchmark tables exist."""
    if table is not None and table not in TABLE_SIZES:
        raise ValueError(f"table must be one of {TABLE_SIZES} or None, got {table!r}")


def check_non_negative_int(value: int, what: str) -> None:
    """Seeds and stream indices feed ``SeedSequence``, which needs ints >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")


def check_images(images: np.ndarray, batched: bool) -> None:
    """uint8 RGB, (H, W, 3) or (N, H, W, 3), sides >= MIN_SIDE."""
    expected = "(N, H, W, 3)" if batched else "(H, W, 3)"
    if not isinstance(images, np.ndarray):
        raise ValueError(f"expected a numpy array of shape {expected}, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise ValueError(f"expected dtype uint8, got {images.dtype}")
    ndim = 4 if batched else 3
    if images.ndim != ndim or images.shape[-1] != 3:
        raise ValueError(f"expected shape {expected} (RGB), got {images.shape}")
    if min(images.shape[-3:-1]) < MIN_SIDE:
        raise ValueError(f"image sides must be >= {MIN_SIDE} pixels, got {images.shape[-3:-1]}")


def _to_uint8(values: np.ndarray) -> np.ndarray:
    # The scripts end with ``np.uint8(...)`` on values clipped to [0, 255], which
    # truncates; NaN cannot reach here (spatter guards its only 0/0).
    return np.clip(values, 0, 255).astype(np.uint8)


def _apply(image: np.ndarray, name: str, severity: int, rng: np.random.Generator, table: int | None) -> np.ndarray:
    table = select_table(*image.shape[:2]) if table is None else table
    params = severity_params(name, int(severity), table)
    return _to_uint8(_FUNCTIONS[name](np.ascontiguousarray(image), params, rng))


def corrupt(image: np.ndarray, name: str, severity: int,
            rng: np.random.Generator | int | None = None, table: int | None = None) -> np.ndarray:
    """Apply one benchmark corruption to a uint8 RGB (H, W, 3) image.

    ``table`` forces the 32 / 64 / 224 severity constants; by default the longer
    image side picks the nearest (see ``select_table``). ``rng`` may be a Generator,
    a seed, or None (fresh entropy); the same seed gives identical bytes.
    """
    check_corruption("name", name)
    check_severity("severity", severity)
    check_table(table)
    check_images(image, batched=False)
    return _apply(image, name, severity, np.random.default_rng(rng), table)


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The stream ``corrupt_batch`` uses for image ``index``: independent per image and
    the same whatever batch the image is processed in. Every corruption and severity
    reuses it, so a severity sweep changes the strength, not the random pattern."""
    return np.random.default_rng([seed, index])


def corrupt_batch(images: np.ndarray, name: str, severity: int, seed: int,
                  table: int | None = None, start_index: int = 0) -> np.ndarray:
    """Corrupt a uint8 (N, H, W, 3) batch reproducibly.

    Image ``i`` uses ``image_rng(seed, start_index + i)``, so splitting a dataset into
    batches (passing each batch's offset as ``start_index``) gives the same bytes as
    one call over the whole dataset.
    """
    check_corruption("name", name)
    check_severity("severity", severity)
    check_table(table)
    check_images(images, batched=True)
    check_non_negative_int(seed, "seed")
    check_non_negative_int(start_index, "start_index")
    out = np.empty_like(images)
    for i, image in enumerate(images):
        out[i] = _apply(image, name, severity, image_rng(int(seed), int(start_index) + i), table)
    return out
