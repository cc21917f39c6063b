"""Photo-like JPEG folders for benchmarks and tests of the JPEG path (decode, crop, AugMix).

Each image is a crop of one of the sample photographs that ship with scikit-image and
scikit-learn (``augmix.data.photos``), resized to the requested size, under a faint smooth colour
gradient and mild sensor-like noise, so that no two files are alike and each compresses like a
photograph (edges, textures, flat regions), not like uniform noise or a flat colour. Nothing is
downloaded; the same seed writes the same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn.functional import interpolate

from augmix.data.photos import PHOTOS, read_photo

IMAGENET_SIZES = ((500, 375), (375, 500))  # (width, height): ImageNet's most common landscape and portrait sizes


def photo_like(width: int, height: int, rng: np.random.Generator, photos: Sequence[torch.Tensor]) -> np.ndarray:
    """One (height, width, 3) uint8 image: a random crop of a photograph with the target's aspect
    ratio, resized, blended with a smooth gradient (20%) and noise (sigma 3 grey levels)."""
    photo = photos[int(rng.integers(len(photos)))]
    ph, pw = photo.shape[-2:]
    scale = rng.uniform(0.5, 1.0) * min(ph / height, pw / width)
    ch, cw = max(int(height * scale), 8), max(int(width * scale), 8)
    top, left = int(rng.integers(ph - ch + 1)), int(rng.integers(pw - cw + 1))
    crop = photo[None, :, top : top + ch, left : left + cw].float()
    resized = interpolate(crop, size=(height, width), mode="bilinear", antialias=True, align_corners=False)[0]
    gradient = torch.from_numpy(rng.uniform(0, 255, (1, 3, 3, 4))).float()
    gradient = interpolate(gradient, size=(height, width), mode="bicubic", align_corners=True)[0]
    noise = torch.from_numpy(rng.normal(0.0, 3.0, (3, height, width))).float()
    image = (0.8 * resized + 0.2 * gradient + noise).round_().clamp_(0, 255).to(torch.uint8)
    return image.permute(1, 2, 0).numpy()


def write_photo_jpegs(
    folder: str | Path, count: int, sizes: Sequence[tuple[int, int]] = IMAGENET_SIZES, quality: int = 90,
    seed: int = 0, classes: int = 1,
) -> list[Path]:
    """``count`` photo-like JPEGs in ImageFolder layout (``folder/class_i/img_n.JPEG``), cycling
    through ``sizes`` (width, height), at ``quality``; returns their paths."""
    rng = np.random.default_rng(seed)
    photos = [read_photo(index) for index in range(len(PHOTOS))]
    paths = []
    for n in range(count):
        width, height = sizes[n % len(sizes)]
        path = Path(folder) / f"class_{n % classes}" / f"img_{n:05d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo_like(width, height, rng, photos)).save(path, quality=quality)
        paths.append(path)
    return paths
