"""The perturbation sequences of the -P creation scripts, one function per perturbation.

Each function takes a uint8 RGB (H, W, 3) image, a numpy Generator and the table constants
(``tables.py``) and returns the uint8 (frames, H, W, 3) sequence. Pixel values end as the scripts
end them, ``np.uint8`` of values in [0, 255] (truncation). Kernels shared with -C come from
``augmix.corruptions`` (the ImageMagick motion blur port, clipped zoom, brightness).

Deviations from the scripts, all forced by reproducibility or by working on any data config:

* random numbers come from the given Generator (numpy's global state / torch's in the scripts),
  so sequences are reproducible per seed; the distributions are the same, the draws are not;
* ImageNet-P applies translate, rotate, scale, shear, tilt and zoom to the Resize(256) image and
  centre-crops 224 afterwards (so content moves in from outside the crop); here every
  perturbation works on the image it is given, so uncovered borders are black, as in CIFAR-10-P;
* Tiny-ImageNet-P motion-blurs the full-size source image and resizes it to 64 afterwards; here
  the blur runs on the given image;
* spatter with an empty water mask (0 / 0 in the scripts, NaN pixels) leaves the frame unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from skimage.filters import gaussian

from augmix.corruptions import digital, motion
from augmix.corruptions.filters import clipped_zoom
from augmix.corruptions.weather import water_drops
from augmix.perturbations import geometry
from augmix.perturbations.tables import NOISE_FRAMES, SNOW_ANGLE, SNOW_KEEP, SPATTER_INTENSITY


def _uint8(values: np.ndarray) -> np.ndarray:
    """The scripts' ``np.uint8(...)`` on values already in [0, 255]: truncation."""
    return np.clip(values, 0, 255).astype(np.uint8)


