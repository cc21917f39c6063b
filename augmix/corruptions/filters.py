"""Shared image operations of the -C creation scripts, ported to current libraries."""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import zoom as _scipy_zoom
from skimage.filters import gaussian as _skimage_gaussian


def gaussian_rgb(image: np.ndarray, sigma: float) -> np.ndarray:
    """Per-channel Gaussian blur; the scripts' ``gaussian(..., multichannel=True)``,
    which current scikit-image spells ``channel_axis=-1``."""
    return _skimage_gaussian(image, sigma=sigma, channel_axis=-1)


def gaussian_2d(image: np.ndarray, sigma: float, **kwargs: object) -> np.ndarray:
    """Single-channel Gaussian blur with scikit-image's defaults, as the scripts use."""
    return _skimage_gaussian(image, sigma=sigma, **kwargs)


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """Anti-aliased disk (defocus) kernel; small radii keep the scripts' 17x17 support."""
    if radius <= 8:
        support = np.arange(-8, 8 + 1)
        ksize = (3, 3)
    else:
        support = np.arange(-radius, radius + 1)
        ksize = (5, 5)
    xx, yy = np.meshgrid(support, support)
    disk = np.array(xx**2 + yy**2 <= radius**2, dtype=np.float32)
    disk /= np.sum(disk)
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


def clipped_zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """Zoom into the centre by ``factor`` keeping the size (bilinear, scipy ``zoom``).

    The scripts crop ``ceil(h / factor)`` pixels around the centre, upsample and trim;
    they assume square images, here rows and columns are handled separately (identical
    for square inputs).
    """
    height, width = image.shape[:2]
    crop_h = int(np.ceil(height / factor))
    crop_w = int(np.ceil(width / factor))
    top = (height - crop_h) // 2
    left = (width - crop_w) // 2
    zooms = (factor, factor) + (1,) * (image.ndim - 2)
    zoomed = _scipy_zoom(image[top:top + crop_h, left:left + crop_w], zooms, order=1)
    trim_top = (zoomed.shape[0] - height) // 2
    trim_left = (zoomed.shape[1] - width) // 2
    return zoomed[trim_top:trim_top + height, trim_left:trim_left + width]


def plasma_fractal(mapsize: int, wibbledecay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square height map in [0, 1] (the scripts' fog layer); ``mapsize`` must be
    a power of two. The scripts use 32/64/256 for their 32/64/224 images."""
    if mapsize & (mapsize - 1):
        raise ValueError(f"mapsize must be a power of two, got {mapsize}")
    heights = np.zeros((mapsize, mapsize), dtype=np.float64)
    stepsize = mapsize
    wibble = 100.0

    def wibbled_mean(summed: np.ndarray) -> np.ndarray:
        return summed / 4 + wibble * rng.uniform(-wibble, wibble, summed.shape)

    while stepsize >= 2:
        half = stepsize // 2
        # squares: centre of each square = mean of its four corners + noise
        corners = heights[0:mapsize:stepsize, 0:mapsize:stepsize]
        square_sum = corners + np.roll(corners, shift=-1, axis=0)
        square_sum += np.roll(square_sum, shift=-1, axis=1)
        heights[half:mapsize:stepsize, half:mapsize:stepsize] = wibbled_mean(square_sum)
        # diamonds: edge midpoints = mean of the two corners and two centres + noise
        centres = heights[half:mapsize:stepsize, half:mapsize:stepsize]
        corners = heights[0:mapsize:stepsize, 0:mapsize:stepsize]
        left_sum = (centres + np.roll(centres, 1, axis=0)) + (corners + np.roll(corners, -1, axis=1))
        heights[0:mapsize:stepsize, half:mapsize:stepsize] = wibbled_mean(left_sum)
        top_sum = (centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=0))
        heights[half:mapsize:stepsize, 0:mapsize:stepsize] = wibbled_mean(top_sum)
        stepsize //= 2
        wibble /= wibbledecay

    heights -= heights.min()
    return heights / heights.max()


def next_power_of_two(n: int) -> int:
    """Smallest power of two >= n (the fractal size that covers an n-pixel side)."""
    return 1 << max(0, int(n) - 1).bit_length()