def _with_clean_first(image: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    return np.concatenate([image[np.newaxis], noisy], axis=0)


# ---- noise: frame 0 is the clean image, frames 1..30 independent noisy copies --------------------

def gaussian_noise(image: np.ndarray, rng: np.random.Generator, level: float) -> np.ndarray:
    """Additive N(0, level) noise on [0, 1] intensities, in float32 as the scripts' tensors."""
    x = image.astype(np.float32) / 255
    noise = rng.standard_normal((NOISE_FRAMES - 1, *image.shape), dtype=np.float32)
    return _with_clean_first(image, _uint8(np.clip(x + np.float32(level) * noise, 0, 1) * 255))


def shot_noise(image: np.ndarray, rng: np.random.Generator, level: float) -> np.ndarray:
    """Poisson noise with ``level`` photons at full intensity."""
    x = image / 255.0
    counts = rng.poisson(x * level, size=(NOISE_FRAMES - 1, *image.shape))
    return _with_clean_first(image, _uint8(255 * np.clip(counts / level, 0, 1)))


def speckle_noise(image: np.ndarray, rng: np.random.Generator, level: float) -> np.ndarray:
    """Multiplicative Gaussian noise x + x * N(0, level)."""
    x = image / 255.0
    noise = rng.normal(size=(NOISE_FRAMES - 1, *image.shape), scale=level)
    return _with_clean_first(image, _uint8(255 * np.clip(x + x * noise, 0, 1)))


# ---- blur ----------------------------------------------------------------------------------------

def motion_blur(image: np.ndarray, rng: np.random.Generator, frames: int, radius: float, sigma: float,
                offset: int, step: float) -> np.ndarray:
    """ImageMagick motion blur swept through angles ``(i - offset) * step`` (deterministic)."""
    return np.stack([motion.motion_blur(image, radius, sigma, (i - offset) * step) for i in range(frames)])


def zoom_blur(image: np.ndarray, rng: np.random.Generator, frames: int, step: float) -> np.ndarray:
    """Frame ``i`` is the running mean of the image zoomed by ``1 + step * j`` for j = 0..i: a
    camera moving in with the shutter open (deterministic). Float32 sums as the scripts' tensors."""
    total = image.astype(np.float32) / 255
    out = [image]
    for i in range(1, frames):
        zoomed = geometry.affine(image, scale=1 + step * i)
        total += zoomed.astype(np.float32) / 255
        out.append(_uint8(total / (i + 1) * 255))
    return np.stack(out)


def gaussian_blur(image: np.ndarray, rng: np.random.Generator, frames: int, start: float, step: float,
                  truncate: float) -> np.ndarray:
    """Gaussian blur with sigma growing ``start + step * i`` (deterministic)."""
    x = image / 255.0
    return np.stack([
        _uint8(255 * gaussian(x, sigma=start + step * i, channel_axis=-1, truncate=truncate))
        for i in range(frames)
    ])


# ---- weather -------------------------------------------------------------------------------------

def snow(image: np.ndarray, rng: np.random.Generator, frames: int, loc: float, scale: float, zoom: float,
         radius: float, sigma: float) -> np.ndarray:
    """One random flake layer, motion-blurred at an angle that turns 4 degrees per frame, added
    twice (once rotated by 180 degrees) over a brightened, greyed image."""
    x = image / 255.0
    layer = rng.normal(size=image.shape[:2], loc=loc, scale=scale)
    layer = clipped_zoom(layer[..., np.newaxis], zoom)
    layer[layer < 0.5] = 0
    flakes = (np.clip(layer.squeeze(-1), 0, 1) * 255).astype(np.uint8)
    grey = cv2.cvtColor(np.float32(x), cv2.COLOR_RGB2GRAY)[..., np.newaxis]
    base = SNOW_KEEP * x + (1 - SNOW_KEEP) * np.maximum(x, grey * 1.5 + 0.5)
    per_degree, first = SNOW_ANGLE
    out = []
    for i in range(frames):
        moving = (motion.motion_blur(flakes, radius, sigma, i * per_degree + first) / 255.0)[..., np.newaxis]
        out.append(_uint8(np.clip(base + moving + np.rot90(moving, k=2), 0, 1) * 255))
    return np.stack(out)


def _drip(layer: np.ndarray, kernel: Sequence[float]) -> np.ndarray:
    """``np.convolve(column, kernel, mode='same')`` for every column: the liquid runs downwards."""
    rows, taps = layer.shape[0], len(kernel)
    full = np.zeros((rows + taps - 1, layer.shape[1]), dtype=np.float64)
    for k, weight in enumerate(kernel):
        full[k:k + rows] += weight * layer
    first = (taps - 1) // 2
    return full[first:first + rows]


def spatter(image: np.ndarray, rng: np.random.Generator, frames: int, loc: float, scale: float, sigma: float,
            threshold: float, drip: Sequence[float]) -> np.ndarray:
    """Water drops that run down the lens: one thresholded, blurred noise layer, convolved down
    its columns with ``drip`` after every frame."""
    x = image.astype(np.float32) / 255
    liquid = gaussian(rng.normal(size=image.shape[:2], loc=loc, scale=scale), sigma=sigma)
    liquid[liquid < threshold] = 0
    out = []
    for _ in range(frames):
        out.append(_uint8(water_drops(x, liquid, SPATTER_INTENSITY) * 255))
        liquid = _drip(liquid, drip)
    return np.stack(out)


# ---- digital and geometric (deterministic) -------------------------------------------------------

def brightness(image: np.ndarray, rng: np.random.Generator, frames: int, step: float) -> np.ndarray:
    """HSV value shifted by ``(i - 15) * step / 100``, from darker to brighter."""
    centre = frames // 2
    return np.stack([_uint8(digital.brightness(image, (i - centre) * step / 100.0, rng)) for i in range(frames)])


def translate(image: np.ndarray, rng: np.random.Generator, frames: int, offset: int) -> np.ndarray:
    """Horizontal shift by ``i - offset`` pixels (nearest neighbour, black fill)."""
    return np.stack([geometry.affine(image, translate=(i - offset, 0), resample=geometry.NEAREST)
                     for i in range(frames)])


def rotate(image: np.ndarray, rng: np.random.Generator, frames: int, offset: int) -> np.ndarray:
    """Rotation by ``i - offset`` degrees about the centre (bilinear)."""
    return np.stack([geometry.affine(image, angle=i - offset) for i in range(frames)])


def shear(image: np.ndarray, rng: np.random.Generator, frames: int, offset: int) -> np.ndarray:
    """Shear by ``i - offset`` degrees about the centre (bilinear)."""
    return np.stack([geometry.affine(image, shear=i - offset) for i in range(frames)])


def scale(image: np.ndarray, rng: np.random.Generator, frames: int, step: float, start: float) -> np.ndarray:
    """Zoom about the centre by ``(i * step + start) / 100`` (bilinear)."""
    return np.stack([geometry.affine(image, scale=(i * step + start) / 100.0) for i in range(frames)])


def tilt(image: np.ndarray, rng: np.random.Generator, frames: int, step: float) -> np.ndarray:
    """Camera turned by ``step * (i - 15)`` degrees about both image axes."""
    centre = frames // 2
    return np.stack([geometry.tilt(image, step * (i - centre)) for i in range(frames)])
